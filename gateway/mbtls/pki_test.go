package mbtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCert is a certificate made in the test, with its key and PEM files.
type testCert struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string
	keyFile  string
}

func (c *testCert) tls() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
}

// testPKI is two CAs and the certificates the tests use, all ECDSA P-256.
type testPKI struct {
	dir                string
	ca, otherCA        *testCert
	server             *testCert // for 127.0.0.1, from ca
	operator, engineer *testCert // CN hmi-01, roles Operator and Engineer
	laptop             *testCert // CN laptop, no role; bound by fingerprint
	expired            *testCert // CN hmi-01, role Operator, expired an hour ago
	wrongCA            *testCert // CN hmi-01, role Operator, from otherCA
	stranger           *testCert // CN stranger, role Operator, not bound
	badRole            *testCert // role as a PrintableString
	twoCountries       *testCert // C=CZ and C=CN
	expiredServer      *testCert
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.ca = p.make(t, "ca", nil, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "brana test CA", Country: []string{"CZ"}}
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		c.ExtKeyUsage = nil
	})
	p.otherCA = p.make(t, "other-ca", nil, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "untrusted CA"}
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
		c.ExtKeyUsage = nil
	})
	p.server = p.make(t, "server", p.ca, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "brana gateway"}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	})
	p.expiredServer = p.make(t, "expired-server", p.ca, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	})
	p.operator = p.client(t, "operator", p.ca, "hmi-01", "Operator", nil)
	p.engineer = p.client(t, "engineer", p.ca, "hmi-01", "Engineer", nil)
	p.laptop = p.client(t, "laptop", p.ca, "laptop", "", nil)
	p.expired = p.client(t, "expired", p.ca, "hmi-01", "Operator", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	})
	p.wrongCA = p.client(t, "wrong-ca", p.otherCA, "hmi-01", "Operator", nil)
	p.stranger = p.client(t, "stranger", p.ca, "stranger", "Operator", nil)
	p.badRole = p.client(t, "bad-role", p.ca, "hmi-01", "", func(c *x509.Certificate) {
		v, err := asn1.MarshalWithParams("Operator", "printable")
		if err != nil {
			t.Fatal(err)
		}
		c.ExtraExtensions = []pkix.Extension{{Id: OIDRole, Value: v}}
	})
	p.twoCountries = p.client(t, "two-countries", p.ca, "hmi-01", "Operator", func(c *x509.Certificate) {
		c.Subject.Country = []string{"CZ", "CN"}
	})
	return p
}

// roleExtension is the Modbus/TCP Security role extension for role.
func roleExtension(t *testing.T, role string) pkix.Extension {
	t.Helper()
	v, err := asn1.MarshalWithParams(role, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: OIDRole, Value: v}
}

// client makes a client certificate with subject CN and C=CZ, and the role
// extension unless role is "".
func (p *testPKI) client(t *testing.T, name string, ca *testCert, cn, role string, mod func(*x509.Certificate)) *testCert {
	t.Helper()
	return p.make(t, name, ca, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: cn, Country: []string{"CZ"}, Organization: []string{"Vendor s.r.o."}}
		if role != "" {
			c.ExtraExtensions = []pkix.Extension{roleExtension(t, role)}
		}
		if mod != nil {
			mod(c)
		}
	})
}

// make creates a key and a certificate signed by ca (self-signed if nil)
// and writes both as PEM files.
func (p *testPKI) make(t *testing.T, name string, ca *testCert, mod func(*x509.Certificate)) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if mod != nil {
		mod(tmpl)
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCert{cert: cert, key: key,
		certFile: filepath.Join(p.dir, name+".pem"), keyFile: filepath.Join(p.dir, name+".key")}
	writePEM(t, c.certFile, "CERTIFICATE", der)
	writePEM(t, c.keyFile, "PRIVATE KEY", pkcs8)
	return c
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
