package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/console"
	"github.com/brana-ot/brana/gateway/targethealth"
)

// openConsole builds the engineer console and binds its listener when
// console.listen is set.
func (g *Gateway) openConsole() error {
	cc := g.cfg.Console
	if !cc.Enabled() {
		return nil
	}
	log := g.log.With("part", "console")
	accts := g.accounts
	if cc.Accounts != g.cfg.Admin.Accounts || accts == nil {
		var err error
		if accts, err = adminapi.LoadAccounts(cc.Accounts); err != nil {
			return fmt.Errorf("gateway: console: %w", err)
		}
	}
	cert, fp, created, err := ConsoleCertificate(g.cfg)
	if err != nil {
		return fmt.Errorf("gateway: console: %w", err)
	}
	c, err := console.New(console.Options{
		Approvals: g.approvals,
		Sessions:  g.sessions,
		AuditDir:  AuditDir(g.cfg),
		Live:      g.audit,
		Watch:     g.watchSession,
		Policy:    g.Policy,
		Targets:   g.targetStatus,
		Health:    g.Health,
		Accounts:  accts,
		TokenFile: cc.Tokens,
		Log:       log,
	})
	if err != nil {
		return fmt.Errorf("gateway: console: %w", err)
	}
	ln, err := net.Listen("tcp", cc.Listen)
	if err != nil {
		return fmt.Errorf("gateway: console: %w", err)
	}
	g.consoleLn, g.consoleFP = ln, fp
	g.consoleSrv = &http.Server{
		Handler:           c.Handler(),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: live sessions are streamed. Handshakes that a
		// browser aborts over a self-signed certificate are routine.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if created {
		log.Warn("generated a self-signed console certificate; compare its fingerprint with the one the browser shows",
			"certificate", cc.Certificate, "sha256", fp)
	}
	log.Info("engineer console", "url", "https://"+ln.Addr().String(), "certificate", cc.Certificate, "sha256", fp)
	return nil
}

// ConsoleCertificate loads the console's certificate, or makes a
// self-signed one at first start (openConsole, `brana init`) for the names
// consoleHosts gives. fp is its SHA-256 fingerprint; created reports a new
// certificate.
func ConsoleCertificate(cfg *config.Config) (cert tls.Certificate, fp string, created bool, err error) {
	cc := cfg.Console
	return console.LoadOrCreateCertificate(cc.Certificate, consoleHosts(cc.Listen, cc.Hosts))
}

// consoleHosts are the names a generated certificate covers: loopback, the
// listen address when it is a specific one, and the configured hosts.
func consoleHosts(listen string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			extra = append([]string{h}, extra...)
		}
	}
	for _, h := range extra {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// serveConsole serves the console until ctx is done.
func (g *Gateway) serveConsole(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { g.consoleSrv.Close() })
	defer stop()
	if err := g.consoleSrv.ServeTLS(g.consoleLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Error("engineer console stopped", "err", err)
	}
}

// watchSession counts an engineer watching a live session (supervised
// sessions pass commands above read only while someone does).
func (g *Gateway) watchSession(id string) (stop func(), ok bool) {
	s := g.sessions.Get(id)
	if s == nil {
		return nil, false
	}
	return s.Watch(), true
}

// targetStatus is every target's health as the gateway saw it in the
// requests it forwarded, in config order.
func (g *Gateway) targetStatus() []console.TargetStatus {
	cfg := g.cfgSnapshot()
	out := make([]console.TargetStatus, 0, len(cfg.Targets))
	for _, tc := range cfg.Targets {
		st := console.TargetStatus{Name: tc.Name, Protocol: tc.Protocol}
		var h targethealth.Health
		if t := g.targets[tc.Name]; t != nil {
			st.Protocol += "/" + tc.Transport
			st.Address, h = t.Address(), t.Health()
		} else if t := g.opcua[tc.Name]; t != nil {
			st.Address, h = t.Endpoint(), t.Health()
		}
		st.Reachable, st.LastResponse, st.LastError, st.Latency = h.Reachable(), h.LastResponse, h.LastError, h.Latency
		out = append(out, st)
	}
	return out
}

// ConsoleAddr is the engineer console's address, or nil when it is off.
func (g *Gateway) ConsoleAddr() net.Addr {
	if g.consoleLn == nil {
		return nil
	}
	return g.consoleLn.Addr()
}

// ConsoleFingerprint is the SHA-256 fingerprint of the console's
// certificate ("AB:CD:…"), or "" when the console is off.
func (g *Gateway) ConsoleFingerprint() string { return g.consoleFP }
