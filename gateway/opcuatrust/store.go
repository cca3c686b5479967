// Package opcuatrust owns the OPC UA certificates brana trusts and its own:
// the trust folders of brana's OPC UA endpoint (trusted/ and rejected/,
// files named by SHA-1 thumbprint as OPC UA tools name them), brana's
// application instance certificates, the users file of its user name
// identities, and the fingerprints with which OPC UA targets pin their
// PLC's certificate (pin.go).
//
// Trust is direct: a client certificate is trusted when the very
// certificate lies in trusted/. Certificate authorities are not consulted,
// so a certificate issued by a trusted CA is not trusted for that; each
// application certificate is reviewed and trusted by itself, which suits a
// gateway that a handful of engineering tools connect to.
package opcuatrust

import (
	"bytes"
	"cmp"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// The folders of a Store.
const (
	Trusted  = "trusted"
	Rejected = "rejected"
)

// Limits on client certificates. OPC UA asks for RSA keys of 2048 to 4096
// bits for the policies brana offers (OPC 10000-7).
const (
	MinKeyBits = 2048
	MaxKeyBits = 4096

	// maxRejected bounds rejected/: every stranger's certificate lands
	// there, and strangers must not be able to fill the disk.
	maxRejected = 200

	minPrefix = 8
)

// Reasons a certificate is refused; *Untrusted unwraps to one of them.
var (
	ErrMalformed   = errors.New("opcuatrust: not an X.509 certificate")
	ErrTimeInvalid = errors.New("opcuatrust: certificate outside its validity period")
	ErrKey         = errors.New("opcuatrust: certificate key not acceptable")
	ErrNoURI       = errors.New("opcuatrust: certificate without an application URI")
	ErrNotTrusted  = errors.New("opcuatrust: certificate not trusted")
)

// Untrusted is a refused client certificate. Reason says why in an
// operator's words; Err is one of the sentinel errors above, for the
// channel to choose its status code.
type Untrusted struct {
	Thumbprint string // SHA-1 of the leaf certificate, lower-case hex
	Subject    string
	AppURI     string
	Reason     string
	Err        error
}

func (e *Untrusted) Error() string {
	who := e.Thumbprint
	if e.Subject != "" {
		who += " " + strings.TrimSpace(e.Subject)
	}
	if e.AppURI != "" {
		who += " " + e.AppURI
	}
	return "opcuatrust: certificate " + who + ": " + e.Reason
}

func (e *Untrusted) Unwrap() error { return e.Err }

// Entry is one certificate in a trust folder.
type Entry struct {
	Thumbprint string // SHA-1 of the DER certificate, lower-case hex
	Subject    string
	AppURI     string // the first URI in the SubjectAltName; "" if none
	NotBefore  time.Time
	NotAfter   time.Time
	Path       string
}

// Store is a trust folder: DIR/trusted and DIR/rejected. The gateway and
// the brana opcua commands may use one at the same time: files are written
// whole and moved by rename.
type Store struct {
	dir string
	mu  sync.Mutex // orders writes to rejected/ within this process
}

// Open opens the trust folder dir, creating it and its subfolders (0700)
// if they are missing.
func Open(dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, Trusted), filepath.Join(dir, Rejected)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("opcuatrust: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the folder the Store was opened on.
func (s *Store) Dir() string { return s.dir }

// Leaf parses the first certificate of der, which may be a chain of DER
// certificates one after the other, as an OPC UA SenderCertificate may be.
func Leaf(der []byte) (*x509.Certificate, error) {
	certs, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(certs) == 0 {
		return nil, ErrMalformed
	}
	return certs[0], nil
}

// Check decides whether the client certificate der (a leaf, or a chain with
// the leaf first) may open a secure channel at now. It must be an RSA
// certificate of MinKeyBits to MaxKeyBits with an application URI, valid
// at now, and lie in trusted/. A certificate that passes every check but
// the last is copied to rejected/, where the operator reviews it (brana
// opcua trust). A refusal is an *Untrusted.
func (s *Store) Check(der []byte, now time.Time) error {
	c, err := Leaf(der)
	if err != nil {
		return &Untrusted{Thumbprint: Thumbprint(der), Reason: strings.TrimPrefix(err.Error(), "opcuatrust: "), Err: ErrMalformed}
	}
	e := entryOf(c, "")
	refuse := func(sentinel error, format string, args ...any) error {
		return &Untrusted{Thumbprint: e.Thumbprint, Subject: e.Subject, AppURI: e.AppURI,
			Reason: fmt.Sprintf(format, args...), Err: sentinel}
	}
	if reason, err := intrinsic(c); err != nil {
		return refuse(err, "%s", reason)
	}
	switch {
	case now.Before(c.NotBefore):
		return refuse(ErrTimeInvalid, "not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return refuse(ErrTimeInvalid, "expired on %s", c.NotAfter.UTC().Format(time.RFC3339))
	}
	name := e.Thumbprint + ".der"
	got, err := os.ReadFile(filepath.Join(s.dir, Trusted, name))
	// The bytes are compared, so that trust does not rest on SHA-1.
	if err == nil && bytes.Equal(got, c.Raw) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return refuse(ErrNotTrusted, "the trusted folder cannot be read: %v", err)
	}
	return refuse(ErrNotTrusted, "%s", s.reject(c.Raw, name))
}

// intrinsic checks what does not depend on the clock or the folders.
func intrinsic(c *x509.Certificate) (reason string, err error) {
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	switch {
	case !ok:
		return fmt.Sprintf("the key is %s, not RSA", c.PublicKeyAlgorithm), ErrKey
	case pub.N.BitLen() < MinKeyBits:
		return fmt.Sprintf("the RSA key has %d bits, fewer than %d", pub.N.BitLen(), MinKeyBits), ErrKey
	case pub.N.BitLen() > MaxKeyBits:
		return fmt.Sprintf("the RSA key has %d bits, more than %d", pub.N.BitLen(), MaxKeyBits), ErrKey
	case len(c.URIs) == 0:
		return "no application URI in the SubjectAltName", ErrNoURI
	}
	return "", nil
}

// reject copies a certificate that is not trusted to rejected/ and says
// what the operator can do about it.
func (s *Store) reject(der []byte, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Join(s.dir, Rejected)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return "not trusted; it waits in " + path + " for review"
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.der")); len(files) >= maxRejected {
		return fmt.Sprintf("not trusted, and not kept for review: %s already holds %d certificates", dir, len(files))
	}
	if err := atomicfile.WriteFile(path, der, 0o600); err != nil {
		return fmt.Sprintf("not trusted, and not kept for review: %v", err)
	}
	return "not trusted; copied to " + path + " for review"
}

// List returns the certificates in one folder, Trusted or Rejected, by
// subject and thumbprint. Files that are not DER certificates are left out.
func (s *Store) List(which string) ([]Entry, error) {
	if which != Trusted && which != Rejected {
		return nil, fmt.Errorf("opcuatrust: %q is neither %s nor %s", which, Trusted, Rejected)
	}
	files, err := filepath.Glob(filepath.Join(s.dir, which, "*.der"))
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("opcuatrust: %w", err)
		}
		c, err := x509.ParseCertificate(b)
		if err != nil {
			continue
		}
		out = append(out, entryOf(c, f))
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), strings.Compare(a.Thumbprint, b.Thumbprint))
	})
	return out, nil
}

// Trust moves the certificate whose thumbprint starts with prefix from
// rejected/ to trusted/. The prefix takes at least 8 hex digits (colons
// and case are ignored) and must name one certificate.
func (s *Store) Trust(prefix string) (Entry, error) {
	return s.move(prefix, Rejected, Trusted)
}

// Reject moves the certificate whose thumbprint starts with prefix from
// trusted/ to rejected/; it is no longer trusted from the next secure
// channel on.
func (s *Store) Reject(prefix string) (Entry, error) {
	return s.move(prefix, Trusted, Rejected)
}

func (s *Store) move(prefix, from, to string) (Entry, error) {
	p := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(prefix), ":", ""))
	if len(p) < minPrefix || strings.Trim(p, "0123456789abcdef") != "" {
		return Entry{}, fmt.Errorf("opcuatrust: %q is not a thumbprint prefix (at least %d hex digits)", prefix, minPrefix)
	}
	e, err := s.find(p, from, to)
	if err != nil {
		return Entry{}, err
	}
	dst := filepath.Join(s.dir, to, e.Thumbprint+".der")
	if err := os.Rename(e.Path, dst); err != nil {
		return Entry{}, fmt.Errorf("opcuatrust: %w", err)
	}
	e.Path = dst
	return e, nil
}

// find returns the one certificate in folder from whose thumbprint starts
// with p; to is the other folder, named when the certificate is there.
func (s *Store) find(p, from, to string) (Entry, error) {
	list, err := s.List(from)
	if err != nil {
		return Entry{}, err
	}
	var found []Entry
	for _, e := range list {
		if strings.HasPrefix(e.Thumbprint, p) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		if others, _ := s.List(to); slices.ContainsFunc(others, func(e Entry) bool { return strings.HasPrefix(e.Thumbprint, p) }) {
			return Entry{}, fmt.Errorf("opcuatrust: the certificate %s… is %s already", p, to)
		}
		return Entry{}, fmt.Errorf("opcuatrust: no certificate %s… in %s", p, filepath.Join(s.dir, from))
	case 1:
		return found[0], nil
	}
	var names []string
	for _, e := range found {
		names = append(names, e.Thumbprint+" "+e.Subject)
	}
	return Entry{}, fmt.Errorf("opcuatrust: %s… is ambiguous in %s: %s; give more digits", p, from, strings.Join(names, ", "))
}

// Add writes a certificate to trusted/, named by its thumbprint, and takes
// it out of rejected/. der is a DER certificate, a chain (the leaf is
// added), or PEM with the certificate in the first CERTIFICATE block. A
// certificate that Check would refuse whatever the folders say (not RSA,
// key size, no application URI) is not added.
func (s *Store) Add(der []byte) (Entry, error) {
	c, err := ParseCertificate(der)
	if err != nil {
		return Entry{}, err
	}
	if reason, err := intrinsic(c); err != nil {
		return Entry{}, fmt.Errorf("%w: %s", err, reason)
	}
	e := entryOf(c, filepath.Join(s.dir, Trusted, Thumbprint(c.Raw)+".der"))
	if err := atomicfile.WriteFile(e.Path, c.Raw, 0o600); err != nil {
		return Entry{}, fmt.Errorf("opcuatrust: %w", err)
	}
	if err := os.Remove(filepath.Join(s.dir, Rejected, e.Thumbprint+".der")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return e, fmt.Errorf("opcuatrust: %w", err)
	}
	return e, nil
}

func entryOf(c *x509.Certificate, path string) Entry {
	e := Entry{Thumbprint: Thumbprint(c.Raw), Subject: c.Subject.String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Path: path}
	if len(c.URIs) > 0 {
		e.AppURI = c.URIs[0].String()
	}
	return e
}
