package console

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// certValidity is long on purpose: the operator checks the fingerprint once,
// and a renewed certificate would have to be checked again.
const certValidity = 10 * 365 * 24 * time.Hour

// LoadOrCreateCertificate returns the console's TLS certificate from path
// (PEM: the certificate chain and its private key, in one file), or, when
// the file does not exist, creates a self-signed ECDSA P-256 certificate
// for hosts (names and IP addresses; empty: localhost, 127.0.0.1 and ::1)
// and writes it to path with mode 0600. It returns the SHA-256 fingerprint of
// the leaf certificate as colon-separated upper-case hex, as browsers show it,
// so that the gateway can print it for the operator to compare, and whether
// the file was created. A file that exists but cannot be read is an error,
// never replaced.
func LoadOrCreateCertificate(path string, hosts []string) (tls.Certificate, string, bool, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		cert, err := tls.X509KeyPair(data, data)
		if err != nil {
			return tls.Certificate{}, "", false, fmt.Errorf("console: certificate %s: %w", path, err)
		}
		return cert, Fingerprint(cert.Certificate[0]), false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return tls.Certificate{}, "", false, fmt.Errorf("console: certificate: %w", err)
	}
	data, err = selfSigned(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("console: creating a certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("console: certificate: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("console: writing certificate %s: %w", path, err)
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("console: certificate %s: %w", path, err)
	}
	return cert, Fingerprint(cert.Certificate[0]), true, nil
}

// Fingerprint is the SHA-256 of a DER certificate as "AB:CD:…".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// selfSigned returns PEM of a new self-signed server certificate and its key.
func selfSigned(hosts []string, now time.Time) ([]byte, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "brana console", Organization: []string{"brana"}},
		NotBefore:             now.Add(-time.Hour), // a gateway clock slightly behind the browser's still works
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...), nil
}
