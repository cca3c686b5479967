package sshlink

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDeps keeps protocol logic, policy and approvals out of the SSH
// endpoint: it imports the standard library and x/crypto/ssh only; the
// gateway plugs everything else in through Backend.
func TestDeps(t *testing.T) {
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
			if path != "golang.org/x/crypto/ssh" && path != "github.com/brana-ot/brana/gateway/atomicfile" && strings.Contains(first, ".") {
				t.Errorf("%s imports %s: sshlink may import only the standard library, golang.org/x/crypto/ssh and gateway/atomicfile", name, path)
			}
		}
	}
}
