package sshlink

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"ok/plain", "status", []string{"status"}, false},
		{"ok/request", "request feeder-plc --classes read,write --for 2h --reason TKT-1234", []string{"request", "feeder-plc", "--classes", "read,write", "--for", "2h", "--reason", "TKT-1234"}, false},
		{"ok/double-quotes", `request x --reason "TKT-1 \"pump\" $HOME"`, []string{"request", "x", "--reason", `TKT-1 "pump" $HOME`}, false},
		{"ok/single-quotes", `request x --reason 'it'\''s \ fine'`, []string{"request", "x", "--reason", `it's \ fine`}, false},
		{"ok/backslash", `a\ b c`, []string{"a b", "c"}, false},
		{"ok/empty-word", `a "" b`, []string{"a", "", "b"}, false},
		{"ok/blanks", " \t status \n", []string{"status"}, false},
		{"ok/nothing", "", nil, false},
		{"fail/unterminated-double", `request "x`, nil, true},
		{"fail/unterminated-single", `request 'x`, nil, true},
		{"fail/too-long", strings.Repeat("a ", maxCommandLen), nil, true},
		{"fail/too-many-words", strings.Repeat("a ", maxCommandWords+1), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitWords(tc.in)
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Fatalf("splitWords(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestIsAddress(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "10.0.0.7", "::1", "[::1]", "fe80::1%eth0", "10.1", "0x7f.1", "2130706433", ""} {
		if !isAddress(h) {
			t.Errorf("isAddress(%q) = false", h)
		}
	}
	for _, h := range []string{"feeder-plc", "line-opc", "plc1", "a.b", "0xplc"} {
		if isAddress(h) {
			t.Errorf("isAddress(%q) = true", h)
		}
	}
}

// FuzzSplitWords checks that splitting never panics and that quoting the
// words and splitting again gives the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{
		"status",
		`request feeder-plc --classes read,write --for 2h --reason "TKT-1234"`,
		`request x --reason 'it'\''s'`,
		`a\ b "c\"d" ''`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = quoteWord(w)
		}
		again, err := splitWords(strings.Join(q, " "))
		if err != nil && len(strings.Join(q, " ")) <= maxCommandLen {
			t.Fatalf("re-split of %q: %v", q, err)
		}
		if err == nil && !slices.Equal(words, again) {
			t.Fatalf("round trip: %q -> %q -> %q", s, q, again)
		}
	})
}
