package firmware

import (
	"fmt"

	"github.com/brana-ot/brana/protocols/modbus"
)

// FC 21 sub-request layout (Modbus application protocol, 6.15): reference
// type 6, file number, record number, record length in words, then the
// record data.
const (
	fileRefType   = 6
	fileSubReqLen = 7
	maxFileRecord = 9999
)

// FileRecord is one sub-request of an FC 21 (write file record) request.
type FileRecord struct {
	File   uint16
	Record uint16
	Data   []byte // record length × 2 bytes; a view into the request
}

// Offset is where the record's data lies in its file: records are 2 bytes
// each, so record × 2.
func (r FileRecord) Offset() int64 { return int64(r.Record) * 2 }

// AppendFileRecords appends the sub-requests of req, an FC 21 request that
// modbus.ParseRequest accepted, to dst. It checks the layout again rather
// than trust that the request was parsed, and allocates nothing when dst
// has room.
func AppendFileRecords(dst []FileRecord, req *modbus.Request) ([]FileRecord, error) {
	pdu := req.PDU
	if req.Func != modbus.FuncWriteFileRecord || len(pdu) < 2 || pdu[0] != modbus.FuncWriteFileRecord || len(pdu) != 2+int(pdu[1]) {
		return dst, fmt.Errorf("%w: not a well-formed FC 21 (write file record) request", ErrRequest)
	}
	for b := pdu[2:]; len(b) > 0; {
		if len(b) < fileSubReqLen || b[0] != fileRefType {
			return dst, fmt.Errorf("%w: bad FC 21 sub-request", ErrRequest)
		}
		r := FileRecord{File: be16(b[1:]), Record: be16(b[3:])}
		n := 2 * int(be16(b[5:]))
		if r.Record > maxFileRecord || fileSubReqLen+n > len(b) {
			return dst, fmt.Errorf("%w: bad FC 21 sub-request", ErrRequest)
		}
		r.Data = b[fileSubReqLen : fileSubReqLen+n]
		dst = append(dst, r)
		b = b[fileSubReqLen+n:]
	}
	return dst, nil
}

// Window is a run of registers through which a device takes an image word
// by word: register Start+i holds bytes 2i and 2i+1 of the image, high byte
// first, as Modbus sends a register.
type Window struct {
	Table modbus.Table // modbus.HoldingRegisters: the only register table a client writes
	Start uint16
	Count uint16
}

func (w Window) rng() modbus.Range {
	return modbus.Range{Table: w.Table, Start: w.Start, Count: w.Count}
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
