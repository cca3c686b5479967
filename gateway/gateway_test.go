package gateway

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/config"
)

// A gateway that cannot start (here: its listener's port is taken) says why
// and releases what it had opened; it never crashes.
func TestNewFailsCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	text := "version: 1\ngateway:\n  data_dir: data\nlisteners:\n  - name: a\n    address: " + taken.Addr().String() +
		"\n    routes: [{target: t}]\ntargets:\n  - {name: t, transport: tcp, address: 127.0.0.1:1}\n"
	file := filepath.Join(dir, "brana.yaml")
	os.WriteFile(file, []byte(text), 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := New(cfg, log)
	if err == nil || g != nil || !strings.Contains(err.Error(), "listener a") {
		t.Fatalf("New = %v, %v; want an error naming the listener", g, err)
	}
	// Everything was released: a second attempt gets as far (the audit log
	// and the admin socket are free again).
	if _, err := New(cfg, log); err == nil || !strings.Contains(err.Error(), "listener a") {
		t.Fatalf("second New = %v; want the same listener error", err)
	}
}
