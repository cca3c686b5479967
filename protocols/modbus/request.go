package modbus

// Quantity limits (application protocol spec, section 6): what fits in one
// 253-byte PDU, request or response.
const (
	maxReadBits       = 2000 // FC 1, 2
	maxReadRegisters  = 125  // FC 3, 4, 23 read part
	maxWriteBits      = 1968 // FC 15
	maxWriteRegisters = 123  // FC 16
	maxRWWrite        = 121  // FC 23 write part

	minFileByteCount = 0x07 // FC 20/21: one sub-request
	maxFileByteCount = 0xF5
	fileRefType      = 6      // the only reference type the spec defines
	maxFileRecord    = 0x270F // record numbers 0..9999
	fileSubReqLen    = 7      // reference type, file number, record number, record length
	maxFIFOCount     = 31
)

// ParseRequest validates a request PDU (function code onward) received for
// unit and fills req with its class and what it reads and writes. req holds
// views into pdu; nothing is allocated.
//
// On error, req has Unit, Func (0 if pdu is empty) and PDU set and everything
// else zero, so the caller can answer with AppendException(dst, txid,
// req.Unit, req.Func, ExceptionFor(err)).
//
// Checks follow the spec's order: function code, then PDU length, quantity
// and byte count (exception 03), then the address range (02).
func ParseRequest(unit byte, pdu []byte, req *Request) error {
	*req = Request{Unit: unit, PDU: pdu}
	if len(pdu) == 0 {
		return ErrPDULength
	}
	fc := pdu[0]
	req.Func = fc
	if len(pdu) > MaxPDULen {
		return ErrPDULength
	}
	switch {
	case fc == 0:
		return ErrIllegalFunction
	case fc >= 0x80:
		return ErrExceptionBit
	}

	var err error
	switch fc {
	case FuncReadCoils:
		req.Read, err = parseRead(pdu, Coils, maxReadBits)
	case FuncReadDiscreteInputs:
		req.Read, err = parseRead(pdu, DiscreteInputs, maxReadBits)
	case FuncReadHoldingRegisters:
		req.Read, err = parseRead(pdu, HoldingRegisters, maxReadRegisters)
	case FuncReadInputRegisters:
		req.Read, err = parseRead(pdu, InputRegisters, maxReadRegisters)

	case FuncWriteSingleCoil:
		if len(pdu) != 5 {
			return ErrPDULength
		}
		if v := be16(pdu[3:]); v != 0x0000 && v != 0xFF00 {
			return ErrCoilValue
		}
		req.Write = Range{Coils, be16(pdu[1:]), 1}
		req.Values = Values{raw: pdu[3:5], n: 1, coils: true}
	case FuncWriteSingleRegister:
		if len(pdu) != 5 {
			return ErrPDULength
		}
		req.Write = Range{HoldingRegisters, be16(pdu[1:]), 1}
		req.Values = Values{raw: pdu[3:5], n: 1}

	case FuncWriteMultipleCoils:
		// fc, start(2), quantity(2), byte count, packed bits
		if len(pdu) < 6 {
			return ErrPDULength
		}
		q := be16(pdu[3:])
		if q == 0 || q > maxWriteBits {
			return ErrQuantity
		}
		bc := int(pdu[5])
		if bc != (int(q)+7)/8 {
			return ErrByteCount
		}
		if len(pdu) != 6+bc {
			return ErrPDULength
		}
		if req.Write, err = span(Coils, be16(pdu[1:]), q); err != nil {
			return err
		}
		req.Values = Values{raw: pdu[6:], n: int(q), coils: true}
	case FuncWriteMultipleRegisters:
		if len(pdu) < 6 {
			return ErrPDULength
		}
		q := be16(pdu[3:])
		if q == 0 || q > maxWriteRegisters {
			return ErrQuantity
		}
		bc := int(pdu[5])
		if bc != 2*int(q) {
			return ErrByteCount
		}
		if len(pdu) != 6+bc {
			return ErrPDULength
		}
		if req.Write, err = span(HoldingRegisters, be16(pdu[1:]), q); err != nil {
			return err
		}
		req.Values = Values{raw: pdu[6:], n: int(q)}

	case FuncMaskWriteRegister:
		// fc, address(2), and mask(2), or mask(2). The written value is
		// (current AND and) OR (or AND NOT and): it depends on what is there,
		// so Values stays empty and Masked tells policy a value rule cannot
		// be proved from the request alone.
		if len(pdu) != 7 {
			return ErrPDULength
		}
		req.Write = Range{HoldingRegisters, be16(pdu[1:]), 1}
		req.Masked = true

	case FuncReadWriteMultipleRegisters:
		// fc, read start(2), read quantity(2), write start(2), write
		// quantity(2), write byte count, values. The server writes first,
		// then reads; both parts are checked.
		if len(pdu) < 10 {
			return ErrPDULength
		}
		rq, wq := be16(pdu[3:]), be16(pdu[7:])
		if rq == 0 || rq > maxReadRegisters || wq == 0 || wq > maxRWWrite {
			return ErrQuantity
		}
		bc := int(pdu[9])
		if bc != 2*int(wq) {
			return ErrByteCount
		}
		if len(pdu) != 10+bc {
			return ErrPDULength
		}
		if req.Read, err = span(HoldingRegisters, be16(pdu[1:]), rq); err != nil {
			return err
		}
		if req.Write, err = span(HoldingRegisters, be16(pdu[5:]), wq); err != nil {
			req.Read = Range{}
			return err
		}
		req.Values = Values{raw: pdu[10:], n: int(wq)}

	case FuncReadExceptionStatus, FuncGetCommEventCounter, FuncGetCommEventLog, FuncReportServerID:
		if len(pdu) != 1 {
			return ErrPDULength
		}

	case FuncDiagnostics:
		// fc, sub-function(2), data. The data length varies by sub-function
		// (echo takes any); the class comes from the sub-function alone.
		if len(pdu) < 3 {
			return ErrPDULength
		}
		req.Sub = be16(pdu[1:])

	case FuncReadFileRecord:
		err = parseFileRecords(pdu, false)
	case FuncWriteFileRecord:
		err = parseFileRecords(pdu, true)

	case FuncReadFIFOQueue:
		if len(pdu) != 3 {
			return ErrPDULength
		}
		// The pointer register holds the count and up to 31 queued values
		// follow it; claim all 32 (clipped at 0xFFFF) so that an allow-list
		// sees everything the answer may contain.
		start := be16(pdu[1:])
		n := uint32(1 + maxFIFOCount)
		if rest := 0x10000 - uint32(start); n > rest {
			n = rest
		}
		req.Read = Range{HoldingRegisters, start, uint16(n)}

	case FuncEncapsulatedInterface:
		// fc, MEI type, MEI data.
		if len(pdu) < 2 {
			return ErrPDULength
		}
		if pdu[1] == MEIReadDeviceID {
			// MEI type, read device id code (1 basic, 2 regular,
			// 3 extended, 4 one object), object id.
			if len(pdu) != 4 {
				return ErrPDULength
			}
			if pdu[2] < 1 || pdu[2] > 4 {
				return ErrDataValue
			}
		}
		req.Sub = uint16(pdu[1])

	case FuncUMAS:
		// fc, pairing byte, sub-function, payload.
		if len(pdu) < 3 {
			return ErrPDULength
		}
		req.Sub = uint16(pdu[2])
	}
	// Any other code 1..127 passes through unchecked beyond the PDU length
	// above; Classify makes it Unknown unless the table names it.
	if err != nil {
		return err
	}
	req.Class = Classify(fc, req.Sub)
	return nil
}

// parseRead checks an FC 1..4 request: fc, start(2), quantity(2).
func parseRead(pdu []byte, t Table, max uint16) (Range, error) {
	if len(pdu) != 5 {
		return Range{}, ErrPDULength
	}
	q := be16(pdu[3:])
	if q == 0 || q > max {
		return Range{}, ErrQuantity
	}
	return span(t, be16(pdu[1:]), q)
}

// span builds a range, refusing one that would run past 0xFFFF. The sum is
// computed wide: in uint16 it would wrap to a low address and could slip
// through an allow-list.
func span(t Table, start, q uint16) (Range, error) {
	if uint32(start)+uint32(q) > 0x10000 {
		return Range{}, ErrAddressOverflow
	}
	return Range{t, start, q}, nil
}

// parseFileRecords checks FC 20/21: fc, byte count, then 7-byte sub-requests
// (reference type 6, file number, record number, record length), each
// followed in FC 21 by record length words of data. The sub-requests must
// fill the byte count exactly.
func parseFileRecords(pdu []byte, write bool) error {
	if len(pdu) < 2 {
		return ErrPDULength
	}
	bc := int(pdu[1])
	if bc < minFileByteCount || bc > maxFileByteCount {
		return ErrByteCount
	}
	if len(pdu) != 2+bc {
		return ErrPDULength
	}
	for b := pdu[2:]; len(b) > 0; {
		if len(b) < fileSubReqLen {
			return ErrByteCount
		}
		if b[0] != fileRefType || be16(b[3:]) > maxFileRecord {
			return ErrFileReference
		}
		n := fileSubReqLen
		if write {
			n += 2 * int(be16(b[5:]))
		}
		if n > len(b) {
			return ErrByteCount
		}
		b = b[n:]
	}
	return nil
}
