package modbussim

import (
	"bytes"
	"context"
	"testing"
)

var seedPDUs = []string{
	"03 0000 0004", "01 0000 0010", "02 0000 0008", "04 0000 0009", "05 0000 ff00", "06 0064 1234",
	"0f 0000 0003 01 05", "10 0064 0002 04 0001 0002", "16 0000 00f2 0025", "17 0000 0002 0064 0001 02 abcd",
	"08 0000 a537", "08 0004 0000", "08 0001 0000", "11", "2b 0e 01 00", "2b 0e 04 50",
	"14 07 06 0004 0001 0002", "15 0d 06 0004 0007 0003 0102 0304 0506", "5a 00 10", "83 0000 0001",
}

// FuzzRequest: any PDU to any unit gets either no answer or one well-formed
// response for the same function code.
func FuzzRequest(f *testing.F) {
	for _, s := range seedPDUs {
		f.Add(byte(1), unhex(f, s))
	}
	p := newPLC(f, allModels)
	f.Fuzz(func(t *testing.T, unit byte, req []byte) {
		if len(req) > maxPDU {
			return
		}
		resp := make([]byte, maxPDU)
		out := p.request(context.Background(), unit, req, resp, viaTCP)
		if !out.reply {
			return
		}
		if out.n < 2 || out.n > maxPDU {
			t.Fatalf("response length %d", out.n)
		}
		if resp[0]&0x7F != req[0]&0x7F {
			t.Fatalf("response function %#x to request %#x", resp[0], req[0])
		}
		if resp[0]&0x80 != 0 && out.n != 2 {
			t.Fatalf("exception response of %d bytes", out.n)
		}
	})
}

// FuzzRTUFraming: a byte stream gives the same answers whether it arrives
// in one read or in two.
func FuzzRTUFraming(f *testing.F) {
	for _, s := range seedPDUs {
		frame := rtuADU(1, unhex(f, s))
		f.Add(append(frame, rtuADU(2, unhex(f, "03 0000 0001"))...), uint8(3))
		f.Add(frame, uint8(len(frame)/2))
	}
	f.Add([]byte{1, 3, 0, 0, 0, 1, 0, 0}, uint8(4)) // bad CRC
	run := func(t *testing.T, chunks ...[]byte) []byte {
		var out bytes.Buffer
		l := rtuLine{p: newPLC(t, allModels), ctx: context.Background(), w: &out, gap: minGap}
		for _, c := range chunks {
			if err := l.input(c, l.last); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.silence(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		if len(stream) > 2*maxRTU {
			return
		}
		k := min(int(cut), len(stream))
		whole := run(t, stream)
		split := run(t, stream[:k], stream[k:])
		if !bytes.Equal(whole, split) {
			t.Fatalf("one read gave % x, two reads % x", whole, split)
		}
	})
}
