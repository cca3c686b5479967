package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/adminapi"
)

// writeAccounts writes a valid accounts file with one approver.
func writeAccounts(t *testing.T, path string) {
	t.Helper()
	h, err := adminapi.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	text := "accounts:\n  - {user: eng, roles: [approver], hash: \"" + h + "\"}\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleConfig(t *testing.T) {
	dir := t.TempDir()
	writeAccounts(t, filepath.Join(dir, "admin.yaml"))
	writeAccounts(t, filepath.Join(dir, "engineers.yaml"))
	file := filepath.Join(dir, "brana.yaml")
	admin := "admin:\n  accounts: admin.yaml\n"

	t.Run("ok/off", func(t *testing.T) {
		c, err := Parse(file, []byte(good))
		if err != nil {
			t.Fatal(err)
		}
		if c.Console.Enabled() || c.Console.Certificate != "" || c.Console.Tokens != "" {
			t.Fatalf("console without listen: %+v", c.Console)
		}
	})
	t.Run("ok/defaults", func(t *testing.T) {
		c, err := Parse(file, []byte(good+admin+"console:\n  listen: 127.0.0.1:8443\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := Console{Listen: "127.0.0.1:8443", Certificate: filepath.Join(dir, "data", "keys", "console.pem"),
			Accounts: filepath.Join(dir, "admin.yaml"), Tokens: filepath.Join(dir, "data", "console-tokens.json")}
		if got := c.Console; got.Listen != want.Listen || got.Certificate != want.Certificate || got.Accounts != want.Accounts || got.Tokens != want.Tokens {
			t.Fatalf("console = %+v\nwant %+v", got, want)
		}
	})
	t.Run("ok/explicit", func(t *testing.T) {
		c, err := Parse(file, []byte(good+"console:\n  listen: \"[::1]:0\"\n  certificate: tls/console.pem\n"+
			"  hosts: [gw.example, 10.0.0.5, \"fd00::5\"]\n  accounts: engineers.yaml\n  tokens: /var/lib/brana/tokens.json\n"))
		if err != nil {
			t.Fatal(err)
		}
		cc := c.Console
		if cc.Certificate != filepath.Join(dir, "tls", "console.pem") || cc.Accounts != filepath.Join(dir, "engineers.yaml") ||
			cc.Tokens != "/var/lib/brana/tokens.json" || strings.Join(cc.Hosts, ",") != "gw.example,10.0.0.5,fd00::5" {
			t.Fatalf("console = %+v", cc)
		}
	})

	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"fail/listen", admin + "console:\n  listen: 8443\n", []string{"console.listen", "not host:port"}},
		{"fail/port", admin + "console:\n  listen: 127.0.0.1:https\n", []string{"console.listen"}},
		{"fail/no-accounts", "console:\n  listen: 127.0.0.1:8443\n", []string{"console.accounts", "nobody could log in"}},
		{"fail/bad-accounts", "console:\n  listen: 127.0.0.1:8443\n  accounts: missing.yaml\n", []string{"console.accounts"}},
		{"fail/host", admin + "console:\n  listen: 127.0.0.1:8443\n  hosts: [\"gw example\"]\n", []string{"console.hosts[0]"}},
		{"fail/unknown-key", admin + "console:\n  listen: 127.0.0.1:8443\n  port: 1\n", []string{`unknown key "port"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(file, []byte(good+tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
