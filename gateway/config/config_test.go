package config

import (
	"go.yaml.in/yaml/v3"
	"time"

	"errors"
	"strings"
	"testing"
)

const good = `version: 1
gateway:
  name: test
  data_dir: data
listeners:
  - name: scada
    address: 127.0.0.1:5020
    routes:
      - units: [1]
        target: plc
      - units: [2]
        target: rtu-bus
        target_unit: 7
targets:
  - name: plc
    transport: tcp
    address: 127.0.0.1:15020
  - name: rtu-bus
    transport: rtu
    device: /dev/ttyUSB0
    timeout: 300ms
parties:
  - id: scada
    name: SCADA
    organisation: Utility
    kind: scada
    networks: [127.0.0.1/32]
rules:
  - name: read
    parties: [scada]
    targets: ["*"]
    classes: [read]
`

func TestParseGood(t *testing.T) {
	c, err := Parse("brana.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Audit.Durability != "batch" {
		t.Errorf("default durability = %q, want batch", c.Audit.Durability)
	}
	rtu := c.Targets[1]
	if rtu.Baud != 19200 || rtu.Parity != "E" || rtu.DataBits != 8 || rtu.StopBits != 1 {
		t.Errorf("serial defaults = %d %s %d %d", rtu.Baud, rtu.Parity, rtu.DataBits, rtu.StopBits)
	}
	if rtu.Timeout.D().Milliseconds() != 300 {
		t.Errorf("timeout = %v", rtu.Timeout.D())
	}
	if c.Targets[0].Connections != 1 || c.Targets[0].Queue != 32 {
		t.Errorf("tcp defaults = %d connections, queue %d", c.Targets[0].Connections, c.Targets[0].Queue)
	}
	if got := c.TargetNames(); strings.Join(got, ",") != "plc,rtu-bus" {
		t.Errorf("TargetNames = %v", got)
	}
}

// Each case changes one line of the good config and expects an error naming
// the line and what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     []string // substrings of the error
	}{
		{"fail/unknown-top-key", "version: 1\n", "version: 1\nverison: 2\n", []string{"brana.yaml:2:", `unknown key "verison"`}},
		{"fail/unknown-nested-key", "    transport: tcp\n", "    transport: tcp\n    adress: x\n", []string{"brana.yaml:17:", `unknown key "adress"`}},
		{"fail/version", "version: 1\n", "version: 2\n", []string{"brana.yaml:1:", "version: is 2"}},
		{"fail/duration", "    timeout: 300ms\n", "    timeout: soon\n", []string{"brana.yaml:21:", `"soon" is not a duration`}},
		{"fail/transport", "    transport: tcp\n", "    transport: udp\n", []string{"brana.yaml:16:", "targets[0].transport", `"udp"`}},
		{"fail/address", "    address: 127.0.0.1:15020\n", "    address: plc.local\n", []string{"brana.yaml:17:", "targets[0].address"}},
		{"fail/route-target", "        target: plc\n", "        target: plx\n", []string{"brana.yaml:10:", "listeners[0].routes[0].target", `"plx" is not a configured target`}},
		{"fail/duplicate-unit", "      - units: [2]\n", "      - units: [1]\n", []string{"listeners[0].routes[1].units", "unit 1 is already routed"}},
		{"fail/parity", "    timeout: 300ms\n", "    timeout: 300ms\n    parity: X\n", []string{"brana.yaml:22:", "targets[1].parity"}},
		{"fail/rule-party", "    parties: [scada]\n", "    parties: [scadaa]\n", []string{"brana.yaml:30:", "rules[0].parties"}},
		{"fail/rule-class", "    classes: [read]\n", "    classes: [raed]\n", []string{"brana.yaml:32:", "rules[0].classes"}},
		{"fail/cidr", "    networks: [127.0.0.1/32]\n", "    networks: [127.0.0.1/33]\n", []string{"brana.yaml:27:", "parties[0].networks"}},
		{"fail/yaml-syntax", "    classes: [read]\n", "    classes: [read\n", []string{"brana.yaml:"}},
		{"fail/no-data-dir", "  data_dir: data\n", "", []string{"gateway.data_dir", "missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.from) {
				t.Fatalf("test bug: %q not in config", tt.from)
			}
			text := strings.Replace(good, tt.from, tt.to, 1)
			_, err := Parse("brana.yaml", []byte(text))
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

func TestParseCollectsAllErrors(t *testing.T) {
	text := strings.Replace(good, "    transport: tcp\n", "    transport: udp\n", 1)
	text = strings.Replace(text, "    classes: [read]\n", "    classes: [raed]\n", 1)
	_, err := Parse("brana.yaml", []byte(text))
	var es []*Error
	for _, e := range unjoin(err) {
		var ce *Error
		if errors.As(e, &ce) {
			es = append(es, ce)
		}
	}
	if len(es) != 2 {
		t.Fatalf("got %d errors (%v); want 2", len(es), err)
	}
}

func TestEmptyFile(t *testing.T) {
	if _, err := Parse("empty.yaml", nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("err = %v; want one saying the file is empty", err)
	}
}

func TestLineOf(t *testing.T) {
	var c Config
	_ = c
	text := "a:\n  b:\n    - x: 1\n    - x: 2\n      y: 3\n"
	tests := map[string]int{"a": 1, "a.b": 2, "a.b[1].y": 5, "a.b[1]": 4, "a.b[9].y": 2, "zz": 1}
	for path, want := range tests {
		if got := lineOfText(t, text, path); got != want {
			t.Errorf("lineOf(%q) = %d; want %d", path, got, want)
		}
	}
}

func lineOfText(t *testing.T, text, path string) int {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	return lineOf(&root, path)
}

func TestAuditExportErrorsNameTheField(t *testing.T) {
	text := strings.Replace(good, "  data_dir: data\n", "  data_dir: data\naudit:\n  export:\n    - name: siem\n      type: kafka\n", 1)
	_, err := Parse("brana.yaml", []byte(text))
	if err == nil || !strings.Contains(err.Error(), "brana.yaml:8: audit.export[0].type") {
		t.Fatalf("err = %v; want it to name line 8 and audit.export[0].type", err)
	}
	text = strings.Replace(good, "  data_dir: data\n", "  data_dir: data\naudit:\n  retain_for: 30d\n  min_free: 1GiB\n  export:\n    - name: siem\n      type: syslog\n      address: 127.0.0.1:6514\n", 1)
	c, err := Parse("brana.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit.RetainFor.D() != 30*24*time.Hour || c.Audit.MinFree != 1<<30 || len(c.Audit.Export) != 1 {
		t.Fatalf("audit = %+v", c.Audit)
	}
}

// Type errors speak of YAML shapes, not Go types.
func TestTypeErrorsInOperatorWords(t *testing.T) {
	tests := []struct{ from, to, want string }{
		{"  name: test\n", "  name: [a, b]\n", "brana.yaml:3: expected text, found a list"},
		{"gateway:\n  name: test\n  data_dir: data\n", "gateway: [1, 2]\n", "brana.yaml:2: expected a section (key: value lines), found a list"},
		{"    address: 127.0.0.1:5020\n", "    address: 127.0.0.1:5020\n    max_connections: lots\n", "brana.yaml:8: expected a whole number, found text `lots`"},
	}
	for _, tt := range tests {
		_, err := Parse("brana.yaml", []byte(strings.Replace(good, tt.from, tt.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v; want %q", err, tt.want)
		}
	}
}
