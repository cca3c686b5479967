package sshlink

import (
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"fail/party-limit", func(t *testing.T) {
			e := start(t, func(c *Config) { c.MaxConnsPerParty = 1 })
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			exchange(t, f.dial(t), "first", 5*time.Second)
			r := e.ssh(e.key, "acme", nil, "status")
			if r.code != 255 || !strings.Contains(r.stderr, "brana: acme already has 1 connections open") {
				t.Fatalf("second connection of the party: %s", r)
			}
			e.b.findRefusal(t, "auth publickey", "too many connections for party acme (max 1)")
		}},
		{"fail/source-limit", func(t *testing.T) {
			e := start(t, func(c *Config) { c.MaxConnsPerSource = 1 })
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			exchange(t, f.dial(t), "first", 5*time.Second)
			r := e.ssh(e.key, "acme", nil, "status")
			if r.code != 255 {
				t.Fatalf("second connection from the source: %s", r)
			}
			e.b.findRefusal(t, "connection", "too many connections from 127.0.0.1 (max 1)")
			if r := e.ssh(e.key, "acme", []string{"-b", "127.0.0.2"}, "status"); r.code != 0 {
				t.Fatalf("connection from another source: %s", r)
			}
		}},
		{"fail/channel-limit", func(t *testing.T) {
			e := start(t, func(c *Config) { c.MaxChannels = 1 })
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			first := f.dial(t)
			exchange(t, first, "first", 5*time.Second)
			second := f.dial(t)
			expectClosed(t, second, 5*time.Second)
			e.b.findRefusal(t, "channel direct-tcpip", "1 channels open (max 1)")
			exchange(t, first, "still there", 5*time.Second)
			if n := e.b.serveCount(); n != 1 {
				t.Fatalf("Serve called %d times", n)
			}
		}},
		{"ok/idle-timeout", func(t *testing.T) {
			e := start(t, func(c *Config) { c.IdleTimeout = "1s" })
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			exchange(t, f.dial(t), "then silence", 5*time.Second)
			select {
			case <-f.done:
			case <-time.After(5 * time.Second):
				t.Fatal("idle connection not closed")
			}
			waitFor(t, 3*time.Second, "ssh.close", func() bool { return e.b.hasEvent("ssh.close", "idle for 1s") })
		}},
		{"ok/kill", func(t *testing.T) {
			e := start(t, nil)
			f := e.startForward(e.key, "acme", "feeder-plc:502")
			exchange(t, f.dial(t), "hello", 5*time.Second)
			conns := e.srv.Conns()
			if len(conns) != 1 || conns[0].Identity.Party != "acme" || conns[0].Channels != 1 ||
				!conns[0].Identity.Source.Addr().IsLoopback() || conns[0].Identity.Conn != conns[0].ID {
				t.Fatalf("Conns() = %+v", conns)
			}
			if !e.srv.Kill(conns[0].ID, "engineer on duty") {
				t.Fatal("Kill found no connection")
			}
			select {
			case <-f.done:
			case <-time.After(5 * time.Second):
				t.Fatal("killed connection still open")
			}
			waitFor(t, 3*time.Second, "ssh.close", func() bool { return e.b.hasEvent("ssh.close", "killed: engineer on duty") })
			waitFor(t, 3*time.Second, "unregistered", func() bool { return len(e.srv.Conns()) == 0 })
			if e.srv.Kill(conns[0].ID, "again") {
				t.Fatal("Kill of an ended connection returned true")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}
