package config

import (
	_ "embed"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Starter is the starting-point config a new gateway gets: the file the
// .deb installs as /etc/brana/brana.yaml and `brana init` writes when there
// is none. It is valid as it stands (once the accounts file it names
// exists) and admits nobody.
//
//go:embed starter.yaml
var Starter []byte

// StarterUnder is the starter config with its fixed paths (/etc/brana,
// /var/lib/brana, /run/brana) moved under dir and its listeners on
// loopback ports the system picks: brana's own set-up, runnable without
// root and without touching the system, as the tests of init run it.
func StarterUnder(dir string) []byte {
	return []byte(strings.NewReplacer(
		"/var/lib/brana", filepath.Join(dir, "data"), "/etc/brana", filepath.Join(dir, "etc"), "/run/brana", filepath.Join(dir, "run"),
		"0.0.0.0:502", "127.0.0.1:0", "0.0.0.0:2222", "127.0.0.1:0", "127.0.0.1:8443", "127.0.0.1:0", "127.0.0.1:9464", "127.0.0.1:0",
	).Replace(string(Starter)))
}

// AccountFiles returns the accounts files the config in data names
// (admin.accounts, console.accounts), resolved as Parse resolves them, read
// leniently: the config need not be valid. `brana init` uses it to know the
// files it is to make before the config, which needs them, can be loaded.
func AccountFiles(name string, data []byte) []string {
	var f struct {
		Admin struct {
			Accounts string `yaml:"accounts"`
		} `yaml:"admin"`
		Console struct {
			Accounts string `yaml:"accounts"`
		} `yaml:"console"`
	}
	if yaml.Unmarshal(data, &f) != nil {
		return nil
	}
	c := &Config{File: name}
	var out []string
	for _, p := range []string{f.Admin.Accounts, f.Console.Accounts} {
		if p = c.Rel(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
