package scenario

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// jzVendorIP is the source of the PRC-managed party vendor-prc.
const jzVendorIP = "127.0.0.3"

// jzApprovalConfig is a gateway with one Modbus TCP target plc at plcAddr, a
// PRC-managed vendor allowed by the rules to read and write it (so every
// command needs a grant, from two approvers), the accounts file (may be "")
// and extra top-level YAML (the approvals section).
func jzApprovalConfig(plcAddr, accounts, extra string) string {
	cfg := configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: ` + plcAddr + `
` + prcVendorParties + `rules:
  - name: vendor-maintenance
    parties: [vendor-prc]
    targets: [plc]
    classes: [read, write]
`
	if accounts != "" {
		cfg += "admin:\n  accounts: " + accounts + "\n"
	}
	return cfg + extra
}

// jzAccount is one line of an accounts file; the password is user+"-password".
type jzAccount struct{ user, role, party string }

var (
	jzHashMu sync.Mutex
	jzHashes = map[string]string{} // user → argon2id PHC hash; HashPassword takes most of a second under -race
)

func jzHash(t *testing.T, user string) string {
	t.Helper()
	jzHashMu.Lock()
	defer jzHashMu.Unlock()
	if h, ok := jzHashes[user]; ok {
		return h
	}
	h, err := adminapi.HashPassword(user + "-password")
	if err != nil {
		t.Fatal(err)
	}
	jzHashes[user] = h
	return h
}

// jzAccountsFile writes an accounts file in dir.
func jzAccountsFile(t *testing.T, dir string, accts ...jzAccount) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("accounts:\n")
	for _, a := range accts {
		fmt.Fprintf(&b, "  - user: %s\n    name: %q\n    roles: [%s]\n    hash: %q\n", a.user, strings.ToUpper(a.user[:1])+a.user[1:], a.role, jzHash(t, a.user))
		if a.party != "" {
			fmt.Fprintf(&b, "    party: %s\n", a.party)
		}
	}
	path := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jzAPI is a client of the admin API on its Unix socket.
type jzAPI struct {
	t  *testing.T
	hc *http.Client
}

func jzNewAPI(t *testing.T, socket string) *jzAPI {
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	t.Cleanup(hc.CloseIdleConnections)
	return &jzAPI{t: t, hc: hc}
}

// do calls the API as user (password user+"-password"), decodes a 2xx
// answer into out and returns the status and, for an error, its message.
func (a *jzAPI) do(user, method, path string, body, out any) (int, string) {
	a.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://brana"+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.SetBasicAuth(user, user+"-password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
			a.t.Fatalf("%s %s: HTTP %d with a body that is not {\"error\": ...}: %s", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, ""
}

// jzRequest is an access request as the admin API shows it.
type jzRequest struct {
	ID    string `json:"id"`
	Party struct {
		ID string `json:"id"`
	} `json:"party"`
	State        string    `json:"state"`
	Required     int       `json:"required"`
	RequestedBy  string    `json:"requested_by"`
	Duration     string    `json:"duration"`
	PendingUntil time.Time `json:"pending_until"`
	WindowStart  time.Time `json:"window_start"`
	WindowEnd    time.Time `json:"window_end"`
	Approvals    []struct {
		By string `json:"by"`
	} `json:"approvals"`
	EndReason string `json:"end_reason"`
}

var jzRequestIDRe = regexp.MustCompile(`R-[2-9A-HJKMNP-Z]{6}`)

// jzRequestID is the access request a held command's record names.
func jzRequestID(t *testing.T, rec auditRec) string {
	t.Helper()
	id := jzRequestIDRe.FindString(rec.Detail)
	if id == "" {
		t.Fatalf("held command record names no access request: %s", rec.String())
	}
	return id
}

// jzHeldCommand sends a read on rc, expects it held (exception 06) and
// returns its audit record, the first held command of rc after seq.
func jzHeldCommand(t *testing.T, gw *gwtest.Gateway, rc *rawConn, after uint64) auditRec {
	t.Helper()
	expectException(t, rc.call(1, pduReadHolding(100, 2)), 3, 0x06)
	return waitAudit(t, gw, "the held command of "+rc.source(), func(r *auditRec) bool {
		return r.Type == "command" && r.Source == rc.source() && r.Decision == "held" && r.Seq > after
	})
}

// jzSessionOf is the session id of rc.
func jzSessionOf(t *testing.T, gw *gwtest.Gateway, rc *rawConn) string {
	t.Helper()
	return waitAudit(t, gw, "the session.open of "+rc.source(), func(r *auditRec) bool {
		return r.Type == "session.open" && r.Source == rc.source()
	}).Session
}

func jzRecTime(t *testing.T, r auditRec) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		t.Fatalf("record time %q: %v", r.Time, err)
	}
	return ts
}

// A grant's work window, from approval, ends its live session: the session
// works under the grant, is warned (session.warn) before the window ends,
// and the gateway closes it within 1.5 s of the end (the clock ticks once a
// second); the expiry is an approval.expire record, a new session is held
// again, and the audit log verifies.
func TestGrantWindowEndsSession(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	accts := jzAccountsFile(t, t.TempDir(), jzAccount{"alice", "approver", ""}, jzAccount{"bob", "approver", ""})
	gw := gwtest.Start(t, jzApprovalConfig(plcAddr, accts, `approvals:
  default_window: 3s
  warn_before: 2s
  window_from: approval
`))
	api := jzNewAPI(t, gw.AdminSocket())

	vc := dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)
	id := jzRequestID(t, jzHeldCommand(t, gw, vc, 0))
	sess := jzSessionOf(t, gw, vc)

	var r jzRequest
	if code, msg := api.do("alice", "POST", "/v1/requests/"+id+"/approve", map[string]any{"note": "first"}, &r); code != http.StatusOK || r.State != "pending" || r.Required != 2 {
		t.Fatalf("first approval: HTTP %d %s, state %q, required %d; want 200, pending, 2", code, msg, r.State, r.Required)
	}
	if code, msg := api.do("bob", "POST", "/v1/requests/"+id+"/approve", map[string]any{"note": "second"}, &r); code != http.StatusOK || r.State != "approved" {
		t.Fatalf("second approval: HTTP %d %s, state %q; want 200, approved", code, msg, r.State)
	}
	if w := r.WindowEnd.Sub(r.WindowStart); w != 3*time.Second {
		t.Fatalf("work window %v to %v (%v); want default_window 3s from approval", r.WindowStart, r.WindowEnd, w)
	}
	end := r.WindowEnd

	// The live session works under the grant.
	if got := registers(t, vc.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
		t.Fatalf("read under the grant: %v", got)
	}

	// Warned before the end.
	warn := waitAudit(t, gw, "the session.warn of "+sess, func(r *auditRec) bool { return r.Type == "session.warn" && r.Session == sess })
	if at := jzRecTime(t, warn); !at.Before(end) || end.Sub(at) > 2*time.Second+100*time.Millisecond {
		t.Fatalf("session.warn at %v; want within warn_before 2s before the end %v", at, end)
	}
	if !strings.Contains(warn.Detail, id) || warn.Party != "vendor-prc" {
		t.Fatalf("session.warn does not name the grant and party: %s", warn.String())
	}
	if time.Until(end) > 300*time.Millisecond {
		if got := registers(t, vc.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
			t.Fatalf("read after the warning, before the end: %v", got)
		}
	}

	// Closed by the gateway at the end.
	vc.expectClosed(time.Until(end) + 3*time.Second)
	closed := time.Now()
	if closed.Before(end) {
		t.Fatalf("session closed at %v, before the window end %v", closed, end)
	}
	if late := closed.Sub(end); late > 1500*time.Millisecond {
		t.Fatalf("session closed %v after the window end; want within 1.5s", late)
	}
	exp := waitAudit(t, gw, "the approval.expire of "+id, func(r *auditRec) bool {
		return r.Type == "approval.expire" && strings.Contains(r.Detail, id)
	})
	if exp.Status != "closed" || exp.Reason != "window_end" || exp.Party != "vendor-prc" {
		t.Fatalf("approval.expire record: %s; want status closed, reason window_end", exp.String())
	}
	cl := waitAudit(t, gw, "the session.close of "+sess, func(r *auditRec) bool { return r.Type == "session.close" && r.Session == sess })
	if !strings.Contains(cl.Status, "grant "+id) {
		t.Fatalf("session.close does not say the grant ended it: %s", cl.String())
	}
	reads := plc.Counters().Total()

	// The grant is over: a new session of the party is held again.
	vc2 := dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)
	if id2 := jzRequestID(t, jzHeldCommand(t, gw, vc2, exp.Seq)); id2 == id {
		t.Fatalf("a command after the window joined the closed request %s", id)
	}
	if n := plc.Counters().Total(); n != reads {
		t.Fatalf("a command after the window reached the PLC")
	}

	gw.Stop(t)
	if _, err := audit.Verify(filepath.Dir(gw.AuditPath()), nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
}

// A request nobody approves within pending_ttl expires (approval.expire,
// reason pending_ttl), and the party's next command asks anew: a new
// request with a new id, pending.
func TestPendingRequestExpires(t *testing.T) {
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	gw := gwtest.Start(t, jzApprovalConfig(plcAddr, "", "approvals:\n  pending_ttl: 1s\n"))
	vc := dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)
	held := jzHeldCommand(t, gw, vc, 0)
	first := jzRequestID(t, held)
	if r, err := gw.Approvals().Get(first); err != nil || r.State != "pending" {
		t.Fatalf("request %s: %v, %v; want pending", first, r.State, err)
	}
	exp := waitAudit(t, gw, "the approval.expire of "+first, func(r *auditRec) bool {
		return r.Type == "approval.expire" && strings.Contains(r.Detail, first)
	})
	if exp.Status != "expired" || exp.Reason != "pending_ttl" {
		t.Fatalf("approval.expire record: %s; want status expired, reason pending_ttl", exp.String())
	}
	if r, _ := gw.Approvals().Get(first); r.State != "expired" {
		t.Fatalf("request %s is %s after its pending_ttl; want expired", first, r.State)
	}

	asksAnew := func(t *testing.T, rc *rawConn) {
		t.Helper()
		rec := jzHeldCommand(t, gw, rc, exp.Seq)
		next := jzRequestID(t, rec)
		if next == first {
			t.Fatalf("regression: gateway/modbusrelay/conn.go askForGrant: for 10s after asking, a session's held commands name its cached request %s without asking the approvals service, even after that request expired; no new request is made and the record points approvers to a dead request (%s)", first, rec.Detail)
		}
		r, err := gw.Approvals().Get(next)
		if err != nil || r.State != "pending" {
			t.Fatalf("request %s after the expiry: %v, %v; want pending", next, r.State, err)
		}
	}
	t.Run("same session", func(t *testing.T) { asksAnew(t, vc) })
	t.Run("new session", func(t *testing.T) { asksAnew(t, dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)) })
}

// Nobody approves their own request through the API: not the party's own
// staff (an account bound to the party), not the person who filed it, and
// not an account without the approver role. Refusals are HTTP 403 with an
// {"error"} body, count nothing and write no approval record; the same
// people may approve requests that are not theirs.
func TestNoSelfApprovalThroughAPI(t *testing.T) {
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	accts := jzAccountsFile(t, t.TempDir(),
		jzAccount{"alice", "approver", ""},
		jzAccount{"bob", "approver", ""},
		jzAccount{"dispatch", "requester", ""},
		jzAccount{"li.wei", "approver", "vendor-prc"})
	gw := gwtest.Start(t, jzApprovalConfig(plcAddr, accts, ""))
	api := jzNewAPI(t, gw.AdminSocket())

	vc := dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)
	auto := jzRequestID(t, jzHeldCommand(t, gw, vc, 0)) // requested by the party itself
	var filed jzRequest
	if code, msg := api.do("alice", "POST", "/v1/requests", map[string]any{"party": "vendor-prc", "targets": []string{"plc"},
		"classes": []string{"read"}, "ticket": "TKT-9001"}, &filed); code != http.StatusCreated || filed.RequestedBy != "alice" {
		t.Fatalf("alice files a request: HTTP %d %s, requested_by %q", code, msg, filed.RequestedBy)
	}

	for _, tc := range []struct {
		name, user, id string
		code           int
		msg            string
	}{
		{"the party's own staff, request from the session", "li.wei", auto, http.StatusForbidden, "belongs to party vendor-prc"},
		{"the party's own staff, request filed by someone else", "li.wei", filed.ID, http.StatusForbidden, "belongs to party vendor-prc"},
		{"the person who filed it", "alice", filed.ID, http.StatusForbidden, "asked for it"},
		{"no approver role", "dispatch", auto, http.StatusForbidden, "needs approver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := api.do(tc.user, "POST", "/v1/requests/"+tc.id+"/approve", map[string]any{"note": "mine"}, nil)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%s approves %s: HTTP %d %q; want %d with %q", tc.user, tc.id, code, msg, tc.code, tc.msg)
			}
			r, err := gw.Approvals().Get(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != "pending" || len(r.Approvals) != 0 {
				t.Fatalf("after a refused approval %s is %s with %d approvals; want pending with none", tc.id, r.State, len(r.Approvals))
			}
		})
	}

	// The same people approve what is not theirs.
	var r jzRequest
	if code, msg := api.do("alice", "POST", "/v1/requests/"+auto+"/approve", map[string]any{}, &r); code != http.StatusOK || len(r.Approvals) != 1 {
		t.Fatalf("alice approves the party's request: HTTP %d %s, %d approvals", code, msg, len(r.Approvals))
	}
	if code, msg := api.do("bob", "POST", "/v1/requests/"+filed.ID+"/approve", map[string]any{}, &r); code != http.StatusOK || len(r.Approvals) != 1 {
		t.Fatalf("bob approves alice's request: HTTP %d %s, %d approvals", code, msg, len(r.Approvals))
	}

	gw.Stop(t)
	var approvals []string
	for _, rec := range readAudit(t, gw.AuditPath()) {
		if rec.Type == "approval.approve" {
			approvals = append(approvals, rec.Detail)
		}
	}
	if len(approvals) != 2 {
		t.Fatalf("%d approval.approve records; want 2 (alice for %s, bob for %s):\n%s", len(approvals), auto, filed.ID, strings.Join(approvals, "\n"))
	}
	for _, d := range approvals {
		if strings.Contains(d, "li.wei") || strings.Contains(d, filed.ID) && strings.Contains(d, "(alice)") {
			t.Fatalf("an approval record of a refused approval: %s", d)
		}
	}
}

// Webhooks end to end: a new request (a held session) and each approval
// arrive at the receiver, in order, the first after a 503 and a retry; each
// carries X-Brana-Event and an HMAC-SHA256 of the body with the secret file's
// key; no payload carries credentials or tokens.
func TestWebhookEndToEnd(t *testing.T) {
	type hit struct {
		event, sig, ctype string
		body              []byte
		status            int
	}
	var (
		mu   sync.Mutex
		hits []hit
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		status := http.StatusNoContent
		if len(hits) == 0 {
			status = http.StatusServiceUnavailable
		}
		hits = append(hits, hit{r.Header.Get("X-Brana-Event"), r.Header.Get("X-Brana-Signature"), r.Header.Get("Content-Type"), body, status})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("receiver at %s; want loopback", srv.URL)
	}

	dir := t.TempDir()
	const secret = "hook-secret-7f3a9c"
	keyFile := filepath.Join(dir, "hook.key")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	accts := jzAccountsFile(t, dir, jzAccount{"alice", "approver", ""}, jzAccount{"bob", "approver", ""})
	gw := gwtest.Start(t, jzApprovalConfig(plcAddr, accts, "approvals:\n  webhooks:\n    - url: "+srv.URL+"/brana\n      secret_file: "+keyFile+"\n"))
	api := jzNewAPI(t, gw.AdminSocket())

	vc := dialFrom(t, gw.ModbusAddr("scada"), jzVendorIP)
	id := jzRequestID(t, jzHeldCommand(t, gw, vc, 0))
	for _, u := range []string{"alice", "bob"} {
		if code, msg := api.do(u, "POST", "/v1/requests/"+id+"/approve", map[string]any{"note": "ok"}, nil); code != http.StatusOK {
			t.Fatalf("%s approves: HTTP %d %s", u, code, msg)
		}
	}

	want := []string{"created", "approved", "granted"}
	var got []hit
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got = slices.Clone(hits)
		mu.Unlock()
		if len(got) >= len(want)+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var events []string
	for _, h := range got {
		events = append(events, fmt.Sprintf("%s/%d", h.event, h.status))
	}
	if len(got) != len(want)+1 || got[0].status != http.StatusServiceUnavailable || got[0].event != "created" ||
		!bytes.Equal(got[0].body, got[1].body) {
		t.Fatalf("webhook calls %v; want created/503, then the same created again and the rest", events)
	}
	for i, h := range got[1:] {
		if h.event != want[i] || h.status/100 != 2 {
			t.Fatalf("webhook calls %v; want %v delivered in order after the retry", events, want)
		}
	}

	mac := hmac.New(sha256.New, []byte(secret))
	for _, h := range got {
		mac.Reset()
		mac.Write(h.body)
		if wantSig := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(h.sig), []byte(wantSig)) {
			t.Fatalf("%s: X-Brana-Signature %q; want %q", h.event, h.sig, wantSig)
		}
		if h.ctype != "application/json" {
			t.Fatalf("%s: Content-Type %q", h.event, h.ctype)
		}
		var p struct {
			Event   string    `json:"event"`
			Time    time.Time `json:"time"`
			Request jzRequest `json:"request"`
		}
		if err := json.Unmarshal(h.body, &p); err != nil {
			t.Fatalf("%s: payload: %v\n%s", h.event, err, h.body)
		}
		if p.Event != h.event || p.Request.ID != id || p.Request.Party.ID != "vendor-prc" || p.Time.IsZero() {
			t.Fatalf("%s: payload %s does not describe request %s", h.event, h.body, id)
		}
		if p.Event == "granted" && (p.Request.State != "approved" || len(p.Request.Approvals) != 2) {
			t.Fatalf("granted payload: state %s with %d approvals", p.Request.State, len(p.Request.Approvals))
		}
		var doc any
		json.Unmarshal(h.body, &doc)
		if k := jzForbiddenKey(doc); k != "" {
			t.Fatalf("%s: payload has a key %q: %s", h.event, k, h.body)
		}
		for _, s := range []string{secret, "-password", "$argon2id"} {
			if bytes.Contains(h.body, []byte(s)) {
				t.Fatalf("%s: payload contains %q: %s", h.event, s, h.body)
			}
		}
	}
}

// jzForbiddenKey returns the first key of a JSON document, at any depth,
// that names a credential.
func jzForbiddenKey(v any) string {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			lk := strings.ToLower(k)
			for _, bad := range []string{"password", "token", "secret", "hash", "credential", "link", "url"} {
				if strings.Contains(lk, bad) {
					return k
				}
			}
			if k := jzForbiddenKey(x); k != "" {
				return k
			}
		}
	case []any:
		for _, x := range v {
			if k := jzForbiddenKey(x); k != "" {
				return k
			}
		}
	}
	return ""
}

// A SIGHUP reload that changes the approvals section must either apply it
// or be refused as needing a restart (like the listeners or the
// jurisdiction section); it must not be recorded as "reloaded" while the
// approvals service keeps the old settings.
func TestReloadChangingApprovals(t *testing.T) {
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	cfg := jzApprovalConfig(plcAddr, "", "approvals:\n  pending_ttl: 30m\n")
	gw := gwtest.Start(t, cfg)
	// Run reads the config while it starts (see TestReloadDuringStart).
	waitAudit(t, gw, "the config.load record", func(r *auditRec) bool { return r.Type == "config.load" })
	file := filepath.Join(gw.Dir, "brana.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(cfg, "pending_ttl: 30m", "pending_ttl: 5m", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	err := gw.ReloadFile(context.Background(), file)
	switch got := gw.Approvals().Config().PendingTTL; {
	case errors.Is(err, gateway.ErrNeedsRestart):
	case err != nil:
		t.Fatalf("reload: %v", err)
	case got != "5m":
		t.Fatalf("regression: gateway/reload.go reload: a changed approvals (or admin) section is neither applied nor refused with ErrNeedsRestart; the reload is audited as \"reloaded\" while pending_ttl stays %s", got)
	}
}

// `brana run` handles SIGHUP from before Gateway.Run starts, so a reload
// may come while Run writes its start records.
func TestReloadDuringStart(t *testing.T) {
	_, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	cfg := jzApprovalConfig(plcAddr, "", "")
	gw := gwtest.Start(t, cfg)
	if err := gw.ReloadFile(context.Background(), filepath.Join(gw.Dir, "brana.yaml")); err != nil {
		t.Fatalf("reload of the same file: %v", err)
	}
}
