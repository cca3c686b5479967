package opcuatrust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	a, _, err := LoadOrCreateIdentity(filepath.Join(dir, "a.pem"), "urn:test:a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := LoadOrCreateIdentity(filepath.Join(dir, "b.pem"), "urn:test:b", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a.Cert)
	want := hex.EncodeToString(sum[:])
	if got := Fingerprint(a.Cert); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	// An OPC UA ServerCertificate may be a chain: the leaf is pinned.
	if got := Fingerprint(append(append([]byte{}, a.Cert...), b.Cert...)); got != want {
		t.Errorf("Fingerprint of a chain = %s, want the leaf's %s", got, want)
	}
	for _, in := range [][]byte{a.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert})} {
		if c, err := ParseCertificate(in); err != nil || Fingerprint(c.Raw) != want {
			t.Errorf("ParseCertificate: %v", err)
		}
	}
	if _, err := ParseCertificate(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})); err == nil {
		t.Error("ParseCertificate took a key")
	}

	upper := strings.ToUpper(want)
	var colons []string
	for i := 0; i < len(upper); i += 2 {
		colons = append(colons, upper[i:i+2])
	}
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"sha256:" + want, true},
		{"SHA256:" + strings.Join(colons, ":"), true},
		{"Sha256:" + upper, true},
		{want, false},
		{"sha256:" + want[2:], false},
		{"sha256:" + want + "00", false},
		{"sha256:" + strings.Repeat("z", 64), false},
		{"sha1:" + want[:40], false},
	} {
		got, err := ParseFingerprint(tt.in)
		if tt.ok != (err == nil) || tt.ok && got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v", tt.in, got, err)
		}
	}
}
