package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFirmwareCommands(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	img := []byte(strings.Repeat("PLC program v3.40\n", 500))
	s := sha256.Sum256(img)
	sum := hex.EncodeToString(s[:])
	os.WriteFile(path("fw.bin"), img, 0o644)
	bad := append([]byte(nil), img...)
	bad[100] ^= 1
	os.WriteFile(path("fw-changed.bin"), bad, 0o644)

	code, out, errOut := brana(t, "firmware", "hash", path("fw.bin"))
	if code != exitOK || !strings.HasPrefix(out, sum+"  9000  ") || !strings.Contains(out, "  - sha256: "+sum+"\n    size: 9000\n") {
		t.Fatalf("hash: %d %q %s", code, out, errOut)
	}
	if code, _, _ := brana(t, "firmware", "hash", path("missing.bin")); code != exitFailed {
		t.Fatalf("hash of a missing file: %d", code)
	}

	if code, out, errOut := brana(t, "firmware", "keygen", "lhota-firmware", "--out", path("fw")); code != exitOK || !strings.Contains(out, "lhota-firmware+") {
		t.Fatalf("keygen: %d %q %s", code, out, errOut)
	}
	if st, err := os.Stat(path("fw.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signer key: %v", err)
	}
	if code, _, errOut := brana(t, "firmware", "keygen", "lhota-firmware", "--out", path("fw")); code != exitFailed || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, errOut)
	}
	if code, _, _ := brana(t, "firmware", "keygen", "--name", "other", "--out", path("other")); code != exitOK {
		t.Fatal("keygen --name")
	}

	// The entry that hash printed, filled in.
	entry := out[strings.Index(out, "  - sha256:"):]
	entry = strings.NewReplacer(`vendor: ""`, "vendor: Example Automation", `product: ""`, "product: PLC-4000 CPU",
		`version: ""`, `version: "3.40"`, `origin: ""`, "origin: vendor portal download 2026-11-20, ticket CHG-4711",
		"approved_by: []", "approved_by: [Jana Novak, Petr Svoboda]").Replace(entry)
	exp := time.Now().AddDate(0, 6, 0).Format(time.DateOnly)
	yaml := "serial: 12\nexpires: " + exp + "\nimages:\n" + entry
	os.WriteFile(path("manifest.yaml"), []byte(yaml), 0o644)
	code, out, errOut = brana(t, "firmware", "sign", "--key", path("fw.key"), "--in", path("manifest.yaml"), "--out", path("MANIFEST.signed"))
	if code != exitOK || !strings.Contains(out, "signed by lhota-firmware, serial 12, 1 images") {
		t.Fatalf("sign: %d %q %s\n%s", code, out, errOut, yaml)
	}

	verify := func(args ...string) (int, string) {
		t.Helper()
		code, out, errOut := brana(t, append([]string{"firmware", "verify"}, args...)...)
		return code, out + errOut
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ok/manifest", []string{"--keys", path("fw.pub"), path("MANIFEST.signed")}, exitOK, "OK, serial 12, signed by lhota-firmware"},
		{"ok/lists-images", []string{"--keys", path("fw.pub"), path("MANIFEST.signed")}, exitOK, sum + "  9000  Example Automation PLC-4000 CPU 3.40"},
		{"ok/approved", []string{"--keys", path("fw.pub"), path("MANIFEST.signed"), path("fw.bin")}, exitOK, "fw.bin: APPROVED: sha256 " + sum},
		{"ok/flags-last", []string{path("MANIFEST.signed"), path("fw.bin"), "-keys", path("other.pub") + "," + path("fw.pub")}, exitOK, "APPROVED"},
		{"fail/one-byte-changed", []string{"--keys", path("fw.pub"), path("MANIFEST.signed"), path("fw-changed.bin")}, exitFailed, "fw-changed.bin: NOT APPROVED"},
		{"fail/other-key", []string{"--keys", path("other.pub"), path("MANIFEST.signed")}, exitFailed, "REJECTED: firmware: manifest is not signed by any trusted key"},
		{"fail/rolled-back", []string{"--keys", path("fw.pub"), "--after-serial", "13", path("MANIFEST.signed")}, exitFailed, "REJECTED: firmware: manifest serial goes back"},
		{"fail/no-keys", []string{path("MANIFEST.signed")}, exitUsage, "usage"},
		{"fail/missing-key-file", []string{"--keys", path("nope.pub"), path("MANIFEST.signed")}, exitFailed, "nope.pub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := verify(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("verify %v: exit %d %q; want %d and %q", tt.args, code, out, tt.code, tt.want)
			}
		})
	}

	signed, _ := os.ReadFile(path("MANIFEST.signed"))
	os.WriteFile(path("altered.signed"), []byte(strings.Replace(string(signed), "Petr Svoboda", "Petr Svobod", 1)), 0o644)
	if code, out := verify("--keys", path("fw.pub"), path("altered.signed")); code != exitFailed || !strings.Contains(out, "REJECTED: firmware: manifest signature does not verify") {
		t.Fatalf("altered manifest: %d %q", code, out)
	}

	expired := strings.Replace(yaml, "expires: "+exp, "issued: 2020-01-01\nexpires: 2021-01-01", 1)
	os.WriteFile(path("expired.yaml"), []byte(expired), 0o644)
	if code, _, errOut := brana(t, "firmware", "sign", "--key", path("fw.key"), "--in", path("expired.yaml"), "--out", path("expired.signed")); code != exitOK {
		t.Fatalf("sign expired: %s", errOut)
	}
	if code, out := verify("--keys", path("fw.pub"), path("expired.signed")); code != exitFailed || !strings.Contains(out, "REJECTED: firmware: manifest expired") {
		t.Fatalf("expired manifest: %d %q", code, out)
	}

	os.WriteFile(path("bad.yaml"), []byte(strings.Replace(yaml, "approved_by: [Jana Novak, Petr Svoboda]", "approved_by: []", 1)), 0o644)
	if code, _, errOut := brana(t, "firmware", "sign", "--key", path("fw.key"), "--in", path("bad.yaml"), "--out", path("bad.signed")); code != exitFailed || !strings.Contains(errOut, "images[0]: approved_by") {
		t.Fatalf("sign without approvers: %d %s", code, errOut)
	}
	if code, _, _ := brana(t, "firmware", "sign", "--key", path("fw.pub"), "--in", path("manifest.yaml"), "--out", path("x.signed")); code != exitFailed {
		t.Fatal("signed with a verifier key")
	}
	if code, _, _ := brana(t, "firmware", "sign", "--in", path("manifest.yaml")); code != exitUsage {
		t.Fatal("sign without --key and --out")
	}
	if code, _, _ := brana(t, "firmware", "frobnicate"); code != exitUsage {
		t.Fatal("unknown subcommand")
	}
}

// brana check verifies the firmware manifest as the gateway does at start.
// A manifest the gateway would not accept is a warning, not an error: the
// gateway starts without one and refuses every program image commit.
func TestCheckFirmware(t *testing.T) {
	file := demoConfig(t)
	dir := filepath.Dir(file)
	path := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"lhota-firmware", "other"} {
		if code, _, errOut := brana(t, "firmware", "keygen", k, "--out", path(k)); code != exitOK {
			t.Fatalf("keygen %s: %s", k, errOut)
		}
	}
	sign := func(name, serial, expires string) {
		t.Helper()
		yaml := "serial: " + serial + "\nissued: 2026-01-02T03:04:05Z\nexpires: " + expires + "\nimages:\n" +
			"  - sha256: " + strings.Repeat("5f", 32) + "\n    size: 9000\n    vendor: Example Automation\n" +
			"    product: PLC-4000 CPU\n    version: \"3.40\"\n    origin: ticket CHG-4711\n    approved_by: [Jana Novak]\n"
		os.WriteFile(path(name+".yaml"), []byte(yaml), 0o644)
		if code, _, errOut := brana(t, "firmware", "sign", "--key", path("lhota-firmware.key"), "--in", path(name+".yaml"), "--out", path(name)); code != exitOK {
			t.Fatalf("sign %s: %s", name, errOut)
		}
	}
	exp := time.Now().AddDate(1, 0, 0).UTC().Format(time.DateOnly)
	sign("firmware.manifest", "3", exp)
	sign("expired.manifest", "3", "2026-01-03")
	signed, _ := os.ReadFile(path("firmware.manifest"))
	os.WriteFile(path("tampered.manifest"), []byte(strings.Replace(string(signed), "approved_by Jana Novak", "approved_by Jana Novakova", 1)), 0o644)
	base, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, firmware string // the firmware section, "" for none
		state          string // data/firmware.state, as the gateway left it
		want           string
	}{
		{"ok/no-firmware-section", "", "", ""},
		{"ok/good", "firmware:\n  manifest: firmware.manifest\n  keys: [lhota-firmware.pub]\n", "",
			"firmware manifest " + path("firmware.manifest") + ": ok: serial 3, issued 2026-01-02T03:04:05Z, expires " + exp +
				"T00:00:00Z, signed by lhota-firmware, 1 approved images\n"},
		{"ok/same-serial-again", "firmware:\n  manifest: firmware.manifest\n  keys: [other.pub, lhota-firmware.pub]\n",
			`{"serial": 3}`, ": ok: serial 3,"},
		{"warn/tampered", "firmware:\n  manifest: tampered.manifest\n  keys: [lhota-firmware.pub]\n", "",
			"warning: firmware manifest " + path("tampered.manifest") + " is not accepted: firmware: manifest signature does not verify"},
		{"warn/wrong-key", "firmware:\n  manifest: firmware.manifest\n  keys: [other.pub]\n", "",
			"warning: firmware manifest " + path("firmware.manifest") + " is not accepted: firmware: manifest is not signed by any trusted key"},
		{"warn/expired", "firmware:\n  manifest: expired.manifest\n  keys: [lhota-firmware.pub]\n", "",
			"is not accepted: firmware: manifest expired: serial 3 expired at 2026-01-03T00:00:00Z; the gateway starts with no manifest in force"},
		{"warn/rolled-back", "firmware:\n  manifest: firmware.manifest\n  keys: [lhota-firmware.pub]\n", `{"serial": 4}`,
			"is not accepted: firmware: manifest serial goes back: serial 3, last accepted 4"},
		{"warn/missing", "firmware:\n  manifest: nowhere.manifest\n  keys: [lhota-firmware.pub]\n", "",
			"warning: firmware manifest " + path("nowhere.manifest") + " is not accepted: firmware: manifest: lstat " + path("nowhere.manifest") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := path("check.yaml")
			os.WriteFile(cfg, append(append([]byte(nil), base...), tt.firmware...), 0o600)
			state := path("data/firmware.state")
			os.Remove(state)
			if tt.state != "" {
				os.MkdirAll(filepath.Dir(state), 0o750)
				os.WriteFile(state, []byte(tt.state), 0o600)
			}
			code, out, errOut := brana(t, "check", "-c", cfg)
			if code != exitOK || !strings.Contains(out, "ok: 2 listeners") {
				t.Fatalf("check = %d, %q, %q; want exit 0", code, out, errOut)
			}
			if tt.want == "" && strings.Contains(out, "firmware manifest") {
				t.Fatalf("check without a firmware section says %q", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("check says %q; want %q", out, tt.want)
			}
			if strings.HasPrefix(tt.name, "ok/") && strings.Contains(out, "warning: firmware") {
				t.Fatalf("check warns of a good manifest: %q", out)
			}
			// check remembers nothing: only the gateway keeps the serial.
			if data, _ := os.ReadFile(state); string(data) != tt.state {
				t.Fatalf("check left firmware.state %q; want %q", data, tt.state)
			}
		})
	}
}
