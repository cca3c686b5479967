package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/brana-ot/brana/"

// The dependency direction is a test, not a hope (DESIGN.md, "Layout"):
// cmd → gateway → {protocols, policy, firmware}; the simulators stay
// independent oracles; codecs stay pure.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Doc", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
			Doc        string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(p.ImportPath, mod)
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment", name)
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, mod)
			if msg := forbidden(name, dep, ours, imp); msg != "" {
				t.Errorf("%s imports %s: %s", name, imp, msg)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found only %d packages", seen)
	}
}

// outside lists, per package, the only modules from outside brana it may
// import (non-test code); packages not listed are unrestricted. The
// codecs, the policy and the simulators stay small and auditable this way,
// and the simulators stay independent oracles.
var outside = map[string][]string{
	"protocols/modbus":        {},
	"protocols/opclass":       {},
	"protocols/opcua":         {"github.com/gopcua/opcua/ua", "github.com/gopcua/opcua/id"},
	"protocols/opcua/secconv": {"github.com/gopcua/opcua/uapolicy"},
	"policy":                  {"github.com/gopcua/opcua/ua"},
	"policy/geoip":            {"github.com/oschwald/maxminddb-golang/v2"},
	"policy/bundle":           {"golang.org/x/mod/sumdb/note", "go.yaml.in/yaml/v3"},
	"signkey":                 {"golang.org/x/mod/sumdb/note"},
	"firmware":                {"golang.org/x/mod/sumdb/note", "go.yaml.in/yaml/v3"},
	"testbench/modbussim":     {},
	"testbench/opcuasim":      {"github.com/gopcua/opcua/"},
	"gateway/sshlink":         {"golang.org/x/crypto/ssh"},
	"gateway/sdnotify":        {},
	"gateway/journal":         {},
	"gateway/metrics":         {"github.com/prometheus/client_golang/"},
}

// inside lists, per package, the only brana packages it may import.
var inside = map[string][]string{
	"protocols/modbus":        {"protocols/opclass"},
	"protocols/opcua":         {"protocols/opclass"},
	"protocols/opcua/secconv": {},
	"policy":                  {"protocols/opclass", "protocols/modbus", "protocols/opcua"},
	"testbench/modbussim":     {},
	"testbench/opcuasim":      {"testbench/freeport"},
	"testbench/freeport":      {},
	"gateway/sshlink":         {"gateway/atomicfile"},
	"gateway/sdnotify":        {},
	"gateway/journal":         {},
	"gateway/metrics":         {}, // a leaf: the gateway hands it functions that read other packages' counters
	"signkey":                 {},
	"firmware":                {"protocols/modbus", "signkey"},
}

func allowedBy(list []string, imp string) bool {
	for _, a := range list {
		if imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a)) {
			return true
		}
	}
	return false
}

func under(name, prefix string) bool { return name == prefix || strings.HasPrefix(name, prefix+"/") }

func forbidden(name, dep string, ours bool, imp string) string {
	switch {
	case ours && inside[name] != nil && !allowedBy(inside[name], dep):
		return "not among the brana packages it may use: " + strings.Join(inside[name], ", ")
	case !ours && strings.Contains(strings.Split(imp, "/")[0], ".") && outside[name] != nil && !allowedBy(outside[name], imp):
		return "not among the outside modules it may use: " + strings.Join(outside[name], ", ")
	case ours && under(dep, "cmd"):
		return "nothing imports cmd"
	case under(name, "protocols") && ours && !under(dep, "protocols"):
		return "protocols are leaves: no gateway, policy or testbench"
	case (under(name, "protocols/modbus") || under(name, "protocols/opcua")) && !ours && (imp == "net" || imp == "os" || imp == "log" || imp == "log/slog"):
		return "protocol codecs are pure: no I/O, no logging"
	case (under(name, "policy") || under(name, "firmware")) && ours && (under(dep, "gateway") || under(dep, "testbench")):
		return "policy and firmware never import gateway or testbench"
	case under(name, "testbench/modbussim") && ours:
		return "simulators are independent oracles: they import nothing of brana"
	case under(name, "gateway") && name != "gateway/demo" && ours && under(dep, "testbench"):
		return "the gateway never depends on the testbench (only the demo starts simulators)"
	}
	return ""
}
