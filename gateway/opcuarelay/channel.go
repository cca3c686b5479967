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

// token is one security token of the channel and, on a secured channel,
// the keys derived for it.
type token struct {
	id  uint32
	end time.Time
	sym *secconv.Symmetric
}

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

	chanID  uint32
	policy  string // the channel's security policy URI, set by the first open
	mode    ua.MessageSecurityMode
	asym    *secconv.Asymmetric // nil under None
	cur     token
	prev    token // the token before the last renewal, valid for its overlap
	lastSeq uint32
	seqSeen bool

	wmu     sync.Mutex // serialises writes and the send sequence
	seq     uint32
	wbuf    []byte
	sendTok token // the token responses are secured with

	inflight chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session // by authentication token
	closing  atomic.Pointer[string]
	refused  atomic.Bool // a refusal is in the audit log already

	discoveryOnly bool // a None channel to a secured endpoint: GetEndpoints and FindServers only
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
		var ch secconv.Chunk
		switch h.Type {
		case secconv.TypeOpen:
			if err := c.open(b, opened); err != nil {
				return err
			}
			opened = true
			continue
		case secconv.TypeMessage, secconv.TypeClose:
			if !opened {
				return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: h.Type + " before OpenSecureChannel"}
			}
			if ch, err = c.unseal(b); err != nil {
				return err
			}
		default:
			return &secconv.Error{Code: secconv.BadTCPMessageTypeInvalid, Reason: "unexpected " + h.Type + " message"}
		}
		if err := c.sequence(ch.SequenceNumber); err != nil {
			return err
		}
		if h.Type == secconv.TypeClose {
			return nil
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

// open answers OpenSecureChannel: Issue once, then Renew with a new token
// (and, on a secured channel, new keys); the previous token stays valid
// for a quarter of its lifetime. A secured open is verified and decrypted
// with brana's key, and its client certificate must be trusted.
func (c *channel) open(b []byte, opened bool) error {
	var ch secconv.Chunk
	var asym *secconv.Asymmetric
	var err error
	if secconv.OpenPolicy(b) == secconv.PolicyNone {
		// Clients discover a secured endpoint over a None channel
		// (OPC 10000-4, 5.4): allowed, but for discovery only.
		if !opened {
			c.discoveryOnly = !c.s.offers(secconv.PolicyNone) // request goroutines read it: set once
		}
		ch, err = secconv.ParseChunk(b)
	} else {
		sec := c.s.opt.Security
		if sec == nil {
			c.refuseChannel("policy-rejected", "this endpoint offers security None only")
			return &secconv.Error{Code: secconv.BadSecurityPolicyRejected, Reason: "this endpoint offers security None only (use the SSH link or brana's secure endpoint)"}
		}
		ch, asym, err = secconv.OpenSecured(b, sec.Server)
		if err == nil && !c.s.offers(asym.Policy) {
			err = &secconv.Error{Code: secconv.BadSecurityPolicyRejected, Reason: "security policy " + asym.Policy + " is not offered on this endpoint"}
		}
		if err == nil && sec.Trust != nil {
			if terr := sec.Trust(asym.ClientCert); terr != nil {
				c.refuseChannel("certificate-untrusted", terr.Error())
				return &secconv.Error{Code: secconv.BadSecurityChecksFailed, Reason: "the client certificate is not trusted"}
			}
		}
		if err != nil {
			c.refuseChannel("open-failed", err.Error())
			return err
		}
	}
	if err != nil {
		return err
	}
	if ch.Chunk != secconv.ChunkFinal {
		return &secconv.Error{Code: secconv.BadDecodingError, Reason: "OpenSecureChannel split into chunks"}
	}
	if opened && ch.ChannelID != c.chanID {
		return &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: fmt.Sprintf("secure channel %d is not this channel (%d)", ch.ChannelID, c.chanID)}
	}
	if err := c.sequence(ch.SequenceNumber); err != nil {
		return err
	}
	req, err := opcua.DecodeRequest(ch.Body)
	if err != nil {
		return &secconv.Error{Code: secconv.BadDecodingError, Reason: "OpenSecureChannel: " + err.Error()}
	}
	r, ok := req.(*ua.OpenSecureChannelRequest)
	if !ok {
		return &secconv.Error{Code: secconv.BadTCPMessageTypeInvalid, Reason: fmt.Sprintf("OPN carries %T", req)}
	}
	policyURI := secconv.PolicyNone
	if asym != nil {
		policyURI = asym.Policy
	}
	switch {
	case asym == nil && r.SecurityMode != ua.MessageSecurityModeNone:
		return &secconv.Error{Code: secconv.BadSecurityPolicyRejected, Reason: "security mode " + r.SecurityMode.String() + " with policy None"}
	case asym != nil && !c.s.offersMode(r.SecurityMode):
		c.refuseChannel("mode-rejected", "security mode "+r.SecurityMode.String()+" is not offered")
		return &secconv.Error{Code: secconv.BadSecurityPolicyRejected, Reason: "security mode " + r.SecurityMode.String() + " is not offered on this endpoint"}
	case opened && (policyURI != c.policy || r.SecurityMode != c.mode):
		return &secconv.Error{Code: secconv.BadSecurityChecksFailed, Reason: "a renewal changed the channel's security"}
	case opened && asym != nil && string(asym.ClientCert) != string(c.asym.ClientCert):
		return &secconv.Error{Code: secconv.BadSecurityChecksFailed, Reason: "a renewal came with another client certificate"}
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
	var serverNonce []byte
	var sym *secconv.Symmetric
	if asym != nil {
		if len(r.ClientNonce) != asym.NonceLength() {
			return &secconv.Error{Code: secconv.BadNonceInvalid, Reason: fmt.Sprintf("client nonce of %d bytes, the policy needs %d", len(r.ClientNonce), asym.NonceLength())}
		}
		serverNonce = randomBytes(asym.NonceLength())
		if sym, err = secconv.NewSymmetric(asym.Policy, int(r.SecurityMode), serverNonce, r.ClientNonce); err != nil {
			return err
		}
	}
	life := time.Duration(r.RequestedLifetime) * time.Millisecond
	life = min(max(life, minTokenLifetime), maxTokenLifetime)
	now := time.Now()
	c.wmu.Lock() // send reads the tokens under wmu
	defer c.wmu.Unlock()
	if opened {
		c.prev = c.cur
		c.prev.end = now.Add(life / 4)
	} else {
		c.policy, c.mode, c.asym = policyURI, r.SecurityMode, asym
	}
	c.cur = token{id: c.cur.id + 1, end: now.Add(life + life/4), sym: sym}
	if !opened {
		c.sendTok = c.cur
	}
	if serverNonce == nil {
		serverNonce = []byte{}
	}
	resp := &ua.OpenSecureChannelResponse{
		ResponseHeader: responseHeader(r.RequestHeader, ua.StatusOK),
		SecurityToken: &ua.ChannelSecurityToken{ChannelID: c.chanID, TokenID: c.cur.id, CreatedAt: now,
			RevisedLifetime: uint32(life / time.Millisecond)},
		ServerNonce: serverNonce,
	}
	body, err := opcua.EncodeResponse(nil, resp)
	if err != nil {
		return err
	}
	var out []byte
	if asym != nil {
		if out, err = asym.AppendOpenResponse(c.wbuf[:0], c.s.opt.Security.Server, c.chanID, &c.seq, ch.RequestID, body); err != nil {
			return err
		}
	} else {
		out = secconv.AppendOpenResponse(c.wbuf[:0], c.chanID, &c.seq, ch.RequestID, body)
	}
	c.wbuf = out[:0]
	return c.writeLocked(out)
}

// unseal checks a MSG or CLO chunk's channel and token and, on a secured
// channel, verifies and decrypts it with that token's keys.
func (c *channel) unseal(b []byte) (secconv.Chunk, error) {
	if len(b) < secconv.HeaderSize+8 {
		return secconv.Chunk{}, &secconv.Error{Code: secconv.BadDecodingError, Reason: "chunk too short"}
	}
	if id := binary.LittleEndian.Uint32(b[8:]); id != c.chanID {
		return secconv.Chunk{}, &secconv.Error{Code: secconv.BadTCPSecureChannelUnknown, Reason: fmt.Sprintf("secure channel %d is not this channel (%d)", id, c.chanID)}
	}
	tok, err := c.checkToken(binary.LittleEndian.Uint32(b[12:]))
	if err != nil {
		return secconv.Chunk{}, err
	}
	var ch secconv.Chunk
	if tok.sym == nil {
		ch, err = secconv.ParseChunk(b)
	} else {
		ch, err = tok.sym.UnsealChunk(b)
	}
	if err != nil {
		if tok.sym != nil {
			c.refuseChannel("security-checks-failed", err.Error())
		}
		return ch, err
	}
	if tok.id == c.cur.id && c.prev.id != 0 {
		// The client uses the new token: so does brana from now on.
		c.wmu.Lock()
		c.sendTok = c.cur
		c.wmu.Unlock()
	}
	return ch, nil
}

// sequence checks that a chunk's sequence number follows the last one.
func (c *channel) sequence(n uint32) error {
	if c.seqSeen {
		if err := secconv.CheckSequence(c.lastSeq, n); err != nil {
			if c.asym != nil {
				c.refuseChannel("sequence-replayed", err.Error())
			}
			return err
		}
	}
	c.lastSeq, c.seqSeen = n, true
	return nil
}

// checkToken accepts the current token, and the previous one during its
// overlap after a renewal.
func (c *channel) checkToken(id uint32) (token, error) {
	now := time.Now()
	switch {
	case id == c.cur.id && now.Before(c.cur.end):
		return c.cur, nil
	case id == c.prev.id && id != 0 && now.Before(c.prev.end):
		return c.prev, nil
	case id == c.cur.id:
		return token{}, &secconv.Error{Code: secconv.BadSecureChannelTokenUnknown, Reason: "security token " + strconv.FormatUint(uint64(id), 10) + " expired: renew before its lifetime ends"}
	}
	if c.asym != nil {
		c.refuseChannel("token-unknown", "a chunk with unknown or expired security token "+strconv.FormatUint(uint64(id), 10))
	}
	return token{}, &secconv.Error{Code: secconv.BadSecureChannelTokenUnknown, Reason: "unknown security token " + strconv.FormatUint(uint64(id), 10)}
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
		body = tooLarge(h.RequestHandle)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out, err := c.appendMessageLocked(reqID, body)
	if err != nil {
		// Too big for the client's chunk limits: it gets a fault saying
		// so rather than no answer.
		c.s.d.Log.Warn("opc ua response too large for the client", "err", err)
		if out, err = c.appendMessageLocked(reqID, tooLarge(resp.Header().RequestHandle)); err != nil {
			return
		}
	}
	if cap(out) <= 1<<20 {
		c.wbuf = out[:0]
	}
	c.writeLocked(out)
}

// tooLarge is the encoded fault for a response the client cannot take.
func tooLarge(handle uint32) []byte {
	b, _ := opcua.EncodeResponse(nil, &ua.ServiceFault{ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(),
		RequestHandle: handle, ServiceResult: ua.StatusBadResponseTooLarge, ServiceDiagnostics: &ua.DiagnosticInfo{},
		AdditionalHeader: ua.NewExtensionObject(nil)}})
	return b
}

// appendMessageLocked frames body as MSG chunks under the send token,
// secured when the channel is. The caller holds wmu.
func (c *channel) appendMessageLocked(reqID uint32, body []byte) ([]byte, error) {
	if t := c.sendTok; t.sym != nil {
		return t.sym.AppendMessage(c.wbuf[:0], secconv.TypeMessage, c.chanID, t.id, &c.seq, reqID, body,
			c.limits.SendBufferSize, c.hello.MaxChunkCount)
	}
	return secconv.AppendMessage(c.wbuf[:0], secconv.TypeMessage, c.chanID, c.sendTok.id, &c.seq, reqID, body,
		c.limits.SendBufferSize, c.hello.MaxChunkCount)
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
