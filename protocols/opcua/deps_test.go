package opcua

import (
	"go/build"
	"strings"
	"testing"
)

// The classifier stays pure: the standard library, opclass and gopcua's ua and
// id packages only, and no package that does I/O or logging.
func TestDeps(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/brana-ot/brana/protocols/opclass": true,
		"github.com/gopcua/opcua/ua":                  true,
		"github.com/gopcua/opcua/id":                  true,
	}
	banned := map[string]bool{"net": true, "os": true, "log": true, "log/slog": true, "io": true, "syscall": true}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		switch {
		case allowed[imp]:
		case strings.Contains(first, "."):
			t.Errorf("imports %q: only the standard library, opclass and gopcua's ua and id are allowed", imp)
		case banned[imp]:
			t.Errorf("imports %q: the classifier does no I/O and no logging", imp)
		}
	}
}
