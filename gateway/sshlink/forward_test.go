package sshlink

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestForward(t *testing.T) {
	t.Parallel()
	// refused runs ssh -N -L to dest, expects the forwarded connection to be
	// closed, a refusal record and the vendor message on ssh's stderr.
	refused := func(t *testing.T, e *env, key, user, dest, reasonPart, vendorMsg string) {
		t.Helper()
		f := e.startForward(key, user, dest)
		c := f.dial(t)
		expectClosed(t, c, 5*time.Second)
		e.b.findRefusal(t, "channel direct-tcpip", reasonPart)
		f.stop()
		t.Logf("vendor sees: %s", f.stderr.String())
		if !strings.Contains(f.stderr.String(), "administratively prohibited: brana: "+vendorMsg) {
			t.Errorf("ssh stderr lacks %q:\n%s", vendorMsg, f.stderr.String())
		}
		e.noServe()
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ok/forward-to-target", func(t *testing.T) {
			e := start(t, nil)
			f := e.startForwardTCP(e.key, "acme", "feeder-plc:502")
			c := f.dial(t)
			exchange(t, c, "\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01", 5*time.Second)
			if n := e.b.serveCount(); n != 1 {
				t.Fatalf("Serve called %d times", n)
			}
			waitFor(t, 3*time.Second, "channel.open", func() bool { return e.b.hasEvent("channel.open", "feeder-plc port 502") })
			c.Close()
			waitFor(t, 3*time.Second, "channel.close", func() bool { return e.b.hasEvent("channel.close", "feeder-plc") })
			if rs := e.b.refusals(); len(rs) != 0 {
				t.Fatalf("unexpected refusals: %+v", rs)
			}
		}},
		{"ok/opc-ua-target", func(t *testing.T) {
			e := start(t, nil)
			f := e.startForwardTCP(e.key, "acme", "line-opc:4840")
			exchange(t, f.dial(t), "HELF", 5*time.Second)
		}},
		{"fail/ip-destination", func(t *testing.T) {
			e := start(t, nil)
			refused(t, e, e.key, "acme", "127.0.0.1:502", "is an address", msgAddress)
		}},
		{"fail/ipv6-destination", func(t *testing.T) {
			e := start(t, nil)
			refused(t, e, e.key, "acme", "[::1]:502", "is an address", msgAddress)
		}},
		{"fail/not-a-target", func(t *testing.T) {
			e := start(t, nil)
			refused(t, e, e.key, "acme", "historian:502", "is not a target", `"historian" is not a target on this gateway`)
		}},
		{"fail/wrong-port", func(t *testing.T) {
			e := start(t, nil)
			refused(t, e, e.key, "acme", "feeder-plc:22", "takes port 502 only", "feeder-plc takes port 502 only")
		}},
		{"fail/denied", func(t *testing.T) {
			e := start(t, nil)
			e.b.setAdmit(func(Identity, string) Admission {
				return Admission{Verdict: Deny, Reason: "outside the maintenance window", RequestID: "R-0007"}
			})
			refused(t, e, e.key, "acme", "feeder-plc:502", "outside the maintenance window (request R-0007)",
				"outside the maintenance window (request R-0007)")
		}},
		{"fail/zero-admission-denies", func(t *testing.T) {
			e := start(t, nil)
			e.b.setAdmit(func(Identity, string) Admission { return Admission{} })
			refused(t, e, e.key, "acme", "feeder-plc:502", "denied", "access to feeder-plc denied")
		}},
		{"fail/cert-without-port-forwarding", func(t *testing.T) {
			e := start(t, nil)
			k := keygen(t, e.dir, "tech")
			signCert(t, e.ca, k, "jan.novak@acme", "acme-tech", "-5m:+1h", "no-port-forwarding")
			e.b.enrollCert("acme-tech", "acme")
			refused(t, e, k, "acme-tech", "feeder-plc:502", "lacks permit-port-forwarding", "your certificate does not permit port forwarding")
		}},
		{"fail/remote-forward", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", "2502:feeder-plc:502"})
			if r.code == 0 || !strings.Contains(r.stderr, "remote port forwarding failed") {
				t.Fatalf("want ssh -R to fail: %s", r)
			}
			e.b.findRefusal(t, "global tcpip-forward", "remote forwarding")
			e.noServe()
		}},
		{"ok/hold-then-approve", func(t *testing.T) {
			e := start(t, nil)
			e.b.setAdmit(func(Identity, string) Admission {
				return Admission{Verdict: Hold, RequestID: "R-0042", Wait: func(ctx context.Context) bool {
					select {
					case <-time.After(300 * time.Millisecond):
						return true
					case <-ctx.Done():
						return false
					}
				}}
			})
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			c := f.dial(t)
			t0 := time.Now()
			exchange(t, c, "after approval", 5*time.Second)
			if d := time.Since(t0); d < 250*time.Millisecond {
				t.Fatalf("channel opened after %s, before the approval", d)
			}
			if !e.b.hasEvent("channel.held", "R-0042") {
				t.Fatal("no channel.held event")
			}
		}},
		{"fail/hold-timeout", func(t *testing.T) {
			e := start(t, func(c *Config) { c.HoldFor = "500ms" })
			e.b.setAdmit(func(Identity, string) Admission {
				return Admission{Verdict: Hold, RequestID: "R-0042", Wait: func(ctx context.Context) bool {
					<-ctx.Done()
					return false
				}}
			})
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			c := f.dial(t)
			t0 := time.Now()
			expectClosed(t, c, 5*time.Second)
			if d := time.Since(t0); d < 450*time.Millisecond {
				t.Fatalf("closed after %s, before hold_for", d)
			}
			e.b.findRefusal(t, "channel direct-tcpip", "held 500ms without approval (request R-0042)")
			f.stop()
			if !strings.Contains(f.stderr.String(), "waiting for approval") || !strings.Contains(f.stderr.String(), "R-0042") {
				t.Errorf("ssh stderr does not name the pending request:\n%s", f.stderr.String())
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
