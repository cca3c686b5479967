package sshlink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	handshakeTimeout = 30 * time.Second // key exchange and authentication must finish within this
	maxHandshakes    = 64               // unauthenticated connections at once, all sources together
	maxAuthTries     = 6                // failed attempts per connection before the library disconnects
)

// Server is the SSH vendor endpoint.
type Server struct {
	cfg      Config
	b        Backend
	log      *slog.Logger
	signer   ssh.Signer
	cas      map[string]bool
	base     ssh.ServerConfig
	limiter  *authLimiter
	now      func() time.Time
	idPrefix string
	seq      atomic.Uint64
	shakes   chan struct{}
	usage    atomic.Pointer[string]

	mu      sync.Mutex
	conns   map[string]*conn
	parties map[string]int
	sources map[netip.Addr]int
	wg      sync.WaitGroup
}

// New checks cfg, loads the host key (generating it at first start) and
// returns a server that is not listening yet.
func New(cfg Config, b Backend, log *slog.Logger) (*Server, error) {
	if b == nil {
		return nil, errors.New("sshlink: no backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p := cfg.Check(); len(p) > 0 {
		return nil, fmt.Errorf("sshlink: config: %s", strings.Join(p, "; "))
	}
	if cfg.HostKey == "" {
		return nil, errors.New("sshlink: config: host_key: required")
	}
	signer, _, err := LoadOrCreateHostKey(cfg.HostKey, log)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	s := &Server{
		cfg:      cfg,
		b:        b,
		log:      log,
		signer:   signer,
		cas:      make(map[string]bool),
		limiter:  newAuthLimiter(cfg.AuthPerMinute),
		now:      time.Now,
		idPrefix: "ssh-" + hex.EncodeToString(rnd[:]) + "-",
		shakes:   make(chan struct{}, maxHandshakes),
		conns:    make(map[string]*conn),
		parties:  make(map[string]int),
		sources:  make(map[netip.Addr]int),
	}
	for _, k := range cfg.cas {
		s.cas[string(k)] = true
	}
	s.base = ssh.ServerConfig{MaxAuthTries: maxAuthTries, ServerVersion: "SSH-2.0-brana"}
	s.base.AddHostKey(signer)
	port := "2222"
	if _, p, err := net.SplitHostPort(cfg.Listen); err == nil && p != "0" {
		port = p
	}
	s.setUsage(port)
	return s, nil
}

// setUsage fills the port into the usage text vendors see.
func (s *Server) setUsage(port string) {
	u := usageText(port)
	s.usage.Store(&u)
}

func (s *Server) usageText() string { return *s.usage.Load() }

func usageText(port string) string {
	p := "-p " + port + " "
	return "usage:\n" +
		"  ssh -N -L LOCALPORT:TARGET:PORT USER@GATEWAY " + p + "  forward to a target (then use 127.0.0.1:LOCALPORT)\n" +
		"  ssh USER@GATEWAY " + p + "request TARGET --classes read,write --for 2h --reason TICKET\n" +
		"  ssh USER@GATEWAY " + p + "status    your requests and grants\n" +
		"  ssh USER@GATEWAY " + p + "help      this text\n"
}

// HostKeyFingerprint is the SHA256 fingerprint of the host key, for the
// operator to hand to vendors.
func (s *Server) HostKeyFingerprint() string { return ssh.FingerprintSHA256(s.signer.PublicKey()) }

// HostPublicKey is the host key in authorized_keys format (for known_hosts).
func (s *Server) HostPublicKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.signer.PublicKey())))
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and waits for them. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		t := time.NewTicker(authWindow)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.limiter.prune(s.now())
			}
		}
	}()
	if _, p, err := net.SplitHostPort(s.cfg.Listen); err != nil || p == "0" {
		if _, p, err := net.SplitHostPort(ln.Addr().String()); err == nil {
			s.setUsage(p)
		}
	}
	s.log.Info("ssh vendor endpoint listening", "addr", ln.Addr().String(), "host_key", s.HostKeyFingerprint())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				cancel()
				s.wg.Wait()
				return fmt.Errorf("sshlink: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("ssh accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, nc)
		}()
	}
	s.wg.Wait()
	return nil
}

// Conns lists the live, authenticated connections.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnInfo, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, ConnInfo{ID: c.id, Identity: c.ident, Since: c.since, Channels: int(c.channels.Load())})
	}
	return out
}

// Kill ends a connection at once; false if there is no such connection.
func (s *Server) Kill(connID, reason string) bool {
	s.mu.Lock()
	c := s.conns[connID]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	c.close("killed: " + reason)
	return true
}

func (s *Server) takeSource(k netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources[k] >= s.cfg.MaxConnsPerSource {
		return false
	}
	s.sources[k]++
	return true
}

func (s *Server) releaseSource(k netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources[k]--; s.sources[k] <= 0 {
		delete(s.sources, k)
	}
}

func (s *Server) partyFull(party string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parties[party] >= s.cfg.MaxConnsPerParty
}

// register takes a party slot and lists c; false if the party is full.
func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parties[c.ident.Party] >= s.cfg.MaxConnsPerParty {
		return false
	}
	s.parties[c.ident.Party]++
	s.conns[c.id] = c
	return true
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c.id)
	if s.parties[c.ident.Party]--; s.parties[c.ident.Party] <= 0 {
		delete(s.parties, c.ident.Party)
	}
}

// conn is one SSH connection.
type conn struct {
	s      *Server
	id     string
	nc     net.Conn
	src    netip.AddrPort
	key    netip.Addr // limiter and per-source key
	since  time.Time
	ctx    context.Context
	cancel context.CancelFunc

	// Handshake goroutine only.
	authTried   []string         // methods the client tried
	authFails   int              // failed credentials in this connection
	authRefused bool             // a limit refusal was recorded during authentication
	pending     []pendingRefusal // refused credentials, recorded once authentication ends

	// Set once authenticated.
	ident          Identity
	portForwarding bool

	last     atomic.Int64 // unix nanoseconds of the last channel activity
	channels atomic.Int32 // open or held channels
	holding  atomic.Int32 // channels waiting for approval

	closeOnce sync.Once
	reasonMu  sync.Mutex
	reason    string
}

func (c *conn) touch() { c.last.Store(time.Now().UnixNano()) }

// close ends the connection once, remembering why.
func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.reasonMu.Lock()
		c.reason = reason
		c.reasonMu.Unlock()
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) closeReason() string {
	c.reasonMu.Lock()
	defer c.reasonMu.Unlock()
	return c.reason
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	src := addrPort(nc.RemoteAddr())
	key := sourceKey(src.Addr())
	if !s.takeSource(key) {
		s.b.Refused(src, nil, "connection", fmt.Sprintf("too many connections from %s (max %d)", key, s.cfg.MaxConnsPerSource))
		nc.Close()
		return
	}
	defer s.releaseSource(key)

	if left, tell, dropped := s.limiter.atAccept(key, s.now()); left > 0 && !tell {
		// Record the first drops of a block one by one, then every 100th, so
		// that a hammering source cannot flood the audit log.
		if dropped <= s.cfg.AuthPerMinute || dropped%100 == 0 {
			s.b.Refused(src, nil, "connection", fmt.Sprintf("dropped: too many failed authentication attempts from %s; refused for %s more (%d connections dropped in this block)", key, left.Round(time.Second), dropped))
		}
		nc.Close()
		return
	}

	select {
	case s.shakes <- struct{}{}:
	default:
		s.b.Refused(src, nil, "connection", fmt.Sprintf("too many unauthenticated connections (max %d)", maxHandshakes))
		nc.Close()
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &conn{
		s:      s,
		id:     s.idPrefix + strconv.FormatUint(s.seq.Add(1), 10),
		nc:     nc,
		src:    src,
		key:    key,
		since:  s.now(),
		ctx:    cctx,
		cancel: cancel,
	}
	stop := context.AfterFunc(cctx, func() {
		if ctx.Err() != nil {
			c.close("gateway shutting down")
		}
		nc.Close()
	})
	defer stop()
	cfg := s.base
	cfg.PublicKeyCallback = c.publicKey
	cfg.AuthLogCallback = c.authLog
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, &cfg)
	<-s.shakes
	if err != nil {
		nc.Close()
		var ae *ssh.ServerAuthError
		if !errors.As(err, &ae) && len(c.authTried) == 0 {
			s.log.Info("ssh handshake failed", "source", src.String(), "err", err)
			return
		}
		// A failed login: it counts against the source, and every refused
		// credential is on the record.
		if c.authFails > 0 || !c.authRefused {
			s.limiter.fail(key, s.now())
		}
		for _, p := range c.pending {
			s.b.Refused(src, nil, p.what, p.reason)
		}
		if len(c.pending) == 0 && !c.authRefused {
			s.b.Refused(src, nil, "auth", fmt.Sprintf("authentication failed: no acceptable public key offered (methods tried: %s): %v", strings.Join(c.authTried, ", "), err))
		}
		return
	}
	nc.SetDeadline(time.Time{})

	ar, _ := sc.Permissions.ExtraData[authKey{}].(*authResult)
	if ar == nil { // cannot happen: publicKey is the only way in
		sc.Close()
		return
	}
	c.ident = ar.ident
	c.ident.Conn = c.id
	c.ident.Source = src
	c.ident.User = sc.User()
	c.portForwarding = ar.portForwarding
	c.touch()
	if !s.register(c) {
		s.b.Refused(src, &c.ident, "connection", fmt.Sprintf("too many connections for party %s (max %d)", c.ident.Party, s.cfg.MaxConnsPerParty))
		sc.Close()
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			nch.Reject(ssh.ResourceShortage, "brana: too many connections")
		}
		return
	}
	defer s.unregister(c)
	detail := fmt.Sprintf("user %s, %s", c.ident.User, c.ident.Via())
	for _, p := range c.pending {
		detail += "; refused before: " + p.reason
	}
	s.b.Event("ssh.open", c.ident, detail)

	go c.idle()
	if !c.ident.ValidBefore.IsZero() {
		t := time.AfterFunc(c.ident.ValidBefore.Sub(s.now()), func() {
			s.b.Refused(src, &c.ident, "certificate", fmt.Sprintf("certificate %q serial %d expired at %s during the session", c.ident.CertID, c.ident.CertSerial, c.ident.ValidBefore.UTC().Format(time.RFC3339)))
			c.close("certificate expired")
		})
		defer t.Stop()
	}
	go c.globalRequests(reqs)
	var chwg sync.WaitGroup
	for nch := range chans {
		chwg.Add(1)
		go func() {
			defer chwg.Done()
			c.channel(nch)
		}()
	}
	c.close("connection closed by the client")
	chwg.Wait()
	s.b.Event("ssh.close", c.ident, c.closeReason())
}

// idle closes the connection after idle_timeout without channel traffic.
// Channels waiting for approval count as activity.
func (c *conn) idle() {
	idle := c.s.cfg.idleTimeout
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.holding.Load() > 0 {
			c.touch()
		}
		since := time.Since(time.Unix(0, c.last.Load()))
		if since >= idle {
			c.close(fmt.Sprintf("idle for %s", c.s.cfg.IdleTimeout))
			return
		}
		t.Reset(idle - since)
	}
}
