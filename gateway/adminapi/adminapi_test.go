package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/passhash"
	"github.com/brana-ot/brana/gateway/sessions"
)

// cheapHash makes a real argon2id PHC string with small parameters, so tests stay quick.
func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := passhash.NewWithCost(pw, 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type env struct {
	sock   string
	svc    *approvals.Service
	reg    *sessions.Registry
	accts  *Accounts
	client *http.Client
	killed chan string
}

func startAPI(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	parties := map[string]approvals.PartyInfo{
		"acme":   {ID: "acme", Name: "ACME Service", Org: "ACME s.r.o.", Kind: "vendor", Verdict: "non-prc"},
		"dragon": {ID: "dragon", Name: "Dragon Remote", Org: "Dragon Ltd", Kind: "vendor", PRC: true, Verdict: "prc", Findings: []string{"prc: management in Shenzhen (CN)"}},
	}
	svc, err := approvals.Open(approvals.Config{Store: filepath.Join(dir, "approvals.db")}, approvals.Options{
		Resolve: func(id string) (approvals.PartyInfo, bool) { p, ok := parties[id]; return p, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	accts, err := NewAccounts([]Account{
		{User: "jana", Name: "Jana Novák", Roles: []string{"approver"}, Hash: cheapHash(t, "jana-pw")},
		{User: "petr", Name: "Petr Svoboda", Roles: []string{"approver"}, Hash: cheapHash(t, "petr-pw")},
		{User: "wang", Name: "Wang Wei", Party: "dragon", Roles: []string{"approver"}, Hash: cheapHash(t, "wang-pw")},
		{User: "eva", Name: "Eva", Roles: []string{"viewer"}, Hash: cheapHash(t, "eva-pw")},
		{User: "ota", Name: "Ota", Roles: []string{"requester"}, Hash: cheapHash(t, "ota-pw")},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sock: filepath.Join(dir, "admin.sock"), svc: svc, reg: sessions.NewRegistry(), accts: accts, killed: make(chan string, 4)}
	e.reg.Add(sessions.New(sessions.Info{ID: "m-1", Protocol: "modbus", Party: "acme", PartyName: "ACME Service", Source: "192.0.2.7:50211",
		Since: time.Now()}, func(reason string) { e.killed <- reason }))
	ln, err := Listen(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(e.sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- ServeListener(ctx, ln, New(Options{Approvals: svc, Sessions: e.reg, Accounts: accts,
			Health: func() any { return map[string]int{"sessions": e.reg.Len()} }}))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(e.sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
		}}}
	return e
}

func (e *env) call(t *testing.T, user, pw, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://brana"+path, rd)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, out
}

var pws = map[string]string{"jana": "jana-pw", "petr": "petr-pw", "wang": "wang-pw", "eva": "eva-pw", "ota": "ota-pw"}

func TestAPI(t *testing.T) {
	e := startAPI(t)
	code, out := e.call(t, "ota", "ota-pw", "POST", "/v1/requests", CreateBody{Party: "dragon", Targets: []string{"feeder-1"},
		Classes: []string{"read", "write"}, Reason: "firmware check", Duration: "90m"})
	if code != http.StatusCreated || out["state"] != "pending" || out["required"] != 2.0 || out["requested_by"] != "ota" {
		t.Fatalf("create = %d %v", code, out)
	}
	id := out["id"].(string)
	party := out["party"].(map[string]any)
	if party["name"] != "Dragon Remote" || party["prc"] != true {
		t.Fatalf("party not resolved by the gateway: %v", party)
	}
	tests := []struct {
		name         string
		user, method string
		path         string
		body         any
		code         int
		want         string // in the JSON answer
	}{
		{"ok/health-without-login", "", "GET", "/v1/health", nil, 200, `"sessions":1`},
		{"fail/no-login", "", "GET", "/v1/requests", nil, 401, "authentication required"},
		{"fail/wrong-password", "jana", "GET", "/v1/requests", nil, 401, "wrong user or password"},
		{"fail/unknown-user", "mallory", "GET", "/v1/requests", nil, 401, "wrong user or password"},
		{"ok/whoami", "eva", "GET", "/v1/whoami", nil, 200, `"roles":["viewer"]`},
		{"ok/list-viewer", "eva", "GET", "/v1/requests?state=pending", nil, 200, id},
		{"ok/list-empty", "eva", "GET", "/v1/requests?state=approved", nil, 200, `"requests":[]`},
		{"fail/list-state", "eva", "GET", "/v1/requests?state=open", nil, 400, `state \"open\"`},
		{"ok/show", "eva", "GET", "/v1/requests/" + strings.ToLower(id), nil, 200, "prc: management in Shenzhen (CN)"},
		{"fail/show-missing", "eva", "GET", "/v1/requests/R-ZZZZZZ", nil, 404, "no such request"},
		{"fail/viewer-approves", "eva", "POST", "/v1/requests/" + id + "/approve", nil, 403, "eva has role viewer; this needs approver"},
		{"fail/requester-approves", "ota", "POST", "/v1/requests/" + id + "/approve", nil, 403, "this needs approver"},
		{"fail/viewer-creates", "eva", "POST", "/v1/requests", CreateBody{Party: "acme"}, 403, "needs approver or requester"},
		{"fail/same-party", "wang", "POST", "/v1/requests/" + id + "/approve", nil, 403, "nobody approves their own request"},
		{"fail/widen", "jana", "POST", "/v1/requests/" + id + "/approve", ApproveBody{Classes: []string{"program"}}, 400, "only narrow"},
		{"fail/bad-class", "jana", "POST", "/v1/requests/" + id + "/approve", ApproveBody{Classes: []string{"flash"}}, 400, "unknown operation class"},
		{"fail/unknown-field", "jana", "POST", "/v1/requests/" + id + "/approve", map[string]any{"token": "x"}, 400, "unknown field"},
		{"ok/approve-1", "jana", "POST", "/v1/requests/" + id + "/approve", ApproveBody{Classes: []string{"read"}, Note: "read only"}, 200, `"state":"pending"`},
		{"fail/approve-twice", "jana", "POST", "/v1/requests/" + id + "/approve", nil, 409, "already approved"},
		{"ok/approve-2", "petr", "POST", "/v1/requests/" + id + "/approve", ApproveBody{Until: time.Now().Add(time.Hour)}, 200, `"state":"approved"`},
		{"fail/deny-granted", "petr", "POST", "/v1/requests/" + id + "/deny", NoteBody{Note: "no"}, 409, "not pending"},
		{"fail/revoke-no-note", "petr", "POST", "/v1/requests/" + id + "/revoke", nil, 400, "a note is required"},
		{"ok/revoke", "petr", "POST", "/v1/requests/" + id + "/revoke", NoteBody{Note: "done early"}, 200, `"state":"revoked"`},
		{"ok/sessions", "eva", "GET", "/v1/sessions", nil, 200, `"id":"m-1"`},
		{"fail/viewer-kills", "eva", "POST", "/v1/sessions/m-1/kill", nil, 403, "needs approver"},
		{"fail/kill-missing", "jana", "POST", "/v1/sessions/m-9/kill", nil, 404, "no live session m-9"},
		{"ok/kill", "jana", "POST", "/v1/sessions/m-1/kill", KillBody{Reason: "unplanned"}, 200, "killed by Jana Novák (jana): unplanned"},
		{"fail/no-endpoint", "jana", "GET", "/v2/requests", nil, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw := pws[tt.user]
			if tt.name == "fail/wrong-password" {
				pw = "guess"
			}
			code, out := e.call(t, tt.user, pw, tt.method, tt.path, tt.body)
			b, _ := json.Marshal(out)
			if code != tt.code || !strings.Contains(string(b), tt.want) {
				t.Fatalf("%s %s = %d %s; want %d and %s", tt.method, tt.path, code, b, tt.code, tt.want)
			}
			if code >= 400 && out["error"] == nil {
				t.Fatalf("error answer without an error field: %s", b)
			}
		})
	}
	select {
	case reason := <-e.killed:
		if reason != "killed by Jana Novák (jana): unplanned" {
			t.Fatalf("kill reason %q", reason)
		}
	default:
		t.Fatal("the session was not stopped")
	}
}

func TestLockout(t *testing.T) {
	e := startAPI(t)
	var mu sync.Mutex
	now := time.Now()
	e.accts.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for i := range MaxFailures {
		if code, _ := e.call(t, "jana", "wrong", "GET", "/v1/whoami", nil); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	code, out := e.call(t, "jana", "jana-pw", "GET", "/v1/whoami", nil)
	if code != http.StatusTooManyRequests || !strings.Contains(out["error"].(string), "locked") {
		t.Fatalf("right password while locked = %d %v", code, out)
	}
	if code, _ := e.call(t, "petr", "petr-pw", "GET", "/v1/whoami", nil); code != 200 {
		t.Fatalf("another user is locked too: %d", code)
	}
	mu.Lock()
	now = now.Add(LockFor)
	mu.Unlock()
	if code, _ := e.call(t, "jana", "jana-pw", "GET", "/v1/whoami", nil); code != 200 {
		t.Fatalf("after the lock: %d", code)
	}
	// Success resets the count: four more failures do not lock.
	for range MaxFailures - 1 {
		e.call(t, "jana", "wrong", "GET", "/v1/whoami", nil)
	}
	if code, _ := e.call(t, "jana", "jana-pw", "GET", "/v1/whoami", nil); code != 200 {
		t.Fatalf("locked after %d failures: %d", MaxFailures-1, code)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q", h)
	}
	p, err := passhash.Parse(h)
	if err != nil || !p.Verify("correct horse") || p.Verify("correct horse ") {
		t.Fatalf("verify: %v", err)
	}
}

func TestAccountsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "accounts.yaml")
	write := func(s string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(file, mode)
	}
	hash := cheapHash(t, "pw")
	write("accounts:\n  - user: jana\n    name: Jana\n    roles: [approver]\n    hash: \""+hash+"\"\n", 0o640)
	a, err := LoadAccounts(file)
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := a.Authenticate("jana", "pw"); err != nil || acc.Name != "Jana" || !acc.Has(RoleApprover) {
		t.Fatalf("Authenticate = %+v, %v", acc, err)
	}
	if l := a.List(); len(l) != 1 || l[0].Hash != "" {
		t.Fatalf("List = %+v", l)
	}
	tests := []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"fail/unknown-key", "accounts:\n  - user: jana\n    pasword: x\n", 0o640, `line 3: unknown key "pasword"`},
		{"fail/role", "accounts:\n  - user: jana\n    roles: [admin]\n    hash: \"" + hash + "\"\n  - user: Petr\n    roles: [viewer]\n    hash: x\n", 0o640,
			`accounts.yaml:2: accounts[0].roles: "admin" is not a role`},
		{"fail/second-entry", "accounts:\n  - user: jana\n    roles: [viewer]\n    hash: \"" + hash + "\"\n  - user: Petr\n    roles: [viewer]\n    hash: \"" + hash + "\"\n", 0o640,
			`accounts.yaml:5: accounts[1].user: "Petr" is not a valid user name`},
		{"fail/world-writable", "accounts: []\n", 0o666, "writable by anyone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(tt.text, tt.mode)
			_, err := LoadAccounts(file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadAccounts = %v, want %q", err, tt.want)
			}
			c := Config{Accounts: file}
			if p := c.Check(); len(p) != 1 || !strings.HasPrefix(p[0], "accounts: ") {
				t.Fatalf("Check = %q", p)
			}
		})
	}
	t.Run("reload/broken-file-locks-everyone-out", func(t *testing.T) {
		// a was loaded from the good file; the file is now world-writable.
		if _, err := a.Authenticate("jana", "pw"); err == nil || !strings.Contains(err.Error(), "writable by anyone") {
			t.Fatalf("after the file broke: %v", err)
		}
		write("accounts:\n  - user: eva\n    roles: [viewer]\n    hash: \""+hash+"\"\n", 0o600)
		os.Chtimes(file, time.Now().Add(time.Second), time.Now().Add(time.Second))
		if _, err := a.Authenticate("eva", "pw"); err != nil {
			t.Fatalf("after the fix: %v", err)
		}
		if _, err := a.Authenticate("jana", "pw"); err != ErrBadCredentials {
			t.Fatalf("removed account: %v", err)
		}
	})
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "admin.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// A crash leaves the socket file behind.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen(sock)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, nil, 0o600)
	if _, err := Listen(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a file: %v", err)
	}
}
