package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBundleCommands(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "bundle")
	os.MkdirAll(b, 0o755)
	listings := "entries:\n  - {name: \"Example Automation Co., Ltd.\", country: CN, action: block, source: \"operator review\", reference: \"TKT-1\", date: 2026-11-26}\n"
	if err := os.WriteFile(filepath.Join(b, "listings.yaml"), []byte(listings), 0o644); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "k")
	if code, _, errOut := brana(t, "bundle", "keygen", "--name", "test-bundles", "--out", key); code != exitOK {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	if st, _ := os.Stat(key + ".key"); st.Mode().Perm() != 0o600 {
		t.Fatalf("signer key mode %v; want 0600", st.Mode().Perm())
	}
	exp := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
	if code, out, errOut := brana(t, "bundle", "sign", b, "--key", key+".key", "--serial", "7", "--expires", exp); code != exitOK {
		t.Fatalf("sign: %d %s %s", code, out, errOut)
	}
	code, out, _ := brana(t, "bundle", "verify", b, "--pubkey", key+".pub")
	if code != exitOK || !strings.Contains(out, "OK, serial 7") || !strings.Contains(out, "1 listings") {
		t.Fatalf("verify: %d %q", code, out)
	}
	if code, out, _ := brana(t, "bundle", "verify", b, "--pubkey", key+".pub", "--after-serial", "8"); code != exitFailed || !strings.Contains(out, "REJECTED") {
		t.Fatalf("verify after a newer serial: %d %q; want the rollback rejected", code, out)
	}
	os.WriteFile(filepath.Join(b, "listings.yaml"), []byte(strings.Replace(listings, "block", "note", 1)), 0o644)
	if code, out, _ := brana(t, "bundle", "verify", b, "--pubkey", key+".pub"); code != exitFailed || !strings.Contains(out, "REJECTED") {
		t.Fatalf("verify of an edited bundle: %d %q", code, out)
	}
}
