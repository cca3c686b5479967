package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// initStarter points `brana init` at a starter config whose paths are
// under dir and whose listeners are on 127.0.0.1:0, so that no test ever
// writes /etc/brana or /var/lib/brana.
func initStarter(t *testing.T, dir string) string {
	t.Helper()
	old := starter
	starter = config.StarterUnder(dir)
	t.Cleanup(func() { starter = old })
	return filepath.Join(dir, "etc", "brana.yaml")
}

var (
	sshFP      = regexp.MustCompile(`(?m)^  ssh host key\s+(SHA256:\S+)$`)
	consoleFP  = regexp.MustCompile(`(?m)^  console certificate\s+SHA-256 ([0-9A-F:]{95})$`)
	auditFP    = regexp.MustCompile(`(?m)^  audit signing key\s+key id ([0-9a-f]{16})$`)
	passwordRE = regexp.MustCompile(`(?m)^  password: (\S+)$`)
	fpBlock    = regexp.MustCompile(`(?s)Fingerprints.*?\n\n`)
)

func match(t *testing.T, re *regexp.Regexp, out string) string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in the output:\n%s", re, out)
	}
	return m[1]
}

// brana init on a new gateway: it writes the starter config, which brana
// check then accepts; makes each key; prints fingerprints that OpenSSH and
// the running gateway agree with and a password the engineer logs in to
// the console with; and a second run changes nothing and prints the same.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	file := initStarter(t, dir)
	code, out, errOut := brana(t, "init", "-c", file, "--engineer", "eva", "--user", "nobody")
	if code != exitOK {
		t.Fatalf("init = %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("brana init:\n%s", out)
	if !strings.Contains(out, "written from the starter config") {
		t.Errorf("init does not say it wrote the config:\n%s", out)
	}
	if code, out, errOut := brana(t, "check", "-c", file); code != exitOK {
		t.Fatalf("check of the config init wrote = %d\n%s%s", code, out, errOut)
	}
	keys := filepath.Join(dir, "data", "keys")
	for _, f := range []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "audit-signing.pem", "audit-signing.pub.pem", "console.pem"} {
		if _, err := os.Stat(filepath.Join(keys, f)); err != nil {
			t.Errorf("init did not make %s: %v", f, err)
		}
	}
	ssh, console, audit, password := match(t, sshFP, out), match(t, consoleFP, out), match(t, auditFP, out), match(t, passwordRE, out)

	t.Run("ssh-keygen", func(t *testing.T) {
		if _, err := exec.LookPath("ssh-keygen"); err != nil {
			t.Skipf("ssh-keygen not installed: %v", err)
		}
		b, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", filepath.Join(keys, "ssh_host_ed25519_key.pub")).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, b)
		}
		if f := strings.Fields(string(b)); len(f) < 2 || f[1] != ssh {
			t.Fatalf("ssh-keygen -lf says %q; init printed %s", b, ssh)
		}
		// The .pub file is the public half of the private key the gateway uses.
		derived, err := exec.Command("ssh-keygen", "-y", "-f", filepath.Join(keys, "ssh_host_ed25519_key")).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -y: %v: %s", err, derived)
		}
		pub, _ := os.ReadFile(filepath.Join(keys, "ssh_host_ed25519_key.pub"))
		if d, p := strings.Fields(string(derived)), strings.Fields(string(pub)); len(d) < 2 || len(p) < 2 || d[0] != p[0] || d[1] != p[1] {
			t.Fatalf("ssh-keygen -y of the host key gives %q; the .pub file has %q", derived, pub)
		}
	})

	t.Run("audit-pubkey", func(t *testing.T) {
		code, pem, _ := brana(t, "audit", "pubkey", "-c", file)
		kept, _ := os.ReadFile(filepath.Join(keys, "audit-signing.pub.pem"))
		if code != exitOK || pem != string(kept) {
			t.Fatalf("audit pubkey = %d %q; the file init wrote has %q", code, pem, kept)
		}
		if !strings.Contains(out, audit) {
			t.Fatal("no key id")
		}
	})

	t.Run("console", func(t *testing.T) {
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
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		var served string
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Timeout: 10 * time.Second, Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				served = strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":"))
				return nil
			}}}}
		base := "https://" + g.ConsoleAddr().String()
		resp, err := hc.PostForm(base+"/login", url.Values{"username": {"eva"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if served != console {
			t.Errorf("the console serves a certificate with SHA-256 %s; init printed %s", served, console)
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login with the printed password: %s; want 303", resp.Status)
		}
		resp, err = hc.Get(base + "/requests")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /requests after login: %s", resp.Status)
		}
	})

	t.Run("again", func(t *testing.T) {
		before := gwtest.Tree(t, dir)
		code, again, errOut := brana(t, "init", "-c", file, "--user", "nobody")
		if code != exitOK {
			t.Fatalf("second init = %d\n%s%s", code, again, errOut)
		}
		if a, b := fpBlock.FindString(out), fpBlock.FindString(again); a == "" || a != b {
			t.Errorf("fingerprints differ:\n%s\n%s", a, b)
		}
		if passwordRE.MatchString(again) || !strings.Contains(again, "kept as it is") || strings.Contains(again, "made ") {
			t.Errorf("second init:\n%s", again)
		}
		after := gwtest.Tree(t, dir)
		for p, s := range after {
			if strings.HasSuffix(p, "last-seen") || strings.Contains(p, "/audit") || strings.HasSuffix(p, ".db") || strings.HasSuffix(p, "data") {
				continue // the gateway ran in between; init never touches them
			}
			if before[p] != s {
				t.Errorf("second init changed or made %s", p)
			}
		}
	})
}

// A config that does not load: exit 1, the message names the field, and
// nothing is made.
func TestInitBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	file := initStarter(t, dir)
	os.MkdirAll(filepath.Dir(file), 0o755)
	text := strings.Replace(string(starter), "  durability: batch\n", "  durability: sometimes\n", 1)
	os.WriteFile(file, []byte(text), 0o640)
	code, out, errOut := brana(t, "init", "-c", file)
	if code != exitFailed || !strings.Contains(errOut, "audit.durability") || !strings.Contains(errOut, `"sometimes"`) ||
		!strings.Contains(errOut, "nothing was made") {
		t.Fatalf("init with a broken config = %d\n%s\n%s", code, out, errOut)
	}
	for _, p := range []string{filepath.Join(dir, "data"), filepath.Join(dir, "etc", "accounts.yaml")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a broken config made %s", p)
		}
	}
}

// The clock behind the last time brana saw is reported; certificates are
// not made with it unless --force.
func TestInitClockBehind(t *testing.T) {
	dir := t.TempDir()
	file := initStarter(t, dir)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	os.WriteFile(filepath.Join(data, "last-seen"), []byte(time.Now().Add(72*time.Hour).UTC().Format(time.RFC3339)+"\n"), 0o640)
	code, out, errOut := brana(t, "init", "-c", file)
	if code != exitFailed || !strings.Contains(out, "warning: the system clock") || !strings.Contains(errOut, "--force") {
		t.Fatalf("init with the clock behind = %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("brana init with the clock behind:\n%s%s", out, errOut)
	code, out, errOut = brana(t, "init", "-c", file, "--force")
	if code != exitOK || !strings.Contains(out, "warning: the system clock") || !strings.Contains(out, "time-dependent decisions as unknown") {
		t.Fatalf("init --force with the clock behind = %d\n%s\n%s", code, out, errOut)
	}
}

func TestInitPasswordAndUsage(t *testing.T) {
	dir := t.TempDir()
	file := initStarter(t, dir)
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
	code, out, errOut := brana(t, "init", "-c", file, "--engineer", "jana", "--password-stdin")
	if code != exitOK || passwordRE.MatchString(out) || !strings.Contains(out, `Engineer account "jana"`) {
		t.Fatalf("init --password-stdin = %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := brana(t, "init", "-c", file, "extra"); code != exitUsage {
		t.Errorf("init with an argument = %d; want %d", code, exitUsage)
	}
	if code, _, _ := brana(t, "init", "--no-such-flag"); code != exitUsage {
		t.Errorf("init with an unknown flag = %d; want %d", code, exitUsage)
	}
	// What the operator typed is checked before anything is made.
	fresh := t.TempDir()
	file = initStarter(t, fresh)
	if code, _, errOut := brana(t, "init", "-c", file, "--engineer", "Jana Nováková"); code != exitFailed || !strings.Contains(errOut, "not a valid user name") {
		t.Errorf("init with a bad user name = %d %q", code, errOut)
	}
	if ents, _ := os.ReadDir(fresh); len(ents) != 0 {
		t.Errorf("init with a bad user name made %v", ents)
	}
}

// The admin commands find the socket where the packaged config puts it,
// or in the data folder when only that exists.
func TestSocketDefault(t *testing.T) {
	dir := t.TempDir()
	run, data := filepath.Join(dir, "run.sock"), filepath.Join(dir, "data.sock")
	if got := socketDefault(run, data); got != run {
		t.Errorf("neither exists: %s; want %s", got, run)
	}
	os.WriteFile(data, nil, 0o600)
	if got := socketDefault(run, data); got != data {
		t.Errorf("only the data folder's exists: %s; want %s", got, data)
	}
	os.WriteFile(run, nil, 0o600)
	if got := socketDefault(run, data); got != run {
		t.Errorf("both exist: %s; want %s", got, run)
	}
}
