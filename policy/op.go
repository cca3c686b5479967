package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brana-ot/brana/protocols/modbus"
)

// DefaultOpUnit is the unit id ParseModbusOp uses when an op names none.
const DefaultOpUnit = 1

// ParseModbusOp turns an op string of `brana policy explain --op` into a
// unit id and request PDU bytes. The caller runs modbus.ParseRequest on them,
// so that the explanation sees exactly what the relay would see.
//
// Syntax: CLASS_OR_FC[:TABLE:START[-END][=V1,V2,...]][@UNIT]
//
//	read:holding:0-9@1          FC 3 (coils: FC 1, discrete: FC 2, input: FC 4)
//	write:holding:100=42        FC 6; several values: FC 16
//	write:holding:100-101=1,2   END may be left out: the values give the count
//	write:coils:5=1             FC 5 (0 or 1); several values: FC 15
//	diagnose, control, program  FC 8 sub 0, FC 8 sub 1, FC 90 sub 0x33
//	fc:8/0, fc:90/64, fc:43/14  a function code and sub-function (FC 8, 43, 90)
//	fc:17, fc:7                 a function code with no data
//	fc:16:holding:100=42        a function code with a table part
//	fc:22:holding:100=AND,OR    mask write: the two values are the masks
//
// Values are decimal or 0x-prefixed hex; addresses and units are decimal.
// The unit defaults to DefaultOpUnit. FC 23 cannot be written as an op yet.
func ParseModbusOp(op string) (unit byte, pdu []byte, err error) {
	unit, pdu, err = parseOp(op)
	if err != nil {
		return 0, nil, fmt.Errorf("policy: op %q: %w", op, err)
	}
	return unit, pdu, nil
}

// opTable is the parsed TABLE:START[-END][=V,...] part of an op.
type opTable struct {
	table  modbus.Table
	start  uint32
	count  uint32
	values []uint16 // nil: no "=" part
	addr   string   // START[-END] as written
	hasEnd bool     // END was given; else a write's values give the count
}

func parseOp(op string) (byte, []byte, error) {
	unit := byte(DefaultOpUnit)
	s := op
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		u, err := strconv.ParseUint(s[i+1:], 10, 8)
		if err != nil {
			return 0, nil, fmt.Errorf("unit %q: want a decimal unit id 0..255", s[i+1:])
		}
		unit, s = byte(u), s[:i]
	}

	var head, rest string
	var hasTable bool
	var fc byte
	sub, hasSub := 0, false
	if strings.HasPrefix(s, "fc:") {
		head, rest, hasTable = strings.Cut(s[len("fc:"):], ":")
		fcs, subs, ok := strings.Cut(head, "/")
		n, err := strconv.ParseUint(fcs, 10, 8)
		if err != nil || n < 1 || n > 127 {
			return 0, nil, fmt.Errorf("function code %q: want 1..127", fcs)
		}
		fc = byte(n)
		if ok {
			m, err := strconv.ParseUint(subs, 10, 16)
			if err != nil {
				return 0, nil, fmt.Errorf("sub-function %q: want a decimal number", subs)
			}
			sub, hasSub = int(m), true
		}
	} else {
		head, rest, hasTable = strings.Cut(s, ":")
	}

	var t *opTable
	if hasTable {
		var err error
		if t, err = parseOpTable(rest); err != nil {
			return 0, nil, err
		}
	}

	if fc == 0 {
		pdu, err := classPDU(head, t)
		return unit, pdu, err
	}
	if hasSub {
		switch {
		case fc != modbus.FuncDiagnostics && fc != modbus.FuncEncapsulatedInterface && fc != modbus.FuncUMAS:
			return 0, nil, fmt.Errorf("function %d has no sub-function (only 8, 43 and 90 do)", fc)
		case fc != modbus.FuncDiagnostics && sub > 0xFF:
			return 0, nil, fmt.Errorf("sub-function %d of function %d: want 0..255", sub, fc)
		}
	}
	pdu, err := fcPDU(fc, sub, hasSub, t)
	return unit, pdu, err
}

func parseOpTable(s string) (*opTable, error) {
	name, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("%q: want TABLE:START[-END][=V1,V2,...]", s)
	}
	table, err := modbus.ParseTable(name)
	if err != nil {
		return nil, fmt.Errorf("unknown table %q (want coils, discrete, holding or input)", name)
	}
	addr, vals, hasVals := strings.Cut(rest, "=")
	sp, err := parseSpan(addr)
	if err != nil {
		return nil, err
	}
	t := &opTable{table: table, start: sp.lo, count: sp.hi - sp.lo + 1, addr: addr, hasEnd: strings.Contains(addr, "-")}
	if hasVals {
		t.values = []uint16{}
		for _, v := range strings.Split(vals, ",") {
			n, err := parseWord(v)
			if err != nil {
				return nil, err
			}
			t.values = append(t.values, n)
		}
	}
	if t.count > 0xFFFF {
		return nil, fmt.Errorf("range %s: more than 65535 addresses", addr)
	}
	return t, nil
}

func parseWord(s string) (uint16, error) {
	var n uint64
	var err error
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		n, err = strconv.ParseUint(h, 16, 16)
	} else {
		n, err = strconv.ParseUint(s, 10, 16)
	}
	if err != nil {
		return 0, fmt.Errorf("value %q: want 0..65535, decimal or 0x hex", s)
	}
	return uint16(n), nil
}

// classPDU builds the representative request for a class name.
func classPDU(class string, t *opTable) ([]byte, error) {
	switch class {
	case "read":
		if t == nil {
			return nil, fmt.Errorf("read needs :TABLE:START[-END], e.g. read:holding:0-9 (or use fc:N)")
		}
		if t.values != nil {
			return nil, fmt.Errorf("a read carries no values")
		}
		return readPDU(readFunc[t.table], t), nil
	case "write":
		if t == nil || t.values == nil {
			return nil, fmt.Errorf("write needs :TABLE:START[-END]=V1,..., e.g. write:holding:100=42")
		}
		switch {
		case t.table == modbus.Coils && len(t.values) == 1:
			return writePDU(modbus.FuncWriteSingleCoil, t)
		case t.table == modbus.Coils:
			return writePDU(modbus.FuncWriteMultipleCoils, t)
		case t.table == modbus.HoldingRegisters && len(t.values) == 1:
			return writePDU(modbus.FuncWriteSingleRegister, t)
		case t.table == modbus.HoldingRegisters:
			return writePDU(modbus.FuncWriteMultipleRegisters, t)
		}
		return nil, fmt.Errorf("table %s is read-only (write coils or holding)", t.table)
	case "diagnose", "control", "program":
		if t != nil {
			return nil, fmt.Errorf("%s takes no table part", class)
		}
		switch class {
		case "diagnose":
			return []byte{modbus.FuncDiagnostics, 0, 0, 0, 0}, nil // return query data
		case "control":
			return []byte{modbus.FuncDiagnostics, 0, 1, 0, 0}, nil // restart communications
		}
		return []byte{modbus.FuncUMAS, 0, 0x33}, nil // UMAS initialize download
	case "":
		return nil, fmt.Errorf("empty op")
	}
	return nil, fmt.Errorf("unknown op %q (want read, write, diagnose, control, program or fc:N[/SUB])", class)
}

var readFunc = [...]byte{
	modbus.Coils:            modbus.FuncReadCoils,
	modbus.DiscreteInputs:   modbus.FuncReadDiscreteInputs,
	modbus.HoldingRegisters: modbus.FuncReadHoldingRegisters,
	modbus.InputRegisters:   modbus.FuncReadInputRegisters,
}

// fcPDU builds a request for an explicit function code.
func fcPDU(fc byte, sub int, hasSub bool, t *opTable) ([]byte, error) {
	want := func(table modbus.Table, values bool) error {
		switch {
		case t == nil && values:
			return fmt.Errorf("function %d needs :%s:START[-END]=V1,...", fc, table)
		case t == nil:
			return fmt.Errorf("function %d needs :%s:START[-END]", fc, table)
		case t.table != table:
			return fmt.Errorf("function %d addresses %s, not %s", fc, table, t.table)
		case values && t.values == nil:
			return fmt.Errorf("function %d needs values: =V1,...", fc)
		case !values && t.values != nil:
			return fmt.Errorf("function %d carries no values", fc)
		}
		return nil
	}
	switch fc {
	case modbus.FuncReadCoils, modbus.FuncReadDiscreteInputs, modbus.FuncReadHoldingRegisters, modbus.FuncReadInputRegisters:
		table := modbus.Table(fc) // FC 1..4 read tables 1..4, in the same order
		if err := want(table, false); err != nil {
			return nil, err
		}
		return readPDU(fc, t), nil
	case modbus.FuncWriteSingleCoil, modbus.FuncWriteMultipleCoils, modbus.FuncWriteSingleRegister, modbus.FuncWriteMultipleRegisters:
		table := modbus.HoldingRegisters
		if fc == modbus.FuncWriteSingleCoil || fc == modbus.FuncWriteMultipleCoils {
			table = modbus.Coils
		}
		if err := want(table, true); err != nil {
			return nil, err
		}
		return writePDU(fc, t)
	case modbus.FuncMaskWriteRegister:
		if err := want(modbus.HoldingRegisters, true); err != nil {
			return nil, err
		}
		if len(t.values) != 2 || t.count != 1 {
			return nil, fmt.Errorf("function 22 needs one address and two values: =AND,OR")
		}
		a, and, or := t.start, t.values[0], t.values[1]
		return []byte{fc, byte(a >> 8), byte(a), byte(and >> 8), byte(and), byte(or >> 8), byte(or)}, nil
	case modbus.FuncReadWriteMultipleRegisters:
		return nil, fmt.Errorf("function 23 (read and write) cannot be written as an op yet")
	}
	if t != nil {
		return nil, fmt.Errorf("function %d takes no table part", fc)
	}
	switch fc {
	case modbus.FuncDiagnostics:
		if !hasSub {
			return nil, fmt.Errorf("function 8 needs a sub-function: fc:8/SUB")
		}
		return []byte{modbus.FuncDiagnostics, byte(sub >> 8), byte(sub), 0, 0}, nil
	case modbus.FuncEncapsulatedInterface:
		if !hasSub {
			return nil, fmt.Errorf("function 43 needs a MEI type: fc:43/14")
		}
		if sub == 14 {
			return []byte{modbus.FuncEncapsulatedInterface, 14, 1, 0}, nil // basic device identification, from object 0
		}
		return []byte{modbus.FuncEncapsulatedInterface, byte(sub)}, nil
	case modbus.FuncUMAS:
		if !hasSub {
			return nil, fmt.Errorf("function 90 needs a UMAS sub-function: fc:90/SUB")
		}
		return []byte{modbus.FuncUMAS, 0, byte(sub)}, nil
	}
	return []byte{fc}, nil
}

func readPDU(fc byte, t *opTable) []byte {
	return []byte{fc, byte(t.start >> 8), byte(t.start), byte(t.count >> 8), byte(t.count)}
}

func writePDU(fc byte, t *opTable) ([]byte, error) {
	if !t.hasEnd {
		t.count = uint32(len(t.values))
	} else if t.count != uint32(len(t.values)) {
		return nil, fmt.Errorf("range %s has %d addresses but %d values are given", t.addr, t.count, len(t.values))
	}
	a, q := t.start, t.count
	switch fc {
	case modbus.FuncWriteSingleCoil, modbus.FuncWriteSingleRegister:
		if len(t.values) != 1 {
			return nil, fmt.Errorf("function %d writes one value, not %d", fc, len(t.values))
		}
	}
	var pdu []byte
	switch fc {
	case modbus.FuncWriteSingleCoil:
		v, err := coil(t.values[0])
		if err != nil {
			return nil, err
		}
		pdu = []byte{fc, byte(a >> 8), byte(a), byte(v >> 8), byte(v)}
	case modbus.FuncWriteSingleRegister:
		v := t.values[0]
		pdu = []byte{fc, byte(a >> 8), byte(a), byte(v >> 8), byte(v)}
	case modbus.FuncWriteMultipleCoils:
		bits := make([]byte, (len(t.values)+7)/8)
		for i, v := range t.values {
			if _, err := coil(v); err != nil {
				return nil, err
			}
			bits[i/8] |= byte(v) << (i % 8)
		}
		pdu = append([]byte{fc, byte(a >> 8), byte(a), byte(q >> 8), byte(q), byte(len(bits))}, bits...)
	case modbus.FuncWriteMultipleRegisters:
		pdu = []byte{fc, byte(a >> 8), byte(a), byte(q >> 8), byte(q), byte(2 * len(t.values))}
		for _, v := range t.values {
			pdu = append(pdu, byte(v>>8), byte(v))
		}
	}
	if len(pdu) > modbus.MaxPDULen {
		return nil, fmt.Errorf("%d values do not fit one request", len(t.values))
	}
	return pdu, nil
}

// coil returns the FC 5 word for a coil value 0 or 1.
func coil(v uint16) (uint16, error) {
	switch v {
	case 0:
		return 0x0000, nil
	case 1:
		return 0xFF00, nil
	}
	return 0, fmt.Errorf("coil value %d: want 0 or 1", v)
}
