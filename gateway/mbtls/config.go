package mbtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Config is one Modbus/TCP Security listener in the gateway config. Every
// unit id it receives goes to one target.
type Config struct {
	Listen     string   `yaml:"listen"`      // host:port, e.g. 0.0.0.0:802
	Cert       string   `yaml:"cert"`        // PEM file: the server certificate, then any intermediates
	Key        string   `yaml:"key"`         // PEM file: its private key, unencrypted
	ClientCAs  []string `yaml:"client_cas"`  // PEM files of the CAs whose client certificates are accepted
	Target     string   `yaml:"target"`      // the configured target this listener serves, all units
	MinVersion string   `yaml:"min_version"` // [1.2] or 1.3

	// Filled by Check.
	cert       tls.Certificate
	clientCAs  *x509.CertPool
	minVersion uint16
}

// DefaultPort is the registered port of Modbus/TCP Security.
const DefaultPort = 802

// Check fills defaults and returns what is wrong, one message per problem,
// each starting with the yaml key it is about ("cert: ..."); the caller
// prefixes the section. It loads the certificate, key and CA files, so that
// `brana check` finds a broken, mismatched or expired one. Whether Target
// names a configured target is for the caller to check.
func (c *Config) Check() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	if c.Listen == "" {
		bad("listen: required (example: 0.0.0.0:%d)", DefaultPort)
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port (example: 0.0.0.0:%d)", c.Listen, DefaultPort)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("listen: %q has no valid port", c.Listen)
	}

	switch {
	case c.Cert == "":
		bad("cert: required (PEM file with the server certificate)")
	case c.Key == "":
		bad("key: required (PEM file with the server certificate's private key)")
	default:
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			bad("cert: %s with key %s: %v", c.Cert, c.Key, err)
			break
		}
		if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				bad("cert: %s: %v", c.Cert, err)
				break
			}
		}
		now := time.Now()
		switch leaf := cert.Leaf; {
		case now.After(leaf.NotAfter):
			bad("cert: %s expired at %s", c.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			bad("cert: %s is not valid before %s", c.Cert, leaf.NotBefore.UTC().Format(time.RFC3339))
		default:
			c.cert = cert
		}
	}

	if len(c.ClientCAs) == 0 {
		bad("client_cas: required: mutual authentication needs the CAs that issue client certificates")
	}
	c.clientCAs = x509.NewCertPool()
	for i, f := range c.ClientCAs {
		certs, err := readCerts(f)
		switch {
		case err != nil:
			bad("client_cas[%d]: %v", i, err)
		case len(certs) == 0:
			bad("client_cas[%d]: %s holds no PEM certificate", i, f)
		}
		for _, ca := range certs {
			c.clientCAs.AddCert(ca)
		}
	}

	if c.Target == "" {
		bad("target: required (the target this listener serves)")
	}

	switch c.MinVersion {
	case "", "1.2":
		c.MinVersion, c.minVersion = "1.2", tls.VersionTLS12
	case "1.3":
		c.minVersion = tls.VersionTLS13
	default:
		bad("min_version: %q is not 1.2 or 1.3 (Modbus/TCP Security needs TLS 1.2 or later)", c.MinVersion)
	}
	return p
}

// readCerts parses every CERTIFICATE block of a PEM file.
func readCerts(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", file, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
}
