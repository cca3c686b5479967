package nodeopcua_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/nodeopcua"
)

// TestInitPKI checks that InitPKI makes the client's application
// certificate, that ClientCertificate returns it, and that it is kept.
func TestInitPKI(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pki := t.TempDir()
	if _, err := nodeopcua.ClientCertificate(pki); err == nil {
		t.Fatal("ClientCertificate of an empty folder: no error")
	}
	if err := nodeopcua.InitPKI(ctx, pki); err != nil {
		t.Fatal(err)
	}
	der, err := nodeopcua.ClientCertificate(pki)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	t.Logf("client certificate %q, URIs %v", cert.Subject, cert.URIs)
	if len(cert.URIs) == 0 || cert.URIs[0].Scheme != "urn" {
		t.Errorf("client certificate has no application URI: %v", cert.URIs)
	}
	if err := nodeopcua.InitPKI(ctx, pki); err != nil {
		t.Fatal(err)
	}
	if again, err := nodeopcua.ClientCertificate(pki); err != nil || !bytes.Equal(again, der) {
		t.Errorf("second InitPKI changed the certificate (err %v)", err)
	}
}

// TestClientRefusalNamesStatus checks that refused connections fail
// promptly with the status code the server answered, and that an X509 user
// identity works once the server trusts it.
func TestClientRefusalNamesStatus(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := nodeopcua.StartServer(t, nodeopcua.ServerOptions{})
	read := []nodeopcua.Op{{"op": "read", "nodeId": s.NodeID("Feeder.Setpoint")}}

	refused := func(name string, opts nodeopcua.ClientOptions, want string) {
		t.Helper()
		start := time.Now()
		res, log, err := nodeopcua.RunWith(ctx, s.Endpoint(), read, opts)
		took := time.Since(start)
		switch {
		case err == nil:
			t.Errorf("%s: connected: %+v", name, res)
		case !strings.Contains(err.Error(), want):
			t.Errorf("%s: error %q does not name %s\nclient log:\n%s", name, err, want, log)
		case took > 15*time.Second:
			t.Errorf("%s: refusal took %v", name, took)
		default:
			t.Logf("%s: refused in %v: %v", name, took.Round(time.Millisecond), err)
		}
	}

	// The client's certificate is made even when the session is refused.
	pki := t.TempDir()
	refused("wrong password", nodeopcua.ClientOptions{Security: secure, User: s.User(), Password: "wrong", PKIDir: pki}, "BadUserAccessDenied")
	if der, err := nodeopcua.ClientCertificate(pki); err != nil {
		t.Errorf("no client certificate after a refused run: %v", err)
	} else if _, err := x509.ParseCertificate(der); err != nil {
		t.Errorf("client certificate: %v", err)
	}

	// X509 user identities: the server trusts none at first.
	dir := t.TempDir()
	userCert, userKey := writeUser(t, dir, "alice")
	x509User := nodeopcua.ClientOptions{Security: secure, UserCert: userCert, UserKey: userKey, PKIDir: pki}
	refused("untrusted X509 user", x509User, "BadIdentityTokenRejected")

	// Trust alice as an operator would: out of rejected, into trusted.
	trust := func() {
		t.Helper()
		if err := trustUser(s, userCert); err != nil {
			t.Fatal(err)
		}
	}
	trust()
	// The server notices the change through file watchers.
	var res []nodeopcua.Result
	for attempt := 1; ; attempt++ {
		var (
			log string
			err error
		)
		res, log, err = nodeopcua.RunWith(ctx, s.Endpoint(), read, x509User)
		if err == nil {
			t.Logf("trusted X509 user: connected on attempt %d", attempt)
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "BadIdentityTokenRejected") {
			t.Fatalf("trusted X509 user: %v\nclient log:\n%s\nserver log:\n%s", err, log, s.Log())
		}
		time.Sleep(time.Second)
		trust() // a refusal rejects the certificate again
	}
	if len(res) != 1 || res[0].StatusCode != "Good" {
		t.Errorf("read as trusted X509 user: %+v", res)
	}
	sessions := 0
	for _, e := range s.Events() {
		if e.Event == "session" {
			sessions++
		}
	}
	if sessions != 1 {
		t.Errorf("server saw %d session activations, want 1 (the X509 user's)", sessions)
	}

	// Another user's key does not sign for alice's certificate.
	_, otherKey := writeUser(t, t.TempDir(), "mallory")
	wrongKey := x509User
	wrongKey.UserKey = otherKey
	refused("X509 user with the wrong key", wrongKey, "BadUserSignatureInvalid")

	if w := s.Writes(); len(w) != 0 {
		t.Errorf("writes reached the server: %+v", w)
	}
}

// TestClientConnectTimeout checks that client.js gives up on a server that
// accepts TCP connections and never answers.
func TestClientConnectTimeout(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	start := time.Now()
	_, _, err = nodeopcua.RunWith(ctx, "opc.tcp://"+l.Addr().String(), []nodeopcua.Op{{"op": "browse"}},
		nodeopcua.ClientOptions{ConnectTimeout: 2 * time.Second})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no session within 2 s") {
		t.Fatalf("silent server: %v", err)
	}
	if took > 15*time.Second {
		t.Errorf("gave up after %v", took)
	}
	t.Logf("silent server: gave up in %v: %v", took.Round(time.Millisecond), err)
}

// trustUser moves the user certificate in certFile (PEM) from the server's
// rejected user certificates to its trusted ones.
func trustUser(s *nodeopcua.Server, certFile string) error {
	pemCert, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	users := filepath.Join(filepath.Dir(s.PKIDir()), "user")
	rejected, _ := filepath.Glob(filepath.Join(users, "rejected", "*"))
	for _, f := range rejected {
		if b, err := os.ReadFile(f); err == nil && bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(pemCert)) {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(filepath.Join(users, "trusted", "certs", filepath.Base(certFile)), pemCert, 0o644)
}

// writeUser writes a self-signed user certificate and its PKCS#8 key as PEM
// files in dir.
func writeUser(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	der, key := clientCert(t, "urn:brana:testbench:user:"+name)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
