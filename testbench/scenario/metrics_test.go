package scenario

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	mb "github.com/simonvetter/modbus"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
	"github.com/brana-ot/brana/testbench/nodeopcua"
)

const metricsYAML = "\nmetrics:\n  listen: 127.0.0.1:0\n"

// What /metrics says matches what happened: N reads from simonvetter/modbus
// that the policy allows and one write it denies show as N allowed and 1
// denied decision, N+1 answers timed, N round trips to the PLC, one live
// session (none once the client hangs up), and as many audit records written
// as the audit log holds, in batches that add up to them.
func TestMetricsEndpoint(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	gw := gwtest.Start(t, tcpConfig(plcAddr, "")+metricsYAML)
	addr := gw.MetricsAddr()
	if addr == nil {
		t.Fatal("MetricsAddr is nil with metrics.listen set")
	}
	base := "http://" + addr.String()
	waitHealth(t, base, http.StatusOK, "serving", "")

	// Before any client: every series is there, at zero.
	fams := scrape(t, base)
	for _, d := range []string{"allow", "deny", "held", "invalid"} {
		expectValue(t, fams, 0, "brana_decisions_total", "protocol=modbus", "decision="+d)
	}
	expectValue(t, fams, 0, "brana_sessions_live", "protocol=modbus")
	expectValue(t, fams, 1, "brana_build_info", "version="+gateway.Version, "commit="+gateway.Commit)

	const n = 7
	c := svClient(t, gw.ModbusAddr("scada"), 1) // from 127.0.0.1: the party monitoring, read only
	for i := range n {
		if _, err := c.ReadRegisters(uint16(i), 10, mb.HOLDING_REGISTER); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if err := c.WriteRegister(105, 1); err == nil {
		t.Fatal("the write of the read-only party was let through")
	}
	if w := plc.Counters().Writes(1); w != 0 {
		t.Fatalf("PLC counted %d writes; the denied write reached it", w)
	}

	fams = waitAuditSettled(t, base)
	expectValue(t, fams, n, "brana_decisions_total", "protocol=modbus", "decision=allow")
	expectValue(t, fams, 1, "brana_decisions_total", "protocol=modbus", "decision=deny")
	expectValue(t, fams, 0, "brana_decisions_total", "protocol=modbus", "decision=held")
	expectValue(t, fams, 0, "brana_decisions_total", "protocol=opcua", "decision=allow")
	if h := expectHistogram(t, fams, "brana_command_duration_seconds", "protocol=modbus"); h.GetSampleCount() != n+1 || h.GetSampleSum() <= 0 {
		t.Errorf("command latency: %d answers timed, %v s in all; want %d and more than 0", h.GetSampleCount(), h.GetSampleSum(), n+1)
	}
	if h := expectHistogram(t, fams, "brana_target_roundtrip_seconds", "target=plc"); h.GetSampleCount() != n {
		t.Errorf("PLC round trips: %d, want %d (the denied write never went)", h.GetSampleCount(), n)
	}
	expectValue(t, fams, 1, "brana_sessions_live", "protocol=modbus")
	expectValue(t, fams, 1, "brana_sessions_opened_total", "protocol=modbus")
	expectValue(t, fams, 0, "brana_sessions_refused_total", "protocol=modbus")
	expectValue(t, fams, 0, "brana_target_queued_requests", "target=plc")
	expectValue(t, fams, 0, "brana_approvals_pending")
	expectValue(t, fams, 0, "brana_audit_failing")
	expectValue(t, fams, 0, "brana_audit_disk_space_low")
	expectValue(t, fams, 0, "brana_audit_append_errors_total")
	if g := metricValue(t, fams, "go_goroutines"); g < 1 {
		t.Errorf("go_goroutines = %v", g)
	}

	// The counters agree with the audit log itself.
	recs := readAudit(t, gw.AuditPath())
	allowed, denied := 0, 0
	for _, r := range recs {
		if r.Type == "command" && r.Decision == "allow" {
			allowed++
		}
		if r.Type == "command" && r.Decision == "deny" {
			denied++
		}
	}
	if allowed != n || denied != 1 {
		t.Errorf("audit log: %d allowed, %d denied commands; want %d and 1", allowed, denied, n)
	}
	written := metricValue(t, fams, "brana_audit_records_written_total")
	if int(written) != len(recs) {
		t.Errorf("brana_audit_records_written_total = %v; the log holds %d records", written, len(recs))
	}
	if b := expectHistogram(t, fams, "brana_audit_batch_records"); b.GetSampleSum() != written || b.GetSampleCount() == 0 {
		t.Errorf("audit batches: %d writes of %v records in all; want them to add up to %v", b.GetSampleCount(), b.GetSampleSum(), written)
	}
	if s := expectHistogram(t, fams, "brana_audit_fsync_duration_seconds"); s.GetSampleCount() == 0 {
		t.Error("no fdatasync observed with durability batch")
	}

	// The client hangs up: no live session is left.
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, scrape(t, base), "brana_sessions_live", "protocol=modbus") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("brana_sessions_live still counts the closed session")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OPC UA is counted under its own protocol, per request, with the decision
// its audit record carries (partial for a request with some elements
// refused), as node-opcua runs the service checks through brana; the
// target's round trips are the requests the PLC answered, without Publish.
func TestMetricsOPCUA(t *testing.T) {
	nodeopcua.Require(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "")+partiesYAML+opcuaRules("monitoring", "line-opc", ns)+metricsYAML)
	base := "http://" + gw.MetricsAddr().String()
	// A subscription after the service checks, so that Publish long polls
	// reach the PLC too.
	ops := append(opcuaServiceOps(ns), nodeopcua.Op{"op": "subscribe", "path": "Feeder/Heartbeat", "namespace": ns,
		"seconds": 2, "publishingInterval": 200, "samplingInterval": 100})
	res := runNode(t, "opc.tcp://"+gw.Addr("opc-lab").String(), ops, 60*time.Second)
	checkOPCUAServices(t, plc, res)
	if sub := res[len(res)-1]; sub.Error != "" || sub.Notifications == 0 {
		t.Fatalf("subscription through brana: %+v", sub)
	}

	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, scrape(t, base), "brana_sessions_live", "protocol=opcua") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("brana_sessions_live still counts node-opcua's session")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fams := waitAuditSettled(t, base)
	want := map[string]float64{}
	opened, publish, answered := 0.0, 0.0, 0.0
	for _, r := range readAudit(t, gw.AuditPath()) {
		switch r.Type {
		case "command":
			want[r.Decision]++
			if r.Service == "Publish" {
				publish++
			}
		case "result":
			if r.Decision != "error" && r.Service != "Publish" {
				answered++ // a forwarded request the PLC answered
			}
		case "session.open":
			opened++
		}
	}
	if want["allow"] == 0 || want["partial"] != 1 || want["deny"] == 0 || want["held"] != 1 {
		t.Fatalf("the service checks left other command records than expected: %v", want)
	}
	total := 0.0
	for _, d := range []string{"allow", "partial", "deny", "held", "invalid"} {
		expectValue(t, fams, want[d], "brana_decisions_total", "protocol=opcua", "decision="+d)
		total += want[d]
	}
	expectValue(t, fams, 0, "brana_decisions_total", "protocol=modbus", "decision=allow")
	expectValue(t, fams, opened, "brana_sessions_opened_total", "protocol=opcua")
	// Every decided request was answered and timed, except Publish long polls.
	if h := expectHistogram(t, fams, "brana_command_duration_seconds", "protocol=opcua"); float64(h.GetSampleCount()) != total-publish {
		t.Errorf("%d OPC UA answers timed for %v decided requests, %v of them Publish", h.GetSampleCount(), total, publish)
	}
	// The PLC's round trips: every forwarded request it answered, except
	// Publish, and brana's own two Browses that learn that Feeder/Firmware's
	// Open is FileType Open (its HasComponent methods, its type definition).
	// Opening the PLC session is not a round trip.
	const lookups = 2
	if publish == 0 || answered == 0 {
		t.Fatalf("node-opcua sent %v Publish, the PLC answered %v forwarded requests; the check needs both", publish, answered)
	}
	if h := expectHistogram(t, fams, "brana_target_roundtrip_seconds", "target=line-opc"); float64(h.GetSampleCount()) != answered+lookups || h.GetSampleSum() <= 0 {
		t.Errorf("line-opc round trips: %d observed, %v s in all; want %v forwarded requests answered (Publish left out) and %d lookups",
			h.GetSampleCount(), h.GetSampleSum(), answered, lookups)
	}
}

// Below audit.min_free the gateway refuses new sessions: /healthz answers
// 503 with that reason, and the refusal is counted.
func TestHealthzAuditSpaceLow(t *testing.T) {
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	// More than any disk this runs on has free.
	gw := gwtest.Start(t, diskConfig(plcAddr, filepath.Join(t.TempDir(), "audit"), "1000000GiB")+metricsYAML)
	base := "http://" + gw.MetricsAddr().String()
	waitHealth(t, base, http.StatusServiceUnavailable, "unavailable", "audit disk space below audit.min_free")

	dialFrom(t, gw.ModbusAddr("scada"), engineeringIP).expectClosed(3 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams := scrape(t, base)
		if metricValue(t, fams, "brana_sessions_refused_total", "protocol=modbus") == 1 {
			expectValue(t, fams, 1, "brana_audit_disk_space_low")
			expectValue(t, fams, 0, "brana_sessions_opened_total", "protocol=modbus")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused session was not counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// When the audit log cannot write (its file system is full), brana refuses
// every command: /healthz answers 503 saying so, the failure and the refused
// records are counted, and once space is back /healthz answers 200 again.
func TestHealthzAuditFailing(t *testing.T) {
	mnt := mountTmpfs(t, "2m")
	plc, err := modbussim.New(map[byte]string{1: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	plcAddr, _ := serveTappedPLC(t, plc)
	gw := gwtest.Start(t, diskConfig(plcAddr, filepath.Join(mnt, "audit"), "1KiB")+metricsYAML)
	base := "http://" + gw.MetricsAddr().String()
	waitHealth(t, base, http.StatusOK, "serving", "")
	rc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	if resp := rc.call(1, pduWriteSingle(100, 1)); !slices.Equal(resp, pduWriteSingle(100, 1)) {
		t.Fatalf("write with space: answer % x", resp)
	}

	filler := fillFS(t, mnt)
	for v := uint16(2); ; v++ {
		resp := rc.call(1, pduWriteSingle(100, v))
		if !slices.Equal(resp, pduWriteSingle(100, v)) {
			expectException(t, resp, 6, 4)
			break
		}
		if v > 20 {
			t.Fatal("writes still succeed on a full file system")
		}
	}
	waitHealth(t, base, http.StatusServiceUnavailable, "unavailable", "audit log failing, commands are refused")
	fams := scrape(t, base)
	expectValue(t, fams, 1, "brana_audit_failing")
	if v := metricValue(t, fams, "brana_audit_write_errors_total"); v < 1 {
		t.Errorf("brana_audit_write_errors_total = %v, want at least 1", v)
	}
	if v := metricValue(t, fams, "brana_audit_append_errors_total"); v < 1 {
		t.Errorf("brana_audit_append_errors_total = %v, want at least 1 (the refused command)", v)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, base, http.StatusOK, "serving", "")
	expectValue(t, scrape(t, base), 0, "brana_audit_failing")
}

// scrape fetches and parses base/metrics.
func scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// waitAuditSettled scrapes until the audit log has written everything it
// took (result records are queued, not waited for).
func waitAuditSettled(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams := scrape(t, base)
		b := expectHistogram(t, fams, "brana_audit_batch_records")
		if metricValue(t, fams, "brana_audit_queued_records") == 0 &&
			b.GetSampleSum() == metricValue(t, fams, "brana_audit_records_written_total") {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit log did not write what it took within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealth polls /healthz until it answers code with status and a reason
// that starts with reason, for up to 5 seconds.
func waitHealth(t testing.TB, base string, code int, status, reason string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var h struct{ Status, Reason string }
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("GET /healthz: %s %q: %v", resp.Status, body, err)
		}
		if resp.StatusCode == code && h.Status == status && strings.HasPrefix(h.Reason, reason) && (reason != "" || h.Reason == "") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: %s %s; want %d, status %q, reason %q...", resp.Status, body, code, status, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// series returns the series of name whose labels include all of want
// ("name=value"), or nil.
func series(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	mf := fams[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		have := make([]string, 0, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			have = append(have, lp.GetName()+"="+lp.GetValue())
		}
		if !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(have, w) }) {
			return m
		}
	}
	return nil
}

// metricValue is a counter's or gauge's value; a missing series fails the test.
func metricValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := series(fams, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("/metrics has no series %s%v", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v has no value", name, labels)
	return 0
}

func expectValue(t testing.TB, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if v := metricValue(t, fams, name, labels...); v != want {
		t.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
}

func expectHistogram(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	m := series(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Fatalf("/metrics has no histogram %s%v", name, labels)
	}
	return m.Histogram
}
