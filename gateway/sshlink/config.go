package sshlink

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config is the ssh section of the gateway config. Durations are strings such
// as "90s", "15m" or "1d"; Check parses them and fills defaults.
type Config struct {
	Listen            string   `yaml:"listen"`                     // e.g. 127.0.0.1:2222; empty = disabled
	HostKey           string   `yaml:"host_key"`                   // file; generated (ed25519, 0600) at first start if missing
	TrustedUserCAs    []string `yaml:"trusted_user_cas"`           // files with CA public keys (authorized_keys format)
	MaxConnsPerParty  int      `yaml:"max_connections_per_party"`  // [4]
	MaxConnsPerSource int      `yaml:"max_connections_per_source"` // [8] open connections per source address, authenticated or not
	AuthPerMinute     int      `yaml:"auth_attempts_per_minute"`   // [10] failed logins per source address per minute; then refused until the minute passes
	IdleTimeout       string   `yaml:"idle_timeout"`               // [15m] no channel traffic for this long closes the connection
	MaxChannels       int      `yaml:"max_channels"`               // [8] open channels per connection
	HoldFor           string   `yaml:"hold_for"`                   // [2m] how long a channel without a grant waits for approval

	// Filled by Check.
	idleTimeout, holdFor time.Duration
	cas                  [][]byte // marshalled CA public keys
}

// Defaults.
const (
	defaultMaxConnsPerParty  = 4
	defaultMaxConnsPerSource = 8
	defaultAuthPerMinute     = 10
	defaultIdleTimeout       = "15m"
	defaultMaxChannels       = 8
	defaultHoldFor           = "2m"
)

// Enabled reports whether the endpoint should listen at all.
func (c *Config) Enabled() bool { return c.Listen != "" }

// Check fills defaults and returns what is wrong, one message per problem,
// each starting with the yaml key it is about ("hold_for: ..."); the caller
// prefixes the section ("ssh."). It reads the trusted CA files and an
// existing host key, so that `brana check` finds a broken one; a missing host
// key is fine (it is generated at first start).
func (c *Config) Check() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen: %q is not host:port (example: 0.0.0.0:2222)", c.Listen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("listen: %q has no valid port", c.Listen)
		}
		if c.HostKey == "" {
			bad("host_key: required when listen is set (a file; generated at first start if missing)")
		}
	}
	if c.HostKey != "" {
		if b, err := os.ReadFile(c.HostKey); err == nil {
			if _, err := ssh.ParsePrivateKey(b); err != nil {
				bad("host_key: %s: not an unencrypted OpenSSH or PEM private key: %v", c.HostKey, err)
			}
		} else if !os.IsNotExist(err) {
			bad("host_key: %v", err)
		}
	}

	c.cas = nil
	for i, f := range c.TrustedUserCAs {
		keys, err := readAuthorizedKeys(f)
		switch {
		case err != nil:
			bad("trusted_user_cas[%d]: %v", i, err)
		case len(keys) == 0:
			bad("trusted_user_cas[%d]: %s holds no public key", i, f)
		}
		for _, k := range keys {
			if _, isCert := k.(*ssh.Certificate); isCert {
				bad("trusted_user_cas[%d]: %s holds a certificate, not a CA public key", i, f)
				continue
			}
			c.cas = append(c.cas, k.Marshal())
		}
	}

	count := func(key string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad("%s: %d is negative", key, *v)
		case *v > 1<<16:
			bad("%s: %d is too large", key, *v)
		}
	}
	count("max_connections_per_party", &c.MaxConnsPerParty, defaultMaxConnsPerParty)
	count("max_connections_per_source", &c.MaxConnsPerSource, defaultMaxConnsPerSource)
	count("auth_attempts_per_minute", &c.AuthPerMinute, defaultAuthPerMinute)
	count("max_channels", &c.MaxChannels, defaultMaxChannels)

	dur := func(key string, s *string, def string, max time.Duration, dst *time.Duration) {
		if *s == "" {
			*s = def
		}
		d, err := parseDuration(*s)
		switch {
		case err != nil:
			bad("%s: %q is not a duration (examples: 90s, 15m, 1h)", key, *s)
		case d <= 0:
			bad("%s: must be more than zero", key)
		case d > max:
			bad("%s: %s is longer than %s", key, *s, max)
		default:
			*dst = d
		}
	}
	dur("idle_timeout", &c.IdleTimeout, defaultIdleTimeout, 7*24*time.Hour, &c.idleTimeout)
	dur("hold_for", &c.HoldFor, defaultHoldFor, time.Hour, &c.holdFor)
	return p
}

// parseDuration is time.ParseDuration plus whole days ("1d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// readAuthorizedKeys reads every key of an authorized_keys-format file;
// options such as cert-authority are allowed and ignored.
func readAuthorizedKeys(file string) ([]ssh.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var keys []ssh.PublicKey
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
