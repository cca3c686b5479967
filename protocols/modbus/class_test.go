package modbus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		fc   byte
		sub  uint16
		want opclass.Class
	}{
		{"read/fc-1", 1, 0, opclass.Read},
		{"read/fc-2", 2, 0, opclass.Read},
		{"read/fc-3", 3, 0, opclass.Read},
		{"read/fc-3-sub-ignored", 3, 0x40, opclass.Read},
		{"read/fc-4", 4, 0, opclass.Read},
		{"read/fc-7", 7, 0, opclass.Read},
		{"read/fc-11", 11, 0, opclass.Read},
		{"read/fc-12", 12, 0, opclass.Read},
		{"read/fc-17", 17, 0, opclass.Read},
		{"read/fc-20", 20, 0, opclass.Read},
		{"read/fc-24", 24, 0, opclass.Read},
		{"read/fc-43-14", 43, 14, opclass.Read},
		{"write/fc-5", 5, 0, opclass.Write},
		{"write/fc-6", 6, 0, opclass.Write},
		{"write/fc-15", 15, 0, opclass.Write},
		{"write/fc-16", 16, 0, opclass.Write},
		{"write/fc-22", 22, 0, opclass.Write},
		{"write/fc-23", 23, 0, opclass.Write},
		{"diagnose/fc-8-echo", 8, 0, opclass.Diagnose},
		{"diagnose/fc-8-register", 8, 2, opclass.Diagnose},
		{"diagnose/fc-8-11", 8, 11, opclass.Diagnose},
		{"diagnose/fc-8-12", 8, 12, opclass.Diagnose},
		{"diagnose/fc-8-13", 8, 13, opclass.Diagnose},
		{"diagnose/fc-8-14", 8, 14, opclass.Diagnose},
		{"diagnose/fc-8-18", 8, 18, opclass.Diagnose},
		{"control/fc-8-restart", 8, 1, opclass.Control},
		{"control/fc-8-ascii-delimiter", 8, 3, opclass.Control},
		{"control/fc-8-listen-only", 8, 4, opclass.Control},
		{"control/fc-8-clear-counters", 8, 10, opclass.Control},
		{"control/fc-8-clear-overrun", 8, 20, opclass.Control},
		{"control/fc-90-default", 90, 0x02, opclass.Control},
		{"control/fc-90-reservation", 90, 0x10, opclass.Control},
		{"control/fc-90-release", 90, 0x11, opclass.Control},
		{"control/fc-90-0x2f", 90, 0x2F, opclass.Control},
		{"control/fc-90-0x36", 90, 0x36, opclass.Control},
		{"program/fc-21", 21, 0, opclass.Program},
		{"program/fc-90-0x30", 90, 0x30, opclass.Program},
		{"program/fc-90-0x31", 90, 0x31, opclass.Program},
		{"program/fc-90-0x32", 90, 0x32, opclass.Program},
		{"program/fc-90-0x33", 90, 0x33, opclass.Program},
		{"program/fc-90-0x34", 90, 0x34, opclass.Program},
		{"program/fc-90-0x35", 90, 0x35, opclass.Program},
		{"program/fc-90-start", 90, 0x40, opclass.Program},
		{"program/fc-90-stop", 90, 0x41, opclass.Program},
		{"program/fc-40", 40, 0, opclass.Program},
		{"program/fc-42", 42, 0, opclass.Program},
		{"program/fc-125", 125, 0, opclass.Program},
		{"program/fc-126", 126, 0, opclass.Program},
		{"unknown/fc-0", 0, 0, opclass.Unknown},
		{"unknown/fc-8-5", 8, 5, opclass.Unknown},
		{"unknown/fc-8-19", 8, 19, opclass.Unknown},
		{"unknown/fc-8-21", 8, 21, opclass.Unknown},
		{"unknown/fc-8-high", 8, 0x100, opclass.Unknown},
		{"unknown/fc-43-canopen", 43, 13, opclass.Unknown},
		{"unknown/fc-43-other", 43, 0, opclass.Unknown},
		{"unknown/fc-43-14-high", 43, 0x10E, opclass.Unknown},
		{"unknown/fc-9", 9, 0, opclass.Unknown},
		{"unknown/fc-65", 65, 0, opclass.Unknown},
		{"unknown/fc-100", 100, 0, opclass.Unknown},
		{"unknown/fc-127", 127, 0, opclass.Unknown},
		{"unknown/exception-bit", 0x83, 0, opclass.Unknown},
		{"unknown/exception-bit-0xff", 0xFF, 0, opclass.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.fc, tt.sub); got != tt.want {
				t.Fatalf("Classify(%d, %#x) = %v; want %v", tt.fc, tt.sub, got, tt.want)
			}
		})
	}
}

func TestFuncName(t *testing.T) {
	for fc, want := range map[byte]string{
		0x03: "read holding registers",
		0x17: "read/write multiple registers",
		0x2B: "encapsulated interface transport",
		0x83: "read holding registers exception",
		0x41: "function 0x41",
		0x00: "function 0x00",
		0xC1: "function 0xC1",
	} {
		if got := FuncName(fc); got != want {
			t.Errorf("FuncName(%#x) = %q; want %q", fc, got, want)
		}
	}
}

func TestExceptionName(t *testing.T) {
	for code, want := range map[byte]string{
		ExIllegalFunction:     "illegal function",
		ExIllegalDataAddress:  "illegal data address",
		ExIllegalDataValue:    "illegal data value",
		ExServerFailure:       "server device failure",
		ExAcknowledge:         "acknowledge",
		ExServerBusy:          "server device busy",
		ExMemoryParity:        "memory parity error",
		ExGatewayPath:         "gateway path unavailable",
		ExGatewayTargetFailed: "gateway target device failed to respond",
		0x07:                  "exception 0x07",
		0x00:                  "exception 0x00",
		0xFF:                  "exception 0xFF",
	} {
		if got := ExceptionName(code); got != want {
			t.Errorf("ExceptionName(%#x) = %q; want %q", code, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Table
		err  bool
	}{
		{"ok/coils", "coils", Coils, false},
		{"ok/coil", "coil", Coils, false},
		{"ok/discrete", "discrete", DiscreteInputs, false},
		{"ok/discrete-inputs", "discrete-inputs", DiscreteInputs, false},
		{"ok/holding", "holding", HoldingRegisters, false},
		{"ok/holding-registers", "holding-registers", HoldingRegisters, false},
		{"ok/input", "input", InputRegisters, false},
		{"ok/input-registers", "input-registers", InputRegisters, false},
		{"fail/empty", "", NoTable, true},
		{"fail/case", "Holding", NoTable, true},
		{"fail/unknown", "registers", NoTable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTable(tt.in)
			if got != tt.want || (err != nil) != tt.err {
				t.Fatalf("ParseTable(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
	for _, tb := range []Table{Coils, DiscreteInputs, HoldingRegisters, InputRegisters} {
		if got, err := ParseTable(tb.String()); got != tb || err != nil {
			t.Errorf("round trip %v: %v, %v", tb, got, err)
		}
	}
	if NoTable.String() != "" || Table(9).String() != "table(9)" {
		t.Errorf("NoTable %q, Table(9) %q", NoTable.String(), Table(9).String())
	}
}

func TestRange(t *testing.T) {
	hr := func(s, c uint16) Range { return Range{HoldingRegisters, s, c} }
	tests := []struct {
		name               string
		r, o               Range
		end                uint32
		contains, overlaps bool
	}{
		{"ok/inside", hr(0, 100), hr(10, 5), 99, true, true},
		{"ok/equal", hr(10, 5), hr(10, 5), 14, true, true},
		{"ok/last-address", hr(0xFF00, 0x100), hr(0xFFFF, 1), 0xFFFF, true, true},
		{"ok/overlap-end", hr(0, 100), hr(99, 5), 99, false, true},
		{"ok/overlap-start", hr(10, 10), hr(5, 6), 19, false, true},
		{"ok/adjacent", hr(0, 10), hr(10, 1), 9, false, false},
		{"ok/other-table", hr(0, 100), Range{InputRegisters, 0, 1}, 99, false, false},
		{"ok/empty-r", hr(0, 0), hr(0, 1), 0, false, false},
		{"ok/empty-o", hr(0, 10), hr(0, 0), 9, false, false},
		{"ok/wide-end", hr(0xFFFF, 0xFFFF), hr(0, 1), 0x1FFFD, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.End(); got != tt.end {
				t.Errorf("End() = %#x; want %#x", got, tt.end)
			}
			if got := tt.r.Contains(tt.o); got != tt.contains {
				t.Errorf("Contains = %v", got)
			}
			if got := tt.r.Overlaps(tt.o); got != tt.overlaps {
				t.Errorf("Overlaps = %v", got)
			}
			if got := tt.o.Overlaps(tt.r); got != tt.overlaps {
				t.Errorf("Overlaps (swapped) = %v", got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	framing := []error{ErrShortFrame, ErrLongFrame, ErrProtocolID, ErrLength}
	for _, err := range framing {
		if !IsFraming(err) || !IsFraming(fmt.Errorf("reading: %w", err)) {
			t.Errorf("IsFraming(%v) = false", err)
		}
	}
	codes := map[error]byte{
		ErrExceptionBit:      ExIllegalFunction,
		ErrIllegalFunction:   ExIllegalFunction,
		ErrAddressOverflow:   ExIllegalDataAddress,
		ErrFileReference:     ExIllegalDataAddress,
		ErrPDULength:         ExIllegalDataValue,
		ErrQuantity:          ExIllegalDataValue,
		ErrByteCount:         ExIllegalDataValue,
		ErrCoilValue:         ExIllegalDataValue,
		ErrDataValue:         ExIllegalDataValue,
		ErrResponseFunc:      ExGatewayTargetFailed,
		ErrResponseLength:    ExGatewayTargetFailed,
		ErrResponseByteCount: ExGatewayTargetFailed,
		ErrResponseEcho:      ExGatewayTargetFailed,
		ErrExceptionCode:     ExGatewayTargetFailed,
		errors.New("other"):  ExServerFailure,
		nil:                  0,
	}
	for err, want := range codes {
		if got := ExceptionFor(err); got != want {
			t.Errorf("ExceptionFor(%v) = %#x; want %#x", err, got, want)
		}
		if err != nil && IsFraming(err) {
			t.Errorf("IsFraming(%v) = true", err)
		}
		if err != nil && ExceptionFor(fmt.Errorf("x: %w", err)) != want {
			t.Errorf("ExceptionFor(wrapped %v) differs", err)
		}
	}
}
