package auditexport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openLog(t *testing.T, dir string, opts audit.Options) *audit.Log {
	t.Helper()
	opts.Log = quiet
	l, err := audit.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends n records of several kinds, with names that need escaping
// in structured data and JSON.
func appendN(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := &audit.Record{}
		r.Reset()
		r.Session = "s" + strconv.Itoa(i%3)
		switch i % 4 {
		case 0:
			r.Type, r.Party, r.PartyName, r.Org = audit.SessionOpen, "acme", "Jan Novák", "ACME s.r.o."
			r.Decision = "allow"
		case 1:
			r.Type, r.Party, r.Target = audit.Command, `odd"party\]`, "feeder-plc"
			r.Unit, r.Func, r.Class, r.Decision, r.Reason = 1, 6, "write", "deny", "no-rule"
		case 2:
			r.Type, r.Party, r.Target = audit.Command, "acme", "feeder-plc"
			r.Unit, r.Func, r.Class, r.Decision, r.Rule = 1, 3, "read", "allow", "read-all"
			r.ReadTab, r.ReadAt, r.ReadN = "holding", 0, 10
		case 3:
			r.Type, r.Detail = audit.Gap, fmt.Sprintf("test gap %d\nwith a newline", i)
		}
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// storedLines reads the log back: seq -> line.
func storedLines(t *testing.T, dir string) map[uint64]string {
	t.Helper()
	lines := make(map[uint64]string)
	if err := audit.Scan(dir, 0, func(l audit.Line) error {
		lines[l.Seq] = string(l.Bytes)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return lines
}

// fast makes a forwarder poll and back off quickly, for tests.
func fast(t *testing.T, cfg Config, dir string) *Forwarder {
	t.Helper()
	f, err := New(cfg, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	f.poll, f.minBackoff, f.maxBackoff = 10*time.Millisecond, 10*time.Millisecond, 100*time.Millisecond
	return f
}

// running is a forwarder started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(f *Forwarder) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx) }()
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func syslogConfig(addr string) Config {
	return Config{Name: "siem", Type: "syslog", Address: addr, Hostname: "gw-test", BatchSize: 16}
}

// checkExactlyOnce asserts that seqs 1..n each arrived exactly once and that
// every message is a correct rendering of the stored record.
func checkExactlyOnce(t *testing.T, r *receiver, dir string, n int, cfg Config) {
	t.Helper()
	stored := storedLines(t, dir)
	msgs := r.messages()
	counts := make(map[uint64]int)
	for _, m := range msgs {
		seq, err := strconv.ParseUint(m.params["seq"], 10, 64)
		if err != nil {
			t.Fatalf("seq %q", m.params["seq"])
		}
		counts[seq]++
		checkMessage(t, m, seq, stored[seq], cfg)
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if counts[seq] != 1 {
			t.Errorf("seq %d arrived %d times", seq, counts[seq])
		}
	}
	if len(counts) != n {
		t.Errorf("got %d distinct seqs, want %d", len(counts), n)
	}
}

func checkMessage(t *testing.T, m syslogMsg, seq uint64, line string, cfg Config) {
	t.Helper()
	var rec struct{ Time, Type, Party, Decision string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatalf("seq %d: stored line: %v", seq, err)
	}
	sev := 6
	if rec.Decision == "deny" || rec.Type == "gap" || rec.Type == "session.refused" {
		sev = 5
	}
	switch {
	case m.body != line:
		t.Errorf("seq %d: MSG differs from the stored line:\n%s\n%s", seq, m.body, line)
	case m.pri != 16*8+sev:
		t.Errorf("seq %d: PRI %d, want local0.%d", seq, m.pri, sev)
	case m.ts != rec.Time:
		t.Errorf("seq %d: TIMESTAMP %q, want %q", seq, m.ts, rec.Time)
	case m.host != cfg.Hostname || m.app != "brana" || m.procid != "-" || m.msgid != rec.Type:
		t.Errorf("seq %d: header %q %q %q %q", seq, m.host, m.app, m.procid, m.msgid)
	case m.sdid != "brana@32473" || m.params["party"] != rec.Party || m.params["decision"] != rec.Decision:
		t.Errorf("seq %d: structured data %s %v", seq, m.sdid, m.params)
	}
}

// The done-when: every record exactly once across a forwarder restart.
func TestSyslogExactlyOnceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	const n, m = 120, 80
	appendN(t, l, n)

	f1 := fast(t, cfg, dir)
	r1 := start(f1)
	waitFor(t, "the first records", func() bool { return len(rcv.seqCounts()) == n })
	r1.stop(t)
	if f1.Cursor() != n {
		t.Fatalf("cursor after a clean stop = %d, want %d", f1.Cursor(), n)
	}

	appendN(t, l, m)
	f2 := fast(t, cfg, dir)
	if f2.Cursor() != n {
		t.Fatalf("a new forwarder reads cursor %d, want %d", f2.Cursor(), n)
	}
	r2 := start(f2)
	waitFor(t, "all records", func() bool { return len(rcv.seqCounts()) == n+m })
	time.Sleep(50 * time.Millisecond) // room for a duplicate to show up
	r2.stop(t)
	checkExactlyOnce(t, rcv, dir, n+m, cfg)
}

// Records keep arriving while the forwarder is stopped and started again,
// segments rotate and get compressed: still each record exactly once, and
// records appended while it runs are delivered live.
func TestSyslogRestartsUnderLoad(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{SegmentMaxBytes: 8 << 10})
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	const total = 1200
	var appended atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for appended.Load() < total {
			appendN(t, l, 40)
			appended.Add(40)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := 0; i < 4; i++ {
		r := start(fast(t, cfg, dir))
		time.Sleep(time.Duration(15+10*i) * time.Millisecond)
		r.stop(t)
	}
	<-done
	r := start(fast(t, cfg, dir))
	waitFor(t, "all records", func() bool { return len(rcv.seqCounts()) == total })
	// Live: a record appended now arrives without a restart.
	appendN(t, l, 1)
	waitFor(t, "a live record", func() bool { return len(rcv.seqCounts()) == total+1 })
	time.Sleep(50 * time.Millisecond)
	r.stop(t)
	checkExactlyOnce(t, rcv, dir, total+1, cfg)
	segs, _ := audit.Segments(dir)
	gz := 0
	for _, s := range segs {
		if s.Compressed {
			gz++
		}
	}
	if gz == 0 {
		t.Errorf("the test meant to read compressed segments; segments: %+v", segs)
	}
}

func TestSyslogTLS(t *testing.T) {
	c := makeCerts(t)
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	rcv := startReceiver(t, tls.NewListener(listen(t), c.serverTLS(t)))
	cfg := syslogConfig(rcv.addr())
	cfg.TLS = &TLSConfig{CA: c.ca, Cert: c.clientCert, Key: c.clientKey}
	appendN(t, l, 40)
	r := start(fast(t, cfg, dir))
	waitFor(t, "records over TLS", func() bool { return len(rcv.seqCounts()) == 40 })
	r.stop(t)
	checkExactlyOnce(t, rcv, dir, 40, cfg)
	rcv.mu.Lock()
	for _, v := range rcv.tls {
		if v < tls.VersionTLS12 {
			t.Errorf("TLS version %x", v)
		}
	}
	rcv.mu.Unlock()

	// A server the CA does not vouch for gets nothing.
	other := makeCerts(t)
	bad := startReceiver(t, tls.NewListener(listen(t), other.serverTLS(t)))
	cfg.Address = bad.addr()
	cfg.Name = "other"
	f := fast(t, cfg, dir)
	f.attempts = 2
	if n, err := f.run(context.Background(), false); err == nil || n != 0 {
		t.Fatalf("export to an unverified server: sent %d, err %v", n, err)
	}
	bad.mu.Lock()
	bad.errs = nil // its failed handshakes are the point
	bad.mu.Unlock()
	if got := bad.seqCounts(); len(got) != 0 {
		t.Fatalf("unverified server got %v", got)
	}
}

// A receiver that is down at first loses nothing once it comes up.
func TestSyslogReceiverDownAtFirst(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	cfg := syslogConfig(addr)
	appendN(t, l, 30)
	r := start(fast(t, cfg, dir))
	time.Sleep(150 * time.Millisecond) // several refused connects
	appendN(t, l, 30)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	rcv := startReceiver(t, ln2)
	waitFor(t, "records after the receiver came up", func() bool { return len(rcv.seqCounts()) == 60 })
	r.stop(t)
	checkExactlyOnce(t, rcv, dir, 60, cfg)
}

// httpReceiver fails its first request with 503 and then takes batches.
type httpReceiver struct {
	mu       sync.Mutex
	requests int
	counts   map[uint64]int
	lines    map[uint64]string
	errs     []string
}

func (h *httpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.requests == 1 {
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		h.errs = append(h.errs, r.Method+" "+r.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) == 0 || body[len(body)-1] != '\n' {
		h.errs = append(h.errs, "body does not end with a newline")
	}
	first := r.Header.Get("X-Brana-Seq-First")
	for i, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var rec struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			h.errs = append(h.errs, "not JSON: "+line)
			continue
		}
		if i == 0 && strconv.FormatUint(rec.Seq, 10) != first {
			h.errs = append(h.errs, "X-Brana-Seq-First "+first)
		}
		h.counts[rec.Seq]++
		h.lines[rec.Seq] = line
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestHTTPRetriesAfter503(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	h := &httpReceiver{counts: map[uint64]int{}, lines: map[uint64]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	appendN(t, l, 100)
	cfg := Config{Name: "http", Type: "http", URL: srv.URL + "/ingest", BatchSize: 32}
	r := start(fast(t, cfg, dir))
	n := func() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.counts) }
	waitFor(t, "records over HTTP", func() bool { return n() == 100 })
	appendN(t, l, 10)
	waitFor(t, "live records over HTTP", func() bool { return n() == 110 })
	r.stop(t)
	stored := storedLines(t, dir)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.errs {
		t.Error(e)
	}
	if h.requests < 2 {
		t.Fatalf("requests = %d; the 503 was not retried", h.requests)
	}
	for seq := uint64(1); seq <= 110; seq++ {
		if h.counts[seq] != 1 || h.lines[seq] != stored[seq] {
			t.Errorf("seq %d: %d times, line %q", seq, h.counts[seq], h.lines[seq])
		}
	}
}

func TestHTTPsWithClientCert(t *testing.T) {
	c := makeCerts(t)
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	h := &httpReceiver{counts: map[uint64]int{}, lines: map[uint64]string{}, requests: 1}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = c.serverTLS(t)
	srv.StartTLS()
	defer srv.Close()
	appendN(t, l, 20)
	cfg := Config{Name: "https", Type: "http", URL: srv.URL, TLS: &TLSConfig{CA: c.ca, Cert: c.clientCert, Key: c.clientKey}}
	sent, err := Export(context.Background(), dir, cfg)
	if err != nil || sent != 20 {
		t.Fatalf("Export: %d, %v", sent, err)
	}
	if len(h.counts) != 20 {
		t.Fatalf("receiver got %d records", len(h.counts))
	}
}

// The cursor file: content, atomic replacement, one-shot export, lock.
func TestCursorAndExport(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	appendN(t, l, 50)

	sent, err := Export(context.Background(), dir, cfg)
	if err != nil || sent != 50 {
		t.Fatalf("Export = %d, %v", sent, err)
	}
	data, err := os.ReadFile(CursorPath(dir, "siem"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(storedLines(t, dir)[50]))
	if want := "50 " + hex.EncodeToString(h[:]) + "\n"; string(data) != want {
		t.Fatalf("cursor file %q, want %q", data, want)
	}
	if _, err := os.Stat(CursorPath(dir, "siem") + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	if sent, err := Export(context.Background(), dir, cfg); err != nil || sent != 0 {
		t.Fatalf("second Export = %d, %v; want nothing to send", sent, err)
	}
	appendN(t, l, 5)
	if sent, err := Export(context.Background(), dir, cfg); err != nil || sent != 5 {
		t.Fatalf("third Export = %d, %v", sent, err)
	}
	waitFor(t, "55 records", func() bool { return len(rcv.seqCounts()) == 55 })
	checkExactlyOnce(t, rcv, dir, 55, cfg)

	// The audit log's own reader ignores the exporter's files.
	if rep, err := audit.Verify(dir, nil); err != nil || rep.Records != 55 {
		t.Fatalf("verify with cursor files present: %+v %v", rep, err)
	}

	// While another process exports under the same name, both Export and
	// Run refuse rather than move one cursor twice.
	release, err := lock(dir, "siem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Export(context.Background(), dir, cfg); !errors.Is(err, ErrBusy) {
		t.Fatalf("Export while locked: %v", err)
	}
	if err := fast(t, cfg, dir).Run(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("Run while locked: %v", err)
	}
	release()

	// A hand-written cursor moves the exporter; a garbled one stops it.
	os.WriteFile(CursorPath(dir, "siem"), []byte("52\n"), 0o640)
	f, err := New(cfg, dir, quiet)
	if err != nil || f.Cursor() != 52 {
		t.Fatalf("hand-written cursor: %v %v", f, err)
	}
	os.WriteFile(CursorPath(dir, "siem"), []byte("fifty\n"), 0o640)
	if _, err := New(cfg, dir, quiet); err == nil || !strings.Contains(err.Error(), "fix or remove") {
		t.Fatalf("garbled cursor: %v", err)
	}
}

// A log rewritten at its tail after records were sent (the writer's repair
// after a failed write, a lost unsynced tail) is resent from the first record
// that differs from what was sent.
func TestRewrittenTail(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	appendN(t, l, 10)
	r := start(fast(t, cfg, dir))
	waitFor(t, "10 records", func() bool { return len(rcv.seqCounts()) == 10 })
	l.Close()

	segs, _ := audit.Segments(dir)
	data, _ := os.ReadFile(segs[0].Path)
	cut := 0
	for i := 0; i < 7; i++ {
		cut += bytes.IndexByte(data[cut:], '\n') + 1
	}
	if err := os.Truncate(segs[0].Path, int64(cut)); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, audit.Options{})
	for i := 0; i < 5; i++ { // seqs 8..12, different from the first 8..10
		rec := &audit.Record{}
		rec.Reset()
		rec.Type, rec.Detail = audit.ConfigLoad, "rewritten "+strconv.Itoa(i)
		if _, err := l2.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	stored := storedLines(t, dir)
	waitFor(t, "the rewritten records", func() bool {
		for _, m := range rcv.messages() {
			if m.params["seq"] == "12" {
				return true
			}
		}
		return false
	})
	r.stop(t)
	latest := map[string]string{}
	counts := map[string]int{}
	for _, m := range rcv.messages() {
		latest[m.params["seq"]] = m.body
		counts[m.params["seq"]]++
	}
	for seq := uint64(1); seq <= 12; seq++ {
		k := strconv.FormatUint(seq, 10)
		if latest[k] != stored[seq] {
			t.Errorf("seq %d: last version received differs from the log", seq)
		}
		want := 1
		if seq >= 8 && seq <= 10 {
			want = 2 // the old version, then the new one
		}
		if counts[k] != want {
			t.Errorf("seq %d received %d times, want %d", seq, counts[k], want)
		}
	}
}

// At restart, a log that ends before the cursor (an unsynced tail lost in a
// power cut) is exported from where it ends, not skipped.
func TestLogShorterThanCursor(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	appendN(t, l, 5)
	os.WriteFile(CursorPath(dir, "siem"), []byte("9\n"), 0o640)
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	r := start(fast(t, cfg, dir))
	time.Sleep(50 * time.Millisecond)
	appendN(t, l, 6) // seqs 6..11
	waitFor(t, "records after the end", func() bool { return len(rcv.seqCounts()) == 6 })
	r.stop(t)
	for seq, n := range rcv.seqCounts() {
		if seq < 6 || seq > 11 || n != 1 {
			t.Errorf("seq %d arrived %d times", seq, n)
		}
	}
}

// With Durable wired, records after the durable mark wait.
func TestDurableLimit(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	rcv := startReceiver(t, listen(t))
	cfg := syslogConfig(rcv.addr())
	appendN(t, l, 10)
	var synced atomic.Uint64
	synced.Store(4)
	f := fast(t, cfg, dir)
	f.Durable(synced.Load)
	r := start(f)
	waitFor(t, "4 records", func() bool { return len(rcv.seqCounts()) == 4 })
	time.Sleep(50 * time.Millisecond)
	if n := len(rcv.seqCounts()); n != 4 {
		t.Fatalf("sent %d records past the durable mark", n)
	}
	synced.Store(10)
	waitFor(t, "10 records", func() bool { return len(rcv.seqCounts()) == 10 })
	r.stop(t)
	checkExactlyOnce(t, rcv, dir, 10, cfg)
}

func TestProtected(t *testing.T) {
	dir := t.TempDir()
	cfg := syslogConfig("127.0.0.1:1")
	os.WriteFile(CursorPath(dir, "a"), []byte("7\n"), 0o640)
	os.WriteFile(CursorPath(dir, "b"), []byte("3\n"), 0o640)
	var fwds []*Forwarder
	for _, name := range []string{"a", "b"} {
		cfg.Name = name
		f, err := New(cfg, dir, quiet)
		if err != nil {
			t.Fatal(err)
		}
		fwds = append(fwds, f)
	}
	if got := Protected(fwds)(); got != 4 {
		t.Fatalf("Protected = %d, want 4 (b has sent up to 3)", got)
	}
	if got := Protected(nil)(); got != ^uint64(0) {
		t.Fatalf("Protected(nil) = %d", got)
	}
}

func TestWriteJSON(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, audit.Options{})
	appendN(t, l, 12)
	var out bytes.Buffer
	n, err := WriteJSON(&out, dir, 5)
	if err != nil || n != 8 {
		t.Fatalf("WriteJSON = %d, %v", n, err)
	}
	stored := storedLines(t, dir)
	sc := bufio.NewScanner(&out)
	seq := uint64(5)
	for sc.Scan() {
		if sc.Text() != stored[seq] {
			t.Fatalf("line for seq %d differs", seq)
		}
		seq++
	}
}

func TestSyslogMessageFormat(t *testing.T) {
	cfg := Config{Name: "x", Type: "syslog", Address: "127.0.0.1:514", Hostname: "gw1"}
	if p := cfg.Check(); len(p) > 0 {
		t.Fatal(p)
	}
	line := `{"seq":42,"prev":"00","time":"2026-11-26T12:00:00.123456Z","type":"command","party":"a\"b\\c]d","decision":"deny"}`
	got := string(appendSyslog(nil, &cfg, facilities[cfg.Facility], 42, []byte(line)))
	want := `<133>1 2026-11-26T12:00:00.123456Z gw1 brana - command [brana@32473 seq="42" type="command" party="a\"b\\c\]d" decision="deny"] ` + line
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	m, err := parse5424([]byte(got))
	if err != nil || m.params["party"] != `a"b\c]d` || m.body != line {
		t.Fatalf("parse: %+v %v", m, err)
	}
	info := `{"seq":1,"prev":"00","time":"2026-11-26T12:00:00.000000Z","type":"result","status":"ok"}`
	if got := string(appendSyslog(nil, &cfg, 16, 1, []byte(info))); !strings.HasPrefix(got, "<134>1 ") {
		t.Fatalf("result record: %s", got)
	}
}

func TestCheck(t *testing.T) {
	c := makeCerts(t)
	tests := []struct {
		name string
		cfg  Config
		want string // "" for no problems
	}{
		{"ok/syslog", Config{Name: "siem", Type: "syslog", Address: "siem.example:6514"}, ""},
		{"ok/syslog-tls", Config{Name: "siem", Type: "syslog", Address: "127.0.0.1:6514", TLS: &TLSConfig{CA: c.ca, Cert: c.clientCert, Key: c.clientKey}}, ""},
		{"ok/http", Config{Name: "h", Type: "http", URL: "https://collector.example/audit"}, ""},
		{"fail/type", Config{Name: "k", Type: "kafka"}, `type: "kafka" is not syslog or http`},
		{"fail/no-type", Config{Name: "k"}, "type: missing"},
		{"fail/name", Config{Name: "../x", Type: "syslog", Address: "a:1"}, "name: "},
		{"fail/no-name", Config{Type: "syslog", Address: "a:1"}, "name: missing"},
		{"fail/address", Config{Name: "s", Type: "syslog", Address: "siem.example"}, "address: "},
		{"fail/port", Config{Name: "s", Type: "syslog", Address: "siem.example:99999"}, "address: "},
		{"fail/url-for-syslog", Config{Name: "s", Type: "syslog", Address: "a:1", URL: "http://x"}, "url: only for type http"},
		{"fail/facility", Config{Name: "s", Type: "syslog", Address: "a:1", Facility: "local9"}, "facility: "},
		{"fail/app-name", Config{Name: "s", Type: "syslog", Address: "a:1", AppName: "my app"}, "app_name: "},
		{"fail/url", Config{Name: "h", Type: "http", URL: "ftp://x/y"}, "url: "},
		{"fail/url-credentials", Config{Name: "h", Type: "http", URL: "https://u:p@x/y"}, "url: must not carry credentials"},
		{"fail/tls-on-http", Config{Name: "h", Type: "http", URL: "http://x/y", TLS: &TLSConfig{}}, "tls: set, but"},
		{"fail/batch", Config{Name: "s", Type: "syslog", Address: "a:1", BatchSize: -1}, "batch_size: "},
		{"fail/ca-missing", Config{Name: "s", Type: "syslog", Address: "a:1", TLS: &TLSConfig{CA: "/nonexistent/ca.pem"}}, "tls.ca: "},
		{"fail/key-missing", Config{Name: "s", Type: "syslog", Address: "a:1", TLS: &TLSConfig{Cert: c.clientCert}}, "tls.key: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.cfg.Check()
			if tt.want == "" {
				if len(p) > 0 {
					t.Fatalf("problems: %v", p)
				}
				return
			}
			if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), tt.want) {
				t.Fatalf("problems %q, want one containing %q", p, tt.want)
			}
		})
	}
	cfg := Config{Name: "s", Type: "syslog", Address: "a:1"}
	cfg.Check()
	if cfg.AppName != "brana" || cfg.Facility != "local0" || cfg.BatchSize != DefaultBatchSize || cfg.Hostname == "" {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
	all := CheckAll([]Config{{Name: "a", Type: "syslog", Address: "x:1"}, {Name: "a", Type: "http", URL: "http://x"}})
	if len(all) != 1 || !strings.Contains(all[0], `[1].name: "a" is already`) {
		t.Fatalf("CheckAll: %q", all)
	}
}
