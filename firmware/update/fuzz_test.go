package update

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bundles to Verify: no panic, and whatever is
// accepted carries an executable that matches its manifest.
func FuzzVerify(f *testing.F) {
	c := newChain(f, time.Now().AddDate(10, 0, 0))
	good := c.build(f, "brana", "1.3.0", "amd64", time.Now().AddDate(10, 0, 0))
	f.Add(good)
	f.Add(good[:600])
	f.Add(replaceMember(f, good, BinaryName, []byte("other")))
	opts := VerifyOptions{Roots: c.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "amd64"}
	f.Fuzz(func(t *testing.T, b []byte) {
		rel, err := Verify(b, opts)
		if err != nil {
			return
		}
		if sha256.Sum256(rel.Binary) != rel.SHA256 {
			t.Fatal("accepted an executable that does not match its manifest")
		}
	})
}

// FuzzParseTexts checks that the manifest and certificate parsers accept
// only their canonical form: what parses, marshals back to the same bytes.
func FuzzParseTexts(f *testing.F) {
	c := newChain(f, time.Now().AddDate(1, 0, 0))
	good := c.build(f, "brana", "1.3.0-rc.1", "arm64", time.Now().AddDate(0, 1, 0))
	f.Add(member(f, good, ManifestName))
	f.Add(c.cert)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := parseManifest(b); err == nil && !bytes.Equal(m.marshal(), b) {
			t.Fatalf("manifest %q parses but marshals to %q", b, m.marshal())
		}
		if ct, st, _, err := parseCert(b); err == nil && (!bytes.Equal(ct.statement(), st) || !bytes.HasPrefix(b, st)) {
			t.Fatalf("certificate %q parses to a different statement %q", b, st)
		}
	})
}
