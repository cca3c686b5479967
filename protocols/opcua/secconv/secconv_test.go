package secconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
	"github.com/gopcua/opcua/uasc"
)

// enc builds wire bytes field by field, independently of the code under
// test, so that the tests check the layout of OPC 10000-6 and not the
// package against itself.
type enc []byte

func (e enc) u32(v uint32) enc { return binary.LittleEndian.AppendUint32(e, v) }
func (e enc) i32(v int32) enc  { return e.u32(uint32(v)) }
func (e enc) raw(b ...byte) enc {
	return append(e, b...)
}
func (e enc) str(s string) enc { return append(e.u32(uint32(len(s))), s...) }

// frame prefixes body with a message header whose size is right.
func frame(typ string, ct byte, body []byte) []byte {
	b := append([]byte(typ), ct)
	b = binary.LittleEndian.AppendUint32(b, uint32(HeaderSize+len(body)))
	return append(b, body...)
}

// wantCode fails unless err is an *Error with the given status code.
func wantCode(t *testing.T, err error, code uint32) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error 0x%08X", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = 0x%08X (%s), want 0x%08X", e.Code, e.Reason, code)
	}
}

func TestParseHeader(t *testing.T) {
	hdr := func(typ string, ct byte, size uint32) []byte {
		return binary.LittleEndian.AppendUint32(append([]byte(typ), ct), size)
	}
	const max = 8192
	tests := []struct {
		name string
		in   []byte
		code uint32 // 0: no error
	}{
		{"HEL", hdr("HEL", 'F', 32), 0},
		{"ACK", hdr("ACK", 'F', 28), 0},
		{"ERR", hdr("ERR", 'F', 16), 0},
		{"RHE", hdr("RHE", 'F', 16), 0},
		{"OPN", hdr("OPN", 'F', 100), 0},
		{"MSG F", hdr("MSG", 'F', 100), 0},
		{"MSG C", hdr("MSG", 'C', 100), 0},
		{"MSG A", hdr("MSG", 'A', 100), 0},
		{"CLO", hdr("CLO", 'F', 24), 0},
		{"header only", hdr("MSG", 'F', HeaderSize), 0},
		{"exactly max", hdr("MSG", 'F', max), 0},
		{"longer input", append(hdr("MSG", 'F', 9), 0xAA), 0},

		{"unknown type", hdr("XYZ", 'F', 16), BadTCPMessageTypeInvalid},
		{"lower case type", hdr("msg", 'F', 16), BadTCPMessageTypeInvalid},
		{"zero type", hdr("\x00\x00\x00", 'F', 16), BadTCPMessageTypeInvalid},
		{"chunk type X", hdr("MSG", 'X', 16), BadTCPMessageTypeInvalid},
		{"chunk type f", hdr("MSG", 'f', 16), BadTCPMessageTypeInvalid},
		{"chunk type 0", hdr("MSG", 0, 16), BadTCPMessageTypeInvalid},
		{"HEL with X", hdr("HEL", 'X', 32), BadTCPMessageTypeInvalid},

		// Only MSG may be chunked (OPC 10000-6, Table 53: "always 'F'
		// for other MessageTypes"; Table 65 for the UACP types).
		{"HEL C", hdr("HEL", 'C', 32), BadTCPMessageTypeInvalid},
		{"HEL A", hdr("HEL", 'A', 32), BadTCPMessageTypeInvalid},
		{"ACK C", hdr("ACK", 'C', 28), BadTCPMessageTypeInvalid},
		{"ACK A", hdr("ACK", 'A', 28), BadTCPMessageTypeInvalid},
		{"ERR C", hdr("ERR", 'C', 16), BadTCPMessageTypeInvalid},
		{"ERR A", hdr("ERR", 'A', 16), BadTCPMessageTypeInvalid},
		{"RHE C", hdr("RHE", 'C', 16), BadTCPMessageTypeInvalid},
		{"RHE A", hdr("RHE", 'A', 16), BadTCPMessageTypeInvalid},
		{"OPN C", hdr("OPN", 'C', 100), BadTCPMessageTypeInvalid},
		{"OPN A", hdr("OPN", 'A', 100), BadTCPMessageTypeInvalid},
		{"CLO C", hdr("CLO", 'C', 24), BadTCPMessageTypeInvalid},
		{"CLO A", hdr("CLO", 'A', 24), BadTCPMessageTypeInvalid},

		{"size 0", hdr("MSG", 'F', 0), BadDecodingError},
		{"size 7", hdr("MSG", 'F', 7), BadDecodingError},
		{"size max+1", hdr("MSG", 'F', max+1), BadTCPMessageTooLarge},
		{"size uint32 max", hdr("HEL", 'F', math.MaxUint32), BadTCPMessageTooLarge},

		{"empty input", nil, BadDecodingError},
		{"7 bytes", hdr("MSG", 'F', 100)[:7], BadDecodingError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader(tt.in, max)
			if tt.code != 0 {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Header{Type: string(tt.in[:3]), Chunk: tt.in[3], Size: binary.LittleEndian.Uint32(tt.in[4:])}
			if h != want {
				t.Fatalf("header = %+v, want %+v", h, want)
			}
		})
	}
}

// helloBody is the body of a Hello up to, not including, the EndpointUrl.
func helloBody(rcv, snd uint32) enc {
	return enc(nil).u32(0).u32(rcv).u32(snd).u32(1 << 24).u32(64)
}

func TestParseHello(t *testing.T) {
	const url = "opc.tcp://gw.example:4840/brana"
	good := frame(TypeHello, 'F', enc(nil).u32(0).u32(65536).u32(32768).u32(1<<24).u32(64).str(url))

	t.Run("good", func(t *testing.T) {
		h, err := ParseHello(good)
		if err != nil {
			t.Fatal(err)
		}
		want := Hello{Limits: Limits{ReceiveBufferSize: 65536, SendBufferSize: 32768, MaxMessageSize: 1 << 24, MaxChunkCount: 64}, EndpointURL: url}
		if h != want {
			t.Fatalf("hello = %+v, want %+v", h, want)
		}
	})

	// Every field, the URL's length and its bytes, cut anywhere.
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(good); n++ {
			_, err := ParseHello(good[:n])
			var e *Error
			if !errors.As(err, &e) || e.Code != BadDecodingError {
				t.Errorf("cut at %d: err = %v, want BadDecodingError", n, err)
			}
		}
	})

	tests := []struct {
		name string
		body enc
		code uint32
	}{
		{"null URL", helloBody(8192, 8192).i32(-1), BadTCPEndpointURLInvalid},
		{"empty URL", helloBody(8192, 8192).u32(0), BadTCPEndpointURLInvalid},
		{"negative URL length", helloBody(8192, 8192).i32(-2), BadDecodingError},
		{"URL of 4096 bytes", helloBody(8192, 8192).str(strings.Repeat("u", maxEndpointURL)), 0},
		{"URL of 4097 bytes", helloBody(8192, 8192).str(strings.Repeat("u", maxEndpointURL+1)), BadTCPEndpointURLInvalid},
		{"URL of 64 KiB", helloBody(8192, 8192).str(strings.Repeat("u", 64<<10)), BadTCPEndpointURLInvalid},
		{"URL length beyond the input", helloBody(8192, 8192).i32(math.MaxInt32).raw('o', 'p', 'c'), BadDecodingError},
		{"non-UTF-8 URL", helloBody(8192, 8192).str("opc.tcp://\xff\xfe/"), BadTCPEndpointURLInvalid},
		{"truncated UTF-8 URL", helloBody(8192, 8192).str("opc.tcp://h/\xc3"), BadTCPEndpointURLInvalid},
		{"UTF-8 URL", helloBody(8192, 8192).str("opc.tcp://höst/ä"), 0},
		{"buffers at the minimum", helloBody(MinBufferSize, MinBufferSize).str("opc.tcp://h"), 0},
		{"receive buffer below 8192", helloBody(MinBufferSize-1, 65536).str("opc.tcp://h"), BadTCPInternalError},
		{"send buffer below 8192", helloBody(65536, MinBufferSize-1).str("opc.tcp://h"), BadTCPInternalError},
		{"zero buffers", helloBody(0, 0).str("opc.tcp://h"), BadTCPInternalError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHello(frame(TypeHello, 'F', tt.body))
			if tt.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestNegotiate(t *testing.T) {
	server := Limits{ProtocolVersion: 7, ReceiveBufferSize: 65536, SendBufferSize: 65536, MaxMessageSize: 1 << 22, MaxChunkCount: 32}
	tests := []struct {
		name     string
		rcv, snd uint32 // the client's
		want     Limits
	}{
		{"client larger", 1 << 20, 1 << 20, Limits{0, 65536, 65536, 1 << 22, 32}},
		{"client smaller", 8192, 16384, Limits{0, 16384, 8192, 1 << 22, 32}},
		{"client equal", 65536, 65536, Limits{0, 65536, 65536, 1 << 22, 32}},
		// The server's receive buffer clamps to what the client sends
		// and its send buffer to what the client receives, not
		// the other way around.
		{"crossed", 8192, 1 << 20, Limits{0, 65536, 8192, 1 << 22, 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hello{Limits: Limits{ProtocolVersion: 9, ReceiveBufferSize: tt.rcv, SendBufferSize: tt.snd, MaxMessageSize: 100, MaxChunkCount: 1}}
			got := Negotiate(h, server)
			if got != tt.want {
				t.Fatalf("Negotiate = %+v, want %+v", got, tt.want)
			}
			if got.ReceiveBufferSize > h.SendBufferSize || got.SendBufferSize > h.ReceiveBufferSize {
				t.Fatalf("buffers %+v exceed the client's %+v", got, h.Limits)
			}
		})
	}
}

func TestAppendAcknowledge(t *testing.T) {
	l := Limits{ProtocolVersion: 0, ReceiveBufferSize: 0x10000, SendBufferSize: 0x2000, MaxMessageSize: 0x01000000, MaxChunkCount: 0x40}
	// OPC 10000-6, 7.1.2.4: header, then five UInt32 little-endian.
	want := []byte{
		'A', 'C', 'K', 'F', 0x1C, 0x00, 0x00, 0x00, // 28 bytes in all
		0x00, 0x00, 0x00, 0x00, // ProtocolVersion
		0x00, 0x00, 0x01, 0x00, // ReceiveBufferSize 65536
		0x00, 0x20, 0x00, 0x00, // SendBufferSize 8192
		0x00, 0x00, 0x00, 0x01, // MaxMessageSize 16 MiB
		0x40, 0x00, 0x00, 0x00, // MaxChunkCount 64
	}
	prefix := []byte("pre")
	got := AppendAcknowledge(append([]byte(nil), prefix...), l)
	if !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("ACK =\n% x\nwant\n% x", got, append(prefix, want...))
	}
}

func TestAppendError(t *testing.T) {
	// OPC 10000-6, 7.1.2.5: header, UInt32 Error, String Reason.
	want := []byte{
		'E', 'R', 'R', 'F', 0x13, 0x00, 0x00, 0x00, // 19 bytes in all
		0x00, 0x00, 0x7E, 0x80, // Bad_TcpMessageTypeInvalid
		0x03, 0x00, 0x00, 0x00, 'b', 'a', 'd',
	}
	if got := AppendError(nil, BadTCPMessageTypeInvalid, "bad"); !bytes.Equal(got, want) {
		t.Fatalf("ERR =\n% x\nwant\n% x", got, want)
	}
	wantEmpty := []byte{'E', 'R', 'R', 'F', 0x10, 0, 0, 0, 0x00, 0x00, 0x80, 0x80, 0, 0, 0, 0}
	if got := AppendError(nil, BadTCPMessageTooLarge, ""); !bytes.Equal(got, wantEmpty) {
		t.Fatalf("ERR =\n% x\nwant\n% x", got, wantEmpty)
	}

	tests := []struct {
		name   string
		reason string
		want   string
	}{
		{"4096 bytes kept", strings.Repeat("r", 4096), strings.Repeat("r", 4096)},
		{"4097 bytes cut", strings.Repeat("r", 4097), strings.Repeat("r", 4096)},
		{"5000 bytes cut", strings.Repeat("r", 5000), strings.Repeat("r", 4096)},
		// A two-byte rune across byte 4096 is dropped whole, so that the
		// reason stays UTF-8.
		{"rune across the cut", strings.Repeat("r", 4095) + "é" + "tail", strings.Repeat("r", 4095)},
		{"rune ending at the cut", strings.Repeat("r", 4094) + "é" + "tail", strings.Repeat("r", 4094) + "é"},
		{"four-byte rune across the cut", strings.Repeat("r", 4094) + "😀", strings.Repeat("r", 4094)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendError(nil, BadTCPInternalError, tt.reason)
			h, err := ParseHeader(b, math.MaxUint32)
			if err != nil || h.Type != TypeError || int(h.Size) != len(b) {
				t.Fatalf("header %+v, %v; len %d", h, err, len(b))
			}
			n := binary.LittleEndian.Uint32(b[12:])
			got := string(b[16:])
			if int(n) != len(got) || got != tt.want {
				t.Fatalf("reason length %d, %d bytes, want %d", n, len(got), len(tt.want))
			}
			if !utf8.ValidString(got) {
				t.Fatal("reason is not UTF-8")
			}
		})
	}
}

// opn encodes an OPN chunk body after the channel id: the asymmetric
// security header's fields come raw so that tests may break them.
func opn(channel uint32, sec enc, seq, req uint32, body string) []byte {
	return frame(TypeOpen, 'F', enc(nil).u32(channel).raw(sec...).u32(seq).u32(req).raw([]byte(body)...))
}

func TestParseChunkOpen(t *testing.T) {
	// A function, so that no two cases share (and overwrite) one array.
	none := func() enc { return enc(nil).str(PolicyNone) }
	const b256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"

	t.Run("None", func(t *testing.T) {
		b := opn(0, none().i32(-1).i32(-1), 51, 1, "\x01\x00\xbe\x01body")
		c, err := ParseChunk(b)
		if err != nil {
			t.Fatal(err)
		}
		if c.Type != TypeOpen || c.Chunk != 'F' || int(c.Size) != len(b) || c.ChannelID != 0 ||
			c.PolicyURI != PolicyNone || c.SenderCertificate != nil || c.ReceiverThumbprint != nil ||
			c.SequenceNumber != 51 || c.RequestID != 1 || string(c.Body) != "\x01\x00\xbe\x01body" {
			t.Fatalf("chunk = %+v", c)
		}
	})

	tests := []struct {
		name string
		sec  enc
		code uint32
		cert int // expected certificate length when accepted
	}{
		{"empty certificate and thumbprint", none().u32(0).u32(0), 0, 0},
		{"certificate of 32 KiB", none().str(strings.Repeat("c", maxCertificate)).i32(-1), 0, maxCertificate},
		{"thumbprint of 64 bytes", none().i32(-1).str(strings.Repeat("t", 64)), 0, 0},
		{"certificate over 32 KiB", none().str(strings.Repeat("c", maxCertificate+1)).i32(-1), BadDecodingError, 0},
		{"thumbprint over 64 bytes", none().i32(-1).str(strings.Repeat("t", 65)), BadDecodingError, 0},
		{"negative certificate length", none().i32(-2).i32(-1), BadDecodingError, 0},
		{"negative thumbprint length", none().i32(-1).i32(math.MinInt32), BadDecodingError, 0},
		{"certificate length beyond the chunk", none().i32(1000), BadDecodingError, 0},
		{"negative policy length", enc(nil).i32(-2), BadDecodingError, 0},
		{"policy URI over 1024 bytes", enc(nil).str(strings.Repeat("p", 1025)).i32(-1).i32(-1), BadDecodingError, 0},

		{"Basic256Sha256", enc(nil).str(b256).str("cert").str(strings.Repeat("t", 20)), BadSecurityPolicyRejected, 0},
		// Refused for its policy even where the rest would not parse
		// here: a long certificate chain, or nothing after the URI.
		{"Basic256Sha256 with a 40 KiB chain", enc(nil).str(b256).str(strings.Repeat("c", 40<<10)).str(strings.Repeat("t", 20)), BadSecurityPolicyRejected, 0},
		{"Basic256Sha256 and nothing more", enc(nil).str(b256), BadSecurityPolicyRejected, 0},
		{"null policy", enc(nil).i32(-1).i32(-1).i32(-1), BadSecurityPolicyRejected, 0},
		{"empty policy", enc(nil).u32(0).i32(-1).i32(-1), BadSecurityPolicyRejected, 0},
		{"None with a suffix", enc(nil).str(PolicyNone + "x").i32(-1).i32(-1), BadSecurityPolicyRejected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseChunk(opn(7, tt.sec, 2, 3, "body"))
			if tt.code != 0 {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.SenderCertificate) != tt.cert || c.SequenceNumber != 2 || c.RequestID != 3 || string(c.Body) != "body" {
				t.Fatalf("chunk = %+v", c)
			}
		})
	}

	t.Run("truncated sequence header", func(t *testing.T) {
		full := enc(nil).u32(0).raw(none().i32(-1).i32(-1)...).u32(5).u32(6)
		for n := 4 + len(none()) + 8; n < len(full); n++ {
			_, err := ParseChunk(frame(TypeOpen, 'F', full[:n]))
			wantCode(t, err, BadDecodingError)
		}
	})
}

func TestParseChunkSymmetric(t *testing.T) {
	for _, typ := range []string{TypeMessage, TypeClose} {
		t.Run(typ, func(t *testing.T) {
			b := frame(typ, 'F', enc(nil).u32(9).u32(4).u32(1000).u32(77).raw([]byte("payload")...))
			c, err := ParseChunk(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.Type != typ || c.ChannelID != 9 || c.TokenID != 4 || c.SequenceNumber != 1000 || c.RequestID != 77 ||
				string(c.Body) != "payload" || c.PolicyURI != "" {
				t.Fatalf("chunk = %+v", c)
			}
			// The body aliases the input: no copy per chunk.
			if &c.Body[0] != &b[SymmetricOverhead] {
				t.Fatal("body does not alias the input")
			}

			c, err = ParseChunk(frame(typ, 'F', enc(nil).u32(9).u32(4).u32(1).u32(2)))
			if err != nil || len(c.Body) != 0 {
				t.Fatalf("empty body: %+v, %v", c, err)
			}

			// Cut anywhere in the channel id, token id or sequence header.
			full := enc(nil).u32(9).u32(4).u32(1).u32(2)
			for n := 0; n < len(full); n++ {
				_, err := ParseChunk(frame(typ, 'F', full[:n]))
				wantCode(t, err, BadDecodingError)
			}
		})
	}

	for _, ct := range []byte{'C', 'A'} {
		c, err := ParseChunk(frame(TypeMessage, ct, enc(nil).u32(1).u32(1).u32(1).u32(1).raw('x')))
		if err != nil || c.Chunk != ct {
			t.Fatalf("MSG %c: %+v, %v", ct, c, err)
		}
		_, err = ParseChunk(frame(TypeClose, ct, enc(nil).u32(1).u32(1).u32(1).u32(1)))
		wantCode(t, err, BadTCPMessageTypeInvalid)
	}

	for _, typ := range []string{TypeHello, TypeAcknowledge, TypeError, TypeReverseHEL} {
		_, err := ParseChunk(frame(typ, 'F', enc(nil).u32(1).u32(1).u32(1).u32(1)))
		wantCode(t, err, BadTCPMessageTypeInvalid)
	}
}

func TestParseChunkSizeMismatch(t *testing.T) {
	b := frame(TypeMessage, 'F', enc(nil).u32(1).u32(1).u32(1).u32(1).raw([]byte("body")...))
	_, err := ParseChunk(b[:len(b)-1])
	wantCode(t, err, BadDecodingError)
	_, err = ParseChunk(append(b, 0))
	wantCode(t, err, BadDecodingError)
	_, err = ParseChunk(b[:7])
	wantCode(t, err, BadDecodingError)
}

// splitChunks parses every chunk AppendMessage wrote, checking each
// against the peer's receive buffer.
func splitChunks(t *testing.T, b []byte, maxChunk uint32) []Chunk {
	t.Helper()
	var cs []Chunk
	for len(b) > 0 {
		h, err := ParseHeader(b, maxChunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", len(cs), err)
		}
		c, err := ParseChunk(b[:h.Size])
		if err != nil {
			t.Fatalf("chunk %d: %v", len(cs), err)
		}
		cs = append(cs, c)
		b = b[h.Size:]
	}
	return cs
}

func TestAppendMessageRoundTrip(t *testing.T) {
	const maxChunk = 8192
	per := maxChunk - SymmetricOverhead
	for _, typ := range []string{TypeMessage, TypeClose} {
		for _, size := range []int{0, 1, per - 1, per, per + 1, 2 * per, 5*per + 17, 1 << 20} {
			if typ != TypeMessage && size > per {
				continue // only MSG is chunked; see TestAppendMessageLimits
			}
			body := make([]byte, size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			prefix := []byte("earlier bytes")
			seq := uint32(41)
			out, err := AppendMessage(append([]byte(nil), prefix...), typ, 9, 4, &seq, 77, body, maxChunk, 0)
			if err != nil {
				t.Fatalf("%s %d: %v", typ, size, err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("%s %d: dst prefix lost", typ, size)
			}
			cs := splitChunks(t, out[len(prefix):], maxChunk)
			n := max(1, (size+per-1)/per)
			if len(cs) != n {
				t.Fatalf("%s %d: %d chunks, want %d", typ, size, len(cs), n)
			}
			if seq != 41+uint32(n) {
				t.Fatalf("%s %d: seq = %d after %d chunks from 41", typ, size, seq, n)
			}
			var a Assembler
			for i, c := range cs {
				if c.Type != typ || c.ChannelID != 9 || c.TokenID != 4 || c.RequestID != 77 {
					t.Fatalf("%s %d: chunk %d = %+v", typ, size, i, c.Header)
				}
				if c.SequenceNumber != 42+uint32(i) {
					t.Fatalf("%s %d: chunk %d has sequence %d, want %d", typ, size, i, c.SequenceNumber, 42+i)
				}
				final := i == n-1
				if final != (c.Chunk == ChunkFinal) || !final && (c.Chunk != ChunkIntermediate || c.Size != maxChunk) {
					t.Fatalf("%s %d: chunk %d of %d is %c of %d bytes", typ, size, i, n, c.Chunk, c.Size)
				}
				got, err := a.Add(&c)
				if err != nil {
					t.Fatal(err)
				}
				// A final chunk gives a body even when it is empty.
				if final != (got != nil) {
					t.Fatalf("%s %d: chunk %d gave a body of %d", typ, size, i, len(got))
				}
				if final && !bytes.Equal(got, body) {
					t.Fatalf("%s %d: reassembled %d bytes differ", typ, size, len(got))
				}
			}
		}
	}
}

func TestAppendMessageSequenceWraps(t *testing.T) {
	seq := uint32(wrapAfter)
	out, err := AppendMessage(nil, TypeMessage, 1, 1, &seq, 1, make([]byte, 3), SymmetricOverhead+1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cs := splitChunks(t, out, SymmetricOverhead+1)
	var got []uint32
	for _, c := range cs {
		got = append(got, c.SequenceNumber)
	}
	if want := []uint32{wrapAfter + 1, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("sequence numbers %v, want %v", got, want)
	}
	last := uint32(wrapAfter)
	for _, c := range cs {
		if err := CheckSequence(last, c.SequenceNumber); err != nil {
			t.Fatal(err)
		}
		last = c.SequenceNumber
	}
}

func TestAppendMessageLimits(t *testing.T) {
	const maxChunk = 1024
	per := maxChunk - SymmetricOverhead
	body := make([]byte, 3*per+1) // four chunks

	for _, maxChunks := range []uint32{0, 4, 5} {
		seq := uint32(0)
		if _, err := AppendMessage(nil, TypeMessage, 1, 1, &seq, 1, body, maxChunk, maxChunks); err != nil || seq != 4 {
			t.Fatalf("max %d chunks: seq %d, %v", maxChunks, seq, err)
		}
	}
	for _, maxChunks := range []uint32{1, 3} {
		seq := uint32(10)
		dst := []byte("keep")
		out, err := AppendMessage(dst, TypeMessage, 1, 1, &seq, 1, body, maxChunk, maxChunks)
		wantCode(t, err, BadTCPMessageTooLarge)
		if string(out) != "keep" || seq != 10 {
			t.Fatalf("max %d chunks: failed call wrote %q, seq %d", maxChunks, out, seq)
		}
	}

	// Only MSG may be chunked: a CLO must fit one chunk.
	seq := uint32(10)
	if _, err := AppendMessage(nil, TypeClose, 1, 1, &seq, 1, make([]byte, per), maxChunk, 0); err != nil || seq != 11 {
		t.Fatalf("CLO of one chunk: seq %d, %v", seq, err)
	}
	out, err := AppendMessage([]byte("keep"), TypeClose, 1, 1, &seq, 1, make([]byte, per+1), maxChunk, 0)
	wantCode(t, err, BadTCPMessageTooLarge)
	if string(out) != "keep" || seq != 11 {
		t.Fatalf("CLO of two chunks: failed call wrote %q, seq %d", out, seq)
	}

	for _, small := range []uint32{0, 1, HeaderSize, SymmetricOverhead} {
		seq := uint32(10)
		out, err := AppendMessage([]byte("keep"), TypeMessage, 1, 1, &seq, 1, []byte("x"), small, 0)
		wantCode(t, err, BadTCPInternalError)
		if string(out) != "keep" || seq != 10 {
			t.Fatalf("buffer of %d: failed call wrote %q, seq %d", small, out, seq)
		}
	}
	// One byte over the overhead still carries a body, a byte a chunk.
	seq = 0
	out, err = AppendMessage(nil, TypeMessage, 1, 1, &seq, 1, []byte("abc"), SymmetricOverhead+1, 0)
	if err != nil || len(splitChunks(t, out, SymmetricOverhead+1)) != 3 {
		t.Fatalf("one byte a chunk: %v", err)
	}
}

func TestAppendOpenResponse(t *testing.T) {
	seq := uint32(99)
	body := []byte("\x01\x00\xc1\x01response")
	out := AppendOpenResponse([]byte("x"), 12345, &seq, 1, body)
	if out[0] != 'x' {
		t.Fatal("dst prefix lost")
	}
	c, err := ParseChunk(out[1:])
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != TypeOpen || c.Chunk != ChunkFinal || c.ChannelID != 12345 || c.PolicyURI != PolicyNone ||
		c.SenderCertificate != nil || c.ReceiverThumbprint != nil || c.SequenceNumber != 100 || seq != 100 ||
		c.RequestID != 1 || !bytes.Equal(c.Body, body) {
		t.Fatalf("chunk = %+v", c)
	}
	// Policy None's asymmetric header: the URI, then two null ByteStrings.
	want := enc(nil).u32(12345).str(PolicyNone).i32(-1).i32(-1).u32(100).u32(1).raw(body...)
	if !bytes.Equal(out[1+HeaderSize:], want) {
		t.Fatalf("OPN body =\n% x\nwant\n% x", out[1+HeaderSize:], want)
	}
}

func TestNextSequence(t *testing.T) {
	for _, tt := range []struct{ s, want uint32 }{
		{0, 1}, {1, 2}, {41, 42}, {1023, 1024},
		{wrapAfter - 1, wrapAfter}, {wrapAfter, wrapAfter + 1},
		{wrapAfter + 1, 1}, {math.MaxUint32 - 1, 1}, {math.MaxUint32, 1},
	} {
		if got := NextSequence(tt.s); got != tt.want {
			t.Errorf("NextSequence(%d) = %d, want %d", tt.s, got, tt.want)
		}
		if err := CheckSequence(tt.s, NextSequence(tt.s)); err != nil {
			t.Errorf("CheckSequence refuses NextSequence(%d): %v", tt.s, err)
		}
	}
}

func TestCheckSequence(t *testing.T) {
	tests := []struct {
		last, got uint32
		ok        bool
	}{
		{5, 6, true},
		{0, 1, true},
		{5, 5, false},
		{5, 7, false},
		{5, 4, false},
		{5, 0, false},
		{100, 1, false}, // below 1024 but no wrap is due
		{wrapAfter - 1, wrapAfter, true},
		{wrapAfter, wrapAfter + 1, true},
		{wrapAfter, 1, false}, // not yet past 4294966271
		{wrapAfter, 0, false},
		{wrapAfter + 1, wrapAfter + 2, true}, // a sender need not wrap yet
		{wrapAfter + 1, 1, true},
		{wrapAfter + 1, 0, true},
		{wrapAfter + 1, 1023, true},
		{wrapAfter + 1, 1024, false},
		{wrapAfter + 1, wrapAfter + 1, false},
		{wrapAfter + 1, wrapAfter + 3, false},
		{math.MaxUint32 - 1, math.MaxUint32, true},
		{math.MaxUint32, 0, true}, // the wrap, not +1 overflowing
		{math.MaxUint32, 5, true},
		{math.MaxUint32, 1024, false},
		{math.MaxUint32, math.MaxUint32, false},
		{math.MaxUint32 - 1023, 1, true}, // where gopcua v0.8.0 wraps
	}
	for _, tt := range tests {
		err := CheckSequence(tt.last, tt.got)
		if tt.ok && err != nil {
			t.Errorf("CheckSequence(%d, %d) = %v, want ok", tt.last, tt.got, err)
		}
		if !tt.ok {
			var e *Error
			if !errors.As(err, &e) || e.Code != BadSequenceNumberInvalid {
				t.Errorf("CheckSequence(%d, %d) = %v, want BadSequenceNumberInvalid", tt.last, tt.got, err)
			}
		}
	}
}

func msg(req uint32, ct byte, body string) *Chunk {
	return &Chunk{Header: Header{Type: TypeMessage, Chunk: ct}, RequestID: req, Body: []byte(body)}
}

// add adds a chunk that must not complete nor fail.
func add(t *testing.T, a *Assembler, c *Chunk) {
	t.Helper()
	if b, err := a.Add(c); b != nil || err != nil {
		t.Fatalf("Add(%d %c %q) = %q, %v; want incomplete", c.RequestID, c.Chunk, c.Body, b, err)
	}
}

// done adds a chunk that must complete the message with want.
func done(t *testing.T, a *Assembler, c *Chunk, want string) {
	t.Helper()
	b, err := a.Add(c)
	if err != nil || string(b) != want {
		t.Fatalf("Add(%d %c %q) = %q, %v; want %q", c.RequestID, c.Chunk, c.Body, b, err, want)
	}
}

func TestAssemblerInterleaved(t *testing.T) {
	var a Assembler
	add(t, &a, msg(1, 'C', "a"))
	add(t, &a, msg(2, 'C', "x"))
	add(t, &a, msg(1, 'C', "b"))
	done(t, &a, msg(3, 'F', "single"), "single")
	done(t, &a, msg(2, 'F', "y"), "xy")
	done(t, &a, msg(1, 'F', "c"), "abc")
	if len(a.pending) != 0 {
		t.Fatalf("%d messages left pending", len(a.pending))
	}
	// The same request id may be reused once its message is done.
	add(t, &a, msg(1, 'C', "again "))
	done(t, &a, msg(1, 'F', "1"), "again 1")
}

func TestAssemblerEmptyMessage(t *testing.T) {
	var a Assembler
	if b, err := a.Add(msg(1, 'F', "")); b == nil || len(b) != 0 || err != nil {
		t.Fatalf("empty single chunk = %#v, %v; want an empty, non-nil body", b, err)
	}
	add(t, &a, msg(2, 'C', ""))
	if b, err := a.Add(msg(2, 'F', "")); b == nil || len(b) != 0 || err != nil {
		t.Fatalf("empty chunks = %#v, %v; want an empty, non-nil body", b, err)
	}
}

func TestAssemblerBodyOwned(t *testing.T) {
	var a Assembler
	in := msg(1, 'F', "single")
	b, _ := a.Add(in)
	in.Body[0] = 'X'
	if string(b) != "single" {
		t.Fatalf("body %q changed with the input", b)
	}
	in1, in2 := msg(2, 'C', "ab"), msg(2, 'F', "cd")
	add(t, &a, in1)
	b, _ = a.Add(in2)
	in1.Body[0], in2.Body[0] = 'X', 'X'
	if string(b) != "abcd" {
		t.Fatalf("body %q changed with the input", b)
	}
}

func TestAssemblerAbort(t *testing.T) {
	var a Assembler
	add(t, &a, msg(1, 'C', "part"))
	add(t, &a, msg(2, 'C', "other"))
	if b, err := a.Add(msg(1, 'A', "\x00\x00\xb8\x80")); b != nil || !errors.Is(err, ErrAborted) {
		t.Fatalf("abort = %q, %v", b, err)
	}
	if _, ok := a.pending[1]; ok {
		t.Fatal("aborted message still pending")
	}
	// The partial is gone: a new message of that id starts afresh, and
	// the other message is untouched.
	done(t, &a, msg(1, 'F', "new"), "new")
	done(t, &a, msg(2, 'F', "!"), "other!")
	// An abort of nothing pending is still reported.
	if _, err := a.Add(msg(9, 'A', "")); !errors.Is(err, ErrAborted) {
		t.Fatalf("abort = %v", err)
	}
}

func TestAssemblerMaxMessageSize(t *testing.T) {
	a := Assembler{MaxMessageSize: 10}
	done(t, &a, msg(1, 'F', "0123456789"), "0123456789")
	add(t, &a, msg(2, 'C', "01234"))
	done(t, &a, msg(2, 'F', "56789"), "0123456789")

	// A single chunk over the limit gives no body, only the error.
	b, err := a.Add(msg(3, 'F', "0123456789a"))
	wantCode(t, err, BadRequestTooLarge)
	if b != nil {
		t.Fatalf("body of %d bytes returned with the error", len(b))
	}

	add(t, &a, msg(4, 'C', "012345"))
	add(t, &a, msg(5, 'C', "keep"))
	b, err = a.Add(msg(4, 'C', "6789a"))
	wantCode(t, err, BadRequestTooLarge)
	if b != nil {
		t.Fatal("body returned with the error")
	}
	if _, ok := a.pending[4]; ok {
		t.Fatal("oversized message still pending")
	}
	done(t, &a, msg(5, 'F', "!"), "keep!")

	// Over the limit on the final chunk.
	add(t, &a, msg(6, 'C', "012345"))
	_, err = a.Add(msg(6, 'F', "6789a"))
	wantCode(t, err, BadRequestTooLarge)
	if len(a.pending) != 0 {
		t.Fatalf("%d messages left pending", len(a.pending))
	}
}

func TestAssemblerCheckDoesNotWrap(t *testing.T) {
	// Sizes past 4 GiB (where int has 64 bits) and sums of lengths that
	// wrapped negative (where it has 32) must not pass below the limit.
	a := Assembler{MaxMessageSize: 10}
	sizes := []int{-1, math.MinInt + 5}
	if strconv.IntSize == 64 {
		big := uint64(1)<<32 + 5 // a variable: the constant overflows a 32-bit int
		sizes = append(sizes, int(big))
	}
	for _, size := range sizes {
		if err := a.check(size, 1); err == nil {
			t.Fatalf("size %d passed a limit of 10", size)
		}
	}
}

func TestAssemblerMaxChunkCount(t *testing.T) {
	a := Assembler{MaxChunkCount: 3}
	add(t, &a, msg(1, 'C', "a"))
	add(t, &a, msg(1, 'C', "b"))
	done(t, &a, msg(1, 'F', "c"), "abc")

	add(t, &a, msg(2, 'C', "a"))
	add(t, &a, msg(2, 'C', "b"))
	add(t, &a, msg(2, 'C', "c"))
	b, err := a.Add(msg(2, 'C', "d"))
	wantCode(t, err, BadRequestTooLarge)
	if b != nil {
		t.Fatal("body returned with the error")
	}
	if len(a.pending) != 0 {
		t.Fatalf("%d messages left pending", len(a.pending))
	}

	one := Assembler{MaxChunkCount: 1}
	done(t, &one, msg(1, 'F', "x"), "x")
	add(t, &one, msg(2, 'C', "x"))
	_, err = one.Add(msg(2, 'F', "y"))
	wantCode(t, err, BadRequestTooLarge)
	if len(one.pending) != 0 {
		t.Fatal("message left pending")
	}
}

func TestAssemblerMaxPending(t *testing.T) {
	a := Assembler{MaxPending: 2}
	add(t, &a, msg(1, 'C', "a"))
	add(t, &a, msg(2, 'C', "b"))
	_, err := a.Add(msg(3, 'C', "c"))
	wantCode(t, err, BadTCPMessageTooLarge)
	// A single-chunk message needs no room; the pending ones go on.
	done(t, &a, msg(3, 'F', "single"), "single")
	done(t, &a, msg(1, 'F', "1"), "a1")
	add(t, &a, msg(3, 'C', "c"))
	done(t, &a, msg(2, 'F', "2"), "b2")
	done(t, &a, msg(3, 'F', "3"), "c3")

	var d Assembler // MaxPending 0: 16
	for i := uint32(0); i < 16; i++ {
		add(t, &d, msg(i, 'C', "x"))
	}
	_, err = d.Add(msg(16, 'C', "x"))
	wantCode(t, err, BadTCPMessageTooLarge)
	// Another chunk of a pending message is still taken.
	add(t, &d, msg(0, 'C', "y"))
	done(t, &d, msg(0, 'F', "z"), "xyz")
}

func TestAssemblerSingleChunkTypes(t *testing.T) {
	// A CLO or OPN with the request id of a pending MSG is a message of
	// its own and leaves the MSG pending.
	var a Assembler
	add(t, &a, msg(1, 'C', "msg "))
	done(t, &a, &Chunk{Header: Header{Type: TypeClose, Chunk: 'F'}, RequestID: 1, Body: []byte("clo")}, "clo")
	done(t, &a, &Chunk{Header: Header{Type: TypeOpen, Chunk: 'F'}, RequestID: 1, Body: []byte("opn")}, "opn")
	done(t, &a, msg(1, 'F', "end"), "msg end")
}

// The tests below hold the codec against an independent implementation:
// gopcua v0.8.0, encoding as its client does and decoding what this
// package writes.

func TestGopcuaHello(t *testing.T) {
	hel := &uacp.Hello{
		Version:        0,
		ReceiveBufSize: uacp.DefaultReceiveBufSize,
		SendBufSize:    uacp.DefaultSendBufSize,
		MaxMessageSize: 1 << 22,
		MaxChunkCount:  128,
		EndpointURL:    "opc.tcp://127.0.0.1:4840/brana",
	}
	// As uacp.Conn.Send: ua.Encode the message, then a header.
	body, err := ua.Encode(hel)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := (&uacp.Header{MessageType: "HEL", ChunkType: 'F', MessageSize: uint32(len(body) + 8)}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	b := append(hdr, body...)

	h, err := ParseHeader(b, MinBufferSize)
	if err != nil || h.Type != TypeHello || int(h.Size) != len(b) {
		t.Fatalf("header %+v, %v", h, err)
	}
	got, err := ParseHello(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Hello{Limits: Limits{hel.Version, hel.ReceiveBufSize, hel.SendBufSize, hel.MaxMessageSize, hel.MaxChunkCount}, EndpointURL: hel.EndpointURL}
	if got != want {
		t.Fatalf("hello = %+v, want %+v", got, want)
	}

	// gopcua writes an empty URL as a null String; both are refused.
	hel.EndpointURL = ""
	body, _ = ua.Encode(hel)
	_, err = ParseHello(append(hdr, body...))
	wantCode(t, err, BadTCPEndpointURLInvalid)
}

func TestGopcuaAcknowledgeAndError(t *testing.T) {
	l := Limits{ProtocolVersion: 0, ReceiveBufferSize: 65535, SendBufferSize: 8192, MaxMessageSize: 1 << 24, MaxChunkCount: 4096}
	b := AppendAcknowledge(nil, l)
	var h uacp.Header
	n, err := h.Decode(b)
	if err != nil || h.MessageType != "ACK" || h.ChunkType != 'F' || int(h.MessageSize) != len(b) {
		t.Fatalf("header %+v, %v", h, err)
	}
	var ack uacp.Acknowledge
	m, err := ack.Decode(b[n:])
	if err != nil || n+m != len(b) {
		t.Fatalf("ack: %v, %d of %d bytes", err, n+m, len(b))
	}
	if ack != (uacp.Acknowledge{Version: 0, ReceiveBufSize: 65535, SendBufSize: 8192, MaxMessageSize: 1 << 24, MaxChunkCount: 4096}) {
		t.Fatalf("ack = %+v", ack)
	}

	b = AppendError(nil, BadSecurityPolicyRejected, "None only")
	n, err = h.Decode(b)
	if err != nil || h.MessageType != "ERR" || int(h.MessageSize) != len(b) {
		t.Fatalf("header %+v, %v", h, err)
	}
	var e uacp.Error
	if m, err := e.Decode(b[n:]); err != nil || n+m != len(b) {
		t.Fatalf("error: %v", err)
	}
	if e.ErrorCode != BadSecurityPolicyRejected || e.Reason != "None only" || ua.StatusCode(e.ErrorCode) != ua.StatusBadSecurityPolicyRejected {
		t.Fatalf("error = %+v", e)
	}
}

// TestStatusCodes holds the package's codes against gopcua's table.
func TestStatusCodes(t *testing.T) {
	for _, tt := range []struct {
		ours   uint32
		theirs ua.StatusCode
	}{
		{BadTCPMessageTypeInvalid, ua.StatusBadTCPMessageTypeInvalid},
		{BadTCPMessageTooLarge, ua.StatusBadTCPMessageTooLarge},
		{BadTCPEndpointURLInvalid, ua.StatusBadTCPEndpointURLInvalid},
		{BadTCPSecureChannelUnknown, ua.StatusBadTCPSecureChannelUnknown},
		{BadTCPInternalError, ua.StatusBadTCPInternalError},
		{BadProtocolVersionUnsupported, ua.StatusBadProtocolVersionUnsupported},
		{BadDecodingError, ua.StatusBadDecodingError},
		{BadSecurityPolicyRejected, ua.StatusBadSecurityPolicyRejected},
		{BadSecureChannelIDInvalid, ua.StatusBadSecureChannelIDInvalid},
		{BadSecureChannelTokenUnknown, ua.StatusBadSecureChannelTokenUnknown},
		{BadSequenceNumberInvalid, ua.StatusBadSequenceNumberInvalid},
		{BadRequestTooLarge, ua.StatusBadRequestTooLarge},
		{BadTooManyOperations, ua.StatusBadTooManyOperations},
		{BadTimeout, ua.StatusBadTimeout},
	} {
		if tt.ours != uint32(tt.theirs) {
			t.Errorf("0x%08X, gopcua has 0x%08X for %v", tt.ours, uint32(tt.theirs), tt.theirs)
		}
	}
	if PolicyNone != ua.SecurityPolicyURINone {
		t.Errorf("PolicyNone = %q, gopcua has %q", PolicyNone, ua.SecurityPolicyURINone)
	}
}

var reqHeader = &ua.RequestHeader{
	AuthenticationToken: ua.NewNumericNodeID(0, 0),
	Timestamp:           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	RequestHandle:       7,
	TimeoutHint:         10000,
	AdditionalHeader:    ua.NewExtensionObject(nil),
}

// encodeService is a message body as gopcua writes it: type id, service.
func encodeService(t *testing.T, typeID uint16, svc any) []byte {
	t.Helper()
	a, err := ua.Encode(ua.NewFourByteExpandedNodeID(0, typeID))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ua.Encode(svc)
	if err != nil {
		t.Fatal(err)
	}
	return append(a, b...)
}

func TestGopcuaOpenRequest(t *testing.T) {
	req := &ua.OpenSecureChannelRequest{
		RequestHeader:     reqHeader,
		RequestType:       ua.SecurityTokenRequestTypeIssue,
		SecurityMode:      ua.MessageSecurityModeNone,
		ClientNonce:       []byte{},
		RequestedLifetime: 3600000,
	}
	// As gopcua's channelInstance.newMessage for an OPN of policy None.
	open := func(policy string, cert []byte) []byte {
		m := &uasc.Message{
			MessageHeader: &uasc.MessageHeader{
				Header:                   uasc.NewHeader("OPN", 'F', 0),
				AsymmetricSecurityHeader: uasc.NewAsymmetricSecurityHeader(policy, cert, nil),
				SequenceHeader:           uasc.NewSequenceHeader(51, 1),
			},
			TypeID:  ua.NewFourByteExpandedNodeID(0, id.OpenSecureChannelRequest_Encoding_DefaultBinary),
			Service: req,
		}
		chunks, err := m.EncodeChunks(1 << 16)
		if err != nil || len(chunks) != 1 {
			t.Fatalf("%d chunks, %v", len(chunks), err)
		}
		return chunks[0]
	}

	c, err := ParseChunk(open(ua.SecurityPolicyURINone, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != TypeOpen || c.ChannelID != 0 || c.PolicyURI != PolicyNone || c.SenderCertificate != nil ||
		c.ReceiverThumbprint != nil || c.SequenceNumber != 51 || c.RequestID != 1 {
		t.Fatalf("chunk = %+v", c)
	}
	if want := encodeService(t, id.OpenSecureChannelRequest_Encoding_DefaultBinary, req); !bytes.Equal(c.Body, want) {
		t.Fatalf("body =\n% x\nwant\n% x", c.Body, want)
	}
	_, svc, err := ua.DecodeService(c.Body)
	if got, ok := svc.(*ua.OpenSecureChannelRequest); err != nil || !ok || got.RequestedLifetime != 3600000 {
		t.Fatalf("service %T %+v, %v", svc, svc, err)
	}

	// A client asking for a secure policy is told so, whatever it sends
	// after the URI.
	_, err = ParseChunk(open(ua.SecurityPolicyURIBasic256Sha256, bytes.Repeat([]byte{0x30}, 1200)))
	wantCode(t, err, BadSecurityPolicyRejected)
}

func TestGopcuaMessageChunks(t *testing.T) {
	req := &ua.ReadRequest{RequestHeader: reqHeader, TimestampsToReturn: ua.TimestampsToReturnBoth}
	for i := 0; i < 300; i++ {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{
			NodeID:       ua.NewStringNodeID(2, strings.Repeat("n", i%40)),
			AttributeID:  ua.AttributeIDValue,
			DataEncoding: &ua.QualifiedName{},
		})
	}
	want := encodeService(t, id.ReadRequest_Encoding_DefaultBinary, req)

	// Body sizes gopcua splits into full chunks, into full chunks and a
	// short one, and (dividing evenly) into full ones and an empty final.
	for _, maxBody := range []uint32{8168, 1000, uint32(len(want)) / 4, uint32(len(want))} {
		m := &uasc.Message{
			MessageHeader: &uasc.MessageHeader{
				Header:                  uasc.NewHeader("MSG", 'F', 5),
				SymmetricSecurityHeader: uasc.NewSymmetricSecurityHeader(3),
				SequenceHeader:          uasc.NewSequenceHeader(200, 9),
			},
			TypeID:  ua.NewFourByteExpandedNodeID(0, id.ReadRequest_Encoding_DefaultBinary),
			Service: req,
		}
		chunks, err := m.EncodeChunks(maxBody)
		if err != nil {
			t.Fatal(err)
		}
		a := Assembler{MaxMessageSize: uint32(len(want)), MaxChunkCount: uint32(len(chunks))}
		last := uint32(199)
		var body []byte
		for i, chunk := range chunks {
			// As gopcua's sendAsyncWithTimeout: renumber later chunks.
			if i > 0 {
				binary.LittleEndian.PutUint32(chunk[16:], 200+uint32(i))
			}
			h, err := ParseHeader(chunk, maxBody+SymmetricOverhead)
			if err != nil {
				t.Fatalf("max body %d, chunk %d: %v", maxBody, i, err)
			}
			c, err := ParseChunk(chunk[:h.Size])
			if err != nil {
				t.Fatalf("max body %d, chunk %d: %v", maxBody, i, err)
			}
			if c.ChannelID != 5 || c.TokenID != 3 || c.RequestID != 9 {
				t.Fatalf("chunk %d = %+v", i, c)
			}
			if err := CheckSequence(last, c.SequenceNumber); err != nil {
				t.Fatal(err)
			}
			last = c.SequenceNumber
			b, err := a.Add(&c)
			if err != nil {
				t.Fatal(err)
			}
			if (b != nil) != (i == len(chunks)-1) {
				t.Fatalf("max body %d: chunk %d of %d gave %d bytes", maxBody, i, len(chunks), len(b))
			}
			body = b
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("max body %d: reassembled %d bytes, want %d", maxBody, len(body), len(want))
		}
	}
}

func TestGopcuaDecodesOurMessages(t *testing.T) {
	resp := &ua.ReadResponse{
		ResponseHeader: &ua.ResponseHeader{
			Timestamp:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			RequestHandle:      7,
			ServiceDiagnostics: &ua.DiagnosticInfo{},
			AdditionalHeader:   ua.NewExtensionObject(nil),
		},
	}
	for i := 0; i < 500; i++ {
		resp.Results = append(resp.Results, &ua.DataValue{
			EncodingMask: ua.DataValueValue,
			Value:        ua.MustVariant(strings.Repeat("v", i%50)),
		})
	}
	body := encodeService(t, id.ReadResponse_Encoding_DefaultBinary, resp)
	seq := uint32(10)
	out, err := AppendMessage(nil, TypeMessage, 5, 3, &seq, 9, body, 8192, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Decode chunk by chunk as gopcua's client does, and join the data.
	var data []byte
	n := 0
	for len(out) > 0 {
		var mc uasc.MessageChunk
		size := binary.LittleEndian.Uint32(out[4:])
		if _, err := mc.Decode(out[:size]); err != nil {
			t.Fatal(err)
		}
		var sh uasc.SequenceHeader
		k, err := sh.Decode(mc.Data)
		if err != nil {
			t.Fatal(err)
		}
		if mc.MessageType != "MSG" || mc.SecureChannelID != 5 || mc.TokenID != 3 ||
			sh.SequenceNumber != 11+uint32(n) || sh.RequestID != 9 {
			t.Fatalf("chunk %d: %+v %+v %+v", n, mc.Header, mc.SymmetricSecurityHeader, sh)
		}
		data = append(data, mc.Data[k:]...)
		out = out[size:]
		n++
	}
	if n < 2 {
		t.Fatalf("only %d chunks; the test wants several", n)
	}
	_, svc, err := ua.DecodeService(data)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := svc.(*ua.ReadResponse)
	if !ok || len(got.Results) != 500 {
		t.Fatalf("service %T", svc)
	}
	if again := encodeService(t, id.ReadResponse_Encoding_DefaultBinary, got); !bytes.Equal(again, body) {
		t.Fatal("gopcua decodes a different response")
	}

	// The OPN answer, decoded whole by gopcua's uasc.Message.
	osr := &ua.OpenSecureChannelResponse{
		ResponseHeader: resp.ResponseHeader,
		SecurityToken:  &ua.ChannelSecurityToken{ChannelID: 5, TokenID: 3, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RevisedLifetime: 600000},
		ServerNonce:    []byte{},
	}
	b := AppendOpenResponse(nil, 5, &seq, 1, encodeService(t, id.OpenSecureChannelResponse_Encoding_DefaultBinary, osr))
	var m uasc.Message
	if _, err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	if m.MessageType != "OPN" || m.ChunkType != 'F' || int(m.MessageSize) != len(b) || m.SecureChannelID != 5 ||
		m.SecurityPolicyURI != ua.SecurityPolicyURINone || m.SenderCertificate != nil || m.ReceiverCertificateThumbprint != nil ||
		m.SequenceNumber != seq || m.RequestID != 1 {
		t.Fatalf("OPN = %+v %+v %+v", m.Header, m.AsymmetricSecurityHeader, m.SequenceHeader)
	}
	r, ok := m.Service.(*ua.OpenSecureChannelResponse)
	if !ok || r.SecurityToken.TokenID != 3 || r.SecurityToken.RevisedLifetime != 600000 {
		t.Fatalf("service %T %+v", m.Service, m.Service)
	}
}
