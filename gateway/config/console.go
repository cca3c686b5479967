package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/brana-ot/brana/gateway/adminapi"
)

// Console configures the engineer console, served by the gateway over HTTPS.
type Console struct {
	Listen      string   `yaml:"listen"`      // host:port, e.g. 127.0.0.1:8443; empty: no console
	Certificate string   `yaml:"certificate"` // PEM certificate chain and key in one file; default DATA_DIR/keys/console.pem, self-signed at first start
	Hosts       []string `yaml:"hosts"`       // names and addresses the generated certificate covers besides localhost and the listen address
	Accounts    string   `yaml:"accounts"`    // who may log in (adminapi accounts file); default admin.accounts
	Tokens      string   `yaml:"tokens"`      // API tokens (only their hashes); default DATA_DIR/console-tokens.json
}

// Enabled reports whether the console is to be served.
func (c *Console) Enabled() bool { return c.Listen != "" }

// checkConsole validates the console section and fills its defaults.
// Accounts must already be resolved against the config file.
func (c *Config) checkConsole(bad func(field, format string, a ...any)) {
	cc := &c.Console
	if !cc.Enabled() {
		return
	}
	host, port, err := net.SplitHostPort(cc.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		bad("console.listen", "%q is not host:port (for example 127.0.0.1:8443)", cc.Listen)
	} else if strings.ContainsAny(host, " \t") {
		bad("console.listen", "%q: the host has white space", cc.Listen)
	}
	for i, h := range cc.Hosts {
		if h == "" || (strings.ContainsAny(h, " \t,/:") && net.ParseIP(h) == nil) {
			bad(fmt.Sprintf("console.hosts[%d]", i), "%q is not a host name or an IP address", h)
		}
	}
	data := c.Rel(c.Gateway.DataDir)
	if cc.Certificate == "" {
		cc.Certificate = filepath.Join(data, "keys", "console.pem")
	} else {
		cc.Certificate = c.Rel(cc.Certificate)
	}
	if cc.Tokens == "" {
		cc.Tokens = filepath.Join(data, "console-tokens.json")
	} else {
		cc.Tokens = c.Rel(cc.Tokens)
	}
	switch {
	case cc.Accounts != "":
		cc.Accounts = c.Rel(cc.Accounts)
		if cc.Accounts != c.Admin.Accounts {
			if _, err := adminapi.LoadAccounts(cc.Accounts); err != nil {
				bad("console.accounts", "%s", strings.TrimPrefix(err.Error(), "accounts: "))
			}
		}
	case c.Admin.Accounts != "":
		cc.Accounts = c.Admin.Accounts
	default:
		bad("console.accounts", "missing: nobody could log in; name an accounts file here or in admin.accounts")
	}
}
