package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/policy"
)

// The starter config loads as it is, once the accounts file it names
// exists (brana init makes it), and its policy compiles. It admits nobody:
// its one party is on a documentation network.
func TestStarter(t *testing.T) {
	for _, want := range []string{"data_dir: /var/lib/brana", "accounts: /etc/brana/accounts.yaml", "socket: /run/brana/admin.sock",
		"listen: 127.0.0.1:8443", "durability: batch"} {
		if !bytes.Contains(Starter, []byte(want)) {
			t.Errorf("the starter config has no %q", want)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "etc", "brana.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	if err := os.WriteFile(file, StarterUnder(dir), 0o640); err != nil {
		t.Fatal(err)
	}

	t.Run("fail/no-accounts-file", func(t *testing.T) {
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), "admin.accounts") || !strings.Contains(err.Error(), "brana init") {
			t.Fatalf("Load before brana init = %v; want the one problem, admin.accounts, naming brana init", err)
		}
		if n := strings.Count(err.Error(), "\n"); n != 0 {
			t.Errorf("more than one problem:\n%v", err)
		}
	})

	h, err := adminapi.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	accounts := filepath.Join(dir, "etc", "accounts.yaml")
	if err := os.WriteFile(accounts, []byte("accounts:\n  - {user: eva, roles: [approver], hash: \""+h+"\"}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	t.Run("ok/loads", func(t *testing.T) {
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		pol, err := policy.Compile(c.Spec, c.TargetNames())
		if err != nil {
			t.Fatal(err)
		}
		if len(pol.Parties()) != 1 || len(pol.Rules()) != 1 || len(c.Targets) != 1 || len(c.Listeners) != 1 {
			t.Errorf("parties %d, rules %d, targets %d, listeners %d; want one each", len(pol.Parties()), len(pol.Rules()), len(c.Targets), len(c.Listeners))
		}
		if !c.SSH.Enabled() || !c.Console.Enabled() || c.Console.Accounts != accounts || c.Admin.Socket != filepath.Join(dir, "run", "admin.sock") {
			t.Errorf("ssh %q, console %q with accounts %q, admin socket %q", c.SSH.Listen, c.Console.Listen, c.Console.Accounts, c.Admin.Socket)
		}
		if c.Audit.Durability != "batch" || c.Audit.SyncInterval.D().Seconds() != 1 {
			t.Errorf("audit durability %s, sync interval %v", c.Audit.Durability, c.Audit.SyncInterval.D())
		}
		for _, p := range pol.Parties() {
			for _, n := range p.Networks {
				if !strings.HasPrefix(n.String(), "192.0.2.") {
					t.Errorf("party %s network %s is not in the documentation range 192.0.2.0/24", p.ID, n)
				}
			}
		}
	})
	t.Run("ok/account-files", func(t *testing.T) {
		if got := AccountFiles(file, StarterUnder(dir)); len(got) != 1 || got[0] != accounts {
			t.Errorf("AccountFiles = %q; want [%s]", got, accounts)
		}
		if got := AccountFiles(file, []byte("admin: {accounts: a.yaml}\nconsole: {accounts: b.yaml}\nnonsense: [")); got != nil {
			t.Errorf("AccountFiles of broken YAML = %q", got)
		}
		got := AccountFiles(file, []byte("admin: {accounts: a.yaml}\nconsole: {accounts: /x/b.yaml}\nunknown: 1\n"))
		if len(got) != 2 || got[0] != filepath.Join(dir, "etc", "a.yaml") || got[1] != "/x/b.yaml" {
			t.Errorf("AccountFiles = %q", got)
		}
	})
}
