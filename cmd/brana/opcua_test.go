package main

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
)

// clientCert makes an OPC UA client certificate as an engineering tool
// would, and returns its PEM file and DER.
func clientCert(t *testing.T, name string) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".pem")
	id, _, err := opcuatrust.LoadOrCreateIdentity(p, "urn:eng-laptop:"+name, []string{"eng-laptop"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, id.Cert
}

func opcuaStore(t *testing.T, file string) *opcuatrust.Store {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listeners[1].Name != "opc-lab" || cfg.Listeners[1].TrustDir != filepath.Join(filepath.Dir(file), "data", "opcua-pki") {
		t.Fatalf("listener %s trust_dir %q", cfg.Listeners[1].Name, cfg.Listeners[1].TrustDir)
	}
	s, err := opcuatrust.Open(cfg.Listeners[1].TrustDir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOPCUATrust(t *testing.T) {
	file := demoConfig(t)
	store := opcuaStore(t, file)
	if code, out, errOut := brana(t, "opcua", "trust", "-c", file); code != exitOK || !strings.Contains(out, "no certificates in "+store.Dir()) {
		t.Fatalf("trust (empty) = %d %q %q", code, out, errOut)
	}

	_, uaexpert := clientCert(t, "UaExpert")
	tp := opcuatrust.Thumbprint(uaexpert)
	if err := store.Check(uaexpert, time.Now()); !errors.Is(err, opcuatrust.ErrNotTrusted) {
		t.Fatalf("Check = %v", err)
	}
	code, out, errOut := brana(t, "opcua", "trust", "list", "rejected", "-config", file)
	if code != exitOK || !regexp.MustCompile(`\nrejected +`+tp).MatchString(out) || !strings.Contains(out, "urn:eng-laptop:UaExpert") {
		t.Fatalf("trust list rejected = %d %q %q", code, out, errOut)
	}
	if code, out, _ := brana(t, "opcua", "trust", "list", "trusted", "-c", file); code != exitOK || strings.Contains(out, tp) {
		t.Fatalf("trust list trusted = %d %q", code, out)
	}

	code, out, errOut = brana(t, "opcua", "trust", "-c", file, strings.ToUpper(tp[:10]))
	if code != exitOK || !strings.Contains(out, "trusted "+tp) || !strings.Contains(out, filepath.Join(store.Dir(), "trusted", tp+".der")) {
		t.Fatalf("trust PREFIX = %d %q %q", code, out, errOut)
	}
	if err := store.Check(uaexpert, time.Now()); err != nil {
		t.Fatalf("Check after trust: %v", err)
	}
	if code, out, _ := brana(t, "opcua", "trust", "-c", file); code != exitOK || !regexp.MustCompile(`\ntrusted +`+tp).MatchString(out) {
		t.Fatalf("trust (list both) = %d %q", code, out)
	}

	code, out, errOut = brana(t, "opcua", "reject", tp[:8], "-c", file)
	if code != exitOK || !strings.Contains(out, "rejected "+tp) {
		t.Fatalf("reject = %d %q %q", code, out, errOut)
	}
	if err := store.Check(uaexpert, time.Now()); !errors.Is(err, opcuatrust.ErrNotTrusted) {
		t.Fatalf("Check after reject = %v", err)
	}

	// From files: PEM (the identity file holds the key too; only the
	// certificate is taken) and DER.
	pemFile, prosys := clientCert(t, "Prosys")
	code, out, errOut = brana(t, "opcua", "trust", "-c", file, pemFile)
	if code != exitOK || !strings.Contains(out, "trusted "+opcuatrust.Thumbprint(prosys)) {
		t.Fatalf("trust FILE.pem = %d %q %q", code, out, errOut)
	}
	derFile := filepath.Join(t.TempDir(), "uaexpert.der")
	os.WriteFile(derFile, uaexpert, 0o600)
	if code, out, errOut := brana(t, "opcua", "trust", "-c", file, derFile); code != exitOK || !strings.Contains(out, "trusted "+tp) {
		t.Fatalf("trust FILE.der = %d %q %q", code, out, errOut)
	}
	for _, der := range [][]byte{uaexpert, prosys} {
		if err := store.Check(der, time.Now()); err != nil {
			t.Fatalf("Check after trust FILE: %v", err)
		}
	}
	if list, _ := store.List(opcuatrust.Rejected); len(list) != 0 {
		t.Fatalf("rejected/ still holds %+v", list)
	}

	keyOnly := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(keyOnly, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail/short-prefix", []string{"trust", "1234abcd"[:7]}, exitFailed, "at least 8 hex digits"},
		{"fail/unknown-prefix", []string{"reject", "00000000000000"}, exitFailed, "no certificate 00000000000000"},
		{"fail/trusted-already", []string{"trust", tp[:8]}, exitFailed, "trusted already"},
		{"fail/missing-file", []string{"trust", filepath.Join(t.TempDir(), "nope.der")}, exitFailed, "nope.der"},
		{"fail/not-a-certificate", []string{"trust", keyOnly}, exitFailed, "RSA PRIVATE KEY"},
		{"fail/list-what", []string{"trust", "list", "everything"}, exitUsage, "usage:"},
		{"fail/reject-nothing", []string{"reject"}, exitUsage, "usage:"},
		{"fail/unknown-listener", []string{"trust", "-listener", "nope"}, exitFailed, `no opcua listener "nope"`},
		{"fail/bad-config", []string{"trust", "-c", filepath.Join(t.TempDir(), "missing.yaml")}, exitFailed, "missing.yaml"},
		{"fail/unknown-command", []string{"pin"}, exitUsage, `unknown command "pin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"opcua"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "-c ") {
				args = append(args, "-c", file)
			}
			if tt.args[0] == "pin" {
				args = args[:2]
			}
			code, _, errOut := brana(t, args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("%q = %d %q; want %d and %q", args, code, errOut, tt.code, tt.want)
			}
		})
	}
}

// Listeners with trust folders of their own are told apart with -listener.
func TestOPCUATrustListener(t *testing.T) {
	file := demoConfig(t)
	text, _ := os.ReadFile(file)
	second := "  - name: opc-secure\n    protocol: opcua\n    address: 0.0.0.0:4843\n    target: line-opc\n" +
		"    policies: [Basic256Sha256]\n    identities: [x509]\n    trust_dir: pki-secure\n    certificate: secure.pem\n\ntargets:\n"
	os.WriteFile(file, []byte(strings.Replace(string(text), "\ntargets:\n", second, 1)), 0o600)
	if code, _, errOut := brana(t, "opcua", "trust", "-c", file); code != exitFailed || !strings.Contains(errOut, "name one with -listener") {
		t.Fatalf("trust with two folders = %d %q", code, errOut)
	}
	code, out, errOut := brana(t, "opcua", "trust", "-c", file, "-listener", "opc-secure")
	if code != exitOK || !strings.Contains(out, filepath.Join(filepath.Dir(file), "pki-secure")) {
		t.Fatalf("trust -listener = %d %q %q", code, out, errOut)
	}
	code, out, errOut = brana(t, "opcua", "certificate", "-c", file)
	if code != exitOK || strings.Count(out, "(made now)") != 2 || !strings.Contains(out, filepath.Join(filepath.Dir(file), "secure.pem")) ||
		!regexp.MustCompile(`listeners +opc-secure\n`).MatchString(out) {
		t.Fatalf("certificate with two files = %d %q %q", code, out, errOut)
	}
}

func TestOPCUACertificate(t *testing.T) {
	file := demoConfig(t)
	path := filepath.Join(filepath.Dir(file), "data", "keys", "opcua-server.pem")
	code, out, errOut := brana(t, "opcua", "certificate", "-c", file)
	if code != exitOK {
		t.Fatalf("certificate = %d %q %q", code, out, errOut)
	}
	id, err := opcuatrust.LoadIdentity(path)
	if err != nil {
		t.Fatalf("the certificate was not made: %v", err)
	}
	host, _ := os.Hostname()
	for _, w := range []string{regexp.QuoteMeta(path) + ` \(made now\)`, `listeners +opc-lab\n`, opcuatrust.Thumbprint(id.Cert) + ` \(SHA-1\)`,
		`application uri +urn:brana:` + regexp.QuoteMeta(host) + `:server`, `names +.*localhost, 127\.0\.0\.1\n`, `subject +CN=brana gateway`} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("output %q does not match %q", out, w)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	code, again, _ := brana(t, "opcua", "certificate", "-c", file)
	if code != exitOK || strings.Contains(again, "made now") || !strings.Contains(again, opcuatrust.Thumbprint(id.Cert)) {
		t.Fatalf("second run = %d %q", code, again)
	}
	if code, _, _ := brana(t, "opcua", "certificate", "extra", "-c", file); code != exitUsage {
		t.Fatalf("certificate extra = %d", code)
	}
}

func TestOPCUAUserHash(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(f, []byte("correct horse battery\n"), 0o600)
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := stdin
	stdin = in
	defer func() { stdin = old }()
	code, out, errOut := brana(t, "opcua", "user-hash")
	if code != exitOK || !strings.HasPrefix(out, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("user-hash = %d %q %q", code, out, errOut)
	}
	users := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(users, []byte("users:\n  - user: jan\n    hash: \""+strings.TrimSpace(out)+"\"\n"), 0o600)
	u, err := opcuatrust.LoadUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("jan", "correct horse battery") || u.Check("jan", "correct horse") {
		t.Fatal("the printed hash does not verify")
	}

	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	in2, _ := os.Open(empty)
	defer in2.Close()
	stdin = in2
	if code, _, errOut := brana(t, "opcua", "user-hash"); code != exitFailed || !strings.Contains(errOut, "empty password") {
		t.Fatalf("user-hash of an empty line = %d %q", code, errOut)
	}
	if code, _, _ := brana(t, "opcua", "user-hash", "x"); code != exitUsage {
		t.Fatalf("user-hash x = %d", code)
	}
}
