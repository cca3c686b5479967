package sshlink

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSession(t *testing.T) {
	t.Parallel()
	// refused expects the vendor message on stderr, exit status 1 (255 when
	// ssh gives up on its own), a refusal record, and no Exec or Serve.
	refused := func(t *testing.T, e *env, r result, what, reasonPart, vendorMsg string) {
		t.Helper()
		t.Logf("vendor sees: %s", r)
		if r.code == 0 || !strings.Contains(r.stderr, "brana: "+vendorMsg) {
			t.Fatalf("want refusal %q: %s", vendorMsg, r)
		}
		e.b.findRefusal(t, what, reasonPart)
		if calls := e.b.execCalls(); len(calls) != 0 {
			t.Fatalf("Exec ran: %q", calls)
		}
		e.noServe()
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ok/exec-request", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "request", "feeder-plc", "--classes", "read,write", "--for", "2h", "--reason", `"TKT-1234 replace pump"`)
			if r.code != 0 || !strings.Contains(r.stdout, "request R-0001 for feeder-plc created") {
				t.Fatalf("request: %s", r)
			}
			want := []string{"request", "feeder-plc", "--classes", "read,write", "--for", "2h", "--reason", "TKT-1234 replace pump"}
			if calls := e.b.execCalls(); len(calls) != 1 || !slices.Equal(calls[0], want) {
				t.Fatalf("Exec got %q, want %q", calls, want)
			}
		}},
		{"ok/exec-status", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "status")
			if r.code != 0 || r.stdout != "party acme: request R-0001 pending\n" {
				t.Fatalf("status: %s", r)
			}
		}},
		{"ok/exec-help", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "help")
			if r.code != 0 || !strings.Contains(r.stdout, "usage:") || !strings.Contains(r.stdout, "ssh -N -L LOCALPORT:TARGET:PORT") {
				t.Fatalf("help: %s", r)
			}
		}},
		{"fail/exec-unknown", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "cat", "/etc/passwd")
			if r.code != 1 || !strings.Contains(r.stderr, "usage:") {
				t.Fatalf("want usage and exit 1: %s", r)
			}
			refused(t, e, r, "exec", `unknown command "cat"`, `unknown command "cat"`)
		}},
		{"fail/exec-unterminated-quote", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil, "status", `"oops`)
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			refused(t, e, r, "exec", "unterminated quote", "cannot read that command")
		}},
		{"fail/shell", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", nil)
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			refused(t, e, r, "request shell", "shell refused", "there is no shell here")
		}},
		{"fail/pty", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", []string{"-tt"}, "status")
			refused(t, e, r, "request pty-req", "pty-req", msgPTY)
		}},
		{"fail/subsystem", func(t *testing.T) {
			e := start(t, nil)
			r := e.ssh(e.key, "acme", []string{"-s"}, "sftp")
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			refused(t, e, r, "request subsystem", `subsystem "sftp" refused`, msgSubsystem)
		}},
		{"fail/agent-forward", func(t *testing.T) {
			e := start(t, nil)
			if _, err := exec.LookPath("ssh-agent"); err != nil {
				t.Skip("ssh-agent not installed")
			}
			sock := filepath.Join(e.dir, "agent.sock")
			agent := exec.Command("ssh-agent", "-D", "-a", sock)
			if err := agent.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
			waitFor(t, 3*time.Second, "agent socket", func() bool { return fileExists(sock) })
			r := e.sshEnv([]string{"SSH_AUTH_SOCK=" + sock}, e.key, "acme", []string{"-A"}, "status")
			refused(t, e, r, "request auth-agent-req@openssh.com", "agent forwarding", msgAgent)
		}},
		{"fail/x11", func(t *testing.T) {
			e := start(t, nil)
			r := e.sshEnv([]string{"DISPLAY=127.0.0.1:99"}, e.key, "acme", []string{"-Y"}, "status")
			refused(t, e, r, "request x11-req", "X11", msgX11)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}
