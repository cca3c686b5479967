// Package metrics owns brana's operations endpoint: what a monitoring system
// scrapes (/metrics, the Prometheus text format) and asks (/healthz). It keeps
// its own registry rather than the process-wide default, so that only what
// brana chose is exposed and two gateways in one process (tests) do not share
// counters. Labelled children are resolved once, when a front, target or
// source is attached, so that counting on the inline path is an atomic add
// that never allocates. It imports nothing of brana: the gateway hands it
// functions that read the counters other packages already keep.
package metrics

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Latency buckets, in seconds: from a loopback round trip (tens of
// microseconds) to a target's timeout and queue wait (seconds).
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Set is one gateway's registry and collectors.
type Set struct {
	reg *prometheus.Registry

	opened, refused, decisions *prometheus.CounterVec
	commands, roundTrip        *prometheus.HistogramVec
	auditBatch, auditSync      prometheus.Histogram

	mu     sync.Mutex
	fronts map[string]*Front
}

// New makes a set with the Go runtime and process collectors and
// brana_build_info for version and commit.
func New(version, commit string) *Set {
	s := &Set{reg: prometheus.NewRegistry(), fronts: make(map[string]*Front)}
	s.opened = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brana_sessions_opened_total",
		Help: "Client sessions admitted, by protocol."}, []string{"protocol"})
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brana_sessions_refused_total",
		Help: "Connections and sessions refused (each is a session.refused audit record), by protocol; ssh is the vendor SSH link itself."},
		[]string{"protocol"})
	s.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brana_decisions_total",
		Help: "Client requests decided, by protocol and the decision in their audit record (allow, deny, held, invalid; partial for OPC UA)."},
		[]string{"protocol", "decision"})
	s.commands = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brana_command_duration_seconds",
		Help:    "Time from a client request received to brana's answer written to the client, by protocol.",
		Buckets: latencyBuckets}, []string{"protocol"})
	s.roundTrip = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brana_target_roundtrip_seconds",
		Help:    "Time from a request sent to a target (PLC) to its answer, by target: Modbus requests, OPC UA service requests (not session set-up, not Publish); requests that got no answer are not observed.",
		Buckets: latencyBuckets}, []string{"target"})
	s.auditBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "brana_audit_batch_records",
		Help:    "Records per write to the audit log (group commit).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13)})
	s.auditSync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "brana_audit_fsync_duration_seconds",
		Help:    "Time one fdatasync of the audit log took.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "brana_build_info",
		Help:        "Always 1; the labels say which brana this is.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit}})
	build.Set(1)
	s.reg.MustRegister(s.opened, s.refused, s.decisions, s.commands, s.roundTrip, s.auditBatch, s.auditSync, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// Gatherer is the set's registry, for tests and for serving elsewhere.
func (s *Set) Gatherer() prometheus.Gatherer { return s.reg }

// Front is what one protocol front (modbus, opcua) counts. Its children are
// resolved when it is made, so every method is an atomic add or one
// histogram observation and allocates nothing. A nil *Front counts nothing,
// so a relay built without metrics (unit tests) needs no checks.
type Front struct {
	protocol        string
	decisions       *prometheus.CounterVec
	known           []decisionCounter
	opened, refused prometheus.Counter
	latency         prometheus.Observer
}

type decisionCounter struct {
	decision string
	c        prometheus.Counter
}

// Front returns the front for protocol, made on the first call with the
// decision values its relay writes (they are exported as zero until they
// happen); later calls return the same front.
func (s *Set) Front(protocol string, decisions ...string) *Front {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fronts[protocol]; f != nil {
		return f
	}
	f := &Front{protocol: protocol, decisions: s.decisions, opened: s.opened.WithLabelValues(protocol),
		refused: s.refused.WithLabelValues(protocol), latency: s.commands.WithLabelValues(protocol)}
	for _, d := range decisions {
		f.known = append(f.known, decisionCounter{d, s.decisions.WithLabelValues(protocol, d)})
	}
	s.fronts[protocol] = f
	return f
}

// SessionsRefused is the refusal counter of protocol, for an entry point
// that refuses before any front is involved (the SSH link).
func (s *Set) SessionsRefused(protocol string) prometheus.Counter {
	return s.refused.WithLabelValues(protocol)
}

// SessionOpened counts an admitted session.
func (f *Front) SessionOpened() {
	if f != nil {
		f.opened.Inc()
	}
}

// SessionRefused counts a refused connection or session.
func (f *Front) SessionRefused() {
	if f != nil {
		f.refused.Inc()
	}
}

// Decided counts a request with the decision its audit record carries.
func (f *Front) Decided(decision string) {
	if f == nil {
		return
	}
	for i := range f.known {
		if f.known[i].decision == decision {
			f.known[i].c.Inc()
			return
		}
	}
	// A value the front was not made with: counted all the same, at the
	// cost of a lookup.
	f.decisions.WithLabelValues(f.protocol, decision).Inc()
}

// Answered observes the time from since (the request received) to now (its
// answer written).
func (f *Front) Answered(since time.Time) {
	if f != nil {
		f.latency.Observe(time.Since(since).Seconds())
	}
}

// LiveSessions exports count as the live sessions of protocol, read at
// every scrape.
func (s *Set) LiveSessions(protocol string, count func() int) {
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brana_sessions_live",
		Help: "Client sessions open now, by protocol.", ConstLabels: prometheus.Labels{"protocol": protocol}},
		func() float64 { return float64(count()) }))
}

// Target returns the round-trip observer of the named target and, when
// queued is not nil, exports it as the requests waiting for one of the
// target's connections, read at every scrape.
func (s *Set) Target(name string, queued func() int) prometheus.Observer {
	if queued != nil {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brana_target_queued_requests",
			Help:        "Requests waiting for a free connection (or pipeline slot) to a Modbus target, by target.",
			ConstLabels: prometheus.Labels{"target": name}},
			func() float64 { return float64(queued()) }))
	}
	return s.roundTrip.WithLabelValues(name)
}

// ApprovalsPending exports count as the access requests awaiting a decision,
// read at every scrape.
func (s *Set) ApprovalsPending(count func() int) {
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brana_approvals_pending",
		Help: "Access requests waiting for an engineer's decision."},
		func() float64 { return float64(count()) }))
}

// AuditBatch observes the records of each write to the audit log.
func (s *Set) AuditBatch() prometheus.Observer { return s.auditBatch }

// AuditSync observes the seconds each fdatasync of the audit log took.
func (s *Set) AuditSync() prometheus.Observer { return s.auditSync }

// AuditStats is what the audit log counts itself, read once per scrape.
type AuditStats struct {
	Written      uint64 // records written to the file since the start
	Queued       uint64 // records accepted and not written yet
	WriteErrors  uint64 // failed writes or fdatasyncs
	AppendErrors uint64 // records the log refused; each refused its command
	LiveDropped  uint64 // records slow live viewers did not get
	Failing      bool   // a write failed and the log has not recovered: commands are refused
	Stalled      bool   // a write has been in flight longer than the append timeout
	SpaceLow     bool   // free space below audit.min_free: new sessions are refused
}

// Audit exports stats, read once per scrape.
func (s *Set) Audit(stats func() AuditStats) {
	s.reg.MustRegister(&auditCollector{stats: stats})
}

var (
	auditWritten = prometheus.NewDesc("brana_audit_records_written_total",
		"Audit records written to the log file since the start.", nil, nil)
	auditQueued = prometheus.NewDesc("brana_audit_queued_records",
		"Audit records accepted and not yet written (the group-commit queue).", nil, nil)
	auditWriteErrors = prometheus.NewDesc("brana_audit_write_errors_total",
		"Writes or fdatasyncs of the audit log that failed.", nil, nil)
	auditAppendErrors = prometheus.NewDesc("brana_audit_append_errors_total",
		"Audit records the log could not take (failed, lost or late); the command of each was refused.", nil, nil)
	auditLiveDropped = prometheus.NewDesc("brana_audit_live_dropped_total",
		"Audit records live viewers (console) did not get because they were slow; the log itself has them.", nil, nil)
	auditFailing = prometheus.NewDesc("brana_audit_failing",
		"1 while the audit log cannot write (commands are refused), else 0.", nil, nil)
	auditStalled = prometheus.NewDesc("brana_audit_stalled",
		"1 while a write to the audit log has taken longer than audit.append_timeout, else 0.", nil, nil)
	auditSpaceLow = prometheus.NewDesc("brana_audit_disk_space_low",
		"1 while free space under the audit log is below audit.min_free (new sessions are refused), else 0.", nil, nil)
)

type auditCollector struct{ stats func() AuditStats }

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{auditWritten, auditQueued, auditWriteErrors, auditAppendErrors, auditLiveDropped,
		auditFailing, auditStalled, auditSpaceLow} {
		ch <- d
	}
}

func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	counter(auditWritten, st.Written)
	gauge(auditQueued, float64(st.Queued))
	counter(auditWriteErrors, st.WriteErrors)
	counter(auditAppendErrors, st.AppendErrors)
	counter(auditLiveDropped, st.LiveDropped)
	gauge(auditFailing, flag(st.Failing))
	gauge(auditStalled, flag(st.Stalled))
	gauge(auditSpaceLow, flag(st.SpaceLow))
}

// Handler serves GET /metrics from the set and GET /healthz from healthy:
// nil is 200 {"status":"serving"}, an error 503 with it as the reason.
func (s *Set) Handler(healthy func() error, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError, // one failing collector does not hide the others
		// A Pi-class gateway answers one scraper at a time, and not forever.
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		h, code := Health{Status: "serving"}, http.StatusOK
		if err := healthy(); err != nil {
			h, code = Health{Status: "unavailable", Reason: err.Error()}, http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(h)
	})
	return mux
}

// Health is the body of /healthz.
type Health struct {
	Status string `json:"status"`           // serving | unavailable
	Reason string `json:"reason,omitempty"` // why not serving
}
