package passhash

import (
	"strings"
	"testing"
)

func TestNewAndVerify(t *testing.T) {
	h, err := New("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q", h)
	}
	p, err := Parse(h)
	if err != nil || !p.Verify("correct horse") || p.Verify("correct horse ") || p.Verify("") {
		t.Fatalf("verify: %v", err)
	}
	if p.String() != h {
		t.Fatalf("String() = %q; want %q", p.String(), h)
	}
	if h2, _ := New("correct horse"); h2 == h {
		t.Fatal("same salt twice")
	}
	if _, err := New(""); err != ErrEmpty {
		t.Fatalf("New(\"\") = %v; want ErrEmpty", err)
	}
	if (Hash{}).Verify("") {
		t.Fatal("the zero Hash verifies")
	}
}

func TestDecoy(t *testing.T) {
	h, err := NewWithCost("x", 64, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(h)
	d := p.Decoy()
	if d.memory != 64 || d.time != 2 || d.threads != 1 || len(d.key) != len(p.key) {
		t.Fatalf("decoy %s does not cost what %s costs", d, p)
	}
	if d.Verify("x") || d.Verify("") {
		t.Fatal("the decoy verifies a password")
	}
	z := Hash{}.Decoy()
	if _, err := Parse(z.String()); err != nil || z.Verify("") {
		t.Fatalf("decoy of the zero Hash %s: %v", z, err)
	}
}

func TestParse(t *testing.T) {
	good, err := NewWithCost("x", 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	tests := []struct {
		name, phc, want string
	}{
		{"ok/cheap", good, ""},
		{"fail/empty", "", "not a PHC string"},
		{"fail/argon2i", strings.Replace(good, "argon2id", "argon2i", 1), "not argon2id"},
		{"fail/version", strings.Replace(good, "v=19", "v=16", 1), "not v=19"},
		{"fail/huge-memory", strings.Replace(good, "m=64,", "m=4194304,", 1), "more than this gateway allows"},
		{"fail/zero-time", strings.Replace(good, "t=1,", "t=0,", 1), "more than zero"},
		{"fail/lanes", strings.Replace(good, "p=1", "p=9", 1), "less than 8 KiB per lane"},
		{"fail/many-lanes", strings.Replace(good, "p=1", "p=256", 1), "more than 255"},
		{"fail/param", strings.Replace(good, "p=1", "q=1", 1), "unknown parameter"},
		{"fail/not-a-number", strings.Replace(good, "t=1", "t=x", 1), "not a number"},
		{"fail/salt", strings.Join([]string{"", parts[1], parts[2], parts[3], "c2FsdA", parts[5]}, "$"), "salt"},
		{"fail/key", strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "!!"}, "$"), "hash is not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.phc)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
}
