package opcuatarget

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
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// LoadOrCreateIdentity reads brana's OPC UA application certificate and key
// from path (one PEM file, mode 0600), or creates them at first start with
// appURI in the SubjectAltName, which OPC UA servers compare with the
// ApplicationUri of the session. created says which.
func LoadOrCreateIdentity(path, appURI, host string) (id Identity, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id, err = parseIdentity(b)
		if err != nil {
			return id, false, fmt.Errorf("opcua client certificate %s: %w", path, err)
		}
		return id, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return id, false, fmt.Errorf("opcua client certificate: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return id, false, err
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return id, false, fmt.Errorf("opcua application uri %q: %w", appURI, err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "brana gateway " + host, Organization: []string{"brana"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{host},
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
	return Identity{Cert: der, Key: key, AppURI: appURI}, true, nil
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
	if len(c.URIs) == 0 {
		return id, errors.New("the certificate has no application URI in its SubjectAltName")
	}
	id.AppURI = c.URIs[0].String()
	return id, nil
}

// Thumbprint is the SHA-1 of a DER certificate in hex, as OPC UA tools show it.
func Thumbprint(der []byte) string {
	h := sha1.Sum(der)
	return hex.EncodeToString(h[:])
}
