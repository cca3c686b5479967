package console

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/protocols/opclass"
)

// bearer makes requests with an API token.
func (f *fixture) bearer(method, path, token, body string) (*http.Response, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.client().do(req)
}

func (c *client) api(method, path, body string) (*http.Response, string) {
	c.f.t.Helper()
	req, _ := http.NewRequest(method, c.f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	return c.do(req)
}

func (c *client) newToken(scope string) (id, secret string) {
	c.f.t.Helper()
	resp, body := c.api("POST", "/api/v1/tokens", `{"name":"ci `+scope+`","scope":"`+scope+`"}`)
	if resp.StatusCode != http.StatusCreated {
		c.f.t.Fatalf("creating a token: %s %s", resp.Status, body)
	}
	var a struct {
		ID    string `json:"id"`
		Token string `json:"token"`
		Hash  string `json:"hash"`
	}
	json.Unmarshal([]byte(body), &a)
	if a.ID == "" || !strings.HasPrefix(a.Token, tokenPrefix) || a.Hash != "" {
		c.f.t.Fatalf("token answer: %s", body)
	}
	return a.ID, a.Token
}

func TestTokens(t *testing.T) {
	f := newFixture(t, cheap(t))
	jana := f.loggedIn("jana")
	readID, read := jana.newToken(ScopeRead)
	_, approve := jana.newToken(ScopeApprove)

	// Only the hash is stored, and the file is private.
	path := filepath.Join(filepath.Dir(f.auditDir), "tokens.json")
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), read) || strings.Contains(string(data), approve) || !strings.Contains(string(data), hashToken(read)) {
		t.Fatalf("token file:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}

	r := f.request(acme, "acme", opclass.Write)
	t.Run("read/reads", func(t *testing.T) {
		for _, p := range []string{"/api/v1/whoami", "/api/v1/requests", "/api/v1/requests/" + r.ID, "/api/v1/sessions",
			"/api/v1/audit", "/api/v1/parties", "/api/v1/targets", "/api/v1/policy", "/api/v1/health"} {
			if resp, body := f.bearer("GET", p, read, ""); resp.StatusCode != 200 {
				t.Errorf("GET %s: %s %s", p, resp.Status, body)
			}
		}
	})
	t.Run("read/cannot-approve", func(t *testing.T) {
		resp, body := f.bearer("POST", "/api/v1/requests/"+r.ID+"/approve", read, `{}`)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "scope read") {
			t.Fatalf("read token approves: %s %s", resp.Status, body)
		}
		if resp, _ := f.bearer("POST", "/api/v1/sessions/s-1/kill", read, `{}`); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("read token kills: %s", resp.Status)
		}
	})
	t.Run("approve/no-self-approval", func(t *testing.T) {
		own := f.request(acme, "jana", opclass.Write)
		resp, body := f.bearer("POST", "/api/v1/requests/"+own.ID+"/approve", approve, `{}`)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "own request") {
			t.Fatalf("token approves its creator's request: %s %s", resp.Status, body)
		}
	})
	t.Run("approve/approves-without-csrf", func(t *testing.T) {
		resp, body := f.bearer("POST", "/api/v1/requests/"+r.ID+"/approve", approve, `{"for":"30m","classes":["write"],"note":"by script"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("approve token: %s %s", resp.Status, body)
		}
		var got approvals.Request
		json.Unmarshal([]byte(body), &got)
		if got.State != approvals.StateApproved || got.Approvals[0].By != "jana" {
			t.Fatalf("approved as %+v", got.Approvals)
		}
	})
	t.Run("tokens-do-not-make-tokens", func(t *testing.T) {
		if resp, _ := f.bearer("POST", "/api/v1/tokens", approve, `{"name":"x","scope":"approve"}`); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a token made a token: %s", resp.Status)
		}
	})
	t.Run("auditor-cannot-make-tokens", func(t *testing.T) {
		if resp, _ := f.loggedIn("audrey").api("POST", "/api/v1/tokens", `{"name":"x","scope":"read"}`); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("auditor made a token: %s", resp.Status)
		}
	})
	t.Run("list", func(t *testing.T) {
		resp, body := jana.api("GET", "/api/v1/tokens", "")
		if resp.StatusCode != 200 || !strings.Contains(body, readID) || strings.Contains(body, `"hash"`) {
			t.Fatalf("list: %s %s", resp.Status, body)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if resp, body := jana.api("DELETE", "/api/v1/tokens/"+readID, ""); resp.StatusCode != 200 {
			t.Fatalf("revoke: %s %s", resp.Status, body)
		}
		if resp, _ := f.bearer("GET", "/api/v1/whoami", read, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token: %s", resp.Status)
		}
		// Revocation survives a restart: the file no longer has it.
		ts, err := openTokens(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ts.lookup(read, time.Now()); ok {
			t.Fatal("the revoked token is back after reopening the file")
		}
		if _, ok := ts.lookup(approve, time.Now()); !ok {
			t.Fatal("the other token is gone after reopening the file")
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if resp, _ := f.bearer("GET", "/api/v1/whoami", tokenPrefix+"nope", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unknown token: %s", resp.Status)
		}
		if resp, _ := f.client().get("/api/v1/whoami"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no credentials: %s", resp.Status)
		}
	})
}

func TestStream(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/sessions/s-1/events", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	<-f.live.subd
	if f.watches.Load() != 1 {
		t.Fatalf("an engineer's stream is not a watch: %d", f.watches.Load())
	}
	f.live.publish(`{"seq":40,"time":"2026-03-02T08:00:00.000000Z","type":"command","session":"s-2","target":"pump-plc","fc":5,"class":"write","decision":"deny"}`)
	f.live.publish(`{"seq":41,"prev":"00","time":"2026-03-02T08:00:01.000000Z","type":"command","session":"s-1","party":"acme","target":"feeder-plc","unit":1,"fc":6,"class":"write","write_table":"holding","write_addr":100,"write_count":1,"values":[42],"n_values":1,"decision":"allow","rule":"acme-tune"}`)
	f.live.publish(`{"seq":42,"time":"2026-03-02T08:00:02.000000Z","type":"session.close","session":"s-1","detail":"killed by Jana"}`)
	br := bufio.NewReader(resp.Body)
	var events []string
	var data []string
	for len(events) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %v: %v", events, err)
		}
		line = strings.TrimRight(line, "\n")
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			events = append(events, ev)
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, d)
		}
	}
	if strings.Join(events, ",") != "record,record,end" {
		t.Fatalf("events %v", events)
	}
	var ev streamEvent
	if err := json.Unmarshal([]byte(data[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 41 || ev.Decision != "allow" || ev.Operation != "fc 6 unit 1 write write holding 100 = 42" || ev.Text != "allow by acme-tune" {
		t.Fatalf("first event %+v", ev)
	}
	// The stream ended with the session: the watch is over.
	deadline := time.Now().Add(5 * time.Second)
	for f.watches.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch was not stopped when the stream ended")
		}
		time.Sleep(10 * time.Millisecond)
	}

	t.Run("auditor-does-not-watch", func(t *testing.T) {
		a := f.loggedIn("audrey")
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/sessions/s-1/events", nil)
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		<-f.live.subd
		resp.Body.Close()
		if f.watched.Load() != 1 {
			t.Fatalf("watches started: %d", f.watched.Load())
		}
	})
	t.Run("unknown-session", func(t *testing.T) {
		if resp, _ := c.get("/api/v1/sessions/nope/events"); resp.StatusCode != 404 {
			t.Fatalf("unknown session: %s", resp.Status)
		}
	})
}

func TestAPIKill(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("jana")
	_, tok := c.newToken(ScopeApprove)
	resp, body := f.bearer("POST", "/api/v1/sessions/s-1/kill", tok, `{"reason":"done"}`)
	if resp.StatusCode != 200 || !strings.Contains(f.stopReason("s-1"), "killed by Jana Novák (jana) with API token T-") {
		t.Fatalf("kill: %s %s; reason %q", resp.Status, body, f.stopReason("s-1"))
	}
	if resp, _ := f.bearer("POST", "/api/v1/sessions/nope/kill", tok, `{}`); resp.StatusCode != 404 {
		t.Fatalf("unknown session: %s", resp.Status)
	}
}
