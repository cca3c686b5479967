package signkey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	s, v, err := Generate("lhota-firmware")
	if err != nil {
		t.Fatal(err)
	}
	sp, vp, err := WritePair(filepath.Join(dir, "fw"), s, v)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(sp); st.Mode().Perm() != 0o600 {
		t.Fatalf("signer key mode %v", st.Mode().Perm())
	}
	if _, _, err := WritePair(filepath.Join(dir, "fw"), s, v); err == nil {
		t.Fatal("WritePair overwrote a signer key")
	}
	signer, err := LoadSigner(sp)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := LoadVerifier(vp)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(verifier)); err != nil {
		t.Fatalf("signature by the loaded signer does not verify with the loaded verifier: %v", err)
	}
	if _, err := LoadSigner(vp); err == nil || strings.Contains(err.Error(), v) {
		t.Fatalf("LoadSigner of a verifier key: %v", err)
	}
	if _, err := LoadVerifier(sp); err == nil || strings.Contains(err.Error(), s) {
		t.Fatalf("LoadVerifier of a signer key: %v (must not echo the key)", err)
	}
	link := filepath.Join(dir, "link.pub")
	os.Symlink(vp, link)
	if _, err := LoadVerifier(link); err == nil {
		t.Fatal("LoadVerifier followed a symlink")
	}
}

func TestParseVerifiers(t *testing.T) {
	_, v1, _ := Generate("old")
	_, v2, _ := Generate("new")
	tests := []struct {
		name, text string
		n          int
		err        error
	}{
		{"ok/one", v1 + "\n", 1, nil},
		{"ok/two-with-comments", "# rotation 2026\n" + v1 + "\n\n  " + v2 + "  \n", 2, nil},
		{"fail/empty", "# nothing\n\n", 0, ErrNoKey},
		{"fail/duplicate", v1 + "\n" + v1 + "\n", 0, ErrDuplicate},
		{"fail/garbage", v1 + "\nnot-a-key\n", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := ParseVerifiers(tt.text)
			switch {
			case tt.n > 0 && (err != nil || len(vs) != tt.n):
				t.Fatalf("ParseVerifiers = %d keys, %v; want %d", len(vs), err, tt.n)
			case tt.n == 0 && err == nil:
				t.Fatal("ParseVerifiers accepted it")
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Fatalf("ParseVerifiers: %v; want %v", err, tt.err)
			}
		})
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "two.pub")
	os.WriteFile(p, []byte(v1+"\n"+v2+"\n"), 0o644)
	if _, err := LoadVerifier(p); err == nil || !strings.Contains(err.Error(), "holds 2 keys") {
		t.Fatalf("LoadVerifier of a two-key file: %v", err)
	}
}
