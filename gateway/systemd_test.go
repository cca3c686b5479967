package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/config"
)

// Under systemd (Type=notify, WatchdogSec=) the gateway says READY=1 once it
// serves, feeds the watchdog with a status line, and says STOPPING=1 when
// shutdown begins. The test plays systemd's part with its own socket.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")

	text := "version: 1\ngateway:\n  data_dir: data\nlisteners:\n  - {name: scada, address: 127.0.0.1:0, routes: [{target: plc}]}\n" +
		"targets:\n  - {name: plc, transport: tcp, address: 127.0.0.1:1}\n"
	file := filepath.Join(dir, "brana.yaml")
	os.WriteFile(file, []byte(text), 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	next := func() string {
		t.Helper()
		mgr.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return string(buf[:n])
	}
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=serving; 0 sessions; audit record ") {
		t.Fatalf("first notification %q, want READY=1 with a status", ready)
	}
	// The listener serves by the time READY=1 arrives.
	c, err := net.Dial("tcp", g.Addr("scada").String())
	if err != nil {
		t.Fatalf("READY=1 sent before the listener serves: %v", err)
	}
	c.Close()
	for range 2 {
		if got := next(); !strings.HasPrefix(got, "WATCHDOG=1\nSTATUS=serving;") {
			t.Fatalf("got %q, want a watchdog keep-alive", got)
		}
	}
	cancel()
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if !strings.HasPrefix(got, "WATCHDOG=1") {
			t.Fatalf("got %q while stopping", got)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
