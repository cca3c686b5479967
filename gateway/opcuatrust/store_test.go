package opcuatrust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
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
	"sync"
	"testing"
	"time"
)

var (
	signerOnce sync.Once
	signer     *rsa.PrivateKey
)

// testKey is one RSA 2048 key shared by the tests: generating keys is slow.
func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	signerOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		signer = k
	})
	return signer
}

var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

type certOpts struct {
	cn        string
	uri       string // "" = none
	pub       any    // nil = the test key's
	notBefore time.Time
	notAfter  time.Time
	ca        bool
}

// makeCert makes a certificate signed with the test key. Its subject key
// may be another (pub): the signature does not matter to the store, and a
// bare public key of any size costs nothing to make.
func makeCert(t testing.TB, o certOpts) []byte {
	t.Helper()
	k := testKey(t)
	if o.pub == nil {
		o.pub = &k.PublicKey
	}
	if o.notBefore.IsZero() {
		o.notBefore = now.Add(-24 * time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.Add(24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.cn, Organization: []string{"test"}},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:         o.ca, BasicConstraintsValid: true,
	}
	if o.uri != "" {
		u, _ := url.Parse(o.uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, o.pub, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// bigKey is a public key of bits bits; nobody holds its private half.
func bigKey(bits int) *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.SetBit(n, 0, 1)
	return &rsa.PublicKey{N: n, E: 65537}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func files(t *testing.T, s *Store, which string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(s.Dir(), which, "*"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestOpen(t *testing.T) {
	s := openStore(t)
	for _, d := range []string{"", Trusted, Rejected} {
		fi, err := os.Stat(filepath.Join(s.Dir(), d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	if _, err := Open(s.Dir()); err != nil {
		t.Fatalf("opening again: %v", err)
	}
}

func TestCheck(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := makeCert(t, certOpts{cn: "UaExpert", uri: "urn:eng-laptop:UaExpert"})
	ca := makeCert(t, certOpts{cn: "Some CA", uri: "urn:ca", ca: true})
	tests := []struct {
		name     string
		der      []byte
		trust    []byte // added to trusted/ first
		sentinel error
		reason   string
		rejected bool // the certificate lands in rejected/
	}{
		{"ok/trusted", good, good, nil, "", false},
		{"ok/chain-leaf-first", append(append([]byte{}, good...), ca...), good, nil, "", false},
		{"fail/chain-ca-first", append(append([]byte{}, ca...), good...), good, ErrNotTrusted, "not trusted", true},
		{"fail/unknown", good, nil, ErrNotTrusted, "copied to", true},
		{"fail/expired", makeCert(t, certOpts{cn: "old", uri: "urn:old", notAfter: now.Add(-time.Minute)}), nil,
			ErrTimeInvalid, "expired on 2030-06-01T11:59:00Z", false},
		{"fail/expired-though-trusted", makeCert(t, certOpts{cn: "old", uri: "urn:old", notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)}),
			makeCert(t, certOpts{cn: "old", uri: "urn:old", notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)}), ErrTimeInvalid, "expired", false},
		{"fail/not-yet-valid", makeCert(t, certOpts{cn: "new", uri: "urn:new", notBefore: now.Add(time.Hour)}), nil,
			ErrTimeInvalid, "not valid before", false},
		{"fail/rsa-1024", makeCert(t, certOpts{cn: "weak", uri: "urn:weak", pub: bigKey(1024)}), nil, ErrKey, "1024 bits, fewer than 2048", false},
		{"fail/rsa-8192", makeCert(t, certOpts{cn: "huge", uri: "urn:huge", pub: bigKey(8192)}), nil, ErrKey, "8192 bits, more than 4096", false},
		{"ok/rsa-4096-untrusted", makeCert(t, certOpts{cn: "big", uri: "urn:big", pub: bigKey(4096)}), nil, ErrNotTrusted, "not trusted", true},
		{"fail/ecdsa", makeCert(t, certOpts{cn: "ec", uri: "urn:ec", pub: &ec.PublicKey}), nil, ErrKey, "ECDSA, not RSA", false},
		{"fail/no-uri", makeCert(t, certOpts{cn: "nouri"}), nil, ErrNoURI, "no application URI", false},
		{"fail/garbage", []byte("not a certificate"), nil, ErrMalformed, "not an X.509 certificate", false},
		{"fail/empty", nil, nil, ErrMalformed, "not an X.509 certificate", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			if tt.trust != nil {
				if _, err := s.Add(tt.trust); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Check(tt.der, now)
			if tt.sentinel == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var u *Untrusted
			if !errors.As(err, &u) || !errors.Is(err, tt.sentinel) || !strings.Contains(u.Reason, tt.reason) {
				t.Fatalf("Check = %v; want an *Untrusted, %v, reason containing %q", err, tt.sentinel, tt.reason)
			}
			if len(u.Thumbprint) != 40 {
				t.Fatalf("thumbprint %q", u.Thumbprint)
			}
			rej := files(t, s, Rejected)
			if tt.rejected != (len(rej) == 1) {
				t.Fatalf("rejected/ holds %q; want the certificate there: %v", rej, tt.rejected)
			}
			if tt.rejected {
				leaf, _ := Leaf(tt.der)
				if rej[0] != Thumbprint(leaf.Raw)+".der" || u.Thumbprint != Thumbprint(leaf.Raw) {
					t.Fatalf("rejected/%s, error names %s; want the leaf %s", rej[0], u.Thumbprint, Thumbprint(leaf.Raw))
				}
				b, _ := os.ReadFile(filepath.Join(s.Dir(), Rejected, rej[0]))
				if string(b) != string(leaf.Raw) {
					t.Fatal("rejected/ holds other bytes than the leaf")
				}
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	s := openStore(t)
	der := makeCert(t, certOpts{cn: "UaExpert", uri: "urn:eng-laptop:UaExpert"})
	err := s.Check(der, now)
	tp := Thumbprint(der)
	for _, w := range []string{tp, "CN=UaExpert", "urn:eng-laptop:UaExpert", "not trusted; copied to " + filepath.Join(s.Dir(), Rejected, tp+".der")} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not name %q", err, w)
		}
	}
	// The second attempt finds it waiting and does not write it again.
	os.Chtimes(filepath.Join(s.Dir(), Rejected, tp+".der"), now, now)
	err = s.Check(der, now)
	if err == nil || !strings.Contains(err.Error(), "it waits in") {
		t.Fatalf("second Check = %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), Rejected, tp+".der")); !fi.ModTime().Equal(now) {
		t.Fatal("rejected certificate written again")
	}
}

// A trusted file with other bytes under the thumbprint's name is no trust:
// the bytes are compared.
func TestCheckComparesBytes(t *testing.T) {
	s := openStore(t)
	der := makeCert(t, certOpts{cn: "a", uri: "urn:a"})
	other := makeCert(t, certOpts{cn: "b", uri: "urn:b"})
	os.WriteFile(filepath.Join(s.Dir(), Trusted, Thumbprint(der)+".der"), other, 0o600)
	if err := s.Check(der, now); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("Check = %v; want ErrNotTrusted", err)
	}
}

func TestRejectedBounded(t *testing.T) {
	s := openStore(t)
	for i := range maxRejected {
		os.WriteFile(filepath.Join(s.Dir(), Rejected, strings.Repeat("0", 36)+big.NewInt(int64(1000+i)).String()+".der"), []byte("x"), 0o600)
	}
	err := s.Check(makeCert(t, certOpts{cn: "a", uri: "urn:a"}), now)
	if !errors.Is(err, ErrNotTrusted) || !strings.Contains(err.Error(), "not kept for review") {
		t.Fatalf("Check = %v", err)
	}
	if n := len(files(t, s, Rejected)); n != maxRejected {
		t.Fatalf("rejected/ holds %d files; want %d", n, maxRejected)
	}
}

func TestTrustRejectList(t *testing.T) {
	s := openStore(t)
	a := makeCert(t, certOpts{cn: "alpha", uri: "urn:alpha"})
	b := makeCert(t, certOpts{cn: "beta", uri: "urn:beta"})
	for _, der := range [][]byte{a, b} {
		if err := s.Check(der, now); !errors.Is(err, ErrNotTrusted) {
			t.Fatalf("Check = %v", err)
		}
	}
	rej, err := s.List(Rejected)
	if err != nil || len(rej) != 2 || rej[0].Subject != "CN=alpha,O=test" || rej[1].AppURI != "urn:beta" {
		t.Fatalf("List(rejected) = %+v, %v", rej, err)
	}
	if e := rej[0]; e.Thumbprint != Thumbprint(a) || e.Path != filepath.Join(s.Dir(), Rejected, e.Thumbprint+".der") ||
		!e.NotBefore.Equal(now.Add(-24*time.Hour)) || !e.NotAfter.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("entry %+v", e)
	}

	e, err := s.Trust(strings.ToUpper(colonsOf(Thumbprint(a)[:10])))
	if err != nil || e.Thumbprint != Thumbprint(a) || e.Path != filepath.Join(s.Dir(), Trusted, Thumbprint(a)+".der") {
		t.Fatalf("Trust = %+v, %v", e, err)
	}
	if err := s.Check(a, now); err != nil {
		t.Fatalf("Check after Trust: %v", err)
	}
	if tr, _ := s.List(Trusted); len(tr) != 1 || tr[0].Thumbprint != Thumbprint(a) {
		t.Fatalf("List(trusted) = %+v", tr)
	}
	if rej, _ := s.List(Rejected); len(rej) != 1 || rej[0].Thumbprint != Thumbprint(b) {
		t.Fatalf("List(rejected) = %+v", rej)
	}
	if _, err := s.Trust(Thumbprint(a)); err == nil || !strings.Contains(err.Error(), "trusted already") {
		t.Fatalf("Trust twice = %v", err)
	}

	if _, err := s.Reject(Thumbprint(a)[:8]); err != nil {
		t.Fatalf("Reject: %v", err)
	}
	if err := s.Check(a, now); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("Check after Reject = %v", err)
	}
	if _, err := s.List("other"); err == nil {
		t.Fatal("List(other) succeeded")
	}
}

func colonsOf(hex string) string {
	var b strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i:min(i+2, len(hex))])
	}
	return b.String()
}

func TestTrustPrefix(t *testing.T) {
	s := openStore(t)
	der := makeCert(t, certOpts{cn: "x", uri: "urn:x"})
	s.Check(der, now)
	tp := Thumbprint(der)
	tests := []struct {
		name, prefix, want string
	}{
		{"fail/short", tp[:7], "at least 8 hex digits"},
		{"fail/not-hex", "zz" + tp[2:10], "not a thumbprint prefix"},
		{"fail/empty", "", "not a thumbprint prefix"},
		{"fail/missing", strings.Repeat("f", 12), "no certificate ffffffffffff"},
		{"ok/eight-digits", tp[:8], ""},
	}
	if strings.HasPrefix(tp, strings.Repeat("f", 12)) {
		t.Skip("thumbprint starts with ffffffffffff")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Trust(tt.prefix)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Trust(%q) = %v; want %q", tt.prefix, err, tt.want)
			}
		})
	}
	if _, err := s.Reject(tp[:7]); err == nil {
		t.Fatal("Reject takes a 7-digit prefix")
	}
}

// Eight shared hex digits take some 2^16 certificates to find; find is
// where ambiguity is decided, and one shared digit shows it.
func TestFindAmbiguous(t *testing.T) {
	s := openStore(t)
	var a, b []byte
	seen := map[byte][]byte{}
	for a == nil {
		der := makeCert(t, certOpts{cn: "x", uri: "urn:x"})
		d := Thumbprint(der)[0]
		if other, ok := seen[d]; ok {
			a, b = other, der
		}
		seen[d] = der
	}
	s.Check(a, now)
	s.Check(b, now)
	p := Thumbprint(a)[:1]
	_, err := s.find(p, Rejected, Trusted)
	if err == nil || !strings.Contains(err.Error(), "is ambiguous") || !strings.Contains(err.Error(), Thumbprint(a)) ||
		!strings.Contains(err.Error(), Thumbprint(b)) {
		t.Fatalf("find(%q) = %v; want ambiguity naming both", p, err)
	}
	if e, err := s.find(Thumbprint(b), Rejected, Trusted); err != nil || e.Thumbprint != Thumbprint(b) {
		t.Fatalf("find(whole thumbprint) = %+v, %v", e, err)
	}
}

func TestAdd(t *testing.T) {
	s := openStore(t)
	der := makeCert(t, certOpts{cn: "a", uri: "urn:a"})
	s.Check(der, now) // now in rejected/
	pemText := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	e, err := s.Add(pemText)
	if err != nil || e.Thumbprint != Thumbprint(der) || e.AppURI != "urn:a" {
		t.Fatalf("Add(PEM) = %+v, %v", e, err)
	}
	if rej := files(t, s, Rejected); len(rej) != 0 {
		t.Fatalf("rejected/ still holds %q after Add", rej)
	}
	if fi, err := os.Stat(e.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trusted file: %v %v", fi, err)
	}
	if err := s.Check(der, now); err != nil {
		t.Fatalf("Check after Add: %v", err)
	}
	ca := makeCert(t, certOpts{cn: "ca", uri: "urn:ca", ca: true})
	chain := makeCert(t, certOpts{cn: "leaf", uri: "urn:leaf"})
	if e, err := s.Add(append(append([]byte{}, chain...), ca...)); err != nil || e.Thumbprint != Thumbprint(chain) {
		t.Fatalf("Add(chain) = %+v, %v; want the leaf", e, err)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"fail/garbage", []byte("hello"), ErrMalformed},
		{"fail/pem-key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}), ErrMalformed},
		{"fail/no-uri", makeCert(t, certOpts{cn: "n"}), ErrNoURI},
		{"fail/rsa-1024", makeCert(t, certOpts{cn: "w", uri: "urn:w", pub: bigKey(1024)}), ErrKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Add(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v; want %v", err, tt.want)
			}
		})
	}
	if tr, _ := s.List(Trusted); len(tr) != 2 {
		t.Fatalf("trusted: %+v", tr)
	}
}
