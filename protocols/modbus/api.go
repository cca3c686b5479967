package modbus

import (
	"fmt"

	"github.com/brana-ot/brana/protocols/opclass"
)

// Sizes from the Modbus Application Protocol and Messaging on TCP/IP specs.
const (
	MBAPLen   = 7   // transaction id, protocol id, length, unit id
	MaxPDULen = 253 // function code + data
	MaxADULen = MBAPLen + MaxPDULen

	// The MBAP length field counts the unit id and the PDU.
	minLength = 2             // unit id + function code
	maxLength = 1 + MaxPDULen // unit id + largest PDU
	headerLen = 6             // the bytes before the ones the length field counts
)

// Table is one of the four Modbus data tables.
type Table uint8

const (
	NoTable Table = iota
	Coils
	DiscreteInputs
	HoldingRegisters
	InputRegisters
)

var tableNames = [...]string{
	NoTable:          "",
	Coils:            "coils",
	DiscreteInputs:   "discrete",
	HoldingRegisters: "holding",
	InputRegisters:   "input",
}

// String returns the name used in config and audit records: "coils",
// "discrete", "holding", "input", or "" for NoTable.
func (t Table) String() string {
	if int(t) < len(tableNames) {
		return tableNames[t]
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// ParseTable turns a config name into a Table. It accepts the names String
// returns and the longer spellings "coil", "discrete-inputs",
// "holding-registers" and "input-registers".
func ParseTable(s string) (Table, error) {
	switch s {
	case "coils", "coil":
		return Coils, nil
	case "discrete", "discrete-inputs":
		return DiscreteInputs, nil
	case "holding", "holding-registers":
		return HoldingRegisters, nil
	case "input", "input-registers":
		return InputRegisters, nil
	}
	return NoTable, fmt.Errorf("modbus: unknown table %q (want coils, discrete, holding or input)", s)
}

// Range is a contiguous run of addresses in one table. Count 0 means "no range".
type Range struct {
	Table Table
	Start uint16
	Count uint16
}

// End returns the last address of r, computed wide so that a range that would
// wrap past 0xFFFF shows as > 0xFFFF instead of a small number. It is 0 when
// Count is 0.
func (r Range) End() uint32 {
	if r.Count == 0 {
		return 0
	}
	return uint32(r.Start) + uint32(r.Count) - 1
}

// Contains reports whether every address of o is in r (same table, o not
// empty). Policy allow-lists use it; computing wide means a wrapped range can
// never look contained.
func (r Range) Contains(o Range) bool {
	return r.Count != 0 && o.Count != 0 && r.Table == o.Table &&
		o.Start >= r.Start && o.End() <= r.End()
}

// Overlaps reports whether r and o share at least one address in the same table.
func (r Range) Overlaps(o Range) bool {
	return r.Count != 0 && o.Count != 0 && r.Table == o.Table &&
		uint32(o.Start) <= r.End() && uint32(r.Start) <= o.End()
}

// Values is a view of the values a write request carries: registers as
// big-endian uint16 words, or coils as packed bits (FC 15) or a single
// 0x0000/0xFF00 word (FC 5).
type Values struct {
	raw   []byte
	n     int
	coils bool
}

// Len returns the number of values: registers or coils.
func (v Values) Len() int { return v.n }

// Coils reports whether the values are coils (0 or 1) rather than registers.
func (v Values) Coils() bool { return v.coils }

// At returns value i: a register's word, or 0/1 for a coil. It panics if i is
// out of range, like a slice index.
func (v Values) At(i int) uint16 {
	if uint(i) >= uint(v.n) {
		panic("modbus: Values.At index out of range")
	}
	if v.coils {
		// FC 15 packs coil i into bit i%8 of byte i/8. FC 5's single word is
		// 0xFF00 or 0x0000, so bit 0 of its first byte reads the same way.
		return uint16(v.raw[i/8]>>(i%8)) & 1
	}
	return uint16(v.raw[2*i])<<8 | uint16(v.raw[2*i+1])
}

// Request is a validated, classified request. Its fields are views into the
// frame it was decoded from; it is only valid while that frame is.
type Request struct {
	Unit   byte
	Func   byte
	Sub    uint16        // FC 8 sub-function, FC 43 MEI type, FC 90 UMAS sub-function
	Class  opclass.Class // class of the whole request (FC 23: write)
	Read   Range         // what the request reads (FC 23: its read part)
	Write  Range         // what the request writes (FC 23: its write part)
	Values Values        // the values written, in Write order
	Masked bool          // FC 22: the result depends on the current value
	PDU    []byte        // the whole PDU, function code first
}

// Broadcast reports whether the request goes to unit 0, which on a serial bus
// reaches every unit and gets no reply; policy treats it as addressing all units.
func (r *Request) Broadcast() bool { return r.Unit == 0 }

// Masks returns the AND and OR masks of an FC 22 (mask write register)
// request; ok is false for any other request.
func (r *Request) Masks() (and, or uint16, ok bool) {
	if r.Func != FuncMaskWriteRegister || len(r.PDU) != 7 {
		return 0, 0, false
	}
	return be16(r.PDU[3:]), be16(r.PDU[5:]), true
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
