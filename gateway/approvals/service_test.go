package approvals

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/protocols/opclass"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t    *testing.T
	s    *Service
	clk  *clock
	cfg  Config
	opts Options

	mu     sync.Mutex
	recs   []audit.Record
	events []Event
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := Config{Store: filepath.Join(t.TempDir(), "approvals.db")}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{t: t, clk: &clock{t: t0}, cfg: cfg}
	h.opts = Options{Now: h.clk.Now, Audit: func(r *audit.Record) {
		h.mu.Lock()
		h.recs = append(h.recs, *r)
		h.mu.Unlock()
	}}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	s, err := Open(h.cfg, h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	s.Subscribe(func(ev Event) {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	})
	h.s = s
	h.t.Cleanup(func() { s.Close() })
}

// kinds returns the event kinds so far and forgets them.
func (h *harness) kinds() []EventKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []EventKind
	for _, e := range h.events {
		out = append(out, e.Kind)
	}
	h.events = nil
	return out
}

func (h *harness) types() []audit.Type {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []audit.Type
	for _, r := range h.recs {
		out = append(out, r.Type)
	}
	return out
}

var (
	vendor   = PartyInfo{ID: "acme", Name: "ACME Service", Org: "ACME s.r.o.", Kind: "vendor", Verdict: "non-prc", Findings: []string{"non-prc: established in CZ"}}
	prcParty = PartyInfo{ID: "dragon", Name: "Dragon Remote", Org: "Dragon Ltd", Kind: "vendor", PRC: true, Verdict: "prc",
		Findings: []string{"prc: management in Shenzhen (CN)", "non-prc: source IP in DE"}}
	jana  = Approver{User: "jana", Name: "Jana Novák"}
	petr  = Approver{User: "petr", Name: "Petr Svoboda"}
	karel = Approver{User: "karel", Name: "Karel Dvořák"}
)

func (h *harness) create(p PartyInfo, classes ...opclass.Class) Request {
	h.t.Helper()
	if len(classes) == 0 {
		classes = []opclass.Class{opclass.Write}
	}
	r, err := h.s.Create(Request{Party: p, Targets: []string{"feeder-1", "pump-2"}, Classes: classes, Reason: "replace pump controller", RequestedBy: "acme"})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) grant(p PartyInfo, classes ...opclass.Class) Request {
	h.t.Helper()
	r := h.create(p, classes...)
	var err error
	for _, a := range []Approver{jana, petr}[:r.Required] {
		if r, err = h.s.Approve(r.ID, a, ApproveOpts{}); err != nil {
			h.t.Fatal(err)
		}
	}
	if r.State != StateApproved {
		h.t.Fatalf("state %s after %d approvals", r.State, r.Required)
	}
	return r
}

func (h *harness) state(id string) State {
	h.t.Helper()
	r, err := h.s.Get(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r.State
}

func TestConfigCheck(t *testing.T) {
	t.Run("ok/defaults", func(t *testing.T) {
		var c Config
		if p := c.Check(); len(p) > 0 {
			t.Fatal(p)
		}
		if c.pendingTTL != 30*time.Minute || c.claimBy != time.Hour || c.defaultWindow != 2*time.Hour || c.maxWindow != 12*time.Hour ||
			c.warnBefore != 5*time.Minute || c.WindowFrom != FromFirstUse || !*c.TwoPerson.PRC || !slices.Equal(c.TwoPerson.Classes, []string{"program"}) {
			t.Fatalf("defaults: %+v", c)
		}
	})
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("k\n"), 0o600)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok/days", Config{PendingTTL: "1d", MaxWindow: "2d", Webhooks: []WebhookConfig{{URL: "https://x.example/hook", SecretFile: secret}}}, ""},
		{"fail/duration", Config{PendingTTL: "soon"}, `pending_ttl: "soon" is not a duration`},
		{"fail/zero", Config{ClaimBy: "0s"}, "claim_by: must be more than zero"},
		{"fail/window-order", Config{DefaultWindow: "13h"}, "default_window: 13h is longer than max_window 12h"},
		{"fail/window-from", Config{WindowFrom: "now"}, `window_from: "now" is not approval or first-use`},
		{"fail/kind", Config{TwoPerson: TwoPerson{Kinds: []string{"vendour"}}}, `two_person.kinds[0]: "vendour" is not a party kind`},
		{"fail/verdict", Config{TwoPerson: TwoPerson{Verdicts: []string{"cn"}}}, `two_person.verdicts[0]: "cn" is not a verdict`},
		{"fail/class", Config{TwoPerson: TwoPerson{Classes: []string{"flash"}}}, `two_person.classes[0]: "flash" is not an operation class`},
		{"fail/url", Config{Webhooks: []WebhookConfig{{URL: "ftp://x"}}}, `webhooks[0].url: "ftp://x" is not an http or https URL`},
		{"fail/secret", Config{Webhooks: []WebhookConfig{{URL: "http://x", SecretFile: secret + ".missing"}}}, "webhooks[0].secret_file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strings.Join(tt.cfg.Check(), "\n")
			if tt.want == "" && p != "" || !strings.Contains(p, tt.want) {
				t.Fatalf("Check() = %q, want %q", p, tt.want)
			}
		})
	}
}

func TestIsPRCFinding(t *testing.T) {
	tests := []struct {
		f    string
		want bool
	}{
		{"source-country 203.0.113.7: CN (PRC; GeoLite2-Country.mmdb)", true},
		{"management dragon: CN (PRC)", true},
		{"prc: management in Shenzhen (CN)", true},
		{"established acme: CZ (non-PRC; config)", false},
		{"evidence acme: no jurisdiction evidence declared (unknown; config)", false},
		{"non-prc: source IP in DE", false},
	}
	for _, tt := range tests {
		if got := IsPRCFinding(tt.f); got != tt.want {
			t.Errorf("IsPRCFinding(%q) = %v", tt.f, got)
		}
	}
	if !(PartyInfo{Verdict: "PRC"}).HasPRC() || (PartyInfo{Verdict: "non-PRC"}).HasPRC() {
		t.Error("HasPRC by verdict")
	}
}

func TestCreateValidates(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"fail/no-party", Request{Targets: []string{"a"}, Classes: []opclass.Class{opclass.Read}, Reason: "x"}, "no party"},
		{"fail/no-targets", Request{Party: vendor, Classes: []opclass.Class{opclass.Read}, Reason: "x"}, "no targets"},
		{"fail/no-classes", Request{Party: vendor, Targets: []string{"a"}, Reason: "x"}, "no operation classes"},
		{"fail/no-reason", Request{Party: vendor, Targets: []string{"a"}, Classes: []opclass.Class{opclass.Read}}, "reason or a ticket"},
		{"fail/too-long", Request{Party: vendor, Targets: []string{"a"}, Classes: []opclass.Class{opclass.Read}, Ticket: "T-1", Duration: 13 * time.Hour}, "longer than the longest work window"},
		{"ok/ticket", Request{Party: vendor, Targets: []string{"a", "a", " "}, Classes: []opclass.Class{opclass.Write, opclass.Read}, Ticket: "T-1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := h.s.Create(tt.req)
			if tt.want != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.ID) != 8 || !strings.HasPrefix(r.ID, "R-") || strings.ContainsAny(r.ID[2:], "01ILO") {
				t.Errorf("id %q", r.ID)
			}
			if !slices.Equal(r.Targets, []string{"a"}) || !slices.Equal(r.Classes, []opclass.Class{opclass.Read, opclass.Write}) ||
				r.Duration != 2*time.Hour || r.RequestedBy != "acme" || !r.PendingUntil.Equal(t0.Add(30*time.Minute)) || r.Required != 1 {
				t.Errorf("request %+v", r)
			}
			if g, err := h.s.Get(strings.ToLower(r.ID[2:])); err != nil || g.ID != r.ID {
				t.Errorf("Get(lower-case, no prefix) = %v, %v", g.ID, err)
			}
		})
	}
}

func TestClocks(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		run    func(t *testing.T, h *harness)
	}{
		{"expire/pending-ttl", nil, func(t *testing.T, h *harness) {
			r := h.create(vendor)
			h.kinds()
			h.clk.Add(29 * time.Minute)
			h.s.tick()
			if k := h.kinds(); len(k) != 0 {
				t.Fatalf("events before the pending TTL: %v", k)
			}
			h.clk.Add(time.Minute)
			h.s.tick()
			if k := h.kinds(); !slices.Equal(k, []EventKind{Expired}) || h.state(r.ID) != StateExpired {
				t.Fatalf("events %v, state %s", k, h.state(r.ID))
			}
			if _, err := h.s.Approve(r.ID, jana, ApproveOpts{}); !errors.Is(err, ErrState) {
				t.Fatalf("approving an expired request: %v", err)
			}
		}},
		{"expire/pending-ttl-before-tick", nil, func(t *testing.T, h *harness) {
			r := h.create(vendor)
			h.clk.Add(31 * time.Minute)
			if _, err := h.s.Approve(r.ID, jana, ApproveOpts{}); !errors.Is(err, ErrState) {
				t.Fatalf("approving after the pending TTL: %v", err)
			}
		}},
		{"expire/claim-by", nil, func(t *testing.T, h *harness) {
			r := h.grant(vendor)
			if !r.ClaimBy.Equal(t0.Add(time.Hour)) || !r.WindowEnd.IsZero() {
				t.Fatalf("claim by %v, window end %v", r.ClaimBy, r.WindowEnd)
			}
			h.kinds()
			h.clk.Add(59 * time.Minute)
			h.s.tick()
			if k := h.kinds(); len(k) != 0 {
				t.Fatalf("events before claim-by: %v", k)
			}
			h.clk.Add(time.Minute)
			if _, ok := h.s.Active("acme", "feeder-1", opclass.Write); ok {
				t.Fatal("grant usable after claim-by")
			}
			h.s.tick()
			if k := h.kinds(); !slices.Equal(k, []EventKind{Expired}) || h.state(r.ID) != StateExpired {
				t.Fatalf("events %v, state %s", k, h.state(r.ID))
			}
		}},
		{"close/window-from-first-use", nil, func(t *testing.T, h *harness) {
			r := h.grant(vendor)
			h.clk.Add(40 * time.Minute)
			g, ok := h.s.Active("acme", "pump-2", opclass.Write)
			if !ok || g.ID != r.ID || !g.WindowStart.Equal(t0.Add(40*time.Minute)) || !g.WindowEnd.Equal(t0.Add(160*time.Minute)) {
				t.Fatalf("Active = %v %v, window %v to %v", g.ID, ok, g.WindowStart, g.WindowEnd)
			}
			h.s.flush()
			h.kinds()
			h.clk.Add(time.Hour) // past claim-by: used, so it still counts
			h.s.tick()
			if _, ok := h.s.Active("acme", "pump-2", opclass.Write); !ok || len(h.kinds()) != 0 {
				t.Fatal("a used grant must outlive claim-by")
			}
			h.clk.Add(54 * time.Minute)
			h.s.tick()
			if k := h.kinds(); len(k) != 0 {
				t.Fatalf("events 6m before the end: %v", k)
			}
			h.clk.Add(time.Minute)
			h.s.tick()
			h.s.tick()
			if k := h.kinds(); !slices.Equal(k, []EventKind{ExpiringSoon}) {
				t.Fatalf("events 5m before the end: %v", k)
			}
			h.clk.Add(5 * time.Minute)
			if _, ok := h.s.Active("acme", "pump-2", opclass.Write); ok {
				t.Fatal("usable at the end of the window")
			}
			h.s.tick()
			if k := h.kinds(); !slices.Equal(k, []EventKind{Expired}) || h.state(r.ID) != StateClosed {
				t.Fatalf("events %v, state %s", k, h.state(r.ID))
			}
		}},
		{"close/window-from-approval", func(c *Config) { c.WindowFrom = FromApproval; c.DefaultWindow = "30m" }, func(t *testing.T, h *harness) {
			r := h.grant(vendor)
			if !r.WindowStart.Equal(t0) || !r.WindowEnd.Equal(t0.Add(30*time.Minute)) || !r.ClaimBy.Equal(r.WindowEnd) {
				t.Fatalf("window %v to %v, claim by %v", r.WindowStart, r.WindowEnd, r.ClaimBy)
			}
			h.clk.Add(10 * time.Minute)
			if g, ok := h.s.Active("acme", "feeder-1", opclass.Write); !ok || !g.WindowEnd.Equal(r.WindowEnd) {
				t.Fatal("first use must not move an approval window")
			}
			h.s.flush()
			h.kinds()
			h.clk.Add(20 * time.Minute)
			h.s.tick()
			if k := h.kinds(); !slices.Equal(k, []EventKind{Expired}) {
				t.Fatalf("events %v", k)
			}
			if h.state(r.ID) != StateClosed {
				t.Fatalf("state %s", h.state(r.ID))
			}
		}},
		{"wait/wanted-start", nil, func(t *testing.T, h *harness) {
			r, err := h.s.Create(Request{Party: vendor, Targets: []string{"feeder-1"}, Classes: []opclass.Class{opclass.Read}, Ticket: "T-9",
				WantStart: t0.Add(3 * time.Hour), Duration: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if !r.PendingUntil.Equal(t0.Add(3*time.Hour + 30*time.Minute)) {
				t.Fatalf("pending until %v", r.PendingUntil)
			}
			r, _ = h.s.Approve(r.ID, jana, ApproveOpts{})
			if !r.ClaimBy.Equal(t0.Add(4 * time.Hour)) {
				t.Fatalf("claim by %v", r.ClaimBy)
			}
			if _, ok := h.s.Active("acme", "feeder-1", opclass.Read); ok {
				t.Fatal("usable before the wanted start")
			}
			h.clk.Add(3 * time.Hour)
			if g, ok := h.s.Active("acme", "feeder-1", opclass.Read); !ok || !g.WindowEnd.Equal(t0.Add(4*time.Hour)) {
				t.Fatalf("at the wanted start: %v %v", ok, g.WindowEnd)
			}
		}},
		{"shorten/until", nil, func(t *testing.T, h *harness) {
			r := h.create(vendor)
			r, err := h.s.Approve(r.ID, jana, ApproveOpts{Until: t0.Add(45 * time.Minute)})
			if err != nil || !r.ClaimBy.Equal(t0.Add(45*time.Minute)) || !r.NotAfter.Equal(t0.Add(45*time.Minute)) {
				t.Fatalf("%v: claim by %v, not after %v", err, r.ClaimBy, r.NotAfter)
			}
			h.clk.Add(30 * time.Minute)
			g, ok := h.s.Active("acme", "feeder-1", opclass.Write)
			if !ok || !g.WindowEnd.Equal(t0.Add(45*time.Minute)) {
				t.Fatalf("window end %v, want the approver's until", g.WindowEnd)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newHarness(t, tt.mutate)) })
	}
}

func TestTwoPerson(t *testing.T) {
	integrator := vendor
	integrator.ID, integrator.Kind = "sys-int", "integrator"
	unknown := vendor
	unknown.ID, unknown.Verdict = "far", "unknown"
	runtimePRC := vendor
	runtimePRC.ID, runtimePRC.Verdict = "relay", "prc"
	tests := []struct {
		name    string
		mutate  func(*Config)
		party   PartyInfo
		classes []opclass.Class
		want    int
		because string
	}{
		{"one/vendor-write", nil, vendor, []opclass.Class{opclass.Write}, 1, ""},
		{"two/program", nil, vendor, []opclass.Class{opclass.Read, opclass.Program}, 2, "class program"},
		{"two/prc-managed", nil, prcParty, []opclass.Class{opclass.Read}, 2, "PRC-managed party"},
		{"one/prc-off", func(c *Config) { f := false; c.TwoPerson.PRC = &f }, prcParty, []opclass.Class{opclass.Read}, 1, ""},
		{"two/kind", func(c *Config) { c.TwoPerson.Kinds = []string{"integrator"} }, integrator, []opclass.Class{opclass.Read}, 2, "party kind integrator"},
		{"two/verdict", func(c *Config) { c.TwoPerson.Verdicts = []string{"unknown"} }, unknown, []opclass.Class{opclass.Read}, 2, "jurisdiction verdict unknown"},
		{"one/verdict-not-listed", nil, runtimePRC, []opclass.Class{opclass.Read}, 1, ""},
		{"two/verdict-policy-spelling", func(c *Config) { c.TwoPerson.Verdicts = []string{"PRC"} }, runtimePRC, []opclass.Class{opclass.Read}, 2, "jurisdiction verdict prc"},
		{"one/classes-none", func(c *Config) { c.TwoPerson.Classes = []string{} }, vendor, []opclass.Class{opclass.Program}, 1, ""},
		{"two/control", func(c *Config) { c.TwoPerson.Classes = []string{"control"} }, vendor, []opclass.Class{opclass.Control}, 2, "class control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.mutate)
			r := h.create(tt.party, tt.classes...)
			if r.Required != tt.want || !strings.Contains(r.RequiredBecause, tt.because) {
				t.Fatalf("required %d (%s), want %d (%s)", r.Required, r.RequiredBecause, tt.want, tt.because)
			}
			h.kinds()
			r, err := h.s.Approve(r.ID, jana, ApproveOpts{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == 1 {
				if r.State != StateApproved || !slices.Equal(h.kinds(), []EventKind{Granted}) {
					t.Fatalf("one approval: %s", r.State)
				}
				return
			}
			if r.State != StatePending || !slices.Equal(h.kinds(), []EventKind{Approved}) {
				t.Fatalf("one of two approvals: %s", r.State)
			}
			if _, ok := h.s.Active(tt.party.ID, "feeder-1", tt.classes[0]); ok {
				t.Fatal("usable after one of two approvals")
			}
			r, err = h.s.Approve(r.ID, petr, ApproveOpts{})
			if err != nil || r.State != StateApproved || !slices.Equal(h.kinds(), []EventKind{Granted}) {
				t.Fatalf("second approval: %v %s", err, r.State)
			}
			if _, ok := h.s.Active(tt.party.ID, "feeder-1", tt.classes[0]); !ok {
				t.Fatal("not usable after two approvals")
			}
		})
	}
}

func TestNoSelfApproval(t *testing.T) {
	tests := []struct {
		name  string
		first *Approver
		by    Approver
		want  error
	}{
		{"fail/same-party", nil, Approver{User: "wang", Name: "Wang Wei", Party: "dragon"}, ErrSelfApproval},
		{"fail/requester", nil, Approver{User: "acme"}, ErrSelfApproval},
		{"fail/requester-person", nil, Approver{User: "eva", Name: "Eva"}, ErrSelfApproval},
		{"fail/twice", &jana, jana, ErrTwice},
		{"fail/no-user", nil, Approver{Name: "anonymous"}, ErrInvalid},
		{"ok/other-party-staff", nil, Approver{User: "li", Party: "acme-cn"}, nil},
		{"ok/second-person", &jana, petr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			req := Request{Party: prcParty, Targets: []string{"feeder-1"}, Classes: []opclass.Class{opclass.Read}, Reason: "r"}
			if tt.name == "fail/requester-person" {
				req.RequestedBy = "eva"
			}
			if tt.name == "fail/requester" {
				req.Party, req.RequestedBy = vendor, "acme"
			}
			r, err := h.s.Create(req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.first != nil {
				if _, err := h.s.Approve(r.ID, *tt.first, ApproveOpts{}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = h.s.Approve(r.ID, tt.by, ApproveOpts{})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Approve by %v: %v, want %v", tt.by, err, tt.want)
			}
		})
	}
}

func TestNarrowing(t *testing.T) {
	tests := []struct {
		name        string
		opts        ApproveOpts
		want        error
		wantClasses []opclass.Class
		wantTargets []string
	}{
		{"ok/nothing", ApproveOpts{Note: "go ahead"}, nil, []opclass.Class{opclass.Read, opclass.Write}, []string{"feeder-1", "pump-2"}},
		{"ok/classes", ApproveOpts{Classes: []opclass.Class{opclass.Read}}, nil, []opclass.Class{opclass.Read}, []string{"feeder-1", "pump-2"}},
		{"ok/targets", ApproveOpts{Targets: []string{"pump-2"}}, nil, []opclass.Class{opclass.Read, opclass.Write}, []string{"pump-2"}},
		{"ok/same-classes", ApproveOpts{Classes: []opclass.Class{opclass.Write, opclass.Read}}, nil, []opclass.Class{opclass.Read, opclass.Write}, []string{"feeder-1", "pump-2"}},
		{"fail/wider-class", ApproveOpts{Classes: []opclass.Class{opclass.Read, opclass.Program}}, ErrWidens, nil, nil},
		{"fail/other-target", ApproveOpts{Targets: []string{"breaker-9"}}, ErrWidens, nil, nil},
		{"fail/until-past", ApproveOpts{Until: t0.Add(-time.Minute)}, ErrInvalid, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.create(vendor, opclass.Write, opclass.Read)
			got, err := h.s.Approve(r.ID, jana, tt.opts)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Approve: %v, want %v", err, tt.want)
			}
			if err != nil {
				if h.state(r.ID) != StatePending {
					t.Fatal("a refused approval changed the request")
				}
				return
			}
			if !slices.Equal(got.Classes, tt.wantClasses) || !slices.Equal(got.Targets, tt.wantTargets) {
				t.Fatalf("classes %v targets %v", got.Classes, got.Targets)
			}
			for _, c := range []opclass.Class{opclass.Read, opclass.Write} {
				for _, tg := range []string{"feeder-1", "pump-2"} {
					_, ok := h.s.Active("acme", tg, c)
					if want := slices.Contains(tt.wantClasses, c) && slices.Contains(tt.wantTargets, tg); ok != want {
						t.Errorf("Active(%s, %s) = %v, want %v", tg, c, ok, want)
					}
				}
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	h := newHarness(t, nil)
	reg := sessions.NewRegistry()
	h.s.Subscribe(EndSessions(reg))
	var stopped []string
	var mu sync.Mutex
	for _, id := range []string{"s1", "s2", "s3"} {
		reg.Add(sessions.New(sessions.Info{ID: id, Party: "acme"}, func(reason string) {
			mu.Lock()
			stopped = append(stopped, id+": "+reason)
			mu.Unlock()
		}))
	}
	r := h.grant(vendor)
	if _, ok := h.s.Active("acme", "feeder-1", opclass.Write); !ok {
		t.Fatal("grant not active")
	}
	h.s.Attach(r.ID, "s1")
	h.s.Attach(r.ID, "s2")
	h.s.flush()
	h.kinds()
	if _, err := h.s.Revoke(r.ID, karel, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoke without a note: %v", err)
	}
	r, err := h.s.Revoke(r.ID, karel, "wrong pump")
	if err != nil || r.State != StateRevoked || r.Revocation == nil || r.Revocation.By != "karel" {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	if k := h.kinds(); !slices.Equal(k, []EventKind{Revoked}) {
		t.Fatalf("events %v", k)
	}
	if _, ok := h.s.Active("acme", "feeder-1", opclass.Write); ok {
		t.Fatal("revoked grant still active")
	}
	mu.Lock()
	slices.Sort(stopped)
	mu.Unlock()
	if len(stopped) != 2 || !strings.HasPrefix(stopped[0], "s1: grant "+r.ID+" revoked: revoked by Karel Dvořák (karel): wrong pump") || !strings.HasPrefix(stopped[1], "s2:") {
		t.Fatalf("stopped sessions %q; want s1 and s2 (s3 never used the grant)", stopped)
	}
	if _, err := h.s.Revoke(r.ID, karel, "again"); !errors.Is(err, ErrState) {
		t.Fatalf("second revoke: %v", err)
	}
	p := h.create(vendor)
	if _, err := h.s.Revoke(p.ID, karel, "x"); !errors.Is(err, ErrState) {
		t.Fatalf("revoking a pending request: %v", err)
	}
	if _, err := h.s.Revoke("R-NOPE22", karel, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking nothing: %v", err)
	}
}

func TestDeny(t *testing.T) {
	h := newHarness(t, nil)
	r := h.create(prcParty)
	if _, err := h.s.Approve(r.ID, jana, ApproveOpts{}); err != nil {
		t.Fatal(err)
	}
	h.kinds()
	r, err := h.s.Deny(r.ID, petr, "not during the outage")
	if err != nil || r.State != StateDenied || r.Denial.Note != "not during the outage" || !slices.Equal(h.kinds(), []EventKind{Denied}) {
		t.Fatalf("Deny = %+v, %v", r, err)
	}
	if _, err := h.s.Approve(r.ID, karel, ApproveOpts{}); !errors.Is(err, ErrState) {
		t.Fatalf("approving a denied request: %v", err)
	}
}

func TestAuditRecords(t *testing.T) {
	h := newHarness(t, nil)
	r := h.create(prcParty)
	h.s.Approve(r.ID, jana, ApproveOpts{Note: "checked ticket"})
	h.s.Approve(r.ID, petr, ApproveOpts{Classes: []opclass.Class{opclass.Write}})
	h.s.Active("dragon", "feeder-1", opclass.Write)
	h.s.flush()
	h.clk.Add(2 * time.Hour)
	h.s.tick()
	want := []audit.Type{RecRequest, RecApprove, RecApprove, RecGrant, RecFirstUse, RecExpire}
	if got := h.types(); !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.recs[0]
	if first.Party != "dragon" || first.PartyName != "Dragon Remote" || first.Org != "Dragon Ltd" || first.Target != "feeder-1,pump-2" ||
		first.Class != "write" || first.Decision != "request" || first.Status != "pending" || first.Unit != -1 {
		t.Errorf("request record %+v", first)
	}
	for _, s := range []string{r.ID, "needs 2 approval(s) (PRC-managed party)", "evidence: registered PRC-managed; verdict prc; prc: management in Shenzhen (CN); non-prc: source IP in DE", `reason "replace pump controller"`} {
		if !strings.Contains(first.Detail, s) {
			t.Errorf("request detail %q lacks %q", first.Detail, s)
		}
	}
	if d := h.recs[1].Detail; !strings.Contains(d, "approved by Jana Novák (jana) (1 of 2)") || !strings.Contains(d, `note "checked ticket"`) {
		t.Errorf("approve detail %q", d)
	}
	if g := h.recs[3]; g.Decision != "grant" || !strings.Contains(g.Detail, "claim by 2026-03-02T09:00:00Z") {
		t.Errorf("grant record %+v", g)
	}
	if e := h.recs[5]; e.Status != "closed" || e.Reason != "window_end" {
		t.Errorf("expire record %+v", e)
	}
}

func TestPersistence(t *testing.T) {
	h := newHarness(t, nil)
	r := h.grant(prcParty, opclass.Program)
	h.clk.Add(10 * time.Minute)
	g, ok := h.s.Active("dragon", "pump-2", opclass.Program)
	if !ok {
		t.Fatal("grant not active")
	}
	h.s.Attach(r.ID, "s7")
	pending := h.create(vendor)
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	got, ok := h.s.Active("dragon", "pump-2", opclass.Program)
	if !ok || got.ID != r.ID || !got.WindowEnd.Equal(g.WindowEnd) || !got.FirstUse.Equal(t0.Add(10*time.Minute)) ||
		len(got.Approvals) != 2 || !slices.Equal(got.Sessions, []string{"s7"}) || !slices.Equal(got.Classes, []opclass.Class{opclass.Program}) {
		t.Fatalf("after reopen: %v %+v", ok, got)
	}
	if h.state(pending.ID) != StatePending {
		t.Fatal("pending request lost")
	}
	if n := len(h.s.List(ListFilter{})); n != 2 {
		t.Fatalf("%d requests after reopen", n)
	}
	// A grant whose window ended while the gateway was down ends at the first tick.
	h.clk.Add(3 * time.Hour)
	h.s.Close()
	h.open()
	h.s.tick()
	if h.state(r.ID) != StateClosed || h.state(pending.ID) != StateExpired {
		t.Fatalf("states %s, %s", h.state(r.ID), h.state(pending.ID))
	}
}

func TestRequestFor(t *testing.T) {
	h := newHarness(t, nil)
	r1, created, err := h.s.RequestFor(vendor, "feeder-1", opclass.Write, "held write")
	if err != nil || !created || r1.RequestedBy != "acme" || r1.Reason != "held write" {
		t.Fatalf("first: %+v %v %v", r1, created, err)
	}
	tests := []struct {
		name      string
		party     PartyInfo
		target    string
		class     opclass.Class
		created   bool
		sameAs    string
		targets   []string
		classes   []opclass.Class
		required  int
		extraKind EventKind
	}{
		{"join/covered", vendor, "feeder-1", opclass.Write, false, r1.ID, []string{"feeder-1"}, []opclass.Class{opclass.Write}, 1, ""},
		{"join/extend-target", vendor, "pump-2", opclass.Write, false, r1.ID, []string{"feeder-1", "pump-2"}, []opclass.Class{opclass.Write}, 1, Extended},
		{"join/extend-program", vendor, "pump-2", opclass.Program, false, r1.ID, []string{"feeder-1", "pump-2"}, []opclass.Class{opclass.Write, opclass.Program}, 2, Extended},
		{"create/other-party", prcParty, "pump-2", opclass.Read, true, "", []string{"pump-2"}, []opclass.Class{opclass.Read}, 2, Created},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.kinds()
			r, created, err := h.s.RequestFor(tt.party, tt.target, tt.class, "held")
			if err != nil || created != tt.created || (tt.sameAs != "" && r.ID != tt.sameAs) {
				t.Fatalf("RequestFor = %s %v %v", r.ID, created, err)
			}
			if !slices.Equal(r.Targets, tt.targets) || !slices.Equal(r.Classes, tt.classes) || r.Required != tt.required {
				t.Fatalf("targets %v classes %v required %d", r.Targets, r.Classes, r.Required)
			}
			if k := h.kinds(); (tt.extraKind == "" && len(k) != 0) || (tt.extraKind != "" && !slices.Equal(k, []EventKind{tt.extraKind})) {
				t.Fatalf("events %v", k)
			}
		})
	}
	t.Run("join/evidence", func(t *testing.T) {
		p := vendor
		p.Verdict, p.Findings = "prc", []string{"prc: source IP 203.0.113.7 in CN (AS4134)"}
		r, created, err := h.s.RequestFor(p, "feeder-1", opclass.Write, "held")
		if err != nil || created || r.ID != r1.ID || r.Party.Verdict != "prc" || len(r.Party.Findings) != 2 {
			t.Fatalf("RequestFor = %+v %v %v", r.Party, created, err)
		}
		p.Verdict, p.Findings = "non-prc", nil
		r, _, _ = h.s.RequestFor(p, "feeder-1", opclass.Write, "held")
		if r.Party.Verdict != "prc" {
			t.Fatal("a non-PRC finding cancelled a PRC one")
		}
	})
	t.Run("create/after-an-approval", func(t *testing.T) {
		if _, err := h.s.Approve(r1.ID, jana, ApproveOpts{}); err != nil {
			t.Fatal(err)
		}
		r, created, err := h.s.RequestFor(vendor, "breaker-9", opclass.Control, "held")
		if err != nil || !created || r.ID == r1.ID {
			t.Fatalf("extending a request someone approved must make a new one: %s %v %v", r.ID, created, err)
		}
		r, created, _ = h.s.RequestFor(vendor, "pump-2", opclass.Program, "held")
		if created || r.ID != r1.ID {
			t.Fatal("a covered request with an approval is still joined")
		}
	})
}

func TestActiveFastPath(t *testing.T) {
	h := newHarness(t, nil)
	for range 20 {
		h.create(vendor)
	}
	r := h.grant(vendor, opclass.Write, opclass.Read)
	if _, ok := h.s.Active("acme", "feeder-1", opclass.Read); !ok {
		t.Fatal("not active")
	}
	h.s.flush()
	tests := []struct {
		name          string
		party, target string
		class         opclass.Class
		want          bool
	}{
		{"ok/write", "acme", "pump-2", opclass.Write, true},
		{"fail/class", "acme", "pump-2", opclass.Program, false},
		{"fail/target", "acme", "breaker-9", opclass.Write, false},
		{"fail/party", "dragon", "pump-2", opclass.Write, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := h.s.Active(tt.party, tt.target, tt.class)
			if ok != tt.want || (ok && g.ID != r.ID) {
				t.Fatalf("Active = %s %v", g.ID, ok)
			}
			if n := testing.AllocsPerRun(1000, func() { h.s.Active(tt.party, tt.target, tt.class) }); n != 0 {
				t.Fatalf("Active allocates %v times", n)
			}
		})
	}
	// Concurrent readers while decisions are made.
	var wg sync.WaitGroup
	var hits atomic.Int64
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, ok := h.s.Active("acme", "pump-2", opclass.Write); ok {
					hits.Add(1)
				}
			}
		}()
	}
	for range 10 {
		h.grant(vendor)
	}
	h.s.Revoke(r.ID, karel, "done")
	close(stop)
	wg.Wait()
	if hits.Load() == 0 {
		t.Fatal("no hits")
	}
}

func BenchmarkActive(b *testing.B) {
	s, err := Open(Config{Store: filepath.Join(b.TempDir(), "a.db")}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r, _ := s.Create(Request{Party: vendor, Targets: []string{"feeder-1", "pump-2"}, Classes: []opclass.Class{opclass.Write}, Reason: "x", RequestedBy: "acme"})
	s.Approve(r.ID, jana, ApproveOpts{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Active("acme", "pump-2", opclass.Write); !ok {
				b.Fatal("not active")
			}
		}
	})
}

func TestRun(t *testing.T) {
	h := newHarness(t, nil)
	h.s.opts.Tick = 5 * time.Millisecond
	got := make(chan Event, 8)
	h.s.Subscribe(func(ev Event) { got <- ev })
	r := h.create(vendor)
	<-got
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.s.Run(ctx) }()
	h.clk.Add(time.Hour)
	select {
	case ev := <-got:
		if ev.Kind != Expired || ev.Request.ID != r.ID {
			t.Fatalf("event %v %s", ev.Kind, ev.Request.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not expire the request")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWebhook(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "hook.key")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	var calls atomic.Int32
	type hit struct {
		p   Payload
		sig string
		raw string
	}
	hits := make(chan hit, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload: %v", err)
		}
		if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(Sign([]byte("s3cret"), body))) {
			t.Errorf("signature %q does not match", r.Header.Get(SignatureHeader))
		}
		hits <- hit{p, r.Header.Get(SignatureHeader), string(body)}
	}))
	defer srv.Close()
	h := newHarness(t, func(c *Config) {
		c.Webhooks = []WebhookConfig{{URL: srv.URL + "/brana", SecretFile: secret}}
	})
	h.s.Close()
	h.opts.WebhookRetry = 10 * time.Millisecond
	h.opts.HTTPClient = srv.Client()
	h.open()

	blocked := make(chan struct{})
	go func() {
		r := h.create(vendor)
		h.s.Approve(r.ID, jana, ApproveOpts{Note: "ok"})
		close(blocked)
	}()
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("approval waited for the webhook")
	}
	var got []EventKind
	for len(got) < 2 {
		select {
		case x := <-hits:
			got = append(got, x.p.Event)
			if x.p.Request.Party.ID != "acme" || !strings.HasPrefix(x.sig, "sha256=") {
				t.Fatalf("hit %+v", x)
			}
			if strings.Contains(strings.ToLower(x.raw), "token") || strings.Contains(x.raw, "password") {
				t.Fatalf("payload carries a credential: %s", x.raw)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("webhook deliveries %v after %d calls", got, calls.Load())
		}
	}
	if !slices.Equal(got, []EventKind{Created, Granted}) || calls.Load() != 3 {
		t.Fatalf("delivered %v in %d calls; want created (after one 503) and granted", got, calls.Load())
	}
}

func TestRequestJSON(t *testing.T) {
	h := newHarness(t, nil)
	r := h.create(prcParty, opclass.Program, opclass.Read)
	r, _ = h.s.Approve(r.ID, jana, ApproveOpts{Classes: []opclass.Class{opclass.Read}, Until: t0.Add(time.Hour)})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"classes":["read"]`, `"duration":"2h0m0s"`, `"state":"pending"`, `"until":"2026-03-02T09:00:00Z"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
	if strings.Contains(string(b), "first_use") || strings.Contains(string(b), "0001-01-01") {
		t.Errorf("zero times encoded: %s", b)
	}
	var back Request
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("round trip:\n%s\n%s", b, b2)
	}
}
