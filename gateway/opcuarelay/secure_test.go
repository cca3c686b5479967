package opcuarelay

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
	"github.com/gopcua/opcua/uasc"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatarget"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opcua/secconv"
)

// testCert makes a self-signed RSA certificate with an application URI.
func testCert(t *testing.T, uri string, bits int) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: uri},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

type secureEnv struct {
	addr     string
	dir      string // audit log
	cert     []byte
	log      *audit.Log
	trustErr atomic.Pointer[error]
}

// startSecure runs a terminator with a secured endpoint on loopback; its
// target is never dialled by the channel-level tests.
func startSecure(t *testing.T, policies []string, modes []ua.MessageSecurityMode) *secureEnv {
	t.Helper()
	dir := t.TempDir()
	al, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Durability: audit.Batch, SyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	pol, err := policy.Compile(policy.Spec{Parties: []policy.PartySpec{{ID: "lab", Name: "Lab", Organisation: "Test", Kind: "operator",
		Networks: []string{"127.0.0.1/32"}}}}, []string{"plc"})
	if err != nil {
		t.Fatal(err)
	}
	var pp atomic.Pointer[policy.Policy]
	pp.Store(pol)
	cert, key := testCert(t, "urn:brana:test:server", 2048)
	env := &secureEnv{cert: cert, log: al, dir: filepath.Join(dir, "audit")}
	tg := opcuatarget.New(config.Target{Name: "plc", Endpoint: "opc.tcp://127.0.0.1:1", MaxSessions: 1, MaxPublish: 1,
		Timeout: config.Duration(time.Second)}, opcuatarget.Identity{}, "", slog.New(slog.DiscardHandler))
	srv := New(Options{Name: "opc-secure", Security: &Security{Server: secconv.NewServer(cert, key), Policies: policies, Modes: modes,
		Trust: func([]byte) error {
			if e := env.trustErr.Load(); e != nil {
				return *e
			}
			return nil
		}}}, tg, Deps{Policy: &pp, Audit: al, Log: slog.New(slog.DiscardHandler), BootID: "t", Sessions: sessions.NewRegistry(),
		Admit: func(*policy.Party, sessions.Identity) policy.Admission {
			return policy.Admission{Verdict: policy.Allow, Step: 6}
		}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	env.addr = ln.Addr().String()
	return env
}

// gopcuaChannel opens a secure channel with gopcua's client side.
func (e *secureEnv) gopcuaChannel(t *testing.T, policyURI string, mode ua.MessageSecurityMode) (*uasc.SecureChannel, error) {
	t.Helper()
	return e.gopcuaChannelVia(t, e.addr, policyURI, mode, time.Hour)
}

func (e *secureEnv) gopcuaChannelVia(t *testing.T, addr, policyURI string, mode ua.MessageSecurityMode, life time.Duration) (*uasc.SecureChannel, error) {
	t.Helper()
	cert, key := testCert(t, "urn:test:client", 2048)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint := "opc.tcp://" + addr
	conn, err := uacp.Dial(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	thumb := sha1.Sum(e.cert)
	cfg := &uasc.Config{SecurityPolicyURI: policyURI, SecurityMode: mode, Certificate: cert, LocalKey: key,
		RemoteCertificate: e.cert, Thumbprint: thumb[:], RequestTimeout: 5 * time.Second, Lifetime: uint32(life / time.Millisecond)}
	sc, err := uasc.NewSecureChannel(endpoint, conn, cfg, make(chan error, 8))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Open(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { sc.Close() })
	return sc, nil
}

func getEndpoints(t *testing.T, sc *uasc.SecureChannel) *ua.GetEndpointsResponse {
	t.Helper()
	var got *ua.GetEndpointsResponse
	err := sc.SendRequest(context.Background(), &ua.GetEndpointsRequest{EndpointURL: "opc.tcp://brana"}, nil, func(r ua.Response) error {
		got, _ = r.(*ua.GetEndpointsResponse)
		return nil
	})
	if err != nil || got == nil {
		t.Fatalf("GetEndpoints over the secured channel: %v", err)
	}
	return got
}

// gopcua's client opens secured channels to brana with every policy and
// mode brana offers, and a request and its answer pass both ways.
func TestSecureChannelWithGopcua(t *testing.T) {
	policies := []string{ua.SecurityPolicyURIBasic256Sha256, ua.SecurityPolicyURIAes128Sha256RsaOaep, ua.SecurityPolicyURIAes256Sha256RsaPss}
	modes := []ua.MessageSecurityMode{ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt}
	env := startSecure(t, policies, modes)
	for _, p := range policies {
		for _, m := range modes {
			t.Run(p[len("http://opcfoundation.org/UA/SecurityPolicy#"):]+"/"+m.String(), func(t *testing.T) {
				sc, err := env.gopcuaChannel(t, p, m)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				for range 3 { // several messages: sequence numbers and the same keys
					if eps := getEndpoints(t, sc); len(eps.Endpoints) == 0 {
						t.Fatal("no endpoints")
					}
				}
			})
		}
	}
	t.Run("fail/none-for-discovery-only", func(t *testing.T) {
		sc, err := env.gopcuaChannel(t, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
		if err != nil {
			t.Fatalf("discovery over None: %v", err)
		}
		if eps := getEndpoints(t, sc); len(eps.Endpoints) != 6 || eps.Endpoints[0].SecurityPolicyURI == ua.SecurityPolicyURINone {
			t.Fatalf("endpoints over the discovery channel: %d", len(eps.Endpoints))
		}
		var status ua.StatusCode
		err = sc.SendRequest(context.Background(), createSession(), nil, func(r ua.Response) error {
			if r != nil {
				status = r.Header().ServiceResult
			}
			return nil
		})
		if status == 0 {
			status = faultStatus(err, ua.StatusOK)
		}
		if status != ua.StatusBadSecurityModeRejected {
			t.Fatalf("CreateSession over None: %v, want BadSecurityModeRejected", status)
		}
	})
	t.Run("fail/untrusted", func(t *testing.T) {
		e := error(&net.AddrError{Err: "not in the trust list"})
		env.trustErr.Store(&e)
		defer env.trustErr.Store(nil)
		if _, err := env.gopcuaChannel(t, ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt); err == nil {
			t.Fatal("an untrusted client opened a channel")
		}
	})
}

// refusal waits for a session.refused record with reason and returns its detail.
func (e *secureEnv) refusal(t *testing.T, reason string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var detail string
		audit.Scan(e.dir, 0, func(l audit.Line) error {
			var r struct{ Type, Reason, Detail string }
			if json.Unmarshal(l.Bytes, &r) == nil && r.Type == "session.refused" && r.Reason == reason {
				detail = r.Detail
			}
			return nil
		})
		if detail != "" {
			return detail
		}
	}
	t.Fatalf("no session.refused record with reason %q", reason)
	return ""
}

// chunkProxy relays a client's connection to the endpoint and lets a test
// change what the client sends, chunk by chunk (HEL is chunk 0).
type chunkProxy struct {
	ln     net.Listener
	mutate func(i int, chunk []byte, inject func([]byte)) [][]byte
}

func newChunkProxy(t *testing.T, to string, mutate func(i int, chunk []byte, inject func([]byte)) [][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, up); c.Close() }()
			go func() {
				defer up.Close()
				var mu sync.Mutex
				write := func(b []byte) {
					mu.Lock()
					defer mu.Unlock()
					up.Write(b)
				}
				for i := 0; ; i++ {
					var h [8]byte
					if _, err := io.ReadFull(c, h[:]); err != nil {
						return
					}
					b := make([]byte, binary.LittleEndian.Uint32(h[4:]))
					copy(b, h[:])
					if _, err := io.ReadFull(c, b[8:]); err != nil {
						return
					}
					for _, out := range mutate(i, b, write) {
						write(out)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A secured channel that is tampered with, replayed into or fed an
// expired token is closed, and the audit log says why.
func TestSecureChannelAttacks(t *testing.T) {
	policies := []string{ua.SecurityPolicyURIBasic256Sha256}
	modes := []ua.MessageSecurityMode{ua.MessageSecurityModeSignAndEncrypt}
	t.Run("fail/tampered-chunk", func(t *testing.T) {
		env := startSecure(t, policies, modes)
		addr := newChunkProxy(t, env.addr, func(i int, b []byte, _ func([]byte)) [][]byte {
			if i == 3 { // the second MSG
				b[len(b)-20] ^= 0x01
			}
			return [][]byte{b}
		})
		sc, err := env.gopcuaChannelVia(t, addr, policies[0], modes[0], time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		getEndpoints(t, sc)
		err = sc.SendRequest(context.Background(), &ua.GetEndpointsRequest{EndpointURL: "x"}, nil, func(ua.Response) error { return nil })
		if err == nil {
			t.Fatal("a tampered request was answered")
		}
		if d := env.refusal(t, "security-checks-failed"); !strings.Contains(d, "signature does not verify") {
			t.Fatalf("refusal detail %q", d)
		}
	})
	t.Run("fail/replayed-sequence-number", func(t *testing.T) {
		env := startSecure(t, policies, modes)
		addr := newChunkProxy(t, env.addr, func(i int, b []byte, _ func([]byte)) [][]byte {
			if i == 2 { // the first MSG, twice
				return [][]byte{b, b}
			}
			return [][]byte{b}
		})
		sc, err := env.gopcuaChannelVia(t, addr, policies[0], modes[0], time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sc.SendRequest(context.Background(), &ua.GetEndpointsRequest{EndpointURL: "x"}, nil, func(ua.Response) error { return nil })
		if d := env.refusal(t, "sequence-replayed"); !strings.Contains(d, "does not follow") {
			t.Fatalf("refusal detail %q", d)
		}
	})
	t.Run("fail/old-token-after-renewal", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for a token renewal and its overlap")
		}
		env := startSecure(t, policies, modes)
		var old []byte
		renewed := make(chan func([]byte), 1)
		addr := newChunkProxy(t, env.addr, func(i int, b []byte, inject func([]byte)) [][]byte {
			switch {
			case i == 2:
				old = append([]byte(nil), b...) // a MSG under the first token
			case i > 2 && string(b[:3]) == "OPN":
				select {
				case renewed <- inject:
				default:
				}
			}
			return [][]byte{b}
		})
		// The shortest lifetime brana grants is 10 s; gopcua renews at 75 %.
		sc, err := env.gopcuaChannelVia(t, addr, policies[0], modes[0], 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		getEndpoints(t, sc)
		var inject func([]byte)
		select {
		case inject = <-renewed:
		case <-time.After(15 * time.Second):
			t.Fatal("gopcua did not renew its token")
		}
		time.Sleep(3 * time.Second) // past the old token's overlap (a quarter of 10 s)
		inject(old)
		if d := env.refusal(t, "token-unknown"); !strings.Contains(d, "security token 1") {
			t.Fatalf("refusal detail %q", d)
		}
	})
	t.Run("fail/none-when-not-offered", func(t *testing.T) {
		env := startSecure(t, policies, modes)
		sc, err := env.gopcuaChannel(t, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
		if err != nil {
			t.Fatal(err)
		}
		sc.SendRequest(context.Background(), createSession(), nil, func(ua.Response) error { return nil })
		if d := env.refusal(t, "policy-rejected"); !strings.Contains(d, "discovery only") {
			t.Fatalf("refusal detail %q", d)
		}
	})
	t.Run("fail/untrusted-certificate", func(t *testing.T) {
		env := startSecure(t, policies, modes)
		e := error(&net.AddrError{Err: "certificate abc not in the trust list"})
		env.trustErr.Store(&e)
		if _, err := env.gopcuaChannel(t, policies[0], modes[0]); err == nil {
			t.Fatal("an untrusted client opened a channel")
		}
		if d := env.refusal(t, "certificate-untrusted"); !strings.Contains(d, "not in the trust list") {
			t.Fatalf("refusal detail %q", d)
		}
	})
}

// createSession is a complete CreateSessionRequest, as a client sends it.
func createSession() *ua.CreateSessionRequest {
	return &ua.CreateSessionRequest{
		ClientDescription: &ua.ApplicationDescription{ApplicationURI: "urn:test:client",
			ApplicationName: &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: "test"}, ApplicationType: ua.ApplicationTypeClient},
		EndpointURL: "opc.tcp://brana", SessionName: "test", ClientNonce: make([]byte, 32), ClientCertificate: []byte{},
		RequestedSessionTimeout: 60000,
	}
}
