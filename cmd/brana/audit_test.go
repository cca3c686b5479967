package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/audit"
)

func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys", "audit.pem")
	key, _, err := audit.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "audit")
	l, err := audit.Open(logDir, audit.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		rec := &audit.Record{Type: audit.Command, Unit: 1, Func: 3, Sub: -1, Party: "scada", Decision: "allow"}
		if _, err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	pubFile := filepath.Join(dir, "audit.pub.pem")
	os.WriteFile(pubFile, audit.PublicKeyPEM(key.Public().(ed25519.PublicKey)), 0o644)

	code, out, errOut := brana(t, "audit", "verify", logDir, "--pubkey", pubFile)
	if code != exitOK || !strings.Contains(out, "OK: 21 records") || !strings.Contains(out, "signatures verified") {
		t.Fatalf("verify of an intact log = %d %q %q", code, out, errOut)
	}

	segs, _ := audit.Segments(logDir)
	data, _ := os.ReadFile(segs[0].Path)
	os.WriteFile(segs[0].Path, bytes.Replace(data, []byte(`"seq":7,`), []byte(`"seq":8,`), 1), 0o640)
	code, out, _ = brana(t, "audit", "verify", logDir, "--pubkey", pubFile)
	if code != exitVerifyFailed || !strings.Contains(out, filepath.Base(segs[0].Path)+":7:") {
		t.Fatalf("verify of an edited log = %d %q; want exit 1 naming line 7", code, out)
	}

	if code, _, _ = brana(t, "audit", "verify", filepath.Join(dir, "nope")); code != exitVerifyUnreadable {
		t.Fatalf("verify of a missing dir = %d; want %d", code, exitVerifyUnreadable)
	}
	if code, _, _ = brana(t, "audit", "verify"); code != exitUsage {
		t.Fatalf("verify without DIR = %d; want %d", code, exitUsage)
	}
}

func TestAuditShowAndExportCommands(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"scada", "acme", "scada"} {
		rec := &audit.Record{Type: audit.Command, Unit: 1, Func: 6, Sub: -1, Party: p, PartyName: "Name of " + p, Class: "write", Decision: "deny"}
		if _, err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	code, out, errOut := brana(t, "audit", "show", dir, "--party", "acme", "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"party":"acme"`) {
		t.Fatalf("show --party acme = %d %q %q", code, out, errOut)
	}
	code, out, _ = brana(t, "audit", "show", dir, "--decision", "deny")
	if code != exitOK || strings.Count(out, "Name of scada") != 2 {
		t.Fatalf("show --decision deny = %d %q", code, out)
	}
	if code, _, _ = brana(t, "audit", "show", dir, "--decision", "maybe"); code != exitUsage {
		t.Fatalf("show with a bad decision = %d; want %d", code, exitUsage)
	}
	code, out, _ = brana(t, "audit", "export", dir, "--stdout", "--from", "2")
	if code != exitOK || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, `{"seq":2,`) {
		t.Fatalf("export --stdout --from 2 = %d %q", code, out)
	}
}

func TestAuditShowOPCUAFilters(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	add := func(rec *audit.Record) {
		t.Helper()
		if _, err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	add(&audit.Record{Type: audit.Command, Unit: -1, Func: -1, Sub: -1, Party: "eng", Service: "Write", Class: "control",
		Decision: "partial", Rule: "feeder", NItems: 2, Items: []audit.Item{
			{Node: "ns=2;s=Feeder.Protection.TimeDelay", Value: "7", Decision: "deny", Reason: "node", Status: "BadUserAccessDenied"},
			{Node: "ns=2;s=Feeder.Protection.OvercurrentPickup", Value: "460", Decision: "allow", Rule: "feeder"},
		}})
	add(&audit.Record{Type: audit.Command, Unit: -1, Func: -1, Sub: -1, Party: "eng", Service: "Read", Class: "read",
		Decision: "allow", NItems: 1, Items: []audit.Item{{Node: "ns=2;s=Feeder.Meas.I1", Decision: "allow"}}})
	add(&audit.Record{Type: audit.Command, Unit: 1, Func: 6, Sub: -1, Party: "scada", Class: "write", Decision: "allow"})
	l.Close()

	code, out, errOut := brana(t, "audit", "show", dir, "--service", "write", "--decision", "partial")
	if code != exitOK || !strings.Contains(out, "ns=2;s=Feeder.Protection.TimeDelay=7 deny(node) BadUserAccessDenied; ns=2;s=Feeder.Protection.OvercurrentPickup=460 allow") ||
		strings.Contains(out, "Feeder.Meas") || strings.Contains(out, "fc 6") {
		t.Fatalf("show --service write --decision partial = %d %q %q", code, out, errOut)
	}
	code, out, _ = brana(t, "audit", "show", dir, "--node", "feeder.meas", "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"service":"Read"`) {
		t.Fatalf("show --node feeder.meas --json = %d %q", code, out)
	}
}
