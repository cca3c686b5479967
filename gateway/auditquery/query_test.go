package auditquery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)

func newRec(typ audit.Type, at time.Duration) *audit.Record {
	r := &audit.Record{}
	r.Reset()
	r.Type, r.Time = typ, t0.Add(at)
	return r
}

// writeLog writes a small but varied log and returns its directory.
func writeLog(t *testing.T, opts audit.Options) string {
	t.Helper()
	dir := t.TempDir()
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := audit.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	add := func(r *audit.Record) {
		t.Helper()
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	add(newRec(audit.GatewayStart, 0))

	open := newRec(audit.SessionOpen, time.Minute)
	open.Session, open.Party, open.PartyName, open.Org = "s1", "acme", "Jan Novák", "ACME s.r.o."
	open.Source, open.Listener, open.Decision = "10.0.0.5:40000", "scada", "allow"
	add(open)

	w := newRec(audit.Command, 2*time.Minute)
	w.Session, w.Party, w.PartyName, w.Org, w.Target = "s1", "acme", "Jan Novák", "ACME s.r.o.", "feeder-plc"
	w.Unit, w.Func, w.Class = 1, 16, "write"
	w.WriteTab, w.WriteAt, w.WriteN = "holding", 100, 2
	w.Values, w.NValues = []uint16{500, 65535}, 2
	w.Decision, w.Rule = "allow", "feeder-setpoints"
	add(w) // seq 3

	res := newRec(audit.Result, 2*time.Minute+time.Millisecond)
	res.Session, res.Party, res.PartyName, res.Org, res.Target = "s1", "acme", "Jan Novák", "ACME s.r.o.", "feeder-plc"
	res.Cmd, res.Unit, res.Func, res.Status, res.LatencyUS = 3, 1, 16, "ok", 412
	add(res)

	d := newRec(audit.Command, 3*time.Minute)
	d.Session, d.Party, d.PartyName, d.Org, d.Target = "s2", "evil", "Mallory\x1b[2J\u202e", "", "pump-plc"
	d.Unit, d.Func, d.Class = 1, 5, "write"
	d.WriteTab, d.WriteAt, d.WriteN = "coils", 7, 1
	d.Values, d.NValues = []uint16{1}, 1
	d.Decision, d.Reason, d.Detail = "deny", "no-rule", "no rule allows write on pump-plc\nfor evil"
	add(d) // seq 5

	rd := newRec(audit.Command, 4*time.Minute)
	rd.Session, rd.Party, rd.PartyName, rd.Target = "s1", "acme", "Jan Novák", "feeder-plc"
	rd.Unit, rd.Func, rd.Class = 1, 3, "read"
	rd.ReadTab, rd.ReadAt, rd.ReadN = "holding", 0, 10
	rd.Decision, rd.Rule = "allow", "read-all"
	add(rd) // seq 6

	ex := newRec(audit.Result, 4*time.Minute+time.Millisecond)
	ex.Session, ex.Party, ex.Target, ex.Cmd = "s1", "acme", "feeder-plc", 6
	ex.Unit, ex.Func, ex.Exception, ex.Status, ex.LatencyUS = 1, 3, 2, "exception from target: illegal data address", 25000
	add(ex)

	ref := newRec(audit.SessionRefused, 5*time.Minute)
	ref.Source, ref.Listener, ref.Decision, ref.Reason = "192.0.2.9:5555", "scada", "deny", "unidentified"
	add(ref) // seq 8

	add(newRec(audit.GatewayStop, 6*time.Minute))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func seqsOf(t *testing.T, out []byte) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r struct{ Seq uint64 }
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func TestShowFilters(t *testing.T) {
	dir := writeLog(t, audit.Options{})
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"ok/all", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"ok/party-id", Filter{Party: "acme"}, []uint64{2, 3, 4, 6, 7}},
		{"ok/party-org-part", Filter{Party: "acme s.r"}, []uint64{2, 3, 4}},
		{"ok/party-name-any-case", Filter{Party: "jan nov"}, []uint64{2, 3, 4, 6}},
		{"ok/parties", Filter{Party: "evil, acme"}, []uint64{2, 3, 4, 5, 6, 7}},
		{"ok/target", Filter{Target: "pump-plc"}, []uint64{5}},
		{"ok/session", Filter{Session: "s2"}, []uint64{5}},
		{"ok/class-with-results", Filter{Class: "write"}, []uint64{3, 4, 5}},
		{"ok/decision-allow-write", Filter{Class: "write", Decision: "allow"}, []uint64{3, 4}},
		{"ok/decision-deny", Filter{Decision: "deny"}, []uint64{5, 8}},
		{"ok/type-family", Filter{Type: "session"}, []uint64{2, 8}},
		{"ok/types", Filter{Type: "gateway.start,gateway.stop"}, []uint64{1, 9}},
		{"ok/since", Filter{Since: t0.Add(4 * time.Minute)}, []uint64{6, 7, 8, 9}},
		{"ok/until-exclusive", Filter{Until: t0.Add(2 * time.Minute)}, []uint64{1, 2}},
		{"ok/window", Filter{Since: t0.Add(2 * time.Minute), Until: t0.Add(3 * time.Minute)}, []uint64{3, 4}},
		{"ok/seq-range", Filter{FromSeq: 4, ToSeq: 6}, []uint64{4, 5, 6}},
		{"ok/none", Filter{Target: "nothing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := Show(&out, dir, tt.f, true)
			if err != nil {
				t.Fatal(err)
			}
			got := seqsOf(t, out.Bytes())
			if n != len(tt.want) || !equal(got, tt.want) {
				t.Fatalf("got %d records %v, want %v", n, got, tt.want)
			}
		})
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The JSON form is the stored bytes: hashes chain exactly as in the log.
func TestShowJSONIsStoredBytes(t *testing.T) {
	dir := writeLog(t, audit.Options{})
	var out bytes.Buffer
	if _, err := Show(&out, dir, Filter{}, true); err != nil {
		t.Fatal(err)
	}
	segs, err := audit.Segments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	stored, err := os.ReadFile(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), stored) {
		t.Fatalf("JSON output differs from the stored segment:\n%s\nvs\n%s", out.Bytes(), stored)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	for i := 1; i < len(lines); i++ {
		var r struct{ Prev string }
		json.Unmarshal(lines[i], &r)
		h := sha256.Sum256(lines[i-1])
		if r.Prev != hex.EncodeToString(h[:]) {
			t.Fatalf("line %d: prev does not match the hash of line %d", i+1, i)
		}
	}
}

// Rotated, compressed segments read like the active one.
func TestShowAcrossCompressedSegments(t *testing.T) {
	dir := writeLog(t, audit.Options{SegmentMaxBytes: 600})
	deadline := time.Now().Add(5 * time.Second)
	for {
		segs, _ := audit.Segments(dir)
		gz := 0
		for _, s := range segs {
			if s.Compressed {
				gz++
			}
		}
		if gz > 0 || time.Now().After(deadline) {
			if gz == 0 || len(segs) < 3 {
				t.Fatalf("want several segments with compressed ones, got %+v", segs)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out bytes.Buffer
	n, err := Show(&out, dir, Filter{Decision: "deny"}, true)
	if err != nil || n != 2 || !equal(seqsOf(t, out.Bytes()), []uint64{5, 8}) {
		t.Fatalf("n=%d err=%v out=%s", n, err, out.Bytes())
	}
}

func TestShowHuman(t *testing.T) {
	dir := writeLog(t, audit.Options{})
	var out bytes.Buffer
	loc := time.FixedZone("CET", 3600)
	n, err := show(&out, dir, Filter{}, false, loc)
	if err != nil || n != 9 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header and 9 lines:\n%s", text)
	}
	want := map[int][]string{
		2: {"2026-11-26 13:01:00.123456 +01:00", "session.open", "Jan Novák (ACME s.r.o.)", "from 10.0.0.5:40000 via scada"},
		3: {"2026-11-26 13:02:00.123456 +01:00", "       3  command", "Jan Novák (ACME s.r.o.)", "feeder-plc",
			"unit 1 fc 16 write holding 100-101 = 500,65535", "allow rule feeder-setpoints"},
		4: {"result", "for #3 unit 1 fc 16 write", "ok 412µs"},
		5: {"Mallory\\x1b[2J\\u202e", "pump-plc", "unit 1 fc 5 write coils 7 = 1", "deny (no-rule)", `no rule allows write on pump-plc\nfor evil`},
		6: {"unit 1 fc 3 read holding 0-9", "allow rule read-all"},
		7: {"for #6", "exception from target: illegal data address (code 2) 25.0ms"},
		8: {"session.refused", "from 192.0.2.9:5555 via scada", "deny (unidentified)"},
	}
	for i, subs := range want {
		for _, s := range subs {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d lacks %q:\n%s", i, s, lines[i])
			}
		}
	}
	if strings.ContainsAny(text, "\x1b\u202e") {
		t.Error("control characters reached the terminal")
	}
	// Columns line up: the type column starts at the same place on every line.
	col := strings.Index(lines[0], "TYPE")
	for i, l := range lines[1:] {
		r := []rune(l)
		if r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("line %d: type column not aligned:\n%s\n%s", i+1, lines[0], l)
		}
	}
}

func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		fl      Flags
		since   time.Time
		until   time.Time
		wantErr string
	}{
		{"ok/empty", Flags{}, time.Time{}, time.Time{}, ""},
		{"ok/duration", Flags{Since: "2h"}, now.Add(-2 * time.Hour), time.Time{}, ""},
		{"ok/rfc3339", Flags{Since: "2026-11-26T10:00:00+01:00", Until: "2026-11-26T11:30:00Z"},
			time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 11, 30, 0, 0, time.UTC), ""},
		{"ok/date", Flags{Since: "2026-11-25"}, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Time{}, ""},
		{"ok/local-minute", Flags{Until: "2026-11-26T11:00"}, time.Time{}, time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), ""},
		{"ok/lists", Flags{Class: "read, write", Decision: "deny,invalid", Type: "session,command"}, time.Time{}, time.Time{}, ""},
		{"fail/time", Flags{Since: "yesterday"}, time.Time{}, time.Time{}, "--since"},
		{"fail/negative", Flags{Until: "-2h"}, time.Time{}, time.Time{}, "negative"},
		{"fail/empty-range", Flags{Since: "1h", Until: "2h"}, time.Time{}, time.Time{}, "not before"},
		{"fail/class", Flags{Class: "raed"}, time.Time{}, time.Time{}, `--class: "raed"`},
		{"fail/decision", Flags{Decision: "denied"}, time.Time{}, time.Time{}, `--decision: "denied"`},
		{"fail/type", Flags{Type: "sesion"}, time.Time{}, time.Time{}, `--type: "sesion"`},
		{"fail/seq-range", Flags{FromSeq: 9, ToSeq: 3}, time.Time{}, time.Time{}, "--from-seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter(tt.fl, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !f.Since.Equal(tt.since) || !f.Until.Equal(tt.until) {
				t.Fatalf("since %v until %v, want %v %v", f.Since, f.Until, tt.since, tt.until)
			}
		})
	}
}

func TestShowMissingDir(t *testing.T) {
	if _, err := Show(io.Discard, filepath.Join(t.TempDir(), "nope"), Filter{}, false); err == nil {
		t.Fatal("want an error for a missing directory")
	}
}
