// Package gwtest starts a real brana gateway from a config string for
// scenario tests and benchmarks, on loopback, and stops it when the test ends.
package gwtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
)

// Gateway is a running gateway under test.
type Gateway struct {
	*gateway.Gateway
	Dir    string
	cancel context.CancelFunc
	done   chan error
}

// Start writes yaml to a temporary brana.yaml (data_dir relative to it), starts
// the gateway and registers its shutdown with tb.Cleanup.
func Start(tb testing.TB, yaml string) *Gateway {
	tb.Helper()
	file, cfg := WriteConfig(tb, yaml)
	dir := filepath.Dir(file)
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	g, err := gateway.New(cfg, log)
	if err != nil {
		tb.Fatalf("gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw := &Gateway{Gateway: g, Dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { gw.done <- g.Run(ctx) }()
	tb.Cleanup(func() { gw.Stop(tb) })
	return gw
}

// WriteConfig writes yaml to brana.yaml in a new temporary directory (so a
// relative data_dir lands beside it), checks that it loads, and returns the
// file and the loaded config. It is what Start runs on, and what a test that
// starts the gateway as a child process (brana run -c FILE) passes to it.
func WriteConfig(tb testing.TB, yaml string) (string, *config.Config) {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "brana.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	return file, cfg
}

// Stop stops the gateway and waits for it; safe to call twice.
func (g *Gateway) Stop(tb testing.TB) {
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.cancel = nil
	select {
	case err := <-g.done:
		if err != nil {
			tb.Errorf("gateway stopped with: %v", err)
		}
	case <-time.After(10 * time.Second):
		tb.Error("gateway did not stop within 10s")
	}
}

// ModbusAddr is the address of the named listener.
func (g *Gateway) ModbusAddr(listener string) string {
	return g.Addr(listener).String()
}

// Tree is every file and directory under dir with its mode, modification
// time and, for files, the SHA-256 of its contents: two Trees are equal
// when nothing under dir was written.
func Tree(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := fmt.Sprintf("%v %d", fi.Mode(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[p] = s
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
