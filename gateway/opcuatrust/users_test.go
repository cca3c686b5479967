package opcuatrust

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/passhash"
)

// cheapHash makes a real argon2id PHC string with small parameters, so tests stay quick.
func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := passhash.NewWithCost(pw, 64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func writeUsers(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "opcua-users.yaml")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

func TestUsers(t *testing.T) {
	p := writeUsers(t, "users:\n  - user: jan.novak\n    hash: \""+cheapHash(t, "correct horse")+"\"\n"+
		"  - user: Operator1\n    hash: \""+cheapHash(t, "battery staple")+"\"\n", 0o600)
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Names(); !slices.Equal(got, []string{"Operator1", "jan.novak"}) {
		t.Fatalf("Names() = %q", got)
	}
	tests := []struct {
		name, user, pw string
		ok             bool
	}{
		{"ok/jan", "jan.novak", "correct horse", true},
		{"ok/operator", "Operator1", "battery staple", true},
		{"fail/other-users-password", "jan.novak", "battery staple", false},
		{"fail/wrong", "jan.novak", "correct horse ", false},
		{"fail/empty", "jan.novak", "", false},
		{"fail/user-case", "Jan.Novak", "correct horse", false},
		{"fail/unknown", "eve", "correct horse", false},
		{"fail/unknown-empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := u.Check(tt.user, tt.pw); got != tt.ok {
				t.Fatalf("Check(%q, %q) = %v", tt.user, tt.pw, got)
			}
		})
	}
}

// An unknown user costs one argon2id run with the file's parameters, as a
// known one does: timing must not tell which names exist.
func TestUsersUnknownCost(t *testing.T) {
	h, err := passhash.NewWithCost("pw", 16*1024, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsers(writeUsers(t, "users:\n  - {user: jan, hash: \""+h+"\"}\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	measure := func(user string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			u.Check(user, "wrong")
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := measure("jan"), measure("eve")
	if unknown < known/3 {
		t.Fatalf("unknown user checked in %v, known in %v: the decoy is cheaper", unknown, known)
	}
}

func TestUsersFileErrors(t *testing.T) {
	good := cheapHash(t, "x")
	tests := []struct {
		name, text string
		mode       os.FileMode
		want       []string
	}{
		{"ok/empty-list", "users: []\n", 0o600, nil},
		{"ok/empty-file", "", 0o600, nil},
		{"fail/unknown-key", "users:\n  - user: jan\n    hash: \"" + good + "\"\n    roles: [x]\n", 0o600,
			[]string{"line 4", `unknown key "roles"`}},
		{"fail/unknown-top-key", "accounts: []\n", 0o600, []string{"line 1", `unknown key "accounts"`}},
		{"fail/bad-hash", "users:\n  - user: jan\n    hash: \"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n", 0o600,
			[]string{":2: users[0].hash", "not argon2id", "brana opcua user-hash"}},
		{"fail/missing-hash", "users:\n  - user: jan\n", 0o600, []string{":2: users[0].hash", "not a PHC string"}},
		{"fail/twice", "users:\n  - {user: jan, hash: \"" + good + "\"}\n  - {user: jan, hash: \"" + good + "\"}\n", 0o600,
			[]string{":3: users[1].user", `"jan" is listed twice`}},
		{"fail/space-in-name", "users:\n  - {user: \"jan novak\", hash: \"" + good + "\"}\n", 0o600,
			[]string{":2: users[0].user", "not a user name"}},
		{"fail/empty-name", "users:\n  - {hash: \"" + good + "\"}\n", 0o600, []string{"users[0].user", "not a user name"}},
		{"fail/long-name", "users:\n  - {user: " + strings.Repeat("a", 65) + ", hash: \"" + good + "\"}\n", 0o600, []string{"not a user name"}},
		{"fail/not-a-list", "users: jan\n", 0o600, []string{"line 1", "cannot unmarshal"}},
		{"fail/syntax", "users: [\n", 0o600, []string{"opcua users"}},
		{"fail/world-writable", "users: []\n", 0o666, []string{"writable by anyone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeUsers(t, tt.text, tt.mode)
			u, err := LoadUsers(p)
			if tt.want == nil {
				if err != nil || len(u.Names()) != 0 || u.Check("", "") {
					t.Fatalf("LoadUsers = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadUsers succeeded")
			}
			for _, w := range append(tt.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
