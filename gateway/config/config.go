// Package config owns brana's configuration file: its YAML shape, strict
// decoding (unknown keys are errors), and validation whose errors name the
// file, the line and the field, so that `brana check` can point an operator at
// the exact place to fix before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/auditexport"
	"github.com/brana-ot/brana/gateway/mbtls"
	"github.com/brana-ot/brana/gateway/sshlink"
	"github.com/brana-ot/brana/policy"
)

// Version is the only config file version this build reads.
const Version = 1

// Config is the whole configuration file.
type Config struct {
	Version   int              `yaml:"version"`
	Gateway   Gateway          `yaml:"gateway"`
	Audit     Audit            `yaml:"audit"`
	Listeners []Listener       `yaml:"listeners"`
	Targets   []Target         `yaml:"targets"`
	SSH       sshlink.Config   `yaml:"ssh"`        // the SSH endpoint for vendors (OpenSSH -L to named targets)
	ModbusTLS []mbtls.Config   `yaml:"modbus_tls"` // Modbus/TCP Security listeners (TLS, client certificates)
	Approvals approvals.Config `yaml:"approvals"`  // access requests and grants
	Admin     adminapi.Config  `yaml:"admin"`      // the local admin API (Unix socket) and its accounts
	Console   Console          `yaml:"console"`    // the engineer console (HTTPS)
	Firmware  Firmware         `yaml:"firmware"`   // signed allow-list of program and firmware images
	Metrics   Metrics          `yaml:"metrics"`    // /metrics and /healthz over plain HTTP (metrics.go)

	policy.Spec `yaml:",inline"`

	// File is the path the config was read from, for error messages.
	File string `yaml:"-"`
}

// Gateway holds settings of the gateway as a whole.
type Gateway struct {
	Name    string `yaml:"name"`     // shown in audit records and the console
	DataDir string `yaml:"data_dir"` // state and audit log; relative paths are relative to the config file
}

// Audit configures the audit log.
type Audit struct {
	Dir           string   `yaml:"dir"`            // default: DATA_DIR/audit
	Durability    string   `yaml:"durability"`     // always | batch | none
	SyncInterval  Duration `yaml:"sync_interval"`  // batch: fdatasync at least this often
	AppendTimeout Duration `yaml:"append_timeout"` // a command whose record is not accepted in time is refused

	SigningKey         string   `yaml:"signing_key"`         // ed25519 key for checkpoints, generated at first start; default DATA_DIR/keys/audit-signing.pem
	CheckpointEvery    int      `yaml:"checkpoint_every"`    // records between signed checkpoints, default 10000
	CheckpointInterval Duration `yaml:"checkpoint_interval"` // and at least this often while records arrive, default 60s
	SegmentMaxSize     Size     `yaml:"segment_max_size"`    // rotate the active segment beyond this, default 64MiB
	SegmentMaxAge      Duration `yaml:"segment_max_age"`     // or this age, default 24h
	RetainFor          Duration `yaml:"retain_for"`          // delete rotated, exported segments older than this; 0 keeps all
	MinFree            Size     `yaml:"min_free"`            // below this free space new sessions are refused, default 64MiB

	Export []auditexport.Config `yaml:"export"` // live forwarders to syslog (RFC 5424) or HTTP, each with its own cursor
}

// Size is a byte count written as 1048576, "512KiB", "64MiB" or "1GiB" (KB/MB/GB are read as powers of 1000).
type Size int64

// UnmarshalYAML parses a size and reports errors with their line.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a size (examples: 64MiB, 512KiB, 1GiB, 1048576)", n.Line, n.Value)}}
	}
	*s = Size(v)
	return nil
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 || n > (1<<62)/u.mult {
				return 0, fmt.Errorf("bad size %q", v)
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("bad size %q", v)
}

// Listener is an upstream endpoint that clients (SCADA, vendor tools) connect to.
type Listener struct {
	Name           string   `yaml:"name"`
	Protocol       string   `yaml:"protocol"` // modbus | opcua
	Address        string   `yaml:"address"`  // host:port
	MaxConnections int      `yaml:"max_connections"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	Routes         []Route  `yaml:"routes"` // modbus

	// opcua: the one target behind the listener, and brana's own endpoint
	// in front of it (opcua.go). An endpoint that offers security None
	// binds to loopback unless AcceptRisk says in so many words that OPC UA
	// crosses the network unprotected; one that offers only secure
	// policies binds anywhere.
	Target      string   `yaml:"target"`
	AcceptRisk  string   `yaml:"accept_risk"`
	Policies    []string `yaml:"policies"`    // None | Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss; absent: [None]
	Modes       []string `yaml:"modes"`       // Sign | SignAndEncrypt, for the policies other than None; default both
	Identities  []string `yaml:"identities"`  // anonymous | username | x509; default [anonymous] when only None is offered, else [username, x509]
	Users       string   `yaml:"users"`       // users file (user names, argon2id hashes) for username; relative to the config file
	Certificate string   `yaml:"certificate"` // brana's server certificate and key, one PEM file; default DATA_DIR/keys/opcua-server.pem, made at first start
	TrustDir    string   `yaml:"trust_dir"`   // trusted/ and rejected/ client certificates; default DATA_DIR/opcua-pki
}

// OPCUARisk is the only accepted value of a listener's accept_risk.
const OPCUARisk = "unencrypted OPC UA on the network"

// Route sends requests for some upstream unit ids to a target.
type Route struct {
	Units      []int  `yaml:"units"`       // upstream unit ids; empty = every unit
	Target     string `yaml:"target"`      // target name
	TargetUnit *int   `yaml:"target_unit"` // rewrite the unit id towards the target; only with exactly one upstream unit
}

// Target is a downstream device (PLC, RTU, protection relay) brana opens its own sessions to.
type Target struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Protocol    string `yaml:"protocol"`  // modbus | opcua
	Transport   string `yaml:"transport"` // modbus: tcp | rtu | ascii

	// opcua: brana is an OPC UA client of the PLC, with its own
	// application certificate and credentials the vendor never sees.
	Endpoint       string `yaml:"endpoint"`        // opc.tcp://host:port[/path]
	SecurityPolicy string `yaml:"security_policy"` // auto (the strongest offered) | None | Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss
	SecurityMode   string `yaml:"security_mode"`   // auto (SignAndEncrypt where offered) | None | Sign | SignAndEncrypt
	Username       string `yaml:"username"`        // empty: anonymous
	PasswordFile   string `yaml:"password_file"`   // the PLC password, one line; relative to the config file
	MaxSessions    int    `yaml:"max_sessions"`    // sessions brana opens to the PLC at once (one per vendor session), default 4
	MaxPublish     int    `yaml:"max_publish"`     // outstanding Publish requests per session, default 3

	// ServerCertificate pins the PLC's application certificate: a file
	// (PEM or DER; relative to the config file) or "sha256:HEX". Empty:
	// whatever certificate the PLC presents (opcua.go).
	ServerCertificate       string `yaml:"server_certificate"`
	ServerCertificateSHA256 string `yaml:"-"` // the pin: SHA-256 of the certificate's DER, lower-case hex; set by validation

	Address string `yaml:"address"` // tcp: host:port

	Device   string `yaml:"device"`    // rtu/ascii: serial device path
	Baud     int    `yaml:"baud"`      // default 19200
	DataBits int    `yaml:"data_bits"` // default 8 (rtu), 7 (ascii)
	Parity   string `yaml:"parity"`    // N | E | O, default E
	StopBits int    `yaml:"stop_bits"` // default 1

	Timeout         Duration `yaml:"timeout"`           // per request, default 1s
	Connections     int      `yaml:"connections"`       // tcp: downstream connections shared by all clients, default 1
	Pipeline        int      `yaml:"pipeline"`          // tcp: requests in flight per connection, for PLCs that allow it, default 1
	Queue           int      `yaml:"queue"`             // requests allowed to wait for a connection, default 32
	QueueTimeout    Duration `yaml:"queue_timeout"`     // longest wait for a connection, default 5s
	RetryReads      int      `yaml:"retry_reads"`       // retries of idempotent reads after a transport error, default 0
	FrameGap        Duration `yaml:"frame_gap"`         // serial: silence between frames, default 3.5 characters
	Turnaround      Duration `yaml:"turnaround"`        // serial: delay after a broadcast, default 100ms
	DeadUnitBackoff Duration `yaml:"dead_unit_backoff"` // a unit that timed out is failed fast for this long, default 5s

	Program *Program `yaml:"program"` // modbus: how the device takes a program image (firmware.go)
}

// Duration is a time.Duration written like "1.5s" or "250ms" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string and reports errors with their line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil || v < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (examples: 500ms, 2s, 5m, 30d)", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// parseDuration is time.ParseDuration plus whole days ("30d"), which
// retention periods are naturally written in.
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad duration %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Error is one problem in a config file, with its place.
type Error struct {
	File  string
	Line  int    // 0 if unknown
	Field string // dotted path such as targets[1].address
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, decodes and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

var (
	yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlType = regexp.MustCompile("^cannot unmarshal !!(\\w+) ?(`[^`]*`)? into (.*)$")
)

// foundOf and wantOf say in an operator's words what yaml.v3 reports in
// YAML tags and Go types.
func foundOf(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a section (key: value lines)"
	case "int", "float":
		return "a number"
	case "bool":
		return "true/false"
	}
	return "text"
}

func wantOf(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a section (key: value lines)"
	case strings.Contains(goType, "int"):
		return "a whole number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "text"
	}
	return "a section (key: value lines)"
}

// Parse decodes and validates config bytes; name is used in error messages.
// All problems found are returned together (errors.Join of *Error).
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(name, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "file is empty; it needs at least `version: 1`"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, yamlErrors(name, err)
	}
	c.File = name
	if errs := c.validate(); len(errs) > 0 {
		out := make([]error, 0, len(errs))
		for _, e := range errs {
			e.File = name
			if e.Line == 0 {
				e.Line = lineOf(&root, e.Field)
			}
			out = append(out, e)
		}
		return nil, errors.Join(out...)
	}
	return &c, nil
}

// yamlErrors turns yaml.v3's "line N: msg" lines into *Error values.
func yamlErrors(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]error, 0, len(te.Errors))
		for _, s := range te.Errors {
			out = append(out, lineError(name, s))
		}
		return errors.Join(out...)
	}
	return lineError(name, strings.TrimPrefix(err.Error(), "yaml: "))
}

func lineError(name, s string) *Error {
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		// yaml.v3 names Go types ("type config.Target"); an operator wants the key.
		if i := strings.Index(msg, " not found in type "); i > 0 && strings.HasPrefix(msg, "field ") {
			msg = "unknown key " + strconv.Quote(strings.TrimPrefix(msg[:i], "field "))
		}
		if m := yamlType.FindStringSubmatch(msg); m != nil {
			msg = "expected " + wantOf(m[3]) + ", found " + foundOf(m[1])
			if m[2] != "" {
				msg += " " + m[2]
			}
		}
		return &Error{File: name, Line: n, Msg: msg}
	}
	return &Error{File: name, Msg: s}
}

// lineOf finds the line of a dotted field path such as "rules[2].ranges.holding[0]"
// in the YAML tree, falling back to the deepest part of the path that exists.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range splitPath(path) {
		var next *yaml.Node
		switch {
		case part.index >= 0 && n.Kind == yaml.SequenceNode && part.index < len(n.Content):
			next = n.Content[part.index]
		case part.index < 0 && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part.key {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		}
		if next == nil {
			return line
		}
		if part.index >= 0 {
			line = next.Line
		}
		n = next
	}
	return line
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var parts []pathPart
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		key, rest, _ := strings.Cut(seg, "[")
		if key != "" {
			parts = append(parts, pathPart{key: key, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				break
			}
			i, err := strconv.Atoi(idx)
			if err != nil {
				break
			}
			parts = append(parts, pathPart{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return parts
}

// validate checks everything that strict decoding cannot and fills defaults.
func (c *Config) validate() []*Error {
	var errs []*Error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &Error{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Version != Version {
		if c.Version == 0 {
			bad("version", "missing; this build reads `version: %d`", Version)
		} else {
			bad("version", "is %d; this build reads version %d", c.Version, Version)
		}
	}
	if c.Gateway.Name == "" {
		c.Gateway.Name = "brana"
	}
	if c.Gateway.DataDir == "" {
		bad("gateway.data_dir", "missing: brana needs a directory for its state and audit log")
	}
	switch c.Audit.Durability {
	case "":
		c.Audit.Durability = "batch"
	case "always", "batch", "none":
	default:
		bad("audit.durability", "%q is not one of always, batch, none", c.Audit.Durability)
	}
	if c.Audit.SyncInterval == 0 {
		c.Audit.SyncInterval = Duration(200 * time.Millisecond)
	}
	if c.Audit.AppendTimeout == 0 {
		c.Audit.AppendTimeout = Duration(2 * time.Second)
	}
	if c.Audit.CheckpointEvery == 0 {
		c.Audit.CheckpointEvery = 10000
	}
	if c.Audit.CheckpointEvery < 0 {
		bad("audit.checkpoint_every", "%d is negative", c.Audit.CheckpointEvery)
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = Duration(time.Minute)
	}
	if c.Audit.SegmentMaxSize == 0 {
		c.Audit.SegmentMaxSize = 64 << 20
	}
	if c.Audit.SegmentMaxSize < 64<<10 {
		bad("audit.segment_max_size", "%d bytes is below the minimum of 64KiB", c.Audit.SegmentMaxSize)
	}
	if c.Audit.SegmentMaxAge == 0 {
		c.Audit.SegmentMaxAge = Duration(24 * time.Hour)
	}
	if c.Audit.MinFree == 0 {
		c.Audit.MinFree = 64 << 20
	}
	// Files named in the config are relative to the config file.
	c.Admin.Accounts = c.Rel(c.Admin.Accounts)
	for i := range c.Audit.Export {
		if t := c.Audit.Export[i].TLS; t != nil {
			t.CA, t.Cert, t.Key = c.Rel(t.CA), c.Rel(t.Cert), c.Rel(t.Key)
		}
	}
	for i := range c.Approvals.Webhooks {
		c.Approvals.Webhooks[i].SecretFile = c.Rel(c.Approvals.Webhooks[i].SecretFile)
	}
	j := &c.Spec.Jurisdiction
	j.GeoIP.CountryDB, j.GeoIP.ASNDB = c.Rel(j.GeoIP.CountryDB), c.Rel(j.GeoIP.ASNDB)
	j.Bundle.Dir, j.Bundle.PublicKey = c.Rel(j.Bundle.Dir), c.Rel(j.Bundle.PublicKey)
	if c.SSH.Enabled() && c.SSH.HostKey == "" && c.Gateway.DataDir != "" {
		c.SSH.HostKey = filepath.Join(c.Rel(c.Gateway.DataDir), "keys", "ssh_host_ed25519_key")
	} else {
		c.SSH.HostKey = c.Rel(c.SSH.HostKey) // only a path written in the config is relative to it
	}
	for i := range c.SSH.TrustedUserCAs {
		c.SSH.TrustedUserCAs[i] = c.Rel(c.SSH.TrustedUserCAs[i])
	}
	for i := range c.ModbusTLS {
		m := &c.ModbusTLS[i]
		m.Cert, m.Key = c.Rel(m.Cert), c.Rel(m.Key)
		for j := range m.ClientCAs {
			m.ClientCAs[j] = c.Rel(m.ClientCAs[j])
		}
		if m.Target != "" && !slices.Contains(c.TargetNames(), m.Target) {
			bad(fmt.Sprintf("modbus_tls[%d].target", i), "%q is not a configured target", m.Target)
		}
		for _, msg := range m.Check() {
			field, text, _ := strings.Cut(msg, ": ")
			bad(fmt.Sprintf("modbus_tls[%d].%s", i, field), "%s", text)
		}
	}
	for _, m := range c.SSH.Check() {
		field, msg, _ := strings.Cut(m, ": ")
		bad("ssh."+field, "%s", msg)
	}
	for _, m := range c.Approvals.Check() {
		field, msg, _ := strings.Cut(m, ": ")
		bad("approvals."+field, "%s", msg)
	}
	for _, m := range c.Admin.Check() {
		field, msg, _ := strings.Cut(m, ": ")
		bad("admin."+field, "%s", msg)
	}
	c.checkConsole(bad)
	c.checkFirmware(bad)
	c.checkMetrics(bad)
	for _, m := range auditexport.CheckAll(c.Audit.Export) {
		// Messages read "[i].key: what is wrong".
		field, msg, _ := strings.Cut(m, ": ")
		bad("audit.export"+field, "%s", msg)
	}

	targets := make(map[string]int)
	names := make([]string, 0, len(c.Targets))
	for i := range c.Targets {
		t := &c.Targets[i]
		f := fmt.Sprintf("targets[%d]", i)
		if !validName(t.Name) {
			bad(f+".name", "%q is not a valid target name (letters, digits, '-', '_', '.'; starts with a letter)", t.Name)
		} else if j, dup := targets[t.Name]; dup {
			bad(f+".name", "target %q is already defined at targets[%d]", t.Name, j)
		} else {
			targets[t.Name] = i
			names = append(names, t.Name)
		}
		if t.Protocol == "" {
			t.Protocol = "modbus"
		}
		switch t.Protocol {
		case "modbus":
			for _, k := range []struct{ name, v string }{{"endpoint", t.Endpoint}, {"security_policy", t.SecurityPolicy},
				{"security_mode", t.SecurityMode}, {"username", t.Username}, {"password_file", t.PasswordFile},
				{"server_certificate", t.ServerCertificate}} {
				if k.v != "" {
					bad(f+"."+k.name, "only for opcua targets")
				}
			}
			if t.Program != nil {
				c.checkProgram(t.Program, f, bad)
			}
		case "opcua":
			c.checkOPCUATarget(t, f, bad)
			if t.Program != nil {
				bad(f+".program", "only for modbus targets; OPC UA transfers are found by their FileType methods")
			}
			continue
		default:
			bad(f+".protocol", "%q is not supported (modbus, opcua)", t.Protocol)
		}
		switch t.Transport {
		case "tcp":
			if _, _, err := net.SplitHostPort(t.Address); err != nil {
				bad(f+".address", "%q is not host:port", t.Address)
			}
			if t.Device != "" {
				bad(f+".device", "only for rtu and ascii transports")
			}
		case "rtu", "ascii":
			if t.Device == "" {
				bad(f+".device", "missing: the serial device, for example /dev/ttyUSB0")
			}
			if t.Address != "" {
				bad(f+".address", "only for the tcp transport; serial targets name a device")
			}
			if t.Connections > 1 {
				bad(f+".connections", "a serial line carries one transaction at a time")
			}
			if t.Baud == 0 {
				t.Baud = 19200
			}
			if t.DataBits == 0 {
				t.DataBits = 8
				if t.Transport == "ascii" {
					t.DataBits = 7
				}
			}
			if t.Parity == "" {
				t.Parity = "E"
			}
			if t.StopBits == 0 {
				t.StopBits = 1
			}
			if t.DataBits < 7 || t.DataBits > 8 {
				bad(f+".data_bits", "%d; want 7 or 8", t.DataBits)
			}
			if t.Parity != "N" && t.Parity != "E" && t.Parity != "O" {
				bad(f+".parity", "%q; want N, E or O", t.Parity)
			}
			if t.StopBits != 1 && t.StopBits != 2 {
				bad(f+".stop_bits", "%d; want 1 or 2", t.StopBits)
			}
			if t.Baud < 300 || t.Baud > 921600 {
				bad(f+".baud", "%d is outside 300..921600", t.Baud)
			}
		case "":
			bad(f+".transport", "missing: tcp, rtu or ascii")
		default:
			bad(f+".transport", "%q is not one of tcp, rtu, ascii", t.Transport)
		}
		if t.Timeout == 0 {
			t.Timeout = Duration(time.Second)
		}
		if t.Connections == 0 {
			t.Connections = 1
		}
		if t.Connections < 0 || t.Connections > 64 {
			bad(f+".connections", "%d is outside 1..64", t.Connections)
		}
		if t.Pipeline == 0 {
			t.Pipeline = 1
		}
		if t.Pipeline < 0 || t.Pipeline > 64 {
			bad(f+".pipeline", "%d is outside 1..64", t.Pipeline)
		}
		if t.Pipeline > 1 && t.Transport != "tcp" {
			bad(f+".pipeline", "a serial line carries one transaction at a time")
		}
		if t.Queue == 0 {
			t.Queue = 32
		}
		if t.Queue < 0 || t.Queue > 4096 {
			bad(f+".queue", "%d is outside 1..4096", t.Queue)
		}
		if t.QueueTimeout == 0 {
			t.QueueTimeout = Duration(5 * time.Second)
		}
		if t.RetryReads < 0 || t.RetryReads > 5 {
			bad(f+".retry_reads", "%d is outside 0..5", t.RetryReads)
		}
		if t.Turnaround == 0 {
			t.Turnaround = Duration(100 * time.Millisecond)
		}
		if t.DeadUnitBackoff == 0 {
			t.DeadUnitBackoff = Duration(5 * time.Second)
		}
	}

	listeners := make(map[string]int)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		f := fmt.Sprintf("listeners[%d]", i)
		if !validName(l.Name) {
			bad(f+".name", "%q is not a valid listener name", l.Name)
		} else if j, dup := listeners[l.Name]; dup {
			bad(f+".name", "listener %q is already defined at listeners[%d]", l.Name, j)
		} else {
			listeners[l.Name] = i
		}
		if l.Protocol == "" {
			l.Protocol = "modbus"
		}
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			bad(f+".address", "%q is not host:port", l.Address)
		}
		switch l.Protocol {
		case "modbus":
			if l.Target != "" || l.AcceptRisk != "" {
				bad(f+".target", "only for opcua listeners; a Modbus listener has routes")
			}
			for _, k := range []struct {
				name string
				set  bool
			}{{"policies", l.Policies != nil}, {"modes", l.Modes != nil}, {"identities", l.Identities != nil},
				{"users", l.Users != ""}, {"certificate", l.Certificate != ""}, {"trust_dir", l.TrustDir != ""}} {
				if k.set {
					bad(f+"."+k.name, "only for opcua listeners")
				}
			}
		case "opcua":
			c.checkOPCUAListener(l, f, targets, bad)
			continue
		default:
			bad(f+".protocol", "%q is not supported (modbus, opcua)", l.Protocol)
		}
		if l.MaxConnections == 0 {
			l.MaxConnections = 64
		}
		if l.MaxConnections < 0 || l.MaxConnections > 10000 {
			bad(f+".max_connections", "%d is outside 1..10000", l.MaxConnections)
		}
		if l.IdleTimeout == 0 {
			l.IdleTimeout = Duration(10 * time.Minute)
		}
		if len(l.Routes) == 0 {
			bad(f+".routes", "missing: a listener needs at least one route to a target")
		}
		seen := make(map[int]int)
		for j, r := range l.Routes {
			rf := fmt.Sprintf("%s.routes[%d]", f, j)
			if ti, ok := targets[r.Target]; !ok {
				bad(rf+".target", "%q is not a configured target", r.Target)
			} else if c.Targets[ti].Protocol != "modbus" {
				bad(rf+".target", "%q is an %s target; a Modbus listener routes to Modbus targets", r.Target, c.Targets[ti].Protocol)
			}
			units := r.Units
			if len(units) == 0 {
				units = []int{-1}
			}
			for k, u := range units {
				if u != -1 && (u < 0 || u > 255) {
					bad(fmt.Sprintf("%s.units[%d]", rf, k), "%d is outside 0..255", u)
				}
				if prev, dup := seen[u]; dup {
					name := fmt.Sprint(u)
					if u == -1 {
						name = "every unit"
					}
					bad(rf+".units", "unit %s is already routed by routes[%d]", name, prev)
				}
				seen[u] = j
			}
			if r.TargetUnit != nil {
				if len(r.Units) != 1 {
					bad(rf+".target_unit", "rewriting the unit id needs exactly one upstream unit in units")
				}
				if *r.TargetUnit < 0 || *r.TargetUnit > 255 {
					bad(rf+".target_unit", "%d is outside 0..255", *r.TargetUnit)
				}
			}
		}
	}
	if len(c.Listeners) == 0 && !c.SSH.Enabled() && len(c.ModbusTLS) == 0 {
		bad("listeners", "missing: brana needs at least one listener (listeners, ssh or modbus_tls)")
	}

	if _, err := policy.Compile(c.Spec, names); err != nil {
		for _, e := range unjoin(err) {
			var fe *policy.FieldError
			if errors.As(e, &fe) {
				bad(fe.Path, "%s", fe.Msg)
			} else {
				bad("", "%v", e)
			}
		}
	}
	return errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,62}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// Rel resolves a path named in the config against the config file's folder;
// absolute and empty paths are returned as they are.
func (c *Config) Rel(path string) string {
	if path == "" || filepath.IsAbs(path) || c.File == "" {
		return path
	}
	return filepath.Join(filepath.Dir(c.File), path)
}

// TargetNames lists the configured target names in file order.
func (c *Config) TargetNames() []string {
	out := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		out[i] = t.Name
	}
	return out
}
