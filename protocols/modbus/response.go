package modbus

import "bytes"

// CheckResponse validates a response PDU against the request that caused it
// (req as filled by a successful ParseRequest). A well-formed exception
// response (req.Func|0x80, a known code, 2 bytes) is a valid answer and
// returns nil; use ExceptionOf to tell it apart. Matching transaction ids is
// the relay's job, not this function's.
//
// Checks: function code, PDU length, byte counts against the request's
// quantities (FC 1/2: ceil(q/8), FC 3/4/23: 2q), echoes of FC 5/6/15/16/21/22
// and FC 8 sub-function. Codes this package does not decode pass with only
// the length bounds checked.
func CheckResponse(req *Request, pdu []byte) error {
	if len(pdu) == 0 || len(pdu) > MaxPDULen {
		return ErrResponseLength
	}
	fc := pdu[0]
	if fc != req.Func {
		if fc == req.Func|0x80 && req.Func != 0 {
			if _, ok := ExceptionOf(pdu); !ok {
				return ErrExceptionCode
			}
			return nil
		}
		return ErrResponseFunc
	}
	rq := req.PDU

	switch fc {
	case FuncReadCoils, FuncReadDiscreteInputs:
		// fc, byte count, packed bits
		return checkCounted(pdu, (int(req.Read.Count)+7)/8)
	case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncReadWriteMultipleRegisters:
		// fc, byte count, words; FC 23 answers with its read part
		return checkCounted(pdu, 2*int(req.Read.Count))

	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncMaskWriteRegister, FuncWriteFileRecord:
		// The normal response is an echo of the request.
		return checkEcho(pdu, rq, len(rq))
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		// fc, start(2), quantity(2): the request's first 5 bytes.
		return checkEcho(pdu, rq, 5)

	case FuncReadExceptionStatus:
		// fc, status byte
		if len(pdu) != 2 {
			return ErrResponseLength
		}
	case FuncGetCommEventCounter:
		// fc, status(2), event count(2)
		if len(pdu) != 5 {
			return ErrResponseLength
		}
	case FuncGetCommEventLog:
		// fc, byte count, status(2), event count(2), message count(2), 0..64 events
		if len(pdu) < 2 || int(pdu[1]) != len(pdu)-2 {
			return ErrResponseLength
		}
		if pdu[1] < 6 || pdu[1] > 6+64 {
			return ErrResponseByteCount
		}
	case FuncReportServerID:
		// fc, byte count, server id and device specific data
		if len(pdu) < 3 || int(pdu[1]) != len(pdu)-2 {
			return ErrResponseLength
		}

	case FuncDiagnostics:
		// fc, sub-function(2), data; echo (0) returns the request unchanged.
		if len(pdu) < 3 {
			return ErrResponseLength
		}
		if be16(pdu[1:]) != req.Sub {
			return ErrResponseEcho
		}
		if req.Sub == 0 && !bytes.Equal(pdu, rq) {
			return ErrResponseEcho
		}

	case FuncReadFileRecord:
		return checkFileRecords(pdu)

	case FuncReadFIFOQueue:
		// fc, byte count(2), FIFO count(2), up to 31 words
		if len(pdu) < 5 || int(be16(pdu[1:])) != len(pdu)-3 {
			return ErrResponseLength
		}
		n := be16(pdu[3:])
		if n > maxFIFOCount || int(be16(pdu[1:])) != 2+2*int(n) {
			return ErrResponseByteCount
		}

	case FuncEncapsulatedInterface:
		if len(pdu) < 2 {
			return ErrResponseLength
		}
		if uint16(pdu[1]) != req.Sub {
			return ErrResponseEcho
		}
		if pdu[1] == MEIReadDeviceID {
			return checkDeviceID(pdu, rq)
		}

	case FuncUMAS:
		// fc, pairing byte, status (0xFE ok, 0xFD error), data
		if len(pdu) < 3 {
			return ErrResponseLength
		}
	}
	return nil
}

// checkCounted checks fc, byte count, data: the byte count the request asks
// for, and the PDU exactly that long.
func checkCounted(pdu []byte, want int) error {
	if len(pdu) < 2 {
		return ErrResponseLength
	}
	if int(pdu[1]) != want {
		return ErrResponseByteCount
	}
	if len(pdu) != 2+want {
		return ErrResponseLength
	}
	return nil
}

// checkEcho checks that pdu is exactly the first n bytes of the request.
func checkEcho(pdu, req []byte, n int) error {
	if len(pdu) != n || len(req) < n {
		return ErrResponseLength
	}
	if !bytes.Equal(pdu, req[:n]) {
		return ErrResponseEcho
	}
	return nil
}

// checkFileRecords checks an FC 20 response: fc, data length, then
// sub-responses of (file response length, reference type 6, record data)
// filling the data length exactly.
func checkFileRecords(pdu []byte) error {
	if len(pdu) < 2 || int(pdu[1]) != len(pdu)-2 {
		return ErrResponseLength
	}
	for b := pdu[2:]; len(b) > 0; {
		// file response length counts the reference type and the data words
		if len(b) < 2 || b[0] < 1 || int(b[0]) > len(b)-1 || b[0]%2 != 1 || b[1] != fileRefType {
			return ErrResponseByteCount
		}
		b = b[1+int(b[0]):]
	}
	return nil
}

// checkDeviceID checks an FC 43/14 response: fc, MEI type, read device id
// code, conformity level, more follows, next object id, number of objects,
// then (object id, length, value) triples filling the PDU exactly.
func checkDeviceID(pdu, req []byte) error {
	if len(pdu) < 7 {
		return ErrResponseLength
	}
	if len(req) == 4 && pdu[2] != req[2] {
		return ErrResponseEcho
	}
	b := pdu[7:]
	for i := 0; i < int(pdu[6]); i++ {
		if len(b) < 2 || int(b[1]) > len(b)-2 {
			return ErrResponseLength
		}
		b = b[2+int(b[1]):]
	}
	if len(b) != 0 {
		return ErrResponseLength
	}
	return nil
}
