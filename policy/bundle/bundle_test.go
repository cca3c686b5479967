package bundle

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/policy"
)

var (
	now     = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	expires = time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
)

const testListings = `# test listings
entries:
  - name: Example Surveillance Co., Ltd.
    aliases: [ExampleCam]
    country: CN
    action: approval
    source: Test list
    reference: https://example.test/list
    date: 2026-11-20
    asns: [64500]
  - name: Bad Actor Ltd
    country: CN
    action: block
    source: Test list
`

func newKey(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// makeBundle writes a bundle with listings and two stand-in databases (the
// bundle does not parse them) and signs it.
func makeBundle(t testing.TB, s note.Signer, serial uint64, exp time.Time) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		ListingsFile: testListings,
		CountryFile:  "country database bytes",
		ASNFile:      "asn database bytes",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Sign(dir, s, serial, exp); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerify(t *testing.T) {
	signer, verifier := newKey(t, "brana-bundle")
	otherSigner, otherVerifier := newKey(t, "brana-bundle") // same name, other key
	_, strangerVerifier := newKey(t, "someone-else")

	tests := []struct {
		name       string
		prepare    func(t *testing.T) string // returns the bundle dir
		verifier   note.Verifier
		lastSerial uint64
		err        error // nil: ok
	}{
		{name: "ok/good", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, expires) }},
		{name: "ok/same-serial-reload", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, expires) }, lastSerial: 5},
		{name: "ok/newer-serial", prepare: func(t *testing.T) string { return makeBundle(t, signer, 6, expires) }, lastSerial: 5},
		{name: "fail/rolled-back-serial", prepare: func(t *testing.T) string { return makeBundle(t, signer, 4, expires) }, lastSerial: 5, err: ErrRollback},
		{name: "fail/expired", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, now.Add(-time.Hour)) }, err: ErrExpired},
		{name: "fail/expires-now", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, now) }, err: ErrExpired},
		{name: "fail/wrong-key-same-name", prepare: func(t *testing.T) string { return makeBundle(t, otherSigner, 5, expires) }, err: ErrSignature},
		{name: "fail/unknown-key", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, expires) }, verifier: strangerVerifier, err: ErrSignature},
		{name: "fail/other-verifier", prepare: func(t *testing.T) string { return makeBundle(t, signer, 5, expires) }, verifier: otherVerifier, err: ErrSignature},
		{name: "fail/bad-signature", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			edit(t, filepath.Join(dir, ManifestFile), func(b []byte) []byte {
				i := bytes.LastIndexByte(b[:len(b)-1], ' ')
				sig := []byte(string(b[i+1:]))
				if sig[10] == 'A' {
					sig[10] = 'B'
				} else {
					sig[10] = 'A'
				}
				return append(b[:i+1], sig...)
			})
			return dir
		}, err: ErrSignature},
		{name: "fail/manifest-text-edited", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			edit(t, filepath.Join(dir, ManifestFile), func(b []byte) []byte {
				return bytes.Replace(b, []byte("serial 5\n"), []byte("serial 9\n"), 1)
			})
			return dir
		}, lastSerial: 8, err: ErrSignature},
		{name: "fail/unsigned-manifest", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			m := &Manifest{Serial: 5, Expires: expires}
			write(t, filepath.Join(dir, ManifestFile), m.Text())
			return dir
		}, err: ErrSignature},
		{name: "fail/tampered-file", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			edit(t, filepath.Join(dir, ListingsFile), func(b []byte) []byte {
				return bytes.Replace(b, []byte("action: block"), []byte("action: note"), 1)
			})
			return dir
		}, err: ErrHash},
		{name: "fail/tampered-database", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			write(t, filepath.Join(dir, CountryFile), "other bytes")
			return dir
		}, err: ErrHash},
		{name: "fail/listed-file-missing", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			if err := os.Remove(filepath.Join(dir, ASNFile)); err != nil {
				t.Fatal(err)
			}
			return dir
		}, err: ErrHash},
		{name: "fail/listed-file-symlink", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			other := filepath.Join(t.TempDir(), "asn")
			write(t, other, "asn database bytes")
			os.Remove(filepath.Join(dir, ASNFile))
			if err := os.Symlink(other, filepath.Join(dir, ASNFile)); err != nil {
				t.Fatal(err)
			}
			return dir
		}, err: ErrHash},
		{name: "fail/unlisted-file", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			write(t, filepath.Join(dir, "city.mmdb"), "not signed")
			return dir
		}, err: ErrUnlisted},
		{name: "fail/unlisted-directory", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			if err := os.Mkdir(filepath.Join(dir, "extra"), 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}, err: ErrUnlisted},
		{name: "fail/bad-listings-signed", prepare: func(t *testing.T) string {
			dir := makeBundle(t, signer, 5, expires)
			write(t, filepath.Join(dir, ListingsFile), "entries:\n  - name: X\n    action: maybe\n    source: s\n")
			if err := Sign(dir, signer, 5, expires); err != nil {
				t.Fatal(err)
			}
			return dir
		}, err: ErrListings},
		{name: "fail/no-manifest", prepare: func(t *testing.T) string { return t.TempDir() }, err: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.prepare(t)
			v := tt.verifier
			if v == nil {
				v = verifier
			}
			b, err := Verify(dir, v, tt.lastSerial, now)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Fatalf("Verify: %v; want %v", err, tt.err)
			case tt.err == ErrExpired:
				if b == nil || !b.Expired || len(b.Listings) != 2 {
					t.Fatalf("expired bundle not returned whole: %+v", b)
				}
				return
			case tt.err != nil:
				if b != nil {
					t.Fatalf("rejected bundle returned: %+v", b)
				}
				return
			}
			if b.Expired || !b.Expires.Equal(expires) || b.Signer != "brana-bundle" || len(b.Digest) != 64 {
				t.Fatalf("bundle %+v", b)
			}
			if b.CountryDB != filepath.Join(dir, CountryFile) || b.ASNDB != filepath.Join(dir, ASNFile) {
				t.Fatalf("databases %q %q", b.CountryDB, b.ASNDB)
			}
			if len(b.Listings) != 2 || b.Listings[0].Origin != "bundle serial "+itoa(b.Serial) || b.Listings[0].Date != "2026-11-20" ||
				len(b.Listings[0].ASNs) != 1 || b.Listings[0].ASNs[0] != 64500 {
				t.Fatalf("listings %+v", b.Listings)
			}
		})
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func edit(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, string(f(b)))
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStateAcrossRestart: the serial survives a restart, a rollback is
// refused afterwards, and the same serial is accepted only as the same
// bundle.
func TestStateAcrossRestart(t *testing.T) {
	signer, verifier := newKey(t, "brana-bundle")
	statePath := filepath.Join(t.TempDir(), "bundle-state.json")

	st, err := LoadState(statePath)
	if err != nil || st != (State{}) {
		t.Fatalf("LoadState of no file = %+v, %v", st, err)
	}
	dir7 := makeBundle(t, signer, 7, expires)
	b, err := VerifyState(dir7, verifier, st, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveState(statePath, b.State()); err != nil {
		t.Fatal(err)
	}

	// "Restart".
	st, err = LoadState(statePath)
	if err != nil || st.Serial != 7 || st.Digest != b.Digest || !st.Expires.Equal(expires) {
		t.Fatalf("LoadState = %+v, %v", st, err)
	}
	if _, err := VerifyState(makeBundle(t, signer, 6, expires), verifier, st, now); !errors.Is(err, ErrRollback) {
		t.Fatalf("older bundle after restart: %v; want ErrRollback", err)
	}
	if _, err := VerifyState(dir7, verifier, st, now); err != nil {
		t.Fatalf("re-load of the same bundle: %v", err)
	}
	// The same serial, signed again over other content.
	other := makeBundle(t, signer, 7, expires.Add(time.Hour))
	if _, err := VerifyState(other, verifier, st, now); !errors.Is(err, ErrSerialReuse) {
		t.Fatalf("other bundle with the same serial: %v; want ErrSerialReuse", err)
	}
	if b, err := VerifyState(makeBundle(t, signer, 8, expires), verifier, st, now); err != nil || b.Serial != 8 {
		t.Fatalf("newer bundle: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(statePath))
	if len(entries) != 1 {
		t.Fatalf("state directory holds %d entries; want only the state file", len(entries))
	}

	write(t, statePath, `{"serial": "seven"}`)
	if _, err := LoadState(statePath); err == nil {
		t.Fatal("LoadState of a corrupt file succeeded")
	}
	write(t, statePath, `{"serial": 7, "extra": 1}`)
	if _, err := LoadState(statePath); err == nil {
		t.Fatal("LoadState with an unknown field succeeded")
	}
}

// TestBundleIntoPolicy: a bundle's listings reach the policy, and an
// expired bundle makes remote sessions need approval.
func TestBundleIntoPolicy(t *testing.T) {
	signer, verifier := newKey(t, "brana-bundle")
	b, err := Verify(makeBundle(t, signer, 3, now.Add(-time.Minute)), verifier, 0, now)
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify: %v", err)
	}
	ev := &policy.EvidenceSpec{EstablishedIn: "CZ", ManagementIn: []string{"CZ"}, OperatesFrom: []string{"CZ"}, DataTo: []string{"CZ"}, ReviewBy: "2027-01-01"}
	spec := policy.Spec{Parties: []policy.PartySpec{
		{ID: "cam", Kind: "vendor", LegalName: "ExampleCam", Networks: []string{"192.0.2.0/24"}, Evidence: ev},
		{ID: "ok", Kind: "vendor", LegalName: "Fine s.r.o.", Networks: []string{"198.51.100.0/24"}, Evidence: ev},
		{ID: "scada", Kind: "scada", Networks: []string{"10.0.0.0/8"}},
	}}
	pol, err := policy.Compile(spec, nil, policy.WithListings(b.Listings))
	if err != nil {
		t.Fatal(err)
	}
	sig := policy.Signals{Source: netip.MustParseAddr("198.51.100.1"), Country: "CZ", GeoKnown: true, Now: now, ClockTrusted: true, BundleExpired: b.Expired}
	if a := pol.Admit(pol.Party("ok"), sig); a.Verdict != policy.Approval || a.Step != 5 || !strings.Contains(a.Reason, "bundle") {
		t.Fatalf("remote session with an expired bundle: %s", a)
	}
	if a := pol.Admit(pol.Party("scada"), policy.Signals{Source: netip.MustParseAddr("10.1.1.1"), BundleExpired: true}); a.Verdict != policy.Allow {
		t.Fatalf("local session with an expired bundle: %s", a)
	}
	a := pol.Admit(pol.Party("cam"), sig)
	if a.Step != 3 {
		t.Fatalf("listed by alias: %s", a)
	}
	found := false
	for _, f := range a.Findings {
		found = found || f.Kind == "listing" && f.Source == "bundle serial 3"
	}
	if !found {
		t.Fatalf("no listing finding from the bundle: %+v", a.Findings)
	}
	sig.ASN = 64500
	sig.BundleExpired = false
	if a := pol.Admit(pol.Party("ok"), sig); a.Step != 4 {
		t.Fatalf("source AS listed in the bundle: %s", a)
	}
}

func TestSignRefuses(t *testing.T) {
	signer, _ := newKey(t, "brana-bundle")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Sign(dir, signer, 1, expires); err == nil {
		t.Fatal("Sign signed a directory with a subdirectory")
	}
	if err := Sign(t.TempDir(), signer, 0, expires); err == nil {
		t.Fatal("Sign accepted serial 0")
	}
}

func TestLoadVerifier(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "brana-bundle")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bundle.pub"), vkey+"\n")
	v, err := LoadVerifier(filepath.Join(dir, "bundle.pub"))
	if err != nil || v.Name() != "brana-bundle" {
		t.Fatalf("LoadVerifier = %v, %v", v, err)
	}
	write(t, filepath.Join(dir, "bad.pub"), "brana-bundle+00000000+AAAA")
	if _, err := LoadVerifier(filepath.Join(dir, "bad.pub")); err == nil {
		t.Fatal("LoadVerifier accepted a bad key")
	}
}
