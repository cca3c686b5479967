// Package auditexport ships brana's audit records off the gateway: to a
// syslog receiver (RFC 5424 messages framed by octet counting, RFC 6587, over
// TCP or TLS) or to an HTTP endpoint (batches of JSON Lines), and to a writer
// as JSON Lines.
//
// Every message carries the record's stored line unchanged, so the hash chain
// can be re-verified wherever the records land. A Forwarder follows the log
// live, across rotated and compressed segments, and persists per exporter the
// seq of the last record delivered (DIR/export-NAME.cursor, written with temp
// file, fsync and rename after each batch); a restart resumes after it, so
// each record is sent once per cursor position.
//
// What "delivered" means depends on the transport. HTTP has an answer: a
// batch counts once the endpoint answered 2xx. Syslog over TCP has no
// application acknowledgement: a batch counts once its writes (and, for TLS,
// the flush) succeeded, which a receiver that dies at that moment can still
// lose. A crash between a send and the cursor write repeats at most that one
// batch; the seq in the structured data ([brana@32473 seq="N" ...]) and in the
// line itself lets a SIEM drop repeats.
package auditexport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
)

// Config is one exporter, as in the config file.
type Config struct {
	Name      string     `yaml:"name"`       // names the cursor file: DIR/export-NAME.cursor
	Type      string     `yaml:"type"`       // syslog | http
	Address   string     `yaml:"address"`    // syslog: host:port
	TLS       *TLSConfig `yaml:"tls"`        // syslog: use TLS; http: client certificate and CA for https
	URL       string     `yaml:"url"`        // http: http(s) endpoint that takes application/x-ndjson
	AppName   string     `yaml:"app_name"`   // syslog APP-NAME [brana]
	Hostname  string     `yaml:"hostname"`   // syslog HOSTNAME [os.Hostname()]
	Facility  string     `yaml:"facility"`   // syslog facility [local0]
	BatchSize int        `yaml:"batch_size"` // records per batch and cursor write [256]
}

// TLSConfig names PEM files. Without CA the system roots are used; Cert and
// Key (both or neither) are the client certificate.
type TLSConfig struct {
	CA         string `yaml:"ca"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"server_name"` // [the host of address or url]
}

// DefaultBatchSize is the batch size when none is configured.
const DefaultBatchSize = 256

const maxBatchSize = 10000

var (
	validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// RFC 5424 facilities by name.
	facilities = map[string]int{
		"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
		"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "clock": 15,
		"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
	}
)

// Check fills defaults and returns what is wrong, one message per problem,
// each starting with the yaml key it is about. It reads the TLS files, so
// that `brana check` finds a missing certificate before the gateway starts.
func (c *Config) Check() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.Name == "" {
		bad("name: missing (it names the cursor file export-NAME.cursor)")
	} else if !validName.MatchString(c.Name) {
		bad("name: %q is not a valid exporter name (up to 64 letters, digits, '-', '_' and '.', starting with a letter or digit)", c.Name)
	}
	switch c.Type {
	case "syslog":
		if c.Address == "" {
			bad("address: missing (host:port of the syslog receiver)")
		} else if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || !validPort(port) {
			bad("address: %q is not host:port", c.Address)
		}
		if c.URL != "" {
			bad("url: only for type http (syslog uses address)")
		}
		if c.AppName == "" {
			c.AppName = "brana"
		} else if !printASCII(c.AppName, 48) {
			bad("app_name: %q must be 1 to 48 printable ASCII characters without spaces (RFC 5424)", c.AppName)
		}
		if c.Hostname == "" {
			h, _ := os.Hostname()
			if !printASCII(h, 255) {
				h = "-"
			}
			c.Hostname = h
		} else if !printASCII(c.Hostname, 255) {
			bad("hostname: %q must be 1 to 255 printable ASCII characters without spaces (RFC 5424)", c.Hostname)
		}
		if c.Facility == "" {
			c.Facility = "local0"
		} else if _, ok := facilities[c.Facility]; !ok {
			bad("facility: %q is not a syslog facility (kern, user, daemon, auth, authpriv, local0 ... local7, ...)", c.Facility)
		}
	case "http":
		if c.URL == "" {
			bad("url: missing (http or https endpoint)")
		} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url: %q is not an http:// or https:// URL", c.URL)
		} else {
			if u.User != nil {
				bad("url: must not carry credentials (use a client certificate under tls)")
			}
			if c.TLS != nil && u.Scheme != "https" {
				bad("tls: set, but url %q is not https://", c.URL)
			}
		}
		if c.Address != "" {
			bad("address: only for type syslog (http uses url)")
		}
	case "":
		bad("type: missing (syslog or http)")
	default:
		bad("type: %q is not syslog or http", c.Type)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	} else if c.BatchSize < 0 || c.BatchSize > maxBatchSize {
		bad("batch_size: %d is not between 1 and %d", c.BatchSize, maxBatchSize)
	}
	if c.TLS != nil {
		if _, err := c.tlsConfig(); err != nil {
			bad("%v", err)
		}
	}
	return p
}

// CheckAll checks a list of exporters; names must be unique because each
// names its cursor file. Messages start with "[i]." and the yaml key.
func CheckAll(cfgs []Config) []string {
	var p []string
	seen := make(map[string]int)
	for i := range cfgs {
		for _, m := range cfgs[i].Check() {
			p = append(p, fmt.Sprintf("[%d].%s", i, m))
		}
		if j, dup := seen[cfgs[i].Name]; dup && cfgs[i].Name != "" {
			p = append(p, fmt.Sprintf("[%d].name: %q is already the name of exporter [%d]", i, cfgs[i].Name, j))
		} else {
			seen[cfgs[i].Name] = i
		}
	}
	return p
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// printASCII reports whether s is 1..max characters of RFC 5424 PRINTUSASCII (33..126).
func printASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// tlsConfig builds the client TLS configuration: TLS 1.2 or later, the CA
// file (or system roots) and an optional client certificate.
func (c *Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if conf.ServerName == "" {
		host := ""
		if c.Type == "syslog" {
			host, _, _ = net.SplitHostPort(c.Address)
		} else if u, err := url.Parse(c.URL); err == nil {
			host = u.Hostname()
		}
		conf.ServerName = host
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: %s holds no PEM certificate", t.CA)
		}
		conf.RootCAs = pool
	}
	switch {
	case t.Cert != "" && t.Key != "":
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	case t.Cert != "":
		return nil, fmt.Errorf("tls.key: missing (tls.cert is set)")
	case t.Key != "":
		return nil, fmt.Errorf("tls.cert: missing (tls.key is set)")
	}
	return conf, nil
}
