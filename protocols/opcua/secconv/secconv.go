// Package secconv is the server side of OPC UA's connection protocol and
// secure conversation framing (OPC 10000-6, 7.1 UACP and 6.7 UASC): message
// headers, Hello/Acknowledge/Error, the security and sequence headers of
// OpenSecureChannel, MSG and CLO chunks, and the reassembly of chunks into
// messages within negotiated limits. It is a pure codec: no I/O, no clock,
// no goroutines. The terminator reads chunks, hands them here, and writes
// what this package encodes.
//
// Only SecurityPolicy None is handled here: over the vendor's SSH tunnel
// the SSH layer gives confidentiality and identity, and a loopback
// listener needs none. Chunks of a channel whose policy is not None are
// refused with a message that says so.
package secconv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Message types (OPC 10000-6, 7.1.2.2 and 6.7.2.2).
const (
	TypeHello       = "HEL"
	TypeAcknowledge = "ACK"
	TypeError       = "ERR"
	TypeReverseHEL  = "RHE"
	TypeOpen        = "OPN"
	TypeMessage     = "MSG"
	TypeClose       = "CLO"
)

// Chunk types.
const (
	ChunkFinal        = 'F'
	ChunkIntermediate = 'C'
	ChunkAbort        = 'A'
)

// HeaderSize is the size of every message header.
const HeaderSize = 8

// MinBufferSize is the smallest receive or send buffer a peer may ask for
// (OPC 10000-6, 7.1.2.3).
const MinBufferSize = 8192

// PolicyNone is the URI of SecurityPolicy None.
const PolicyNone = "http://opcfoundation.org/UA/SecurityPolicy#None"

// Error is a protocol error with the OPC UA status code to send in an ERR
// message before the connection is closed.
type Error struct {
	Code   uint32 // a ua.StatusCode value
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("opc ua: %s (0x%08X)", e.Reason, e.Code) }

// Status codes this package reports (OPC 10000-6, 7.1.5 and 10000-4, 7.38).
const (
	BadTCPMessageTypeInvalid      uint32 = 0x807E0000
	BadTCPMessageTooLarge         uint32 = 0x80800000
	BadTCPEndpointURLInvalid      uint32 = 0x80830000
	BadTCPSecureChannelUnknown    uint32 = 0x807F0000
	BadTCPInternalError           uint32 = 0x80820000
	BadProtocolVersionUnsupported uint32 = 0x80BE0000
	BadDecodingError              uint32 = 0x80070000
	BadSecurityPolicyRejected     uint32 = 0x80550000
	BadSecureChannelIDInvalid     uint32 = 0x80220000
	BadSecureChannelTokenUnknown  uint32 = 0x80870000
	BadSequenceNumberInvalid      uint32 = 0x80880000
	BadRequestTooLarge            uint32 = 0x80B80000
	BadTooManyOperations          uint32 = 0x80100000
	BadTimeout                    uint32 = 0x800A0000
)

func errorf(code uint32, format string, args ...any) error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Header is a message header.
type Header struct {
	Type  string // HEL, ACK, ERR, RHE, OPN, MSG, CLO
	Chunk byte   // F, C or A
	Size  uint32 // of the whole chunk, header included
}

// ParseHeader parses the first HeaderSize bytes of b and checks the size
// against max, the receive buffer size in force (the chunk must fit it).
func ParseHeader(b []byte, max uint32) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, errorf(BadDecodingError, "message header needs %d bytes, have %d", HeaderSize, len(b))
	}
	h := Header{Type: messageType(b[:3]), Chunk: b[3], Size: binary.LittleEndian.Uint32(b[4:8])}
	if h.Type == "" {
		return h, errorf(BadTCPMessageTypeInvalid, "unknown message type %q", b[:3])
	}
	switch h.Chunk {
	case ChunkFinal:
	case ChunkIntermediate, ChunkAbort:
		// Only MSG may be chunked; the field "is always 'F' for other
		// MessageTypes" (OPC 10000-6, Table 53).
		if h.Type != TypeMessage {
			return h, errorf(BadTCPMessageTypeInvalid, "%s message with chunk type %q (only F is allowed)", h.Type, h.Chunk)
		}
	default:
		return h, errorf(BadTCPMessageTypeInvalid, "chunk type %q is not F, C or A", h.Chunk)
	}
	if h.Size < HeaderSize {
		return h, errorf(BadDecodingError, "message size %d is smaller than its header", h.Size)
	}
	if h.Size > max {
		return h, errorf(BadTCPMessageTooLarge, "%s chunk of %d bytes exceeds the receive buffer of %d", h.Type, h.Size, max)
	}
	return h, nil
}

func messageType(b []byte) string {
	switch string(b) {
	case TypeHello:
		return TypeHello
	case TypeAcknowledge:
		return TypeAcknowledge
	case TypeError:
		return TypeError
	case TypeReverseHEL:
		return TypeReverseHEL
	case TypeOpen:
		return TypeOpen
	case TypeMessage:
		return TypeMessage
	case TypeClose:
		return TypeClose
	}
	return ""
}

// Limits are one side's buffer sizes and message limits (0 in MaxMessageSize
// or MaxChunkCount: no limit, as the protocol defines).
type Limits struct {
	ProtocolVersion   uint32
	ReceiveBufferSize uint32
	SendBufferSize    uint32
	MaxMessageSize    uint32
	MaxChunkCount     uint32
}

// Hello is a client's HEL message.
type Hello struct {
	Limits
	EndpointURL string
}

// maxEndpointURL is the longest EndpointUrl a Hello may carry (7.1.2.3).
const maxEndpointURL = 4096

// ParseHello parses a HEL message (header included).
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	r := reader{b: b, off: HeaderSize}
	h.ProtocolVersion = r.u32()
	h.ReceiveBufferSize = r.u32()
	h.SendBufferSize = r.u32()
	h.MaxMessageSize = r.u32()
	h.MaxChunkCount = r.u32()
	// Read any length the input holds: an over-long URL is
	// Bad_TcpEndpointUrlInvalid (7.1.2.3), not a decoding error.
	url, null := r.str(math.MaxInt32)
	if r.err != nil {
		return h, errorf(BadDecodingError, "hello: %v", r.err)
	}
	if null || url == "" {
		return h, errorf(BadTCPEndpointURLInvalid, "hello carries no endpoint URL")
	}
	if len(url) > maxEndpointURL {
		return h, errorf(BadTCPEndpointURLInvalid, "hello endpoint URL of %d bytes exceeds %d", len(url), maxEndpointURL)
	}
	if !utf8.ValidString(url) {
		return h, errorf(BadTCPEndpointURLInvalid, "hello endpoint URL is not UTF-8")
	}
	h.EndpointURL = url
	if h.ReceiveBufferSize < MinBufferSize || h.SendBufferSize < MinBufferSize {
		return h, errorf(BadTCPInternalError, "hello buffer sizes %d/%d are below the minimum of %d",
			h.ReceiveBufferSize, h.SendBufferSize, MinBufferSize)
	}
	return h, nil
}

// Negotiate answers a Hello with the server's limits: buffers no larger
// than what the client can take, message limits the smaller of both.
func Negotiate(h Hello, server Limits) Limits {
	ack := server
	ack.ProtocolVersion = 0
	if h.SendBufferSize < ack.ReceiveBufferSize {
		ack.ReceiveBufferSize = h.SendBufferSize
	}
	if h.ReceiveBufferSize < ack.SendBufferSize {
		ack.SendBufferSize = h.ReceiveBufferSize
	}
	// The client's MaxMessageSize limits what the server may send it; the
	// server's own stays what it accepts.
	return ack
}

// AppendAcknowledge appends an ACK message.
func AppendAcknowledge(dst []byte, l Limits) []byte {
	dst = append(dst, TypeAcknowledge...)
	dst = append(dst, ChunkFinal)
	dst = binary.LittleEndian.AppendUint32(dst, HeaderSize+20)
	dst = binary.LittleEndian.AppendUint32(dst, l.ProtocolVersion)
	dst = binary.LittleEndian.AppendUint32(dst, l.ReceiveBufferSize)
	dst = binary.LittleEndian.AppendUint32(dst, l.SendBufferSize)
	dst = binary.LittleEndian.AppendUint32(dst, l.MaxMessageSize)
	return binary.LittleEndian.AppendUint32(dst, l.MaxChunkCount)
}

// AppendError appends an ERR message; the reason is cut to 4096 bytes, at
// a rune boundary so that it stays a valid String.
func AppendError(dst []byte, code uint32, reason string) []byte {
	if len(reason) > 4096 {
		n := 4096
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = append(dst, TypeError...)
	dst = append(dst, ChunkFinal)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(HeaderSize+8+len(reason)))
	dst = binary.LittleEndian.AppendUint32(dst, code)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(reason)))
	return append(dst, reason...)
}

// Chunk is one parsed OPN, MSG or CLO chunk.
type Chunk struct {
	Header
	ChannelID uint32

	// OPN: the asymmetric security header.
	PolicyURI          string
	SenderCertificate  []byte
	ReceiverThumbprint []byte

	// MSG and CLO: the symmetric security header.
	TokenID uint32

	SequenceNumber uint32
	RequestID      uint32
	Body           []byte // aliases the input
}

// maxCertificate bounds the sender certificate of an OPN chunk.
const maxCertificate = 32 << 10

// ParseChunk parses an OPN, MSG or CLO chunk (header included) of policy
// None: the body is neither signed nor encrypted.
func ParseChunk(b []byte) (Chunk, error) {
	h, err := ParseHeader(b, ^uint32(0))
	if err != nil {
		return Chunk{}, err
	}
	if int(h.Size) != len(b) {
		return Chunk{}, errorf(BadDecodingError, "%s chunk says %d bytes, has %d", h.Type, h.Size, len(b))
	}
	c := Chunk{Header: h}
	r := reader{b: b, off: HeaderSize}
	c.ChannelID = r.u32()
	switch h.Type {
	case TypeOpen:
		uri, _ := r.str(1024)
		c.PolicyURI = uri
		// Refuse another policy before reading on: its certificate may
		// exceed our bound and its sequence header is encrypted.
		if r.err == nil && uri != PolicyNone {
			return c, errorf(BadSecurityPolicyRejected, "security policy %q is not offered on this endpoint (None only; use the SSH link)", uri)
		}
		c.SenderCertificate = r.bytes(maxCertificate)
		c.ReceiverThumbprint = r.bytes(64)
	case TypeMessage, TypeClose:
		c.TokenID = r.u32()
	default:
		return c, errorf(BadTCPMessageTypeInvalid, "%s is not a secure conversation message", h.Type)
	}
	c.SequenceNumber = r.u32()
	c.RequestID = r.u32()
	if r.err != nil {
		return c, errorf(BadDecodingError, "%s chunk: %v", h.Type, r.err)
	}
	c.Body = b[r.off:]
	return c, nil
}

// SymmetricOverhead is the size of a MSG or CLO chunk without its body:
// header, channel id, token id and sequence header.
const SymmetricOverhead = HeaderSize + 4 + 4 + 8

// AppendMessage appends body as chunks of typ (MSG or CLO) for policy
// None, each at most maxChunk bytes (the peer's receive buffer), numbering
// them from *seq. Only a MSG may take several chunks. An error names a
// limit the message would exceed.
func AppendMessage(dst []byte, typ string, channelID, tokenID uint32, seq *uint32, requestID uint32, body []byte, maxChunk, maxChunks uint32) ([]byte, error) {
	if maxChunk <= SymmetricOverhead {
		return dst, errorf(BadTCPInternalError, "send buffer of %d bytes is too small", maxChunk)
	}
	per := int(maxChunk - SymmetricOverhead)
	n := (len(body) + per - 1) / per
	if n == 0 {
		n = 1
	}
	if n > 1 && typ != TypeMessage {
		// Only MSG may be chunked (OPC 10000-6, Table 53).
		return dst, errorf(BadTCPMessageTooLarge, "%s of %d bytes does not fit one chunk of %d", typ, len(body), maxChunk)
	}
	if maxChunks != 0 && uint32(n) > maxChunks {
		return dst, errorf(BadTCPMessageTooLarge, "response of %d bytes needs %d chunks, the client takes %d", len(body), n, maxChunks)
	}
	for i := 0; i < n; i++ {
		part := body[min(i*per, len(body)):min((i+1)*per, len(body))]
		ct := byte(ChunkIntermediate)
		if i == n-1 {
			ct = ChunkFinal
		}
		dst = append(dst, typ...)
		dst = append(dst, ct)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(SymmetricOverhead+len(part)))
		dst = binary.LittleEndian.AppendUint32(dst, channelID)
		dst = binary.LittleEndian.AppendUint32(dst, tokenID)
		*seq = NextSequence(*seq)
		dst = binary.LittleEndian.AppendUint32(dst, *seq)
		dst = binary.LittleEndian.AppendUint32(dst, requestID)
		dst = append(dst, part...)
	}
	return dst, nil
}

// AppendOpenResponse appends the single OPN chunk of an
// OpenSecureChannelResponse body for policy None.
func AppendOpenResponse(dst []byte, channelID uint32, seq *uint32, requestID uint32, body []byte) []byte {
	size := HeaderSize + 4 + 4 + len(PolicyNone) + 4 + 4 + 8 + len(body)
	dst = append(dst, TypeOpen...)
	dst = append(dst, ChunkFinal)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
	dst = binary.LittleEndian.AppendUint32(dst, channelID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(PolicyNone)))
	dst = append(dst, PolicyNone...)
	dst = binary.LittleEndian.AppendUint32(dst, 0xffffffff) // no sender certificate
	dst = binary.LittleEndian.AppendUint32(dst, 0xffffffff) // no receiver thumbprint
	*seq = NextSequence(*seq)
	dst = binary.LittleEndian.AppendUint32(dst, *seq)
	dst = binary.LittleEndian.AppendUint32(dst, requestID)
	return append(dst, body...)
}

// wrapAfter is the sequence number past which a sender wraps around
// (UInt32 max - 1024, OPC 10000-6, 6.7.2.4).
const wrapAfter = 4294966271

// NextSequence is the sequence number after s; past wrapAfter it wraps to 1.
func NextSequence(s uint32) uint32 {
	if s > wrapAfter {
		return 1
	}
	return s + 1
}

// CheckSequence reports whether got may follow last on a channel: one more,
// or, once last is past wrapAfter, a number below 1024.
func CheckSequence(last, got uint32) error {
	if got == last+1 && last != ^uint32(0) || last > wrapAfter && got < 1024 {
		return nil
	}
	return errorf(BadSequenceNumberInvalid, "sequence number %d does not follow %d", got, last)
}

// Assembler joins the chunks of messages, which may interleave by request
// id, within the limits of the channel. It is not safe for concurrent use.
type Assembler struct {
	MaxMessageSize uint32 // 0: no limit
	MaxChunkCount  uint32 // 0: no limit
	MaxPending     int    // messages being assembled at once; 0: 16

	pending map[uint32]*partial
}

type partial struct {
	body   []byte
	chunks uint32
}

// ErrAborted reports an abort chunk: the message of that request id is
// dropped and the client expects no answer.
var ErrAborted = errors.New("opc ua: message aborted by the client")

// Add adds a chunk. It returns the whole body (never nil, so that an empty
// message is told from an incomplete one) when c is final, ErrAborted
// for an abort chunk, an *Error for a limit exceeded, and nil, nil while
// the message is incomplete. The returned body is owned by the caller.
func (a *Assembler) Add(c *Chunk) ([]byte, error) {
	// OPN and CLO are single chunks (ParseHeader allows only F), so they
	// never join a pending MSG that happens to share their request id.
	var p *partial
	if c.Type != TypeOpen && c.Type != TypeClose {
		p = a.pending[c.RequestID]
	}
	switch c.Chunk {
	case ChunkAbort:
		delete(a.pending, c.RequestID)
		return nil, ErrAborted
	case ChunkFinal:
		if p == nil {
			if err := a.check(len(c.Body), 1); err != nil {
				return nil, err
			}
			return append([]byte{}, c.Body...), nil
		}
	}
	if p == nil {
		max := a.MaxPending
		if max == 0 {
			max = 16
		}
		if len(a.pending) >= max {
			return nil, errorf(BadTCPMessageTooLarge, "more than %d messages in assembly at once", max)
		}
		if a.pending == nil {
			a.pending = make(map[uint32]*partial)
		}
		p = &partial{body: []byte{}} // never nil: see above
		a.pending[c.RequestID] = p
	}
	p.chunks++
	if err := a.check(len(p.body)+len(c.Body), p.chunks); err != nil {
		delete(a.pending, c.RequestID)
		return nil, err
	}
	p.body = append(p.body, c.Body...)
	if c.Chunk != ChunkFinal {
		return nil, nil
	}
	delete(a.pending, c.RequestID)
	return p.body, nil
}

// check takes the size as an int so that the sum of two chunks cannot wrap
// around below the limit.
func (a *Assembler) check(size int, chunks uint32) error {
	if a.MaxMessageSize != 0 && uint64(size) > uint64(a.MaxMessageSize) {
		return errorf(BadRequestTooLarge, "message exceeds the maximum size of %d bytes", a.MaxMessageSize)
	}
	if a.MaxChunkCount != 0 && chunks > a.MaxChunkCount {
		return errorf(BadRequestTooLarge, "message exceeds the maximum of %d chunks", a.MaxChunkCount)
	}
	return nil
}

// reader reads little-endian fields and remembers the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("truncated at byte %d (need %d more, have %d)", r.off, n, len(r.b)-r.off)
		return false
	}
	return true
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// bytes reads a ByteString of at most max bytes; null and empty are nil.
func (r *reader) bytes(max int) []byte {
	n := int32(r.u32())
	if r.err != nil || n <= 0 {
		if n < -1 {
			r.err = fmt.Errorf("negative length %d", n)
		}
		return nil
	}
	if int(n) > max {
		r.err = fmt.Errorf("length %d exceeds %d", n, max)
		return nil
	}
	if !r.need(int(n)) {
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

// str reads a String of at most max bytes and reports a null string.
func (r *reader) str(max int) (string, bool) {
	if !r.need(4) {
		return "", false
	}
	null := int32(binary.LittleEndian.Uint32(r.b[r.off:])) == -1
	return string(r.bytes(max)), null
}
