package browser_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/png"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/browser"
)

// TestSmoke checks that chromium renders an HTTPS page with a self-signed
// certificate at the desktop and phone viewports, sees the server's
// certificate, saves a screenshot of each and talks to the test both ways.
func TestSmoke(t *testing.T) {
	browser.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Log(browser.Versions(ctx))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><meta name="viewport" content="width=device-width">`+
			`<title>smoke</title><h1 id="hello" style="color:#036">brana über HTTPS</h1>`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // chromium's first handshake rejects the certificate
	srv.StartTLS()
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	want := hex.EncodeToString(sum[:])

	shots := t.TempDir()
	start := time.Now()
	s, err := browser.Start(ctx, "testdata/smoke.js", map[string]string{"URL": srv.URL, browser.EnvScreenshots: shots})
	if err != nil {
		t.Fatal(err)
	}
	widths := map[string]float64{"desktop": 1280, "phone": 390}
	for _, vp := range []string{"desktop", "phone"} {
		p, err := s.Await(ctx, "page")
		if err != nil {
			t.Fatal(err)
		}
		if p.String("viewport") != vp || p["status"] != 200.0 || p.String("text") != "brana über HTTPS" {
			t.Errorf("page: %v", p)
		}
		if p["width"] != widths[vp] {
			t.Errorf("%s: window width %v; want %v", vp, p["width"], widths[vp])
		}
		if fps, _ := p["fingerprints"].([]any); len(fps) == 0 || fps[0] != want {
			t.Errorf("%s: certificate fingerprints %v; want %s first", vp, p["fingerprints"], want)
		}
		file := filepath.Join(shots, "smoke-"+vp+".png")
		if p.String("file") != file {
			t.Errorf("%s: screenshot %q; want %q", vp, p.String("file"), file)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if want := int(widths[vp]); vp == "phone" && cfg.Width != 2*want || vp == "desktop" && cfg.Width != want {
			t.Errorf("%s: screenshot is %dx%d", vp, cfg.Width, cfg.Height)
		}
	}
	if _, err := s.Await(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send("done"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser run took %v", time.Since(start).Round(time.Millisecond))
}

// TestRunFailure checks that a failing script is an error carrying its
// message, and that Run returns what the script printed.
func TestRunFailure(t *testing.T) {
	browser.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.js")
	bad := filepath.Join(dir, "bad.js")
	os.WriteFile(ok, []byte(`require('lib.js').emit('hi', {n: Number(process.env.N)});`), 0o644)
	os.WriteFile(bad, []byte(`require('lib.js').main(async () => { throw new Error('no such button') });`), 0o644)
	out, err := browser.Run(ctx, ok, map[string]string{"N": "7"})
	if err != nil || out != `{"signal":"hi","n":7}`+"\n" {
		t.Errorf("ok.js: %q, %v", out, err)
	}
	if _, err := browser.Run(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "no such button") {
		t.Errorf("bad.js: %v; want an error naming the failure", err)
	}
}
