package opcuasim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIndependentOracle: the simulator uses the standard library and gopcua
// only, never brana's own packages, so it cannot share brana's bugs.
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
			if !std && path != "github.com/gopcua/opcua" && !strings.HasPrefix(path, "github.com/gopcua/opcua/") {
				t.Errorf("%s imports %s: only the standard library and gopcua", name, path)
			}
		}
	}
}
