package opcuarelay

import (
	"context"
	"crypto/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/opcuatarget"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opcua"
)

// sessionSeq numbers sessions across all terminators of the process.
var sessionSeq atomic.Uint64

// ApplicationURI is brana's OPC UA application URI towards vendors.
const ApplicationURI = "urn:brana:gateway"

// session is one OPC UA session of a vendor, and the PLC session behind it.
type session struct {
	c     *channel
	id    string // brana's session id in audit records and listings
	token string // authentication token, as map key
	node  *ua.NodeID
	auth  *ua.NodeID

	mu        sync.Mutex // guards what follows and the classifier's maps
	activated bool
	plc       *opcuatarget.Session
	ns        *opcua.NamespaceMap
	cl        opcua.Classifier
	aliases   opcua.AliasMap
	methods   opcua.MethodMap
	noType    map[string]bool // instance methods known to have no type method
	paths     pathSet         // browse paths of the rules, resolved on this PLC
	reg       *sessions.Session
	closed    bool

	requests, denied, failed atomic.Uint64

	asked       string
	askedTarget string
	askedAt     time.Time
}

// dispatch answers one decoded request.
func (c *channel) dispatch(ctx context.Context, reqID uint32, req ua.Request) {
	h := req.Header()
	switch r := req.(type) {
	case *ua.GetEndpointsRequest:
		c.send(reqID, &ua.GetEndpointsResponse{ResponseHeader: responseHeader(h, ua.StatusOK), Endpoints: c.endpoints()})
		return
	case *ua.FindServersRequest:
		c.send(reqID, &ua.FindServersResponse{ResponseHeader: responseHeader(h, ua.StatusOK),
			Servers: []*ua.ApplicationDescription{c.application()}})
		return
	case *ua.CreateSessionRequest:
		c.createSession(reqID, r)
		return
	case *ua.CancelRequest:
		// Requests are forwarded at once; there is nothing queued to cancel.
		c.send(reqID, &ua.CancelResponse{ResponseHeader: responseHeader(h, ua.StatusOK)})
		return
	}
	if h == nil {
		c.fault(reqID, nil, ua.StatusBadDecodingError)
		return
	}
	c.mu.Lock()
	s := c.sessions[tokenKey(h.AuthenticationToken)]
	c.mu.Unlock()
	if s == nil {
		c.fault(reqID, h, ua.StatusBadSessionIDInvalid)
		return
	}
	switch r := req.(type) {
	case *ua.ActivateSessionRequest:
		s.activate(ctx, reqID, r)
		return
	case *ua.CloseSessionRequest:
		s.close("closed by the client")
		c.send(reqID, &ua.CloseSessionResponse{ResponseHeader: responseHeader(h, ua.StatusOK)})
		return
	}
	s.mu.Lock()
	active := s.activated && !s.closed
	s.mu.Unlock()
	if !active {
		c.fault(reqID, h, ua.StatusBadSessionNotActivated)
		return
	}
	s.forward(ctx, reqID, req)
}

func tokenKey(n *ua.NodeID) string {
	if n == nil {
		return ""
	}
	return n.String()
}

func (c *channel) application() *ua.ApplicationDescription {
	return &ua.ApplicationDescription{
		ApplicationURI:  ApplicationURI,
		ProductURI:      "urn:brana",
		ApplicationName: &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: "brana gateway: " + c.s.target.Name()},
		ApplicationType: ua.ApplicationTypeServer,
		DiscoveryURLs:   []string{c.hello.EndpointURL},
	}
}

// endpoints describe brana: security None (the SSH link or loopback
// protects the channel) and anonymous users (the party is known already).
func (c *channel) endpoints() []*ua.EndpointDescription {
	return []*ua.EndpointDescription{{
		EndpointURL:       c.hello.EndpointURL,
		Server:            c.application(),
		SecurityMode:      ua.MessageSecurityModeNone,
		SecurityPolicyURI: ua.SecurityPolicyURINone,
		UserIdentityTokens: []*ua.UserTokenPolicy{{PolicyID: "anonymous", TokenType: ua.UserTokenTypeAnonymous,
			SecurityPolicyURI: ua.SecurityPolicyURINone}},
		TransportProfileURI: "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary",
	}}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (c *channel) createSession(reqID uint32, r *ua.CreateSessionRequest) {
	c.mu.Lock()
	if len(c.sessions) >= maxSessions {
		c.mu.Unlock()
		c.fault(reqID, r.RequestHeader, ua.StatusBadTooManySessions)
		return
	}
	n := sessionSeq.Add(1)
	s := &session{c: c, id: c.s.d.BootID + "-" + c.s.opt.Name + "-" + strconv.FormatUint(n, 10),
		node: ua.NewNumericNodeID(1, uint32(n)), auth: ua.NewByteStringNodeID(0, randomBytes(32)), noType: map[string]bool{}}
	s.token = tokenKey(s.auth)
	c.sessions[s.token] = s
	c.mu.Unlock()
	timeout := time.Duration(r.RequestedSessionTimeout) * time.Millisecond
	timeout = min(max(timeout, 10*time.Second), time.Hour)
	c.send(reqID, &ua.CreateSessionResponse{
		ResponseHeader:             responseHeader(r.RequestHeader, ua.StatusOK),
		SessionID:                  s.node,
		AuthenticationToken:        s.auth,
		RevisedSessionTimeout:      float64(timeout / time.Millisecond),
		ServerNonce:                randomBytes(32),
		ServerCertificate:          []byte{},
		ServerEndpoints:            c.endpoints(),
		ServerSoftwareCertificates: nil,
		ServerSignature:            &ua.SignatureData{},
		MaxRequestMessageSize:      serverLimits.MaxMessageSize,
	})
}

// activate checks the identity token (anonymous: the party is the SSH
// identity or the source network), then opens the PLC session with brana's
// own credentials.
func (s *session) activate(ctx context.Context, reqID uint32, r *ua.ActivateSessionRequest) {
	c := s.c
	if tok := r.UserIdentityToken; tok != nil && tok.Value != nil {
		if _, ok := tok.Value.(*ua.AnonymousIdentityToken); !ok {
			c.fault(reqID, r.RequestHeader, ua.StatusBadIdentityTokenRejected)
			s.c.s.d.Log.Info("opc ua identity token refused: only anonymous is offered", "source", c.id.Source)
			return
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.fault(reqID, r.RequestHeader, ua.StatusBadSessionClosed)
		return
	}
	if !s.activated {
		plc, err := c.s.target.Open(context.WithoutCancel(ctx), s.id)
		if err != nil {
			s.mu.Unlock()
			c.s.refuseSession(c, s.id, err)
			c.fault(reqID, r.RequestHeader, ua.StatusBadNoCommunication)
			return
		}
		s.plc = plc
		// A PLC session that cannot be restored ends the vendor's session
		// too: the vendor's stack then starts afresh, subscriptions included.
		plc.OnLost(func(err error) { c.kill(err.Error()) })
		s.ns = opcua.NewNamespaceMap(plc.Namespaces())
		s.cl = opcua.Classifier{Aliases: &s.aliases, Methods: &s.methods, Namespaces: s.ns}
		s.activated = true
		p := c.id.Party
		s.reg = sessions.New(sessions.Info{ID: s.id, Protocol: "opcua", Listener: c.s.opt.Name, Party: p.ID,
			PartyName: p.Name, Org: p.Organisation, Source: c.id.Source, Via: c.id.Via, Since: time.Now()}, c.kill)
		s.reg.OnRecheck(c.readmit)
		c.s.d.Sessions.Add(s.reg)
		s.openRecord(plc.Security)
	}
	s.mu.Unlock()
	c.send(reqID, &ua.ActivateSessionResponse{ResponseHeader: responseHeader(r.RequestHeader, ua.StatusOK),
		ServerNonce: randomBytes(32)})
}

// refuseSession records a session that could not reach its PLC.
func (s *Server) refuseSession(c *channel, id string, err error) {
	p := c.id.Party
	rec := audit.Record{Type: audit.SessionRefused, Session: id, Source: c.id.Source, Listener: s.opt.Name, Target: s.target.Name(),
		Party: p.ID, PartyName: p.Name, Org: p.Organisation, Unit: -1, Func: -1, Sub: -1,
		Decision: "deny", Reason: "target-unreachable", Detail: err.Error()}
	if _, aerr := s.d.Audit.Append(context.Background(), &rec); aerr != nil {
		s.d.Log.Error("audit append failed", "err", aerr)
	}
	s.d.Log.Warn("opc ua session to the PLC failed", "target", s.target.Name(), "session", id, "err", err)
}

// readmit decides on the channel again under the policy now in force.
func (c *channel) readmit() {
	p := c.s.d.Policy.Load().Party(c.id.Party.ID)
	if p == nil {
		c.kill("policy reload: party " + c.id.Party.ID + " is no longer enrolled")
		return
	}
	id := c.id
	id.Party = p
	adm := c.s.d.Admit(p, id)
	if adm.Verdict == policy.Deny {
		c.kill("policy reload: session no longer admitted: " + adm.String())
		return
	}
	c.adm.Store(&adm)
}

// close ends the session and its PLC session.
func (s *session) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	plc, reg := s.plc, s.reg
	s.mu.Unlock()
	s.c.mu.Lock()
	delete(s.c.sessions, s.token)
	s.c.mu.Unlock()
	if plc != nil {
		plc.Close()
	}
	if reg != nil {
		s.c.s.d.Sessions.Remove(reg)
		s.closeRecord(reason)
	}
}

func (c *channel) closeSessions() {
	c.mu.Lock()
	list := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		list = append(list, s)
	}
	c.mu.Unlock()
	reason := "channel closed"
	if r := c.closing.Load(); r != nil {
		reason = *r
	}
	for _, s := range list {
		s.close(reason)
	}
}
