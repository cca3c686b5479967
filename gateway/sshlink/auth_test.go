package sshlink

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ok/key", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "status")
			if r.code != 0 || !strings.Contains(r.stdout, "party acme") {
				t.Fatalf("status: %s", r)
			}
			waitFor(t, 3*time.Second, "ssh.open", func() bool { return e.b.hasEvent("ssh.open", "ssh key SHA256:") })
		}},
		{"ok/certificate", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "-5m:+1h")
			e.b.enrollCert("acme-tech", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 0 || !strings.Contains(r.stdout, "party acme") {
				t.Fatalf("status: %s", r)
			}
			waitFor(t, 3*time.Second, "ssh.open", func() bool {
				return e.b.hasEvent("ssh.open", `ssh certificate "jan.novak@acme" serial 42`)
			})
			// OpenSSH offered the plain key first: noted, not a refusal.
			if !e.b.hasEvent("ssh.open", "refused before: key SHA256:") {
				t.Error("ssh.open does not note the key refused before the certificate")
			}
			if rs := e.b.refusals(); len(rs) != 0 {
				t.Errorf("refusals for a good login: %+v", rs)
			}
		}},
		{"fail/wrong-principal", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "someone-else", "-5m:+1h")
			e.b.enrollCert("acme-tech", "acme")
			e.b.enrollCert("someone-else", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, `not valid for user "acme-tech"`) {
				t.Fatalf("want refusal naming the user: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "not among the principals")
		}},
		{"fail/expired-cert", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "20200101:20200201")
			e.b.enrollCert("acme-tech", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "expired at 2020-02-01") {
				t.Fatalf("want expiry message: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "expired at")
		}},
		{"fail/not-yet-valid-cert", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "+1h:+2h")
			e.b.enrollCert("acme-tech", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "is not valid before") {
				t.Fatalf("want not-yet-valid message: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "not valid before")
		}},
		{"fail/cert-from-untrusted-ca", func(t *testing.T) {
			e := start(t, nil)
			other := keygen(t, e.dir, "other-ca")
			k := keygen(t, e.dir, "tech")
			signCert(t, other, k, "jan.novak@acme", "acme-tech", "-5m:+1h")
			e.b.enrollCert("acme-tech", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "CA is not trusted") {
				t.Fatalf("want untrusted CA message: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "signed by untrusted CA SHA256:")
		}},
		{"fail/cert-force-command", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "-5m:+1h", "force-command=status")
			e.b.enrollCert("acme-tech", "acme")
			r := e.ssh(k, "acme-tech", nil, "status")
			if r.code != 255 {
				t.Fatalf("certificate with force-command accepted: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "force-command")
		}},
		{"fail/unknown-key", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "stranger")
			r := e.ssh(k, "acme", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
				t.Fatalf("want permission denied: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "not enrolled")
			if len(e.b.execCalls()) != 0 {
				t.Fatal("Exec ran for an unknown key")
			}
		}},
		{"fail/password-only", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", []string{"-o", "PreferredAuthentications=password,keyboard-interactive"}, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
				t.Fatalf("want only publickey offered: %s", r)
			}
			e.b.findRefusal(t, "auth", "no acceptable public key")
		}},
		{"ok/cert-expires-mid-session", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "-1m:+3s")
			e.b.enrollCert("acme-tech", "acme")
			f := e.startForward(k, "acme-tech", "feeder-plc:502")
			c := f.dial(t)
			exchange(t, c, "before expiry", 3*time.Second)
			select {
			case <-f.done:
			case <-time.After(6 * time.Second):
				t.Fatal("session outlived its certificate")
			}
			e.b.findRefusal(t, "certificate", "expired")
			waitFor(t, 3*time.Second, "ssh.close", func() bool { return e.b.hasEvent("ssh.close", "certificate expired") })
		}},
		{"fail/brute-force", func(t *testing.T) {
			e := start(t, func(c *Config) { c.AuthPerMinute = 4 })
			bad := keygen(t, e.dir, "guess")
			var took []time.Duration
			for range 3 {
				r := e.ssh(bad, "acme", nil, "status")
				if r.code != 255 {
					t.Fatalf("unknown key accepted: %s", r)
				}
				took = append(took, r.took)
			}
			// The fourth failure is slowed the most; meanwhile another source
			// gets in at once.
			var wg sync.WaitGroup
			var fourth result
			wg.Go(func() { fourth = e.ssh(bad, "acme", nil, "status") })
			time.Sleep(100 * time.Millisecond)
			other := e.ssh(e.key, "acme", []string{"-b", "127.0.0.2"}, "status")
			wg.Wait()
			took = append(took, fourth.took)
			if other.code != 0 || other.took > 2*time.Second {
				t.Fatalf("client from 127.0.0.2 during the attack: %s", other)
			}
			if d := took[3] - took[0]; d < 500*time.Millisecond {
				t.Fatalf("failures not slowed: %v", took)
			}
			// Now 127.0.0.1 is refused, even with a good key, and quickly.
			for _, k := range []string{bad, e.key} {
				r := e.ssh(k, "acme", nil, "status")
				if r.code != 255 || !strings.Contains(r.stderr, "too many failed authentication attempts from 127.0.0.1") {
					t.Fatalf("want refusal for the rest of the minute: %s", r)
				}
				if r.took > 2*time.Second {
					t.Fatalf("refusal took %s", r.took)
				}
			}
			e.b.findRefusal(t, "auth publickey", "too many failed authentication attempts")
			// After a few explanations, connections are dropped right away.
			for range 3 {
				e.ssh(bad, "acme", nil, "status")
			}
			e.b.findRefusal(t, "connection", "dropped")
			// Other sources still get in.
			if r := e.ssh(e.key, "acme", []string{"-b", "127.0.0.2"}, "status"); r.code != 0 {
				t.Fatalf("client from 127.0.0.2 after the attack: %s", r)
			}
			e.noServe()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}
