package auditquery

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
)

// writeOPCUALog writes an OPC UA session's records, the way opcuarelay
// writes them, plus one Modbus command, and returns the log's directory.
func writeOPCUALog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	add := func(r *audit.Record) {
		t.Helper()
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	ua := func(typ audit.Type, at time.Duration, svc string) *audit.Record {
		r := newRec(typ, at)
		r.Session, r.Party, r.PartyName, r.Org = "u1", "eng", "Eva Horák", "Grid Service"
		r.Source, r.Listener, r.Target, r.Service = "10.0.0.7:50000", "line-opc", "feeder-opc", svc
		return r
	}
	result := func(at time.Duration, cmd uint64, svc string, statuses ...string) *audit.Record {
		r := ua(audit.Result, at, svc)
		r.Cmd, r.Status, r.LatencyUS = cmd, "Good", 900
		for _, s := range statuses {
			r.Items = append(r.Items, audit.Item{Status: s})
		}
		r.NItems = len(statuses)
		return r
	}

	open := ua(audit.SessionOpen, 0, "")
	open.Decision, open.Reason = "allow", "step 1"
	add(open) // seq 1

	w := ua(audit.Command, time.Minute, "Write")
	w.Class, w.Decision, w.Rule = "control", "partial", "feeder-setpoints"
	w.Items = []audit.Item{
		{Node: "ns=2;s=Feeder.Protection.TimeDelay", Attr: "Value", Value: "7", Class: "control",
			Decision: "deny", Rule: "feeder-setpoints", Reason: "node", Status: "BadUserAccessDenied"},
		{Node: "ns=2;s=Feeder.Protection.OvercurrentPickup", Attr: "Value", Value: "460", Class: "control",
			Decision: "allow", Rule: "feeder-setpoints"},
	}
	w.NItems = 2
	w.Detail = "node ns=2;s=Feeder.Protection.TimeDelay is not writable under rule feeder-setpoints"
	add(w)                                                                               // seq 2
	add(result(time.Minute+time.Millisecond, 2, "Write", "BadUserAccessDenied", "Good")) // seq 3

	rd := ua(audit.Command, 2*time.Minute, "Read")
	rd.Class, rd.Decision, rd.Rule = "read", "allow", "read-all"
	for i := 0; i < audit.MaxValues; i++ {
		it := audit.Item{Node: "ns=2;s=Feeder.Meas.I" + strconv.Itoa(i), Attr: "Value", Class: "read", Decision: "allow", Rule: "read-all"}
		switch i {
		case 0:
			it.Attr = "DisplayName"
		case 1:
			it.Range = "0:3"
		}
		rd.Items = append(rd.Items, it)
	}
	rd.NItems = 40
	add(rd) // seq 4
	ok := make([]string, audit.MaxValues)
	for i := range ok {
		ok[i] = "Good"
	}
	okRes := result(2*time.Minute+time.Millisecond, 4, "Read", ok...)
	okRes.NItems = 40
	add(okRes) // seq 5

	call := ua(audit.Command, 3*time.Minute, "Call")
	call.Class, call.Decision = "program", "held"
	call.Items = []audit.Item{{Node: "ns=2;s=Feeder/ns=2;s=Feeder.Reset", Value: "1, true", Class: "program",
		Decision: "held", Rule: "maintenance", Reason: "needs-approval", Status: "BadUserAccessDenied"}}
	call.NItems, call.Status = 1, "BadUserAccessDenied"
	call.Detail = "held: awaiting approval of access request r-1"
	add(call) // seq 6

	pw := ua(audit.Command, 4*time.Minute, "Write")
	pw.Class, pw.Decision, pw.Rule = "control", "allow", "pump"
	pw.Items = []audit.Item{{Node: "ns=2;s=Pump.Speed", Attr: "Value", Value: "1200", Class: "control", Decision: "allow", Rule: "pump"}}
	pw.NItems = 1
	add(pw) // seq 7
	failed := ua(audit.Result, 4*time.Minute+time.Millisecond, "Write")
	failed.Cmd, failed.Decision, failed.Status, failed.Detail = 7, "error", "failed", "PLC did not answer"
	add(failed) // seq 8

	lim := ua(audit.Command, 5*time.Minute, "Write")
	lim.Class, lim.Decision, lim.Rule = "control", "allow", "pump"
	lim.Items = []audit.Item{{Node: "ns=2;s=Pump.Limit", Attr: "Value", Value: "99", Class: "control", Decision: "allow", Rule: "pump"}}
	lim.NItems = 1
	add(lim)                                                               // seq 9
	add(result(5*time.Minute+time.Millisecond, 9, "Write", "GoodClamped")) // seq 10

	mb := newRec(audit.Command, 6*time.Minute)
	mb.Session, mb.Party, mb.Target = "m1", "scada", "feeder-plc"
	mb.Unit, mb.Func, mb.Class = 1, 6, "write"
	mb.WriteTab, mb.WriteAt, mb.WriteN = "holding", 5, 1
	mb.Values, mb.NValues = []uint16{7}, 1
	mb.Decision, mb.Rule = "allow", "feeder-setpoints"
	add(mb) // seq 11

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestShowOPCUAFilters(t *testing.T) {
	dir := writeOPCUALog(t)
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"ok/service-any-case", Filter{Service: "write"}, []uint64{2, 3, 7, 8, 9, 10}},
		{"ok/services", Filter{Service: "Read, CALL"}, []uint64{4, 5, 6}},
		{"ok/service-not-modbus", Filter{Service: "Write", Class: "write"}, nil},
		{"ok/service-none", Filter{Service: "Browse"}, nil},
		{"ok/node-with-result", Filter{Node: "timedelay"}, []uint64{2, 3}},
		{"ok/node-namespace", Filter{Node: "ns=2;s=Pump."}, []uint64{7, 8, 9, 10}},
		{"ok/node-call-method", Filter{Node: "Feeder.Reset"}, []uint64{6}},
		{"ok/node-recorded-item", Filter{Node: "Feeder.Meas.I31"}, []uint64{4, 5}},
		{"ok/node-and-service", Filter{Node: "feeder", Service: "read"}, []uint64{4, 5}},
		{"ok/node-none", Filter{Node: "Boiler"}, nil},
		{"ok/decision-partial", Filter{Decision: "partial"}, []uint64{2, 3}},
		{"ok/decision-held", Filter{Decision: "held"}, []uint64{6}},
		{"ok/decision-error", Filter{Decision: "error"}, []uint64{8}},
		{"ok/decision-allow-includes-failed-result", Filter{Decision: "allow", Service: "write"}, []uint64{7, 8, 9, 10}},
		{"ok/class-inherited-by-failed-result", Filter{Class: "control"}, []uint64{2, 3, 7, 8, 9, 10}},
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

func TestShowOPCUAHuman(t *testing.T) {
	dir := writeOPCUALog(t)
	var out bytes.Buffer
	n, err := show(&out, dir, Filter{}, false, time.UTC)
	if err != nil || n != 11 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 12 {
		t.Fatalf("want a header and 11 lines:\n%s", out.String())
	}
	want := map[int][]string{
		1: {"session.open", "Eva Horák (Grid Service)", "from 10.0.0.7:50000 via line-opc", "allow (step 1)"},
		2: {"Write control: ns=2;s=Feeder.Protection.TimeDelay=7 deny(node) BadUserAccessDenied; ns=2;s=Feeder.Protection.OvercurrentPickup=460 allow  ",
			"partial rule feeder-setpoints", "is not writable"},
		3: {"for #2 Write control: ns=2;s=Feeder.Protection.TimeDelay BadUserAccessDenied; ns=2;s=Feeder.Protection.OvercurrentPickup Good  ",
			"Good 900µs"},
		4: {"Read read: ns=2;s=Feeder.Meas.I0@DisplayName; ns=2;s=Feeder.Meas.I1[0:3]; ns=2;s=Feeder.Meas.I2;",
			"ns=2;s=Feeder.Meas.I31; … (40 items)  ", "allow rule read-all"},
		5: {"for #4 Read read  ", "Good 900µs"},
		6: {"Call program: ns=2;s=Feeder/ns=2;s=Feeder.Reset(1, true) held(needs-approval) rule maintenance BadUserAccessDenied  ",
			"held  ", "held: awaiting approval"},
		7:  {"Write control: ns=2;s=Pump.Speed=1200  ", "allow rule pump"},
		8:  {"for #7 Write control  ", "error  ", "failed", "PLC did not answer"},
		10: {"for #9 Write control: ns=2;s=Pump.Limit GoodClamped  "},
		11: {"unit 1 fc 6 write holding 5 = 7  ", "allow rule feeder-setpoints"},
	}
	for i, subs := range want {
		for _, s := range subs {
			if !strings.Contains(lines[i], s) {
				t.Errorf("line %d lacks %q:\n%s", i, s, lines[i])
			}
		}
	}
	if strings.Contains(lines[5], ": ") || strings.Contains(lines[8], ": ") {
		t.Errorf("a result whose items are all Good, or that has none, lists no items:\n%s\n%s", lines[5], lines[8])
	}
}

// Without its command in view a result's items are named by their index.
func TestShowOPCUAResultWithoutCommand(t *testing.T) {
	dir := writeOPCUALog(t)
	var out bytes.Buffer
	if _, err := show(&out, dir, Filter{FromSeq: 3, ToSeq: 3}, false, time.UTC); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "for #2 Write: #0 BadUserAccessDenied; #1 Good") {
		t.Fatalf("got:\n%s", out.String())
	}
}

// Item text comes from the client: it must not reach the terminal raw.
func TestShowOPCUAEscapesItems(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := newRec(audit.Command, 0)
	r.Service, r.Class, r.Decision = "Write", "control", "deny"
	r.Items = []audit.Item{{Node: "ns=2;s=X\x1b[2J", Value: "\u202eevil", Decision: "deny", Reason: "node"}}
	r.NItems = 1
	if _, err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	var out bytes.Buffer
	if _, err := show(&out, dir, Filter{}, false, time.UTC); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\u202e") || !strings.Contains(out.String(), `ns=2;s=X\x1b[2J=\u202eevil deny(node)`) {
		t.Fatalf("got:\n%s", out.String())
	}
}

func TestParseFilterOPCUA(t *testing.T) {
	f, err := ParseFilter(Flags{Service: "Write,Call", Node: "  TimeDelay ", Decision: "partial,held,error"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Service != "Write,Call" || f.Node != "TimeDelay" || f.Decision != "partial,held,error" {
		t.Fatalf("got %+v", f)
	}
}
