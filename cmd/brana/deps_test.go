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

func under(name, prefix string) bool { return name == prefix || strings.HasPrefix(name, prefix+"/") }

func forbidden(name, dep string, ours bool, imp string) string {
	switch {
	case ours && under(dep, "cmd"):
		return "nothing imports cmd"
	case under(name, "protocols") && ours && !under(dep, "protocols"):
		return "protocols are leaves: no gateway, policy or testbench"
	case under(name, "protocols/modbus") && !ours && (imp == "net" || imp == "os" || imp == "log" || imp == "log/slog" || strings.Contains(imp, ".")):
		return "the Modbus codec is pure: standard library only, no I/O"
	case (under(name, "policy") || under(name, "firmware")) && ours && (under(dep, "gateway") || under(dep, "testbench")):
		return "policy and firmware never import gateway or testbench"
	case under(name, "testbench/modbussim") && ours:
		return "simulators are independent oracles: they import nothing of brana"
	case under(name, "gateway") && name != "gateway/demo" && ours && under(dep, "testbench"):
		return "the gateway never depends on the testbench (only the demo starts simulators)"
	}
	return ""
}
