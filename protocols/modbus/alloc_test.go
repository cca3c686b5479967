package modbus

import (
	"testing"
)

// exchange is one request/response pair as it crosses the relay.
type exchange struct {
	req  []byte // request ADU
	resp []byte // response PDU
}

// hotMix is the mix of the allocation test and the benchmarks: the common
// reads and writes, including the multi-register and read/write forms.
var hotMix = []exchange{
	{AppendADU(nil, 1, 1, pduReadHolding), respReadHolding},
	{AppendADU(nil, 2, 1, pduWriteRegister), pduWriteRegister},
	{AppendADU(nil, 3, 1, pduWriteRegisters), h("10 00 01 00 02")},
	{AppendADU(nil, 4, 1, pduReadWrite), respReadWrite},
	{AppendADU(nil, 5, 1, pduWriteCoils), h("0F 00 13 00 0A")},
}

// hotStream is hotMix's requests pipelined in one buffer.
var hotStream = func() []byte {
	var b []byte
	for _, x := range hotMix {
		b = append(b, x.req...)
	}
	return b
}()

// decodeStream splits, parses, classifies and checks every exchange of the
// mix, as the relay does per request.
func decodeStream(tb testing.TB, req *Request) {
	buf := hotStream
	for i := 0; len(buf) > 0; i++ {
		frame, n, err := SplitFrame(buf)
		if err != nil || n == 0 {
			tb.Fatalf("SplitFrame: %d, %v", n, err)
		}
		buf = buf[n:]
		if err := ParseRequest(frame.Unit(), frame.PDU(), req); err != nil {
			tb.Fatalf("ParseRequest: %v", err)
		}
		if Classify(req.Func, req.Sub) != req.Class {
			tb.Fatal("Classify disagrees")
		}
		if err := CheckResponse(req, hotMix[i].resp); err != nil {
			tb.Fatalf("CheckResponse: %v", err)
		}
	}
}

func TestZeroAlloc(t *testing.T) {
	var req Request
	allocs := testing.AllocsPerRun(1000, func() { decodeStream(t, &req) })
	if allocs != 0 {
		t.Fatalf("SplitFrame+ParseRequest+Classify+CheckResponse allocate %v times per run; want 0", allocs)
	}
}

func BenchmarkSplitParse(b *testing.B) {
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(hotStream)))
	for b.Loop() {
		buf := hotStream
		for len(buf) > 0 {
			frame, n, err := SplitFrame(buf)
			if err != nil || n == 0 {
				b.Fatal(err)
			}
			buf = buf[n:]
			if err := ParseRequest(frame.Unit(), frame.PDU(), &req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hotMix)), "ns/frame")
}

func BenchmarkSplitParseCheck(b *testing.B) {
	var req Request
	b.ReportAllocs()
	for b.Loop() {
		decodeStream(b, &req)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hotMix)), "ns/exchange")
}
