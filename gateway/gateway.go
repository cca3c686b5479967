// Package gateway wires brana together: it builds the audit log, the policy,
// the downstream targets and the upstream listeners from a validated config,
// runs them, and stops them in order. It owns no protocol or policy logic.
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/auditexport"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/mbtls"
	"github.com/brana-ot/brana/gateway/metrics"
	"github.com/brana-ot/brana/gateway/modbusrelay"
	"github.com/brana-ot/brana/gateway/modbustarget"
	"github.com/brana-ot/brana/gateway/opcuarelay"
	"github.com/brana-ot/brana/gateway/opcuatarget"
	"github.com/brana-ot/brana/gateway/sdnotify"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/gateway/sshlink"
	"github.com/brana-ot/brana/policy"
)

// Version is stamped at build time with -ldflags.
var (
	Version = "dev"
	Commit  = "unknown"
)

// Gateway is one running brana instance.
type Gateway struct {
	cfg      *config.Config // replaced by Reload under reloadMu
	reloadMu sync.Mutex
	log      *slog.Logger
	bootID   string

	audit    *audit.Log
	policy   atomic.Pointer[policy.Policy]
	sessions *sessions.Registry
	targets  map[string]*modbustarget.Target
	opcua    map[string]*opcuatarget.Target
	opcuaID  opcuatarget.Identity

	servers    []*modbusrelay.Server
	listeners  []net.Listener
	opcServers []*opcuarelay.Server
	opcLns     []net.Listener
	exporters  []*auditexport.Forwarder

	juris     *jurisdiction
	manifest  atomic.Pointer[firmware.Manifest] // approved program images; nil refuses every commit
	fwNote    string                            // the manifest in force or why there is none, for the start record
	approvals *approvals.Service
	ssh       *sshlink.Server
	sshLn     net.Listener
	tls       []*mbtls.Server
	tlsLns    []net.Listener
	adminLn   net.Listener
	admin     http.Handler
	accounts  *adminapi.Accounts // of the admin API; nil without admin.accounts

	consoleSrv *http.Server
	consoleLn  net.Listener
	consoleFP  string // SHA-256 fingerprint of the console's certificate

	metrics    *metrics.Set // counted always, served on metrics.listen
	metricsSrv *http.Server
	metricsLn  net.Listener
	serving    atomic.Bool // every listener has its server, for /healthz
}

func protected(fwds []*auditexport.Forwarder) func() uint64 {
	if len(fwds) == 0 {
		return nil
	}
	return auditexport.Protected(fwds)
}

// New builds every part and binds every listener, so that callers (and tests
// listening on port 0) know the addresses before Run.
func New(cfg *config.Config, log *slog.Logger) (g *Gateway, err error) {
	j := loadJurisdiction(cfg, log.With("part", "jurisdiction"))
	pol, err := policy.Compile(cfg.Spec, cfg.TargetNames(), policy.WithListings(j.listings))
	if err != nil {
		j.close()
		return nil, fmt.Errorf("gateway: policy: %w", err)
	}
	var boot [4]byte
	rand.Read(boot[:])
	g = &Gateway{cfg: cfg, log: log, bootID: hex.EncodeToString(boot[:]), targets: make(map[string]*modbustarget.Target),
		sessions: sessions.NewRegistry(), juris: j, metrics: metrics.New(Version, Commit)}
	g.policy.Store(pol)
	g.loadFirmware(cfg)
	// "return nil, err" clears g before deferred calls run: close what was built.
	built := g
	defer func() {
		if err != nil {
			built.close()
		}
	}()

	dur, err := audit.ParseDurability(cfg.Audit.Durability)
	if err != nil {
		return nil, err
	}
	// Forwarders first: retention must know what they have not sent yet.
	for _, ec := range cfg.Audit.Export {
		f, err := auditexport.New(ec, AuditDir(cfg), log.With("part", "export"))
		if err != nil {
			return nil, err
		}
		g.exporters = append(g.exporters, f)
	}
	key, created, err := AuditKey(cfg)
	if err != nil {
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	if created {
		log.Info("generated the audit checkpoint signing key; keep a copy of its public key away from this gateway",
			"key", SigningKeyPath(cfg), "public_key", PublicKeyPath(cfg), "key_id", audit.KeyID(pub))
	}
	g.audit, err = audit.Open(AuditDir(cfg), audit.Options{
		Durability:         dur,
		SyncInterval:       cfg.Audit.SyncInterval.D(),
		AppendTimeout:      cfg.Audit.AppendTimeout.D(),
		Key:                key,
		CheckpointEvery:    uint64(cfg.Audit.CheckpointEvery),
		CheckpointInterval: cfg.Audit.CheckpointInterval.D(),
		SegmentMaxBytes:    int64(cfg.Audit.SegmentMaxSize),
		SegmentMaxAge:      cfg.Audit.SegmentMaxAge.D(),
		RetainFor:          cfg.Audit.RetainFor.D(),
		MinFreeBytes:       uint64(cfg.Audit.MinFree),
		Protected:          protected(g.exporters),
		Log:                log.With("part", "audit"),
		BatchRecords:       g.metrics.AuditBatch(),
		SyncSeconds:        g.metrics.AuditSync(),
	})
	if err != nil {
		return nil, err
	}

	if dur != audit.None {
		for _, f := range g.exporters {
			f.Durable(func() uint64 { return g.audit.Health().Synced })
		}
	}

	for _, tc := range cfg.Targets {
		if tc.Protocol == "opcua" {
			continue
		}
		t, err := modbustarget.New(tc, log)
		if err != nil {
			return nil, err
		}
		g.targets[tc.Name] = t
	}
	if err := g.openOPCUATargets(); err != nil {
		return nil, err
	}
	if err := g.openApprovals(); err != nil {
		return nil, err
	}
	g.instrument()
	deps := modbusrelay.Deps{Policy: &g.policy, Targets: g.targets, Audit: g.audit, Log: log, BootID: g.bootID, Sessions: g.sessions,
		Admit: g.admit, Approvals: g.approvals, PartyInfo: partyInfo, Manifest: &g.manifest, MaxImage: int64(cfg.Firmware.MaxImage),
		Metrics: g.modbusMetrics()}
	if cfg.SSH.Enabled() {
		v, err := newVendorSSH(g, deps)
		if err != nil {
			return nil, err
		}
		if g.ssh, err = sshlink.New(cfg.SSH, v, log.With("part", "ssh")); err != nil {
			return nil, err
		}
		if g.sshLn, err = net.Listen("tcp", cfg.SSH.Listen); err != nil {
			return nil, fmt.Errorf("gateway: ssh: %w", err)
		}
		log.Info("ssh endpoint", "address", g.sshLn.Addr().String(), "host_key", g.ssh.HostKeyFingerprint())
	}
	for i, mc := range cfg.ModbusTLS {
		b, err := newModbusTLS(g, i, mc, deps)
		if err != nil {
			return nil, err
		}
		srv, err := mbtls.New(mc, b, log.With("part", "modbus-tls"))
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", mc.Listen)
		if err != nil {
			return nil, fmt.Errorf("gateway: modbus_tls[%d]: %w", i, err)
		}
		g.tls = append(g.tls, srv)
		g.tlsLns = append(g.tlsLns, ln)
	}
	for _, lc := range cfg.Listeners {
		if lc.Protocol == "opcua" {
			if err := g.listenOPCUA(lc); err != nil {
				return nil, err
			}
			continue
		}
		s, err := modbusrelay.New(lc, deps)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			return nil, fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
		}
		g.servers = append(g.servers, s)
		g.listeners = append(g.listeners, ln)
	}
	if err := g.openConsole(); err != nil {
		return nil, err
	}
	if err := g.openMetrics(); err != nil {
		return nil, err
	}
	return g, nil
}

// DataDir resolves the configured data directory against the config file's folder.
func DataDir(cfg *config.Config) string {
	d := cfg.Gateway.DataDir
	if !filepath.IsAbs(d) && cfg.File != "" {
		d = filepath.Join(filepath.Dir(cfg.File), d)
	}
	return d
}

// AuditDir is where the audit log lives.
func AuditDir(cfg *config.Config) string {
	if d := cfg.Audit.Dir; d != "" {
		if filepath.IsAbs(d) {
			return d
		}
		return filepath.Join(DataDir(cfg), d)
	}
	return filepath.Join(DataDir(cfg), "audit")
}

// cfgSnapshot is the config in force; Reload replaces it.
func (g *Gateway) cfgSnapshot() *config.Config {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.cfg
}

// SigningKeyPath is the audit checkpoint key.
func SigningKeyPath(cfg *config.Config) string {
	if k := cfg.Audit.SigningKey; k != "" {
		if filepath.IsAbs(k) {
			return k
		}
		return filepath.Join(DataDir(cfg), k)
	}
	return filepath.Join(DataDir(cfg), "keys", "audit-signing.pem")
}

// PublicKeyPath is where the checkpoint key's public half is written at first start.
func PublicKeyPath(cfg *config.Config) string {
	return strings.TrimSuffix(SigningKeyPath(cfg), ".pem") + ".pub.pem"
}

// AuditKey loads the audit checkpoint signing key, or makes it at first
// start (New, `brana init`), and writes its public half to PublicKeyPath
// when that file is missing. created reports a new key.
func AuditKey(cfg *config.Config) (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = audit.LoadOrCreateKey(SigningKeyPath(cfg))
	if err != nil {
		return nil, false, err
	}
	if _, err := os.Stat(PublicKeyPath(cfg)); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(PublicKeyPath(cfg), audit.PublicKeyPEM(key.Public().(ed25519.PublicKey)), 0o644); err != nil {
			return nil, false, fmt.Errorf("gateway: writing audit public key: %w", err)
		}
	}
	return key, created, nil
}

// Addr returns the bound address of the named listener, or nil.
func (g *Gateway) Addr(listener string) net.Addr {
	for i, s := range g.servers {
		if s.Name() == listener {
			return g.listeners[i].Addr()
		}
	}
	for i, s := range g.opcServers {
		if s.Name() == listener {
			return g.opcLns[i].Addr()
		}
	}
	return nil
}

// SSHAddr is the SSH endpoint's address, or nil when it is off.
func (g *Gateway) SSHAddr() net.Addr {
	if g.sshLn == nil {
		return nil
	}
	return g.sshLn.Addr()
}

// ModbusTLSAddr is the address of the i-th Modbus/TCP Security listener.
func (g *Gateway) ModbusTLSAddr(i int) net.Addr { return g.tlsLns[i].Addr() }

// SSHHostKey is the SSH endpoint's host key fingerprint, or "".
func (g *Gateway) SSHHostKey() string {
	if g.ssh == nil {
		return ""
	}
	return g.ssh.HostKeyFingerprint()
}

// AuditPath is the file the audit log appends to.
func (g *Gateway) AuditPath() string { return g.audit.Path() }

func addrOf(hostport string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Sessions is the registry of live sessions.
func (g *Gateway) Sessions() *sessions.Registry { return g.sessions }

// Policy is the policy in force.
func (g *Gateway) Policy() *policy.Policy { return g.policy.Load() }

// Run serves until ctx is done, then stops every listener and session and
// closes the audit log.
func (g *Gateway) Run(ctx context.Context) error {
	cfg := g.cfgSnapshot()
	name, file := cfg.Gateway.Name, cfg.File
	start := "brana " + Version + " (" + Commit + ") gateway " + name + "; admin socket " + g.adminLn.Addr().String()
	if len(g.juris.notes) > 0 {
		start += "; " + strings.Join(g.juris.notes, "; ")
	}
	if g.fwNote != "" {
		start += "; " + g.fwNote
	}
	if !g.juris.clockTrusted.Load() {
		start += "; the system clock is earlier than the last time brana saw: time-dependent decisions are treated as unknown"
	}
	g.lifecycle(audit.GatewayStart, start)
	pol := g.policy.Load()
	if _, err := g.audit.Append(ctx, &audit.Record{Type: audit.ConfigLoad, Unit: -1, Func: -1, Sub: -1,
		Status: "loaded", Detail: "config " + file, Policy: pol.Digest()}); err != nil {
		g.close()
		return fmt.Errorf("gateway: audit log: %w", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(g.servers)+len(g.opcServers)+len(g.tls)+1)
	exportCtx, stopExport := context.WithCancel(context.WithoutCancel(ctx))
	var exportWG sync.WaitGroup
	for _, f := range g.exporters {
		exportWG.Add(1)
		go func() {
			defer exportWG.Done()
			if err := f.Run(exportCtx); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("audit exporter stopped", "exporter", f.Name(), "err", err)
			}
		}()
	}
	for i, s := range g.servers {
		ln := g.listeners[i]
		g.log.Info("listening", "listener", s.Name(), "address", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(ctx, ln); err != nil {
				errs <- fmt.Errorf("listener %s: %w", s.Name(), err)
			}
		}()
	}
	for i, s := range g.opcServers {
		ln := g.opcLns[i]
		g.log.Info("listening", "listener", s.Name(), "protocol", "opcua", "address", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(ctx, ln); err != nil {
				errs <- fmt.Errorf("listener %s: %w", s.Name(), err)
			}
		}()
	}
	apCtx, stopApprovals := context.WithCancel(context.WithoutCancel(ctx))
	var apWG sync.WaitGroup
	apWG.Add(3)
	go func() {
		defer apWG.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-apCtx.Done():
				g.juris.touchClock(DataDir(g.cfgSnapshot()))
				return
			case <-t.C:
				g.juris.touchClock(DataDir(g.cfgSnapshot()))
			}
		}
	}()
	go func() { defer apWG.Done(); g.approvals.Run(apCtx) }()
	if g.consoleSrv != nil {
		apWG.Add(1)
		go func() { defer apWG.Done(); g.serveConsole(apCtx) }()
	}
	if g.metricsSrv != nil {
		apWG.Add(1)
		go func() { defer apWG.Done(); g.serveMetrics(apCtx) }()
	}
	go func() {
		defer apWG.Done()
		if err := adminapi.ServeListener(apCtx, g.adminLn, g.admin); err != nil && !errors.Is(err, context.Canceled) {
			g.log.Error("admin API stopped", "err", err)
		}
	}()
	for i, srv := range g.tls {
		ln := g.tlsLns[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				errs <- fmt.Errorf("modbus tls: %w", err)
			}
		}()
	}
	if g.ssh != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.ssh.Serve(ctx, g.sshLn); err != nil {
				errs <- fmt.Errorf("ssh: %w", err)
			}
		}()
	}
	// Every listener was bound in New and now has its server.
	g.serving.Store(true)
	stopServing := context.AfterFunc(ctx, func() { g.serving.Store(false) })
	stopNotify := g.notifySystemd(ctx, sdnotify.FromEnv())
	wg.Wait()
	stopServing()
	g.serving.Store(false)
	stopNotify()
	stopApprovals()
	apWG.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	g.lifecycle(audit.GatewayStop, "stopped")
	// Exporters get the stop record too, within their grace period.
	g.audit.Sync()
	stopExport()
	exportWG.Wait()
	g.close()
	return err
}

func (g *Gateway) lifecycle(t audit.Type, detail string) {
	if g.audit == nil {
		return
	}
	if _, err := g.audit.Append(context.Background(), &audit.Record{Type: t, Unit: -1, Func: -1, Sub: -1, Detail: detail}); err != nil {
		g.log.Error("audit append failed", "type", string(t), "err", err)
	}
}

func (g *Gateway) close() {
	for _, ln := range g.listeners {
		ln.Close()
	}
	for _, ln := range g.opcLns {
		ln.Close()
	}
	for _, t := range g.targets {
		t.Close()
	}
	if g.adminLn != nil {
		g.adminLn.Close()
	}
	if g.consoleLn != nil {
		g.consoleLn.Close()
	}
	if g.metricsLn != nil {
		g.metricsLn.Close()
	}
	if g.sshLn != nil {
		g.sshLn.Close()
	}
	for _, ln := range g.tlsLns {
		ln.Close()
	}
	if g.approvals != nil {
		// Before the audit log: its last records go there.
		if err := g.approvals.Close(); err != nil {
			g.log.Error("closing approvals", "err", err)
		}
	}
	g.juris.close()
	if g.audit != nil {
		if err := g.audit.Close(); err != nil {
			g.log.Error("closing audit log", "err", err)
		}
	}
}
