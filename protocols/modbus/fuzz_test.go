package modbus

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
)

// seedPairs are the spec's request/response examples (application protocol
// spec V1.1b3, section 6), the seeds of every fuzz test here.
var seedPairs = [][2][]byte{
	{pduReadCoils, respReadCoils},
	{pduReadDiscrete, respReadDiscrete},
	{pduReadHolding, respReadHolding},
	{pduReadInput, respReadInput},
	{pduWriteCoil, pduWriteCoil},
	{pduWriteRegister, pduWriteRegister},
	{pduExceptionStatus, h("07 6D")},
	{pduDiagEcho, pduDiagEcho},
	{pduCommEventCounter, h("0B FF FF 01 08")},
	{pduCommEventLog, h("0C 08 00 00 01 08 01 21 20 00")},
	{pduWriteCoils, h("0F 00 13 00 0A")},
	{pduWriteRegisters, h("10 00 01 00 02")},
	{pduReportServerID, h("11 03 01 FF 00")},
	{pduReadFile, respReadFile},
	{pduWriteFile, pduWriteFile},
	{pduMaskWrite, pduMaskWrite},
	{pduReadWrite, respReadWrite},
	{pduReadFIFO, respReadFIFO},
	{pduReadDeviceID, respDeviceID},
	{pduUMASInfo, h("5A 00 FE 01 02")},
	{h("5A 01 40 FF 00"), h("5A 01 FE")},
	{h("08 00 0B 00 00"), h("08 00 0B 01 02")},
	{pduReadHolding, h("83 02")},
	{pduWriteRegisters, h("90 0B")},
}

// splitAll splits data into frames as one buffer: the frames found, the
// bytes left waiting for more, and the framing error that stopped it, if any.
func splitAll(data []byte) (frames [][]byte, rest int, err error) {
	for {
		frame, n, err := SplitFrame(data)
		if err != nil {
			return frames, len(data), err
		}
		if n == 0 {
			return frames, len(data), nil
		}
		frames = append(frames, frame)
		data = data[n:]
	}
}

// splitChunked feeds data to SplitFrame in random chunk sizes, as reads
// from a socket deliver it.
func splitChunked(data []byte, rng *rand.Rand) (frames [][]byte, rest int, err error) {
	var buf []byte
	for off := 0; off < len(data); {
		k := 1 + rng.IntN(min(len(data)-off, MaxADULen+10))
		buf = append(buf, data[off:off+k]...)
		off += k
		for {
			frame, n, err := SplitFrame(buf)
			if err != nil {
				return frames, len(buf), err
			}
			if n == 0 {
				break
			}
			frames = append(frames, bytes.Clone(frame))
			buf = buf[n:]
		}
	}
	return frames, len(buf), nil
}

func FuzzSplitFrame(f *testing.F) {
	var stream []byte
	for i, p := range seedPairs {
		req := AppendADU(nil, uint16(i), 1, p[0])
		f.Add(req, uint64(i))
		f.Add(AppendADU(nil, uint16(i), 1, p[1]), uint64(i))
		stream = append(stream, req...)
	}
	f.Add(stream, uint64(1))
	f.Add(cat(stream[:40], h("00 01 00 07 00 06 11 03 00 6B 00 03")), uint64(2)) // bad protocol id mid-stream
	f.Add(cat(stream[:40], h("00 01 00 00 00 01 11")), uint64(3))                // length 1 mid-stream
	f.Add(cat(stream[:40], h("00 01 00 00 00 FF")), uint64(4))                   // length 255
	f.Add(stream[:len(stream)-3], uint64(5))                                     // last frame incomplete

	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		frames, rest, err := splitAll(data)
		cFrames, cRest, cErr := splitChunked(data, rand.New(rand.NewPCG(seed, seed>>32)))
		if err != cErr || (err == nil && rest != cRest) || len(frames) != len(cFrames) {
			t.Fatalf("one buffer: %d frames, %d left, %v; chunked: %d frames, %d left, %v",
				len(frames), rest, err, len(cFrames), cRest, cErr)
		}
		if err != nil && !IsFraming(err) {
			t.Fatalf("SplitFrame error %v is not a framing error", err)
		}
		for i, fr := range frames {
			if !bytes.Equal(fr, cFrames[i]) {
				t.Fatalf("frame %d: one buffer %x, chunked %x", i, fr, cFrames[i])
			}
			a := ADU(fr)
			if err := a.Validate(); err != nil {
				t.Fatalf("frame %d %x: Validate() = %v", i, fr, err)
			}
			if got := AppendADU(nil, a.TxID(), a.Unit(), a.PDU()); !bytes.Equal(got, fr) {
				t.Fatalf("round trip of %x gave %x", fr, got)
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, p := range seedPairs {
		f.Add(byte(1), p[0])
	}
	f.Add(byte(0), writeRegistersPDU(0xFF85, 123, 246))
	f.Add(byte(255), writeCoilsPDU(0xFFFF, 1, 1))
	f.Add(byte(1), h("03 FF FF 00 02"))

	f.Fuzz(func(t *testing.T, unit byte, pdu []byte) {
		var req Request
		err := ParseRequest(unit, pdu, &req)
		if req.Unit != unit || !bytes.Equal(req.PDU, pdu) {
			t.Fatalf("Unit/PDU not kept: %+v", req)
		}
		if err != nil {
			if IsFraming(err) {
				t.Fatalf("request error %v is a framing error", err)
			}
			if c := ExceptionFor(err); c < ExIllegalFunction || c > ExIllegalDataValue {
				t.Fatalf("ExceptionFor(%v) = %#x", err, c)
			}
			if req.Class != opclass.Unknown || req.Read.Count != 0 || req.Write.Count != 0 || req.Values.Len() != 0 {
				t.Fatalf("req on error %v = %+v", err, req)
			}
			return
		}
		for _, r := range []Range{req.Read, req.Write} {
			if r.End() > 0xFFFF {
				t.Fatalf("range %+v wraps past 0xFFFF", r)
			}
			if (r.Count == 0) != (r.Table == NoTable) {
				t.Fatalf("range %+v: table and count disagree", r)
			}
		}
		if req.Read.Count > maxReadBits || req.Write.Count > maxWriteBits {
			t.Fatalf("quantity over the limits: %+v", req)
		}
		switch n := req.Values.Len(); {
		case req.Masked:
			if n != 0 || req.Write.Count != 1 {
				t.Fatalf("masked write: %d values, %+v", n, req.Write)
			}
		case n != int(req.Write.Count):
			t.Fatalf("Values.Len() = %d; Write.Count = %d", n, req.Write.Count)
		}
		for i := 0; i < req.Values.Len(); i++ {
			if v := req.Values.At(i); req.Values.Coils() && v > 1 {
				t.Fatalf("coil value %d", v)
			}
		}
		if req.Class != Classify(req.Func, req.Sub) {
			t.Fatalf("Class %v, Classify %v", req.Class, Classify(req.Func, req.Sub))
		}
		if req.Write.Count != 0 && req.Class != opclass.Write {
			t.Fatalf("writes %+v but class %v", req.Write, req.Class)
		}
		// The same PDU through a frame decodes the same.
		frame, _, err := SplitFrame(AppendADU(nil, 7, unit, pdu))
		var again Request
		if err != nil || ParseRequest(frame.Unit(), frame.PDU(), &again) != nil ||
			again.Class != req.Class || again.Read != req.Read || again.Write != req.Write || again.Sub != req.Sub {
			t.Fatalf("framed decode differs: %+v vs %+v (%v)", again, req, err)
		}
	})
}

// validResponse builds a response to req that CheckResponse must accept, or
// nil when the request's answer cannot be built without more knowledge.
func validResponse(req *Request) []byte {
	fc := req.Func
	switch fc {
	case FuncReadCoils, FuncReadDiscreteInputs:
		n := (int(req.Read.Count) + 7) / 8
		return cat([]byte{fc, byte(n)}, make([]byte, n))
	case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncReadWriteMultipleRegisters:
		n := 2 * int(req.Read.Count)
		return cat([]byte{fc, byte(n)}, make([]byte, n))
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		return bytes.Clone(req.PDU[:5])
	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncMaskWriteRegister, FuncWriteFileRecord, FuncDiagnostics:
		return bytes.Clone(req.PDU)
	case FuncReadExceptionStatus:
		return []byte{fc, 0}
	case FuncGetCommEventCounter:
		return []byte{fc, 0, 0, 0, 0}
	case FuncGetCommEventLog:
		return []byte{fc, 6, 0, 0, 0, 0, 0, 0}
	case FuncReportServerID:
		return []byte{fc, 1, 0}
	case FuncReadFileRecord:
		// one sub-response per sub-request, record length words each
		b := []byte{fc, 0}
		for sr := req.PDU[2:]; len(sr) > 0; sr = sr[fileSubReqLen:] {
			n := 2 * int(be16(sr[5:]))
			if 1+n > 255 {
				return nil
			}
			b = append(b, byte(1+n), fileRefType)
			b = append(b, make([]byte, n)...)
		}
		if len(b)-2 > 255 || len(b) > MaxPDULen {
			return nil
		}
		b[1] = byte(len(b) - 2)
		return b
	case FuncReadFIFOQueue:
		return []byte{fc, 0, 4, 0, 1, 0x12, 0x34}
	case FuncEncapsulatedInterface:
		if req.Sub == MEIReadDeviceID {
			return []byte{fc, 0x0E, req.PDU[2], 0x01, 0, 0, 1, 0, 1, 'X'}
		}
		return []byte{fc, byte(req.Sub)}
	case FuncUMAS:
		return []byte{fc, req.PDU[1], 0xFE}
	}
	return []byte{fc}
}

func FuzzCheckResponse(f *testing.F) {
	for _, p := range seedPairs {
		f.Add(p[0], p[1])
	}
	f.Add(pduReadHolding, h("03 04 00 00 00 00"))
	f.Add(pduWriteCoil, h("05 00 AC 00 00"))
	f.Add(pduReadDeviceID, deviceIDResponse(9, "a"))

	f.Fuzz(func(t *testing.T, reqPDU, resp []byte) {
		var req Request
		if ParseRequest(1, reqPDU, &req) != nil {
			return
		}
		if err := CheckResponse(&req, resp); err == nil {
			// Accepted: the function code fits, or it is a well-formed exception.
			if _, exc := ExceptionOf(resp); resp[0] != req.Func && !(exc && resp[0] == req.Func|0x80) {
				t.Fatalf("accepted %x for request %x", resp, reqPDU)
			}
			switch req.Func {
			case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncReadWriteMultipleRegisters:
				if resp[0] == req.Func && len(resp) != 2+2*int(req.Read.Count) {
					t.Fatalf("accepted %d-byte answer to read of %d registers", len(resp), req.Read.Count)
				}
			}
		} else if IsFraming(err) || ExceptionFor(err) != ExGatewayTargetFailed {
			t.Fatalf("response error %v: framing %v, exception %#x", err, IsFraming(err), ExceptionFor(err))
		}
		if good := validResponse(&req); good != nil {
			if err := CheckResponse(&req, good); err != nil {
				t.Fatalf("valid response %x to %x rejected: %v", good, reqPDU, err)
			}
			// Another function code is never accepted.
			good[0] ^= 0x01
			if err := CheckResponse(&req, good); err == nil {
				t.Fatalf("response %x with wrong function code accepted for %x", good, reqPDU)
			}
		}
		if err := CheckResponse(&req, []byte{req.Func | 0x80, ExServerBusy}); err != nil {
			t.Fatalf("exception response rejected: %v", err)
		}
	})
}
