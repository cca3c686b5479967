package update

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// chain is a root, a signing key certified by it, and the certificate.
type chain struct {
	root    ed25519.PrivateKey
	signing ed25519.PrivateKey
	cert    []byte
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newChain(t testing.TB, notAfter time.Time) *chain {
	t.Helper()
	c := &chain{root: newKey(t), signing: newKey(t)}
	var err error
	if c.cert, err = Certify(c.root, c.signing.Public().(ed25519.PublicKey), "release-2026", notAfter); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *chain) roots() []ed25519.PublicKey {
	return []ed25519.PublicKey{c.root.Public().(ed25519.PublicKey)}
}

func (c *chain) build(t testing.TB, binary, version, goarch string, expires time.Time) []byte {
	t.Helper()
	b, err := Build([]byte(binary), version, "linux", goarch, expires, c.signing, c.cert)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceMember rewrites one member of a bundle's archive, keeping the rest.
func replaceMember(t testing.TB, bundle []byte, name string, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if hdr.Name == name {
			body = data
			hdr.Size = int64(len(data))
		}
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.Close()
	return out.Bytes()
}

func member(t testing.TB, bundle []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no member %s: %v", name, err)
		}
		if hdr.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Now()
	good := newChain(t, now.AddDate(1, 0, 0))
	bundle := good.build(t, "new brana", "1.3.0", "arm64", now.AddDate(0, 3, 0))
	opts := VerifyOptions{Roots: good.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "arm64"}

	// A key that no root certified, and a chain whose root is not trusted.
	stranger := newKey(t)
	untrusted := newChain(t, now.AddDate(1, 0, 0))
	// A certificate that ends before the bundle does.
	shortCert := newChain(t, now.AddDate(0, 1, 0))
	shortCert.root = good.root
	shortCert.cert, _ = Certify(good.root, shortCert.signing.Public().(ed25519.PublicKey), "release-short", now.AddDate(0, 1, 0))

	manifest := member(t, bundle, ManifestName)
	otherSig := []byte(b64(ed25519.Sign(stranger, manifest)) + "\n")
	editedManifest := bytes.Replace(manifest, []byte("version 1.3.0"), []byte("version 1.9.0"), 1)

	tests := []struct {
		name   string
		bundle []byte
		opts   func(*VerifyOptions)
		err    error
		msg    string
	}{
		{name: "ok/newer", bundle: bundle},
		{name: "ok/dev-build-sets-no-floor", bundle: bundle, opts: func(o *VerifyOptions) { o.Current = "dev" }},
		{name: "ok/newer-than-pre-release", bundle: bundle, opts: func(o *VerifyOptions) { o.Current = "1.3.0-rc.1" }},
		{name: "fail/signature-by-another-key", bundle: replaceMember(t, bundle, SignatureName, otherSig),
			err: ErrSignature, msg: `bundle signature does not verify: the manifest is not signed by key "release-2026"`},
		{name: "fail/manifest-edited", bundle: replaceMember(t, bundle, ManifestName, editedManifest),
			err: ErrSignature, msg: "signature does not verify"},
		{name: "fail/signing-key-not-signed-by-root", bundle: untrusted.build(t, "x", "1.3.0", "arm64", now.AddDate(0, 3, 0)),
			err: ErrUntrustedKey, msg: "signing key not signed by a trusted root"},
		{name: "fail/no-roots", bundle: bundle, opts: func(o *VerifyOptions) { o.Roots = []ed25519.PublicKey{} },
			err: ErrNoRoots, msg: "no trusted root keys"},
		{name: "fail/signing-key-expired", bundle: shortCert.build(t, "x", "1.3.0", "arm64", now.AddDate(0, 3, 0)),
			opts: func(o *VerifyOptions) { o.Now = now.AddDate(0, 2, 0) },
			err:  ErrKeyExpired, msg: `signing key certificate expired: key "release-short" was certified until`},
		{name: "fail/bundle-expired", bundle: bundle, opts: func(o *VerifyOptions) { o.Now = now.AddDate(0, 4, 0) },
			err: ErrExpired, msg: "bundle expired: brana 1.3.0 expired on"},
		{name: "fail/rollback-older", bundle: bundle, opts: func(o *VerifyOptions) { o.Current = "1.4.0" },
			err: ErrRollback, msg: "version not newer than the installed one (rollback refused): bundle has 1.3.0, running is 1.4.0"},
		{name: "fail/rollback-same", bundle: bundle, opts: func(o *VerifyOptions) { o.Current = "v1.3.0" },
			err: ErrRollback, msg: "bundle has 1.3.0, running is v1.3.0"},
		{name: "fail/rollback-below-floor", bundle: bundle, opts: func(o *VerifyOptions) { o.Floor = "1.3.1" },
			err: ErrRollback, msg: "bundle has 1.3.0, installed before is 1.3.1"},
		{name: "fail/platform", bundle: bundle, opts: func(o *VerifyOptions) { o.GOARCH = "amd64" },
			err: ErrPlatform, msg: "bundle is for linux/arm64, this is linux/amd64"},
		{name: "fail/binary-swapped", bundle: replaceMember(t, bundle, BinaryName, []byte("evil brana")),
			err: ErrHash, msg: "executable does not match the manifest"},
		{name: "fail/truncated", bundle: bundle[:len(bundle)/2], err: ErrMalformed, msg: "malformed bundle"},
		{name: "fail/empty", bundle: nil, err: ErrMalformed, msg: "reading member 1 (manifest)"},
		{name: "fail/not-a-tar", bundle: bytes.Repeat([]byte("x"), 2048), err: ErrMalformed},
		{name: "fail/member-renamed", bundle: renameMember(t, bundle, CertName, "cert"),
			err: ErrMalformed, msg: `member 2 is "cert"`},
		{name: "fail/extra-member", bundle: appendMember(t, bundle, "README", []byte("hi")),
			err: ErrMalformed, msg: "more than the four members"},
		{name: "fail/cert-not-canonical", bundle: replaceMember(t, bundle, CertName, bytes.Replace(good.cert, []byte("not-after "), []byte("not-after  "), 1)),
			err: ErrMalformed, msg: "signing-key certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			if tt.opts != nil {
				tt.opts(&o)
			}
			rel, err := Verify(tt.bundle, o)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if rel.Version != "1.3.0" || string(rel.Binary) != "new brana" || rel.SigningKey != "release-2026" || rel.GOARCH != "arm64" {
					t.Fatalf("release %+v", rel)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v; want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %q; want it to contain %q", err, tt.msg)
			}
		})
	}
}

func renameMember(t testing.TB, bundle []byte, from, to string) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		body, _ := io.ReadAll(tr)
		if hdr.Name == from {
			hdr.Name = to
		}
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.Close()
	return out.Bytes()
}

func appendMember(t testing.TB, bundle []byte, name string, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(bundle))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		body, _ := io.ReadAll(tr)
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	tw.Close()
	return out.Bytes()
}

func TestBuildRefuses(t *testing.T) {
	now := time.Now()
	c := newChain(t, now.AddDate(1, 0, 0))
	tests := []struct {
		name, version, goarch string
		key                   ed25519.PrivateKey
		expires               time.Time
		msg                   string
	}{
		{"fail/key-not-in-certificate", "1.0.0", "amd64", newKey(t), now.Add(time.Hour), "not the one the certificate names"},
		{"fail/bad-version", "1.0", "amd64", c.signing, now.Add(time.Hour), "not a semantic version"},
		{"fail/build-metadata", "1.0.0+abc", "amd64", c.signing, now.Add(time.Hour), "not a semantic version"},
		{"fail/path-in-version", "1.0.0/../x", "amd64", c.signing, now.Add(time.Hour), "not a semantic version"},
		{"fail/bad-arch", "1.0.0", "ARM 64", c.signing, now.Add(time.Hour), "os and arch"},
		{"fail/expired", "1.0.0", "amd64", c.signing, now.Add(-time.Hour), "not in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build([]byte("x"), tt.version, "linux", tt.goarch, tt.expires, tt.key, c.cert)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v; want %q", err, tt.msg)
			}
		})
	}
}

// The manifest and certificate have one encoding each; these pin it.
func TestGoldenTexts(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	root := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	cert, err := Certify(root, key.Public().(ed25519.PublicKey), "release-2026", time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := "brana update signing key v1\n" +
		"key iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n" +
		"name release-2026\n" +
		"not-after 2027-01-31T12:00:00Z\n" +
		"root-signature gXMGo/DrDvsoTpc2cue3JqKbUyPbVZ9njQMOU7jnEAJkZoeDhTFe+n5fYGMHZFATQsH6Xvt2SZkeqnf04PvDAw==\n"
	if string(cert) != want {
		t.Fatalf("certificate:\n%s\nwant\n%s", cert, want)
	}
	if c, _, _, err := parseCert(cert); err != nil || c.Name != "release-2026" {
		t.Fatalf("parse: %+v %v", c, err)
	}
	m := &manifest{version: "1.4.0", goos: "linux", goarch: "arm64", size: 3,
		created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}
	m.sha256[0] = 0xab
	wantM := "brana update manifest v1\n" +
		"version 1.4.0\n" +
		"os linux\n" +
		"arch arm64\n" +
		"sha256 ab00000000000000000000000000000000000000000000000000000000000000\n" +
		"size 3\n" +
		"created 2026-12-01T00:00:00Z\n" +
		"expires 2027-03-01T00:00:00Z\n"
	if got := string(m.marshal()); got != wantM {
		t.Fatalf("manifest:\n%s\nwant\n%s", got, wantM)
	}
	if _, err := parseManifest([]byte(wantM)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(wantM, "Z\n", "+00:00\n", 1),
		strings.Replace(wantM, "size 3", "size 03", 1),
		strings.Replace(wantM, "sha256 ab", "sha256 AB", 1),
		strings.TrimSuffix(wantM, "\n"),
		wantM + "extra 1\n",
	} {
		if _, err := parseManifest([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseManifest(%q) = %v; want ErrMalformed", bad, err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	k := newKey(t)
	pem, err := MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(pem)
	if err != nil || !back.Equal(k) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := ParsePublicKey(MarshalPublicKey(k.Public().(ed25519.PublicKey)))
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	if _, err := ParsePublicKey([]byte("AAAA")); err == nil {
		t.Fatal("short public key accepted")
	}
	if _, err := ParsePrivateKey(MarshalPublicKey(pub)); err == nil {
		t.Fatal("public key accepted as private")
	}
}

func TestCompiledRoots(t *testing.T) {
	defer func(s string) { rootKeys = s }(rootKeys)
	k1, k2 := newKey(t).Public().(ed25519.PublicKey), newKey(t).Public().(ed25519.PublicKey)
	rootKeys = b64(k1) + ", " + b64(k2)
	roots, err := CompiledRoots()
	if err != nil || len(roots) != 2 || !roots[0].Equal(k1) || !roots[1].Equal(k2) {
		t.Fatalf("roots %v, %v", roots, err)
	}
	rootKeys = "nonsense"
	if _, err := CompiledRoots(); err == nil {
		t.Fatal("bad compiled-in root accepted")
	}
	rootKeys = ""
	c := newChain(t, time.Now().AddDate(1, 0, 0))
	if _, err := Verify(c.build(t, "x", "1.0.0", "amd64", time.Now().Add(time.Hour)), VerifyOptions{GOOS: "linux", GOARCH: "amd64"}); !errors.Is(err, ErrNoRoots) {
		t.Fatalf("build without roots: %v; want ErrNoRoots", err)
	}
}

func TestCompareVersions(t *testing.T) {
	// Each is older than the next (semver.org, section 11).
	order := []string{"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0", "18446744073709551615.0.0"}
	for i := range order {
		for j := range order {
			c, ok := CompareVersions(order[i], order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if !ok || c != want {
				t.Errorf("compare(%s, %s) = %d, %v; want %d", order[i], order[j], c, ok, want)
			}
		}
	}
	for _, bad := range []string{"", "dev", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+b", "1.2.3-a..b", "1.2.3-ä", "18446744073709551616.0.0", " 1.2.3"} {
		if _, ok := parseVersion(bad); ok {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
	if c, ok := CompareVersions("v1.2.3", "1.2.3"); !ok || c != 0 {
		t.Errorf("a leading v changes nothing: %d %v", c, ok)
	}
}
