package geoip

import (
	"errors"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/brana-ot/brana/policy"
)

func TestNilDB(t *testing.T) {
	var db *DB
	r := db.Lookup(netip.MustParseAddr("198.51.100.7"))
	if !errors.Is(r.Err, ErrNoDatabase) || r.Found || r.Country != "" {
		t.Fatalf("nil Lookup = %+v", r)
	}
	sig := policy.Signals{Country: "CZ", GeoKnown: true} // stale values are cleared
	db.Signals(netip.MustParseAddr("198.51.100.7"), &sig)
	if sig.GeoKnown || sig.Country != "" || sig.GeoErr == "" {
		t.Fatalf("nil Signals = %+v", sig)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	empty, err := Open("", "")
	if err != nil {
		t.Fatal(err)
	}
	if r := empty.Lookup(netip.MustParseAddr("192.0.2.1")); !errors.Is(r.Err, ErrNoDatabase) {
		t.Fatalf("empty Lookup = %+v", r)
	}
	// A local address is not looked up and is no error: Admit calls it local.
	sig = policy.Signals{}
	empty.Signals(netip.MustParseAddr("fe80::1%eth0"), &sig)
	if sig.GeoErr != "" || sig.GeoKnown {
		t.Fatalf("local Signals = %+v", sig)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, paths := range map[string][2]string{
		"fail/missing-country": {filepath.Join(dir, "none.mmdb"), ""},
		"fail/missing-asn":     {"", filepath.Join(dir, "none.mmdb")},
		"fail/junk":            {junk, ""},
		"fail/empty-file":      {os.DevNull, ""},
	} {
		t.Run(name, func(t *testing.T) {
			db, err := Open(paths[0], paths[1])
			if err == nil || db != nil {
				t.Fatalf("Open = %v, %v; want an error", db, err)
			}
		})
	}
}

func TestASNumber(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want uint32
	}{
		{uint64(4134), 4134}, {uint32(7), 7}, {"AS4837", 4837}, {"as1", 1}, {"4134", 4134},
		{"AS", 0}, {"ASx", 0}, {uint64(1 << 40), 0}, {nil, 0}, {-1, 0}, {"AS99999999999", 0},
	} {
		if got := asNumber(tt.in); got != tt.want {
			t.Errorf("asNumber(%#v) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

// TestNoWriterOutsideTests keeps mmdbwriter, which does not build for
// 32-bit ARM, out of every non-test file of the policy packages, and makes
// every test file that uses it carry a build constraint that leaves out
// arm and 386.
func TestNoWriterOutsideTests(t *testing.T) {
	const writer = "github.com/maxmind/mmdbwriter"
	dirs := []string{".", "..", "../bundle"}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := filepath.Join(dir, e.Name())
			if !strings.HasSuffix(name, ".go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			uses := false
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				uses = uses || strings.HasPrefix(path, writer)
			}
			if !uses {
				continue
			}
			if !strings.HasSuffix(name, "_test.go") {
				t.Errorf("%s imports %s: only tests may", name, writer)
				continue
			}
			excluded := false
			for _, cg := range f.Comments {
				for _, c := range cg.List {
					if expr, err := constraint.Parse(c.Text); err == nil {
						excluded = !expr.Eval(func(tag string) bool { return tag == "arm" || tag == "linux" }) &&
							!expr.Eval(func(tag string) bool { return tag == "386" || tag == "linux" })
					}
				}
			}
			if !excluded {
				t.Errorf("%s imports %s without //go:build !arm && !386", name, writer)
			}
		}
	}
}
