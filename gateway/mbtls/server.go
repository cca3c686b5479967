package mbtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brana-ot/brana/policy"
)

// Backend is what the gateway plugs into the listener. Methods are called
// from many goroutines at once.
type Backend interface {
	// Identify binds a verified client certificate (chained to a client
	// CA, valid now) and its role ("" for none) to a party; ok=false: not
	// enrolled. [PartyOf] does it with a compiled policy.
	Identify(cert *x509.Certificate, role string) (party *policy.Party, ok bool)

	// Refused is the audit hook for every connection that is not served.
	// src is the client's host:port; what is "tls handshake" (reason is the
	// TLS error: wrong CA, expired, no client certificate, old TLS version,
	// timeout) or "certificate" (malformed role, ambiguous country, not
	// enrolled).
	Refused(src, what, reason string)

	// Serve runs the Modbus relay for an identified party over conn (a
	// *tls.Conn after its handshake) until it ends, for example with
	// modbusrelay.Server.ServeStream. certCountry is the subject country
	// of the client certificate ("" if none), for the jurisdiction signals.
	// ctx ends when the listener stops or the certificate expires; conn is
	// closed after Serve returns.
	Serve(ctx context.Context, conn net.Conn, id Identity)
}

// Identity is who is on a served connection: the party, the client address,
// how it was identified, and the certificate's subject country.
type Identity struct {
	Party       *policy.Party
	Source      string
	Via         string
	CertCountry string
}

// PartyOf is the usual Backend.Identify: the party pol binds cert to, by
// fingerprint, or by subject CN and role (policy.Policy.PartyByTLS), or nil.
func PartyOf(pol *policy.Policy, cert *x509.Certificate, role string) *policy.Party {
	return pol.PartyByTLS(policy.TLSFingerprint(cert.Raw), cert.Subject.CommonName, role)
}

// Via describes the credential for session listings and audit records:
// `tls certificate "CN" role "Operator" sha256:…`.
func Via(cert *x509.Certificate, role string) string {
	return fmt.Sprintf("tls certificate %q role %q sha256:%s", cert.Subject.CommonName, role, policy.TLSFingerprint(cert.Raw))
}

// HandshakeTimeout bounds a TLS handshake, so that a client that connects
// and says nothing does not hold a connection.
const HandshakeTimeout = 10 * time.Second

// Server serves one Modbus/TCP Security listener.
type Server struct {
	cfg Config
	b   Backend
	log *slog.Logger
	tls *tls.Config

	handshakeTimeout time.Duration

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// New checks cfg (see Config.Check) and builds its server. log may be nil.
func New(cfg Config, b Backend, log *slog.Logger) (*Server, error) {
	if problems := cfg.Check(); len(problems) > 0 {
		return nil, fmt.Errorf("mbtls: %s", strings.Join(problems, "; "))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, b: b, log: log, handshakeTimeout: HandshakeTimeout, conns: make(map[net.Conn]struct{})}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{cfg.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    cfg.clientCAs,
		MinVersion:   cfg.minVersion,
		// Every connection verifies the client's chain against the CAs of
		// this configuration, not against those of a resumed session.
		SessionTicketsDisabled: true,
	}
	return s, nil
}

// Target is the target the listener serves.
func (s *Server) Target() string { return s.cfg.Target }

// Serve accepts connections on ln (a plain TCP listener: the TLS handshake
// is done here) until ctx is done, then closes them all and waits for their
// sessions to end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		for nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "listen", s.cfg.Listen, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.mu.Lock()
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.handle(ctx, nc)
		}()
	}
}

// handle does the handshake, identifies the client and serves it.
func (s *Server) handle(ctx context.Context, nc net.Conn) {
	src := nc.RemoteAddr().String()
	tc := tls.Server(nc, s.tls)
	defer tc.Close()

	hctx, cancel := context.WithTimeout(ctx, s.handshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		reason := err.Error()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			reason = fmt.Sprintf("no TLS handshake within %s", s.handshakeTimeout)
		}
		s.refuse(src, "tls handshake", reason)
		return
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 || len(st.VerifiedChains) == 0 {
		// RequireAndVerifyClientCert makes this impossible; deny anyway.
		s.refuse(src, "tls handshake", "no verified client certificate")
		return
	}
	leaf := st.PeerCertificates[0]
	desc := fmt.Sprintf("certificate %q sha256:%s", leaf.Subject.CommonName, policy.TLSFingerprint(leaf.Raw))
	role, err := Role(leaf)
	if err != nil {
		s.refuse(src, "certificate", desc+": "+err.Error())
		return
	}
	desc += fmt.Sprintf(" role %q", role)
	country, err := subjectCountry(leaf)
	if err != nil {
		s.refuse(src, "certificate", desc+": "+err.Error())
		return
	}
	party, ok := s.b.Identify(leaf, role)
	if !ok || party == nil {
		s.refuse(src, "certificate", desc+": not bound to an enrolled party")
		return
	}

	// The session lasts no longer than the certificate chain is valid.
	end := leaf.NotAfter
	for _, c := range st.VerifiedChains[0] {
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	sctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	stop := context.AfterFunc(sctx, func() {
		if errors.Is(sctx.Err(), context.DeadlineExceeded) {
			s.log.Info("client certificate expired: session ends", "listen", s.cfg.Listen, "source", src, "party", party.ID, "at", end)
		}
		tc.Close()
	})
	defer stop()
	s.log.Debug("client identified", "listen", s.cfg.Listen, "source", src, "party", party.ID, "cert", desc)
	s.b.Serve(sctx, tc, Identity{Party: party, Source: src, Via: Via(leaf, role), CertCountry: country})
}

func (s *Server) refuse(src, what, reason string) {
	s.b.Refused(src, what, reason)
	s.log.Info("connection refused", "listen", s.cfg.Listen, "source", src, "what", what, "reason", reason)
}

// subjectCountry returns the subject's country. Two different countries
// are refused: a non-PRC one must not hide a PRC one from the jurisdiction
// signals, and the certificate does not say which is meant.
func subjectCountry(cert *x509.Certificate) (string, error) {
	var cs []string
	for _, c := range cert.Subject.Country {
		cs = append(cs, strings.ToUpper(strings.TrimSpace(c)))
	}
	slices.Sort(cs)
	cs = slices.Compact(cs)
	switch len(cs) {
	case 0:
		return "", nil
	case 1:
		return cs[0], nil
	}
	return "", fmt.Errorf("subject names %d countries (%s): jurisdiction ambiguous", len(cs), strings.Join(cs, ", "))
}
