package opcuatrust

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// Identity is one of brana's OPC UA application instance certificates and
// its key: the client certificate towards PLCs, or the server certificate
// of brana's own endpoints.
type Identity struct {
	Cert   []byte // DER
	Key    *rsa.PrivateKey
	AppURI string // the URI in the certificate's SubjectAltName
}

// LoadOrCreateIdentity reads an OPC UA application certificate and key from
// path (one PEM file, mode 0600), or creates them at first start: RSA 2048,
// self-signed, ten years, appURI in the SubjectAltName (OPC UA peers compare
// it with the ApplicationUri they are told), and dnsNames and ips beside it
// (clients compare them with the host of the endpoint URL). created says
// which. A certificate read from path keeps the names it was made with.
func LoadOrCreateIdentity(path, appURI string, dnsNames []string, ips []net.IP) (id Identity, created bool, err error) {
	id, err = LoadIdentity(path)
	if !errors.Is(err, os.ErrNotExist) {
		return id, false, err
	}
	u, err := url.Parse(appURI)
	if err != nil || u.Scheme == "" {
		return id, false, fmt.Errorf("opcua application uri %q is not a URI", appURI)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return id, false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return id, false, err
	}
	cn := "brana gateway"
	if len(dnsNames) > 0 {
		cn += " " + dnsNames[0]
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"brana"}},
		NotBefore:    now.Add(-time.Hour), // tolerate a peer whose clock is a little behind
		NotAfter:     now.AddDate(10, 0, 0),
		// OPC UA Part 6, 6.2.2: application instance certificates carry
		// these usages, keyCertSign because they are self-signed.
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return id, false, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return id, false, err
	}
	if err := atomicfile.WriteFile(path, out, 0o600); err != nil {
		return id, false, err
	}
	return Identity{Cert: der, Key: key, AppURI: u.String()}, true, nil
}

// LoadIdentity reads a certificate and key that LoadOrCreateIdentity
// wrote. A missing file is an error that wraps os.ErrNotExist.
func LoadIdentity(path string) (Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, fmt.Errorf("opcua certificate: %w", err)
	}
	id, err := parseIdentity(b)
	if err != nil {
		return id, fmt.Errorf("opcua certificate %s: %w", path, err)
	}
	return id, nil
}

func parseIdentity(b []byte) (Identity, error) {
	var id Identity
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			id.Cert = blk.Bytes
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return id, err
			}
			id.Key = k
		}
	}
	if id.Cert == nil || id.Key == nil {
		return id, errors.New("want a CERTIFICATE and an RSA PRIVATE KEY block")
	}
	c, err := x509.ParseCertificate(id.Cert)
	if err != nil {
		return id, err
	}
	if pub, ok := c.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&id.Key.PublicKey) {
		return id, errors.New("the key does not belong to the certificate")
	}
	if len(c.URIs) == 0 {
		return id, errors.New("the certificate has no application URI in its SubjectAltName")
	}
	id.AppURI = c.URIs[0].String()
	return id, nil
}

// Thumbprint is the SHA-1 of a DER certificate in lower-case hex, as OPC UA
// tools show it and name certificate files.
func Thumbprint(der []byte) string {
	h := sha1.Sum(der)
	return hex.EncodeToString(h[:])
}
