package firmware

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var (
	issued  = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	expires = time.Date(2027, 5, 20, 0, 0, 0, 0, time.UTC)
	now     = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
)

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

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testImage is a deterministic image of n bytes.
func testImage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func sampleManifest(images ...[]byte) Manifest {
	m := Manifest{Serial: 12, Issued: issued, Expires: expires}
	for i, img := range images {
		m.Images = append(m.Images, Image{
			SHA256: sum(img), Size: int64(len(img)),
			Vendor: "Example Automation", Product: "PLC-4000 CPU", Version: "3.40." + string(rune('0'+i)),
			Origin:     "vendor portal download 2026-11-20, ticket CHG-4711",
			ApprovedBy: []string{"Jana Nováková", "Petr Svoboda"},
		})
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	s, v := newKey(t, "lhota-firmware")
	in := sampleManifest(testImage(1000), testImage(20000), testImage(3))
	data, err := SignManifest(in, s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data, note.VerifierList(v), now, 12)
	if err != nil {
		t.Fatal(err)
	}
	if m.Serial != 12 || !m.Issued.Equal(issued) || !m.Expires.Equal(expires) || len(m.Images) != 3 {
		t.Fatalf("got %+v", m)
	}
	if m.Signer != "lhota-firmware" || m.Digest != sum(data) {
		t.Fatalf("signer %q digest %q", m.Signer, m.Digest)
	}
	for i := 1; i < len(m.Images); i++ {
		if m.Images[i-1].SHA256 >= m.Images[i].SHA256 {
			t.Fatal("images not sorted by hash")
		}
	}
	for _, want := range in.Images {
		got, ok := m.Lookup(want.SHA256, want.Size)
		if !ok || !reflect.DeepEqual(*got, want) {
			t.Fatalf("Lookup(%s) = %+v, %v; want %+v", want.SHA256, got, ok, want)
		}
	}
	// The signed text is the documented canonical form.
	text := string(data[:bytes.Index(data, []byte("\n\n"))+1])
	for _, line := range []string{"brana-firmware 1\n", "serial 12\n", "issued 2026-11-20T10:00:00Z\n", "expires 2027-05-20T00:00:00Z\n",
		"image " + sum(testImage(3)) + " 3\n", "vendor Example Automation\n", "origin vendor portal download 2026-11-20, ticket CHG-4711\n",
		"approved_by Jana Nováková\napproved_by Petr Svoboda\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("signed text lacks %q:\n%s", line, text)
		}
	}
	// Signing does not change the caller's manifest.
	if in.Images[0].SHA256 != sum(testImage(1000)) {
		t.Fatal("SignManifest reordered the caller's images")
	}
}

func TestParseManifest(t *testing.T) {
	signer, verifier := newKey(t, "lhota-firmware")
	otherSigner, _ := newKey(t, "lhota-firmware") // same name, other key
	strangerSigner, _ := newKey(t, "someone-else")
	_, secondVerifier := newKey(t, "lhota-firmware-2026")
	good := sampleManifest(testImage(100))
	sign := func(s note.Signer, m Manifest) []byte {
		data, err := SignManifest(m, s)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	signText := func(text string) []byte {
		data, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	older := good
	older.Serial = 11
	empty := good
	empty.Images = nil
	tests := []struct {
		name      string
		data      []byte
		verifiers note.Verifiers
		now       time.Time
		minSerial uint64
		err       error
		msg       string
	}{
		{name: "ok/plain", data: sign(signer, good)},
		{name: "ok/same-serial-again", data: sign(signer, good), minSerial: 12},
		{name: "ok/one-of-two-keys", data: sign(signer, good), verifiers: note.VerifierList(secondVerifier, verifier)},
		{name: "ok/no-images", data: sign(signer, empty)},
		{name: "fail/altered", data: bytes.Replace(sign(signer, good), []byte("PLC-4000"), []byte("PLC-4001"), 1), err: ErrSignature, msg: "lhota-firmware+"},
		{name: "fail/other-key-same-name", data: sign(otherSigner, good), err: ErrUnknownKey},
		{name: "fail/unknown-key", data: sign(strangerSigner, good), err: ErrUnknownKey, msg: "someone-else+"},
		{name: "fail/no-verifiers", data: sign(signer, good), verifiers: note.VerifierList(), err: ErrUnknownKey},
		{name: "fail/unsigned", data: []byte("brana-firmware 1\nserial 1\n"), err: ErrManifest, msg: "not a signed note"},
		{name: "fail/expired", data: sign(signer, good), now: expires, err: ErrExpired, msg: "expired at 2027-05-20T00:00:00Z"},
		{name: "fail/rolled-back", data: sign(signer, older), minSerial: 12, err: ErrRollback, msg: "serial 11, last accepted 12"},
		{name: "fail/malformed-line", data: signText("brana-firmware 1\nserial 3\nissued 2026-11-20T10:00:00Z\nexpires 2027-05-20T00:00:00Z\nimage " +
			sum(nil) + " 10\nvendor  X\n"), err: ErrManifest, msg: "line 6"},
		{name: "fail/too-big", data: make([]byte, maxManifest+1), err: ErrManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := tt.verifiers
			if vs == nil {
				vs = note.VerifierList(verifier)
			}
			at := tt.now
			if at.IsZero() {
				at = now
			}
			m, err := ParseManifest(tt.data, vs, at, tt.minSerial)
			if tt.err == nil {
				if err != nil || m == nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.err) || m != nil {
				t.Fatalf("ParseManifest = %v, %v; want %v", m, err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not say %q", err, tt.msg)
			}
			// The kinds of refusal stay distinct.
			for _, other := range []error{ErrSignature, ErrUnknownKey, ErrManifest, ErrExpired, ErrRollback} {
				if other != tt.err && errors.Is(err, other) {
					t.Fatalf("error %q is also %q", err, other)
				}
			}
		})
	}
}

func TestParseTextRefuses(t *testing.T) {
	h := sum([]byte("a"))
	h2 := sum([]byte("b"))
	lo, hi := min(h, h2), max(h, h2)
	head := "brana-firmware 1\nserial 3\nissued 2026-11-20T10:00:00Z\nexpires 2027-05-20T00:00:00Z\n"
	block := func(hash string) string {
		return "image " + hash + " 10\nvendor V\nproduct P\nversion 1\norigin O\napproved_by A\n"
	}
	tests := []struct{ name, text, msg string }{
		{"no-final-newline", strings.TrimSuffix(head, "\n"), "no final newline"},
		{"short", "brana-firmware 1\nserial 3\n", "line 3"},
		{"header", strings.Replace(head, "brana-firmware 1", "brana-firmware 2", 1), "line 1"},
		{"serial-zero", strings.Replace(head, "serial 3", "serial 0", 1), "line 2"},
		{"serial-leading-zero", strings.Replace(head, "serial 3", "serial 03", 1), "line 2"},
		{"issued-not-utc", strings.Replace(head, "10:00:00Z", "10:00:00+01:00", 1), "line 3"},
		{"expires-fraction", strings.Replace(head, "2027-05-20T00:00:00Z", "2027-05-20T00:00:00.5Z", 1), "line 4"},
		{"expires-before-issued", strings.Replace(head, "2027-05-20", "2026-05-20", 1), "line 4"},
		{"upper-hash", head + block(strings.ToUpper(lo)), "line 5"},
		{"short-hash", head + block(lo[:63]), "line 5"},
		{"size-zero", head + strings.Replace(block(lo), " 10\n", " 0\n", 1), "line 5"},
		{"size-plus", head + strings.Replace(block(lo), " 10\n", " +10\n", 1), "line 5"},
		{"unsorted", head + block(hi) + block(lo), "line 11"},
		{"duplicate", head + block(lo) + block(lo), "line 11"},
		{"field-order", head + strings.Replace(block(lo), "vendor V\nproduct P", "product P\nvendor V", 1), "line 6"},
		{"missing-origin", head + strings.Replace(block(lo), "origin O\n", "", 1), "line 9"},
		{"empty-value", head + strings.Replace(block(lo), "vendor V", "vendor ", 1), "line 6"},
		{"trailing-space", head + strings.Replace(block(lo), "vendor V", "vendor V ", 1), "line 6"},
		{"bidi-override", head + strings.Replace(block(lo), "vendor V", "vendor V\u202eX", 1), "line 6"},
		{"no-approver", head + strings.Replace(block(lo), "approved_by A\n", "", 1), "line 9"},
		{"approver-twice", head + block(lo) + "approved_by A\n", "line 11"},
		{"stray-line", head + block(lo) + "comment x\n", "line 11"},
		{"blank-line", head + "\n" + block(lo), "line 5"},
		{"truncated-block", head + "image " + lo + " 10\nvendor V\n", "line 7"},
	}
	for _, tt := range tests {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			m, err := parseText(tt.text)
			if !errors.Is(err, ErrManifest) || m != nil {
				t.Fatalf("parseText = %v, %v; want ErrManifest", m, err)
			}
			if !strings.Contains(err.Error(), tt.msg+":") && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not say %q", err, tt.msg)
			}
		})
	}
	if _, err := parseText(head + block(lo) + block(hi)); err != nil {
		t.Fatalf("good text: %v", err)
	}
}

func TestSignManifestRefuses(t *testing.T) {
	s, _ := newKey(t, "k")
	good := sampleManifest(testImage(10))
	edit := func(f func(m *Manifest)) Manifest {
		m := good
		m.Images = []Image{good.Images[0]}
		m.Images[0].ApprovedBy = []string{"A", "B"}
		f(&m)
		return m
	}
	tests := []struct {
		name string
		m    Manifest
		msg  string
	}{
		{"serial-zero", edit(func(m *Manifest) { m.Serial = 0 }), "serial"},
		{"no-issued", edit(func(m *Manifest) { m.Issued = time.Time{} }), "issued"},
		{"no-expiry", edit(func(m *Manifest) { m.Expires = time.Time{} }), "expiry"},
		{"expires-first", edit(func(m *Manifest) { m.Expires = m.Issued }), "not after"},
		{"bad-hash", edit(func(m *Manifest) { m.Images[0].SHA256 = "xyz" }), "sha256"},
		{"size", edit(func(m *Manifest) { m.Images[0].Size = 0 }), "size"},
		{"newline-in-vendor", edit(func(m *Manifest) { m.Images[0].Vendor = "V\nimage " + sum(nil) + " 1" }), "vendor"},
		{"no-origin", edit(func(m *Manifest) { m.Images[0].Origin = "" }), "origin"},
		{"no-approver", edit(func(m *Manifest) { m.Images[0].ApprovedBy = nil }), "approved_by"},
		{"approver-twice", edit(func(m *Manifest) { m.Images[0].ApprovedBy = []string{"A", "A"} }), "twice"},
		{"image-twice", edit(func(m *Manifest) { m.Images = append(m.Images, m.Images[0]) }), "twice"},
	}
	for _, tt := range tests {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			_, err := SignManifest(tt.m, s)
			if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("SignManifest: %v; want ErrManifest about %s", err, tt.msg)
			}
		})
	}
	// Upper-case hashes are taken in lower case.
	m := edit(func(m *Manifest) { m.Images[0].SHA256 = strings.ToUpper(m.Images[0].SHA256) })
	if _, err := SignManifest(m, s); err != nil {
		t.Fatalf("upper-case hash: %v", err)
	}
}

func TestLookup(t *testing.T) {
	a, b := testImage(100), testImage(200)
	m := sampleManifest(a, b)
	tests := []struct {
		name string
		hash string
		size int64
		ok   bool
	}{
		{"ok/a", sum(a), 100, true},
		{"ok/b-upper-case", strings.ToUpper(sum(b)), 200, true},
		{"fail/wrong-size", sum(a), 101, false},
		{"fail/unknown", sum(testImage(101)), 101, false},
		{"fail/empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, ok := m.Lookup(tt.hash, tt.size)
			if ok != tt.ok || (ok && im.Size != tt.size) {
				t.Fatalf("Lookup = %+v, %v", im, ok)
			}
		})
	}
	im, _ := m.Lookup(sum(a), 100)
	im.ApprovedBy[0] = "Mallory"
	if m.Images[0].ApprovedBy[0] == "Mallory" && m.Images[1].ApprovedBy[0] == "Mallory" {
		t.Fatal("Lookup returned the manifest's own slice")
	}
	var nilManifest *Manifest
	if _, ok := nilManifest.Lookup(sum(a), 100); ok {
		t.Fatal("nil manifest approved an image")
	}
}

func TestLoadManifest(t *testing.T) {
	s, _ := newKey(t, "lhota-firmware")
	dir := t.TempDir()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "lhota-firmware-2027")
	s2, _ := note.NewSigner(skey)
	_, v := newKey(t, "unused")
	keys := filepath.Join(dir, "keys.pub")
	os.WriteFile(keys, []byte("# old and new key during rotation\n"+vkey+"\n\n"), 0o644)
	vs, err := LoadVerifiers(keys)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := SignManifest(sampleManifest(testImage(5)), s2)
	path := filepath.Join(dir, "MANIFEST.signed")
	os.WriteFile(path, data, 0o644)
	if _, err := LoadManifest(path, vs, now, 0); err != nil {
		t.Fatal(err)
	}
	data, _ = SignManifest(sampleManifest(testImage(5)), s)
	os.WriteFile(path, data, 0o644)
	if _, err := LoadManifest(path, vs, now, 0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("manifest by a key not in the file: %v", err)
	}
	if _, err := LoadManifest(filepath.Join(dir, "missing"), note.VerifierList(v), now, 0); err == nil {
		t.Fatal("missing manifest loaded")
	}
	if _, err := LoadVerifiers(); err == nil {
		t.Fatal("no key files gave verifiers")
	}
}

func verifierList(v ...note.Verifier) note.Verifiers { return note.VerifierList(v...) }
