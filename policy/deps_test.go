package policy

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDeps keeps the dependency direction of DESIGN.md true: policy uses the
// standard library and the protocol codecs' types, never gateway or anything
// outside the module.
func TestDeps(t *testing.T) {
	allowed := map[string]bool{
		"github.com/brana-ot/brana/protocols/modbus":  true,
		"github.com/brana-ot/brana/protocols/opclass": true,
		"github.com/brana-ot/brana/protocols/opcua":   true,
		"github.com/gopcua/opcua/ua":                  true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !allowed[path] && strings.Contains(first, ".") {
				t.Errorf("%s imports %s: policy may import only the standard library, opclass, modbus, opcua and gopcua/ua", name, path)
			}
		}
	}
}
