package opcuarelay

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opcua"
	"github.com/brana-ot/brana/protocols/opcua/secconv"
)

// What brana offers on every channel (OPC 10000-6, 7.1.2.3). Small enough
// for a Raspberry-Pi-class gateway, large enough for file transfers.
var serverLimits = secconv.Limits{
	ReceiveBufferSize: 65535,
	SendBufferSize:    65535,
	MaxMessageSize:    4 << 20,
	MaxChunkCount:     128,
}

const (
	maxInFlight      = 32 // requests of one channel being served at once
	maxSessions      = 4  // OPC UA sessions on one channel
	minTokenLifetime = 10 * time.Second
	maxTokenLifetime = time.Hour
)

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// channel is one vendor connection: one secure channel, and the sessions
// created on it.
type channel struct {
	s   *Server
	rw  io.ReadWriteCloser
	br  *bufio.Reader
	dl  deadliner
	id  sessions.Identity
	adm atomic.Pointer[policy.Admission]

	hello  secconv.Hello
	limits secconv.Limits // negotiated
	asm    secconv.Assembler

	chanID    uint32
	tokenID   uint32
	tokenEnd  time.Time
	prevToken uint32
	prevEnd   time.Time
	lastSeq   uint32
	seqSeen   bool

	wmu  sync.Mutex // serialises writes and the send sequence
	seq  uint32
	wbuf []byte

	inflight chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session // by authentication token
	closing  atomic.Pointer[string]
}

func newChannel(s *Server, rw io.ReadWriteCloser, id sessions.Identity) *channel {
	c := &channel{s: s, rw: rw, br: bufio.NewReaderSize(rw, 16<<10), id: id,
		inflight: make(chan struct{}, maxInFlight), sessions: make(map[string]*session)}
	c.dl, _ = rw.(deadliner)
	var b [4]byte
	rand.Read(b[:])
	c.chanID = binary.LittleEndian.Uint32(b[:])&0x7fffffff | 1
	return c
}

// kill closes the channel from another goroutine; its loop records why.
func (c *channel) kill(reason string) {
	c.closing.CompareAndSwap(nil, &reason)
	c.rw.Close()
}

// serve runs the channel until the client closes it, it fails, or ctx ends.
func (c *channel) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { c.kill("gateway stopping") })
	defer func() {
		stop()
		c.rw.Close()
		cancel()
		c.wg.Wait()
		c.closeSessions()
	}()
	reason := "closed"
	if err := c.loop(ctx); err != nil {
		reason = err.Error()
		var pe *secconv.Error
		if errors.As(err, &pe) {
			c.write(secconv.AppendError(nil, pe.Code, pe.Reason))
		}
	}
	if r := c.closing.Load(); r != nil {
		reason = *r
	}
	c.s.d.Log.Debug("opc ua channel closed", "listener", c.s.opt.Name, "source", c.id.Source, "reason", reason)
	c.closing.CompareAndSwap(nil, &reason)
}

// readChunk reads one whole chunk within the receive buffer.
func (c *channel) readChunk(max uint32) (secconv.Header, []byte, error) {
	if c.dl != nil {
		c.dl.SetReadDeadline(time.Now().Add(c.s.opt.IdleTimeout))
	}
	var hb [secconv.HeaderSize]byte
	if _, err := io.ReadFull(c.br, hb[:]); err != nil {
		return secconv.Header{}, nil, err
	}
	h, err := secconv.ParseHeader(hb[:], max)
	if err != nil {
		return h, nil, err
	}
	b := make([]byte, h.Size)
	copy(b, hb[:])
	if _, err := io.ReadFull(c.br, b[secconv.HeaderSize:]); err != nil {
		return h, nil, err
	}
	return h, b, nil
}

func (c *channel) loop(ctx context.Context) error {
	h, b, err := c.readChunk(secconv.HeaderSize + 20 + 4 + 4096)
	if err != nil {
		return err
	}
	if h.Type != secconv.TypeHello {
		return &secconv.Error{Code: secconv.BadTCPMessageTypeInvalid, Reason: "expected HEL, got " + h.Type}
	}
	if c.hello, err = secconv.ParseHello(b); err != nil {
		return err
	}
	c.limits = secconv.Negotiate(c.hello, serverLimits)
	c.asm = secconv.Assembler{MaxMessageSize: serverLimits.MaxMessageSize, MaxChunkCount: serverLimits.MaxChunkCount}
	if err := c.write(secconv.AppendAcknowledge(nil, c.limits)); err != nil {
		return err
	}
	opened := false
	for {
		h, b, err := c.readChunk(c.limits.ReceiveBufferSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		ch, err := secconv.ParseChunk(b)
		if err != nil {
			return err
		}
		if opened && ch.ChannelID != c.chanID {
			return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: fmt.Sprintf("secure channel %d is not this channel (%d)", ch.ChannelID, c.chanID)}
		}
		if c.seqSeen {
			if err := secconv.CheckSequence(c.lastSeq, ch.SequenceNumber); err != nil {
				return err
			}
		}
		c.lastSeq, c.seqSeen = ch.SequenceNumber, true
		switch h.Type {
		case secconv.TypeOpen:
			if err := c.open(&ch, opened); err != nil {
				return err
			}
			opened = true
			continue
		case secconv.TypeClose:
			return nil
		}
		if !opened {
			return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: "MSG before OpenSecureChannel"}
		}
		if err := c.checkToken(ch.TokenID); err != nil {
			return err
		}
		body, err := c.asm.Add(&ch)
		switch {
		case errors.Is(err, secconv.ErrAborted):
			continue
		case err != nil:
			return err
		case body == nil:
			continue
		}
		req, derr := opcua.DecodeRequest(body)
		if derr != nil {
			c.invalid(ch.RequestID, body, derr)
			continue
		}
		select {
		case c.inflight <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c.wg.Add(1)
		go func(reqID uint32) {
			defer func() {
				<-c.inflight
				c.wg.Done()
			}()
			defer c.recoverRequest(reqID, req)
			c.dispatch(ctx, reqID, req)
		}(ch.RequestID)
	}
}

// open answers OpenSecureChannel: Issue once, then Renew with a new token;
// the previous token stays valid for a quarter of its lifetime.
func (c *channel) open(ch *secconv.Chunk, opened bool) error {
	if ch.Chunk != secconv.ChunkFinal {
		return &secconv.Error{Code: secconv.BadDecodingError, Reason: "OpenSecureChannel split into chunks"}
	}
	req, err := opcua.DecodeRequest(ch.Body)
	if err != nil {
		return &secconv.Error{Code: secconv.BadDecodingError, Reason: "OpenSecureChannel: " + err.Error()}
	}
	r, ok := req.(*ua.OpenSecureChannelRequest)
	if !ok {
		return &secconv.Error{Code: secconv.BadTCPMessageTypeInvalid, Reason: fmt.Sprintf("OPN carries %T", req)}
	}
	if r.SecurityMode != ua.MessageSecurityModeNone {
		return &secconv.Error{Code: secconv.BadSecurityPolicyRejected, Reason: "security mode " + r.SecurityMode.String() + " with policy None"}
	}
	switch r.RequestType {
	case ua.SecurityTokenRequestTypeIssue:
		if opened {
			return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: "a second Issue on an open channel"}
		}
	case ua.SecurityTokenRequestTypeRenew:
		if !opened {
			return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: "Renew before Issue"}
		}
	default:
		return &secconv.Error{Code: secconv.BadDecodingError, Reason: "unknown token request type"}
	}
	life := time.Duration(r.RequestedLifetime) * time.Millisecond
	life = min(max(life, minTokenLifetime), maxTokenLifetime)
	now := time.Now()
	c.wmu.Lock() // send reads tokenID under wmu
	defer c.wmu.Unlock()
	if opened {
		c.prevToken, c.prevEnd = c.tokenID, now.Add(life/4)
	}
	c.tokenID++
	c.tokenEnd = now.Add(life + life/4)
	resp := &ua.OpenSecureChannelResponse{
		ResponseHeader: responseHeader(r.RequestHeader, ua.StatusOK),
		SecurityToken: &ua.ChannelSecurityToken{ChannelID: c.chanID, TokenID: c.tokenID, CreatedAt: now,
			RevisedLifetime: uint32(life / time.Millisecond)},
		ServerNonce: []byte{},
	}
	body, err := opcua.EncodeResponse(nil, resp)
	if err != nil {
		return err
	}
	out := secconv.AppendOpenResponse(c.wbuf[:0], c.chanID, &c.seq, ch.RequestID, body)
	c.wbuf = out[:0]
	return c.writeLocked(out)
}

// checkToken accepts the current token, and the previous one during its
// overlap after a renewal.
func (c *channel) checkToken(id uint32) error {
	now := time.Now()
	switch {
	case id == c.tokenID && now.Before(c.tokenEnd):
		return nil
	case id == c.prevToken && id != 0 && now.Before(c.prevEnd):
		return nil
	case id == c.tokenID:
		return &secconv.Error{Code: secconv.BadSecureChannelTokenUnknown, Reason: "security token " + strconv.FormatUint(uint64(id), 10) + " expired: renew before its lifetime ends"}
	}
	return &secconv.Error{Code: secconv.BadSecureChannelTokenUnknown, Reason: "unknown security token " + strconv.FormatUint(uint64(id), 10)}
}

func responseHeader(h *ua.RequestHeader, status ua.StatusCode) *ua.ResponseHeader {
	rh := &ua.ResponseHeader{Timestamp: time.Now(), ServiceResult: status,
		ServiceDiagnostics: &ua.DiagnosticInfo{}, AdditionalHeader: ua.NewExtensionObject(nil)}
	if h != nil {
		rh.RequestHandle = h.RequestHandle
	}
	return rh
}

// send encodes resp and writes it as MSG chunks. A response the client
// cannot take is replaced by a fault that says so.
func (c *channel) send(reqID uint32, resp ua.Response) {
	body, err := opcua.EncodeResponse(nil, resp)
	if err != nil {
		c.s.d.Log.Error("encoding an opc ua response", "type", fmt.Sprintf("%T", resp), "err", err)
		body, _ = opcua.EncodeResponse(nil, &ua.ServiceFault{ResponseHeader: responseHeader(nil, ua.StatusBadEncodingError)})
	}
	if max := c.hello.MaxMessageSize; max != 0 && uint32(len(body)) > max {
		h := resp.Header()
		body, _ = opcua.EncodeResponse(nil, &ua.ServiceFault{ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(),
			RequestHandle: h.RequestHandle, ServiceResult: ua.StatusBadResponseTooLarge, ServiceDiagnostics: &ua.DiagnosticInfo{},
			AdditionalHeader: ua.NewExtensionObject(nil)}})
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out, err := secconv.AppendMessage(c.wbuf[:0], secconv.TypeMessage, c.chanID, c.tokenID, &c.seq, reqID, body,
		c.limits.SendBufferSize, c.hello.MaxChunkCount)
	if err != nil {
		c.s.d.Log.Warn("opc ua response dropped", "err", err)
		return
	}
	if cap(out) <= 1<<20 {
		c.wbuf = out[:0]
	}
	c.writeLocked(out)
}

func (c *channel) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *channel) writeLocked(b []byte) error {
	if c.dl != nil {
		c.dl.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	_, err := c.rw.Write(b)
	return err
}

// fault answers a request with a ServiceFault.
func (c *channel) fault(reqID uint32, h *ua.RequestHeader, status ua.StatusCode) {
	c.send(reqID, &ua.ServiceFault{ResponseHeader: responseHeader(h, status)})
}

// recoverRequest keeps a bug in handling one request from taking the
// gateway down: the request is answered Bad_InternalError, and the channel
// is closed, since its sessions' state is no longer known to be sound.
func (c *channel) recoverRequest(reqID uint32, req ua.Request) {
	p := recover()
	if p == nil {
		return
	}
	c.s.d.Log.Error("opc ua request handler failed", "type", fmt.Sprintf("%T", req), "panic", p, "stack", string(debug.Stack()))
	c.fault(reqID, req.Header(), ua.StatusBadInternalError)
	c.kill(fmt.Sprintf("internal error handling %T", req))
}
