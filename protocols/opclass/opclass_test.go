package opclass

import "testing"

func TestParseRoundTrip(t *testing.T) {
	for _, c := range All() {
		got, err := Parse(c.String())
		if err != nil || got != c {
			t.Fatalf("Parse(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	if _, err := Parse("exec"); err == nil {
		t.Fatal("Parse(exec) succeeded; want error")
	}
}

func TestSet(t *testing.T) {
	var s Set
	if s.Has(Read) {
		t.Fatal("empty set has read")
	}
	s = s.With(Read).With(Program)
	if !s.Has(Read) || !s.Has(Program) || s.Has(Write) || s.Has(Unknown) {
		t.Fatalf("set %08b has wrong members", s)
	}
}
