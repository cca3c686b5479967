package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCertificate is a self-signed certificate in DER; the config only
// reads it, so any key type does.
func testCertificate(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "plc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// server_certificate pins the PLC's certificate by file (PEM or DER,
// relative to the config file) or by fingerprint, on secured OPC UA
// targets only; errors name the file, the line and the field.
func TestOPCUAServerCertificate(t *testing.T) {
	dir := t.TempDir()
	der := testCertificate(t)
	sum := sha256.Sum256(der)
	want := hex.EncodeToString(sum[:])
	var colons []string
	for _, b := range sum {
		colons = append(colons, fmt.Sprintf("%02X", b))
	}
	openssl := strings.Join(colons, ":") // what openssl x509 -fingerprint -sha256 prints after "sha256 Fingerprint="
	pemFile := filepath.Join(dir, "plc.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	derFile := filepath.Join(dir, "certs", "plc.der")
	if err := os.MkdirAll(filepath.Dir(derFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(derFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const at = "    password_file: plc.pw\n" // line 15 of goodOPCUA: the pin goes on line 16
	tests := []struct {
		name     string
		pin      string
		extra    string // more target lines
		wantFile string // ServerCertificate after validation
		want     []string
	}{
		{"ok/pem-relative", "plc.pem", "", pemFile, nil},
		{"ok/der-relative-subfolder", "certs/plc.der", "", derFile, nil},
		{"ok/der-absolute", derFile, "", derFile, nil},
		{"ok/fingerprint-lower", "sha256:" + want, "", "", nil},
		{"ok/fingerprint-openssl-form", "SHA256:" + openssl, "", "", nil},
		{"ok/fingerprint-with-explicit-security", "sha256:" + want, "    security_policy: Basic256Sha256\n    security_mode: SignAndEncrypt\n", "", nil},
		{"fail/fingerprint-63-digits", "sha256:" + want[1:], "", "",
			[]string{"brana.yaml:16: targets[0].server_certificate", "64 hex digits"}},
		{"fail/fingerprint-65-digits", "sha256:" + want + "0", "", "",
			[]string{"targets[0].server_certificate", "64 hex digits"}},
		{"fail/fingerprint-not-hex", "sha256:" + strings.Repeat("g", 64), "", "",
			[]string{"targets[0].server_certificate", "64 hex digits"}},
		{"fail/file-missing", "gone.pem", "", "",
			[]string{"brana.yaml:16: targets[0].server_certificate", "gone.pem", "no such file"}},
		{"fail/file-not-a-certificate", "junk.pem", "", "",
			[]string{"targets[0].server_certificate", "junk.pem is not a certificate"}},
		{"fail/with-security-none", "plc.pem", "    security_policy: None\n    security_mode: None\n", "",
			[]string{"targets[0].server_certificate", "protects nothing with security None"}},
		{"fail/with-mode-none", "sha256:" + want, "    security_mode: None\n", "",
			[]string{"targets[0].server_certificate", "protects nothing with security None"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodOPCUA, at) {
				t.Fatalf("test bug: %q not in config", at)
			}
			yaml := strings.Replace(goodOPCUA, at, at+"    server_certificate: "+tt.pin+"\n"+tt.extra, 1)
			c, err := Parse(filepath.Join(dir, "brana.yaml"), []byte(yaml))
			if tt.want != nil {
				if err == nil {
					t.Fatal("Parse succeeded; want an error")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tg := c.Targets[0]
			if tg.ServerCertificateSHA256 != want {
				t.Errorf("pin = %q, want %q", tg.ServerCertificateSHA256, want)
			}
			if tt.wantFile != "" && tg.ServerCertificate != tt.wantFile {
				t.Errorf("server_certificate resolved to %q, want %q", tg.ServerCertificate, tt.wantFile)
			}
		})
	}

	t.Run("fail/on-modbus-target", func(t *testing.T) {
		const at = "    address: 127.0.0.1:15020\n"
		_, err := Parse(filepath.Join(dir, "brana.yaml"), []byte(strings.Replace(goodOPCUA, at, at+"    server_certificate: plc.pem\n", 1)))
		if err == nil || !strings.Contains(err.Error(), "targets[1].server_certificate: only for opcua targets") {
			t.Fatalf("Parse: %v", err)
		}
	})
	t.Run("ok/unpinned", func(t *testing.T) {
		c, err := Parse(filepath.Join(dir, "brana.yaml"), []byte(goodOPCUA))
		if err != nil {
			t.Fatal(err)
		}
		if pin := c.Targets[0].ServerCertificateSHA256; pin != "" {
			t.Fatalf("pin %q without server_certificate", pin)
		}
	})
}
