package modbus

// ADU is a view of one Modbus TCP application data unit: the 7-byte MBAP
// header (transaction id, protocol id, length, unit id) followed by the PDU.
// The accessors assume Validate has passed; frames from SplitFrame always do.
type ADU []byte

// TxID returns the transaction id, the only correlator on a pipelined connection.
func (a ADU) TxID() uint16 { return be16(a[0:]) }

// ProtocolID returns the protocol id; 0 is Modbus, anything else is invalid.
func (a ADU) ProtocolID() uint16 { return be16(a[2:]) }

// Length returns the MBAP length field: the number of bytes after it (unit id + PDU).
func (a ADU) Length() uint16 { return be16(a[4:]) }

// Unit returns the unit id.
func (a ADU) Unit() byte { return a[6] }

// Func returns the function code, the first byte of the PDU.
func (a ADU) Func() byte { return a[7] }

// PDU returns the protocol data unit: function code onward.
func (a ADU) PDU() []byte { return a[MBAPLen:] }

// Validate checks the header rules: protocol id 0, length 2..254 and the
// frame exactly as long as the length field says. It does not look at the PDU
// (ParseRequest and CheckResponse do).
func (a ADU) Validate() error {
	if len(a) < headerLen {
		return ErrShortFrame
	}
	if err := checkHeader(a); err != nil {
		return err
	}
	switch n := headerLen + int(a.Length()); {
	case len(a) < n:
		return ErrShortFrame
	case len(a) > n:
		return ErrLongFrame
	}
	return nil
}

// checkHeader checks the protocol id once 4 bytes are there and the length
// once 6 are, in that order, so that a stream fed in any chunk sizes fails
// with the same error at the same frame.
func checkHeader(b []byte) error {
	if len(b) >= 4 && (b[2] != 0 || b[3] != 0) {
		return ErrProtocolID
	}
	if len(b) >= headerLen {
		if l := be16(b[4:]); l < minLength || l > maxLength {
			return ErrLength
		}
	}
	return nil
}

// SplitFrame finds the first complete ADU at the start of buf. It returns
// (nil, 0, nil) when more bytes are needed, (frame, n, nil) with n =
// len(frame) bytes consumed, or a framing error (protocol id != 0, length
// 0/1/>254) as soon as the header bytes show it. It never resyncs and never
// "fixes" a length: after an error nothing in the stream can be trusted.
//
// frame aliases buf, with its capacity cut to its length so that appending to
// it cannot overwrite the next frame.
func SplitFrame(buf []byte) (frame ADU, n int, err error) {
	if err := checkHeader(buf); err != nil {
		return nil, 0, err
	}
	if len(buf) < headerLen {
		return nil, 0, nil
	}
	n = headerLen + int(be16(buf[4:]))
	if len(buf) < n {
		return nil, 0, nil
	}
	return ADU(buf[:n:n]), n, nil
}

// AppendADU appends a Modbus TCP ADU (protocol id 0) carrying pdu to dst. It
// panics if pdu is empty or longer than MaxPDULen: putting such a frame on the
// wire would desynchronise the peer, and no valid input leads there.
func AppendADU(dst []byte, txid uint16, unit byte, pdu []byte) []byte {
	if len(pdu) == 0 || len(pdu) > MaxPDULen {
		panic("modbus: AppendADU: PDU length not in 1..253")
	}
	l := 1 + len(pdu)
	dst = append(dst, byte(txid>>8), byte(txid), 0, 0, byte(l>>8), byte(l), unit)
	return append(dst, pdu...)
}

// AppendException appends a Modbus TCP exception response ADU to dst: function
// code fc|0x80 and the exception code.
func AppendException(dst []byte, txid uint16, unit, fc, code byte) []byte {
	return append(dst, byte(txid>>8), byte(txid), 0, 0, 0, 3, unit, fc|0x80, code)
}
