package nodeopcua_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/testbench/nodeopcua"
)

const secure = "Basic256Sha256:SignAndEncrypt"

func runOps(t *testing.T, ctx context.Context, s *nodeopcua.Server, opts nodeopcua.ClientOptions, ops []nodeopcua.Op) []nodeopcua.Result {
	t.Helper()
	res, log, err := nodeopcua.RunWith(ctx, s.Endpoint(), ops, opts)
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Fatalf("%v\nclient log:\n%s\nserver log:\n%s", err, log, s.Log())
	}
	for _, r := range res {
		if r.Error != "" {
			t.Errorf("op %d %s: %s", r.I, r.Op, r.Error)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// TestServerWithNodeOPCUAClient connects node-opcua's client to node-opcua's
// server with Basic256Sha256/SignAndEncrypt and a UserName identity.
func TestServerWithNodeOPCUAClient(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: "op", Password: "s3cret"})
	t.Logf("server %s, namespace %d", s.Endpoint(), s.NamespaceIndex())
	opts := nodeopcua.ClientOptions{Security: secure, User: s.User(), Password: s.Password(), PKIDir: t.TempDir()}
	ns := s.NamespaceURI()

	res := runOps(t, ctx, s, opts, []nodeopcua.Op{
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Voltage"},
		{"op": "write", "nodeId": s.NodeID("Feeder.Setpoint"), "dataType": "Double", "value": 42.5},
		{"op": "read", "path": "Feeder/Setpoint", "namespace": ns},
	})
	if r := res[0]; r.StatusCode != "Good" || r.DataType != "Double" {
		t.Errorf("read Voltage: %+v", r)
	} else if v, _ := r.Value.(float64); v < 200 || v > 250 {
		t.Errorf("Voltage = %v, want 220..240", r.Value)
	}
	if r := res[1]; r.StatusCode != "Good" {
		t.Errorf("write Setpoint: %+v", r)
	}
	if r := res[2]; r.Value != 42.5 {
		t.Errorf("read back Setpoint: %+v", r)
	}
	if n := s.WritesTo("Feeder.Setpoint"); n != 1 {
		t.Errorf("server saw %d writes to Setpoint, want 1: %+v", n, s.Writes())
	}
	if w := s.Writes(); len(w) != 1 || w[0].Value != 42.5 || w[0].Attribute != "Value" || w[0].StatusCode != "Good" {
		t.Errorf("server writes %+v", w)
	}

	res = runOps(t, ctx, s, opts, []nodeopcua.Op{
		{"op": "writeMany", "items": []any{
			map[string]any{"nodeId": s.NodeID("Feeder.Setpoint"), "dataType": "Double", "value": 7},
			map[string]any{"nodeId": s.NodeID("Feeder.Voltage"), "dataType": "Double", "value": 1},
			map[string]any{"nodeId": s.NodeID("Feeder.Limits"), "dataType": "Double", "value": []float64{150}, "indexRange": "1"},
			map[string]any{"nodeId": s.NodeID("Feeder.Setpoint"), "attribute": "DisplayName", "dataType": "LocalizedText", "value": "renamed"},
		}},
		{"op": "readMany", "items": []any{
			map[string]any{"nodeId": s.NodeID("Feeder.Setpoint")},
			map[string]any{"nodeId": s.NodeID("Feeder.Limits")},
			map[string]any{"nodeId": s.NodeID("Feeder.Limits"), "indexRange": "1:2"},
			map[string]any{"nodeId": s.NodeID("Feeder.Setpoint"), "attribute": "DisplayName"},
			map[string]any{"nodeId": s.NodeID("Feeder.Nothing")},
		}},
		{"op": "registerNodes", "items": []any{map[string]any{"nodeId": s.NodeID("Feeder.Setpoint")}}},
		{"op": "call", "path": "Feeder/Reset", "namespace": ns},
		{"op": "read", "nodeId": s.NodeID("Feeder.Setpoint")},
		{"op": "subscribe", "nodeId": s.NodeID("Feeder.Voltage"), "seconds": 2, "publishingInterval": 200},
	})
	if got, want := strings.Join(res[0].StatusCodes, ","), "Good,BadNotWritable,Good,BadNotWritable"; got != want {
		t.Errorf("writeMany status codes %s, want %s", got, want)
	}
	if r := res[1]; strings.Join(r.StatusCodes, ",") != "Good,Good,Good,Good,BadNodeIdUnknown" || len(r.Values) != 5 {
		t.Errorf("readMany: %+v", r)
	} else {
		if r.Values[0] != 7.0 {
			t.Errorf("Setpoint after writeMany = %v, want 7", r.Values[0])
		}
		if l, _ := r.Values[1].([]any); len(l) != 4 || l[1] != 150.0 || l[2] != 200.0 {
			t.Errorf("Limits after writeMany = %v, want [0 150 200 300]", r.Values[1])
		}
		if l, _ := r.Values[2].([]any); len(l) != 2 || l[0] != 150.0 {
			t.Errorf("Limits[1:2] = %v, want [150 200]", r.Values[2])
		}
		if r.Values[3] != "Setpoint" || r.DataTypes[3] != "LocalizedText" {
			t.Errorf("DisplayName = %v (%s), want Setpoint", r.Values[3], r.DataTypes[3])
		}
	}
	if r := res[2]; len(r.NodeIDs) != 1 || r.NodeIDs[0] == "" {
		t.Errorf("registerNodes: %+v", r)
	}
	if r := res[3]; r.StatusCode != "Good" || s.Calls() != 1 || s.CallsTo("Feeder.Reset") != 1 {
		t.Errorf("call Reset: %+v, server saw %d calls", r, s.Calls())
	}
	if r := res[4]; r.Value != 0.0 {
		t.Errorf("Setpoint after Reset = %v, want 0", r.Value)
	}
	if r := res[5]; r.Notifications < 5 || r.Terminated || len(r.Errors) > 0 {
		t.Errorf("subscription to Voltage: %+v", r)
	}

	if n := s.WritesTo("Feeder.Setpoint"); n != 3 {
		t.Errorf("server saw %d writes to Setpoint, want 3", n)
	}
	if n := s.WritesTo(s.NodeID("Feeder.Voltage")); n != 1 {
		t.Errorf("server saw %d writes to Voltage, want 1", n)
	}
	for _, w := range s.Writes() {
		want := "Good"
		if w.NodeID == s.NodeID("Feeder.Voltage") || w.Attribute == "DisplayName" {
			want = "BadNotWritable"
		}
		if w.StatusCode != want {
			t.Errorf("server answered %s to %+v, want %s", w.StatusCode, w, want)
		}
		if w.NodeID == s.NodeID("Feeder.Limits") && w.IndexRange != "1" {
			t.Errorf("Limits write with index range %q, want 1", w.IndexRange)
		}
	}
}

// TestServerRefusesInsecure checks that the server takes neither security
// None nor an anonymous or wrongly authenticated user.
func TestServerRefusesInsecure(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := nodeopcua.StartServer(t, nodeopcua.ServerOptions{})
	pki := t.TempDir()
	read := []nodeopcua.Op{{"op": "read", "nodeId": s.NodeID("Feeder.Voltage")}}
	write := []nodeopcua.Op{{"op": "write", "nodeId": s.NodeID("Feeder.Setpoint"), "dataType": "Double", "value": 1}}
	for _, c := range []struct {
		name string
		opts nodeopcua.ClientOptions
	}{
		{"none anonymous", nodeopcua.ClientOptions{}},
		{"none with user", nodeopcua.ClientOptions{User: s.User(), Password: s.Password()}},
		{"secure anonymous", nodeopcua.ClientOptions{Security: secure, PKIDir: pki}},
		{"secure wrong password", nodeopcua.ClientOptions{Security: secure, User: s.User(), Password: "wrong", PKIDir: pki}},
	} {
		res, _, err := nodeopcua.RunWith(ctx, s.Endpoint(), append(read, write...), c.opts)
		if err == nil {
			t.Errorf("%s: connected: %+v", c.name, res)
			continue
		}
		t.Logf("%s: refused: %v", c.name, err)
	}
	if w := s.Writes(); len(w) != 0 {
		t.Errorf("writes reached the server: %+v", w)
	}

	// node-opcua's client refuses None by itself when the server lists no
	// such endpoint; gopcua asks the server anyway.
	c, err := opcua.NewClient(s.Endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous(),
		opcua.AutoReconnect(false), opcua.DialTimeout(10*time.Second), opcua.RequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Connect(ctx)
	if err == nil {
		_ = c.Close(ctx)
		t.Fatal("gopcua connected with security None")
	}
	t.Logf("gopcua with security None: refused: %v", err)
}

// TestServerWithGopcua connects gopcua, the OPC UA stack brana's gateway
// uses, to node-opcua's server with Basic256Sha256/SignAndEncrypt and a
// UserName identity.
//
// gopcua v0.8.0 needs the server's certificate and the user token policy ID
// before it connects, and takes them only through SecurityFromEndpoint: with
// SecurityPolicy, SecurityModeString and AuthUsername alone it fails with
// "x509: malformed certificate" (no server certificate to encrypt with), and
// with RemoteCertificate added it sends no receiver certificate thumbprint,
// which node-opcua takes for an unencrypted OpenSecureChannel and drops
// (EOF). Either failure is logged, not asserted, so that a gopcua that fixes
// it does not fail this test.
func TestServerWithGopcua(t *testing.T) {
	nodeopcua.Require(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := nodeopcua.StartServer(t, nodeopcua.ServerOptions{})
	cert, key := clientCert(t, "urn:brana:gateway")
	base := []opcua.Option{
		opcua.ApplicationURI("urn:brana:gateway"),
		opcua.Certificate(cert), opcua.PrivateKey(key),
		opcua.AutoReconnect(false), opcua.DialTimeout(10 * time.Second), opcua.RequestTimeout(10 * time.Second),
	}
	connect := func(opts ...opcua.Option) (*opcua.Client, error) {
		c, err := opcua.NewClient(s.Endpoint(), append(append([]opcua.Option{}, base...), opts...)...)
		if err != nil {
			return nil, err
		}
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
		return c, nil
	}
	pemCert, err := s.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemCert)
	if blk == nil {
		t.Fatal("server certificate is not PEM")
	}

	explicit := []opcua.Option{
		opcua.SecurityPolicy("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"),
		opcua.SecurityModeString("SignAndEncrypt"),
		opcua.AuthUsername(s.User(), s.Password()),
	}
	for _, c := range []struct {
		name string
		opts []opcua.Option
	}{
		{"SecurityPolicy+SecurityModeString+AuthUsername", explicit},
		{"the same with RemoteCertificate", append(explicit[:len(explicit):len(explicit)], opcua.RemoteCertificate(blk.Bytes))},
	} {
		if cl, err := connect(c.opts...); err != nil {
			t.Logf("gopcua %s: %v", c.name, err)
		} else {
			t.Logf("gopcua %s: connected", c.name)
			_ = cl.Close(ctx)
		}
	}

	// What brana's gateway does: GetEndpoints, then SecurityFromEndpoint.
	eps, err := opcua.GetEndpoints(ctx, s.Endpoint(), base...)
	if err != nil {
		t.Fatalf("GetEndpoints: %v", err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt)
	if err != nil {
		t.Fatalf("SelectEndpoint: %v (endpoints %+v)", err, eps)
	}
	c, err := connect(opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName), opcua.AuthUsername(s.User(), s.Password()))
	if err != nil {
		t.Fatalf("gopcua SecurityFromEndpoint+AuthUsername: %v\nserver log:\n%s", err, s.Log())
	}
	defer c.Close(ctx)

	voltage := ua.MustParseNodeID(s.NodeID("Feeder.Voltage"))
	setpoint := ua.MustParseNodeID(s.NodeID("Feeder.Setpoint"))
	v, err := c.Node(voltage).Value(ctx)
	if err != nil {
		t.Fatalf("read Voltage: %v", err)
	}
	if f, _ := v.Value().(float64); f < 200 || f > 250 {
		t.Errorf("Voltage = %v, want 220..240", v.Value())
	}
	wr, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		{NodeID: setpoint, AttributeID: ua.AttributeIDValue, Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue, Value: ua.MustVariant(12.25)}},
		{NodeID: voltage, AttributeID: ua.AttributeIDValue, Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)}},
	}})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	if len(wr.Results) != 2 || wr.Results[0] != ua.StatusOK || wr.Results[1] != ua.StatusBadNotWritable {
		t.Errorf("write results %v, want [Good BadNotWritable]", wr.Results)
	}
	if v, err := c.Node(setpoint).Value(ctx); err != nil || v.Value() != 12.25 {
		t.Errorf("read back Setpoint: %v %v", v, err)
	}
	if n := s.WritesTo("Feeder.Setpoint"); n != 1 {
		t.Errorf("server saw %d writes to Setpoint, want 1", n)
	}
	if w := s.Writes(); len(w) != 2 || w[0].Value != 12.25 || w[0].StatusCode != "Good" || w[1].StatusCode != "BadNotWritable" {
		t.Errorf("server writes %+v", w)
	}
	users := 0
	for _, e := range s.Events() {
		if e.Event == "session" && e.User == s.User() {
			users++
		}
	}
	if users == 0 {
		t.Errorf("server saw no session of %s: %+v", s.User(), s.Events())
	}

	// The server certificate alone, from its PKI folder, is enough without
	// GetEndpoints when it comes in a synthetic EndpointDescription.
	c2, err := connect(opcua.SecurityFromEndpoint(&ua.EndpointDescription{
		SecurityPolicyURI: ua.SecurityPolicyURIBasic256Sha256,
		SecurityMode:      ua.MessageSecurityModeSignAndEncrypt,
		ServerCertificate: blk.Bytes,
		UserIdentityTokens: []*ua.UserTokenPolicy{
			{PolicyID: ep.UserIdentityTokens[0].PolicyID, TokenType: ua.UserTokenTypeUserName},
		},
	}, ua.UserTokenTypeUserName), opcua.AuthUsername(s.User(), s.Password()))
	if err != nil {
		t.Fatalf("gopcua with a synthetic endpoint: %v", err)
	}
	defer c2.Close(ctx)
	if _, err := c2.Node(voltage).Value(ctx); err != nil {
		t.Errorf("read Voltage with a synthetic endpoint: %v", err)
	}
}

// TestServerLongSubscription holds a subscription over SignAndEncrypt for
// longer than a minute, past node-opcua's default session and subscription
// timeouts if keep-alives failed.
func TestServerLongSubscription(t *testing.T) {
	nodeopcua.Require(t)
	if testing.Short() {
		t.Skip("65 s subscription")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := nodeopcua.StartServer(t, nodeopcua.ServerOptions{})
	opts := nodeopcua.ClientOptions{Security: secure, User: s.User(), Password: s.Password()}
	res := runOps(t, ctx, s, opts, []nodeopcua.Op{
		{"op": "subscribe", "nodeId": s.NodeID("Feeder.Voltage"), "seconds": 65, "publishingInterval": 500},
		{"op": "read", "nodeId": s.NodeID("Feeder.Voltage")},
	})
	r := res[0]
	if r.Terminated || len(r.Errors) > 0 || len(r.StatusChanges) > 0 {
		t.Errorf("subscription ended early or had trouble: terminated %v, errors %v, status changes %v",
			r.Terminated, r.Errors, r.StatusChanges)
	}
	if r.Notifications < 100 {
		t.Errorf("%d notifications in 65 s, want >= 100", r.Notifications)
	}
	if r.LastNotificationSeconds == nil || *r.LastNotificationSeconds < 60 {
		t.Errorf("last notification at %v s, want after 60 s", r.LastNotificationSeconds)
	}
	if res[1].StatusCode != "Good" {
		t.Errorf("read after the subscription: %+v", res[1])
	}
}

// clientCert makes a self-signed client application instance certificate
// with the application URI in its subject alternative names, as OPC UA
// requires.
func clientCert(t *testing.T, appURI string) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(appURI)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "brana gateway test", Organization: []string{"brana"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}
