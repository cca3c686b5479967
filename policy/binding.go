package policy

import (
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// Credential bindings (DESIGN.md, "Policy model"): a party is identified only
// by a credential bound to it. Besides source networks for local parties
// these are SSH public keys (by SHA-256 fingerprint), OpenSSH certificate
// principals, TLS client certificates (by fingerprint, or by subject CN and
// Modbus/TCP Security role; OPC UA X.509 user certificates bind the same
// way), and user names of brana's OPC UA endpoint. Each credential binds to
// one party; Compile refuses a credential bound twice, since it would not
// say who is on the other end.
//
// Keys are parsed here with the standard library (policy imports nothing
// outside it, see deps_test.go); the tests check every accepted key against
// golang.org/x/crypto/ssh, whose fingerprints the SSH endpoint computes.

// tlsBinding is a TLS certificate bound by fingerprint.
type tlsBinding struct {
	party *Party
	role  string // "" = any role
}

// tlsName keys bindings by subject common name and role.
type tlsName struct {
	cn, role string
}

// PartyBySSHKey returns the party a public key is bound to, or nil.
// fingerprint is the key's "SHA256:…" fingerprint as OpenSSH and
// ssh.FingerprintSHA256 print it; for a certificate, of its key.
func (p *Policy) PartyBySSHKey(fingerprint string) *Party { return p.sshKeys[fingerprint] }

// PartyBySSHPrincipal returns the party an OpenSSH certificate principal is
// bound to, or nil. The caller has checked the certificate: signed by a
// trusted CA, valid now, and the principal among its principals.
func (p *Policy) PartyBySSHPrincipal(principal string) *Party {
	if principal == "" {
		return nil
	}
	return p.sshPrincipals[principal]
}

// PartyByOPCUAUser returns the party a user name of brana's OPC UA endpoint
// is bound to, or nil. The caller has checked the password against the
// endpoint's users file.
func (p *Policy) PartyByOPCUAUser(name string) *Party {
	if name == "" {
		return nil
	}
	return p.opcuaUsers[name]
}

// PartyByTLS returns the party a verified TLS client certificate is bound to,
// or nil. fingerprint is the SHA-256 of the DER certificate in hex (see
// [TLSFingerprint]; case, colons and a "sha256:" prefix are ignored),
// commonName its subject CN and role its Modbus/TCP Security role ("" if it
// has none). A fingerprint binding wins, then a binding of the CN with this
// role, then one of the CN without a role. A binding with a role matches only
// that role.
func (p *Policy) PartyByTLS(fingerprint, commonName, role string) *Party {
	if fp, ok := normFingerprint(fingerprint); ok {
		if b, ok := p.tlsCerts[fp]; ok && (b.role == "" || b.role == role) {
			return b.party
		}
	}
	if commonName == "" {
		return nil
	}
	if role != "" {
		if pt := p.tlsNames[tlsName{commonName, role}]; pt != nil {
			return pt
		}
	}
	return p.tlsNames[tlsName{commonName, ""}]
}

// TLSFingerprint is the fingerprint PartyByTLS and tls_clients use: the
// lower-case hex SHA-256 of a DER certificate. It equals what
// `openssl x509 -noout -fingerprint -sha256` prints, without the colons.
func TLSFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// normFingerprint accepts 64 hex digits, optionally colon-separated and
// prefixed with "sha256:" or "SHA256:", and returns them in lower case.
func normFingerprint(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256:") {
		s = s[7:]
	}
	s = strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(s) != 2*sha256.Size {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// bindings compiles and indexes the credentials of one party.
func (c *compiler) bindings(path string, ps *PartySpec, party *Party) {
	if ps.Kind == "owner" {
		for _, f := range []struct {
			key string
			n   int
		}{{"ssh_keys", len(ps.SSHKeys)}, {"ssh_principals", len(ps.SSHPrincipals)}, {"tls_clients", len(ps.TLSClients)},
			{"opcua_users", len(ps.OPCUAUsers)}} {
			if f.n > 0 {
				c.errorf(path+"."+f.key, "party %q is an owner: it never connects, so no credential binds to it", ps.ID)
			}
		}
		return
	}
	for j, s := range ps.SSHKeys {
		kpath := fmt.Sprintf("%s.ssh_keys[%d]", path, j)
		fp, err := sshKeyFingerprint(s)
		if err != nil {
			c.errorf(kpath, "%v", err)
			continue
		}
		if c.bind("ssh key "+fp, kpath, fmt.Sprintf("key %s", fp)) {
			c.p.sshKeys[fp] = party
			party.SSHKeys = append(party.SSHKeys, fp)
		}
	}
	for j, s := range ps.SSHPrincipals {
		ppath := fmt.Sprintf("%s.ssh_principals[%d]", path, j)
		switch {
		case s == "":
			c.errorf(ppath, "empty principal")
			continue
		case strings.ContainsAny(s, ", \t\r\n"):
			c.errorf(ppath, "principal %q contains a comma or white space (ssh-keygen -n separates principals with commas)", s)
			continue
		}
		if c.bind("ssh principal "+s, ppath, fmt.Sprintf("principal %q", s)) {
			c.p.sshPrincipals[s] = party
			party.SSHPrincipals = append(party.SSHPrincipals, s)
		}
	}
	for j, b := range ps.TLSClients {
		tpath := fmt.Sprintf("%s.tls_clients[%d]", path, j)
		switch {
		case b.Fingerprint != "" && b.CommonName != "":
			c.errorf(tpath, "give fingerprint or common_name, not both")
		case b.Fingerprint != "":
			fp, ok := normFingerprint(b.Fingerprint)
			if !ok {
				c.errorf(tpath+".fingerprint", "bad fingerprint %q (want the SHA-256 of the DER certificate as 64 hex digits, as `openssl x509 -noout -fingerprint -sha256` prints it)", b.Fingerprint)
				continue
			}
			if c.bind("tls cert "+fp, tpath+".fingerprint", "certificate sha256:"+fp) {
				c.p.tlsCerts[fp] = tlsBinding{party, b.Role}
				b.Fingerprint = fp
				party.TLSClients = append(party.TLSClients, b)
			}
		case strings.TrimSpace(b.CommonName) != "":
			what := fmt.Sprintf("common name %q", b.CommonName)
			if b.Role != "" {
				what += fmt.Sprintf(" with role %q", b.Role)
			}
			if c.bind("tls name "+b.Role+"\x00"+b.CommonName, tpath+".common_name", what) {
				c.p.tlsNames[tlsName{b.CommonName, b.Role}] = party
				party.TLSClients = append(party.TLSClients, b)
			}
		default:
			c.errorf(tpath, "no fingerprint or common_name (give one of them)")
		}
	}
	for j, u := range ps.OPCUAUsers {
		upath := fmt.Sprintf("%s.opcua_users[%d]", path, j)
		if !validOPCUAUser(u) {
			c.errorf(upath, "%q is not a user name (1 to 64 characters, no white space)", u)
			continue
		}
		if c.bind("opcua user "+u, upath, fmt.Sprintf("OPC UA user %q", u)) {
			c.p.opcuaUsers[u] = party
			party.OPCUAUsers = append(party.OPCUAUsers, u)
		}
	}
}

// validOPCUAUser accepts the names an OPC UA users file may hold: printable,
// without white space, at most 64 bytes.
func validOPCUAUser(u string) bool {
	if u == "" || len(u) > 64 {
		return false
	}
	for _, r := range u {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// bind claims a credential for the binding at path; a credential bound
// already is an error naming the other binding.
func (c *compiler) bind(key, path, what string) bool {
	if other, dup := c.bound[key]; dup {
		c.errorf(path, "%s is already bound at %s: a credential binds to one party, once", what, other)
		return false
	}
	c.bound[key] = path
	return true
}

// hasBindings reports whether any party binds a credential, so that digests
// of specs without bindings stay those of earlier versions.
func hasBindings(spec *Spec) bool {
	for _, ps := range spec.Parties {
		if len(ps.SSHKeys) > 0 || len(ps.SSHPrincipals) > 0 || len(ps.TLSClients) > 0 {
			return true
		}
	}
	return false
}

// hasOPCUAUsers reports whether any party binds an OPC UA user name, for
// the same reason.
func hasOPCUAUsers(spec *Spec) bool {
	for _, ps := range spec.Parties {
		if len(ps.OPCUAUsers) > 0 {
			return true
		}
	}
	return false
}

// SSH key types a binding accepts.
const (
	sshEd25519   = "ssh-ed25519"
	sshSKEd25519 = "sk-ssh-ed25519@openssh.com"
	sshRSA       = "ssh-rsa"
	sshECDSA256  = "ecdsa-sha2-nistp256"
	sshECDSA384  = "ecdsa-sha2-nistp384"
	sshECDSA521  = "ecdsa-sha2-nistp521"
	sshSKECDSA   = "sk-ecdsa-sha2-nistp256@openssh.com"

	minRSABits = 2048
)

var sshKeyTypes = []string{sshEd25519, sshSKEd25519, sshECDSA256, sshECDSA384, sshECDSA521, sshSKECDSA, sshRSA}

var errSSHShort = errors.New("key data ends early")

// sshKeyFingerprint parses one public key in authorized_keys format
// ("TYPE BASE64 [COMMENT]", without options) and returns its OpenSSH
// SHA-256 fingerprint. The key data is checked to be a well-formed key of
// the type the line names (RFC 4253 section 6.6, RFC 5656, RFC 8709,
// OpenSSH PROTOCOL.u2f); certificates, DSA keys and RSA keys under 2048 bits
// are refused.
func sshKeyFingerprint(line string) (string, error) {
	// A key is one line. A line break inside would pass the base64 decoder,
	// which skips them, but no SSH tool reads such a key.
	line = strings.TrimRight(line, "\r\n")
	if strings.ContainsAny(line, "\r\n") {
		return "", errors.New("a key is one line (TYPE BASE64 [COMMENT]); this one has a line break")
	}
	// Fields are separated by spaces and tabs only, as OpenSSH reads
	// authorized_keys: other white space belongs to a field.
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return "", errors.New("empty key")
	}
	typ := fields[0]
	switch {
	case contains(sshKeyTypes, typ):
	case strings.HasSuffix(typ, "-cert-v01@openssh.com"):
		return "", fmt.Errorf("%s is an OpenSSH certificate: bind its principal with ssh_principals instead", typ)
	case typ == "ssh-dss":
		return "", errors.New("DSA keys are not accepted (OpenSSH has removed them)")
	case len(fields) > 1 && contains(sshKeyTypes, fields[1]), strings.ContainsAny(typ, "=,\""):
		return "", errors.New("authorized_keys options are not supported (brana would not apply them); give the key alone: TYPE BASE64 [COMMENT]")
	default:
		return "", fmt.Errorf("unknown key type %q (want one of %s)", typ, strings.Join(sshKeyTypes, ", "))
	}
	if len(fields) < 2 {
		return "", fmt.Errorf("%s key without key data (want TYPE BASE64 [COMMENT])", typ)
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return "", fmt.Errorf("%s key data is not base64: %v", typ, err)
	}
	if err := checkSSHKey(typ, blob); err != nil {
		return "", fmt.Errorf("bad %s key: %v", typ, err)
	}
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

// checkSSHKey checks the wire encoding of a public key of type typ.
func checkSSHKey(typ string, blob []byte) error {
	r := sshReader(blob)
	name, err := r.str()
	if err != nil {
		return err
	}
	if string(name) != typ {
		return fmt.Errorf("key data is of type %q", name)
	}
	switch typ {
	case sshEd25519, sshSKEd25519:
		k, err := r.str()
		if err != nil {
			return err
		}
		if len(k) != 32 {
			return fmt.Errorf("ed25519 key of %d bytes (want 32)", len(k))
		}
	case sshECDSA256, sshECDSA384, sshECDSA521, sshSKECDSA:
		curve, err := r.str()
		if err != nil {
			return err
		}
		want, c := "nistp256", ecdh.P256()
		switch typ {
		case sshECDSA384:
			want, c = "nistp384", ecdh.P384()
		case sshECDSA521:
			want, c = "nistp521", ecdh.P521()
		}
		if string(curve) != want {
			return fmt.Errorf("curve %q (want %s)", curve, want)
		}
		pt, err := r.str()
		if err != nil {
			return err
		}
		if _, err := c.NewPublicKey(pt); err != nil {
			return errors.New("point is not on the curve")
		}
	case sshRSA:
		e, err := r.mpint()
		if err != nil {
			return err
		}
		n, err := r.mpint()
		if err != nil {
			return err
		}
		switch {
		case e.BitLen() > 24 || e.Cmp(big.NewInt(3)) < 0 || e.Bit(0) == 0:
			return fmt.Errorf("bad public exponent %v", e)
		case n.BitLen() < minRSABits:
			return fmt.Errorf("RSA key of %d bits is too short (want at least %d)", n.BitLen(), minRSABits)
		}
	}
	if typ == sshSKEd25519 || typ == sshSKECDSA {
		if _, err := r.str(); err != nil { // application, usually "ssh:"
			return err
		}
	}
	if len(r) > 0 {
		return fmt.Errorf("%d bytes after the key", len(r))
	}
	return nil
}

// sshReader reads RFC 4251 section 5 data types.
type sshReader []byte

func (r *sshReader) str() ([]byte, error) {
	if len(*r) < 4 {
		return nil, errSSHShort
	}
	n := binary.BigEndian.Uint32(*r)
	if uint64(n) > uint64(len(*r)-4) {
		return nil, errSSHShort
	}
	s := (*r)[4 : 4+n]
	*r = (*r)[4+n:]
	return s, nil
}

func (r *sshReader) mpint() (*big.Int, error) {
	b, err := r.str()
	if err != nil {
		return nil, err
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		return nil, errors.New("negative integer")
	}
	return new(big.Int).SetBytes(b), nil
}
