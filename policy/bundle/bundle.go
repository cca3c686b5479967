// Package bundle verifies and signs brana's jurisdiction data bundles: the
// listings of high-risk entities and the IP geolocation databases, shipped
// together as a directory with a signed manifest.
//
// A bundle directory holds MANIFEST and the files it names, e.g.
// listings.yaml, country.mmdb and asn.mmdb. MANIFEST is a signed note
// (golang.org/x/mod/sumdb/note, ed25519) whose text is
//
//	brana-bundle 1
//	serial 7
//	expires 2027-03-01T00:00:00Z
//	file asn.mmdb 5f2b...(SHA-256, 64 lower-case hex digits)
//	file country.mmdb 09ac...
//	file listings.yaml 77d1...
//
// with the file lines sorted by name. [Verify] accepts a bundle only if the
// signature verifies with the configured key, the serial does not go back,
// every listed file is there with its hash, and no other file is. A bundle
// that fails is rejected and the gateway keeps the last good one. An expired
// bundle is returned all the same, with [ErrExpired]: it makes every remote
// session need approval rather than stopping the gateway. The last accepted
// serial is kept in a state file ([SaveState]), so that rollback is refused
// across restarts.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/signkey"
)

// Names of the files a bundle may carry that brana reads.
const (
	ManifestFile = "MANIFEST"
	ListingsFile = "listings.yaml"
	CountryFile  = "country.mmdb"
	ASNFile      = "asn.mmdb"
)

const (
	header      = "brana-bundle 1"
	maxManifest = 1 << 20
	maxFiles    = 1000
)

var (
	ErrSignature   = errors.New("bundle: manifest signature does not verify")
	ErrManifest    = errors.New("bundle: malformed manifest")
	ErrRollback    = errors.New("bundle: serial goes back")
	ErrSerialReuse = errors.New("bundle: serial reused for a different bundle")
	ErrHash        = errors.New("bundle: file does not match the manifest")
	ErrUnlisted    = errors.New("bundle: file not listed in the manifest")
	ErrListings    = errors.New("bundle: bad listings")
	ErrExpired     = errors.New("bundle: expired")
)

// Bundle is a verified bundle.
type Bundle struct {
	Serial   uint64
	Expires  time.Time
	Expired  bool   // Verify returned ErrExpired with it
	Dir      string // the bundle directory
	Digest   string // hex SHA-256 of the MANIFEST file as read
	Signer   string // name of the key that signed it
	Files    []File // as listed, sorted by name
	Listings []policy.ListingEntry

	CountryDB, ASNDB string // paths of country.mmdb and asn.mmdb, "" when the bundle has none
}

// File is one file line of a manifest.
type File struct {
	Name   string
	SHA256 string // 64 lower-case hex digits
}

// Manifest is the signed text of MANIFEST.
type Manifest struct {
	Serial  uint64
	Expires time.Time
	Files   []File
}

var fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ParseManifest parses the text of a manifest. It accepts only the
// canonical form that Text writes: every line as shown in the package doc,
// serial 1 or more without leading zeros, expiry in RFC 3339 UTC (Z) to the
// second, file names of letters, digits, '.', '_' and '-' (not MANIFEST),
// strictly sorted, hashes in lower-case hex, and a final newline.
func ParseManifest(text string) (*Manifest, error) {
	bad := func(format string, a ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: %s", ErrManifest, fmt.Sprintf(format, a...))
	}
	if !strings.HasSuffix(text, "\n") {
		return bad("no final newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return bad("want %q, serial and expires lines", header)
	}
	if lines[0] != header {
		return bad("first line %q; want %q", clip(lines[0]), header)
	}
	m := new(Manifest)
	s, ok := strings.CutPrefix(lines[1], "serial ")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return bad("line 2 %q: want serial N (N ≥ 1)", clip(lines[1]))
	}
	m.Serial = n
	s, ok = strings.CutPrefix(lines[2], "expires ")
	t, err := time.Parse(time.RFC3339, s)
	if !ok || err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != s {
		return bad("line 3 %q: want expires YYYY-MM-DDTHH:MM:SSZ", clip(lines[2]))
	}
	m.Expires = t
	if len(lines)-3 > maxFiles {
		return bad("more than %d files", maxFiles)
	}
	for i, l := range lines[3:] {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[0] != "file" {
			return bad("line %d %q: want file NAME SHA256", i+4, clip(l))
		}
		name, sum := f[1], f[2]
		if !fileName.MatchString(name) || name == ManifestFile {
			return bad("line %d: bad file name %q", i+4, clip(name))
		}
		if len(sum) != 64 || strings.ToLower(sum) != sum {
			return bad("line %d: hash of %s is not 64 lower-case hex digits", i+4, name)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return bad("line %d: hash of %s is not 64 lower-case hex digits", i+4, name)
		}
		if k := len(m.Files); k > 0 && m.Files[k-1].Name >= name {
			return bad("line %d: %s is not after %s (files must be sorted and unique)", i+4, name, m.Files[k-1].Name)
		}
		m.Files = append(m.Files, File{Name: name, SHA256: sum})
	}
	return m, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Text renders m in the canonical form ParseManifest accepts.
func (m *Manifest) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nserial %d\nexpires %s\n", header, m.Serial, m.Expires.UTC().Format(time.RFC3339))
	for _, f := range m.Files {
		fmt.Fprintf(&b, "file %s %s\n", f.Name, f.SHA256)
	}
	return b.String()
}

// Verify checks the bundle in dir against verifier and returns it:
//
//   - MANIFEST is a note signed by verifier's key (else ErrSignature) with a
//     well-formed text (else ErrManifest);
//   - its serial is not below lastSerial (else ErrRollback). The serial last
//     accepted is accepted again: that is a re-load of the same bundle, e.g.
//     after a restart. VerifyState also checks that it is the same bundle;
//   - every listed file is a regular file with the listed SHA-256 (else
//     ErrHash), and the directory holds no other file (else ErrUnlisted);
//   - listings.yaml, if listed, parses and every entry is valid (else
//     ErrListings); its entries carry the origin "bundle serial N";
//   - it has not expired at now. An expired bundle is returned all the
//     same, with Expired set and ErrExpired: it makes remote sessions need
//     approval (policy.Signals.BundleExpired).
//
// Any other error returns no bundle.
func Verify(dir string, verifier note.Verifier, lastSerial uint64, now time.Time) (*Bundle, error) {
	raw, err := readRegular(filepath.Join(dir, ManifestFile), maxManifest)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	m, err := ParseManifest(n.Text)
	if err != nil {
		return nil, err
	}
	if m.Serial < lastSerial {
		return nil, fmt.Errorf("%w: serial %d, last accepted %d", ErrRollback, m.Serial, lastSerial)
	}
	sum := sha256.Sum256(raw)
	b := &Bundle{
		Serial:  m.Serial,
		Expires: m.Expires,
		Dir:     dir,
		Digest:  hex.EncodeToString(sum[:]),
		Signer:  n.Sigs[0].Name,
		Files:   m.Files,
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == ManifestFile {
			continue
		}
		if !slices.ContainsFunc(m.Files, func(f File) bool { return f.Name == name }) {
			return nil, fmt.Errorf("%w: %s", ErrUnlisted, name)
		}
	}
	for _, f := range m.Files {
		path := filepath.Join(dir, f.Name)
		got, err := hashFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrHash, f.Name, err)
		}
		if got != f.SHA256 {
			return nil, fmt.Errorf("%w: %s has SHA-256 %s, manifest says %s", ErrHash, f.Name, got, f.SHA256)
		}
		switch f.Name {
		case ListingsFile:
			data, err := readRegular(path, 64<<20)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrListings, err)
			}
			// Read again after hashing: check the bytes that are used.
			if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != f.SHA256 {
				return nil, fmt.Errorf("%w: %s changed while being verified", ErrHash, f.Name)
			}
			if b.Listings, err = ParseListings(data, "bundle serial "+strconv.FormatUint(m.Serial, 10)); err != nil {
				return nil, err
			}
		case CountryFile:
			b.CountryDB = path
		case ASNFile:
			b.ASNDB = path
		}
	}
	if !now.Before(m.Expires) {
		b.Expired = true
		return b, fmt.Errorf("%w: serial %d expired at %s", ErrExpired, m.Serial, m.Expires.Format(time.RFC3339))
	}
	return b, nil
}

// VerifyState is Verify against the state of the last accepted bundle: the
// serial must be above st.Serial, or equal to it with the very same
// MANIFEST (else ErrSerialReuse).
func VerifyState(dir string, verifier note.Verifier, st State, now time.Time) (*Bundle, error) {
	b, err := Verify(dir, verifier, st.Serial, now)
	if b != nil && b.Serial == st.Serial && st.Digest != "" && b.Digest != st.Digest {
		return nil, fmt.Errorf("%w: serial %d", ErrSerialReuse, b.Serial)
	}
	return b, err
}

// State returns the state to save once b is accepted.
func (b *Bundle) State() State {
	return State{Serial: b.Serial, Digest: b.Digest, Expires: b.Expires}
}

// Sign writes dir/MANIFEST for the files in dir (every regular file but
// MANIFEST), signed by signer, with the given serial and expiry. It is for
// operators' tooling and tests; the gateway only verifies.
func Sign(dir string, signer note.Signer, serial uint64, expires time.Time) error {
	if serial == 0 {
		return fmt.Errorf("bundle: serial must be 1 or more")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	m := &Manifest{Serial: serial, Expires: expires.UTC().Truncate(time.Second)}
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if name == ManifestFile {
			continue
		}
		if !e.Type().IsRegular() || !fileName.MatchString(name) {
			return fmt.Errorf("bundle: %s: only regular files with plain names can be signed", name)
		}
		sum, err := hashFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		m.Files = append(m.Files, File{Name: name, SHA256: sum})
	}
	if _, err := ParseManifest(m.Text()); err != nil {
		return err
	}
	msg, err := note.Sign(&note.Note{Text: m.Text()}, signer)
	if err != nil {
		return fmt.Errorf("bundle: sign: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ManifestFile), msg, 0o644)
}

// LoadVerifier reads a note verifier key ("name+hash+key", as
// note.GenerateKey makes it) from a file that holds exactly one.
func LoadVerifier(path string) (note.Verifier, error) {
	return signkey.LoadVerifier(path)
}

// readRegular reads a regular file (not a symlink, device or directory) of
// at most max bytes.
func readRegular(path string, max int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), max)
	}
	return data, nil
}

func openRegular(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", filepath.Base(path))
	}
	return os.Open(path)
}

func hashFile(path string) (string, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// GenerateKey makes a new signing key pair for bundles named name (for
// example "substation-lhota-bundles"): the signer key, kept offline, and
// the verifier key, which gateways name in jurisdiction.bundle.public_key.
func GenerateKey(name string) (signer, verifier string, err error) {
	return signkey.Generate(name)
}

// LoadSigner reads a signer key written by GenerateKey.
func LoadSigner(path string) (note.Signer, error) {
	return signkey.LoadSigner(path)
}
