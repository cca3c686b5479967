package adminapi

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/brana-ot/brana/gateway/passhash"
)

// Roles an account can have.
const (
	RoleApprover  = "approver"  // everything: decide on requests, kill sessions
	RoleRequester = "requester" // list, show, and file requests (for tools and colleagues)
	RoleViewer    = "viewer"    // list and show
)

var roles = []string{RoleApprover, RoleRequester, RoleViewer}

// Lockout: a user who fails this many times in a row is refused for LockFor,
// whatever the password.
const (
	MaxFailures = 5
	LockFor     = 5 * time.Minute
)

// Errors of Authenticate.
var (
	ErrBadCredentials = errors.New("adminapi: wrong user or password")
	ErrLocked         = errors.New("adminapi: account locked after repeated failures")
)

// Account is one local person.
type Account struct {
	User  string   `yaml:"user" json:"user"`
	Name  string   `yaml:"name" json:"name,omitempty"`
	Party string   `yaml:"party" json:"party,omitempty"` // set for people who belong to a party; they never approve its requests
	Roles []string `yaml:"roles" json:"roles"`
	Hash  string   `yaml:"hash" json:"-"` // PHC argon2id string from `brana account hash`
	// TOTP is the base32 secret of an optional second factor (RFC 6238:
	// SHA-1, 6 digits, 30 s), asked for by the engineer console. The admin
	// socket, reachable only locally, does not ask for it.
	TOTP string `yaml:"totp" json:"-"`
}

// Has reports whether the account has one of roles.
func (a *Account) Has(roles ...string) bool {
	return slices.ContainsFunc(a.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

type account struct {
	Account
	hash passhash.Hash
}

type failures struct {
	n     int
	until time.Time
}

// Accounts are the local accounts that may use the admin API, read from a
// YAML file. The file is read again when it changes; if it has become
// invalid, every login fails until it is fixed.
type Accounts struct {
	path string
	now  func() time.Time
	sem  chan struct{} // bounds concurrent argon2 runs: each takes its memory parameter

	mu      sync.Mutex
	byUser  map[string]*account
	dummy   passhash.Hash // verified for unknown users, so that timing does not tell them apart
	stamp   fileStamp
	loadErr error
	fails   map[string]*failures
}

type fileStamp struct {
	mod  time.Time
	size int64
}

type accountsFile struct {
	Accounts []Account `yaml:"accounts"`
}

var unknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)

var validUser = regexp.MustCompile(`^[a-z_][a-z0-9_.@-]{0,63}$`)

// LoadAccounts reads an accounts file:
//
//	accounts:
//	  - user: jana
//	    name: Jana Novák
//	    roles: [approver]
//	    hash: "$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH"
//
// A file that others may write is refused: whoever writes it decides who approves.
func LoadAccounts(path string) (*Accounts, error) {
	a := newAccounts(path)
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// NewAccounts makes Accounts from a list, without a file.
func NewAccounts(list []Account) (*Accounts, error) {
	a := newAccounts("")
	m, problems := parseAccounts(list, nil)
	if len(problems) > 0 {
		return nil, errors.New("accounts: " + strings.Join(problems, "; "))
	}
	a.set(m)
	return a, nil
}

func newAccounts(path string) *Accounts {
	return &Accounts{path: path, now: time.Now, sem: make(chan struct{}, 2), fails: make(map[string]*failures)}
}

func (a *Accounts) set(m map[string]*account) {
	a.byUser = m
	a.dummy = passhash.Hash{}.Decoy()
	for _, u := range m {
		a.dummy = u.hash.Decoy()
		break
	}
}

// reload reads the file if it changed since the last read.
func (a *Accounts) reload() error {
	if a.path == "" {
		return nil
	}
	fi, err := os.Stat(a.path)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	if st == a.stamp && a.byUser != nil {
		return a.loadErr
	}
	a.stamp = st
	a.loadErr = a.read(fi.Mode())
	return a.loadErr
}

func (a *Accounts) read(mode os.FileMode) error {
	if mode.Perm()&0o002 != 0 {
		return fmt.Errorf("accounts: %s is writable by anyone; chmod o-w it", a.path)
	}
	data, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	m, err := parseFile(a.path, data)
	if err != nil {
		return err
	}
	a.set(m)
	return nil
}

// parseFile decodes and checks the bytes of an accounts file.
func parseFile(path string, data []byte) (map[string]*account, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("accounts: %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f accountsFile
	if err := dec.Decode(&f); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = unknownKey.ReplaceAllString(msg, `unknown key "$1"`)
		return nil, fmt.Errorf("accounts: %s: %s", path, msg)
	}
	m, problems := parseAccounts(f.Accounts, accountLines(&root))
	if len(problems) > 0 {
		for i, p := range problems {
			problems[i] = path + ":" + p
		}
		return nil, errors.New("accounts: " + strings.Join(problems, "\n"))
	}
	return m, nil
}

// accountLines finds the line of each entry of the accounts list.
func accountLines(root *yaml.Node) []int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "accounts" && n.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, item := range n.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

// parseAccounts checks the accounts; problems read "LINE: accounts[i].key: what".
func parseAccounts(list []Account, lines []int) (map[string]*account, []string) {
	m := make(map[string]*account, len(list))
	var errs []string
	for i, acc := range list {
		where := fmt.Sprintf("accounts[%d]", i)
		if i < len(lines) {
			where = fmt.Sprintf("%d: accounts[%d]", lines[i], i)
		}
		bad := func(format string, a ...any) { errs = append(errs, where+"."+fmt.Sprintf(format, a...)) }
		switch {
		case !validUser.MatchString(acc.User):
			bad("user: %q is not a valid user name (lower-case letters, digits, '_', '.', '@', '-')", acc.User)
		case m[acc.User] != nil:
			bad("user: %q is listed twice", acc.User)
		}
		if len(acc.Roles) == 0 {
			bad("roles: missing (%s)", strings.Join(roles, ", "))
		}
		for _, r := range acc.Roles {
			if !slices.Contains(roles, r) {
				bad("roles: %q is not a role (%s)", r, strings.Join(roles, ", "))
			}
		}
		h, err := passhash.Parse(acc.Hash)
		if err != nil {
			bad("hash: %v (make one with brana account hash)", err)
		}
		if acc.TOTP != "" {
			if k, err := TOTPKey(acc.TOTP); err != nil || len(k) < 16 {
				bad("totp: not a base32 secret of at least 128 bits (26 characters)")
			}
		}
		if acc.Name == "" {
			acc.Name = acc.User
		}
		m[acc.User] = &account{Account: acc, hash: h}
	}
	return m, errs
}

// Authenticate checks user and password in constant time. After MaxFailures
// failures in a row the user is locked for LockFor.
func (a *Accounts) Authenticate(user, password string) (Account, error) {
	now := a.now()
	a.mu.Lock()
	if err := a.reload(); err != nil {
		a.mu.Unlock()
		return Account{}, err
	}
	if f := a.fails[user]; f != nil && now.Before(f.until) {
		a.mu.Unlock()
		return Account{}, fmt.Errorf("%w until %s", ErrLocked, f.until.UTC().Format(time.RFC3339))
	}
	acc, known := a.byUser[user]
	h := a.dummy
	if known {
		h = acc.hash
	}
	a.mu.Unlock()

	a.sem <- struct{}{}
	ok := h.Verify(password) && known
	<-a.sem

	a.mu.Lock()
	defer a.mu.Unlock()
	if ok {
		delete(a.fails, user)
		return acc.Account, nil
	}
	if len(a.fails) > 10000 { // names tried at random must not grow the map without bound
		for u, f := range a.fails {
			if !now.Before(f.until) {
				delete(a.fails, u)
			}
		}
	}
	f := a.fails[user]
	if f == nil {
		f = &failures{}
		a.fails[user] = f
	}
	if f.n++; f.n >= MaxFailures {
		f.n, f.until = 0, now.Add(LockFor)
	}
	return Account{}, ErrBadCredentials
}

// List returns the accounts, without their hashes.
func (a *Accounts) List() []Account {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Account, 0, len(a.byUser))
	for _, u := range a.byUser {
		acc := u.Account
		acc.Hash, acc.TOTP = "", ""
		out = append(out, acc)
	}
	slices.SortFunc(out, func(x, y Account) int { return strings.Compare(x.User, y.User) })
	return out
}

// TOTPKey decodes a base32 TOTP secret as authenticator apps show it: any
// case, with or without spaces and '=' padding.
func TOTPKey(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.Join(strings.Fields(secret), ""))
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(s, "="))
}

// HashPassword returns the PHC argon2id string of pw with the default
// parameters and a random salt, for the accounts file.
func HashPassword(pw string) (string, error) {
	return passhash.New(pw)
}
