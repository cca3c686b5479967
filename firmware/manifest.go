package firmware

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/signkey"
)

const (
	header       = "brana-firmware 1"
	maxManifest  = 4 << 20
	maxImages    = 10000
	maxApprovers = 20
	maxText      = 256
)

// Image is one approved image: its identity (SHA-256 and size), what it is,
// where it came from and who approved it.
type Image struct {
	SHA256     string // 64 lower-case hex digits
	Size       int64  // bytes
	Vendor     string
	Product    string
	Version    string
	Origin     string   // free text: where the file came from, e.g. "vendor portal download 2026-11-20, ticket CHG-4711"
	ApprovedBy []string // names of the people who approved it
}

// Manifest is a signed allow-list of images.
type Manifest struct {
	Serial  uint64 // grows with every manifest; an older one is refused
	Issued  time.Time
	Expires time.Time
	Images  []Image // sorted by SHA256

	// Set by ParseManifest, for the audit record.
	Signer string // name of the key whose signature was verified first
	Digest string // hex SHA-256 of the signed file as read
}

// SignManifest renders m in its canonical text and signs it with signer.
// Times are taken in UTC to the second, hashes in lower case, images sorted
// by hash; anything ParseManifest would refuse is refused here.
func SignManifest(m Manifest, signer note.Signer) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("firmware: sign: no signer key")
	}
	c := Manifest{
		Serial:  m.Serial,
		Issued:  m.Issued.UTC().Truncate(time.Second),
		Expires: m.Expires.UTC().Truncate(time.Second),
		Images:  make([]Image, len(m.Images)),
	}
	for i, im := range m.Images {
		im.SHA256 = strings.ToLower(im.SHA256)
		im.ApprovedBy = slices.Clone(im.ApprovedBy)
		c.Images[i] = im
	}
	slices.SortFunc(c.Images, func(a, b Image) int { return cmp.Compare(a.SHA256, b.SHA256) })
	for i := range c.Images {
		if msg := checkImage(&c.Images[i]); msg != "" {
			return nil, fmt.Errorf("%w: image %s: %s", ErrManifest, clip(c.Images[i].SHA256), msg)
		}
		if i > 0 && c.Images[i].SHA256 == c.Images[i-1].SHA256 {
			return nil, fmt.Errorf("%w: image %s listed twice", ErrManifest, c.Images[i].SHA256)
		}
	}
	if len(c.Images) > maxImages {
		return nil, fmt.Errorf("%w: more than %d images", ErrManifest, maxImages)
	}
	if m.Serial == 0 {
		return nil, fmt.Errorf("%w: serial must be 1 or more", ErrManifest)
	}
	if m.Issued.IsZero() {
		return nil, fmt.Errorf("%w: issued time missing", ErrManifest)
	}
	if m.Expires.IsZero() {
		return nil, fmt.Errorf("%w: expiry missing", ErrManifest)
	}
	if !c.Issued.Before(c.Expires) {
		return nil, fmt.Errorf("%w: expires %s is not after issued %s", ErrManifest,
			c.Expires.Format(time.RFC3339), c.Issued.Format(time.RFC3339))
	}
	text := c.text()
	// Validate by parsing back: one set of rules, and a value with a line
	// break cannot smuggle in an image line.
	if _, err := parseText(text); err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("firmware: sign: %w", err)
	}
	return msg, nil
}

// ParseManifest verifies and parses a signed manifest, in this order:
//
//   - it is a note signed by one of verifiers (else [ErrUnknownKey]), and
//     no signature by a known key fails (else [ErrSignature]);
//   - its text is in the canonical form below (else [ErrManifest], naming
//     the line);
//   - its serial is not below minSerial (else [ErrRollback]); the serial
//     last accepted is accepted again, which is a re-load of the same
//     manifest;
//   - it has not expired at now (else [ErrExpired]).
//
// On any error it returns no manifest: an expired manifest approves
// nothing. The text is
//
//	brana-firmware 1
//	serial 12
//	issued 2026-11-20T10:00:00Z
//	expires 2027-05-20T00:00:00Z
//	image 5f2b...(64 lower-case hex digits) 1048576
//	vendor Example Automation
//	product PLC-4000 CPU
//	version 3.40.1
//	origin vendor portal download 2026-11-20, ticket CHG-4711
//	approved_by Jana Novak
//	approved_by Petr Svoboda
//	image ...
//
// with times in RFC 3339 UTC to the second, issued before expires, images
// sorted by hash with no hash twice, the size in bytes (1 or more), each
// text value non-empty, at most 256 bytes, without control characters or
// surrounding spaces, and one or more distinct approvers per image. A
// manifest may list no image: it then approves nothing.
func ParseManifest(data []byte, verifiers note.Verifiers, now time.Time, minSerial uint64) (*Manifest, error) {
	if len(data) > maxManifest {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrManifest, maxManifest)
	}
	n, err := note.Open(data, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var names []string
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return nil, fmt.Errorf("%w: signed by %s", ErrUnknownKey, strings.Join(names, ", "))
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("%w: bad signature by key %s+%08x (altered, or another key of that name)", ErrSignature, invalid.Name, invalid.Hash)
		}
		return nil, fmt.Errorf("%w: not a signed note: %v", ErrManifest, err)
	}
	m, err := parseText(n.Text)
	if err != nil {
		return nil, err
	}
	if m.Serial < minSerial {
		return nil, fmt.Errorf("%w: serial %d, last accepted %d", ErrRollback, m.Serial, minSerial)
	}
	if !now.Before(m.Expires) {
		return nil, fmt.Errorf("%w: serial %d expired at %s", ErrExpired, m.Serial, m.Expires.Format(time.RFC3339))
	}
	sum := sha256.Sum256(data)
	m.Signer = n.Sigs[0].Name
	m.Digest = hex.EncodeToString(sum[:])
	return m, nil
}

// LoadManifest reads a signed manifest file and verifies it as
// ParseManifest does.
func LoadManifest(path string, verifiers note.Verifiers, now time.Time, minSerial uint64) (*Manifest, error) {
	data, err := readFile(path, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("firmware: manifest: %w", err)
	}
	return ParseManifest(data, verifiers, now, minSerial)
}

// LoadVerifiers reads verifier key files (signkey format: one or more
// "name+hash+key" lines each) into the set ParseManifest checks against.
func LoadVerifiers(paths ...string) (note.Verifiers, error) {
	var all []note.Verifier
	for _, p := range paths {
		vs, err := signkey.LoadVerifiers(p)
		if err != nil {
			return nil, err
		}
		all = append(all, vs...)
	}
	if len(all) == 0 {
		return nil, errors.New("firmware: no verifier key files")
	}
	return note.VerifierList(all...), nil
}

// Lookup returns the image with this hash (hex, either case) and size.
func (m *Manifest) Lookup(sha256hex string, size int64) (*Image, bool) {
	if m == nil {
		return nil, false
	}
	for i := range m.Images {
		if im := &m.Images[i]; im.Size == size && strings.EqualFold(im.SHA256, sha256hex) {
			c := *im
			c.ApprovedBy = slices.Clone(im.ApprovedBy)
			return &c, true
		}
	}
	return nil, false
}

// text renders m in the canonical form.
func (m *Manifest) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nserial %d\nissued %s\nexpires %s\n", header, m.Serial,
		m.Issued.UTC().Format(time.RFC3339), m.Expires.UTC().Format(time.RFC3339))
	for _, im := range m.Images {
		fmt.Fprintf(&b, "image %s %d\nvendor %s\nproduct %s\nversion %s\norigin %s\n",
			im.SHA256, im.Size, im.Vendor, im.Product, im.Version, im.Origin)
		for _, a := range im.ApprovedBy {
			fmt.Fprintf(&b, "approved_by %s\n", a)
		}
	}
	return b.String()
}

// parseText parses the canonical text of a manifest.
func parseText(text string) (*Manifest, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%w: no final newline", ErrManifest)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	bad := func(i int, format string, a ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: line %d: %s", ErrManifest, i+1, fmt.Sprintf(format, a...))
	}
	if len(lines) < 4 {
		return bad(len(lines), "want %q, serial, issued and expires lines", header)
	}
	if lines[0] != header {
		return bad(0, "%q; want %q", clip(lines[0]), header)
	}
	m := new(Manifest)
	s, ok := strings.CutPrefix(lines[1], "serial ")
	serial, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || serial == 0 || strconv.FormatUint(serial, 10) != s {
		return bad(1, "%q: want serial N (N ≥ 1)", clip(lines[1]))
	}
	m.Serial = serial
	if m.Issued, ok = parseTime(lines[2], "issued "); !ok {
		return bad(2, "%q: want issued YYYY-MM-DDTHH:MM:SSZ", clip(lines[2]))
	}
	if m.Expires, ok = parseTime(lines[3], "expires "); !ok {
		return bad(3, "%q: want expires YYYY-MM-DDTHH:MM:SSZ", clip(lines[3]))
	}
	if !m.Issued.Before(m.Expires) {
		return bad(3, "expires %s is not after issued %s", lines[3][len("expires "):], lines[2][len("issued "):])
	}

	// Each image is a block: image, vendor, product, version, origin, then
	// one or more approved_by lines.
	fields := [...]string{"vendor", "product", "version", "origin"}
	for i := 4; i < len(lines); {
		if len(m.Images) == maxImages {
			return bad(i, "more than %d images", maxImages)
		}
		f := strings.Split(lines[i], " ")
		if len(f) != 3 || f[0] != "image" {
			return bad(i, "%q: want image SHA256 SIZE", clip(lines[i]))
		}
		var im Image
		if !isHash(f[1]) {
			return bad(i, "hash %q is not 64 lower-case hex digits", clip(f[1]))
		}
		im.SHA256 = f[1]
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size <= 0 || strconv.FormatInt(size, 10) != f[2] {
			return bad(i, "size %q: want a number of bytes, 1 or more", clip(f[2]))
		}
		im.Size = size
		if k := len(m.Images); k > 0 && m.Images[k-1].SHA256 >= im.SHA256 {
			return bad(i, "image %s is not after %s (images must be sorted by hash and listed once)", im.SHA256, m.Images[k-1].SHA256)
		}
		i++
		vals := [len(fields)]string{}
		for j, name := range fields {
			if i >= len(lines) {
				return bad(i, "end of manifest; want %s for image %s", name, im.SHA256)
			}
			v, ok := strings.CutPrefix(lines[i], name+" ")
			if !ok {
				return bad(i, "%q: want %s VALUE", clip(lines[i]), name)
			}
			if msg := checkText(v); msg != "" {
				return bad(i, "%s %s", name, msg)
			}
			vals[j] = v
			i++
		}
		im.Vendor, im.Product, im.Version, im.Origin = vals[0], vals[1], vals[2], vals[3]
		for i < len(lines) && !strings.HasPrefix(lines[i], "image ") {
			v, ok := strings.CutPrefix(lines[i], "approved_by ")
			if !ok {
				return bad(i, "%q: want approved_by NAME or the next image", clip(lines[i]))
			}
			if msg := checkText(v); msg != "" {
				return bad(i, "approved_by %s", msg)
			}
			if slices.Contains(im.ApprovedBy, v) {
				return bad(i, "approved_by %q twice", v)
			}
			if len(im.ApprovedBy) == maxApprovers {
				return bad(i, "more than %d approvers", maxApprovers)
			}
			im.ApprovedBy = append(im.ApprovedBy, v)
			i++
		}
		if len(im.ApprovedBy) == 0 {
			return bad(i-1, "image %s has no approved_by line", im.SHA256)
		}
		m.Images = append(m.Images, im)
	}
	return m, nil
}

func parseTime(line, prefix string) (time.Time, bool) {
	s, ok := strings.CutPrefix(line, prefix)
	t, err := time.Parse(time.RFC3339, s)
	if !ok || err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != s {
		return time.Time{}, false
	}
	return t, true
}

func isHash(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkText says what is wrong with a free-text value, or "" if nothing.
func checkText(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxText:
		return fmt.Sprintf("is longer than %d bytes", maxText)
	case !utf8.ValidString(s):
		return "is not UTF-8"
	case strings.TrimSpace(s) != s:
		return fmt.Sprintf("%q has surrounding spaces", s)
	case strings.ContainsFunc(s, hidden):
		return fmt.Sprintf("%q holds a control, format or line-separator character", clip(s))
	}
	return ""
}

// hidden reports characters that would break the line format or make a
// value read differently from what it is (bidirectional overrides,
// zero-width characters).
func hidden(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// checkImage says what is wrong with an image, in the terms of its fields,
// or "" if nothing.
func checkImage(im *Image) string {
	if !isHash(im.SHA256) {
		return fmt.Sprintf("sha256 %q is not 64 lower-case hex digits", clip(im.SHA256))
	}
	if im.Size <= 0 {
		return fmt.Sprintf("size %d: want the number of bytes, 1 or more", im.Size)
	}
	for _, f := range []struct{ name, v string }{
		{"vendor", im.Vendor}, {"product", im.Product}, {"version", im.Version}, {"origin", im.Origin},
	} {
		if msg := checkText(f.v); msg != "" {
			return f.name + " " + msg
		}
	}
	if len(im.ApprovedBy) == 0 {
		return "approved_by is empty: name who approved the image"
	}
	if len(im.ApprovedBy) > maxApprovers {
		return fmt.Sprintf("more than %d approvers", maxApprovers)
	}
	for i, a := range im.ApprovedBy {
		if msg := checkText(a); msg != "" {
			return "approved_by " + msg
		}
		if slices.Contains(im.ApprovedBy[:i], a) {
			return fmt.Sprintf("approved_by names %q twice", a)
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	n := 80
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// readFile reads a regular file (not a symlink, device or FIFO) of at most
// max bytes.
func readFile(path string, max int64) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", filepath.Base(path))
	}
	f, err := os.Open(path)
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
