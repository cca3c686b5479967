package console

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls", "console.pem")
	cert, fp, created, err := LoadOrCreateCertificate(path, []string{"127.0.0.1", "gw1.example", "::1"})
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("gw1.example"); err != nil {
		t.Fatal(err)
	}
	if !leaf.IPAddresses[1].Equal(net.ParseIP("::1")) || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("certificate: %v %v", leaf.IPAddresses, leaf.PublicKeyAlgorithm)
	}
	if len(fp) != 95 || fp != Fingerprint(leaf.Raw) {
		t.Fatalf("fingerprint %q", fp)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	_, fp2, created, err := LoadOrCreateCertificate(path, nil)
	if err != nil || created || fp2 != fp {
		t.Fatalf("load: %v, created %v, %s vs %s", err, created, fp2, fp)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, _, err := LoadOrCreateCertificate(path, nil); err == nil {
		t.Fatal("a broken certificate file was accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage" {
		t.Fatal("a broken certificate file was replaced")
	}
}
