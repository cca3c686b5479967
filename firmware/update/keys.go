package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// rootKeys are the trusted root public keys, base64 of the 32-byte ed25519
// keys, separated by commas or spaces. A release build sets them with
//
//	-ldflags "-X github.com/brana-ot/brana/firmware/update.rootKeys=KEY1,KEY2"
//
// or they are written here once the project's root keys exist. A string
// (not a slice) so that the linker can set it. Empty: the build accepts no
// update at all, which is the safe default for development builds.
var rootKeys = ""

// CompiledRoots returns the root keys compiled into this build.
func CompiledRoots() ([]ed25519.PublicKey, error) {
	var roots []ed25519.PublicKey
	for _, s := range strings.FieldsFunc(rootKeys, func(r rune) bool { return r == ',' || r == ' ' }) {
		k, err := ParsePublicKey([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("update: compiled-in root key %q: %w", s, err)
		}
		roots = append(roots, k)
	}
	return roots, nil
}

// MarshalPublicKey is the text form of a public key, as compiled in and as
// written to key files: base64 of the raw key and a newline.
func MarshalPublicKey(k ed25519.PublicKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
}

// ParsePublicKey reads what MarshalPublicKey writes; surrounding white
// space is ignored.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a base64 ed25519 public key")
	}
	return ed25519.PublicKey(raw), nil
}

// MarshalPrivateKey writes a private key as a PKCS #8 PEM block, which
// openssl can read too.
func MarshalPrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads an ed25519 private key from a PKCS #8 PEM block.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("not a PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an ed25519 key (%T)", k)
	}
	return ek, nil
}

const certHeader = "brana update signing key v1"

// certificate is a parsed signing-key certificate.
type certificate struct {
	Key      ed25519.PublicKey
	Name     string
	NotAfter time.Time
}

// statement is the text a root signs.
func (c *certificate) statement() []byte {
	return fmt.Appendf(nil, "%s\nkey %s\nname %s\nnot-after %s\n",
		certHeader, base64.StdEncoding.EncodeToString(c.Key), c.Name, c.NotAfter.UTC().Format(time.RFC3339))
}

// Certify returns the certificate of a signing key, signed by root.
func Certify(root ed25519.PrivateKey, signing ed25519.PublicKey, name string, notAfter time.Time) ([]byte, error) {
	if len(signing) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("update: certify: signing key is not an ed25519 public key")
	}
	if !validName(name) {
		return nil, fmt.Errorf("update: certify: name %q: want 1 to 100 printable characters without leading or trailing space", name)
	}
	c := &certificate{Key: signing, Name: name, NotAfter: notAfter.UTC().Truncate(time.Second)}
	st := c.statement()
	sig := ed25519.Sign(root, st)
	return fmt.Appendf(st, "root-signature %s\n", base64.StdEncoding.EncodeToString(sig)), nil
}

// parseCert splits a certificate into its statement and root signature and
// parses the statement. It accepts only the exact form Certify writes, so
// one certificate has one encoding.
func parseCert(b []byte) (c *certificate, statement, sig []byte, err error) {
	bad := func(why string) (*certificate, []byte, []byte, error) {
		return nil, nil, nil, fmt.Errorf("%w: signing-key certificate: %s", ErrMalformed, why)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 6 || lines[5] != "" {
		return bad("want 5 lines, each ending in a newline")
	}
	if lines[0] != certHeader {
		return bad(fmt.Sprintf("first line %q; want %q", clip(lines[0]), certHeader))
	}
	var f [4]string
	for i, key := range []string{"key", "name", "not-after", "root-signature"} {
		v, ok := strings.CutPrefix(lines[i+1], key+" ")
		if !ok {
			return bad(fmt.Sprintf("line %d: want %q", i+2, key))
		}
		f[i] = v
	}
	c = &certificate{Name: f[1]}
	if c.Key, err = ParsePublicKey([]byte(f[0])); err != nil {
		return bad("key: " + err.Error())
	}
	if !validName(c.Name) {
		return bad("name: want 1 to 100 printable characters")
	}
	if c.NotAfter, err = parseTime(f[2]); err != nil {
		return bad("not-after: " + err.Error())
	}
	if sig, err = base64.StdEncoding.Strict().DecodeString(f[3]); err != nil || len(sig) != ed25519.SignatureSize {
		return bad("root-signature: not a base64 ed25519 signature")
	}
	statement = c.statement()
	if !bytes.Equal(fmt.Appendf(bytes.Clone(statement), "root-signature %s\n", base64.StdEncoding.EncodeToString(sig)), b) {
		return bad("not in canonical form")
	}
	return c, statement, sig, nil
}

// validName admits names that fit on one line of the certificate and read
// the same in a terminal: printable ASCII, no leading or trailing space.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 100 || strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseTime accepts only the form the signed texts are written in: RFC
// 3339, UTC, whole seconds.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UTC().Format(time.RFC3339) != s {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 UTC time like 2027-01-31T00:00:00Z", clip(s))
	}
	return t, nil
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
