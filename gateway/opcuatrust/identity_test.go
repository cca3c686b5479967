package opcuatrust

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "opcua-server.pem")
	id, created, err := LoadOrCreateIdentity(path, "urn:brana:gw1:server", []string{"gw1", "localhost"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.2")})
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode %v", di.Mode())
	}
	c, err := x509.ParseCertificate(id.Cert)
	if err != nil {
		t.Fatal(err)
	}
	wantUsage := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
		x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign
	switch {
	case id.AppURI != "urn:brana:gw1:server" || len(c.URIs) != 1 || c.URIs[0].String() != id.AppURI:
		t.Errorf("application URI %q, SAN %v", id.AppURI, c.URIs)
	case !slices.Equal(c.DNSNames, []string{"gw1", "localhost"}) || len(c.IPAddresses) != 2 || !c.IPAddresses[1].Equal(net.ParseIP("10.0.0.2")):
		t.Errorf("SANs %v %v", c.DNSNames, c.IPAddresses)
	case c.KeyUsage != wantUsage:
		t.Errorf("key usage %b; want %b", c.KeyUsage, wantUsage)
	case !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		t.Errorf("ext key usage %v", c.ExtKeyUsage)
	case id.Key.N.BitLen() != 2048 || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil:
		t.Errorf("key %d bits; self-signature: %v", id.Key.N.BitLen(), c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature))
	case c.NotAfter.Before(time.Now().AddDate(9, 11, 0)) || c.NotBefore.After(time.Now()):
		t.Errorf("validity %v .. %v", c.NotBefore, c.NotAfter)
	case c.Subject.CommonName != "brana gateway gw1":
		t.Errorf("subject %v", c.Subject)
	}
	// Brana's own certificate passes the checks it puts client certificates to.
	if _, err := intrinsic(c); err != nil {
		t.Errorf("own certificate: %v", err)
	}

	again, created, err := LoadOrCreateIdentity(path, "urn:other", nil, nil)
	if err != nil || created || string(again.Cert) != string(id.Cert) || !again.Key.Equal(id.Key) || again.AppURI != id.AppURI {
		t.Fatalf("load: %v, created %v, uri %q", err, created, again.AppURI)
	}
}

func TestIdentityFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if _, _, err := LoadOrCreateIdentity(good, "urn:a", nil, nil); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.pem")
	if _, _, err := LoadOrCreateIdentity(other, "urn:b", nil, nil); err != nil {
		t.Fatal(err)
	}
	blocks := func(path string) (cert, key []byte) {
		b, _ := os.ReadFile(path)
		c, rest := pem.Decode(b)
		k, _ := pem.Decode(rest)
		return pem.EncodeToMemory(c), pem.EncodeToMemory(k)
	}
	certA, keyA := blocks(good)
	_, keyB := blocks(other)
	tests := []struct {
		name, text, want string
	}{
		{"fail/key-of-another", string(certA) + string(keyB), "does not belong"},
		{"fail/no-key", string(certA), "want a CERTIFICATE and an RSA PRIVATE KEY"},
		{"fail/no-cert", string(keyA), "want a CERTIFICATE and an RSA PRIVATE KEY"},
		{"fail/bad-key", string(certA) + "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "opcua certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "id.pem")
			os.WriteFile(p, []byte(tt.text), 0o600)
			_, _, err := LoadOrCreateIdentity(p, "urn:x", nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v; want %q and the path", err, tt.want)
			}
		})
	}
	if _, _, err := LoadOrCreateIdentity(filepath.Join(dir, "new.pem"), "no uri", nil, nil); err == nil || !strings.Contains(err.Error(), "is not a URI") {
		t.Fatalf("bad application URI: %v", err)
	}
	if _, err := LoadIdentity(filepath.Join(dir, "new.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadIdentity of a missing file = %v; want fs.ErrNotExist", err)
	}
	if id, err := LoadIdentity(good); err != nil || id.AppURI != "urn:a" {
		t.Fatalf("LoadIdentity = %+v, %v", id.AppURI, err)
	}
}

func TestThumbprint(t *testing.T) {
	// SHA-1 of the empty string.
	if got := Thumbprint(nil); got != "da39a3ee5e6b4b0d3255bfef95601890afd80709" {
		t.Fatalf("Thumbprint(nil) = %s", got)
	}
}
