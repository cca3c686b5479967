package scenario

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/demo"
	"github.com/brana-ot/brana/testbench/lab"
)

// The README's promise: with `brana demo` running, mbpoll reads registers
// through the gateway; a write by the read-only party gets exception 01, the
// simulator's write counter stays 0, and both are in the audit file with
// party, rule and decision.
func TestDemo(t *testing.T) {
	needTool(t, "mbpoll", "-V")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var gw *gateway.Gateway
	var plant *lab.Lab
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{
			Dir: t.TempDir(), Out: &out, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			GatewayAdr: "127.0.0.1:0", PLCAdr: "127.0.0.1:0", SSHAdr: "127.0.0.1:0",
			Ready: func(g *gateway.Gateway, l *lab.Lab) { gw, plant = g, l; close(ready) },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("demo stopped with %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("demo did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not start in 10s")
	}
	host, port, _ := net.SplitHostPort(gw.Addr("scada").String())

	read, err := exec.Command("mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "1", "-c", "10", "-1", host).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll read: %v\n%s", err, read)
	}
	feeder := plant.Sims[0].PLC.Unit(1)
	for i := 0; i < 4; i++ {
		want := "[" + strconv.Itoa(i+1) + "]: \t" + strconv.Itoa(int(feeder.HoldingRegister(uint16(i))))
		if !strings.Contains(string(read), want) {
			t.Errorf("mbpoll output lacks %q:\n%s", want, read)
		}
	}

	write, _ := exec.Command("mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "101", host, "500").CombinedOutput()
	if !strings.Contains(string(write), "Illegal function") {
		t.Fatalf("mbpoll write was not refused with exception 01:\n%s", write)
	}
	if n := plant.Sims[0].PLC.Counters().Writes(1); n != 0 {
		t.Fatalf("the simulated feeder saw %d writes; want 0", n)
	}

	path := gw.AuditPath()
	var allowed, denied bool
	deadline := time.Now().Add(5 * time.Second)
	for !(allowed && denied) && time.Now().Before(deadline) {
		for _, r := range readAudit(t, path) {
			if r.Type != "command" || r.Party != "monitoring" || r.PartyName == "" || r.Rule != "monitoring-read" {
				continue
			}
			allowed = allowed || (r.fc() == 3 && r.Decision == "allow")
			denied = denied || (r.Class == "write" && r.Decision == "deny" && r.Exception == 1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !allowed || !denied {
		t.Fatalf("audit file lacks the allowed read (%v) or the denied write (%v)", allowed, denied)
	}
	for _, w := range []string{"mbpoll -m tcp -p " + port, "policy explain"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("the demo's instructions lack %q", w)
		}
	}
}
