package sshlink

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pub")
	os.WriteFile(ca, []byte("# vendor CA\ncert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdQ6PRlBEuLJdRIpHmIiS5B4uL0ACl8jB+XQXnT6Vbq acme-ca\n"), 0o644)
	empty := filepath.Join(dir, "empty.pub")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	badKey := filepath.Join(dir, "bad_key")
	os.WriteFile(badKey, []byte("not a key"), 0o600)

	t.Run("ok/defaults", func(t *testing.T) {
		c := Config{Listen: "127.0.0.1:2222", HostKey: filepath.Join(dir, "missing"), TrustedUserCAs: []string{ca}}
		if p := c.Check(); len(p) != 0 {
			t.Fatal(p)
		}
		if c.MaxConnsPerParty != 4 || c.MaxConnsPerSource != 8 || c.AuthPerMinute != 10 || c.MaxChannels != 8 ||
			c.idleTimeout != 15*time.Minute || c.holdFor != 2*time.Minute || len(c.cas) != 1 {
			t.Fatalf("defaults: %+v", c)
		}
	})
	t.Run("ok/disabled", func(t *testing.T) {
		var c Config
		if p := c.Check(); len(p) != 0 || c.Enabled() {
			t.Fatal(p)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"fail/listen", Config{Listen: "2222", HostKey: "k"}, "listen: "},
		{"fail/no-host-key", Config{Listen: ":2222"}, "host_key: required"},
		{"fail/bad-host-key", Config{Listen: ":2222", HostKey: badKey}, "host_key: "},
		{"fail/missing-ca", Config{TrustedUserCAs: []string{filepath.Join(dir, "nope.pub")}}, "trusted_user_cas[0]: "},
		{"fail/empty-ca", Config{TrustedUserCAs: []string{empty}}, "trusted_user_cas[0]: " + empty + " holds no public key"},
		{"fail/negative", Config{MaxChannels: -1}, "max_channels: -1 is negative"},
		{"fail/idle", Config{IdleTimeout: "soon"}, `idle_timeout: "soon" is not a duration`},
		{"fail/hold", Config{HoldFor: "2h"}, "hold_for: 2h is longer than 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.cfg.Check()
			if !slices.ContainsFunc(p, func(m string) bool { return strings.HasPrefix(m, tc.want) }) {
				t.Fatalf("Check() = %q, want a message starting %q", p, tc.want)
			}
		})
	}
}

func TestHostKeyKept(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys", "ssh_host_ed25519_key")
	cfg := Config{Listen: "127.0.0.1:0", HostKey: file}
	s1, err := New(cfg, newFakeBackend(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	s2, err := New(cfg, newFakeBackend(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s1.HostKeyFingerprint() != s2.HostKeyFingerprint() || !strings.HasPrefix(s1.HostKeyFingerprint(), "SHA256:") {
		t.Fatalf("host key changed across starts: %s vs %s", s1.HostKeyFingerprint(), s2.HostKeyFingerprint())
	}
	if !strings.HasPrefix(s1.HostPublicKey(), "ssh-ed25519 ") {
		t.Fatalf("HostPublicKey() = %q", s1.HostPublicKey())
	}
}
