package scenario

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/gwtest"
)

// oidModbusRole is the Modbus/TCP Security role extension
// (1.3.6.1.4.1.50316.802.1), an ASN.1 UTF8String.
var oidModbusRole = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 50316, 802, 1}

// tlsCert is a certificate made in the test, with its key and PEM files.
type tlsCert struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string
	keyFile  string
}

// makeCert creates an ECDSA P-256 key and a certificate for it signed by ca
// (self-signed if nil), after mod adjusts the template, and writes both as
// PEM files into dir.
func makeCert(t *testing.T, dir, name string, ca *tlsCert, mod func(*x509.Certificate)) *tlsCert {
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
	c := &tlsCert{cert: cert, key: key,
		certFile: filepath.Join(dir, name+".pem"), keyFile: filepath.Join(dir, name+".key")}
	for _, f := range []struct {
		file, typ string
		der       []byte
	}{{c.certFile, "CERTIFICATE", der}, {c.keyFile, "PRIVATE KEY", pkcs8}} {
		if err := os.WriteFile(f.file, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func makeCA(t *testing.T, dir, name string) *tlsCert {
	return makeCert(t, dir, name, nil, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: name, Country: []string{"CZ"}}
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		c.ExtKeyUsage = nil
	})
}

// makeClient makes a client certificate with subject CN cn, C=CZ and the
// Modbus role extension (not critical).
func makeClient(t *testing.T, dir, name string, ca *tlsCert, cn, role string, mod func(*x509.Certificate)) *tlsCert {
	t.Helper()
	v, err := asn1.MarshalWithParams(role, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return makeCert(t, dir, name, ca, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: cn, Country: []string{"CZ"}, Organization: []string{"Distribuce Lhota a.s."}}
		c.ExtraExtensions = []pkix.Extension{{Id: oidModbusRole, Value: v}}
		if mod != nil {
			mod(c)
		}
	})
}

// dialTLS connects to the Modbus/TCP Security listener at addr presenting
// client (whatever CAs the server names) and returns the raw Modbus client
// over the tls.Conn and the handshake error, if any. With TLS 1.3 a
// refused client certificate may show only on the first read.
func dialTLS(t *testing.T, addr string, ca, client *tlsCert) (*rawConn, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cc := tls.Certificate{Certificate: [][]byte{client.cert.Raw}, PrivateKey: client.key, Leaf: client.cert}
	tc := tls.Client(nc, &tls.Config{
		RootCAs:    roots,
		ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cc, nil
		},
	})
	t.Cleanup(func() { tc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	err = tc.Handshake()
	nc.SetDeadline(time.Time{})
	return &rawConn{t: t, c: tc, r: bufio.NewReader(tc), tx: 0x2000}, err
}

func sha256Hex(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// Modbus/TCP Security through the gateway: client certificates chained to
// the configured CA bind by CN and role to parties whose rules apply; a
// certificate from another CA or an expired one never gets a session, and
// each refusal is audited.
func TestModbusTLSThroughGateway(t *testing.T) {
	dir := t.TempDir()
	ca := makeCA(t, dir, "ca")
	otherCA := makeCA(t, dir, "untrusted-ca")
	server := makeCert(t, dir, "server", ca, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "brana gateway"}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	})
	operator := makeClient(t, dir, "operator", ca, "hmi-01", "Operator", nil)
	engineer := makeClient(t, dir, "engineer", ca, "hmi-01", "Engineer", nil)
	expired := makeClient(t, dir, "expired", ca, "hmi-01", "Engineer", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	})
	wrongCA := makeClient(t, dir, "wrong-ca", otherCA, "hmi-01", "Engineer", nil)

	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)

	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: `+plcAddr+`
modbus_tls:
  - listen: 127.0.0.1:0
    cert: `+server.certFile+`
    key: `+server.keyFile+`
    client_cas: [`+ca.certFile+`]
    target: plc
# Without networks a kind operator party is not local: it needs evidence,
# or admission holds its sessions for approval (step 5).
parties:
  - id: hmi-operator
    name: "HMI panel, operator"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    tls_clients: [{common_name: hmi-01, role: Operator}]
    evidence:
      established_in: CZ
      management_in: [CZ]
      operates_from: [CZ]
      data_to: [CZ]
      reviewed_on: 2026-10-01
      review_by: 2099-12-31
  - id: hmi-engineer
    name: "HMI panel, engineer"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    tls_clients: [{common_name: hmi-01, role: Engineer}]
    evidence:
      established_in: CZ
      management_in: [CZ]
      operates_from: [CZ]
      data_to: [CZ]
      reviewed_on: 2026-10-01
      review_by: 2099-12-31
rules:
  - name: operator-read
    parties: [hmi-operator]
    targets: ["*"]
    classes: [read]
  - name: engineer-setpoints
    parties: [hmi-engineer]
    targets: [plc]
    classes: [read, write]
    ranges:
      holding: ["100-119"]
`)
	addr := gw.ModbusTLSAddr(0).String()

	t.Run("ok/operator-reads", func(t *testing.T) {
		rc, err := dialTLS(t, addr, ca, operator)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if got := registers(t, rc.call(1, pduReadHolding(100, 3))); !slices.Equal(got, marks(1, 100, 3)) {
			t.Errorf("holding 100-102 = %v, want %v", got, marks(1, 100, 3))
		}
	})

	t.Run("fail/operator-write", func(t *testing.T) {
		rc, err := dialTLS(t, addr, ca, operator)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		expectException(t, rc.call(1, pduWriteSingle(100, 7)), 6, 0x01)
		if n := plc.Counters().Writes(1); n != 0 {
			t.Errorf("PLC received %d writes, want none", n)
		}
		if v := plc.Unit(1).HoldingRegister(100); v != mark(1, 100) {
			t.Errorf("holding 100 = %d, want %d unchanged", v, mark(1, 100))
		}
		rec := waitAudit(t, gw, "the refused write", commandFrom(rc.source(), 6))
		if rec.Party != "hmi-operator" || rec.Decision != "deny" {
			t.Errorf("command record: %s", rec.String())
		}
	})

	var engineerSrc string
	t.Run("ok/engineer-writes", func(t *testing.T) {
		rc, err := dialTLS(t, addr, ca, engineer)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		engineerSrc = rc.source()
		resp := rc.call(1, pduWriteSingle(105, 4242))
		if want := pduWriteSingle(105, 4242); !slices.Equal(resp, want) {
			t.Fatalf("answer % x, want echo % x", resp, want)
		}
		if n := plc.Counters().Writes(1); n != 1 {
			t.Errorf("PLC received %d writes, want 1", n)
		}
		if v := plc.Unit(1).HoldingRegister(105); v != 4242 {
			t.Errorf("holding 105 = %d, want 4242", v)
		}
		if got := registers(t, rc.call(1, pduReadHolding(105, 1))); !slices.Equal(got, []uint16{4242}) {
			t.Errorf("read back %v, want [4242]", got)
		}
	})

	for _, tt := range []struct {
		name string
		cert *tlsCert
	}{
		{"fail/wrong-ca", wrongCA},
		{"fail/expired", expired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := plc.Counters().Total()
			rc, err := dialTLS(t, addr, ca, tt.cert)
			if err == nil {
				// TLS 1.3: the server checks the client certificate after
				// the client's handshake is done; the refusal shows here.
				rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, werr := rc.c.Write(frame(1, 1, pduReadHolding(100, 1))); werr == nil {
					if f, rerr := rc.readFrame(5 * time.Second); rerr == nil {
						t.Fatalf("refused certificate got an answer: % x", f)
					}
				}
			}
			rec := waitAudit(t, gw, "the refused handshake", func(r *auditRec) bool {
				return r.Type == "session.refused" && r.Source == rc.source()
			})
			if rec.Reason != "tls handshake" || rec.Decision != "deny" || rec.Party != "" {
				t.Errorf("refusal record: %s", rec.String())
			}
			for _, r := range readAudit(t, gw.AuditPath()) {
				if r.Source == rc.source() && r.Type != "session.refused" {
					t.Errorf("unexpected record for the refused client: %s", r.String())
				}
			}
			if n := plc.Counters().Total(); n != before {
				t.Errorf("PLC saw %d more requests, want none", n-before)
			}
		})
	}

	t.Run("ok/session-open-names-certificate", func(t *testing.T) {
		if engineerSrc == "" {
			t.Skip("no engineer session")
		}
		rec := waitAudit(t, gw, "the engineer's session.open", func(r *auditRec) bool {
			return r.Type == "session.open" && r.Source == engineerSrc
		})
		want := fmt.Sprintf(`tls certificate "hmi-01" role "Engineer" sha256:%s`, sha256Hex(engineer.cert.Raw))
		if rec.Party != "hmi-engineer" || !strings.Contains(rec.Detail, want) {
			t.Errorf("session.open record: %s\nwant party hmi-engineer and detail containing %s", rec.String(), want)
		}
	})
}
