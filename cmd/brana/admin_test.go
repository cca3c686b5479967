package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
)

// cheapPHC is a real argon2id PHC string with small parameters.
func cheapPHC(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
}

// startAdmin runs an admin API in-process and points the CLI's environment at it.
func startAdmin(t *testing.T) (*sessions.Registry, chan string) {
	t.Helper()
	dir := t.TempDir()
	svc, err := approvals.Open(approvals.Config{Store: filepath.Join(dir, "approvals.db")}, approvals.Options{
		Resolve: func(id string) (approvals.PartyInfo, bool) {
			if id != "dragon" {
				return approvals.PartyInfo{}, false
			}
			return approvals.PartyInfo{ID: "dragon", Name: "Dragon Remote", Org: "Dragon Ltd", Kind: "vendor", PRC: true, Verdict: "prc",
				Findings: []string{"prc: management in Shenzhen (CN)", "non-prc: source IP in DE"}}, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	accts, err := adminapi.NewAccounts([]adminapi.Account{
		{User: "jana", Name: "Jana Novák", Roles: []string{"approver"}, Hash: cheapPHC("jana-pw")},
		{User: "petr", Name: "Petr Svoboda", Roles: []string{"approver"}, Hash: cheapPHC("petr-pw")},
		{User: "eva", Name: "Eva", Roles: []string{"viewer"}, Hash: cheapPHC("eva-pw")},
		{User: "ota", Name: "Ota", Roles: []string{"requester"}, Hash: cheapPHC("ota-pw")},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := sessions.NewRegistry()
	killed := make(chan string, 1)
	reg.Add(sessions.New(sessions.Info{ID: "m-1", Protocol: "modbus", Party: "dragon", PartyName: "Dragon Remote", Org: "Dragon Ltd",
		Source: "192.0.2.7:50211", Since: time.Now()}, func(reason string) { killed <- reason }))
	sock := filepath.Join(dir, "admin.sock")
	ln, err := adminapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adminapi.ServeListener(ctx, ln, adminapi.New(adminapi.Options{Approvals: svc, Sessions: reg, Accounts: accts}))
	}()
	t.Cleanup(func() { cancel(); <-done })
	t.Setenv("BRANA_SOCKET", sock)
	t.Setenv("BRANA_USER", "jana")
	t.Setenv("BRANA_PASSWORD", "jana-pw")
	return reg, killed
}

// cli runs an admin command as main.go's switch will.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	switch args[0] {
	case "requests":
		code = cmdRequests(args[1:], &o, &e)
	case "sessions":
		code = cmdSessions(args[1:], &o, &e)
	case "account":
		code = cmdAccount(args[1:], &o, &e)
	default:
		t.Fatalf("no admin command %q", args[0])
	}
	return code, o.String(), e.String()
}

func as(t *testing.T, user string) {
	t.Setenv("BRANA_USER", user)
	t.Setenv("BRANA_PASSWORD", user+"-pw")
}

func TestRequestsCLI(t *testing.T) {
	startAdmin(t)
	code, out, errOut := cli(t, "requests", "create", "--party", "dragon", "--targets", "feeder-1,pump-2", "--classes", "read,write",
		"--reason", "firmware check", "--for", "90m")
	m := regexp.MustCompile(`^(R-[2-9A-Z]{6}) pending until .*; needs 2 approval\(s\)\n$`).FindStringSubmatch(out)
	if code != exitOK || m == nil {
		t.Fatalf("create = %d %q %q", code, out, errOut)
	}
	id := m[1]

	tests := []struct {
		name string
		user string
		args []string
		code int
		out  []string // in stdout, or stderr when code != 0
	}{
		{"ok/list", "eva", []string{"requests", "list"}, exitOK, []string{"ID", "STATE", id, "pending", "dragon (Dragon Remote) [PRC]", "feeder-1,pump-2", "read,write", "0/2", "firmware check"}},
		{"ok/show", "eva", []string{"requests", "show", strings.ToLower(id)}, exitOK, []string{"Evidence", "[PRC] prc: management in Shenzhen (CN)",
			"      non-prc: source IP in DE", "[PRC] registered as PRC-managed", "Two-person", "PRC-managed party", "Asked by", "jana"}},
		{"fail/self-approval", "jana", []string{"requests", "approve", id}, exitFailed, []string{"nobody approves their own request", "HTTP 403"}},
		{"fail/viewer-approves", "eva", []string{"requests", "approve", id}, exitFailed, []string{"eva has role viewer; this needs approver"}},
		{"ok/approve-1", "petr", []string{"requests", "approve", id, "--classes", "read", "--note", "read only"}, exitOK, []string{id + " approved (1 of 2)"}},
		{"fail/until-and-for", "petr", []string{"requests", "approve", id, "--until", "2030-01-01T00:00:00Z", "--for", "1h"}, exitUsage, []string{"not both"}},
		{"fail/deny-without-note", "petr", []string{"requests", "deny", id}, exitUsage, []string{"--note is required"}},
		{"fail/no-id", "petr", []string{"requests", "show"}, exitUsage, []string{"usage:"}},
		{"fail/unknown", "petr", []string{"requests", "grant", id}, exitUsage, []string{`unknown command "grant"`}},
		{"fail/missing", "petr", []string{"requests", "show", "R-ZZZZZZ"}, exitFailed, []string{"no such request", "HTTP 404"}},
		{"fail/password", "mallory", []string{"requests", "list"}, exitFailed, []string{"wrong user or password", "HTTP 401"}},
		{"ok/list-all-json", "eva", []string{"requests", "list", "--all", "--json"}, exitOK, []string{`"requests"`, `"id": "` + id + `"`}},
		{"ok/show-after-approval", "eva", []string{"requests", "show", id}, exitOK, []string{"Approvals", "Petr Svoboda (petr)", `"read only"`, "[narrowed to classes read]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as(t, tt.user)
			code, out, errOut := cli(t, tt.args...)
			text := out
			if tt.code != exitOK {
				text = errOut
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out, errOut)
			}
			for _, s := range tt.out {
				if !strings.Contains(text, s) {
					t.Errorf("output lacks %q:\n%s", s, text)
				}
			}
		})
	}

	as(t, "eva")
	t.Setenv("BRANA_USER", "")
	if code, _, errOut := cli(t, "requests", "list"); code != exitUsage || !strings.Contains(errOut, "--user or set BRANA_USER") {
		t.Fatalf("without a user: %d %q", code, errOut)
	}
	t.Setenv("BRANA_PASSWORD", "jana-pw")
	code, out, errOut = cli(t, "requests", "approve", id, "--user", "jana", "--for", "1h")
	if code != exitFailed || !strings.Contains(errOut, "own request") {
		t.Fatalf("--user flag: %d %q %q", code, out, errOut)
	}
	t.Setenv("BRANA_PASSWORD", "petr-pw")
	code, out, errOut = cli(t, "requests", "approve", "--user", "petr", "--for", "1h", id)
	if code != exitFailed || !strings.Contains(errOut, "already approved") {
		t.Fatalf("second approval by the same person: %d %q %q", code, out, errOut)
	}
	as(t, "petr")

	code, out, errOut = cli(t, "requests", "deny", id, "--note", "use the maintenance window")
	if code != exitOK || out != id+" denied\n" {
		t.Fatalf("deny = %d %q %q", code, out, errOut)
	}
	code, out, _ = cli(t, "requests", "list", "--all", "--json")
	var list struct {
		Requests []approvals.Request `json:"requests"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Requests) != 1 || list.Requests[0].State != approvals.StateDenied {
		t.Fatalf("list --json: %v %q", err, out)
	}
	if _, out, _ = cli(t, "requests", "list"); strings.Contains(out, id) || !strings.Contains(out, "no pending requests") {
		t.Fatalf("list without --all shows a denied request:\n%s", out)
	}
}

func TestRequestsCLIGrantAndRevoke(t *testing.T) {
	startAdmin(t)
	as(t, "ota")
	_, out, _ := cli(t, "requests", "create", "--party", "dragon", "--targets", "pump-2", "--classes", "read", "--ticket", "WO-17")
	id := out[:8]
	as(t, "jana")
	if code, out, errOut := cli(t, "requests", "approve", id, "--note", "ok"); code != exitOK || !strings.Contains(out, "approved (1 of 2)") {
		t.Fatalf("first approval: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli(t, "requests", "revoke", id, "--note", "x"); code != exitFailed || !strings.Contains(errOut, "is pending, not approved") {
		t.Fatalf("revoking a pending request: %d %q", code, errOut)
	}
	as(t, "petr")
	code, out, errOut := cli(t, "requests", "approve", id, "--for", "1h")
	if code != exitOK || !strings.Contains(out, id+" granted: claim by ") {
		t.Fatalf("second approval: %d %q %q", code, out, errOut)
	}
	if _, out, _ := cli(t, "requests", "list"); !strings.Contains(out, "approved") || !strings.Contains(out, "2/2") || !strings.Contains(out, "claim by") {
		t.Fatalf("list of a grant:\n%s", out)
	}
	code, out, errOut = cli(t, "requests", "revoke", id, "--note", "work done")
	if code != exitOK || out != id+" revoked; its sessions are being ended\n" {
		t.Fatalf("revoke = %d %q %q", code, out, errOut)
	}
	if _, out, _ := cli(t, "requests", "show", id); !strings.Contains(out, "Revoked") || !strings.Contains(out, `Petr Svoboda (petr)`) || !strings.Contains(out, `"work done"`) {
		t.Fatalf("show after revoke:\n%s", out)
	}
}

func TestSessionsCLI(t *testing.T) {
	_, killed := startAdmin(t)
	as(t, "eva")
	code, out, errOut := cli(t, "sessions", "list")
	if code != exitOK || !strings.Contains(out, "m-1") || !strings.Contains(out, "Dragon Remote (dragon)") || !strings.Contains(out, "192.0.2.7:50211") {
		t.Fatalf("list = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli(t, "sessions", "kill", "m-1"); code != exitFailed || !strings.Contains(errOut, "needs approver") {
		t.Fatalf("viewer kill = %d %q", code, errOut)
	}
	as(t, "jana")
	if code, out, errOut := cli(t, "sessions", "kill", "m-1", "--reason", "unplanned access"); code != exitOK || out != "session m-1 killed\n" {
		t.Fatalf("kill = %d %q %q", code, out, errOut)
	}
	if r := <-killed; r != "killed by Jana Novák (jana): unplanned access" {
		t.Fatalf("reason %q", r)
	}
	if code, _, errOut := cli(t, "sessions", "kill", "m-404"); code != exitFailed || !strings.Contains(errOut, "no live session") {
		t.Fatalf("kill missing = %d %q", code, errOut)
	}
	if code, _, _ := cli(t, "sessions", "kill"); code != exitUsage {
		t.Fatalf("kill without id = %d", code)
	}
	t.Setenv("BRANA_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	if code, _, errOut := cli(t, "sessions", "list"); code != exitFailed || !strings.Contains(errOut, "cannot reach the gateway") {
		t.Fatalf("no gateway = %d %q", code, errOut)
	}
}

func TestAccountHash(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(f, []byte("correct horse battery\n"), 0o600)
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := stdin
	stdin = in
	defer func() { stdin = old }()
	code, out, errOut := cli(t, "account", "hash")
	if code != exitOK || !strings.HasPrefix(out, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("account hash = %d %q %q", code, out, errOut)
	}
	accts, err := adminapi.NewAccounts([]adminapi.Account{{User: "jana", Roles: []string{"approver"}, Hash: strings.TrimSpace(out)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accts.Authenticate("jana", "correct horse battery"); err != nil {
		t.Fatalf("the printed hash does not verify: %v", err)
	}
	if code, _, _ := cli(t, "account", "show"); code != exitUsage {
		t.Fatalf("account show = %d", code)
	}
}
