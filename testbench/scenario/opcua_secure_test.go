package scenario

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/gateway/passhash"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/nodeopcua"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// secureOPCUA is a gateway with brana's own secured OPC UA endpoint in
// front of the simulated feeder PLC.
type secureOPCUA struct {
	gw       *gwtest.Gateway
	plc      *opcuasim.PLC
	endpoint string
	trust    *opcuatrust.Store
	userCert string // PEM files of the X.509 user bound to vendor-de
	userKey  string
}

// writePEM writes a self-signed certificate and its key for uri.
func writePEM(t *testing.T, dir, name, uri string) (certPath, keyPath string, der []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), URIs: []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return certPath, keyPath, der
}

func startSecureOPCUA(t *testing.T) *secureOPCUA {
	t.Helper()
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	dir := t.TempDir()
	hash, err := passhash.New("anna-password")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "users.yaml"), []byte("users:\n  - {user: anna, hash: \""+hash+"\"}\n"), 0o600)
	userCert, userKey, userDER := writePEM(t, dir, "li-wei", "urn:vendor:li-wei")
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: opc-secure
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
    policies: [Basic256Sha256, Aes128_Sha256_RsaOaep]
    modes: [Sign, SignAndEncrypt]
    identities: [anonymous, username, x509]
    users: `+filepath.Join(dir, "users.yaml")+`
targets:
  - name: line-opc
    protocol: opcua
    endpoint: `+plc.Endpoint()+`
`+strings.Replace(partiesYAML, "parties:\n", `parties:
  - id: vendor-de
    name: "Anna Schmidt"
    organisation: "Beispiel GmbH"
    kind: vendor
    opcua_users: [anna]
    tls_clients: [{fingerprint: "`+policy.TLSFingerprint(userDER)+`"}]
    evidence: {established_in: DE, management_in: [DE], operates_from: [DE], data_to: [DE], reviewed_on: 2026-10-01, review_by: 2099-01-01}
`, 1)+strings.ReplaceAll(opcuaRules("monitoring", "line-opc", ns), "[monitoring]", "[monitoring, vendor-de]"))
	store, err := opcuatrust.Open(filepath.Join(gw.Dir, "data", "opcua-pki"))
	if err != nil {
		t.Fatal(err)
	}
	return &secureOPCUA{gw: gw, plc: plc, endpoint: "opc.tcp://" + gw.Addr("opc-secure").String(), trust: store,
		userCert: userCert, userKey: userKey}
}

// trustedClient makes a node-opcua PKI whose application certificate brana
// first rejects (and keeps for review), then trusts, as an operator would.
func (e *secureOPCUA) trustedClient(t *testing.T, opts nodeopcua.ClientOptions) nodeopcua.ClientOptions {
	t.Helper()
	opts.PKIDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, err := nodeopcua.RunWith(ctx, e.endpoint, []nodeopcua.Op{{"op": "read", "nodeId": "i=2258"}}, opts)
	if err == nil {
		t.Fatal("an untrusted application certificate opened a session")
	}
	der, cerr := nodeopcua.ClientCertificate(opts.PKIDir)
	if cerr != nil {
		t.Fatal(cerr)
	}
	thumb := opcuatrust.Thumbprint(der)
	rejected, _ := e.trust.List("rejected")
	found := false
	for _, r := range rejected {
		found = found || r.Thumbprint == thumb
	}
	if !found {
		t.Fatalf("the refused certificate %s is not in rejected/ for review (%v); client said: %v", thumb, rejected, err)
	}
	waitAudit(t, e.gw, "the untrusted certificate", func(r *auditRec) bool {
		return r.Type == "session.refused" && r.Reason == "certificate-untrusted" && strings.Contains(r.Detail, thumb[:8])
	})
	if _, err := e.trust.Trust(thumb); err != nil {
		t.Fatal(err)
	}
	return opts
}

func runSecure(t *testing.T, endpoint string, ops []nodeopcua.Op, opts nodeopcua.ClientOptions, timeout time.Duration) ([]nodeopcua.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, log, err := nodeopcua.RunWith(ctx, endpoint, ops, opts)
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Logf("node-opcua log:\n%s", log)
	}
	return res, err
}

// The [O2] done-when: node-opcua connects to brana's own endpoint with
// Basic256Sha256 SignAndEncrypt and Aes128_Sha256_RsaOaep Sign, as an
// anonymous, a user-name and an X.509 user; the [O1] service checks pass
// over it; an untrusted certificate and a wrong password are refused and
// recorded.
func TestOPCUASecureEndpoint(t *testing.T) {
	nodeopcua.Require(t)
	e := startSecureOPCUA(t)
	ns := e.plc.NamespaceURI()
	anna := e.trustedClient(t, nodeopcua.ClientOptions{Security: "Basic256Sha256:SignAndEncrypt", User: "anna", Password: "anna-password"})

	t.Run("services/Basic256Sha256-SignAndEncrypt-username", func(t *testing.T) {
		res, err := runSecure(t, e.endpoint, opcuaServiceOps(ns), anna, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkOPCUAServices(t, e.plc, res)
		waitAudit(t, e.gw, "anna's session", func(r *auditRec) bool {
			return r.Type == "session.open" && r.Party == "vendor-de" && strings.Contains(r.Detail, "opc ua user anna") &&
				strings.Contains(r.Detail, "channel Basic256Sha256/SignAndEncrypt")
		})
	})
	read := []nodeopcua.Op{
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.TimeDelay", "dataType": "Double", "value": 3},
	}
	check := func(t *testing.T, res []nodeopcua.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res[0].StatusCode != "Good" || res[1].StatusCode != "BadUserAccessDenied" {
			t.Fatalf("read %s, denied write %s", res[0].StatusCode, res[1].StatusCode)
		}
	}
	t.Run("Aes128_Sha256_RsaOaep-Sign-anonymous", func(t *testing.T) {
		opts := anna
		opts.Security, opts.User, opts.Password = "Aes128_Sha256_RsaOaep:Sign", "", ""
		res, err := runSecure(t, e.endpoint, read, opts, 60*time.Second)
		check(t, res, err)
		waitAudit(t, e.gw, "the anonymous session", func(r *auditRec) bool {
			return r.Type == "session.open" && r.Party == "monitoring" && strings.Contains(r.Detail, "channel Aes128_Sha256_RsaOaep/Sign;")
		})
	})
	t.Run("Basic256Sha256-SignAndEncrypt-x509", func(t *testing.T) {
		opts := anna
		opts.User, opts.Password, opts.UserCert, opts.UserKey = "", "", e.userCert, e.userKey
		res, err := runSecure(t, e.endpoint, read, opts, 60*time.Second)
		check(t, res, err)
		waitAudit(t, e.gw, "the X.509 user's session", func(r *auditRec) bool {
			return r.Type == "session.open" && r.Party == "vendor-de" && strings.Contains(r.Detail, "opc ua user certificate")
		})
	})
	t.Run("fail/wrong-password", func(t *testing.T) {
		opts := anna
		opts.Password = "guess"
		if _, err := runSecure(t, e.endpoint, read, opts, 60*time.Second); err == nil || !strings.Contains(err.Error(), "BadUserAccessDenied") {
			t.Fatalf("wrong password: %v, want BadUserAccessDenied", err)
		}
		waitAudit(t, e.gw, "the wrong password", func(r *auditRec) bool {
			return r.Type == "session.refused" && r.Reason == "identity" && strings.Contains(r.Detail, `"anna"`) && !strings.Contains(r.Detail, "guess")
		})
	})
	if n := e.plc.WritesTo("Feeder.Protection.TimeDelay"); n != 0 {
		t.Fatalf("denied writes reached the PLC: %d", n)
	}
}

// gopcua's own client opens a SignAndEncrypt session with a user name
// through brana's endpoint, as its documentation shows: GetEndpoints,
// pick one, SecurityFromEndpoint.
func TestOPCUASecureEndpointGopcua(t *testing.T) {
	e := startSecureOPCUA(t)
	dir := t.TempDir()
	_, keyPath, der := writePEM(t, dir, "gopcua-client", "urn:gopcua:client")
	if _, err := e.trust.Add(der); err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(keyPath)
	blk, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := gopcua.GetEndpoints(ctx, e.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if ep.SecurityPolicyURI == ua.SecurityPolicyURINone || !strings.HasPrefix(ep.Server.ApplicationURI, "urn:brana:") {
			t.Fatalf("endpoint %s %s of %s: brana offers no None here and describes itself", ep.SecurityPolicyURI, ep.SecurityMode, ep.Server.ApplicationURI)
		}
	}
	ep, err := gopcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gopcua.NewClient(e.endpoint, gopcua.Certificate(der), gopcua.PrivateKey(key), gopcua.ApplicationURI("urn:gopcua:client"),
		gopcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName), gopcua.AuthUsername("anna", "anna-password"), gopcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("gopcua SignAndEncrypt session: %v", err)
	}
	defer c.Close(ctx)
	resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: e.plc.NodeID("Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDValue}}})
	if err != nil || resp.Results[0].Status != ua.StatusOK {
		t.Fatalf("read: %v %+v", err, resp)
	}
	wr, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: e.plc.NodeID("Feeder.Protection.TimeDelay"),
		AttributeID: ua.AttributeIDValue, Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(4.0)}}}})
	if err != nil || !errors.Is(wr.Results[0], ua.StatusBadUserAccessDenied) {
		t.Fatalf("denied write: %v %+v", err, wr)
	}
}

// A subscription over the secured endpoint keeps delivering for a minute.
func TestOPCUASecureSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for over a minute")
	}
	nodeopcua.Require(t)
	t.Parallel()
	e := startSecureOPCUA(t)
	opts := e.trustedClient(t, nodeopcua.ClientOptions{Security: "Basic256Sha256:SignAndEncrypt", User: "anna", Password: "anna-password"})
	res, err := runSecure(t, e.endpoint, []nodeopcua.Op{
		{"op": "subscribe", "path": "Feeder/Heartbeat", "namespace": e.plc.NamespaceURI(), "seconds": 65, "publishingInterval": 500, "samplingInterval": 250},
	}, opts, 150*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Error != "" || r.Terminated || r.Notifications < 60 || r.LastNotificationSeconds == nil || *r.LastNotificationSeconds < 60 {
		t.Fatalf("subscription over 65 s: %d notifications, the last at %v s, terminated %v (%s)",
			r.Notifications, r.LastNotificationSeconds, r.Terminated, r.Error)
	}
}
