package policy

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

func TestParseModbusOpRoundTrip(t *testing.T) {
	H, C, D, I := modbus.HoldingRegisters, modbus.Coils, modbus.DiscreteInputs, modbus.InputRegisters
	tests := []struct {
		name   string
		op     string
		pdu    []byte // exact bytes, when given
		unit   byte
		fc     byte
		sub    uint16
		class  opclass.Class
		read   modbus.Range
		write  modbus.Range
		values []uint16
		masked bool
	}{
		{name: "ok/read-holding", op: "read:holding:0-9@1", pdu: []byte{3, 0, 0, 0, 10}, unit: 1, fc: 3, class: opclass.Read, read: modbus.Range{Table: H, Start: 0, Count: 10}},
		{name: "ok/read-default-unit", op: "read:holding:5", unit: DefaultOpUnit, fc: 3, class: opclass.Read, read: modbus.Range{Table: H, Start: 5, Count: 1}},
		{name: "ok/read-coils", op: "read:coils:19-37@17", pdu: []byte{1, 0, 19, 0, 19}, unit: 17, fc: 1, class: opclass.Read, read: modbus.Range{Table: C, Start: 19, Count: 19}},
		{name: "ok/read-discrete", op: "read:discrete:196-217", unit: 1, fc: 2, class: opclass.Read, read: modbus.Range{Table: D, Start: 196, Count: 22}},
		{name: "ok/read-input-top", op: "read:input:65535", unit: 1, fc: 4, class: opclass.Read, read: modbus.Range{Table: I, Start: 65535, Count: 1}},
		{name: "ok/read-long-table-name", op: "read:holding-registers:1", unit: 1, fc: 3, class: opclass.Read, read: modbus.Range{Table: H, Start: 1, Count: 1}},
		{name: "ok/write-holding-single", op: "write:holding:100=42", pdu: []byte{6, 0, 100, 0, 42}, unit: 1, fc: 6, class: opclass.Write, write: modbus.Range{Table: H, Start: 100, Count: 1}, values: []uint16{42}},
		{name: "ok/write-holding-range", op: "write:holding:100-101=1,2", pdu: []byte{16, 0, 100, 0, 2, 4, 0, 1, 0, 2}, unit: 1, fc: 16, class: opclass.Write, write: modbus.Range{Table: H, Start: 100, Count: 2}, values: []uint16{1, 2}},
		{name: "ok/write-holding-count-from-values", op: "write:holding:100=1,0xFFFF,65535@3", unit: 3, fc: 16, class: opclass.Write, write: modbus.Range{Table: H, Start: 100, Count: 3}, values: []uint16{1, 65535, 65535}},
		{name: "ok/write-coil-on", op: "write:coils:5=1", pdu: []byte{5, 0, 5, 0xFF, 0}, unit: 1, fc: 5, class: opclass.Write, write: modbus.Range{Table: C, Start: 5, Count: 1}, values: []uint16{1}},
		{name: "ok/write-coil-off", op: "write:coils:172=0", pdu: []byte{5, 0, 172, 0, 0}, unit: 1, fc: 5, class: opclass.Write, write: modbus.Range{Table: C, Start: 172, Count: 1}, values: []uint16{0}},
		{name: "ok/write-coils-spec-example", op: "write:coils:19-28=1,0,1,1,0,0,1,1,1,0", pdu: []byte{15, 0, 19, 0, 10, 2, 0xCD, 0x01}, unit: 1, fc: 15, class: opclass.Write,
			write: modbus.Range{Table: C, Start: 19, Count: 10}, values: []uint16{1, 0, 1, 1, 0, 0, 1, 1, 1, 0}},
		{name: "ok/write-broadcast", op: "write:holding:1=7@0", unit: 0, fc: 6, class: opclass.Write, write: modbus.Range{Table: H, Start: 1, Count: 1}, values: []uint16{7}},
		{name: "ok/fc16-single-value", op: "fc:16:holding:100=42", pdu: []byte{16, 0, 100, 0, 1, 2, 0, 42}, unit: 1, fc: 16, class: opclass.Write, write: modbus.Range{Table: H, Start: 100, Count: 1}, values: []uint16{42}},
		{name: "ok/fc15-single-value", op: "fc:15:coils:3=1", unit: 1, fc: 15, class: opclass.Write, write: modbus.Range{Table: C, Start: 3, Count: 1}, values: []uint16{1}},
		{name: "ok/fc3", op: "fc:3:holding:7-8@2", unit: 2, fc: 3, class: opclass.Read, read: modbus.Range{Table: H, Start: 7, Count: 2}},
		{name: "ok/fc22-masked", op: "fc:22:holding:4=0xF2,0x25", pdu: []byte{22, 0, 4, 0, 0xF2, 0, 0x25}, unit: 1, fc: 22, class: opclass.Write, write: modbus.Range{Table: H, Start: 4, Count: 1}, masked: true},
		{name: "ok/diagnose", op: "diagnose", pdu: []byte{8, 0, 0, 0, 0}, unit: 1, fc: 8, sub: 0, class: opclass.Diagnose},
		{name: "ok/control", op: "control@4", pdu: []byte{8, 0, 1, 0, 0}, unit: 4, fc: 8, sub: 1, class: opclass.Control},
		{name: "ok/program", op: "program", pdu: []byte{90, 0, 0x33}, unit: 1, fc: 90, sub: 0x33, class: opclass.Program},
		{name: "ok/fc8-sub0", op: "fc:8/0", unit: 1, fc: 8, sub: 0, class: opclass.Diagnose},
		{name: "ok/fc8-sub4-listen-only", op: "fc:8/4", unit: 1, fc: 8, sub: 4, class: opclass.Control},
		{name: "ok/fc90-umas-start", op: "fc:90/64", pdu: []byte{90, 0, 0x40}, unit: 1, fc: 90, sub: 0x40, class: opclass.Program},
		{name: "ok/fc90-umas-reservation", op: "fc:90/16", unit: 1, fc: 90, sub: 0x10, class: opclass.Control},
		{name: "ok/fc43-device-id", op: "fc:43/14@255", pdu: []byte{43, 14, 1, 0}, unit: 255, fc: 43, sub: 14, class: opclass.Read},
		{name: "ok/fc43-canopen", op: "fc:43/13", unit: 1, fc: 43, sub: 13, class: opclass.Unknown},
		{name: "ok/fc7", op: "fc:7", pdu: []byte{7}, unit: 1, fc: 7, class: opclass.Read},
		{name: "ok/fc17", op: "fc:17", unit: 1, fc: 17, class: opclass.Read},
		{name: "ok/fc65-unknown", op: "fc:65", unit: 1, fc: 65, class: opclass.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit, pdu, err := ParseModbusOp(tt.op)
			if err != nil {
				t.Fatalf("ParseModbusOp(%q): %v", tt.op, err)
			}
			if tt.pdu != nil && !bytes.Equal(pdu, tt.pdu) {
				t.Fatalf("PDU = % x; want % x", pdu, tt.pdu)
			}
			var req modbus.Request
			if err := modbus.ParseRequest(unit, pdu, &req); err != nil {
				t.Fatalf("ParseRequest(% x): %v", pdu, err)
			}
			if req.Unit != tt.unit || req.Func != tt.fc || req.Sub != tt.sub || req.Class != tt.class ||
				req.Read != tt.read || req.Write != tt.write || req.Masked != tt.masked {
				t.Fatalf("request = unit %d fc %d sub %d class %s read %+v write %+v masked %v; want unit %d fc %d sub %d class %s read %+v write %+v masked %v",
					req.Unit, req.Func, req.Sub, req.Class, req.Read, req.Write, req.Masked,
					tt.unit, tt.fc, tt.sub, tt.class, tt.read, tt.write, tt.masked)
			}
			var vals []uint16
			for i := range req.Values.Len() {
				vals = append(vals, req.Values.At(i))
			}
			if !slices.Equal(vals, tt.values) {
				t.Fatalf("values = %v; want %v", vals, tt.values)
			}
		})
	}
}

func TestParseModbusOpErrors(t *testing.T) {
	tests := []struct {
		name, op, msg string
	}{
		{"fail/empty", "", "empty op"},
		{"fail/unknown-class", "exec", `unknown op "exec"`},
		{"fail/unknown-class-named", "unknown", `unknown op "unknown"`},
		{"fail/read-without-table", "read", "read needs :TABLE:START"},
		{"fail/write-without-values", "write:holding:100", "write needs"},
		{"fail/read-with-values", "read:holding:100=1", "a read carries no values"},
		{"fail/write-read-only-table", "write:input:1=1", "table input is read-only"},
		{"fail/unknown-table", "read:holdings:0", `unknown table "holdings"`},
		{"fail/table-without-start", "read:holding", "want TABLE:START"},
		{"fail/bad-start", "read:holding:x", `bad range "x"`},
		{"fail/range-order", "read:holding:9-0", "end before start"},
		{"fail/address-above-65535", "read:holding:65536", "outside 0..65535"},
		{"fail/count-mismatch", "write:holding:100-102=1,2", "3 addresses but 2 values"},
		{"fail/value-above-65535", "write:holding:1=65536", `value "65536"`},
		{"fail/value-negative", "write:holding:1=-1", `value "-1"`},
		{"fail/value-empty", "write:holding:1=", `value ""`},
		{"fail/coil-value-2", "write:coils:1=2", "coil value 2"},
		{"fail/coils-value-2", "write:coils:1-2=1,2", "coil value 2"},
		{"fail/too-many-values", "write:holding:0=" + strings.Repeat("1,", 200) + "1", "do not fit one request"},
		{"fail/whole-table", "read:holding:0-65535", "more than 65535 addresses"},
		{"fail/bad-unit", "read:holding:0@256", `unit "256"`},
		{"fail/unit-empty", "diagnose@", `unit ""`},
		{"fail/diagnose-with-table", "diagnose:holding:1", "diagnose takes no table part"},
		{"fail/fc-0", "fc:0", "want 1..127"},
		{"fail/fc-128", "fc:128", "want 1..127"},
		{"fail/fc-word", "fc:read", "want 1..127"},
		{"fail/sub-on-fc3", "fc:3/1:holding:0", "has no sub-function"},
		{"fail/sub-word", "fc:8/x", `sub-function "x"`},
		{"fail/umas-sub-above-255", "fc:90/256", "want 0..255"},
		{"fail/fc8-without-sub", "fc:8", "needs a sub-function"},
		{"fail/fc43-without-sub", "fc:43", "needs a MEI type"},
		{"fail/fc90-without-sub", "fc:90", "needs a UMAS sub-function"},
		{"fail/fc3-without-table", "fc:3", "function 3 needs :holding:START"},
		{"fail/fc3-wrong-table", "fc:3:coils:0", "function 3 addresses holding, not coils"},
		{"fail/fc6-without-values", "fc:6:holding:0", "function 6 needs values"},
		{"fail/fc6-two-values", "fc:6:holding:0=1,2", "function 6 writes one value, not 2"},
		{"fail/fc5-without-table", "fc:5", "function 5 needs :coils:START[-END]=V1"},
		{"fail/fc22-one-value", "fc:22:holding:0=1", "two values"},
		{"fail/fc22-range", "fc:22:holding:0-1=1,2", "two values"},
		{"fail/fc23", "fc:23:holding:0=1", "function 23"},
		{"fail/fc17-with-table", "fc:17:holding:0", "function 17 takes no table part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit, pdu, err := ParseModbusOp(tt.op)
			if err == nil {
				t.Fatalf("ParseModbusOp(%q) = %d, % x; want an error", tt.op, unit, pdu)
			}
			if !strings.HasPrefix(err.Error(), "policy: op ") || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q; want one containing %q", err, tt.msg)
			}
		})
	}
}

// FuzzParseModbusOp checks that no op string panics and that whatever
// ParseModbusOp accepts is one frame that fits a PDU.
func FuzzParseModbusOp(f *testing.F) {
	for _, s := range []string{
		"read:holding:0-9@1", "write:holding:100-101=1,2", "write:coils:5=1", "fc:8/0", "fc:90/64",
		"diagnose", "control", "program", "fc:22:holding:4=0xF2,0x25", "fc:43/14@255", "write:coils:0-20=1,0,1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, op string) {
		_, pdu, err := ParseModbusOp(op)
		if err != nil {
			return
		}
		if len(pdu) == 0 || len(pdu) > modbus.MaxPDULen || pdu[0] == 0 || pdu[0] > 127 {
			t.Fatalf("ParseModbusOp(%q) = % x", op, pdu)
		}
	})
}
