package mbtls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/policy"
)

// event is one call of the fake backend.
type event struct {
	kind         string // "refused" or "serve"
	src          string
	what, reason string   // refused
	id           Identity // serve
	country      string   // serve
}

// fakeBackend binds certificates with a compiled policy, records every
// call and, instead of a Modbus relay, echoes lines until "quit".
type fakeBackend struct {
	pol    *policy.Policy
	events chan event

	mu    sync.Mutex
	roles []string // what Identify was given
}

func (b *fakeBackend) Identify(cert *x509.Certificate, role string) (*policy.Party, bool) {
	b.mu.Lock()
	b.roles = append(b.roles, role)
	b.mu.Unlock()
	p := PartyOf(b.pol, cert, role)
	return p, p != nil
}

func (b *fakeBackend) Refused(src, what, reason string) {
	b.events <- event{kind: "refused", src: src, what: what, reason: reason}
}

func (b *fakeBackend) Serve(ctx context.Context, conn net.Conn, id Identity) {
	country := id.CertCountry
	b.events <- event{kind: "serve", src: id.Source, id: id, country: country}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(conn, line); err != nil || line == "quit\n" {
			return
		}
	}
}

func (b *fakeBackend) lastRole(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.roles) == 0 {
		t.Fatal("Identify was not called")
	}
	return b.roles[len(b.roles)-1]
}

// next waits for the backend's next call.
func (b *fakeBackend) next(t *testing.T) event {
	t.Helper()
	select {
	case ev := <-b.events:
		return ev
	case <-time.After(15 * time.Second):
		t.Fatal("no backend call within 15s")
		return event{}
	}
}

// quiet checks that the backend was not called again.
func (b *fakeBackend) quiet(t *testing.T) {
	t.Helper()
	select {
	case ev := <-b.events:
		t.Fatalf("unexpected backend call %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

// testPolicy binds hmi-01 as Operator to one party and as Engineer to
// another, and the laptop certificate by its fingerprint.
func testPolicy(t *testing.T, p *testPKI) *policy.Policy {
	t.Helper()
	pol, err := policy.Compile(policy.Spec{Parties: []policy.PartySpec{
		{ID: "vendor-ops", Name: "Vendor operator", Kind: "vendor", TLSClients: []policy.TLSBindingSpec{{CommonName: "hmi-01", Role: "Operator"}}},
		{ID: "vendor-eng", Name: "Vendor engineer", Kind: "vendor", TLSClients: []policy.TLSBindingSpec{{CommonName: "hmi-01", Role: "Engineer"}}},
		{ID: "integ", Name: "Integrator laptop", Kind: "integrator", TLSClients: []policy.TLSBindingSpec{{Fingerprint: policy.TLSFingerprint(p.laptop.cert.Raw)}}},
	}}, []string{"plc1"})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// testServer is a running listener on 127.0.0.1:0.
type testServer struct {
	addr string
	b    *fakeBackend
	srv  *Server
	stop func() // cancels Serve and waits for it
}

func startServer(t *testing.T, p *testPKI, mod func(*Config), tune func(*Server)) *testServer {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Cert: p.server.certFile, Key: p.server.keyFile, ClientCAs: []string{p.ca.certFile}, Target: "plc1"}
	if mod != nil {
		mod(&cfg)
	}
	b := &fakeBackend{pol: testPolicy(t, p), events: make(chan event, 64)}
	srv, err := New(cfg, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(srv)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	ts := &testServer{addr: ln.Addr().String(), b: b, srv: srv}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// clientConfig trusts the test CA for the server and presents cert.
func clientConfig(p *testPKI, cert *testCert) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if cert != nil {
		// Sent whatever CAs the server names: Go's client would hold back
		// a certificate from a CA the server does not ask for.
		tc := cert.tls()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
	}
	return cfg
}

// echo connects with Go's TLS client, sends a line and reads it back. It
// returns the client's source address and the first error.
func echo(addr string, cfg *tls.Config) (src string, err error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer raw.Close()
	src = raw.LocalAddr().String()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return src, err
	}
	// With TLS 1.3 the client finishes its handshake before the server has
	// checked the client certificate: a refusal shows on the first read.
	r := bufio.NewReader(c)
	for _, line := range []string{"hello brana\n", "quit\n"} {
		if _, err := io.WriteString(c, line); err != nil {
			return src, err
		}
		got, err := r.ReadString('\n')
		if err != nil {
			return src, err
		}
		if got != line {
			return src, errors.New("echo: got " + got)
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return src, errors.New("server did not close after quit")
	}
	return src, nil
}

func TestServe(t *testing.T) {
	p := newPKI(t)
	ts := startServer(t, p, nil, nil)
	tests := []struct {
		name   string
		cert   *testCert
		tweak  func(*tls.Config)
		party  string // ok: the party served
		role   string // ok: the role Identify got
		what   string // fail: Refused's what
		reason string // fail: substring of Refused's reason
	}{
		{name: "ok/role-operator", cert: p.operator, party: "vendor-ops", role: "Operator"},
		{name: "ok/role-engineer", cert: p.engineer, party: "vendor-eng", role: "Engineer"},
		{name: "ok/fingerprint-without-role", cert: p.laptop, party: "integ", role: ""},
		{name: "ok/tls-1.2", cert: p.operator, party: "vendor-ops", role: "Operator", tweak: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }},
		{name: "fail/wrong-ca", cert: p.wrongCA, what: "tls handshake", reason: "unknown authority"},
		{name: "fail/expired", cert: p.expired, what: "tls handshake", reason: "expired"},
		{name: "fail/no-client-cert", what: "tls handshake", reason: "didn't provide a certificate"},
		{name: "fail/tls-1.1", cert: p.operator, what: "tls handshake", reason: "unsupported versions",
			tweak: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
		{name: "fail/tls-1.2-no-client-cert", what: "tls handshake", reason: "didn't provide a certificate",
			tweak: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }},
		{name: "fail/server-cert-as-client-cert", cert: p.server, what: "tls handshake", reason: "key usage"},
		{name: "fail/unknown-party", cert: p.stranger, what: "certificate", reason: `certificate "stranger" sha256:` + policy.TLSFingerprint(p.stranger.cert.Raw) + ` role "Operator": not bound to an enrolled party`},
		{name: "fail/malformed-role", cert: p.badRole, what: "certificate", reason: "malformed Modbus role extension: not a UTF8String"},
		{name: "fail/two-countries", cert: p.twoCountries, what: "certificate", reason: "subject names 2 countries (CN, CZ)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientConfig(p, tt.cert)
			if tt.tweak != nil {
				tt.tweak(cfg)
			}
			src, err := echo(ts.addr, cfg)
			ev := ts.b.next(t)
			if tt.party == "" {
				if err == nil {
					t.Fatal("client got its echo; want the connection refused")
				}
				if ev.kind != "refused" || ev.what != tt.what || !strings.Contains(ev.reason, tt.reason) {
					t.Fatalf("backend call %+v; want Refused(%q, ...%q...)", ev, tt.what, tt.reason)
				}
				if ev.src != src {
					t.Fatalf("Refused source %q; want the client's %q", ev.src, src)
				}
				ts.b.quiet(t)
				return
			}
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if ev.kind != "serve" || ev.id.Party == nil || ev.id.Party.ID != tt.party {
				t.Fatalf("backend call %+v; want Serve for %s", ev, tt.party)
			}
			if got := ts.b.lastRole(t); got != tt.role {
				t.Fatalf("Identify got role %q; want %q", got, tt.role)
			}
			wantVia := `tls certificate "` + tt.cert.cert.Subject.CommonName + `" role "` + tt.role + `" sha256:` + policy.TLSFingerprint(tt.cert.cert.Raw)
			if ev.id.Via != wantVia || ev.id.Source != src || ev.country != "CZ" {
				t.Fatalf("Identity %+v, country %q; want Via %q, Source %q, country CZ", ev.id, ev.country, wantVia, src)
			}
			ts.b.quiet(t)
		})
	}
}

func TestServeMinVersion13(t *testing.T) {
	p := newPKI(t)
	ts := startServer(t, p, func(c *Config) { c.MinVersion = "1.3" }, nil)
	cfg := clientConfig(p, p.operator)
	cfg.MaxVersion = tls.VersionTLS12
	if _, err := echo(ts.addr, cfg); err == nil {
		t.Fatal("TLS 1.2 client served by a 1.3-only listener")
	}
	if ev := ts.b.next(t); ev.kind != "refused" || !strings.Contains(ev.reason, "unsupported versions") {
		t.Fatalf("backend call %+v; want a refused handshake", ev)
	}
	if _, err := echo(ts.addr, clientConfig(p, p.operator)); err != nil {
		t.Fatalf("TLS 1.3 client: %v", err)
	}
	if ev := ts.b.next(t); ev.kind != "serve" {
		t.Fatalf("backend call %+v; want Serve", ev)
	}
}

func TestServeHandshakeTimeout(t *testing.T) {
	p := newPKI(t)
	ts := startServer(t, p, nil, func(s *Server) { s.handshakeTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev := ts.b.next(t)
	if ev.kind != "refused" || ev.what != "tls handshake" || !strings.Contains(ev.reason, "no TLS handshake within 200ms") || ev.src != c.LocalAddr().String() {
		t.Fatalf("backend call %+v; want a handshake timeout from %s", ev, c.LocalAddr())
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after timeout: %v; want EOF", err)
	}
}

func TestServeCertificateExpiresMidSession(t *testing.T) {
	p := newPKI(t)
	short := p.client(t, "short", p.ca, "hmi-01", "Operator", func(c *x509.Certificate) { c.NotAfter = time.Now().Add(3 * time.Second) })
	ts := startServer(t, p, nil, nil)
	c, err := tls.Dial("tcp", ts.addr, clientConfig(p, short))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(c)
	io.WriteString(c, "hello\n")
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	if ev := ts.b.next(t); ev.kind != "serve" {
		t.Fatalf("backend call %+v; want Serve", ev)
	}
	// The server ends the session when the certificate expires.
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read a byte; want the session closed")
	}
	if now := time.Now(); now.Before(short.cert.NotAfter) {
		t.Fatalf("session closed at %s, before the certificate expired at %s", now, short.cert.NotAfter)
	}
}

func TestServeStops(t *testing.T) {
	p := newPKI(t)
	ts := startServer(t, p, nil, nil)
	c, err := tls.Dial("tcp", ts.addr, clientConfig(p, p.operator))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "hello\n")
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ts.stop() // fails the test unless Serve returns
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("session still open after the listener stopped")
	}
}

// needOpenSSL returns the openssl binary, skipping only outside CI.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	return bin
}

// TestServeOpenSSL uses a TLS client nobody here wrote: openssl s_client.
func TestServeOpenSSL(t *testing.T) {
	p := newPKI(t)
	ts := startServer(t, p, nil, nil)
	tests := []struct {
		name   string
		cert   *testCert
		args   []string
		party  string
		role   string
		reason string
	}{
		{name: "ok/openssl-role-operator", cert: p.operator, party: "vendor-ops", role: "Operator"},
		{name: "ok/openssl-role-engineer", cert: p.engineer, party: "vendor-eng", role: "Engineer"},
		{name: "ok/openssl-tls-1.2", cert: p.engineer, party: "vendor-eng", role: "Engineer", args: []string{"-tls1_2"}},
		{name: "fail/openssl-wrong-ca", cert: p.wrongCA, reason: "unknown authority"},
		{name: "fail/openssl-expired", cert: p.expired, reason: "expired"},
		{name: "fail/openssl-no-client-cert", reason: "didn't provide a certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := needOpenSSL(t)
			args := []string{"s_client", "-connect", ts.addr, "-CAfile", p.ca.certFile,
				"-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet"}
			if tt.cert != nil {
				args = append(args, "-cert", tt.cert.certFile, "-key", tt.cert.keyFile)
			}
			args = append(args, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Stdin = strings.NewReader("hello brana\nquit\n")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			ev := ts.b.next(t)
			if tt.party == "" {
				if strings.Contains(stdout.String(), "hello brana") || ev.kind != "refused" || ev.what != "tls handshake" || !strings.Contains(ev.reason, tt.reason) {
					t.Fatalf("backend call %+v, openssl stdout %q; want Refused(tls handshake, ...%q...)", ev, stdout.String(), tt.reason)
				}
				ts.b.quiet(t)
				return
			}
			if err != nil || stdout.String() != "hello brana\nquit\n" {
				t.Fatalf("openssl s_client: %v, stdout %q\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if ev.kind != "serve" || ev.id.Party == nil || ev.id.Party.ID != tt.party || ts.b.lastRole(t) != tt.role || ev.country != "CZ" {
				t.Fatalf("backend call %+v, role %q; want Serve for %s with role %s", ev, ts.b.lastRole(t), tt.party, tt.role)
			}
			ts.b.quiet(t)
		})
	}
}
