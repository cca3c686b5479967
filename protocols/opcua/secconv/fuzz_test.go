package secconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// asError fails unless err is an *Error, the only error the parsers give:
// the terminator needs a status code for every refusal.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

func FuzzParseHello(f *testing.F) {
	f.Add(frame(TypeHello, 'F', helloBody(65535, 65535).str("opc.tcp://127.0.0.1:4840")))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).str("opc.tcp://höst/ä")))
	f.Add(frame(TypeHello, 'F', helloBody(8191, 8192).str("opc.tcp://h")))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).i32(-1)))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).i32(-2)))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).str("\xff")))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).str(strings.Repeat("u", maxEndpointURL+1))))
	f.Add(frame(TypeHello, 'F', helloBody(8192, 8192).u32(100).raw('x')))
	f.Add([]byte("HELF"))

	server := Limits{ReceiveBufferSize: 65536, SendBufferSize: 65536, MaxMessageSize: 1 << 24, MaxChunkCount: 64}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseHeader(b, MinBufferSize); err != nil {
			asError(t, err)
		}
		h, err := ParseHello(b)
		if err != nil {
			asError(t, err)
			return
		}
		u := h.EndpointURL
		if u == "" || len(u) > maxEndpointURL || !utf8.ValidString(u) {
			t.Fatalf("accepted endpoint URL %q", u)
		}
		// The URL is the String right after the five UInt32 fields.
		if int(binary.LittleEndian.Uint32(b[28:])) != len(u) || string(b[32:32+len(u)]) != u {
			t.Fatalf("URL %q is not the input's", u)
		}
		if h.ReceiveBufferSize < MinBufferSize || h.SendBufferSize < MinBufferSize {
			t.Fatalf("accepted buffers %d/%d", h.ReceiveBufferSize, h.SendBufferSize)
		}
		ack := Negotiate(h, server)
		if ack.ReceiveBufferSize > h.SendBufferSize || ack.ReceiveBufferSize > server.ReceiveBufferSize ||
			ack.SendBufferSize > h.ReceiveBufferSize || ack.SendBufferSize > server.SendBufferSize ||
			ack.ReceiveBufferSize < MinBufferSize || ack.SendBufferSize < MinBufferSize {
			t.Fatalf("negotiated %+v from %+v and %+v", ack, h.Limits, server)
		}
	})
}

// chunkSeeds are chunk streams: valid and broken OPN, MSG and CLO chunks,
// interleaved and aborted messages.
func chunkSeeds() [][]byte {
	sym := func(typ string, ct byte, req uint32, body string) []byte {
		return frame(typ, ct, enc(nil).u32(1).u32(1).u32(req).u32(req).raw([]byte(body)...))
	}
	none := func() enc { return enc(nil).str(PolicyNone) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	seq := uint32(0)
	big, _ := AppendMessage(nil, TypeMessage, 1, 1, &seq, 4, bytes.Repeat([]byte("z"), 100), SymmetricOverhead+30, 0)
	return [][]byte{
		opn(0, none().i32(-1).i32(-1), 1, 1, "\x01\x00\xbe\x01"),
		opn(0, none().str("cert").str(strings.Repeat("t", 20)), 1, 1, ""),
		opn(0, enc(nil).str("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256").str("cert").i32(-1), 1, 1, "x"),
		opn(0, none().i32(-2), 1, 1, ""),
		AppendOpenResponse(nil, 5, &seq, 1, []byte("resp")),
		sym(TypeMessage, 'F', 1, "single"),
		cat(sym(TypeMessage, 'C', 1, "a"), sym(TypeMessage, 'C', 2, "x"), sym(TypeMessage, 'F', 1, "b"), sym(TypeMessage, 'F', 2, "y")),
		cat(sym(TypeMessage, 'C', 1, "a"), sym(TypeMessage, 'A', 1, "\x00\x00\xb8\x80"), sym(TypeMessage, 'F', 1, "b")),
		cat(sym(TypeMessage, 'C', 3, "msg"), sym(TypeClose, 'F', 3, "")),
		big,
		sym(TypeClose, 'C', 1, ""),
		frame(TypeMessage, 'F', enc(nil).u32(1)),
		[]byte("MSGF\x08\x00\x00\x00"),
	}
}

func FuzzParseChunk(f *testing.F) {
	for _, s := range chunkSeeds() {
		f.Add(s, uint16(0), uint8(0), uint8(0))
		f.Add(s, uint16(5), uint8(2), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, maxSize uint16, maxChunks, maxPending uint8) {
		// The whole input as one chunk, then as a stream of chunks into
		// an Assembler with the fuzzed limits.
		if _, err := ParseChunk(b); err != nil {
			asError(t, err)
		}
		a := Assembler{MaxMessageSize: uint32(maxSize), MaxChunkCount: uint32(maxChunks), MaxPending: int(maxPending)}
		limit := a.MaxPending
		if limit == 0 {
			limit = 16
		}
		for len(b) >= HeaderSize {
			h, err := ParseHeader(b, math.MaxUint32)
			if err != nil {
				asError(t, err)
				return
			}
			if int(h.Size) > len(b) {
				return
			}
			in := b[:h.Size]
			b = b[h.Size:]
			c, err := ParseChunk(in)
			if err != nil {
				asError(t, err)
				continue
			}
			checkChunk(t, in, &c)

			body, err := a.Add(&c)
			switch {
			case err == nil:
			case errors.Is(err, ErrAborted):
				if c.Chunk != ChunkAbort {
					t.Fatalf("%c chunk aborted", c.Chunk)
				}
			default:
				if code := asError(t, err).Code; code != BadRequestTooLarge && code != BadTCPMessageTooLarge {
					t.Fatalf("Add: unexpected code 0x%08X", code)
				}
			}
			if body != nil {
				if err != nil || c.Chunk != ChunkFinal {
					t.Fatalf("body of %d bytes with %c chunk and error %v", len(body), c.Chunk, err)
				}
				if a.MaxMessageSize != 0 && len(body) > int(a.MaxMessageSize) {
					t.Fatalf("body of %d bytes over MaxMessageSize %d", len(body), a.MaxMessageSize)
				}
				if len(c.Body) > 0 && len(body) > 0 && &body[len(body)-1] == &c.Body[len(c.Body)-1] {
					t.Fatal("body aliases the input")
				}
			} else if err == nil && c.Chunk == ChunkFinal {
				t.Fatal("final chunk gave neither body nor error")
			}
			if len(a.pending) > limit {
				t.Fatalf("%d messages pending, limit %d", len(a.pending), limit)
			}
			for id, p := range a.pending {
				if a.MaxMessageSize != 0 && len(p.body) > int(a.MaxMessageSize) ||
					a.MaxChunkCount != 0 && p.chunks > a.MaxChunkCount {
					t.Fatalf("request %d pending over the limits: %d bytes, %d chunks", id, len(p.body), p.chunks)
				}
			}
		}
	})
}

// checkChunk holds the invariants of a chunk ParseChunk accepted from in.
func checkChunk(t *testing.T, in []byte, c *Chunk) {
	t.Helper()
	if int(c.Size) != len(in) {
		t.Fatalf("size %d, input %d", c.Size, len(in))
	}
	// The body is the input's tail, after at least the fixed headers.
	if len(c.Body) > len(in)-SymmetricOverhead {
		t.Fatalf("body of %d bytes in a chunk of %d", len(c.Body), len(in))
	}
	if len(c.Body) > 0 && &c.Body[len(c.Body)-1] != &in[len(in)-1] {
		t.Fatal("body is not the tail of the input")
	}
	switch c.Type {
	case TypeOpen:
		if c.PolicyURI != PolicyNone {
			t.Fatalf("OPN of policy %q accepted", c.PolicyURI)
		}
		if len(c.SenderCertificate) > maxCertificate || len(c.ReceiverThumbprint) > 64 {
			t.Fatalf("certificate %d, thumbprint %d bytes", len(c.SenderCertificate), len(c.ReceiverThumbprint))
		}
		if len(c.Body) > len(in)-(HeaderSize+4+4+len(PolicyNone)+4+4+8) {
			t.Fatalf("OPN body of %d bytes in a chunk of %d", len(c.Body), len(in))
		}
		if c.Chunk != ChunkFinal {
			t.Fatalf("OPN chunk type %c", c.Chunk)
		}
	case TypeClose:
		if c.Chunk != ChunkFinal {
			t.Fatalf("CLO chunk type %c", c.Chunk)
		}
	case TypeMessage:
	default:
		t.Fatalf("chunk of type %q", c.Type)
	}
}
