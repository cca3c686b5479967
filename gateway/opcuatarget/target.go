// Package opcuatarget is brana's OPC UA client side towards one PLC: it
// opens sessions with brana's own application certificate, the strongest
// security the PLC offers (or the one configured) and the target's own
// credentials, which the vendor never sees, and forwards the service
// requests the terminator has already decided on. Each vendor session gets
// a PLC session of its own, so that subscription and monitored item ids
// need no mapping and one vendor's subscriptions never reach another.
package opcuatarget

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/gateway/targethealth"
)

// Target is one configured OPC UA PLC.
type Target struct {
	cfg      config.Target
	cert     []byte // DER
	key      *rsa.PrivateKey
	appURI   string
	password string
	slots    chan struct{}
	log      *slog.Logger
	health   targethealth.Tracker
	pinNoted atomic.Bool // an unpinned PLC's certificate fingerprint was logged (pin.go)
}

// Identity is brana's application instance certificate towards PLCs.
type Identity = opcuatrust.Identity

// New builds a target. password is the content of its password file.
func New(cfg config.Target, id Identity, password string, log *slog.Logger) *Target {
	return &Target{cfg: cfg, cert: id.Cert, key: id.Key, appURI: id.AppURI, password: password,
		slots: make(chan struct{}, cfg.MaxSessions), log: log.With("target", cfg.Name)}
}

// ReadPassword reads a target's password file: the first line.
func ReadPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("opcua target password: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("opcua target password: %s is empty", path)
	}
	return line, nil
}

// Name is the target's configured name.
func (t *Target) Name() string { return t.cfg.Name }

// Endpoint is the PLC's endpoint URL.
func (t *Target) Endpoint() string { return t.cfg.Endpoint }

// Health says when the PLC last answered (a session opened, a request
// answered) and what last went wrong; the gateway does not probe it.
func (t *Target) Health() targethealth.Health { return t.health.Health() }

// ObserveLatency has the round trip of every answered service request, in
// seconds, observed by o (for metrics): the vendor's requests brana forwards
// and brana's own lookups, not the session's set-up (GetEndpoints,
// CreateSession, ActivateSession, also when a session is restored) and not
// Publish, a long poll whose wait is the subscription's keep-alive. Call it
// before the first session opens.
func (t *Target) ObserveLatency(o targethealth.Observer) { t.health.SetObserver(o) }

// Timeout is the longest wait for an answer to an ordinary request.
func (t *Target) Timeout() time.Duration { return t.cfg.Timeout.D() }

// ErrBusy reports that the target already has max_sessions sessions.
var ErrBusy = errors.New("the PLC's session limit on this gateway is reached")

// policy strength, strongest first; the deprecated Basic128Rsa15 and
// Basic256 are used only when named.
var policyRank = []string{ua.SecurityPolicyURIAes256Sha256RsaPss, ua.SecurityPolicyURIBasic256Sha256,
	ua.SecurityPolicyURIAes128Sha256RsaOaep, ua.SecurityPolicyURINone}

// choose picks the endpoint to use: the configured policy and mode, or the
// strongest offered, with the user token type brana's credentials need.
func (t *Target) choose(eps []*ua.EndpointDescription) (*ua.EndpointDescription, ua.UserTokenType, error) {
	tok := ua.UserTokenTypeAnonymous
	if t.cfg.Username != "" {
		tok = ua.UserTokenTypeUserName
	}
	var best *ua.EndpointDescription
	bestScore := -1
	for _, ep := range eps {
		pr := slices.Index(policyRank, ep.SecurityPolicyURI)
		if pr < 0 {
			continue
		}
		if p := t.cfg.SecurityPolicy; p != "auto" && ua.FormatSecurityPolicyURI(p) != ep.SecurityPolicyURI {
			continue
		}
		if m := t.cfg.SecurityMode; m != "auto" && ua.MessageSecurityModeFromString(m) != ep.SecurityMode {
			continue
		}
		if !slices.ContainsFunc(ep.UserIdentityTokens, func(u *ua.UserTokenPolicy) bool { return u.TokenType == tok }) {
			continue
		}
		score := int(ep.SecurityMode)*10 + (len(policyRank) - pr)
		if score > bestScore {
			best, bestScore = ep, score
		}
	}
	if best == nil {
		var offered []string
		for _, ep := range eps {
			offered = append(offered, security(ep))
		}
		return nil, tok, fmt.Errorf("the PLC offers no endpoint for security %s/%s with %s users (it offers %s)",
			t.cfg.SecurityPolicy, t.cfg.SecurityMode, tokenName(tok), strings.Join(offered, ", "))
	}
	return best, tok, nil
}

func tokenName(t ua.UserTokenType) string {
	if t == ua.UserTokenTypeUserName {
		return "username"
	}
	return "anonymous"
}

// Open opens a PLC session for one vendor session. The caller closes it.
func (t *Target) Open(ctx context.Context, name string) (*Session, error) {
	select {
	case t.slots <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	start := time.Now()
	s, err := t.open(ctx, name)
	if err != nil {
		<-t.slots
		t.health.Failed(err)
		return nil, err
	}
	t.health.Connected(start) // reachable, but several round trips: not one request's latency
	return s, nil
}

func (t *Target) open(ctx context.Context, name string) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout()+5*time.Second)
	defer cancel()
	base := t.baseOptions()
	eps, err := opcua.GetEndpoints(ctx, t.cfg.Endpoint, base...)
	if err != nil {
		return nil, fmt.Errorf("GetEndpoints at %s: %w", t.cfg.Endpoint, err)
	}
	if eps, err = t.pin(eps); err != nil {
		return nil, err
	}
	ep, tok, err := t.choose(eps)
	if err != nil {
		return nil, err
	}
	t.notePin(ep)
	opts := append(base,
		opcua.SecurityFromEndpoint(ep, tok),
		opcua.SessionName("brana "+name),
		opcua.SessionTimeout(sessionTimeout),
		// Publish is a long poll: ordinary requests are bounded by their
		// context instead of the channel's request timeout.
		opcua.RequestTimeout(publishTimeout),
		// brana restores the session itself (see restore): gopcua v0.8.0's
		// own reconnect closes the session it has just re-activated, and
		// with it every subscription the vendor had.
		opcua.AutoReconnect(false),
	)
	if tok == ua.UserTokenTypeUserName {
		opts = append(opts, opcua.AuthUsername(t.cfg.Username, t.password))
	} else {
		opts = append(opts, opcua.AuthAnonymous())
	}
	c, err := opcua.NewClient(t.cfg.Endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to %s (%s): %w", t.cfg.Endpoint, security(ep), err)
	}
	if err := t.checkChannel(c); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	t.log.Info("opc ua session opened", "endpoint", t.cfg.Endpoint, "security", security(ep), "user", tokenName(tok))
	return &Session{t: t, c: c, opts: opts, ns: c.Namespaces(), pub: make(chan struct{}, t.cfg.MaxPublish),
		Security: security(ep)}, nil
}

// baseOptions are the options of every connection to the PLC, discovery
// included: brana's application and certificate.
func (t *Target) baseOptions() []opcua.Option {
	return []opcua.Option{
		opcua.ApplicationURI(t.appURI), opcua.ApplicationName("brana gateway"), opcua.ProductURI("urn:brana"),
		opcua.Certificate(t.cert), opcua.PrivateKey(t.key), opcua.DialTimeout(t.Timeout()),
	}
}

const (
	// publishTimeout bounds one Publish at the PLC: far longer than any
	// keep-alive a subscription can ask for, short enough to free a stuck slot.
	publishTimeout = 10 * time.Minute
	// publishSlotWait is the longest a Publish waits for one of the
	// session's max_publish slots.
	publishSlotWait = 5 * time.Second
	// sessionTimeout is how long the PLC keeps the session (and the
	// vendor's subscriptions) while brana restores a dropped connection.
	sessionTimeout = 10 * time.Minute
)

// Session is one PLC session. When its connection drops, brana opens a new
// secure channel and re-activates the same session on it, so that the
// vendor's subscriptions and monitored items live on; only if the PLC no
// longer knows the session is it lost, and OnLost says so.
type Session struct {
	t    *Target
	opts []opcua.Option
	ns   []string
	pub  chan struct{} // outstanding Publish requests

	mu        sync.Mutex
	c         *opcua.Client
	restoring chan struct{} // closed when a restore ends; nil when none runs
	lost      error         // the session is gone for good
	closed    bool
	onLost    func(error)

	Security string // policy/mode in use, for the audit log
}

// Namespaces is the PLC's NamespaceArray as read at connect.
func (s *Session) Namespaces() []string { return s.ns }

// OnLost sets what runs once when the PLC session cannot be restored.
func (s *Session) OnLost(f func(error)) {
	s.mu.Lock()
	s.onLost = f
	s.mu.Unlock()
}

// current waits for a restore in progress and returns the client to use.
func (s *Session) current(ctx context.Context) (*opcua.Client, error) {
	for {
		s.mu.Lock()
		c, wait, lost := s.c, s.restoring, s.lost
		s.mu.Unlock()
		switch {
		case lost != nil:
			return nil, lost
		case wait == nil:
			return c, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Do sends req and returns the PLC's response, which may be a
// *ua.ServiceFault. A Publish waits for a free slot (max_publish) and is not
// cut by the target's timeout; everything else is. A request that fails
// because the connection dropped is not sent again (it may have reached the
// PLC); the connection is restored for the next one.
func (s *Session) Do(ctx context.Context, req ua.Request) (ua.Response, error) {
	if _, ok := req.(*ua.PublishRequest); ok {
		// The vendor's own timeout hint bounds the poll, so that a
		// Publish lost with a dropped PLC connection frees its slot.
		wait := publishTimeout
		if h := req.Header(); h != nil && h.TimeoutHint > 0 {
			wait = min(wait, time.Duration(h.TimeoutHint)*time.Millisecond+s.t.Timeout())
		}
		// A Publish waits for a slot only briefly: piled-up waiting
		// Publishes would hold the vendor channel's request slots. The
		// answer that makes clients back off is the PLC's own.
		slot := time.NewTimer(min(wait, publishSlotWait))
		select {
		case s.pub <- struct{}{}:
			slot.Stop()
		case <-slot.C:
			return &ua.ServiceFault{ResponseHeader: &ua.ResponseHeader{Timestamp: time.Now(),
				ServiceResult: ua.StatusBadTooManyPublishRequests, ServiceDiagnostics: &ua.DiagnosticInfo{},
				AdditionalHeader: ua.NewExtensionObject(nil)}}, nil
		case <-ctx.Done():
			slot.Stop()
			return nil, ctx.Err()
		}
		defer func() { <-s.pub }()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.t.Timeout())
		defer cancel()
	}
	c, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	var resp ua.Response
	start := time.Now()
	err = c.Send(ctx, req, func(r ua.Response) error {
		resp = r
		return nil
	})
	if resp != nil {
		if _, publish := req.(*ua.PublishRequest); !publish {
			s.t.health.Answered(start) // a Publish's wait is the PLC's keep-alive, not its latency
		}
		return resp, nil // a bad ServiceResult is the PLC's answer, not a transport error
	}
	if err == nil {
		err = errors.New("no response")
	}
	if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.t.health.Failed(err)
	}
	if dropped(err) && ctx.Err() == nil {
		s.restore(c)
	}
	return nil, err
}

// dropped reports whether err means the connection to the PLC is gone.
func dropped(err error) bool {
	var st ua.StatusCode
	if errors.As(err, &st) {
		return st == ua.StatusBadServerNotConnected || st == ua.StatusBadSecureChannelClosed ||
			st == ua.StatusBadConnectionClosed || st == ua.StatusBadSecureChannelIDInvalid
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// restore starts re-activating the session on a new connection, once for
// the client that failed.
func (s *Session) restore(failed *opcua.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != failed || s.restoring != nil || s.lost != nil || s.closed {
		return
	}
	s.restoring = make(chan struct{})
	go s.reactivate(failed)
}

func (s *Session) reactivate(failed *opcua.Client) {
	log := s.t.log
	sess, _ := failed.DetachSession(context.Background())
	failed.Close(context.Background()) // no session attached: only the channel closes
	deadline := time.Now().Add(sessionTimeout)
	var err error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if attempt > 0 {
			time.Sleep(min(time.Duration(attempt)*time.Second, 10*time.Second))
		}
		if sess == nil {
			break
		}
		var c *opcua.Client
		if c, err = opcua.NewClient(s.t.cfg.Endpoint, s.opts...); err != nil {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.t.Timeout()+5*time.Second)
		// A pinned certificate is checked on every connection, as at the
		// first: the PLC may have been replaced since (pin.go).
		if err = s.t.recheckPin(ctx); err == nil {
			err = c.Dial(ctx)
		}
		if err != nil {
			cancel()
			if mismatch(err) {
				break
			}
			log.Debug("opc ua reconnect failed", "err", err, "attempt", attempt+1)
			continue
		}
		if err = s.t.checkChannel(c); err != nil {
			c.Close(context.Background())
			cancel()
			break
		}
		err = c.ActivateSession(ctx, sess)
		cancel()
		if err != nil {
			c.Close(context.Background())
			if sessionGone(err) {
				break // the PLC no longer knows the session
			}
			log.Debug("opc ua session re-activation failed; trying again", "err", err, "attempt", attempt+1)
			continue
		}
		log.Info("opc ua session restored on a new connection", "endpoint", s.t.cfg.Endpoint, "attempts", attempt+1)
		s.mu.Lock()
		closed := s.closed
		if !closed {
			s.c = c
		}
		close(s.restoring)
		s.restoring = nil
		s.mu.Unlock()
		if closed {
			// The vendor left while brana reconnected: the restored
			// client now closes the PLC session (and its subscriptions).
			c.Close(context.Background())
		}
		return
	}
	if err == nil {
		err = errors.New("the session could not be restored")
	}
	err = fmt.Errorf("the PLC session is lost: %w", err)
	log.Warn("opc ua session lost", "endpoint", s.t.cfg.Endpoint, "err", err)
	s.mu.Lock()
	s.lost = err
	close(s.restoring)
	s.restoring = nil
	f := s.onLost
	if s.closed {
		f = nil // nobody to tell: the vendor closed the session already
	}
	s.mu.Unlock()
	if f != nil {
		f(err)
	}
}

// sessionGone reports whether an ActivateSession failed because the PLC
// no longer knows the session, rather than for a passing reason.
func sessionGone(err error) bool {
	var st ua.StatusCode
	if !errors.As(err, &st) {
		return false
	}
	switch st {
	case ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
		ua.StatusBadIdentityTokenInvalid, ua.StatusBadIdentityTokenRejected, ua.StatusBadUserAccessDenied,
		ua.StatusBadApplicationSignatureInvalid:
		return true
	}
	return false
}

// Close closes the PLC session and frees its slot.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	c := s.c
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		s.t.log.Debug("closing the opc ua session", "err", err)
	}
	<-s.t.slots
}

// security names an endpoint's policy and mode the way operators write
// them: "Basic256Sha256/SignAndEncrypt".
func security(ep *ua.EndpointDescription) string {
	return strings.TrimPrefix(ep.SecurityPolicyURI, "http://opcfoundation.org/UA/SecurityPolicy#") + "/" +
		strings.TrimPrefix(ep.SecurityMode.String(), "MessageSecurityMode")
}
