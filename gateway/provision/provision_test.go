package provision

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/testbench/gwtest"
)

func fingerprints(res *Result) map[string]string {
	m := map[string]string{}
	for _, it := range res.Items {
		m[it.What] = it.Fingerprint
	}
	return m
}

// A first run writes the starter config, makes every key the config
// needs and the first engineer; a second run changes no file and reports
// the same fingerprints; the gateway then starts with the same keys.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	o := Options{Config: file, Starter: config.StarterUnder(dir)}
	res, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.ConfigWritten {
		t.Error("the starter config was not written")
	}
	if b, _ := os.ReadFile(file); string(b) != string(o.Starter) {
		t.Error("the config written is not the starter config")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("config file: %v, %v; want mode 0640", fi, err)
	}
	data := filepath.Join(dir, "data")
	want := map[string]string{
		"ssh host key":        filepath.Join(data, "keys", "ssh_host_ed25519_key"),
		"audit signing key":   filepath.Join(data, "keys", "audit-signing.pem"),
		"console certificate": filepath.Join(data, "keys", "console.pem"),
	}
	if len(res.Items) != len(want) {
		t.Errorf("items %+v; want %d", res.Items, len(want))
	}
	for _, it := range res.Items {
		if want[it.What] != it.Path || !it.Created || it.Fingerprint == "" {
			t.Errorf("item %+v; want made at %s with a fingerprint", it, want[it.What])
		}
		if fi, err := os.Stat(it.Path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v; want mode 0600", it.Path, fi, err)
		}
	}
	for _, f := range []string{filepath.Join(data, "keys", "audit-signing.pub.pem"), filepath.Join(data, "keys", "ssh_host_ed25519_key.pub")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("public key: %v", err)
		}
	}
	a := res.Account
	if a == nil || a.User != DefaultEngineer || !a.Generated || len(a.Password) != 29 || len(a.Files) != 1 {
		t.Fatalf("account %+v; want %s with a generated password", a, DefaultEngineer)
	}
	accts, err := adminapi.LoadAccounts(a.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := accts.Authenticate(a.User, a.Password); err != nil || !acc.Has(adminapi.RoleApprover) {
		t.Errorf("the engineer with the printed password: %+v, %v; want an approver", acc, err)
	}
	if res.ClockBehind {
		t.Error("clock behind on a first run")
	}

	before := gwtest.Tree(t, dir)
	again, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if again.ConfigWritten || again.Account != nil {
		t.Errorf("second run: config written %v, account %+v; want neither", again.ConfigWritten, again.Account)
	}
	for _, it := range again.Items {
		if it.Created {
			t.Errorf("second run made %s again", it.What)
		}
	}
	if f1, f2 := fmt.Sprint(fingerprints(res)), fmt.Sprint(fingerprints(again)); f1 != f2 {
		t.Errorf("fingerprints changed:\n%s\n%s", f1, f2)
	}
	if !strings.Contains(strings.Join(again.Notes, "\n"), "account engineer is in") {
		t.Errorf("notes %q do not say the account is kept", again.Notes)
	}
	after := gwtest.Tree(t, dir)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("second run changed %s: %s -> %s", p, s, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("second run made %s", p)
		}
	}

	// The gateway starts with what init made and makes nothing more.
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	fp := fingerprints(res)
	if got := "SHA-256 " + g.ConsoleFingerprint(); got != fp["console certificate"] {
		t.Errorf("the gateway serves console certificate %s; init printed %s", got, fp["console certificate"])
	}
	if got := g.SSHHostKey(); got != fp["ssh host key"] {
		t.Errorf("the gateway's ssh host key %s; init printed %s", got, fp["ssh host key"])
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	for p, s := range before {
		if strings.Contains(p, "keys") && gwtest.Tree(t, dir)[p] != s {
			t.Errorf("the gateway changed %s", p)
		}
	}
}

// A config that does not load is an error naming the field, and nothing
// is made: no data folder, no accounts file, no key.
func TestRunBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	broken := strings.Replace(string(config.StarterUnder(dir)), "listen: 127.0.0.1:0\n  # hosts", "listen: nowhere\n  # hosts", 1)
	if broken == string(config.StarterUnder(dir)) {
		t.Fatal("the test did not break the config")
	}
	if err := os.WriteFile(file, []byte(broken), 0o640); err != nil {
		t.Fatal(err)
	}
	before := gwtest.Tree(t, dir)
	_, err := Run(Options{Config: file, Starter: config.StarterUnder(dir)})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "console.listen") || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Fatalf("Run = %v; want ErrConfig naming console.listen", err)
	}
	after := gwtest.Tree(t, dir)
	for p, s := range after {
		if before[p] == "" || (!strings.HasPrefix(s, "d") && before[p] != s) {
			t.Errorf("a broken config made or changed %s", p)
		}
	}
}

// The engineer account: added to a file without accounts, or under a new
// name; never replaced; the password given is used and not returned; a
// short password or a bad name is refused before anything changes.
func TestRunAccounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	run := func(eng, pw string) (*Result, error) {
		return Run(Options{Config: file, Starter: config.StarterUnder(dir), Engineer: eng, Password: pw})
	}
	accounts := filepath.Join(dir, "etc", "accounts.yaml")
	for _, tc := range []struct {
		name, engineer, password string
		add                      string // the user added, if any
		err                      error
		note                     string
	}{
		{name: "ok/first-named", engineer: "eva", password: "a long passphrase", add: "eva"},
		{name: "ok/none-when-accounts-exist", note: "has 1 account(s): none added"},
		{name: "ok/existing-named", engineer: "eva", note: "account eva is in"},
		{name: "ok/existing-named-password-unused", engineer: "eva", password: "another long passphrase", note: "password given was not used"},
		{name: "fail/short-password", engineer: "jan", password: "short", err: ErrShortPassword},
		{name: "fail/bad-name", engineer: "Jan Novak"},
		{name: "ok/second-named", engineer: "jan", add: "jan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(accounts)
			res, err := run(tc.engineer, tc.password)
			switch {
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("Run = %v; want %v", err, tc.err)
			case strings.HasPrefix(tc.name, "fail/") && err == nil:
				t.Fatal("Run succeeded")
			case strings.HasPrefix(tc.name, "ok/") && err != nil:
				t.Fatal(err)
			}
			after, _ := os.ReadFile(accounts)
			if tc.add == "" {
				if string(before) != string(after) {
					t.Errorf("the accounts file changed:\n%s", after)
				}
				if err == nil && res.Account != nil {
					t.Errorf("account added: %+v", res.Account)
				}
				if tc.note != "" && !strings.Contains(strings.Join(res.Notes, "\n"), tc.note) {
					t.Errorf("notes %q; want %q", res.Notes, tc.note)
				}
				return
			}
			if res.Account == nil || res.Account.User != tc.add || res.Account.Generated != (tc.password == "") {
				t.Fatalf("account %+v; want %s", res.Account, tc.add)
			}
			if tc.password != "" && res.Account.Password != "" {
				t.Error("a password that was given is returned")
			}
			a, err := adminapi.LoadAccounts(accounts)
			if err != nil {
				t.Fatal(err)
			}
			pw := tc.password
			if pw == "" {
				pw = res.Account.Password
			}
			if _, err := a.Authenticate(tc.add, pw); err != nil {
				t.Errorf("%s cannot log in: %v", tc.add, err)
			}
			if i := strings.Index(string(before), "accounts:\n"); i >= 0 && !strings.Contains(string(after), string(before)[i:]) {
				t.Errorf("the earlier accounts were not kept:\n%s\n%s", before, after)
			}
		})
	}
	a, err := adminapi.LoadAccounts(accounts)
	if err != nil {
		t.Fatal(err)
	}
	if l := a.List(); len(l) != 2 || l[0].User != "eva" || l[1].User != "jan" {
		t.Errorf("accounts %+v; want eva and jan", l)
	}
	b, _ := os.ReadFile(accounts)
	t.Logf("%s:\n%s", accounts, b)
}

// Certificates and keys of brana's OPC UA endpoint and of its OPC UA
// client side are made when the config has them, and are the ones the
// gateway's functions load.
func TestRunOPCUA(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	users := filepath.Join(dir, "etc", "opcua-users.yaml")
	h, _ := adminapi.HashPassword("opc user password")
	os.WriteFile(users, []byte("users:\n  - {user: anna, hash: \""+h+"\"}\n"), 0o640)
	text := strings.NewReplacer("listeners:\n", `listeners:
  - name: opc
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
    policies: [Basic256Sha256]
    users: opcua-users.yaml
`, "    timeout: 1s\n", `    timeout: 1s
  - name: line-opc
    protocol: opcua
    endpoint: opc.tcp://192.0.2.20:4840
`).Replace(string(config.StarterUnder(dir)))
	if err := os.WriteFile(file, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := Run(Options{Config: file})
	if err != nil {
		t.Fatal(err)
	}
	fp := fingerprints(res)
	cfg := res.Config
	id, created, err := gateway.OPCUAServerIdentity(cfg, cfg.Listeners[0].Certificate)
	if err != nil || created {
		t.Fatalf("server identity: created %v, %v", created, err)
	}
	if got := fp["opc ua server certificate"]; !strings.HasSuffix(got, thumb(id.Cert)) {
		t.Errorf("server thumbprint %q; the gateway loads %s", got, thumb(id.Cert))
	}
	cid, created, err := gateway.OPCUAClientIdentity(cfg)
	if err != nil || created {
		t.Fatalf("client identity: created %v, %v", created, err)
	}
	if got := fp["opc ua client certificate"]; !strings.HasSuffix(got, thumb(cid.Cert)) {
		t.Errorf("client thumbprint %q; the gateway loads %s", got, thumb(cid.Cert))
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", "opcua-pki", "rejected")); err != nil || !fi.IsDir() {
		t.Errorf("trust folder: %v", err)
	}
}

func thumb(der []byte) string { return fmt.Sprintf("%x", sha1.Sum(der)) }

// A clock behind the last time brana saw: certificates are not made
// without Force (their dates would be wrong); with Force, or when there is
// nothing to make, Run goes on and says so.
func TestRunClockBehind(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	last := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	os.WriteFile(filepath.Join(data, "last-seen"), []byte(last.Format(time.RFC3339)+"\n"), 0o640)
	o := Options{Config: file, Starter: config.StarterUnder(dir)}

	res, err := Run(o)
	if !errors.Is(err, ErrClockBehind) || !strings.Contains(err.Error(), "console.pem") || res == nil || !res.ClockBehind || !res.LastSeen.Equal(last) {
		t.Fatalf("Run = %+v, %v; want ErrClockBehind naming the console certificate", res, err)
	}
	if _, err := os.Stat(filepath.Join(data, "keys")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("keys were made with the clock behind: %v", err)
	}
	o.Force = true
	if res, err = Run(o); err != nil || !res.ClockBehind {
		t.Fatalf("Run with Force = %+v, %v", res, err)
	}
	o.Force = false
	if res, err = Run(o); err != nil || !res.ClockBehind {
		t.Fatalf("Run with nothing to make = %+v, %v; want it to go on and report the clock", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "last-seen")); strings.TrimSpace(string(b)) != last.Format(time.RFC3339) {
		t.Errorf("init changed last-seen to %s", b)
	}
}

// As root, the data folder and the keys go to the service user, the
// config and accounts files to root and its group, mode 0640; a user that
// does not exist is a note, not an error.
func TestRunOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	res, err := Run(Options{Config: file, Starter: config.StarterUnder(dir), AsRoot: true, User: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	owner := func(p string) (int, int, os.FileMode) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid), fi.Mode().Perm()
	}
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if ou, og, _ := owner(p); ou != uid || og != gid {
			t.Errorf("%s is %d:%d; want nobody %d:%d", p, ou, og, uid, gid)
		}
		return nil
	})
	for _, f := range []string{file, filepath.Join(dir, "etc", "accounts.yaml")} {
		if ou, og, m := owner(f); ou != 0 || og != gid || m != 0o640 {
			t.Errorf("%s is %d:%d %v; want 0:%d 0640", f, ou, og, m, gid)
		}
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "belong to nobody") {
		t.Errorf("notes %q", res.Notes)
	}

	res, err = Run(Options{Config: file, Starter: config.StarterUnder(dir), AsRoot: true, User: "no-such-brana-user"})
	if err != nil || !strings.Contains(strings.Join(res.Notes, "\n"), "user no-such-brana-user does not exist") {
		t.Errorf("Run with an unknown user = %v, notes %q", err, res.Notes)
	}
}

// A mistyped data_dir must not make init hand a system directory, or the
// config's own directory, to the service user.
func TestOwnableRefusesSystemAndConfigDirs(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o750)
	for _, bad := range []struct{ data, msg string }{
		{"/", "system directory"},
		{"/var/", "system directory"},
		{"/etc", "system directory"},
		{etc, "holds the config directory"},
		{dir, "holds the config directory"},
	} {
		if err := ownable(bad.data, etc); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("ownable(%q) = %v; want an error saying %q", bad.data, err, bad.msg)
		}
	}
	for _, good := range []string{"/var/lib/brana", filepath.Join(dir, "data")} {
		if err := ownable(good, etc); err != nil {
			t.Errorf("ownable(%q) = %v", good, err)
		}
	}
}
