package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/demo"
)

func brana(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func demoConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	prc, err := demo.VendorKey(filepath.Join(dir, "prc"), "prc")
	if err != nil {
		t.Fatal(err)
	}
	de, err := demo.VendorKey(filepath.Join(dir, "de"), "de")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("%[1]s", "127.0.0.1:15020", "%[2]s", "127.0.0.1:15021", "%[3]s", "127.0.0.1:5020",
		"%[4]s", "127.0.0.1:2222", "%[5]s", prc, "%[6]s", de, "%[7]s", "opc.tcp://127.0.0.1:15022", "%[8]s", "127.0.0.1:4841",
		"%[9]s", "127.0.0.1:8443").Replace(demo.Config)
	file := filepath.Join(dir, "brana.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "accounts.yaml"), []byte("accounts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.WriteOPCUAUsers(filepath.Join(dir, "opcua-users.yaml")); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestCheck(t *testing.T) {
	file := demoConfig(t)
	code, out, errOut := brana(t, "check", "-c", file)
	if code != exitOK || !strings.Contains(out, "ok: 2 listeners, 3 targets, 5 parties, 7 rules") {
		t.Fatalf("check = %d, %q, %q", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	text, _ := os.ReadFile(file)
	os.WriteFile(bad, bytes.Replace(text, []byte("    transport: tcp\n"), []byte("    transport: tcp\n    baudrate: 9600\n"), 1), 0o600)
	code, _, errOut = brana(t, "check", "-c", bad)
	if code != exitFailed || !strings.Contains(errOut, "bad.yaml:32: unknown key \"baudrate\"") {
		t.Fatalf("check of a bad file = %d, %q; want exit 1 naming line 32 and the key", code, errOut)
	}

	code, _, errOut = brana(t, "check", "-c", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitFailed || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("check of a missing file = %d, %q", code, errOut)
	}
}

func TestPolicyExplain(t *testing.T) {
	file := demoConfig(t)
	tests := []struct {
		name, party, op string
		want            []string
	}{
		{"fail/monitoring-write", "monitoring", "write:holding:100=500@1", []string{"monitoring-read", "deny"}},
		{"ok/engineering-write", "engineering", "write:holding:100=500@1", []string{"allow", "feeder-setpoints"}},
		{"fail/engineering-value", "engineering", "write:holding:100=9000@1", []string{"deny", "value"}},
		{"ok/monitoring-read", "monitoring", "read:holding:0-9@1", []string{"allow", "monitoring-read"}},
		{"held/prc-vendor-findings", "vendor-prc", "read:holding:0-1@1", []string{"admission: approval (step 3)", "established vendor-prc: CN (PRC", "once approved: allow by rule vendor-maintenance"}},
		{"ok/allied-vendor", "vendor-de", "read:holding:0-1@1", []string{"admission: allow (step 6)", "allow by rule vendor-maintenance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := brana(t, "policy", "explain", "-c", file, "--party", tt.party, "--target", "feeder-plc", "--op", tt.op)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
	if code, _, _ := brana(t, "policy", "explain", "-c", file, "--party", "nobody", "--target", "feeder-plc", "--op", "read"); code != exitFailed {
		t.Errorf("unknown party: exit %d; want %d", code, exitFailed)
	}
	if code, _, _ := brana(t, "policy", "explain", "-c", file, "--party", "monitoring", "--target", "feeder-plc", "--op", "write:holding:x"); code != exitUsage {
		t.Errorf("bad op: exit %d; want %d", code, exitUsage)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := brana(t, "version"); code != exitOK || !strings.HasPrefix(out, "brana ") {
		t.Fatalf("version = %d %q", code, out)
	}
	if code, _, errOut := brana(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command = %d %q", code, errOut)
	}
}

// The commented example that operators copy must stay valid.
func TestExampleConfigChecks(t *testing.T) {
	code, out, errOut := brana(t, "check", "-c", "../../examples/brana.yaml")
	if code != exitOK {
		t.Fatalf("examples/brana.yaml: exit %d: %s%s", code, out, errOut)
	}
}
