package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/config"
)

// syncBuffer is a log sink that the gateway's goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The console is served over HTTPS (TLS 1.2 at least) with a certificate
// made at first start, kept for the next start, and whose fingerprint is
// logged; targets report no answer before any request.
func TestConsoleServed(t *testing.T) {
	dir := t.TempDir()
	h, err := adminapi.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "accounts.yaml"), []byte("accounts:\n  - {user: eng, roles: [approver], hash: \""+h+"\"}\n"), 0o600)
	text := "version: 1\ngateway:\n  data_dir: data\nadmin:\n  accounts: accounts.yaml\nconsole:\n  listen: 127.0.0.1:0\n" +
		"listeners:\n  - {name: scada, address: 127.0.0.1:0, routes: [{target: plc}]}\n" +
		"targets:\n  - {name: plc, transport: tcp, address: 127.0.0.1:1}\n"
	file := filepath.Join(dir, "brana.yaml")
	os.WriteFile(file, []byte(text), 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}

	start := func() (*Gateway, *syncBuffer, func()) {
		var logs syncBuffer
		g, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		return g, &logs, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	g, logs, stop := start()
	fp := g.ConsoleFingerprint()
	if g.ConsoleAddr() == nil || len(fp) != 95 {
		t.Fatalf("ConsoleAddr %v, fingerprint %q", g.ConsoleAddr(), fp)
	}
	if !strings.Contains(logs.String(), fp) {
		t.Errorf("the log does not name the fingerprint %s:\n%s", fp, logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "keys", "console.pem")); err != nil {
		t.Errorf("certificate file: %v", err)
	}

	addr := g.ConsoleAddr().String()
	var seen string
	tlsCfg := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		seen = strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", sum[:]), " ", ":"))
		return nil
	}}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := client.Get("https://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || seen != fp {
		t.Fatalf("GET /login: %s, certificate %s; want 200 and %s", resp.Status, seen, fp)
	}
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if plain, err := http.Get("http://" + addr + "/login"); err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("the console answered plain HTTP")
		}
	}

	ts := g.targetStatus()
	if len(ts) != 1 || ts[0].Name != "plc" || ts[0].Protocol != "modbus/tcp" || ts[0].Address != "127.0.0.1:1" || ts[0].Reachable || !ts[0].LastResponse.IsZero() {
		t.Errorf("targets before any request: %+v", ts)
	}
	stop()

	g, logs, stop = start()
	defer stop()
	if g.ConsoleFingerprint() != fp {
		t.Fatalf("fingerprint after a restart %s; want the same certificate %s", g.ConsoleFingerprint(), fp)
	}
	if strings.Contains(logs.String(), "generated a self-signed") {
		t.Error("the restart generated a certificate again")
	}
}
