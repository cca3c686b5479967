package modbus

import (
	"errors"
	"slices"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
)

// Request PDUs from the examples of the MODBUS Application Protocol
// Specification V1.1b3, section 6; reused by the response tests and as fuzz seeds.
var (
	pduReadCoils        = h("01 00 13 00 13")
	pduReadDiscrete     = h("02 00 C4 00 16")
	pduReadHolding      = h("03 00 6B 00 03")
	pduReadInput        = h("04 00 08 00 01")
	pduWriteCoil        = h("05 00 AC FF 00")
	pduWriteRegister    = h("06 00 01 00 03")
	pduExceptionStatus  = h("07")
	pduDiagEcho         = h("08 00 00 A5 37")
	pduCommEventCounter = h("0B")
	pduCommEventLog     = h("0C")
	pduWriteCoils       = h("0F 00 13 00 0A 02 CD 01")
	pduWriteRegisters   = h("10 00 01 00 02 04 00 0A 01 02")
	pduReportServerID   = h("11")
	pduReadFile         = h("14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02")
	pduWriteFile        = h("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D")
	pduMaskWrite        = h("16 00 04 00 F2 00 25")
	pduReadWrite        = h("17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF")
	pduReadFIFO         = h("18 04 DE")
	pduReadDeviceID     = h("2B 0E 01 00")
	pduUMASInfo         = h("5A 00 02")
)

// writeCoilsPDU and writeRegistersPDU build FC 15/16 requests of any size,
// for the limits; bc is the byte count written and the number of data bytes.
func writeCoilsPDU(start, q uint16, bc int) []byte {
	return cat([]byte{0x0F, byte(start >> 8), byte(start), byte(q >> 8), byte(q), byte(bc)}, repeat(0x55, bc))
}

func writeRegistersPDU(start, q uint16, bc int) []byte {
	return cat([]byte{0x10, byte(start >> 8), byte(start), byte(q >> 8), byte(q), byte(bc)}, repeat(0x12, bc))
}

func TestParseRequest(t *testing.T) {
	type want struct {
		class  opclass.Class
		sub    uint16
		read   Range
		write  Range
		values []uint16
		masked bool
	}
	tests := []struct {
		name string
		unit byte
		pdu  []byte
		err  error
		want want
	}{
		// Reads, FC 1-4: PDU exactly 5 bytes, quantity limits, address overflow.
		{name: "ok/read-coils", pdu: pduReadCoils, want: want{class: opclass.Read, read: Range{Coils, 0x13, 0x13}}},
		{name: "ok/read-discrete", pdu: pduReadDiscrete, want: want{class: opclass.Read, read: Range{DiscreteInputs, 0xC4, 0x16}}},
		{name: "ok/read-holding", pdu: pduReadHolding, want: want{class: opclass.Read, read: Range{HoldingRegisters, 0x6B, 3}}},
		{name: "ok/read-input", pdu: pduReadInput, want: want{class: opclass.Read, read: Range{InputRegisters, 8, 1}}},
		{name: "ok/read-coils-2000", pdu: h("01 00 00 07 D0"), want: want{class: opclass.Read, read: Range{Coils, 0, 2000}}},
		{name: "ok/read-discrete-2000", pdu: h("02 00 00 07 D0"), want: want{class: opclass.Read, read: Range{DiscreteInputs, 0, 2000}}},
		{name: "ok/read-holding-125", pdu: h("03 00 00 00 7D"), want: want{class: opclass.Read, read: Range{HoldingRegisters, 0, 125}}},
		{name: "ok/read-input-125", pdu: h("04 00 00 00 7D"), want: want{class: opclass.Read, read: Range{InputRegisters, 0, 125}}},
		{name: "ok/read-holding-last-address", pdu: h("03 FF 83 00 7D"), want: want{class: opclass.Read, read: Range{HoldingRegisters, 0xFF83, 125}}},
		{name: "ok/read-coils-0xffff", pdu: h("01 FF FF 00 01"), want: want{class: opclass.Read, read: Range{Coils, 0xFFFF, 1}}},
		{name: "fail/quantity-zero", pdu: h("03 00 6B 00 00"), err: ErrQuantity},
		{name: "fail/quantity-zero-coils", pdu: h("01 00 6B 00 00"), err: ErrQuantity},
		{name: "fail/quantity-coils-2001", pdu: h("01 00 00 07 D1"), err: ErrQuantity},
		{name: "fail/quantity-discrete-2001", pdu: h("02 00 00 07 D1"), err: ErrQuantity},
		{name: "fail/quantity-holding-126", pdu: h("03 00 00 00 7E"), err: ErrQuantity},
		{name: "fail/quantity-input-126", pdu: h("04 00 00 00 7E"), err: ErrQuantity},
		{name: "fail/quantity-high-byte", pdu: h("03 00 00 01 01"), err: ErrQuantity}, // 257, low byte alone says 1
		{name: "fail/quantity-256", pdu: h("03 00 00 01 00"), err: ErrQuantity},
		{name: "fail/address-overflow", pdu: h("03 FF 84 00 7D"), err: ErrAddressOverflow},
		{name: "fail/address-overflow-wrap", pdu: h("01 FF FF 00 02"), err: ErrAddressOverflow},
		{name: "fail/address-overflow-input", pdu: h("04 FF F0 00 20"), err: ErrAddressOverflow},
		{name: "fail/length-mismatch", pdu: h("03 00 6B 00 03 00"), err: ErrPDULength},
		{name: "fail/length-short", pdu: h("03 00 6B 00"), err: ErrPDULength},
		{name: "fail/length-fc-only", pdu: h("01"), err: ErrPDULength},

		// Single writes, FC 5/6.
		{name: "ok/write-single-coil-on", pdu: pduWriteCoil, want: want{class: opclass.Write, write: Range{Coils, 0xAC, 1}, values: []uint16{1}}},
		{name: "ok/write-single-coil-off", pdu: h("05 00 AC 00 00"), want: want{class: opclass.Write, write: Range{Coils, 0xAC, 1}, values: []uint16{0}}},
		{name: "fail/coil-value-00ff", pdu: h("05 00 AC 00 FF"), err: ErrCoilValue},
		{name: "fail/coil-value-0001", pdu: h("05 00 AC 00 01"), err: ErrCoilValue},
		{name: "fail/coil-value-ff01", pdu: h("05 00 AC FF 01"), err: ErrCoilValue},
		{name: "fail/coil-value-0100", pdu: h("05 00 AC 01 00"), err: ErrCoilValue},
		{name: "fail/write-single-coil-length", pdu: h("05 00 AC FF 00 00"), err: ErrPDULength},
		{name: "ok/write-single-register", pdu: pduWriteRegister, want: want{class: opclass.Write, write: Range{HoldingRegisters, 1, 1}, values: []uint16{3}}},
		{name: "ok/write-single-register-0xffff", pdu: h("06 FF FF AB CD"), want: want{class: opclass.Write, write: Range{HoldingRegisters, 0xFFFF, 1}, values: []uint16{0xABCD}}},
		{name: "fail/write-single-register-length", pdu: h("06 00 01 00"), err: ErrPDULength},

		// FC 15: byte count = ceil(q/8), PDU = 6 + byte count.
		{name: "ok/write-multiple-coils", pdu: pduWriteCoils, want: want{class: opclass.Write, write: Range{Coils, 0x13, 10}, values: []uint16{1, 0, 1, 1, 0, 0, 1, 1, 1, 0}}},
		{name: "ok/write-multiple-coils-1", pdu: h("0F 00 00 00 01 01 01"), want: want{class: opclass.Write, write: Range{Coils, 0, 1}, values: []uint16{1}}},
		{name: "ok/write-multiple-coils-8", pdu: h("0F 00 00 00 08 01 81"), want: want{class: opclass.Write, write: Range{Coils, 0, 8}, values: []uint16{1, 0, 0, 0, 0, 0, 0, 1}}},
		{name: "ok/write-multiple-coils-1968", pdu: writeCoilsPDU(0, 1968, 246), want: want{class: opclass.Write, write: Range{Coils, 0, 1968}}},
		{name: "fail/write-multiple-coils-quantity-zero", pdu: h("0F 00 00 00 00 00"), err: ErrQuantity},
		{name: "fail/write-multiple-coils-quantity-1969", pdu: writeCoilsPDU(0, 1969, 247), err: ErrQuantity},
		{name: "fail/write-multiple-coils-byte-count", pdu: h("0F 00 13 00 0A 01 CD"), err: ErrByteCount},
		{name: "fail/write-multiple-coils-byte-count-high", pdu: h("0F 00 13 00 0A 03 CD 01 00"), err: ErrByteCount},
		{name: "fail/write-multiple-coils-length-long", pdu: h("0F 00 13 00 0A 02 CD 01 00"), err: ErrPDULength},
		{name: "fail/write-multiple-coils-length-short", pdu: h("0F 00 13 00 0A 02 CD"), err: ErrPDULength},
		{name: "fail/write-multiple-coils-no-byte-count", pdu: h("0F 00 13 00 0A"), err: ErrPDULength},
		{name: "fail/write-multiple-coils-overflow", pdu: h("0F FF FF 00 02 01 03"), err: ErrAddressOverflow},

		// FC 16: byte count = 2q.
		{name: "ok/write-multiple-registers", pdu: pduWriteRegisters, want: want{class: opclass.Write, write: Range{HoldingRegisters, 1, 2}, values: []uint16{0x000A, 0x0102}}},
		{name: "ok/write-multiple-registers-123", pdu: writeRegistersPDU(0xFF85, 123, 246), want: want{class: opclass.Write, write: Range{HoldingRegisters, 0xFF85, 123}}},
		{name: "fail/write-multiple-registers-quantity-zero", pdu: h("10 00 01 00 00 00"), err: ErrQuantity},
		{name: "fail/write-multiple-registers-quantity-124", pdu: writeRegistersPDU(0, 124, 246), err: ErrQuantity},
		{name: "fail/write-multiple-registers-quantity-high-byte", pdu: h("10 00 01 01 02 04 00 0A 01 02"), err: ErrQuantity},
		{name: "fail/write-multiple-registers-byte-count", pdu: h("10 00 01 00 02 03 00 0A 01"), err: ErrByteCount},
		{name: "fail/write-multiple-registers-length", pdu: h("10 00 01 00 02 04 00 0A 01"), err: ErrPDULength},
		{name: "fail/write-multiple-registers-overflow", pdu: writeRegistersPDU(0xFF86, 123, 246), err: ErrAddressOverflow},

		// FC 22: PDU 7 bytes; the result depends on the current value.
		{name: "ok/mask-write", pdu: pduMaskWrite, want: want{class: opclass.Write, write: Range{HoldingRegisters, 4, 1}, masked: true}},
		{name: "fail/mask-write-length-short", pdu: h("16 00 04 00 F2 00"), err: ErrPDULength},
		{name: "fail/mask-write-length-long", pdu: h("16 00 04 00 F2 00 25 00"), err: ErrPDULength},

		// FC 23: both parts checked; class write.
		{name: "ok/read-write-multiple", pdu: pduReadWrite, want: want{class: opclass.Write, read: Range{HoldingRegisters, 3, 6}, write: Range{HoldingRegisters, 0x0E, 3}, values: []uint16{0xFF, 0xFF, 0xFF}}},
		{name: "ok/read-write-limits", pdu: cat(h("17 00 00 00 7D 00 00 00 79 F2"), repeat(0, 242)), want: want{class: opclass.Write, read: Range{HoldingRegisters, 0, 125}, write: Range{HoldingRegisters, 0, 121}}},
		{name: "fail/read-write-read-quantity-zero", pdu: h("17 00 03 00 00 00 0E 00 01 02 00 01"), err: ErrQuantity},
		{name: "fail/read-write-read-quantity-126", pdu: h("17 00 03 00 7E 00 0E 00 01 02 00 01"), err: ErrQuantity},
		{name: "fail/read-write-write-quantity-zero", pdu: h("17 00 03 00 01 00 0E 00 00 00"), err: ErrQuantity},
		{name: "fail/read-write-write-quantity-122", pdu: cat(h("17 00 03 00 01 00 0E 00 7A F4"), repeat(0, 244)[:243]), err: ErrQuantity},
		{name: "fail/read-write-byte-count", pdu: h("17 00 03 00 06 00 0E 00 03 04 00 FF 00 FF"), err: ErrByteCount},
		{name: "fail/read-write-length", pdu: h("17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00"), err: ErrPDULength},
		{name: "fail/read-write-header-short", pdu: h("17 00 03 00 06 00 0E 00 03"), err: ErrPDULength},
		{name: "fail/read-write-read-overflow", pdu: h("17 FF FF 00 02 00 0E 00 01 02 00 01"), err: ErrAddressOverflow},
		{name: "fail/read-write-write-overflow", pdu: h("17 00 00 00 02 FF FF 00 02 04 00 01 00 02"), err: ErrAddressOverflow},

		// No request data: FC 7, 11, 12, 17.
		{name: "ok/read-exception-status", pdu: pduExceptionStatus, want: want{class: opclass.Read}},
		{name: "ok/comm-event-counter", pdu: pduCommEventCounter, want: want{class: opclass.Read}},
		{name: "ok/comm-event-log", pdu: pduCommEventLog, want: want{class: opclass.Read}},
		{name: "ok/report-server-id", pdu: pduReportServerID, want: want{class: opclass.Read}},
		{name: "fail/read-exception-status-data", pdu: h("07 00"), err: ErrPDULength},
		{name: "fail/report-server-id-data", pdu: h("11 01"), err: ErrPDULength},

		// FC 8: class by sub-function.
		{name: "ok/diagnostics-echo", pdu: pduDiagEcho, want: want{class: opclass.Diagnose}},
		{name: "ok/diagnostics-echo-empty", pdu: h("08 00 00"), want: want{class: opclass.Diagnose}},
		{name: "ok/diagnostics-restart", pdu: h("08 00 01 FF 00"), want: want{class: opclass.Control, sub: 1}},
		{name: "ok/diagnostics-register", pdu: h("08 00 02 00 00"), want: want{class: opclass.Diagnose, sub: 2}},
		{name: "ok/diagnostics-ascii-delimiter", pdu: h("08 00 03 0A 00"), want: want{class: opclass.Control, sub: 3}},
		{name: "ok/diagnostics-listen-only", pdu: h("08 00 04 00 00"), want: want{class: opclass.Control, sub: 4}},
		{name: "ok/diagnostics-clear-counters", pdu: h("08 00 0A 00 00"), want: want{class: opclass.Control, sub: 10}},
		{name: "ok/diagnostics-bus-message-count", pdu: h("08 00 0B 00 00"), want: want{class: opclass.Diagnose, sub: 11}},
		{name: "ok/diagnostics-overrun-count", pdu: h("08 00 12 00 00"), want: want{class: opclass.Diagnose, sub: 18}},
		{name: "ok/diagnostics-clear-overrun", pdu: h("08 00 14 00 00"), want: want{class: opclass.Control, sub: 20}},
		{name: "ok/diagnostics-unknown-sub", pdu: h("08 00 15 00 03"), want: want{class: opclass.Unknown, sub: 21}},
		{name: "ok/diagnostics-sub-high-byte", pdu: h("08 01 00 00 00"), want: want{class: opclass.Unknown, sub: 0x100}},
		{name: "fail/diagnostics-short", pdu: h("08 00"), err: ErrPDULength},

		// FC 20/21: byte count 0x07..0xF5, matches the PDU, sub-requests fill it.
		{name: "ok/read-file-record", pdu: pduReadFile, want: want{class: opclass.Read}},
		{name: "ok/write-file-record", pdu: pduWriteFile, want: want{class: opclass.Program}},
		{name: "fail/read-file-record-byte-count-low", pdu: h("14 06 06 00 04 00 01 00"), err: ErrByteCount},
		{name: "fail/read-file-record-byte-count-high", pdu: cat(h("14 F6"), repeat(6, 0xF6)), err: ErrByteCount},
		{name: "fail/read-file-record-length", pdu: h("14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00"), err: ErrPDULength},
		{name: "fail/read-file-record-partial-sub-request", pdu: h("14 08 06 00 04 00 01 00 02 06"), err: ErrByteCount},
		{name: "fail/read-file-record-reference-type", pdu: h("14 07 05 00 04 00 01 00 02"), err: ErrFileReference},
		{name: "fail/read-file-record-record-number", pdu: h("14 07 06 00 04 27 10 00 02"), err: ErrFileReference},
		{name: "fail/read-file-record-no-byte-count", pdu: h("14"), err: ErrPDULength},
		{name: "fail/write-file-record-data-short", pdu: h("15 0D 06 00 04 00 07 00 04 06 AF 04 BE 10 0D"), err: ErrByteCount},
		{name: "fail/write-file-record-data-long", pdu: h("15 0D 06 00 04 00 07 00 02 06 AF 04 BE 10 0D"), err: ErrByteCount},

		// FC 24: pointer address, PDU 3 bytes.
		{name: "ok/read-fifo", pdu: pduReadFIFO, want: want{class: opclass.Read, read: Range{HoldingRegisters, 0x04DE, 32}}},
		{name: "ok/read-fifo-clipped", pdu: h("18 FF F0"), want: want{class: opclass.Read, read: Range{HoldingRegisters, 0xFFF0, 16}}},
		{name: "ok/read-fifo-last", pdu: h("18 FF FF"), want: want{class: opclass.Read, read: Range{HoldingRegisters, 0xFFFF, 1}}},
		{name: "fail/read-fifo-length", pdu: h("18 04 DE 00"), err: ErrPDULength},

		// FC 43: MEI type.
		{name: "ok/read-device-id", pdu: pduReadDeviceID, want: want{class: opclass.Read, sub: 14}},
		{name: "ok/read-device-id-one-object", pdu: h("2B 0E 04 81"), want: want{class: opclass.Read, sub: 14}},
		{name: "ok/mei-canopen", pdu: h("2B 0D 00 01 02 03"), want: want{class: opclass.Unknown, sub: 13}},
		{name: "fail/read-device-id-code-0", pdu: h("2B 0E 00 00"), err: ErrDataValue},
		{name: "fail/read-device-id-code-5", pdu: h("2B 0E 05 00"), err: ErrDataValue},
		{name: "fail/read-device-id-length", pdu: h("2B 0E 01 00 00"), err: ErrPDULength},
		{name: "fail/mei-short", pdu: h("2B"), err: ErrPDULength},

		// FC 90 UMAS: control by default, program for upload/download/start/stop.
		{name: "ok/umas-read-info", pdu: pduUMASInfo, want: want{class: opclass.Control, sub: 2}},
		{name: "ok/umas-take-reservation", pdu: h("5A 00 10 3B 00"), want: want{class: opclass.Control, sub: 0x10}},
		{name: "ok/umas-upload", pdu: h("5A 01 30 00"), want: want{class: opclass.Program, sub: 0x30}},
		{name: "ok/umas-download-init", pdu: h("5A 01 33 00"), want: want{class: opclass.Program, sub: 0x33}},
		{name: "ok/umas-download-end", pdu: h("5A 01 35 00"), want: want{class: opclass.Program, sub: 0x35}},
		{name: "ok/umas-start", pdu: h("5A 01 40 FF 00"), want: want{class: opclass.Program, sub: 0x40}},
		{name: "ok/umas-stop", pdu: h("5A 01 41 FF 00"), want: want{class: opclass.Program, sub: 0x41}},
		{name: "fail/umas-short", pdu: h("5A 00"), err: ErrPDULength},

		// Other codes pass through with only the length checked.
		{name: "ok/program-fc-40", pdu: h("28 01"), want: want{class: opclass.Program}},
		{name: "ok/program-fc-42", pdu: h("2A"), want: want{class: opclass.Program}},
		{name: "ok/program-fc-125", pdu: h("7D 01 02 03"), want: want{class: opclass.Program}},
		{name: "ok/program-fc-126", pdu: h("7E"), want: want{class: opclass.Program}},
		{name: "ok/unknown-fc-65", pdu: h("41 01 02 03"), want: want{class: opclass.Unknown}},
		{name: "ok/unknown-fc-127", pdu: h("7F"), want: want{class: opclass.Unknown}},
		{name: "ok/unknown-max-pdu", pdu: repeat(0x41, MaxPDULen), want: want{class: opclass.Unknown}},
		{name: "ok/broadcast-write", unit: 0, pdu: pduWriteRegister, want: want{class: opclass.Write, write: Range{HoldingRegisters, 1, 1}, values: []uint16{3}}},
		{name: "ok/unit-255", unit: 255, pdu: pduReadHolding, want: want{class: opclass.Read, read: Range{HoldingRegisters, 0x6B, 3}}},

		// Function code and PDU size.
		{name: "fail/fc-zero", pdu: h("00 00 00 00 01"), err: ErrIllegalFunction},
		{name: "fail/exception-bit", pdu: h("83 00 6B 00 03"), err: ErrExceptionBit},
		{name: "fail/exception-bit-0x80", pdu: h("80"), err: ErrExceptionBit},
		{name: "fail/exception-bit-0xff", pdu: h("FF"), err: ErrExceptionBit},
		{name: "fail/empty-pdu", pdu: nil, err: ErrPDULength},
		{name: "fail/pdu-too-long", pdu: repeat(0x41, MaxPDULen+1), err: ErrPDULength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit := tt.unit
			if unit == 0 && tt.name != "ok/broadcast-write" {
				unit = 0x11
			}
			var req Request
			err := ParseRequest(unit, tt.pdu, &req)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v; want %v", err, tt.err)
			}
			if req.Unit != unit || len(req.PDU) != len(tt.pdu) {
				t.Errorf("Unit/PDU = %#x/%x; want %#x/%x", req.Unit, req.PDU, unit, tt.pdu)
			}
			if len(tt.pdu) > 0 && req.Func != tt.pdu[0] {
				t.Errorf("Func = %#x; want %#x", req.Func, tt.pdu[0])
			}
			if err != nil {
				if IsFraming(err) {
					t.Errorf("IsFraming(%v) = true; request errors keep the stream", err)
				}
				if ExceptionFor(err) == ExServerFailure {
					t.Errorf("ExceptionFor(%v) = server failure; want a specific code", err)
				}
				// On error only Unit, Func and PDU are set.
				if req.Class != opclass.Unknown || req.Sub != 0 || req.Read != (Range{}) || req.Write != (Range{}) || req.Values.Len() != 0 || req.Masked {
					t.Errorf("req on error = %+v; want only Unit, Func, PDU", req)
				}
				return
			}
			w := tt.want
			if req.Class != w.class || req.Sub != w.sub || req.Read != w.read || req.Write != w.write || req.Masked != w.masked {
				t.Errorf("got class %v sub %#x read %+v write %+v masked %v\nwant class %v sub %#x read %+v write %+v masked %v",
					req.Class, req.Sub, req.Read, req.Write, req.Masked, w.class, w.sub, w.read, w.write, w.masked)
			}
			if req.Class != Classify(req.Func, req.Sub) {
				t.Errorf("Class %v != Classify %v", req.Class, Classify(req.Func, req.Sub))
			}
			var vals []uint16
			for i := 0; i < req.Values.Len(); i++ {
				vals = append(vals, req.Values.At(i))
			}
			if w.values != nil && !slices.Equal(vals, w.values) {
				t.Errorf("values = %#x; want %#x", vals, w.values)
			}
			if req.Values.Len() != 0 && req.Values.Len() != int(req.Write.Count) {
				t.Errorf("Values.Len() = %d; Write.Count = %d", req.Values.Len(), req.Write.Count)
			}
		})
	}
}

func TestRequestHelpers(t *testing.T) {
	var req Request
	if err := ParseRequest(0, pduMaskWrite, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Broadcast() {
		t.Error("Broadcast() = false for unit 0")
	}
	if and, or, ok := req.Masks(); !ok || and != 0x00F2 || or != 0x0025 {
		t.Errorf("Masks() = %#x, %#x, %v", and, or, ok)
	}
	if err := ParseRequest(1, pduWriteRegister, &req); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := req.Masks(); ok || req.Broadcast() {
		t.Error("Masks() ok or Broadcast() for FC 6 to unit 1")
	}
}

func TestValuesAtPanics(t *testing.T) {
	var req Request
	if err := ParseRequest(1, pduWriteCoils, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Values.Coils() {
		t.Error("Coils() = false for FC 15")
	}
	for _, i := range []int{-1, 10, 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("At(%d) did not panic", i)
				}
			}()
			req.Values.At(i)
		}()
	}
}
