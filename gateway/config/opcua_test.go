package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/brana-ot/brana/gateway/passhash"
)

const goodOPCUA = `version: 1
gateway:
  name: test
  data_dir: data
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:4841
    target: line-opc
targets:
  - name: line-opc
    protocol: opcua
    endpoint: opc.tcp://10.0.0.7:4840
    username: brana
    password_file: plc.pw
  - name: plc
    transport: tcp
    address: 127.0.0.1:15020
parties:
  - id: scada
    name: SCADA
    organisation: Utility
    kind: scada
    networks: [127.0.0.1/32]
`

func TestOPCUAConfig(t *testing.T) {
	c, err := Parse("brana.yaml", []byte(goodOPCUA))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tg := c.Targets[0]
	if tg.SecurityPolicy != "auto" || tg.SecurityMode != "auto" || tg.MaxSessions != 4 || tg.MaxPublish != 3 || tg.Timeout.D().Seconds() != 10 {
		t.Errorf("opcua target defaults: %+v", tg)
	}
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{"fail/listener-off-loopback", "    address: 127.0.0.1:4841\n", "    address: 0.0.0.0:4841\n",
			[]string{"listeners[0].address", "not a loopback address", "accept_risk"}},
		{"ok/listener-off-loopback-risk-named", "    address: 127.0.0.1:4841\n",
			"    address: 0.0.0.0:4841\n    accept_risk: unencrypted OPC UA on the network\n", nil},
		{"fail/risk-misspelt", "    target: line-opc\n", "    target: line-opc\n    accept_risk: yes\n",
			[]string{"listeners[0].accept_risk", "the only accepted value"}},
		{"fail/listener-to-modbus-target", "    target: line-opc\n", "    target: plc\n",
			[]string{"listeners[0].target", `"plc" is a modbus target`}},
		{"fail/listener-routes", "    target: line-opc\n", "    target: line-opc\n    routes: [{target: line-opc}]\n",
			[]string{"listeners[0].routes", "names one target"}},
		{"fail/endpoint-scheme", "    endpoint: opc.tcp://10.0.0.7:4840\n", "    endpoint: http://10.0.0.7:4840\n",
			[]string{"targets[0].endpoint", "not an opc.tcp://host:port URL"}},
		{"fail/endpoint-missing", "    endpoint: opc.tcp://10.0.0.7:4840\n", "",
			[]string{"targets[0].endpoint", "missing"}},
		{"fail/policy", "    username: brana\n", "    username: brana\n    security_policy: Basic128Rsa15\n",
			[]string{"targets[0].security_policy", `"Basic128Rsa15"`}},
		{"fail/none-with-sign", "    username: brana\n", "    username: brana\n    security_policy: None\n    security_mode: Sign\n",
			[]string{"targets[0].security_mode", "do not go together"}},
		{"fail/user-without-password", "    password_file: plc.pw\n", "",
			[]string{"targets[0].password_file", "go together"}},
		{"fail/modbus-field-on-opcua", "    password_file: plc.pw\n", "    password_file: plc.pw\n    transport: tcp\n",
			[]string{"targets[0].transport", "only for modbus targets"}},
		{"fail/opcua-field-on-modbus", "    address: 127.0.0.1:15020\n", "    address: 127.0.0.1:15020\n    endpoint: opc.tcp://x:4840\n",
			[]string{"targets[1].endpoint", "only for opcua targets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodOPCUA, tt.from) {
				t.Fatalf("test bug: %q not in config", tt.from)
			}
			_, err := Parse("brana.yaml", []byte(strings.Replace(goodOPCUA, tt.from, tt.to, 1)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// secureOPCUA is goodOPCUA with its listener block replaced by listener.
func secureOPCUA(listener string) string {
	return strings.Replace(goodOPCUA, "    address: 127.0.0.1:4841\n    target: line-opc\n", listener, 1)
}

func TestOPCUAListenerDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse(filepath.Join(dir, "brana.yaml"), []byte(goodOPCUA))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if !slices.Equal(l.Policies, []string{"None"}) || l.Modes != nil || !slices.Equal(l.Identities, []string{"anonymous"}) || !l.OffersNone() {
		t.Errorf("None listener: policies %q, modes %q, identities %q", l.Policies, l.Modes, l.Identities)
	}
	if l.Certificate != filepath.Join(dir, "data", "keys", "opcua-server.pem") || l.Certificate != c.DefaultOPCUACertificate() ||
		l.TrustDir != filepath.Join(dir, "data", "opcua-pki") || l.TrustDir != c.DefaultOPCUATrustDir() {
		t.Errorf("certificate %q, trust_dir %q", l.Certificate, l.TrustDir)
	}

	users := filepath.Join(dir, "conf", "opcua-users.yaml")
	os.MkdirAll(filepath.Dir(users), 0o700)
	os.WriteFile(users, []byte("users: []\n"), 0o600)
	c, err = Parse(filepath.Join(dir, "brana.yaml"), []byte(secureOPCUA("    address: 0.0.0.0:4843\n    target: line-opc\n"+
		"    policies: [Basic256Sha256]\n    users: conf/opcua-users.yaml\n    certificate: /etc/brana/opc.pem\n    trust_dir: pki\n")))
	if err != nil {
		t.Fatal(err)
	}
	l = c.Listeners[0]
	if !slices.Equal(l.Modes, []string{"Sign", "SignAndEncrypt"}) || !slices.Equal(l.Identities, []string{"username", "x509"}) || l.OffersNone() {
		t.Errorf("secure listener: modes %q, identities %q", l.Modes, l.Identities)
	}
	if l.Users != users || l.Certificate != "/etc/brana/opc.pem" || l.TrustDir != filepath.Join(dir, "pki") {
		t.Errorf("users %q, certificate %q, trust_dir %q", l.Users, l.Certificate, l.TrustDir)
	}
}

func TestOPCUAListenerSecurity(t *testing.T) {
	dir := t.TempDir()
	hash, err := passhash.NewWithCost("pw", 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodUsers := write("users.yaml", "users:\n  - {user: jan, hash: \""+hash+"\"}\n")
	badUsers := write("bad-users.yaml", "users:\n  - {user: jan, hash: \""+hash+"\"}\n  - {user: jan, hash: \""+hash+"\"}\n")
	badCert := write("bad.pem", "not a certificate\n")
	secure := "    address: 0.0.0.0:4843\n    target: line-opc\n    policies: [Basic256Sha256, Aes256_Sha256_RsaPss]\n"
	tests := []struct {
		name     string
		listener string
		want     []string
	}{
		{"ok/secure-anywhere-x509", secure + "    identities: [x509]\n", nil},
		{"ok/secure-anywhere-username", secure + "    users: " + goodUsers + "\n", nil},
		{"ok/sign-only", secure + "    modes: [Sign]\n    identities: [x509]\n", nil},
		{"ok/none-and-secure-loopback", "    address: 127.0.0.1:4843\n    target: line-opc\n    policies: [None, Basic256Sha256]\n    identities: [anonymous, x509]\n", nil},
		{"ok/none-and-secure-risk-named", "    address: 0.0.0.0:4843\n    target: line-opc\n    policies: [None, Basic256Sha256]\n" +
			"    identities: [x509]\n    accept_risk: unencrypted OPC UA on the network\n", nil},
		{"ok/none-with-username", "    address: 127.0.0.1:4843\n    target: line-opc\n    identities: [username]\n    users: " + goodUsers + "\n", nil},
		{"fail/none-and-secure-anywhere", "    address: 0.0.0.0:4843\n    target: line-opc\n    policies: [Basic256Sha256, None]\n    identities: [x509]\n",
			[]string{"listeners[0].address", "not a loopback address", "offers security None", "accept_risk"}},
		{"fail/risk-without-none", secure + "    identities: [x509]\n    accept_risk: unencrypted OPC UA on the network\n",
			[]string{"listeners[0].accept_risk", "only for a listener that offers security None"}},
		{"fail/policy-unknown", "    address: 127.0.0.1:4843\n    target: line-opc\n    policies: [Basic256]\n    identities: [x509]\n",
			[]string{"listeners[0].policies[0]", `"Basic256" is not one of None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss`}},
		{"fail/policy-auto", "    address: 127.0.0.1:4843\n    target: line-opc\n    policies: [auto]\n", []string{"listeners[0].policies[0]", `"auto"`}},
		{"fail/policy-twice", secure + "    identities: [x509]\n    policies: [Basic256Sha256, Basic256Sha256]\n",
			[]string{"brana.yaml:12", `"policies" already defined`}},
		{"fail/policy-listed-twice", "    address: 0.0.0.0:4843\n    target: line-opc\n    policies: [Basic256Sha256, Basic256Sha256]\n    identities: [x509]\n",
			[]string{"listeners[0].policies[1]", "listed twice"}},
		{"fail/modes-with-none-only", "    address: 127.0.0.1:4843\n    target: line-opc\n    modes: [Sign]\n",
			[]string{"listeners[0].modes", "offers None only"}},
		{"fail/mode-none", secure + "    identities: [x509]\n    modes: [None]\n", []string{"listeners[0].modes", "list it in policies"}},
		{"fail/mode-unknown", secure + "    identities: [x509]\n    modes: [Encrypt]\n", []string{"listeners[0].modes[0]", `"Encrypt" is not one of Sign, SignAndEncrypt`}},
		{"fail/identity-unknown", secure + "    identities: [certificate]\n", []string{"listeners[0].identities[0]", `"certificate" is not one of anonymous, username, x509`}},
		{"fail/identity-twice", secure + "    identities: [x509, x509]\n", []string{"listeners[0].identities[1]", "listed twice"}},
		{"fail/username-without-users", secure, []string{"listeners[0].users", "missing", "brana opcua user-hash"}},
		{"fail/users-without-username", secure + "    identities: [x509]\n    users: " + goodUsers + "\n",
			[]string{"listeners[0].users", "only with the username identity"}},
		{"fail/users-file-bad", secure + "    users: " + badUsers + "\n", []string{"listeners[0].users", badUsers + ":3: users[1].user", "listed twice"}},
		{"fail/users-file-missing", secure + "    users: nowhere.yaml\n", []string{"listeners[0].users", "nowhere.yaml"}},
		{"fail/certificate-broken", secure + "    identities: [x509]\n    certificate: " + badCert + "\n",
			[]string{"listeners[0].certificate", badCert, "want a CERTIFICATE"}},
		{"ok/certificate-missing-is-made-later", secure + "    identities: [x509]\n    certificate: " + filepath.Join(dir, "new.pem") + "\n", nil},
		{"fail/unknown-key", secure + "    identities: [x509]\n    policy: None\n", []string{"brana.yaml:12", `unknown key "policy"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "brana.yaml"), []byte(secureOPCUA(tt.listener)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOPCUAFieldsOnModbusListener(t *testing.T) {
	cfg := strings.Replace(good, "    address: 127.0.0.1:5020\n", "    address: 127.0.0.1:5020\n    policies: [Basic256Sha256]\n    trust_dir: pki\n", 1)
	_, err := Parse("brana.yaml", []byte(cfg))
	for _, w := range []string{"listeners[0].policies: only for opcua listeners", "listeners[0].trust_dir: only for opcua listeners"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestOPCUAUsersBinding(t *testing.T) {
	cfg := goodOPCUA + "    opcua_users: [jan]\n  - id: vendor\n    name: Vendor\n    organisation: V\n    kind: vendor\n    opcua_users: [jan]\n"
	_, err := Parse("brana.yaml", []byte(cfg))
	if err == nil || !strings.Contains(err.Error(), `parties[1].opcua_users[0]: OPC UA user "jan" is already bound at parties[0].opcua_users[0]`) {
		t.Fatalf("Parse = %v", err)
	}
	if _, err := Parse("brana.yaml", []byte(goodOPCUA+"    opcua_users: [jan, Operator1]\n")); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

// With a relative config path (brana -c brana-demo/brana.yaml), the default
// key and trust folder are under the data directory once, not twice.
func TestDefaultPathsWithRelativeConfig(t *testing.T) {
	c, err := Parse("brana-demo/brana.yaml", []byte(strings.Replace(goodOPCUA, "    target: line-opc\n",
		"    target: line-opc\n    policies: [Basic256Sha256]\n    identities: [x509]\n", 1)+"ssh:\n  listen: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"certificate": c.Listeners[0].Certificate, "trust_dir": c.Listeners[0].TrustDir, "ssh host key": c.SSH.HostKey,
	} {
		if !strings.HasPrefix(got, "brana-demo/data/") {
			t.Errorf("%s = %q, want it under brana-demo/data/", name, got)
		}
	}
}
