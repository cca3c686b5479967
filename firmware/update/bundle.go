package update

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
)

var (
	ErrMalformed    = errors.New("update: malformed bundle")
	ErrNoRoots      = errors.New("update: this build has no trusted root keys, so it accepts no update")
	ErrUntrustedKey = errors.New("update: signing key not signed by a trusted root")
	ErrKeyExpired   = errors.New("update: signing key certificate expired")
	ErrSignature    = errors.New("update: bundle signature does not verify")
	ErrExpired      = errors.New("update: bundle expired")
	ErrPlatform     = errors.New("update: bundle is for another platform")
	ErrRollback     = errors.New("update: version not newer than the installed one (rollback refused)")
	ErrHash         = errors.New("update: executable does not match the manifest")
	ErrState        = errors.New("update: unreadable state file")
	ErrHealth       = errors.New("update: health check failed")
)

// Names of the archive members, in their order.
const (
	ManifestName  = "manifest"
	CertName      = "signing-key.cert"
	SignatureName = "manifest.sig"
	BinaryName    = "brana"
)

const (
	manifestHeader = "brana update manifest v1"
	maxText        = 4 << 10
	// MaxBinary bounds the executable a bundle may carry; brana is some
	// tens of MiB, and the whole bundle is held in memory.
	MaxBinary = 512 << 20
)

// Release is a verified bundle.
type Release struct {
	Version      string
	GOOS, GOARCH string
	SHA256       [32]byte
	Created      time.Time
	Expires      time.Time
	SigningKey   string    // the certificate's name
	KeyNotAfter  time.Time // the certificate's expiry
	Root         ed25519.PublicKey
	Binary       []byte
}

// VerifyOptions say what a bundle is checked against.
type VerifyOptions struct {
	// Roots are the trusted root keys; nil means the compiled-in ones.
	Roots []ed25519.PublicKey
	// Now is the time expiries are checked at; zero means time.Now().
	Now time.Time
	// Current is the running version. A version this package does not
	// parse (a development build's "dev") sets no floor of its own.
	Current string
	// Floor is the highest version installed before (from the state
	// file); empty for none.
	Floor string
	// GOOS and GOARCH are the platform; empty means this one.
	GOOS, GOARCH string
}

type manifest struct {
	version, goos, goarch string
	sha256                [32]byte
	size                  int64
	created, expires      time.Time
}

func (m *manifest) marshal() []byte {
	return fmt.Appendf(nil, "%s\nversion %s\nos %s\narch %s\nsha256 %s\nsize %d\ncreated %s\nexpires %s\n",
		manifestHeader, m.version, m.goos, m.goarch, hex.EncodeToString(m.sha256[:]), m.size,
		m.created.UTC().Format(time.RFC3339), m.expires.UTC().Format(time.RFC3339))
}

// parseManifest accepts only the exact form marshal writes.
func parseManifest(b []byte) (*manifest, error) {
	bad := func(why string) (*manifest, error) {
		return nil, fmt.Errorf("%w: manifest: %s", ErrMalformed, why)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 9 || lines[8] != "" {
		return bad("want 8 lines, each ending in a newline")
	}
	if lines[0] != manifestHeader {
		return bad(fmt.Sprintf("first line %q; want %q", clip(lines[0]), manifestHeader))
	}
	var f [7]string
	for i, key := range []string{"version", "os", "arch", "sha256", "size", "created", "expires"} {
		v, ok := strings.CutPrefix(lines[i+1], key+" ")
		if !ok {
			return bad(fmt.Sprintf("line %d: want %q", i+2, key))
		}
		f[i] = v
	}
	m := &manifest{version: f[0], goos: f[1], goarch: f[2]}
	if _, ok := parseVersion(m.version); !ok {
		return bad(fmt.Sprintf("version %q is not a semantic version like 1.4.0", clip(m.version)))
	}
	if !platformWord(m.goos) || !platformWord(m.goarch) {
		return bad("os and arch must be Go names like linux and arm64")
	}
	h, err := hex.DecodeString(f[3])
	if err != nil || len(h) != 32 {
		return bad("sha256: want 64 hex digits")
	}
	copy(m.sha256[:], h)
	if m.size, err = strconv.ParseInt(f[4], 10, 64); err != nil || m.size < 0 || m.size > MaxBinary {
		return bad("size out of range")
	}
	if m.created, err = parseTime(f[5]); err != nil {
		return bad("created: " + err.Error())
	}
	if m.expires, err = parseTime(f[6]); err != nil {
		return bad("expires: " + err.Error())
	}
	if !bytes.Equal(m.marshal(), b) {
		return bad("not in canonical form")
	}
	return m, nil
}

func platformWord(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// Build makes a bundle of binary for goos/goarch, signed with signingKey,
// whose certificate cert is carried along.
func Build(binary []byte, version, goos, goarch string, expires time.Time, signingKey ed25519.PrivateKey, cert []byte) ([]byte, error) {
	c, _, _, err := parseCert(cert)
	if err != nil {
		return nil, fmt.Errorf("update: build: %w", err)
	}
	if len(signingKey) != ed25519.PrivateKeySize || !c.Key.Equal(signingKey.Public()) {
		return nil, errors.New("update: build: the signing key is not the one the certificate names")
	}
	if len(binary) > MaxBinary {
		return nil, fmt.Errorf("update: build: executable of %d bytes is larger than %d", len(binary), MaxBinary)
	}
	now := time.Now().UTC().Truncate(time.Second)
	m := &manifest{version: version, goos: goos, goarch: goarch, sha256: sha256.Sum256(binary),
		size: int64(len(binary)), created: now, expires: expires.UTC().Truncate(time.Second)}
	text := m.marshal()
	// Parsing what was just written applies the same rules as Verify, so
	// a bad version or platform is caught here and not at the gateway.
	if _, err := parseManifest(text); err != nil {
		return nil, fmt.Errorf("update: build: %w", err)
	}
	if !m.expires.After(now) {
		return nil, fmt.Errorf("update: build: expiry %s is not in the future", m.expires.Format(time.RFC3339))
	}
	sig := []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(signingKey, text)) + "\n")

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		mode int64
		data []byte
	}{{ManifestName, 0o644, text}, {CertName, 0o644, cert}, {SignatureName, 0o644, sig}, {BinaryName, 0o755, binary}} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: e.mode, Size: int64(len(e.data)),
			ModTime: now, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("update: build: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("update: build: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("update: build: %w", err)
	}
	return buf.Bytes(), nil
}

// members reads the four archive members, refusing anything else: other
// names, other order, other file types, oversized texts.
func members(bundle []byte) (text, cert, sig, binary []byte, err error) {
	tr := tar.NewReader(bytes.NewReader(bundle))
	var out [4][]byte
	for i, want := range []string{ManifestName, CertName, SignatureName, BinaryName} {
		hdr, err := tr.Next()
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("%w: reading member %d (%s): %v", ErrMalformed, i+1, want, err)
		}
		if hdr.Name != want || hdr.Typeflag != tar.TypeReg {
			return nil, nil, nil, nil, fmt.Errorf("%w: member %d is %q (type %q); want the regular file %q", ErrMalformed, i+1, clip(hdr.Name), hdr.Typeflag, want)
		}
		limit := int64(maxText)
		if want == BinaryName {
			limit = MaxBinary
		}
		if hdr.Size > limit {
			return nil, nil, nil, nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrMalformed, want, hdr.Size, limit)
		}
		if out[i], err = io.ReadAll(tr); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("%w: reading %s: %v", ErrMalformed, want, err)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, nil, nil, nil, fmt.Errorf("%w: more than the four members %s, %s, %s, %s", ErrMalformed, ManifestName, CertName, SignatureName, BinaryName)
	}
	return out[0], out[1], out[2], out[3], nil
}

// Verify checks a bundle and returns its release. The checks and their
// order are in the package documentation; the error wraps one of the
// package's sentinel errors and says what was found.
func Verify(bundle []byte, opts VerifyOptions) (*Release, error) {
	text, certText, sigText, binary, err := members(bundle)
	if err != nil {
		return nil, err
	}
	cert, statement, rootSig, err := parseCert(certText)
	if err != nil {
		return nil, err
	}
	roots := opts.Roots
	if roots == nil {
		if roots, err = CompiledRoots(); err != nil {
			return nil, err
		}
	}
	if len(roots) == 0 {
		return nil, ErrNoRoots
	}
	var root ed25519.PublicKey
	for _, r := range roots {
		if len(r) == ed25519.PublicKeySize && ed25519.Verify(r, statement, rootSig) {
			root = r
			break
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: key %q (%s) is certified by a key this build does not trust",
			ErrUntrustedKey, cert.Name, base64.StdEncoding.EncodeToString(cert.Key))
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("%w: key %q was certified until %s", ErrKeyExpired, cert.Name, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(string(sigText), "\n"))
	if err != nil || len(sig) != ed25519.SignatureSize || !strings.HasSuffix(string(sigText), "\n") {
		return nil, fmt.Errorf("%w: %s: not one line of base64 ed25519 signature", ErrMalformed, SignatureName)
	}
	if !ed25519.Verify(cert.Key, text, sig) {
		return nil, fmt.Errorf("%w: the manifest is not signed by key %q", ErrSignature, cert.Name)
	}
	// Only signed text is parsed for meaning.
	m, err := parseManifest(text)
	if err != nil {
		return nil, err
	}
	if !now.Before(m.expires) {
		return nil, fmt.Errorf("%w: brana %s expired on %s", ErrExpired, m.version, m.expires.UTC().Format(time.RFC3339))
	}
	goos, goarch := opts.GOOS, opts.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	if m.goos != goos || m.goarch != goarch {
		return nil, fmt.Errorf("%w: bundle is for %s/%s, this is %s/%s", ErrPlatform, m.goos, m.goarch, goos, goarch)
	}
	if err := notOlder(m.version, opts.Current, "running"); err != nil {
		return nil, err
	}
	if err := notOlder(m.version, opts.Floor, "installed before"); err != nil {
		return nil, err
	}
	if int64(len(binary)) != m.size || sha256.Sum256(binary) != m.sha256 {
		return nil, fmt.Errorf("%w: %s is %d bytes with sha256 %x; the manifest says %d bytes with sha256 %x",
			ErrHash, BinaryName, len(binary), sha256.Sum256(binary), m.size, m.sha256)
	}
	return &Release{Version: m.version, GOOS: m.goos, GOARCH: m.goarch, SHA256: m.sha256, Created: m.created,
		Expires: m.expires, SigningKey: cert.Name, KeyNotAfter: cert.NotAfter, Root: root, Binary: binary}, nil
}

// notOlder refuses v unless it is newer than floor. An empty or
// unparseable floor (a development build) sets none.
func notOlder(v, floor, what string) error {
	if c, ok := CompareVersions(v, floor); ok && c <= 0 {
		return fmt.Errorf("%w: bundle has %s, %s is %s", ErrRollback, v, what, floor)
	}
	return nil
}
