package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/config"
)

// metricsConfig writes a minimal config with metrics lines appended and loads it.
func metricsConfig(t *testing.T, metrics string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text := "version: 1\ngateway:\n  data_dir: data\n" +
		"listeners:\n  - {name: scada, address: 127.0.0.1:0, routes: [{target: plc}]}\n" +
		"targets:\n  - {name: plc, transport: tcp, address: 127.0.0.1:1}\n" + metrics
	file := filepath.Join(dir, "brana.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The metrics listener is bound in New (its address is known before Run),
// served while Run runs, and closed when it returns; off, there is none.
func TestMetricsListener(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("ok/off", func(t *testing.T) {
		g, err := New(metricsConfig(t, ""), log)
		if err != nil {
			t.Fatal(err)
		}
		defer g.close()
		if a := g.MetricsAddr(); a != nil {
			t.Fatalf("MetricsAddr = %v without metrics.listen", a)
		}
	})

	t.Run("ok/served-until-stopped", func(t *testing.T) {
		cfg := metricsConfig(t, "metrics:\n  listen: 127.0.0.1:0\n")
		g, err := New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		addr := g.MetricsAddr()
		if addr == nil {
			t.Fatal("MetricsAddr is nil before Run")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		url := "http://" + addr.String() + "/healthz"
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /healthz never answered 200: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A reload cannot move the endpoint: that takes a restart.
		next := metricsConfig(t, "metrics:\n  listen: 127.0.0.1:9\n")
		if err := g.Reload(context.Background(), next); !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "metrics") {
			t.Errorf("Reload moving metrics.listen = %v; want ErrNeedsRestart naming metrics", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
			c.Close()
			t.Fatal("the metrics listener is still open after Run returned")
		}
	})

	t.Run("fail/port-taken", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		cfg := metricsConfig(t, "metrics:\n  listen: "+taken.Addr().String()+"\n")
		for range 2 { // the first attempt released everything it had opened
			if g, err := New(cfg, log); err == nil || g != nil || !strings.Contains(err.Error(), "metrics") {
				t.Fatalf("New = %v, %v; want an error naming metrics", g, err)
			}
		}
	})
}
