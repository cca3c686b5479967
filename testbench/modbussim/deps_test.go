package modbussim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIndependentOracle: the simulator uses only the standard library and
// never brana's own packages, so it cannot share brana's bugs.
func TestIndependentOracle(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/brana-ot/brana") {
				t.Errorf("%s imports %s", name, path)
			}
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			if !strings.HasSuffix(name, "_test.go") && !std {
				t.Errorf("%s imports non-standard %s", name, path)
			}
		}
	}
}
