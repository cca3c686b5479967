package mbtls

import (
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name    string
		mutate  func(c *Config)
		problem string // prefix of the one problem; "" = none
	}{
		{"ok/defaults", func(c *Config) {}, ""},
		{"ok/tls-1.3", func(c *Config) { c.MinVersion = "1.3" }, ""},
		{"ok/two-client-cas", func(c *Config) { c.ClientCAs = append(c.ClientCAs, p.otherCA.certFile) }, ""},
		{"fail/no-listen", func(c *Config) { c.Listen = "" }, "listen: required (example: 0.0.0.0:802)"},
		{"fail/listen-without-port", func(c *Config) { c.Listen = "0.0.0.0" }, `listen: "0.0.0.0" is not host:port`},
		{"fail/listen-bad-port", func(c *Config) { c.Listen = "0.0.0.0:70000" }, `listen: "0.0.0.0:70000" has no valid port`},
		{"fail/no-cert", func(c *Config) { c.Cert = "" }, "cert: required"},
		{"fail/no-key", func(c *Config) { c.Key = "" }, "key: required"},
		{"fail/cert-file-missing", func(c *Config) { c.Cert = p.dir + "/nope.pem" }, "cert: " + p.dir + "/nope.pem with key"},
		{"fail/key-does-not-match", func(c *Config) { c.Key = p.operator.keyFile }, "cert: "},
		{"fail/server-cert-expired", func(c *Config) { c.Cert, c.Key = p.expiredServer.certFile, p.expiredServer.keyFile }, "cert: " + p.expiredServer.certFile + " expired at "},
		{"fail/no-client-cas", func(c *Config) { c.ClientCAs = nil }, "client_cas: required"},
		{"fail/client-ca-missing-file", func(c *Config) { c.ClientCAs = []string{p.dir + "/nope.pem"} }, "client_cas[0]: open "},
		{"fail/client-ca-not-a-certificate", func(c *Config) { c.ClientCAs = append(c.ClientCAs, p.ca.keyFile) }, "client_cas[1]: " + p.ca.keyFile + " holds no PEM certificate"},
		{"fail/no-target", func(c *Config) { c.Target = "" }, "target: required"},
		{"fail/min-version-1.1", func(c *Config) { c.MinVersion = "1.1" }, `min_version: "1.1" is not 1.2 or 1.3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Listen: "0.0.0.0:802", Cert: p.server.certFile, Key: p.server.keyFile, ClientCAs: []string{p.ca.certFile}, Target: "plc1"}
			tt.mutate(&c)
			problems := c.Check()
			if tt.problem == "" {
				if len(problems) > 0 {
					t.Fatalf("problems: %q", problems)
				}
				if c.MinVersion == "" {
					t.Fatal("min_version default not filled")
				}
				if _, err := New(c, nil, nil); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if len(problems) != 1 || !strings.HasPrefix(problems[0], tt.problem) {
				t.Fatalf("problems: %q; want one starting with %q", problems, tt.problem)
			}
			if _, err := New(c, nil, nil); err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("New: %v; want the problem", err)
			}
		})
	}
}
