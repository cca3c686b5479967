package metrics

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// families gathers s, by name.
func families(t *testing.T, s *Set) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the series of name whose labels include want ("k=v" pairs), or nil.
func find(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	mf := fams[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is the value of a counter or gauge series; it fails the test when
// the series is missing.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no series %s%v", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s%v", name, labels)
	}
	return m.Histogram
}

func TestFrontCounts(t *testing.T) {
	s := New("1.2.3", "abc1234")
	f := s.Front("modbus", "allow", "deny", "held", "invalid")
	if again := s.Front("modbus"); again != f {
		t.Fatal("a second Front call for the same protocol made a new front")
	}

	// Before anything happens every decision the front knows is there, at 0.
	fams := families(t, s)
	for _, d := range []string{"allow", "deny", "held", "invalid"} {
		if v := value(t, fams, "brana_decisions_total", "protocol=modbus", "decision="+d); v != 0 {
			t.Errorf("decision %s starts at %v", d, v)
		}
	}
	if v := value(t, fams, "brana_build_info", "version=1.2.3", "commit=abc1234"); v != 1 {
		t.Errorf("brana_build_info = %v", v)
	}

	for range 3 {
		f.Decided("allow")
	}
	f.Decided("deny")
	f.Decided("held")
	f.Decided("surprise") // not made with it: counted all the same
	f.Decided("surprise")
	f.SessionOpened()
	f.SessionOpened()
	f.SessionRefused()
	f.Answered(time.Now().Add(-3 * time.Millisecond))
	f.Answered(time.Now())
	s.SessionsRefused("ssh").Inc()

	fams = families(t, s)
	for _, c := range []struct {
		decision string
		want     float64
	}{{"allow", 3}, {"deny", 1}, {"held", 1}, {"invalid", 0}, {"surprise", 2}} {
		if v := value(t, fams, "brana_decisions_total", "protocol=modbus", "decision="+c.decision); v != c.want {
			t.Errorf("decision %s = %v, want %v", c.decision, v, c.want)
		}
	}
	if v := value(t, fams, "brana_sessions_opened_total", "protocol=modbus"); v != 2 {
		t.Errorf("sessions opened = %v, want 2", v)
	}
	if v := value(t, fams, "brana_sessions_refused_total", "protocol=modbus"); v != 1 {
		t.Errorf("sessions refused = %v, want 1", v)
	}
	if v := value(t, fams, "brana_sessions_refused_total", "protocol=ssh"); v != 1 {
		t.Errorf("ssh sessions refused = %v, want 1", v)
	}
	h := histogram(t, fams, "brana_command_duration_seconds", "protocol=modbus")
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.003 || h.GetSampleSum() > 1 {
		t.Errorf("command latency: count %d, sum %v; want 2 and about 3ms", h.GetSampleCount(), h.GetSampleSum())
	}
	// The 1ms bucket has the fast answer only, the 5ms bucket both.
	for _, b := range h.GetBucket() {
		switch b.GetUpperBound() {
		case 0.001:
			if b.GetCumulativeCount() != 1 {
				t.Errorf("bucket le=0.001 has %d", b.GetCumulativeCount())
			}
		case 0.005:
			if b.GetCumulativeCount() != 2 {
				t.Errorf("bucket le=0.005 has %d", b.GetCumulativeCount())
			}
		}
	}
}

// Nothing a relay calls may fail or count when it was built without metrics.
func TestNilFront(t *testing.T) {
	var f *Front
	f.Decided("allow")
	f.SessionOpened()
	f.SessionRefused()
	f.Answered(time.Now())
}

// What the inline path calls allocates nothing: the children are resolved
// when the front is made.
func TestInlinePathAllocs(t *testing.T) {
	s := New("dev", "unknown")
	f := s.Front("modbus", "allow", "deny", "held", "invalid")
	rt := s.Target("plc", nil)
	batch, sync := s.AuditBatch(), s.AuditSync()
	t0 := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		f.Decided("allow")
		f.Decided("deny")
		f.Decided("held")
		f.Answered(t0)
		rt.Observe(0.0004)
		batch.Observe(12)
		sync.Observe(0.002)
	})
	if allocs != 0 {
		t.Fatalf("counting a request allocates %.1f times; want 0", allocs)
	}
}

// The functions given at setup are read at every scrape, not copied once.
func TestReadAtScrape(t *testing.T) {
	s := New("dev", "unknown")
	live, queued, pending := 2, 5, 1
	st := AuditStats{Written: 10, Queued: 3, WriteErrors: 1, AppendErrors: 4, LiveDropped: 7, SpaceLow: true}
	s.LiveSessions("modbus", func() int { return live })
	s.Target("plc", func() int { return queued }).Observe(0.01)
	s.ApprovalsPending(func() int { return pending })
	s.Audit(func() AuditStats { return st })

	check := func(name string, want float64, labels ...string) {
		t.Helper()
		if v := value(t, families(t, s), name, labels...); v != want {
			t.Errorf("%s%v = %v, want %v", name, labels, v, want)
		}
	}
	check("brana_sessions_live", 2, "protocol=modbus")
	check("brana_target_queued_requests", 5, "target=plc")
	check("brana_approvals_pending", 1)
	check("brana_audit_records_written_total", 10)
	check("brana_audit_queued_records", 3)
	check("brana_audit_write_errors_total", 1)
	check("brana_audit_append_errors_total", 4)
	check("brana_audit_live_dropped_total", 7)
	check("brana_audit_failing", 0)
	check("brana_audit_stalled", 0)
	check("brana_audit_disk_space_low", 1)
	if h := histogram(t, families(t, s), "brana_target_roundtrip_seconds", "target=plc"); h.GetSampleCount() != 1 {
		t.Errorf("round trips: %d", h.GetSampleCount())
	}

	live, queued, pending = 0, 1, 3
	st.Written, st.Failing, st.Stalled, st.SpaceLow = 12, true, true, false
	check("brana_sessions_live", 0, "protocol=modbus")
	check("brana_target_queued_requests", 1, "target=plc")
	check("brana_approvals_pending", 3)
	check("brana_audit_records_written_total", 12)
	check("brana_audit_failing", 1)
	check("brana_audit_stalled", 1)
	check("brana_audit_disk_space_low", 0)
}

// brana's metrics stay in its own registry: nothing reaches the process-wide
// default, so two gateways in one process do not collide.
func TestPrivateRegistry(t *testing.T) {
	a, b := New("dev", "unknown"), New("dev", "unknown")
	a.Front("modbus", "allow").Decided("allow")
	b.Front("modbus", "allow") // no panic: nothing registered twice
	if v := value(t, families(t, b), "brana_decisions_total", "protocol=modbus", "decision=allow"); v != 0 {
		t.Errorf("a second set sees %v allowed decisions of the first", v)
	}
	def, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range def {
		if strings.HasPrefix(mf.GetName(), "brana_") {
			t.Errorf("%s is in the default registry", mf.GetName())
		}
	}
}

// brana's own metrics follow the Prometheus naming conventions (units,
// _total on counters, help text), as promlint checks them.
func TestNamingConventions(t *testing.T) {
	s := New("dev", "unknown")
	s.Front("modbus", "allow").Decided("allow")
	s.LiveSessions("modbus", func() int { return 0 })
	s.Target("plc", func() int { return 0 })
	s.ApprovalsPending(func() int { return 0 })
	s.Audit(func() AuditStats { return AuditStats{} })
	all, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ours []*dto.MetricFamily
	for _, mf := range all {
		if strings.HasPrefix(mf.GetName(), "brana_") {
			ours = append(ours, mf)
		}
	}
	if len(ours) < 15 {
		t.Fatalf("only %d brana_ metric families", len(ours))
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestHandler(t *testing.T) {
	s := New("1.2.3", "abc1234")
	s.Front("modbus", "allow", "deny").Decided("deny")
	var unhealthy error
	srv := httptest.NewServer(s.Handler(func() error { return unhealthy }, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	t.Run("ok/metrics", func(t *testing.T) {
		resp, body := get("GET", "/metrics")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET /metrics: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("parsing the exposition: %v\n%s", err, body)
		}
		if v := value(t, fams, "brana_decisions_total", "protocol=modbus", "decision=deny"); v != 1 {
			t.Errorf("denied = %v", v)
		}
		if v := value(t, fams, "brana_build_info", "version=1.2.3", "commit=abc1234"); v != 1 {
			t.Errorf("build info = %v", v)
		}
		if value(t, fams, "go_goroutines") < 1 {
			t.Error("go_goroutines < 1")
		}
		if runtime.GOOS == "linux" && value(t, fams, "process_resident_memory_bytes") <= 0 {
			t.Error("process_resident_memory_bytes <= 0")
		}
	})

	t.Run("ok/healthz", func(t *testing.T) {
		resp, body := get("GET", "/healthz")
		var h Health
		if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil || h != (Health{Status: "serving"}) {
			t.Fatalf("GET /healthz: %s %s", resp.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})

	t.Run("fail/healthz-unavailable", func(t *testing.T) {
		unhealthy = errors.New(`audit log failing: "no space left on device"`)
		defer func() { unhealthy = nil }()
		resp, body := get("GET", "/healthz")
		var h Health
		if resp.StatusCode != 503 || json.Unmarshal(body, &h) != nil ||
			h != (Health{Status: "unavailable", Reason: `audit log failing: "no space left on device"`}) {
			t.Fatalf("GET /healthz: %s %s", resp.Status, body)
		}
	})

	t.Run("fail/method", func(t *testing.T) {
		if resp, _ := get("POST", "/healthz"); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /healthz: %s", resp.Status)
		}
	})

	t.Run("fail/unknown-path", func(t *testing.T) {
		if resp, _ := get("GET", "/debug/pprof/"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /debug/pprof/: %s", resp.Status)
		}
	})
}
