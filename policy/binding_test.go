package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testKeys are generated once per test binary: RSA keys are slow.
var testKeys = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	add := func(name string, pub crypto.PublicKey) {
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			panic(err)
		}
		m[name] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	for _, name := range []string{"ed25519-a", "ed25519-b", "ed25519-c"} {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		add(name, pub)
	}
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		add("ecdsa-"+name, &k.PublicKey)
	}
	for name, bits := range map[string]int{"rsa-2048": 2048, "rsa-1024": 1024} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		add(name, &k.PublicKey)
	}
	return m
})

// wire builds an SSH public key blob from strings and raw mpints.
func wire(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

func keyLine(typ string, blob []byte, comment string) string {
	s := typ + " " + base64.StdEncoding.EncodeToString(blob)
	if comment != "" {
		s += " " + comment
	}
	return s
}

// keyBlob returns the decoded key data of an authorized_keys line.
func keyBlob(t testing.TB, line string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.Fields(line)[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSSHKeyFingerprint(t *testing.T) {
	keys := testKeys()
	ed := keyBlob(t, keys["ed25519-a"])
	edPub := ed[len(ed)-32:]
	p256 := keyBlob(t, keys["ecdsa-p256"])
	p256Point := p256[len(p256)-65:]
	offCurve := append([]byte{4}, make([]byte, 64)...)
	offCurve[64] = 1

	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caKey)
	userPub, _ := ssh.NewPublicKey(ed25519.PublicKey(edPub))
	cert := &ssh.Certificate{Key: userPub, CertType: ssh.UserCert, KeyId: "jan", ValidPrincipals: []string{"jan"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	certLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))

	tests := []struct {
		name, line string
		err        string // substring; "" = accepted
	}{
		{"ok/ed25519", keys["ed25519-a"] + " jan@laptop", ""},
		{"ok/ed25519-no-comment", keys["ed25519-a"], ""},
		{"ok/comment-with-spaces", keys["ed25519-b"] + " Jan Novák, Vendor s.r.o.", ""},
		{"ok/tabs-and-padding", "  " + strings.Replace(keys["ed25519-c"], " ", "\t", 1) + "\t", ""},
		{"ok/ecdsa-p256", keys["ecdsa-p256"], ""},
		{"ok/ecdsa-p384", keys["ecdsa-p384"], ""},
		{"ok/ecdsa-p521", keys["ecdsa-p521"], ""},
		{"ok/rsa-2048", keys["rsa-2048"] + " old@box", ""},
		{"ok/sk-ed25519", keyLine(sshSKEd25519, wire([]byte(sshSKEd25519), edPub, []byte("ssh:")), "yubikey"), ""},
		{"ok/sk-ecdsa", keyLine(sshSKECDSA, wire([]byte(sshSKECDSA), []byte("nistp256"), p256Point, []byte("ssh:")), ""), ""},
		{"fail/empty", "  ", "empty key"},
		{"ok/trailing-newline", keys["ed25519-a"] + " jan@laptop\n", ""},
		{"fail/line-break-in-data", func() string { k := keys["ed25519-a"]; return k[:len(k)-4] + "\n" + k[len(k)-4:] }(), "has a line break"},
		{"fail/unknown-type", "ssh-foo AAAA", `unknown key type "ssh-foo"`},
		{"fail/certificate", certLine, "bind its principal with ssh_principals"},
		{"fail/dsa", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys are not accepted"},
		{"fail/options", "no-pty " + keys["ed25519-a"], "options are not supported"},
		{"fail/options-from", `from="10.0.0.0/8" ` + keys["ed25519-a"], "options are not supported"},
		{"fail/no-data", "ssh-ed25519", "without key data"},
		{"fail/not-base64", "ssh-ed25519 AAAA!!!!", "not base64"},
		{"fail/type-mismatch", "ssh-rsa " + strings.Fields(keys["ed25519-a"])[1], `key data is of type "ssh-ed25519"`},
		{"fail/ed25519-short", keyLine(sshEd25519, wire([]byte(sshEd25519), edPub[:31]), ""), "ed25519 key of 31 bytes"},
		{"fail/trailing-bytes", keyLine(sshEd25519, append(wire([]byte(sshEd25519), edPub), 0), ""), "1 bytes after the key"},
		{"fail/truncated", keyLine(sshEd25519, wire([]byte(sshEd25519), edPub)[:40], ""), "ends early"},
		{"fail/sk-without-application", keyLine(sshSKEd25519, wire([]byte(sshSKEd25519), edPub), ""), "ends early"},
		{"fail/ecdsa-off-curve", keyLine(sshECDSA256, wire([]byte(sshECDSA256), []byte("nistp256"), offCurve), ""), "not on the curve"},
		{"fail/ecdsa-compressed", keyLine(sshECDSA256, wire([]byte(sshECDSA256), []byte("nistp256"), append([]byte{2}, p256Point[1:33]...)), ""), "not on the curve"},
		{"fail/ecdsa-curve-name", keyLine(sshECDSA256, wire([]byte(sshECDSA256), []byte("nistp384"), p256Point), ""), `curve "nistp384"`},
		{"fail/rsa-1024", keys["rsa-1024"], "1024 bits is too short"},
		{"fail/rsa-even-exponent", keyLine(sshRSA, wire([]byte(sshRSA), []byte{1, 0, 0}, append([]byte{0}, make([]byte, 256)...)), ""), "bad public exponent"},
		{"fail/rsa-negative", keyLine(sshRSA, wire([]byte(sshRSA), []byte{0x81}, []byte{1}), ""), "negative integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sshKeyFingerprint(tt.line)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("sshKeyFingerprint = %q, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// An implementation we did not write must agree.
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(tt.line))
			if err != nil {
				t.Fatalf("x/crypto/ssh refuses a key we accept: %v", err)
			}
			if want := ssh.FingerprintSHA256(k); got != want {
				t.Fatalf("fingerprint %s; x/crypto/ssh says %s", got, want)
			}
		})
	}
}

// FuzzSSHKeyFingerprint checks that every key accepted is accepted by
// golang.org/x/crypto/ssh too, with the same fingerprint.
func FuzzSSHKeyFingerprint(f *testing.F) {
	for _, k := range testKeys() {
		f.Add(k)
	}
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x")
	f.Fuzz(func(t *testing.T, line string) {
		got, err := sshKeyFingerprint(line)
		if err != nil {
			return
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatalf("accepted %q, x/crypto/ssh refuses it: %v", line, err)
		}
		if want := ssh.FingerprintSHA256(k); got != want {
			t.Fatalf("fingerprint %s; x/crypto/ssh says %s", got, want)
		}
	})
}

const (
	fpA = "3f0c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
	fpB = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
)

// bindingSpec is testSpec with credentials bound, and an owner.
func bindingSpec() Spec {
	keys := testKeys()
	s := testSpec()
	s.Parties[1].SSHKeys = []string{keys["ed25519-a"] + " jan@laptop", keys["ecdsa-p256"]}
	s.Parties[1].SSHPrincipals = []string{"jan.novak"}
	s.Parties[1].TLSClients = []TLSBindingSpec{
		{Fingerprint: fpA},
		{CommonName: "hmi-01", Role: "Operator"},
	}
	s.Parties[2].SSHPrincipals = []string{"integ"}
	s.Parties[2].TLSClients = []TLSBindingSpec{{CommonName: "laptop"}}
	s.Parties[3].SSHKeys = []string{keys["ed25519-b"]}
	s.Parties[3].TLSClients = []TLSBindingSpec{
		{CommonName: "hmi-01", Role: "Engineer"},
		{CommonName: "hmi-01"},
		{Fingerprint: strings.ToUpper(colons(fpB)), Role: "Engineer"},
	}
	s.Parties = append(s.Parties, PartySpec{ID: "holding", Name: "Holding", Kind: "owner"})
	return s
}

// colons writes a hex fingerprint the way openssl prints it.
func colons(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(fp[i : i+2])
	}
	return b.String()
}

func TestBindingErrors(t *testing.T) {
	keys := testKeys()
	tests := []struct {
		name   string
		mutate func(s *Spec)
		path   string
		msg    string
	}{
		{"fail/bad-ssh-key", func(s *Spec) { s.Parties[1].SSHKeys[1] = "ssh-ed25519 AAAA" }, "parties[1].ssh_keys[1]", "bad ssh-ed25519 key"},
		{"fail/ssh-key-two-parties", func(s *Spec) { s.Parties[2].SSHKeys = []string{keys["ed25519-a"]} }, "parties[2].ssh_keys[0]",
			"is already bound at parties[1].ssh_keys[0]"},
		{"fail/ssh-key-twice-other-comment", func(s *Spec) { s.Parties[1].SSHKeys = append(s.Parties[1].SSHKeys, keys["ed25519-a"]+" again") },
			"parties[1].ssh_keys[2]", "is already bound at parties[1].ssh_keys[0]"},
		{"fail/principal-two-parties", func(s *Spec) { s.Parties[3].SSHPrincipals = []string{"integ"} }, "parties[3].ssh_principals[0]",
			`principal "integ" is already bound at parties[2].ssh_principals[0]`},
		{"fail/empty-principal", func(s *Spec) { s.Parties[2].SSHPrincipals[0] = "" }, "parties[2].ssh_principals[0]", "empty principal"},
		{"fail/principal-list", func(s *Spec) { s.Parties[2].SSHPrincipals[0] = "a,b" }, "parties[2].ssh_principals[0]", "comma"},
		{"fail/tls-fingerprint-two-parties", func(s *Spec) {
			s.Parties[2].TLSClients = append(s.Parties[2].TLSClients, TLSBindingSpec{Fingerprint: "SHA256:" + colons(fpA), Role: "Viewer"})
		}, "parties[2].tls_clients[1].fingerprint", "certificate sha256:" + fpA + " is already bound at parties[1].tls_clients[0].fingerprint"},
		{"fail/tls-cn-role-two-parties", func(s *Spec) { s.Parties[2].TLSClients[0] = TLSBindingSpec{CommonName: "hmi-01", Role: "Operator"} },
			"parties[2].tls_clients[0].common_name", `common name "hmi-01" with role "Operator" is already bound at parties[1].tls_clients[1].common_name`},
		{"fail/tls-cn-two-parties", func(s *Spec) { s.Parties[1].TLSClients[1].Role = "" }, "parties[3].tls_clients[1].common_name",
			`common name "hmi-01" is already bound at parties[1].tls_clients[1].common_name`},
		{"fail/tls-both", func(s *Spec) { s.Parties[2].TLSClients[0].Fingerprint = fpB }, "parties[2].tls_clients[0]", "not both"},
		{"fail/tls-neither", func(s *Spec) { s.Parties[2].TLSClients[0] = TLSBindingSpec{Role: "Operator"} }, "parties[2].tls_clients[0]", "no fingerprint or common_name"},
		{"fail/tls-bad-fingerprint", func(s *Spec) { s.Parties[1].TLSClients[0].Fingerprint = fpA[:62] }, "parties[1].tls_clients[0].fingerprint", "64 hex digits"},
		{"fail/tls-fingerprint-not-hex", func(s *Spec) { s.Parties[1].TLSClients[0].Fingerprint = "zz" + fpA[2:] }, "parties[1].tls_clients[0].fingerprint", "bad fingerprint"},
		{"fail/owner-ssh-keys", func(s *Spec) { s.Parties[4].SSHKeys = []string{keys["ed25519-c"]} }, "parties[4].ssh_keys", `"holding" is an owner`},
		{"fail/owner-principals", func(s *Spec) { s.Parties[4].SSHPrincipals = []string{"boss"} }, "parties[4].ssh_principals", "owner"},
		{"fail/owner-tls", func(s *Spec) { s.Parties[4].TLSClients = []TLSBindingSpec{{CommonName: "boss"}} }, "parties[4].tls_clients", "owner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bindingSpec()
			tt.mutate(&s)
			p, err := Compile(s, testTargets)
			if p != nil || err == nil {
				t.Fatalf("Compile = %v, %v; want an error", p, err)
			}
			fes := fieldErrors(t, err)
			if len(fes) != 1 || fes[0].Path != tt.path || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Fatalf("errors:\n%v\nwant one, path %q, message containing %q", err, tt.path, tt.msg)
			}
		})
	}
}

func TestPartyBySSH(t *testing.T) {
	keys := testKeys()
	p := mustCompile(t, bindingSpec())
	fp := func(line string) string {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return ssh.FingerprintSHA256(k)
	}
	tests := []struct {
		name, fingerprint, principal, party string
	}{
		{"ok/ed25519-key", fp(keys["ed25519-a"]), "", "vendor"},
		{"ok/ecdsa-key", fp(keys["ecdsa-p256"]), "", "vendor"},
		{"ok/other-party-key", fp(keys["ed25519-b"]), "", "eng"},
		{"ok/principal", "", "jan.novak", "vendor"},
		{"ok/other-party-principal", "", "integ", "integ"},
		{"fail/unbound-key", fp(keys["ed25519-c"]), "", ""},
		{"fail/key-without-prefix", strings.TrimPrefix(fp(keys["ed25519-a"]), "SHA256:"), "", ""},
		{"fail/empty-key", "", "", ""},
		{"fail/unbound-principal", "", "jan", ""},
		{"fail/principal-case", "", "Jan.Novak", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *Party
			if tt.principal != "" {
				got = p.PartyBySSHPrincipal(tt.principal)
			} else {
				got = p.PartyBySSHKey(tt.fingerprint)
			}
			if id := partyID(got); id != tt.party {
				t.Fatalf("party %q; want %q", id, tt.party)
			}
		})
	}
	if got := p.PartyBySSHPrincipal(""); got != nil {
		t.Fatalf("PartyBySSHPrincipal(\"\") = %s", got.ID)
	}
	v := p.Party("vendor")
	if len(v.SSHKeys) != 2 || v.SSHKeys[0] != fp(keys["ed25519-a"]) || len(v.SSHPrincipals) != 1 || len(v.TLSClients) != 2 {
		t.Fatalf("vendor bindings: %q %q %+v", v.SSHKeys, v.SSHPrincipals, v.TLSClients)
	}
	if e := p.Party("eng"); e.TLSClients[2].Fingerprint != fpB {
		t.Fatalf("eng fingerprint not normalised: %+v", e.TLSClients[2])
	}
}

func TestPartyByTLS(t *testing.T) {
	p := mustCompile(t, bindingSpec())
	tests := []struct {
		name, fp, cn, role, party string
	}{
		{"ok/fingerprint", fpA, "anything", "", "vendor"},
		{"ok/fingerprint-any-role", fpA, "", "Engineer", "vendor"},
		{"ok/fingerprint-openssl-style", strings.ToUpper(colons(fpA)), "", "", "vendor"},
		{"ok/fingerprint-prefixed", "sha256:" + fpA, "", "", "vendor"},
		{"ok/fingerprint-wins-over-cn", fpA, "hmi-01", "Engineer", "vendor"},
		{"ok/fingerprint-with-role", fpB, "", "Engineer", "eng"},
		{"ok/cn-role-operator", "", "hmi-01", "Operator", "vendor"},
		{"ok/cn-role-engineer", "", "hmi-01", "Engineer", "eng"},
		{"ok/cn-other-role-falls-back", "", "hmi-01", "Viewer", "eng"},
		{"ok/cn-no-role-falls-back", "", "hmi-01", "", "eng"},
		{"ok/cn-without-role-binding", "", "laptop", "Operator", "integ"},
		{"ok/unbound-fingerprint-then-cn", fpB[:63] + "0", "laptop", "", "integ"},
		{"ok/fingerprint-role-mismatch-then-cn", fpB, "laptop", "Operator", "integ"},
		{"fail/fingerprint-role-mismatch", fpB, "", "Operator", ""},
		{"fail/fingerprint-no-role", fpB, "", "", ""},
		{"fail/unbound-cn", "", "hmi-02", "Operator", ""},
		{"fail/cn-case", "", "HMI-01", "Operator", ""},
		{"fail/empty", "", "", "", ""},
		{"fail/role-is-not-cn", "", "Operator", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id := partyID(p.PartyByTLS(tt.fp, tt.cn, tt.role)); id != tt.party {
				t.Fatalf("PartyByTLS(%q, %q, %q) = %q; want %q", tt.fp, tt.cn, tt.role, id, tt.party)
			}
		})
	}
}

func TestTLSFingerprint(t *testing.T) {
	// SHA-256 of the empty string.
	if got, want := TLSFingerprint(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Fatalf("TLSFingerprint(nil) = %s; want %s", got, want)
	}
}

func TestDigestBindings(t *testing.T) {
	// Empty binding lists are no bindings: the digest of earlier versions.
	s := testSpec()
	for i := range s.Parties {
		s.Parties[i].SSHKeys, s.Parties[i].SSHPrincipals, s.Parties[i].TLSClients = []string{}, []string{}, []TLSBindingSpec{}
	}
	if got, want := mustCompile(t, s).Digest(), mustCompile(t, testSpec()).Digest(); got != want {
		t.Fatalf("empty bindings change the digest: %s, want %s", got, want)
	}

	keys := testKeys()
	base := mustCompile(t, bindingSpec()).Digest()
	seen := map[string]string{base: "base", mustCompile(t, testSpec()).Digest(): "no-bindings"}
	mutations := []struct {
		name   string
		mutate func(s *Spec)
	}{
		{"ssh-key-added", func(s *Spec) { s.Parties[2].SSHKeys = []string{keys["ed25519-c"]} }},
		{"ssh-key-comment", func(s *Spec) { s.Parties[1].SSHKeys[1] += " new comment" }},
		{"ssh-key-order", func(s *Spec) { k := s.Parties[1].SSHKeys; k[0], k[1] = k[1], k[0] }},
		{"ssh-key-moved", func(s *Spec) { s.Parties[3].SSHKeys, s.Parties[2].SSHKeys = nil, s.Parties[3].SSHKeys }},
		{"principal", func(s *Spec) { s.Parties[2].SSHPrincipals[0] = "integ2" }},
		{"principal-moved-to-keys-party", func(s *Spec) {
			s.Parties[2].SSHPrincipals, s.Parties[3].SSHPrincipals = nil, s.Parties[2].SSHPrincipals
		}},
		{"tls-fingerprint", func(s *Spec) { s.Parties[1].TLSClients[0].Fingerprint = fpA[:63] + "9" }},
		{"tls-cn", func(s *Spec) { s.Parties[2].TLSClients[0].CommonName = "laptop2" }},
		{"tls-role", func(s *Spec) { s.Parties[1].TLSClients[1].Role = "Viewer" }},
		{"tls-role-dropped", func(s *Spec) { s.Parties[3].TLSClients[2].Role = "" }},
		{"tls-strings-not-run-together", func(s *Spec) { s.Parties[2].TLSClients[0] = TLSBindingSpec{CommonName: "lap", Role: "top"} }},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			s := bindingSpec()
			m.mutate(&s)
			got := mustCompile(t, s).Digest()
			if other, dup := seen[got]; dup {
				t.Fatalf("digest %s same as %s", got, other)
			}
			seen[got] = m.name
		})
	}
}

func partyID(p *Party) string {
	if p == nil {
		return ""
	}
	return p.ID
}

func opcuaUserSpec() Spec {
	s := bindingSpec()
	s.Parties[1].OPCUAUsers = []string{"jan.novak", "Operator1"}
	s.Parties[3].OPCUAUsers = []string{"eng@plant"}
	return s
}

func TestPartyByOPCUAUser(t *testing.T) {
	p := mustCompile(t, opcuaUserSpec())
	tests := []struct {
		name, user, party string
	}{
		{"ok/first", "jan.novak", "vendor"},
		{"ok/second", "Operator1", "vendor"},
		{"ok/other-party", "eng@plant", "eng"},
		{"fail/case", "operator1", ""},
		{"fail/unbound", "integ", ""},
		{"fail/empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id := partyID(p.PartyByOPCUAUser(tt.user)); id != tt.party {
				t.Fatalf("PartyByOPCUAUser(%q) = %q; want %q", tt.user, id, tt.party)
			}
		})
	}
	if v := p.Party("vendor"); len(v.OPCUAUsers) != 2 || v.OPCUAUsers[1] != "Operator1" {
		t.Fatalf("vendor OPC UA users %q", v.OPCUAUsers)
	}
	// A user name is its own kind of credential: the same text as an SSH
	// principal of another party binds nothing twice.
	s := opcuaUserSpec()
	s.Parties[2].OPCUAUsers = []string{"jan.novak2", "integ"}
	if p := mustCompile(t, s); partyID(p.PartyByOPCUAUser("integ")) != "integ" || partyID(p.PartyBySSHPrincipal("integ")) != "integ" {
		t.Fatal("user name and principal integ")
	}
}

func TestOPCUAUserErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		path   string
		msg    string
	}{
		{"fail/two-parties", func(s *Spec) { s.Parties[2].OPCUAUsers = []string{"Operator1"} }, "parties[2].opcua_users[0]",
			`OPC UA user "Operator1" is already bound at parties[1].opcua_users[1]`},
		{"fail/twice-in-party", func(s *Spec) { s.Parties[3].OPCUAUsers = append(s.Parties[3].OPCUAUsers, "eng@plant") },
			"parties[3].opcua_users[1]", "already bound at parties[3].opcua_users[0]"},
		{"fail/empty", func(s *Spec) { s.Parties[3].OPCUAUsers[0] = "" }, "parties[3].opcua_users[0]", "not a user name"},
		{"fail/space", func(s *Spec) { s.Parties[3].OPCUAUsers[0] = "eng plant" }, "parties[3].opcua_users[0]", "no white space"},
		{"fail/control", func(s *Spec) { s.Parties[3].OPCUAUsers[0] = "eng\x00" }, "parties[3].opcua_users[0]", "not a user name"},
		{"fail/long", func(s *Spec) { s.Parties[3].OPCUAUsers[0] = strings.Repeat("é", 33) }, "parties[3].opcua_users[0]", "1 to 64"},
		{"fail/owner", func(s *Spec) { s.Parties[4].OPCUAUsers = []string{"boss"} }, "parties[4].opcua_users", `"holding" is an owner`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := opcuaUserSpec()
			tt.mutate(&s)
			p, err := Compile(s, testTargets)
			if p != nil || err == nil {
				t.Fatalf("Compile = %v, %v; want an error", p, err)
			}
			fes := fieldErrors(t, err)
			if len(fes) != 1 || fes[0].Path != tt.path || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Fatalf("errors:\n%v\nwant one, path %q, message containing %q", err, tt.path, tt.msg)
			}
		})
	}
}

func TestDigestOPCUAUsers(t *testing.T) {
	// Empty lists are no bindings: specs without OPC UA users keep their
	// digests, with or without other bindings.
	for name, spec := range map[string]func() Spec{"no-bindings": testSpec, "bindings": bindingSpec} {
		s := spec()
		for i := range s.Parties {
			s.Parties[i].OPCUAUsers = []string{}
		}
		if got, want := mustCompile(t, s).Digest(), mustCompile(t, spec()).Digest(); got != want {
			t.Fatalf("%s: empty opcua_users change the digest: %s, want %s", name, got, want)
		}
	}

	base := mustCompile(t, opcuaUserSpec()).Digest()
	seen := map[string]string{base: "base", mustCompile(t, bindingSpec()).Digest(): "no-opcua-users"}
	mutations := []struct {
		name   string
		mutate func(s *Spec)
	}{
		{"added", func(s *Spec) { s.Parties[2].OPCUAUsers = []string{"integ"} }},
		{"renamed", func(s *Spec) { s.Parties[3].OPCUAUsers[0] = "eng@plant2" }},
		{"order", func(s *Spec) { u := s.Parties[1].OPCUAUsers; u[0], u[1] = u[1], u[0] }},
		{"moved", func(s *Spec) { s.Parties[3].OPCUAUsers, s.Parties[2].OPCUAUsers = nil, s.Parties[3].OPCUAUsers }},
		{"not-run-together", func(s *Spec) { s.Parties[1].OPCUAUsers = []string{"jan.novakOperator1"} }},
		{"only-opcua-users", func(s *Spec) {
			*s = testSpec()
			s.Parties[1].OPCUAUsers = []string{"jan.novak", "Operator1"}
			s.Parties[3].OPCUAUsers = []string{"eng@plant"}
		}},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			s := opcuaUserSpec()
			m.mutate(&s)
			got := mustCompile(t, s).Digest()
			if other, dup := seen[got]; dup {
				t.Fatalf("digest %s same as %s", got, other)
			}
			seen[got] = m.name
		})
	}
}
