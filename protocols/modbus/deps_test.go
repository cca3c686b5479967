package modbus

import (
	"go/build"
	"strings"
	"testing"
)

// The codec stays pure: standard library and opclass only, and no package
// that does I/O or logging.
func TestDeps(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]bool{"net": true, "os": true, "log": true, "log/slog": true, "io": true, "syscall": true}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		switch {
		case imp == "github.com/brana-ot/brana/protocols/opclass":
		case strings.Contains(first, "."):
			t.Errorf("imports %q: only the standard library and opclass are allowed", imp)
		case banned[imp]:
			t.Errorf("imports %q: the codec does no I/O and no logging", imp)
		}
	}
}
