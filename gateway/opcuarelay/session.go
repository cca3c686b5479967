package opcuarelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"

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
	fileSeq   sync.Mutex      // serialises Calls while the firmware gate follows file transfers
	reg       *sessions.Session
	closed    bool

	requests, denied, failed atomic.Uint64

	asked       string
	askedTarget string
	askedAt     time.Time

	files *fileGate // program file transfers; nil when no manifest is configured

	nonce []byte                           // the server nonce the next ActivateSession must sign
	who   sessions.Identity                // the party of this session and how it was identified
	adm   atomic.Pointer[policy.Admission] // its admission
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
		if c.discoveryOnly {
			c.refuseChannel("policy-rejected", "a session over security None, which this endpoint offers for discovery only")
			c.fault(reqID, h, ua.StatusBadSecurityModeRejected)
			return
		}
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
	if c.discoveryOnly {
		c.fault(reqID, h, ua.StatusBadSecurityModeRejected)
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
	uri := ApplicationURI
	if sec := c.s.opt.Security; sec != nil && sec.AppURI != "" {
		uri = sec.AppURI // clients compare it with the certificate's
	}
	return &ua.ApplicationDescription{
		ApplicationURI:  uri,
		ProductURI:      "urn:brana",
		ApplicationName: &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: "brana gateway: " + c.s.target.Name()},
		ApplicationType: ua.ApplicationTypeServer,
		DiscoveryURLs:   []string{c.hello.EndpointURL},
	}
}

// endpoints describe brana, never the PLC: on the SSH link and loopback
// listeners security None and anonymous users (the party is known from
// the SSH key or the source network); on a secured endpoint every policy
// and mode it offers, with brana's certificate and the identities it takes.
func (c *channel) endpoints() []*ua.EndpointDescription {
	sec := c.s.opt.Security
	ep := func(policy string, mode ua.MessageSecurityMode) *ua.EndpointDescription {
		e := &ua.EndpointDescription{
			EndpointURL:         c.hello.EndpointURL,
			Server:              c.application(),
			SecurityMode:        mode,
			SecurityPolicyURI:   policy,
			ServerCertificate:   []byte{},
			TransportProfileURI: "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary",
			SecurityLevel:       uapolicy.SecurityLevel(policy, mode),
		}
		if sec == nil {
			e.UserIdentityTokens = userTokenPolicies([]string{"anonymous"}, policy)
			return e
		}
		e.ServerCertificate = sec.Server.Cert
		e.UserIdentityTokens = userTokenPolicies(sec.Identities, policy)
		return e
	}
	if sec == nil {
		return []*ua.EndpointDescription{ep(ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)}
	}
	var out []*ua.EndpointDescription
	for _, p := range sec.Policies {
		if p == ua.SecurityPolicyURINone {
			out = append(out, ep(p, ua.MessageSecurityModeNone))
			continue
		}
		for _, m := range sec.Modes {
			out = append(out, ep(p, m))
		}
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// security is what the session services need of this channel.
func (c *channel) security() *sessionSecurity {
	ss := &sessionSecurity{Policy: c.policy, Mode: c.mode}
	if sec := c.s.opt.Security; sec != nil {
		ss.ServerCert, ss.ServerKey = sec.Server.Cert, sec.Server.Key
	}
	if c.asym != nil {
		ss.ClientCert = c.asym.ClientCert
	}
	return ss
}

func (c *channel) createSession(reqID uint32, r *ua.CreateSessionRequest) {
	sec := c.security()
	var sig *ua.SignatureData
	if c.asym != nil {
		// The client must present the certificate it opened the channel with.
		if cc := r.ClientCertificate; len(cc) > 0 && !strings.HasPrefix(string(cc), string(c.asym.ClientCert)) {
			c.refuseChannel("certificate-mismatch", "CreateSession names another client certificate than the secure channel")
			c.fault(reqID, r.RequestHeader, ua.StatusBadCertificateInvalid)
			return
		}
		var err error
		if sig, err = sec.serverSignature(r.ClientNonce); err != nil {
			c.refuseChannel("create-session-failed", err.Error())
			c.fault(reqID, r.RequestHeader, faultStatus(err, ua.StatusBadNonceInvalid))
			return
		}
	} else {
		sig = &ua.SignatureData{}
	}
	c.mu.Lock()
	if len(c.sessions) >= maxSessions {
		c.mu.Unlock()
		c.fault(reqID, r.RequestHeader, ua.StatusBadTooManySessions)
		return
	}
	var files *fileGate
	if c.s.d.Manifest != nil {
		var err error
		if files, err = newFileGate(c.s.d.MaxImage); err != nil {
			c.mu.Unlock()
			c.s.d.Log.Error("opc ua session refused: program file gate", "err", err)
			c.fault(reqID, r.RequestHeader, ua.StatusBadInternalError)
			return
		}
	}
	n := sessionSeq.Add(1)
	s := &session{c: c, id: c.s.d.BootID + "-" + c.s.opt.Name + "-" + strconv.FormatUint(n, 10),
		node: ua.NewNumericNodeID(1, uint32(n)), auth: ua.NewByteStringNodeID(0, randomBytes(32)), noType: map[string]bool{},
		nonce: randomBytes(32), files: files}
	s.token = tokenKey(s.auth)
	c.sessions[s.token] = s
	c.mu.Unlock()
	timeout := time.Duration(r.RequestedSessionTimeout) * time.Millisecond
	timeout = min(max(timeout, 10*time.Second), time.Hour)
	cert := []byte{}
	if c.s.opt.Security != nil {
		cert = c.s.opt.Security.Server.Cert
	}
	c.send(reqID, &ua.CreateSessionResponse{
		ResponseHeader:        responseHeader(r.RequestHeader, ua.StatusOK),
		SessionID:             s.node,
		AuthenticationToken:   s.auth,
		RevisedSessionTimeout: float64(timeout / time.Millisecond),
		ServerNonce:           s.nonce,
		ServerCertificate:     cert,
		ServerEndpoints:       c.endpoints(),
		ServerSignature:       sig,
		MaxRequestMessageSize: serverLimits.MaxMessageSize,
	})
}

// faultStatus is the OPC UA status an error carries, or def.
func faultStatus(err error, def ua.StatusCode) ua.StatusCode {
	var st ua.StatusCode
	if errors.As(err, &st) {
		return st
	}
	return def
}

// identify checks ActivateSession's signature and identity token and
// finds the party: on the SSH link and loopback listeners the party the
// connection was identified as; on a secured endpoint the party the user
// name or the user certificate is bound to (anonymous users, if offered,
// by their source network).
func (s *session) identify(r *ua.ActivateSessionRequest, nonce []byte) (sessions.Identity, error) {
	c := s.c
	sec := c.s.opt.Security
	if sec == nil {
		if tok := r.UserIdentityToken; tok != nil && tok.Value != nil {
			if _, ok := tok.Value.(*ua.AnonymousIdentityToken); !ok {
				return c.id, refuse(ua.StatusBadIdentityTokenRejected, "only anonymous users on this endpoint: the party is known from %s", c.id.Via)
			}
		}
		return c.id, nil
	}
	ss := c.security()
	if err := ss.checkClientSignature(r.ClientSignature, nonce); err != nil {
		return sessions.Identity{}, err
	}
	uid, err := ss.userIdentity(r.UserIdentityToken, r.UserTokenSignature, nonce,
		offeredTokens(userTokenPolicies(sec.Identities, c.policy)))
	if err != nil {
		return sessions.Identity{}, err
	}
	pol := c.s.d.Policy.Load()
	who := sessions.Identity{Source: c.id.Source}
	switch uid.Kind {
	case "anonymous":
		if c.id.Party == nil {
			return who, refuse(ua.StatusBadIdentityTokenRejected, "anonymous user from %s, which is not an enrolled network", c.id.Source)
		}
		who.Party, who.Via = c.id.Party, "source network (anonymous OPC UA user)"
	case "username":
		if sec.Users == nil || !sec.Users.Check(uid.User, uid.Password) {
			return who, refuse(ua.StatusBadUserAccessDenied, "wrong user name or password for OPC UA user %q", uid.User)
		}
		if who.Party = pol.PartyByOPCUAUser(uid.User); who.Party == nil {
			return who, refuse(ua.StatusBadUserAccessDenied, "OPC UA user %q is not bound to an enrolled party (opcua_users)", uid.User)
		}
		who.Via = "opc ua user " + uid.User
	case "x509":
		fp := policy.TLSFingerprint(uid.Cert)
		cn := ""
		if cert, err := x509.ParseCertificate(uid.Cert); err == nil {
			cn = cert.Subject.CommonName
			if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
				return who, refuse(ua.StatusBadIdentityTokenRejected, "user certificate %s is outside its validity", fp)
			}
		}
		if who.Party = pol.PartyByTLS(fp, cn, ""); who.Party == nil {
			return who, refuse(ua.StatusBadIdentityTokenRejected, "user certificate %s (CN %q) is not bound to an enrolled party (tls_clients)", fp, cn)
		}
		who.Via = "opc ua user certificate " + fp
	default:
		return who, refuse(ua.StatusBadIdentityTokenRejected, "unsupported identity %q", uid.Kind)
	}
	if c.asym != nil {
		who.Via += "; application certificate " + policy.TLSFingerprint(c.asym.ClientCert)
	}
	return who, nil
}

// activate checks the client's signature and identity, admits the party,
// then opens the PLC session with brana's own credentials.
func (s *session) activate(ctx context.Context, reqID uint32, r *ua.ActivateSessionRequest) {
	c := s.c
	s.mu.Lock()
	nonce := s.nonce
	s.mu.Unlock()
	who, err := s.identify(r, nonce)
	if err != nil {
		c.s.refuseIdentity(c, s.id, who, err)
		c.fault(reqID, r.RequestHeader, faultStatus(err, ua.StatusBadIdentityTokenRejected))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.fault(reqID, r.RequestHeader, ua.StatusBadSessionClosed)
		return
	}
	if c.s.opt.Security != nil && !bytes.Equal(s.nonce, nonce) {
		// Another ActivateSession used this nonce first: each nonce signs once.
		c.fault(reqID, r.RequestHeader, ua.StatusBadApplicationSignatureInvalid)
		return
	}
	if s.activated && s.who.Party.ID != who.Party.ID {
		c.s.refuseIdentity(c, s.id, who, refuse(ua.StatusBadIdentityChangeNotSupported, "a session cannot change its party"))
		c.fault(reqID, r.RequestHeader, ua.StatusBadIdentityChangeNotSupported)
		return
	}
	if !s.activated {
		adm := c.s.d.Admit(who.Party, who)
		if c.s.opt.Security == nil {
			adm = *c.adm.Load() // decided when the connection came in
		}
		if adm.Verdict == policy.Deny {
			c.s.refuseIdentity(c, s.id, who, refuse(ua.StatusBadUserAccessDenied, "refused by policy: %s", adm.String()))
			c.fault(reqID, r.RequestHeader, ua.StatusBadUserAccessDenied)
			return
		}
		plc, err := c.s.target.Open(context.WithoutCancel(ctx), s.id)
		if err != nil {
			s.who = who
			c.s.refuseSession(c, s, err)
			c.fault(reqID, r.RequestHeader, ua.StatusBadNoCommunication)
			return
		}
		s.who = who
		s.adm.Store(&adm)
		s.plc = plc
		// A PLC session that cannot be restored ends the vendor's session
		// too: the vendor's stack then starts afresh, subscriptions included.
		plc.OnLost(func(err error) { c.kill(err.Error()) })
		s.ns = opcua.NewNamespaceMap(plc.Namespaces())
		s.cl = opcua.Classifier{Aliases: &s.aliases, Methods: &s.methods, Namespaces: s.ns}
		s.activated = true
		p := who.Party
		s.reg = sessions.New(sessions.Info{ID: s.id, Protocol: "opcua", Listener: c.s.opt.Name, Party: p.ID,
			PartyName: p.Name, Org: p.Organisation, Source: who.Source, Via: who.Via, Since: time.Now()}, c.kill)
		s.reg.SetSupervised(adm.Supervised)
		s.reg.OnRecheck(s.readmit)
		c.s.d.Sessions.Add(s.reg)
		c.s.d.Metrics.SessionOpened()
		s.openRecord(plc.Security)
	}
	s.nonce = randomBytes(32)
	c.send(reqID, &ua.ActivateSessionResponse{ResponseHeader: responseHeader(r.RequestHeader, ua.StatusOK),
		ServerNonce: s.nonce})
}

// refuseIdentity records an ActivateSession that was refused.
func (s *Server) refuseIdentity(c *channel, id string, who sessions.Identity, err error) {
	rec := audit.Record{Type: audit.SessionRefused, Session: id, Source: c.id.Source, Listener: s.opt.Name, Target: s.target.Name(),
		Unit: -1, Func: -1, Sub: -1, Decision: "deny", Reason: "identity", Detail: err.Error()}
	if p := who.Party; p != nil {
		rec.Party, rec.PartyName, rec.Org = p.ID, p.Name, p.Organisation
	}
	if _, aerr := s.d.Audit.Append(context.Background(), &rec); aerr != nil {
		s.d.Log.Error("audit append failed", "err", aerr)
	}
	s.d.Metrics.SessionRefused()
	s.d.Log.Info("opc ua session refused", "listener", s.opt.Name, "source", c.id.Source, "err", err)
}

// refuseSession records a session that could not reach its PLC, or
// reached a PLC whose certificate is not the pinned one.
func (s *Server) refuseSession(c *channel, ss *session, err error) {
	p := ss.who.Party
	reason := "target-unreachable"
	var pin *opcuatarget.CertificateMismatchError
	if errors.As(err, &pin) {
		reason = "target-certificate-mismatch"
	}
	rec := audit.Record{Type: audit.SessionRefused, Session: ss.id, Source: c.id.Source, Listener: s.opt.Name, Target: s.target.Name(),
		Party: p.ID, PartyName: p.Name, Org: p.Organisation, Unit: -1, Func: -1, Sub: -1,
		Decision: "deny", Reason: reason, Detail: err.Error()}
	if _, aerr := s.d.Audit.Append(context.Background(), &rec); aerr != nil {
		s.d.Log.Error("audit append failed", "err", aerr)
	}
	s.d.Metrics.SessionRefused()
	s.d.Log.Warn("opc ua session to the PLC failed", "target", s.target.Name(), "session", ss.id, "err", err)
}

// readmit decides on the session again under the policy now in force.
func (s *session) readmit() {
	c := s.c
	p := c.s.d.Policy.Load().Party(s.who.Party.ID)
	if p == nil {
		c.kill("policy reload: party " + s.who.Party.ID + " is no longer enrolled")
		return
	}
	who := s.who
	who.Party = p
	adm := c.s.d.Admit(p, who)
	if adm.Verdict == policy.Deny {
		c.kill("policy reload: session no longer admitted: " + adm.String())
		return
	}
	s.reg.SetSupervised(adm.Supervised)
	s.adm.Store(&adm)
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
