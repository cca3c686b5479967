package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/metrics"
)

// The decision values each relay writes into its command records; the
// metrics export them from the start, at zero.
var (
	modbusDecisions = []string{"allow", "deny", "held", "invalid"}
	opcuaDecisions  = []string{"allow", "partial", "deny", "held", "invalid"}
)

// modbusMetrics is what every Modbus front (listeners, the SSH link's
// Modbus channels, Modbus/TCP Security) counts into.
func (g *Gateway) modbusMetrics() *metrics.Front {
	return g.metrics.Front("modbus", modbusDecisions...)
}

// opcuaMetrics is what every OPC UA terminator counts into.
func (g *Gateway) opcuaMetrics() *metrics.Front {
	return g.metrics.Front("opcua", opcuaDecisions...)
}

// instrument attaches what the metrics read at every scrape: the registry of
// live sessions, the targets' queues, pending access requests and the audit
// log's own counters; and the targets' round-trip observers. Call it once the
// targets and approvals are built.
func (g *Gateway) instrument() {
	m := g.metrics
	// Both fronts exist from the start, whatever the config serves, so
	// that dashboards find every series (at zero).
	g.modbusMetrics()
	g.opcuaMetrics()
	for _, p := range []string{"modbus", "opcua"} {
		m.LiveSessions(p, func() int { return g.sessions.Count(p) })
	}
	for name, t := range g.targets {
		t.ObserveLatency(m.Target(name, t.Queued))
	}
	// OPC UA targets have no queue (each vendor session has its own PLC
	// session); their service requests share the round-trip histogram.
	for name, t := range g.opcua {
		t.ObserveLatency(m.Target(name, nil))
	}
	m.ApprovalsPending(func() int {
		return len(g.approvals.List(approvals.ListFilter{States: []approvals.State{approvals.StatePending}}))
	})
	m.Audit(func() metrics.AuditStats {
		h := g.audit.Health()
		return metrics.AuditStats{Written: h.Appended, Queued: h.Seq - h.Written, WriteErrors: h.WriteErrors,
			AppendErrors: h.AppendErrors, LiveDropped: h.LiveDropped, Failing: h.Err != "", Stalled: h.Stalled, SpaceLow: h.SpaceLow}
	})
}

// openMetrics binds the metrics listener when metrics.listen is set.
func (g *Gateway) openMetrics() error {
	mc := g.cfg.Metrics
	if !mc.Enabled() {
		return nil
	}
	log := g.log.With("part", "metrics")
	ln, err := net.Listen("tcp", mc.Listen)
	if err != nil {
		return fmt.Errorf("gateway: metrics: %w", err)
	}
	g.metricsLn = ln
	g.metricsSrv = &http.Server{
		Handler:           g.metrics.Handler(g.healthz, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("metrics endpoint", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// serveMetrics serves /metrics and /healthz until ctx is done.
func (g *Gateway) serveMetrics(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { g.metricsSrv.Close() })
	defer stop()
	if err := g.metricsSrv.Serve(g.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.log.Error("metrics endpoint stopped", "err", err)
	}
}

// healthz says why the gateway is not serving, or nil when it is: every
// listener has its server, and the audit log takes records, without which
// brana refuses every command (or, below audit.min_free, every new session).
func (g *Gateway) healthz() error {
	if !g.serving.Load() {
		return errors.New("not serving: the gateway is starting or stopping")
	}
	h := g.audit.Health()
	switch {
	case h.Err != "":
		return errors.New("audit log failing, commands are refused: " + h.Err)
	case h.Stalled:
		return errors.New("audit log write stalled beyond audit.append_timeout, commands are refused")
	case h.SpaceLow:
		return errors.New("audit disk space below audit.min_free, new sessions are refused")
	}
	return nil
}

// MetricsAddr is the metrics endpoint's address, or nil when it is off.
func (g *Gateway) MetricsAddr() net.Addr {
	if g.metricsLn == nil {
		return nil
	}
	return g.metricsLn.Addr()
}
