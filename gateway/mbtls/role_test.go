package mbtls

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRole(t *testing.T) {
	p := newPKI(t)
	ext := func(v ...byte) pkix.Extension { return pkix.Extension{Id: OIDRole, Value: v} }
	tests := []struct {
		name string
		cert *x509.Certificate
		role string
		err  string // substring; "" = no error
	}{
		{name: "ok/operator", cert: p.operator.cert, role: "Operator"},
		{name: "ok/engineer", cert: p.engineer.cert, role: "Engineer"},
		{name: "ok/absent", cert: p.laptop.cert, role: ""},
		{name: "ok/utf8", cert: &x509.Certificate{Extensions: []pkix.Extension{roleExtension(t, "Správce")}}, role: "Správce"},
		{name: "ok/other-extensions", cert: &x509.Certificate{Extensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 50316, 802, 2}, Value: []byte{0x0c, 1, 'X'}}, roleExtension(t, "Viewer")}}, role: "Viewer"},
		{name: "fail/printable-string", cert: p.badRole.cert, err: "not a UTF8String (class 0, tag 19)"},
		{name: "fail/ia5-string", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x16, 2, 'O', 'p')}}, err: "not a UTF8String"},
		{name: "fail/sequence", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x30, 3, 0x0c, 1, 'A')}}, err: "not a UTF8String"},
		{name: "fail/context-tag", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x8c, 1, 'A')}}, err: "not a UTF8String (class 2, tag 12)"},
		{name: "fail/length-past-end", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x0c, 5, 'A')}}, err: "malformed Modbus role extension"},
		{name: "fail/trailing-bytes", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x0c, 1, 'A', 0)}}, err: "1 bytes after the value"},
		{name: "fail/empty-value", cert: &x509.Certificate{Extensions: []pkix.Extension{ext()}}, err: "malformed Modbus role extension"},
		{name: "fail/empty-role", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x0c, 0)}}, err: "empty role"},
		{name: "fail/invalid-utf8", cert: &x509.Certificate{Extensions: []pkix.Extension{ext(0x0c, 2, 0xff, 0xfe)}}, err: "not valid UTF-8"},
		{name: "fail/twice", cert: &x509.Certificate{Extensions: []pkix.Extension{roleExtension(t, "Operator"), roleExtension(t, "Engineer")}}, err: "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, err := Role(tt.cert)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrBadRole) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Role = %q, %v; want an ErrBadRole containing %q", role, err, tt.err)
				}
				return
			}
			if err != nil || role != tt.role {
				t.Fatalf("Role = %q, %v; want %q", role, err, tt.role)
			}
		})
	}
}

// TestRoleOpenSSL reads the role from a certificate that OpenSSL encoded.
func TestRoleOpenSSL(t *testing.T) {
	bin := needOpenSSL(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "c.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/C=CZ/CN=hmi-01", "-addext", "1.3.6.1.4.1.50316.802.1=ASN1:UTF8String:Operator",
		"-keyout", filepath.Join(dir, "c.key"), "-out", certFile, "-days", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("openssl wrote no PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if role, err := Role(cert); err != nil || role != "Operator" {
		t.Fatalf("Role = %q, %v; want Operator", role, err)
	}
}
