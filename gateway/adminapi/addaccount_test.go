package adminapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AddAccount appends to the list whatever its shape, keeps comments and
// the other entries, makes a missing file 0640, keeps an existing file's
// mode, and never replaces an account.
func TestAddAccount(t *testing.T) {
	hash, err := HashPassword("a long passphrase")
	if err != nil {
		t.Fatal(err)
	}
	eva := "accounts:\n  # the engineer on duty\n  - user: eva\n    roles: [approver]\n    hash: \"" + hash + "\"\n"
	for _, tc := range []struct {
		name, file string // file "" : none
		mode       os.FileMode
		err        error
		keep       []string // text of the old file that must stay
	}{
		{name: "ok/no-file"},
		{name: "ok/empty-file", file: "\n", mode: 0o600},
		{name: "ok/empty-flow-list", file: "# people\naccounts: []\n", mode: 0o640, keep: []string{"# people"}},
		{name: "ok/null-list", file: "accounts:\n", mode: 0o640},
		{name: "ok/after-others", file: eva, mode: 0o640, keep: []string{"# the engineer on duty", "user: eva"}},
		{name: "fail/exists", file: strings.Replace(eva, "eva", "jan", 1), mode: 0o640, err: ErrAccountExists},
		{name: "fail/invalid-file", file: "accounts:\n  - user: eva\n    roles: [king]\n", mode: 0o640},
		{name: "fail/not-a-list", file: "accounts: {user: eva}\n", mode: 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "accounts.yaml")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			err := AddAccount(path, Account{User: "jan", Name: "Jan Novák", Roles: []string{RoleApprover}, Hash: hash})
			after, _ := os.ReadFile(path)
			if strings.HasPrefix(tc.name, "fail/") {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("AddAccount = %v; want an error (%v)", err, tc.err)
				}
				if string(after) != tc.file {
					t.Errorf("the file changed:\n%s", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, err := LoadAccounts(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, after)
			}
			if acc, err := a.Authenticate("jan", "a long passphrase"); err != nil || acc.Name != "Jan Novák" || !acc.Has(RoleApprover) {
				t.Errorf("jan: %+v, %v", acc, err)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(after), k) {
					t.Errorf("%q was lost:\n%s", k, after)
				}
			}
			want := tc.mode
			if tc.file == "" {
				want = 0o640
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != want {
				t.Errorf("mode %v; want %v", fi.Mode().Perm(), want)
			}
		})
	}
}

func TestCheckUser(t *testing.T) {
	for name, ok := range map[string]bool{"engineer": true, "jana.novakova@example.cz": true, "Jana": false, "": false, "a b": false} {
		if err := CheckUser(name); (err == nil) != ok {
			t.Errorf("CheckUser(%q) = %v", name, err)
		}
	}
}
