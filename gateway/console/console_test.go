package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/passhash"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opclass"
)

const password = "correct horse battery staple"

// totpSecret is RFC 6238's test key, "12345678901234567890", in base32.
const totpSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

var (
	cheapOnce sync.Once
	cheapHash string
)

// cheap is an argon2id hash with small parameters: the race detector makes
// the default ones take a second per login. TestLoginDefaultHash uses a
// real one.
func cheap(t *testing.T) string {
	cheapOnce.Do(func() {
		h, err := passhash.NewWithCost(password, 64, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		cheapHash = h
	})
	return cheapHash
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeLive hands out subscriptions and publishes lines to all of them.
type fakeLive struct {
	mu   sync.Mutex
	subs map[int]chan []byte
	next int
	subd chan struct{} // receives once per Subscribe
}

func newFakeLive() *fakeLive {
	return &fakeLive{subs: map[int]chan []byte{}, subd: make(chan struct{}, 16)}
}

func (l *fakeLive) Subscribe() (<-chan []byte, func()) {
	l.mu.Lock()
	id := l.next
	l.next++
	ch := make(chan []byte, 16)
	l.subs[id] = ch
	l.mu.Unlock()
	l.subd <- struct{}{}
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, id)
		l.mu.Unlock()
	}
}

func (l *fakeLive) publish(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.subs {
		ch <- []byte(line)
	}
}

type fixture struct {
	t        *testing.T
	c        *Console
	srv      *httptest.Server
	ap       *approvals.Service
	reg      *sessions.Registry
	live     *fakeLive
	clk      *testClock
	auditDir string

	mu      sync.Mutex
	stopped map[string]string // session → reason it was stopped with
	watches atomic.Int32      // watches now open
	watched atomic.Int32      // watches ever started
}

// accounts: jana and petr are engineers (petr with TOTP), audrey an
// auditor, li.wei an engineer who belongs to party vendor-prc.
func writeAccounts(t *testing.T, dir, hash string) string {
	t.Helper()
	yaml := fmt.Sprintf(`accounts:
  - user: jana
    name: Jana Novák
    roles: [approver]
    hash: %[1]q
  - user: petr
    name: Petr Dvořák
    roles: [approver]
    hash: %[1]q
    totp: %[2]q
  - user: audrey
    name: Audrey Auditor
    roles: [viewer]
    hash: %[1]q
  - user: li.wei
    name: Li Wei
    party: vendor-prc
    roles: [approver]
    hash: %[1]q
`, hash, totpSecret)
	path := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	spec := policy.Spec{
		Parties: []policy.PartySpec{
			{ID: "scada", Name: "Control room SCADA", Organisation: "ČEPS, a.s.", Kind: "scada", Networks: []string{"10.1.0.0/16"}},
			{ID: "acme", Name: "ACME Service", Organisation: "ACME s.r.o.", Kind: "vendor",
				Evidence: &policy.EvidenceSpec{EstablishedIn: "CZ", ManagementIn: []string{"CZ"}, OperatesFrom: []string{"CZ"}, DataTo: []string{"CZ"}}},
			{ID: "vendor-prc", Name: "Li Wei <script>alert(1)</script>", Organisation: "Shenzhen Example Automation Co., Ltd.", Kind: "vendor",
				Evidence: &policy.EvidenceSpec{EstablishedIn: "CN", ManagementIn: []string{"CN"}, OperatesFrom: []string{"CN"}, DataTo: []string{"CN"}}},
		},
		Rules: []policy.RuleSpec{
			{Name: "scada-read", Parties: []string{"scada"}, Targets: []string{"*"}, Classes: []string{"read"}},
			{Name: "acme-tune", Parties: []string{"acme"}, Targets: []string{"feeder-plc"}, Classes: []string{"write"},
				Ranges: map[string][]string{"holding": {"100-109"}}, Values: &policy.Bounds{Min: 0, Max: 50}},
		},
	}
	p, err := policy.Compile(spec, []string{"feeder-plc", "pump-plc"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newFixture(t *testing.T, hash string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, clk: &testClock{t: time.Now()}, live: newFakeLive(), reg: sessions.NewRegistry(), stopped: map[string]string{}}
	accs, err := adminapi.LoadAccounts(writeAccounts(t, dir, hash))
	if err != nil {
		t.Fatal(err)
	}
	ap, err := approvals.Open(approvals.Config{Store: filepath.Join(dir, "approvals.db")}, approvals.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	f.ap = ap
	f.auditDir = writeAuditLog(t, filepath.Join(dir, "audit"))
	pol := testPolicy(t)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(Options{
		Approvals: ap,
		Sessions:  f.reg,
		AuditDir:  f.auditDir,
		Live:      f.live,
		Watch: func(id string) (func(), bool) {
			f.watches.Add(1)
			f.watched.Add(1)
			return func() { f.watches.Add(-1) }, true
		},
		Policy: func() *policy.Policy { return pol },
		Targets: func() []TargetStatus {
			return []TargetStatus{{Name: "feeder-plc", Protocol: "modbus", Address: "127.0.0.1:15020", Reachable: true,
				LastResponse: time.Now(), Latency: 2 * time.Millisecond}, {Name: "pump-plc", Protocol: "modbus", Address: "127.0.0.1:15021", LastError: "connection refused"}}
		},
		Health:    func() any { return map[string]any{"ok": true} },
		Accounts:  accs,
		TokenFile: filepath.Join(dir, "tokens.json"),
		Log:       discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.now = f.clk.Now
	f.c = c
	f.srv = httptest.NewTLSServer(c.Handler())
	t.Cleanup(f.srv.Close)
	f.addSession("s-1", "acme")
	return f
}

func (f *fixture) addSession(id, party string) *sessions.Session {
	s := sessions.New(sessions.Info{ID: id, Protocol: "modbus", Listener: "vendor", Party: party, PartyName: "ACME Service",
		Org: "ACME s.r.o.", Source: "192.0.2.7:40000", Since: time.Now()}, func(reason string) {
		f.mu.Lock()
		f.stopped[id] = reason
		f.mu.Unlock()
	})
	f.reg.Add(s)
	return s
}

func (f *fixture) stopReason(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped[id]
}

// writeAuditLog writes a short log with the real audit writer: a session
// of acme with a write and its result, and a refused session.
func writeAuditLog(t *testing.T, dir string) string {
	t.Helper()
	l, err := audit.Open(dir, audit.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	rec := func(typ audit.Type, at time.Duration) *audit.Record {
		r := &audit.Record{}
		r.Reset()
		r.Time, r.Type = base.Add(at), typ
		return r
	}
	add := func(r *audit.Record) {
		t.Helper()
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	req := rec(approvals.RecRequest, 0)
	req.Party, req.PartyName, req.Org, req.Target, req.Class = "acme", "ACME Service", "ACME s.r.o.", "feeder-plc", "write"
	req.Decision, req.Status = "request", "created"
	req.Detail = `request R-ABCDEF by acme; reason "asked for by Modbus session s-old from 192.0.2.7:40000 (write holding registers)"`
	add(req)
	open := rec(audit.SessionOpen, time.Minute)
	open.Session, open.Party, open.PartyName, open.Org = "s-old", "acme", "ACME Service", "ACME s.r.o."
	open.Source, open.Listener, open.Decision = "192.0.2.7:40000", "vendor", "allow"
	add(open)
	w := rec(audit.Command, 2*time.Minute)
	w.Session, w.Party, w.PartyName, w.Org, w.Target = "s-old", "acme", "ACME Service", "ACME s.r.o.", "feeder-plc"
	w.Unit, w.Func, w.Class = 1, 16, "write"
	w.WriteTab, w.WriteAt, w.WriteN = "holding", 100, 2
	w.Values, w.NValues = []uint16{42, 43}, 2
	w.Decision, w.Rule, w.Grant = "allow", "acme-tune", "R-ABCDEF"
	add(w)
	res := rec(audit.Result, 2*time.Minute+time.Millisecond)
	res.Session, res.Party, res.Target, res.Cmd, res.Status, res.LatencyUS = "s-old", "acme", "feeder-plc", 3, "ok", 412
	add(res)
	cl := rec(audit.SessionClose, 3*time.Minute)
	cl.Session, cl.Party, cl.Detail = "s-old", "acme", "client closed"
	add(cl)
	ref := rec(audit.SessionRefused, 4*time.Minute)
	ref.Source, ref.Listener, ref.Decision, ref.Reason = "198.51.100.9:5555", "vendor", "deny", "unidentified"
	ref.Detail = "=HYPERLINK(\"http://evil\")"
	add(ref)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// client is one browser: its own cookie jar, no automatic redirects.
type client struct {
	f    *fixture
	hc   *http.Client
	csrf string
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	tr := f.srv.Client().Transport
	return &client{f: f, hc: &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.f.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.f.t.Helper()
	req, _ := http.NewRequest("GET", c.f.srv.URL+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.f.t.Helper()
	req, _ := http.NewRequest("POST", c.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// postCSRF posts a form with the login's CSRF token.
func (c *client) postCSRF(path string, form url.Values) (*http.Response, string) {
	c.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf)
	return c.post(path, form)
}

func (c *client) login(user, code string) *http.Response {
	c.f.t.Helper()
	resp, _ := c.post("/login", url.Values{"username": {user}, "password": {password}, "totp": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		return resp
	}
	_, body := c.get("/requests")
	m := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(body)
	if m == nil {
		c.f.t.Fatalf("no CSRF token on the page after login:\n%s", body)
	}
	c.csrf = m[1]
	return resp
}

func (f *fixture) loggedIn(user string) *client {
	f.t.Helper()
	c := f.client()
	code := ""
	if user == "petr" {
		key, _ := adminapi.TOTPKey(totpSecret)
		code = totpCode(key, f.clk.Now())
	}
	if resp := c.login(user, code); resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("login %s: %s", user, resp.Status)
	}
	return c
}

func (f *fixture) request(party approvals.PartyInfo, by string, classes ...opclass.Class) approvals.Request {
	f.t.Helper()
	r, err := f.ap.Create(approvals.Request{Party: party, Targets: []string{"feeder-plc", "pump-plc"}, Classes: classes,
		Reason: "replace pump controller", Ticket: "TKT-4711", RequestedBy: by, Duration: 2 * time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

var (
	acme = approvals.PartyInfo{ID: "acme", Name: "ACME Service", Org: "ACME s.r.o.", Kind: "vendor", Verdict: "non-PRC",
		Findings: []string{"established acme: CZ (non-PRC; config)"}}
	prcParty = approvals.PartyInfo{ID: "vendor-prc", Name: "Li Wei <b>", Org: "Shenzhen Example Automation Co., Ltd.", Kind: "vendor",
		PRC: true, Verdict: "PRC", Findings: []string{"established vendor-prc: CN (PRC; config)", "source-country 203.0.113.5: DE (non-PRC; geo.mmdb)"}}
)

func TestLoginDefaultHash(t *testing.T) {
	h, err := passhash.New(password)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, h)
	t.Run("ok", func(t *testing.T) {
		c := f.client()
		resp := c.login("jana", "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/requests" {
			t.Fatalf("login: %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		if resp, body := c.get("/requests"); resp.StatusCode != 200 || !strings.Contains(body, "Jana Novák") {
			t.Fatalf("after login: %s", resp.Status)
		}
	})
	t.Run("fail/wrong-password", func(t *testing.T) {
		c := f.client()
		resp, body := c.post("/login", url.Values{"username": {"jana"}, "password": {"wrong"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name, password or code") {
			t.Fatalf("wrong password: %s", resp.Status)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatalf("a failed login set cookies: %v", resp.Cookies())
		}
		if resp, _ := c.get("/requests"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("without login /requests is %s, not a redirect to the login", resp.Status)
		}
	})
}

func TestCookieFlags(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.client()
	resp := c.login("jana", "")
	var ck *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == cookieName {
			ck = x
		}
	}
	if ck == nil {
		t.Fatalf("no %s cookie in %v", cookieName, resp.Header["Set-Cookie"])
	}
	raw := strings.Join(resp.Header["Set-Cookie"], "\n")
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("cookie flags: %s", raw)
	}
	if len(ck.Value) != 43 { // 32 bytes, base64url without padding
		t.Fatalf("cookie value %q is not 32 random bytes", ck.Value)
	}
	resp, _ = c.postCSRF("/logout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	if resp, _ := c.get("/requests"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout /requests is %s", resp.Status)
	}
	// The old cookie is dead on the server too, not only removed from the browser.
	old := f.client()
	u, _ := url.Parse(f.srv.URL)
	old.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: ck.Value}})
	if resp, _ := old.get("/api/v1/whoami"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a logged-out cookie still works: %s", resp.Status)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t, cheap(t))
	for _, user := range []string{"jana", "nobody"} {
		t.Run(user, func(t *testing.T) {
			c := f.client()
			for i := 1; i <= maxFailures; i++ {
				resp, _ := c.post("/login", url.Values{"username": {user}, "password": {"wrong"}})
				want := http.StatusUnauthorized
				if i == maxFailures {
					want = http.StatusTooManyRequests
				}
				if resp.StatusCode != want {
					t.Fatalf("attempt %d: %s, want %d", i, resp.Status, want)
				}
			}
			resp, body := c.post("/login", url.Values{"username": {user}, "password": {password}})
			if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "locked until") || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("right password while locked: %s", resp.Status)
			}
		})
	}
}

func TestTOTP(t *testing.T) {
	f := newFixture(t, cheap(t))
	key, _ := adminapi.TOTPKey(totpSecret)
	t.Run("fail/no-code", func(t *testing.T) {
		if resp := f.client().login("petr", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("password without code: %s", resp.Status)
		}
	})
	t.Run("fail/wrong-code", func(t *testing.T) {
		code := totpCode(key, f.clk.Now().Add(-5*time.Minute))
		if resp := f.client().login("petr", code); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("old code: %s", resp.Status)
		}
	})
	code := totpCode(key, f.clk.Now())
	t.Run("ok", func(t *testing.T) {
		if resp := f.client().login("petr", code); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("right code: %s", resp.Status)
		}
	})
	t.Run("fail/replay", func(t *testing.T) {
		if resp := f.client().login("petr", code); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the same code twice: %s", resp.Status)
		}
	})
	t.Run("no-code-needed-without-secret", func(t *testing.T) {
		if resp := f.client().login("jana", ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("jana: %s", resp.Status)
		}
	})
	// Wrong codes count as failures: after five the right password and
	// code are refused, until fifteen minutes have passed.
	t.Run("lockout", func(t *testing.T) {
		f.clk.Add(time.Minute)
		c := f.client()
		for i := 0; i < maxFailures; i++ {
			c.login("petr", "000000")
		}
		if resp := c.login("petr", totpCode(key, f.clk.Now())); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("locked petr with the right code: %s", resp.Status)
		}
		f.clk.Add(lockFor + time.Second)
		if resp := c.login("petr", totpCode(key, f.clk.Now())); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the lock: %s", resp.Status)
		}
	})
}

func TestLoginTimeouts(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	f.clk.Add(idleTimeout - time.Minute)
	if resp, _ := c.get("/api/v1/whoami"); resp.StatusCode != 200 {
		t.Fatalf("within the idle timeout: %s", resp.Status)
	}
	f.clk.Add(idleTimeout)
	if resp, _ := c.get("/api/v1/whoami"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the idle timeout: %s", resp.Status)
	}
	c = f.loggedIn("jana")
	for range 2 * int(maxLoginAge/idleTimeout) {
		f.clk.Add(idleTimeout / 2)
		c.get("/api/v1/whoami")
	}
	if resp, _ := c.get("/api/v1/whoami"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after %s of activity: %s", maxLoginAge, resp.Status)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	for _, tc := range []struct {
		name   string
		token  string
		header map[string]string
		want   int
		text   string
	}{
		{name: "fail/missing", want: http.StatusForbidden, text: "no security token"},
		{name: "fail/wrong", token: "x" + c.csrf[1:], want: http.StatusForbidden, text: "does not match"},
		{name: "fail/cross-site", token: c.csrf, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusForbidden, text: "another site"},
		{name: "fail/foreign-origin", token: c.csrf, header: map[string]string{"Origin": "https://evil.example"}, want: http.StatusForbidden, text: "another site"},
		{name: "ok/same-origin", token: c.csrf, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.srv.URL}, want: http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.addSession("s-"+strings.ReplaceAll(tc.name, "/", "-"), "acme")
			defer f.reg.Remove(s)
			form := url.Values{}
			if tc.token != "" {
				form.Set("csrf", tc.token)
			}
			req, _ := http.NewRequest("POST", f.srv.URL+"/sessions/"+s.ID()+"/kill", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, body := c.do(req)
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.text) {
				t.Fatalf("%s, want %d and %q in:\n%s", resp.Status, tc.want, tc.text, body)
			}
			if killed := f.stopReason(s.ID()) != ""; killed != (tc.want == http.StatusSeeOther) {
				t.Fatalf("session killed: %v", killed)
			}
		})
	}
	t.Run("api/header", func(t *testing.T) {
		r := f.request(acme, "acme", opclass.Write)
		for _, tok := range []string{"", "wrong", c.csrf} {
			req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/requests/"+r.ID+"/deny", strings.NewReader(`{"note":"not today"}`))
			req.Header.Set("Content-Type", "application/json")
			if tok != "" {
				req.Header.Set("X-CSRF-Token", tok)
			}
			resp, body := c.do(req)
			want := http.StatusForbidden
			if tok == c.csrf {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("token %q: %s %s", tok, resp.Status, body)
			}
		}
	})
}

func TestNoApprovalByGET(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	r := f.request(acme, "acme", opclass.Write)
	for _, p := range []string{"/requests/" + r.ID + "/approve", "/api/v1/requests/" + r.ID + "/approve"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET %s: %s", p, resp.Status)
		}
	}
	if got, _ := f.ap.Get(r.ID); got.State != approvals.StatePending {
		t.Fatalf("state %s after GETs", got.State)
	}
}

func TestApprove(t *testing.T) {
	f := newFixture(t, cheap(t))
	jana, audrey, liwei := f.loggedIn("jana"), f.loggedIn("audrey"), f.loggedIn("li.wei")

	t.Run("ok/shorter-and-narrower", func(t *testing.T) {
		r := f.request(acme, "acme", opclass.Read, opclass.Write)
		resp, _ := jana.postCSRF("/requests/"+r.ID+"/approve", url.Values{"narrow": {"1"}, "classes": {"read"},
			"targets": {"feeder-plc"}, "for": {"30m"}, "note": {"checked ticket"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("approve: %s", resp.Status)
		}
		got, _ := f.ap.Get(r.ID)
		if got.State != approvals.StateApproved || len(got.Classes) != 1 || got.Classes[0] != opclass.Read ||
			len(got.Targets) != 1 || got.NotAfter.IsZero() || got.NotAfter.After(f.clk.Now().Add(31*time.Minute)) {
			t.Fatalf("approved request: %+v", got)
		}
		if _, body := jana.get("/requests"); !strings.Contains(body, r.ID+" approved: it is now a grant.") {
			t.Fatal("no flash message after approving")
		}
	})
	t.Run("fail/auditor", func(t *testing.T) {
		r := f.request(acme, "acme", opclass.Write)
		resp, body := audrey.postCSRF("/requests/"+r.ID+"/approve", url.Values{})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "can read but not approve") {
			t.Fatalf("auditor approves: %s\n%s", resp.Status, body)
		}
		if got, _ := f.ap.Get(r.ID); got.State != approvals.StatePending {
			t.Fatalf("state %s", got.State)
		}
		// But reads everything, without the forms.
		for _, p := range []string{"/requests", "/requests/" + r.ID, "/sessions", "/audit", "/parties", "/targets", "/policy", "/api/v1/requests"} {
			if resp, _ := audrey.get(p); resp.StatusCode != 200 {
				t.Fatalf("auditor GET %s: %s", p, resp.Status)
			}
		}
		if _, body := audrey.get("/requests"); strings.Contains(body, `class="decide"`) || strings.Contains(body, ">Kill<") {
			t.Fatal("the auditor sees decision forms")
		}
		if resp, _ := audrey.postCSRF("/sessions/s-1/kill", nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("auditor kills: %s", resp.Status)
		}
		if f.stopReason("s-1") != "" {
			t.Fatal("the auditor killed a session")
		}
	})
	t.Run("fail/own-request", func(t *testing.T) {
		r := f.request(acme, "jana", opclass.Write)
		resp, body := jana.postCSRF("/requests/"+r.ID+"/approve", url.Values{})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Nobody approves their own request") ||
			!strings.Contains(body, `role="alert"`) {
			t.Fatalf("own request: %s\n%s", resp.Status, body)
		}
	})
	t.Run("fail/own-party", func(t *testing.T) {
		r := f.request(prcParty, "vendor-prc", opclass.Read)
		resp, body := liwei.postCSRF("/requests/"+r.ID+"/approve", url.Values{})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "belongs to party vendor-prc") {
			t.Fatalf("own party: %s\n%s", resp.Status, body)
		}
	})
	t.Run("two-person", func(t *testing.T) {
		r := f.request(prcParty, "vendor-prc", opclass.Read)
		if resp, _ := jana.postCSRF("/requests/"+r.ID+"/approve", url.Values{}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first approval: %s", resp.Status)
		}
		_, body := f.loggedIn("petr").get("/requests/" + r.ID)
		for _, want := range []string{"First approval", "Jana Novák", "1 of 2", "PRC-managed party", `class="prc"`,
			"Li Wei &lt;b&gt;", "established vendor-prc: CN (PRC; config)"} {
			if !strings.Contains(body, want) {
				t.Errorf("second approver's page lacks %q", want)
			}
		}
		resp, body := jana.postCSRF("/requests/"+r.ID+"/approve", url.Values{})
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already approved") {
			t.Fatalf("approving twice: %s", resp.Status)
		}
	})
	t.Run("deny-needs-reason", func(t *testing.T) {
		r := f.request(acme, "acme", opclass.Write)
		if resp, _ := jana.postCSRF("/requests/"+r.ID+"/deny", url.Values{}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("deny without a note: %s", resp.Status)
		}
		if resp, _ := jana.postCSRF("/requests/"+r.ID+"/deny", url.Values{"note": {"no changes this week"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("deny: %s", resp.Status)
		}
		if got, _ := f.ap.Get(r.ID); got.State != approvals.StateDenied || got.Denial.By != "jana" {
			t.Fatalf("after deny: %+v", got)
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	for _, p := range []string{"/login", "/requests", "/api/v1/whoami", "/static/console.css", "/nowhere"} {
		resp, _ := c.get(p)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if csp != contentSecurityPolicy || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
			"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age=31536000"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", p, k, h.Get(k), v)
			}
		}
		if !strings.HasPrefix(p, "/static/") && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", p, h.Get("Cache-Control"))
		}
	}
	// No inline script or style anywhere: the CSP would block it.
	for _, p := range []string{"/login", "/requests", "/sessions", "/sessions/s-1", "/audit", "/parties", "/targets", "/policy", "/tokens"} {
		_, body := c.get(p)
		if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|<script>|\son[a-z]+=|style=|<style`).MatchString(body) {
			t.Errorf("%s has inline script or style", p)
		}
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, cheap(t))
	f.request(prcParty, "vendor-prc", opclass.Read, opclass.Program)
	c := f.loggedIn("jana")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/requests", []string{`data-request-id="R-`, `name="until"`, `type="datetime-local"`, `name="classes" value="read"`,
			`name="for"`, ">Approve</button>", ">Deny</button>", "PRC", `href="#main"`}},
		{"/sessions", []string{`data-session-id="s-1"`, "ACME Service", ">Kill</button>"}},
		{"/sessions/s-1", []string{`id="supervised"`, `<ul id="stream"`, `data-events="/api/v1/sessions/s-1/events"`, ">Kill</button>"}},
		{"/audit", []string{`id="audit-search"`, `name="q"`, `name="party"`, `name="session"`, `id="newest"`}},
		{"/audit?limit=50", []string{`<table id="results"`, `data-seq="6"`, `id="export-csv"`}},
		{"/parties", []string{"Shenzhen Example Automation", `class="prc"`, "&lt;script&gt;"}},
		{"/targets", []string{"feeder-plc", "connection refused", `id="health"`}},
		{"/policy", []string{testPolicy(t).Digest(), "acme-tune", "holding 100-109"}},
		{"/tokens", []string{`id="token-create"`}},
	} {
		resp, body := c.get(tc.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", tc.path, resp.Status)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", tc.path, w)
			}
		}
		if strings.Contains(body, "<script>alert") {
			t.Errorf("%s: a party name was not escaped", tc.path)
		}
	}
	if resp, _ := c.get("/sessions/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown session: %s", resp.Status)
	}
	if resp, _ := c.get("/requests?state=bogus"); resp.StatusCode != 400 {
		t.Errorf("bad state: %s", resp.Status)
	}
	if resp, _ := c.get("/login?next=//evil.example/"); resp.Header.Get("Location") != "/requests" {
		t.Errorf("open redirect: %q", resp.Header.Get("Location"))
	}
}

func TestKill(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	resp, _ := c.postCSRF("/sessions/s-1/kill", url.Values{"reason": {"window over"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("kill: %s", resp.Status)
	}
	if got := f.stopReason("s-1"); got != "killed by Jana Novák (jana) in the console: window over" {
		t.Fatalf("stop reason %q", got)
	}
}

func TestAccountsTOTPField(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"ok/rfc-key", totpSecret, true},
		{"ok/app-style", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", true},
		{"fail/not-base32", "not base32!", false},
		{"fail/too-short", "GEZDGNBVGY3TQOJQ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, "/", "-")+".yaml")
			yaml := fmt.Sprintf("accounts:\n  - user: jana\n    roles: [approver]\n    hash: %q\n    totp: %q\n", cheap(t), tc.secret)
			os.WriteFile(path, []byte(yaml), 0o600)
			_, err := adminapi.LoadAccounts(path)
			if (err == nil) != tc.ok {
				t.Fatalf("LoadAccounts: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), "totp") {
				t.Fatalf("the error does not name the field: %v", err)
			}
		})
	}
}
