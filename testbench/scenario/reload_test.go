package scenario

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// A reload is all or nothing: a bad file or a change only a restart can apply
// leaves the old policy in force; a good one takes effect for the next
// command, ends sessions whose party is no longer admitted, and every attempt
// is an audit record with the policy digests.
func TestReload(t *testing.T) {
	plc, addr := startPLC(t, map[byte]string{1: "feeder"})
	cfg := tcpConfig(addr, "")
	gw := gwtest.Start(t, cfg)
	file := filepath.Join(gw.Dir, "brana.yaml")
	reload := func(text string) error {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return gw.ReloadFile(context.Background(), file)
	}
	eng := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	mon := dialFrom(t, gw.ModbusAddr("scada"), monitoringIP)
	if resp := eng.call(1, pduWriteSingle(100, 500)); resp[0] != 6 {
		t.Fatalf("write before any reload: % x", resp)
	}
	writes := plc.Counters().Writes(1)
	digest0 := gw.Policy().Digest()

	t.Run("fail/unparsable-file-keeps-old-policy", func(t *testing.T) {
		if err := reload("version: 1\nrules: [\n"); err == nil {
			t.Fatal("a broken file was accepted")
		}
		if gw.Policy().Digest() != digest0 {
			t.Fatal("the policy changed after a rejected reload")
		}
		if resp := eng.call(1, pduWriteSingle(101, 7)); resp[0] != 6 {
			t.Fatalf("write after a rejected reload: % x", resp)
		}
		writes++
	})

	t.Run("fail/listener-change-needs-restart", func(t *testing.T) {
		err := reload(strings.Replace(cfg, "    address: 127.0.0.1:0\n", "    address: 127.0.0.1:0\n    max_connections: 3\n", 1))
		if !errors.Is(err, gateway.ErrNeedsRestart) {
			t.Fatalf("reload = %v; want ErrNeedsRestart", err)
		}
		if gw.Policy().Digest() != digest0 {
			t.Fatal("the policy changed after a rejected reload")
		}
	})

	t.Run("ok/narrower-bounds-apply-to-the-next-command", func(t *testing.T) {
		if err := reload(strings.Replace(cfg, "values: {min: 0, max: 5000}", "values: {min: 0, max: 100}", 1)); err != nil {
			t.Fatalf("reload: %v", err)
		}
		expectException(t, eng.call(1, pduWriteSingle(100, 500)), 6, 3)
		if n := plc.Counters().Writes(1); n != writes {
			t.Fatalf("PLC saw %d writes; want %d: the write above the new bound reached it", n, writes)
		}
	})

	t.Run("ok/removed-party-loses-its-session", func(t *testing.T) {
		noEng := strings.Replace(cfg, "    networks: [127.0.0.2/32]\n", "    networks: [127.0.0.9/32]\n", 1)
		if err := reload(noEng); err != nil {
			t.Fatalf("reload: %v", err)
		}
		eng.expectClosed(time.Second)
		if resp := mon.call(1, pduReadHolding(0, 2)); resp[0] != 3 {
			t.Fatalf("monitoring's session should go on: % x", resp)
		}
	})

	var reloaded, rejected int
	for _, r := range readAudit(t, gw.AuditPath()) {
		if r.Type != "config.load" {
			continue
		}
		switch r.Status {
		case "reloaded":
			reloaded++
			if reloaded == 1 && !strings.Contains(r.Detail, "sha256:"+digest0+" -> sha256:") {
				t.Errorf("first reload record does not name the old and new digests: %s", r.Detail)
			}
		case "rejected":
			rejected++
		}
	}
	if reloaded != 2 || rejected != 2 {
		t.Fatalf("audit has %d reloaded and %d rejected config.load records; want 2 and 2", reloaded, rejected)
	}
	var closed bool
	for _, r := range readAudit(t, gw.AuditPath()) {
		closed = closed || (r.Type == "session.close" && r.Party == "engineering" && strings.Contains(r.Status, "policy reload"))
	}
	if !closed {
		t.Fatal("no session.close record says the reload ended the engineering session")
	}
}
