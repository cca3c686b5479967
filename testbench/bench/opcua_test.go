package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/gateway/passhash"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// BenchmarkOPCUARead reads one node with gopcua's client on three paths in
// the same run, one request at a time, the paths interleaved request by
// request so that machine noise hits them alike: direct to the simulated
// PLC, through brana's loopback listener (security None, the SSH link's
// path), and through brana's secured endpoint (Basic256Sha256
// SignAndEncrypt, a user name). brana forwards over its own session to the
// PLC in both cases. Metrics: PATH-p50-us, PATH-p99-us, and the p50 ratios
// of the brana paths to direct.
func BenchmarkOPCUARead(b *testing.B) {
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "feeder"})
	if err != nil {
		b.Fatal(err)
	}
	if err := plc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer plc.Close()
	ns := plc.NamespaceURI()
	dir := b.TempDir()
	usersFile := filepath.Join(dir, "users.yaml")
	writeUsers(b, usersFile)
	gw := gwtest.Start(b, `version: 1
gateway: {name: bench, data_dir: data}
audit: {durability: batch}
listeners:
  - {name: opc-none, protocol: opcua, address: 127.0.0.1:0, target: line-opc}
  - name: opc-secure
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
    policies: [Basic256Sha256]
    modes: [SignAndEncrypt]
    identities: [username]
    users: `+usersFile+`
targets:
  - {name: line-opc, protocol: opcua, endpoint: "`+plc.Endpoint()+`"}
parties:
  - {id: lab, name: Lab, organisation: Bench, kind: operator, networks: [127.0.0.1/32], opcua_users: [bench]}
rules:
  - {name: read, parties: [lab], targets: [line-opc], classes: [read], opcua: {namespace: "`+ns+`"}}
  - {name: read0, parties: [lab], targets: [line-opc], classes: [read], opcua: {namespace: "http://opcfoundation.org/UA/"}}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	connect := func(endpoint string, opts ...gopcua.Option) *gopcua.Client {
		c, err := gopcua.NewClient(endpoint, append(opts, gopcua.AutoReconnect(false))...)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			b.Fatalf("%s: %v", endpoint, err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	secure := "opc.tcp://" + gw.Addr("opc-secure").String()
	cert, key := benchCert(b)
	store, err := opcuatrust.Open(filepath.Join(gw.Dir, "data", "opcua-pki"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Add(cert); err != nil {
		b.Fatal(err)
	}
	eps, err := gopcua.GetEndpoints(ctx, secure)
	if err != nil {
		b.Fatal(err)
	}
	ep, err := gopcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt)
	if err != nil {
		b.Fatal(err)
	}
	paths := []struct {
		name string
		c    *gopcua.Client
		lat  []float64
	}{
		{name: "direct", c: connect(plc.Endpoint(), gopcua.SecurityMode(ua.MessageSecurityModeNone))},
		{name: "brana", c: connect("opc.tcp://"+gw.Addr("opc-none").String(), gopcua.SecurityMode(ua.MessageSecurityModeNone))},
		{name: "brana-secure", c: connect(secure, gopcua.Certificate(cert), gopcua.PrivateKey(key), gopcua.ApplicationURI("urn:bench:client"),
			gopcua.SecurityFromEndpoint(ep, ua.UserTokenTypeUserName), gopcua.AuthUsername("bench", "bench-password"))},
	}
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: plc.NodeID("Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDValue}},
		TimestampsToReturn: ua.TimestampsToReturnBoth}
	const perRound = 200
	for range b.N {
		for i := range perRound {
			for j := range paths {
				p := &paths[(i+j)%len(paths)]
				t0 := time.Now()
				resp, err := p.c.Read(ctx, req)
				if err != nil || resp.Results[0].Status != ua.StatusOK {
					b.Fatalf("%s read: %v", p.name, err)
				}
				p.lat = append(p.lat, float64(time.Since(t0).Microseconds()))
			}
		}
	}
	pct := func(l []float64, q float64) float64 {
		s := slices.Clone(l)
		slices.Sort(s)
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	for _, p := range paths {
		b.ReportMetric(pct(p.lat, 0.5), p.name+"-p50-us")
		b.ReportMetric(pct(p.lat, 0.99), p.name+"-p99-us")
	}
	b.ReportMetric(pct(paths[1].lat, 0.5)/pct(paths[0].lat, 0.5), "brana-p50-ratio")
	b.ReportMetric(pct(paths[2].lat, 0.5)/pct(paths[0].lat, 0.5), "secure-p50-ratio")
}

func writeUsers(b *testing.B, path string) {
	b.Helper()
	h, err := passhash.New("bench-password")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("users:\n  - {user: bench, hash: \""+h+"\"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
}

func benchCert(b *testing.B) ([]byte, *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("urn:bench:client")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageContentCommitment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return der, key
}
