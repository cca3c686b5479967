package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/firmware/update"
	"github.com/brana-ot/brana/gateway"
)

// fakeBrana is a stand-in executable: a shell script that answers
// `version` with v and `check` with exit status checkStatus. The real test
// binary is never installed over.
func fakeBrana(v string, checkStatus int) []byte {
	return []byte("#!/bin/sh\ncase \"$1\" in\n" +
		"version) echo \"brana " + v + " (commit test) " + runtime.GOOS + "/" + runtime.GOARCH + " go\";;\n" +
		"check) echo \"config says no\"; exit " + string(rune('0'+checkStatus)) + ";;\n" +
		"*) exit 2;;\nesac\n")
}

// releaseKit makes a root and a certified signing key with the CLI, as a
// release engineer would.
type releaseKit struct {
	dir, root, signing, cert string
}

func newReleaseKit(t *testing.T, notAfter string) *releaseKit {
	t.Helper()
	k := &releaseKit{dir: t.TempDir()}
	k.root, k.signing, k.cert = filepath.Join(k.dir, "root"), filepath.Join(k.dir, "signing"), filepath.Join(k.dir, "signing.cert")
	for _, p := range []string{k.root, k.signing} {
		if code, out, errOut := brana(t, "update", "keygen", "-out", p); code != exitOK || !strings.Contains(out, "keep it offline") {
			t.Fatalf("keygen: %d %s %s", code, out, errOut)
		}
	}
	if st, _ := os.Stat(k.root + ".key"); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v; want 0600", st.Mode().Perm())
	}
	if code, _, errOut := brana(t, "update", "keygen", "-out", k.root); code != exitFailed || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, errOut)
	}
	if code, out, errOut := brana(t, "update", "certify", "-root", k.root+".key", "-signing", k.signing+".pub",
		"-name", "release-test", "-not-after", notAfter, "-o", k.cert); code != exitOK {
		t.Fatalf("certify: %d %s %s", code, out, errOut)
	}
	return k
}

func (k *releaseKit) rootKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, err := readPublicKey(k.root + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// build makes a bundle of a fake brana of version v with the CLI.
func (k *releaseKit) build(t *testing.T, v string, checkStatus int, goarch string) string {
	t.Helper()
	bin := filepath.Join(k.dir, "brana-build-"+v)
	if err := os.WriteFile(bin, fakeBrana(v, checkStatus), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(k.dir, "brana-"+v+"-"+goarch+".bundle")
	code, stdout, errOut := brana(t, "update", "build", "-key", k.signing+".key", "-cert", k.cert, "-version", v,
		"-os", runtime.GOOS, "-arch", goarch, "-binary", bin, "-expires", time.Now().AddDate(0, 3, 0).Format(time.DateOnly), "-o", out)
	if code != exitOK || !strings.Contains(stdout, "brana "+v) {
		t.Fatalf("build: %d %s %s", code, stdout, errOut)
	}
	return out
}

// updateConfig writes a minimal gateway config whose admin socket is
// sock, and returns its path.
func updateConfig(t *testing.T, sock string) string {
	t.Helper()
	dir := t.TempDir()
	text := `version: 1
gateway:
  name: test
  data_dir: data
admin:
  socket: ` + sock + `
listeners:
  - name: scada
    address: 127.0.0.1:5020
    routes:
      - units: [1]
        target: plc
targets:
  - name: plc
    transport: tcp
    address: 127.0.0.1:15020
parties:
  - id: scada
    name: SCADA
    organisation: Utility
    kind: scada
    networks: [127.0.0.1/32]
rules:
  - name: read
    parties: [scada]
    targets: ["*"]
    classes: [read]
`
	file := filepath.Join(dir, "brana.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	return file
}

// installed lays out the service's executable as brana -> brana-1.2.0.
func installed(t *testing.T) (dir, exe string) {
	t.Helper()
	dir = t.TempDir()
	exe = filepath.Join(dir, "brana")
	if err := os.WriteFile(filepath.Join(dir, "brana-1.2.0"), fakeBrana("1.2.0", 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("brana-1.2.0", exe); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// running pretends this process is brana v trusting roots.
func running(t *testing.T, v string, roots ...ed25519.PublicKey) {
	t.Helper()
	oldV, oldR := gateway.Version, updateRoots
	gateway.Version, updateRoots = v, roots
	t.Cleanup(func() { gateway.Version, updateRoots = oldV, oldR })
}

func TestUpdateApply(t *testing.T) {
	kit := newReleaseKit(t, time.Now().AddDate(1, 0, 0).Format(time.RFC3339))
	good := kit.build(t, "1.3.0", 0, runtime.GOARCH)
	cfg := updateConfig(t, filepath.Join(t.TempDir(), "admin.sock"))
	state := filepath.Join(filepath.Dir(cfg), "data", "update-state")

	t.Run("fail/no-compiled-in-roots", func(t *testing.T) {
		running(t, "1.2.0")
		_, exe := installed(t)
		code, _, errOut := brana(t, "update", "apply", "-c", cfg, "-exe", exe, good)
		if code != exitFailed || !strings.Contains(errOut, "no trusted root keys") {
			t.Fatalf("apply without roots: %d %s", code, errOut)
		}
	})
	t.Run("ok/switches", func(t *testing.T) {
		running(t, "1.2.0", kit.rootKey(t))
		dir, exe := installed(t)
		code, out, errOut := brana(t, "update", "apply", good, "-c", cfg, "-exe", exe)
		if code != exitOK || !strings.Contains(out, "installed brana 1.3.0") {
			t.Fatalf("apply: %d %s %s", code, out, errOut)
		}
		if target, _ := os.Readlink(exe); target != "brana-1.3.0" {
			t.Fatalf("brana points at %q", target)
		}
		if b, _ := os.ReadFile(exe); !bytes.Equal(b, fakeBrana("1.3.0", 0)) {
			t.Fatalf("brana holds %q", b)
		}
		if target, _ := os.Readlink(filepath.Join(dir, "brana.previous")); target != "brana-1.2.0" {
			t.Fatalf("brana.previous points at %q", target)
		}
		if floor, err := update.ReadState(state); floor != "1.3.0" {
			t.Fatalf("floor %q %v", floor, err)
		}
		// Applying it again is a rollback by the floor, even from a
		// development build that has no version of its own.
		running(t, "dev", kit.rootKey(t))
		code, _, errOut = brana(t, "update", "apply", "-c", cfg, "-exe", exe, good)
		if code != exitFailed || !strings.Contains(errOut, "(rollback refused): bundle has 1.3.0, installed before is 1.3.0") {
			t.Fatalf("apply again: %d %s", code, errOut)
		}
	})
	t.Run("fail/health-check-rolls-back", func(t *testing.T) {
		os.Remove(state)
		running(t, "1.2.0", kit.rootKey(t))
		bad := kit.build(t, "1.4.0", 1, runtime.GOARCH)
		dir, exe := installed(t)
		code, _, errOut := brana(t, "update", "apply", "-c", cfg, "-exe", exe, bad)
		if code != exitFailed {
			t.Fatalf("apply of a failing release: %d %s", code, errOut)
		}
		for _, want := range []string{"health check failed for brana 1.4.0", "check -c " + cfg, "config says no", "rolled back"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q; want %q", errOut, want)
			}
		}
		if target, _ := os.Readlink(exe); target != "brana-1.2.0" {
			t.Fatalf("after the rollback brana points at %q", target)
		}
		if _, err := os.Stat(filepath.Join(dir, "brana-1.4.0")); !os.IsNotExist(err) {
			t.Fatal("the failed executable is left behind")
		}
		if floor, _ := update.ReadState(state); floor != "" {
			t.Fatalf("floor raised to %q by a failed update", floor)
		}
	})
	t.Run("fail/version-lies", func(t *testing.T) {
		running(t, "1.2.0", kit.rootKey(t))
		// Bundled as 1.5.0, but the executable says 1.4.9.
		bin := filepath.Join(kit.dir, "liar")
		os.WriteFile(bin, fakeBrana("1.4.9", 0), 0o755)
		liar := filepath.Join(kit.dir, "liar.bundle")
		if code, _, errOut := brana(t, "update", "build", "-key", kit.signing+".key", "-cert", kit.cert, "-version", "1.5.0",
			"-os", runtime.GOOS, "-arch", runtime.GOARCH, "-binary", bin, "-expires", time.Now().AddDate(0, 1, 0).Format(time.DateOnly), "-o", liar); code != exitOK {
			t.Fatal(errOut)
		}
		_, exe := installed(t)
		code, _, errOut := brana(t, "update", "apply", "-c", cfg, "-exe", exe, liar)
		if code != exitFailed || !strings.Contains(errOut, "want brana 1.5.0") || !strings.Contains(errOut, "rolled back") {
			t.Fatalf("apply: %d %s", code, errOut)
		}
	})
}

// With -restart, the new version must come up on the admin socket; the
// restart command runs again after a rollback.
func TestUpdateApplyRestart(t *testing.T) {
	kit := newReleaseKit(t, time.Now().AddDate(1, 0, 0).Format(time.DateOnly))
	good := kit.build(t, "1.3.0", 0, runtime.GOARCH)
	sockDir, err := os.MkdirTemp("", "bu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "admin.sock")
	cfg := updateConfig(t, sock)
	state := filepath.Join(filepath.Dir(cfg), "data", "update-state")

	// The "gateway" answers with whatever version the file says.
	reported := filepath.Join(sockDir, "version")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := os.ReadFile(reported)
		json.NewEncoder(w).Encode(map[string]any{"status": "ok",
			"gateway": map[string]any{"version": strings.TrimSpace(string(v)), "audit": map[string]any{"Err": ""}}})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	restarts := filepath.Join(sockDir, "restarts")
	for _, tt := range []struct {
		name, after string // the version the gateway reports after a restart
		code        int
		restarts    string
		msg         string
	}{
		{"fail/gateway-stays-old", "1.2.0", exitFailed, "restart\nrestart\n", `did not come up as brana 1.3.0 within 1s: the gateway reports version "1.2.0"`},
		{"ok/gateway-comes-up", "1.3.0", exitOK, "restart\n", "installed brana 1.3.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			running(t, "1.2.0", kit.rootKey(t))
			os.Remove(restarts)
			os.WriteFile(reported, []byte("1.2.0"), 0o644)
			_, exe := installed(t)
			restart := "echo restart >> " + restarts + "; echo " + tt.after + " > " + reported
			code, out, errOut := brana(t, "update", "apply", "-c", cfg, "-exe", exe, "-restart", restart, "-wait", "1s", good)
			if code != tt.code || !strings.Contains(out+errOut, tt.msg) {
				t.Fatalf("apply: %d %s %s; want %d and %q", code, out, errOut, tt.code, tt.msg)
			}
			if b, _ := os.ReadFile(restarts); string(b) != tt.restarts {
				t.Fatalf("restarts %q; want %q", b, tt.restarts)
			}
			floor, _ := update.ReadState(state)
			if (tt.code == exitOK) != (floor == "1.3.0") {
				t.Fatalf("floor %q after %s", floor, tt.name)
			}
		})
	}
}

// Each refusal says what is wrong.
func TestUpdateVerify(t *testing.T) {
	kit := newReleaseKit(t, time.Now().AddDate(1, 0, 0).Format(time.RFC3339))
	good := kit.build(t, "1.3.0", 0, runtime.GOARCH)
	other := newReleaseKit(t, time.Now().AddDate(1, 0, 0).Format(time.RFC3339))
	untrusted := other.build(t, "1.3.0", 0, runtime.GOARCH)
	expiredKit := newReleaseKit(t, time.Now().AddDate(0, 0, -1).Format(time.DateOnly))
	// The certificate must verify under kit's root to get as far as its
	// expiry, so certify expiredKit's signing key with kit's root.
	if code, _, errOut := brana(t, "update", "certify", "-root", kit.root+".key", "-signing", expiredKit.signing+".pub",
		"-name", "release-old", "-not-after", time.Now().AddDate(0, 0, -1).Format(time.DateOnly), "-o", expiredKit.cert+".2"); code != exitOK {
		t.Fatal(errOut)
	}
	os.Rename(expiredKit.cert+".2", expiredKit.cert)
	expired := expiredKit.build(t, "1.3.0", 0, runtime.GOARCH)
	older := kit.build(t, "1.1.0", 0, runtime.GOARCH)
	otherArch := kit.build(t, "1.3.0", 0, "fakearch")
	tampered := filepath.Join(kit.dir, "tampered.bundle")
	b, _ := os.ReadFile(good)
	os.WriteFile(tampered, bytes.Replace(b, []byte("version 1.3.0\n"), []byte("version 1.9.0\n"), 1), 0o644)

	running(t, "1.2.0", kit.rootKey(t))
	for _, tt := range []struct {
		name, bundle string
		args         []string
		code         int
		msg          string
	}{
		{"ok/good", good, nil, exitOK, "OK: brana 1.3.0 for " + runtime.GOOS + "/" + runtime.GOARCH},
		{"ok/other-platform-asked-for", otherArch, []string{"-platform", runtime.GOOS + "/fakearch"}, exitOK, "OK: brana 1.3.0"},
		{"ok/given-root", untrusted, []string{"-root", other.root + ".pub"}, exitOK, "OK"},
		{"fail/wrong-signature", tampered, nil, exitFailed, `REJECTED: update: bundle signature does not verify: the manifest is not signed by key "release-test"`},
		{"fail/signing-key-not-signed-by-root", untrusted, nil, exitFailed, "REJECTED: update: signing key not signed by a trusted root"},
		{"fail/signing-key-expired", expired, nil, exitFailed, `REJECTED: update: signing key certificate expired: key "release-old" was certified until`},
		{"fail/rolled-back", older, nil, exitFailed, "REJECTED: update: version not newer than the installed one (rollback refused): bundle has 1.1.0, running is 1.2.0"},
		{"fail/other-platform", otherArch, nil, exitFailed, "REJECTED: update: bundle is for another platform: bundle is for " + runtime.GOOS + "/fakearch"},
		{"fail/not-a-bundle", kit.cert, nil, exitFailed, "REJECTED: update: malformed bundle"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := brana(t, append(append([]string{"update", "verify"}, tt.args...), tt.bundle)...)
			if code != tt.code || !strings.Contains(out, tt.msg) {
				t.Fatalf("verify: %d %q %q; want %d and %q", code, out, errOut, tt.code, tt.msg)
			}
		})
	}
	if code, _, _ := brana(t, "update", "verify"); code != exitUsage {
		t.Fatalf("verify without a bundle: %d", code)
	}
	if code, _, errOut := brana(t, "update", "build", "-key", other.signing+".key", "-cert", kit.cert, "-version", "1.3.0",
		"-os", "linux", "-arch", "amd64", "-binary", kit.cert, "-expires", "2099-01-01", "-o", filepath.Join(kit.dir, "x")); code != exitFailed ||
		!strings.Contains(errOut, "not the one the certificate names") {
		t.Fatalf("build with a key the certificate does not name: %d %s", code, errOut)
	}
}
