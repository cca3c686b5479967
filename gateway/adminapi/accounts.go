package adminapi

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/argon2"
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

// Default argon2id parameters of HashPassword (RFC 9106's second
// recommendation with two lanes): 64 MiB, 3 passes.
const (
	DefaultMemory  = 64 * 1024 // KiB
	DefaultTime    = 3
	DefaultThreads = 2
	saltLen        = 16
	keyLen         = 32
	maxMemory      = 1 << 20 // KiB: a hash must not be able to exhaust a Pi-class gateway
	maxTime        = 64
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
}

// Has reports whether the account has one of roles.
func (a *Account) Has(roles ...string) bool {
	return slices.ContainsFunc(a.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

type account struct {
	Account
	hash phc
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
	dummy   phc // verified for unknown users, so that timing does not tell them apart
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
	a.dummy = phc{memory: 8, time: 1, threads: 1, salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	for _, u := range m {
		a.dummy.memory, a.dummy.time, a.dummy.threads = u.hash.memory, u.hash.time, u.hash.threads
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
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("accounts: %s: %v", a.path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f accountsFile
	if err := dec.Decode(&f); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = unknownKey.ReplaceAllString(msg, `unknown key "$1"`)
		return fmt.Errorf("accounts: %s: %s", a.path, msg)
	}
	m, problems := parseAccounts(f.Accounts, accountLines(&root))
	if len(problems) > 0 {
		for i, p := range problems {
			problems[i] = a.path + ":" + p
		}
		return errors.New("accounts: " + strings.Join(problems, "\n"))
	}
	a.set(m)
	return nil
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
		h, err := parsePHC(acc.Hash)
		if err != nil {
			bad("hash: %v", err)
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
	ok := h.verify(password) && known
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
		acc.Hash = ""
		out = append(out, acc)
	}
	slices.SortFunc(out, func(x, y Account) int { return strings.Compare(x.User, y.User) })
	return out
}

// phc is a parsed "$argon2id$v=19$m=...,t=...,p=...$salt$hash" string.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (h phc) verify(password string) bool {
	if len(h.key) == 0 {
		return false
	}
	k := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

func (h phc) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memory, h.time, h.threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, errors.New(`not a PHC string "$argon2id$v=19$m=...,t=...,p=...$SALT$HASH" (make one with brana account hash)`)
	}
	if parts[1] != "argon2id" {
		return h, fmt.Errorf("algorithm %q is not argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("version %q is not v=%d", parts[2], argon2.Version)
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, fmt.Errorf("parameter %q is not a number", kv)
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return h, fmt.Errorf("p=%d is more than 255", n)
			}
			h.threads = uint8(n)
		default:
			return h, fmt.Errorf("unknown parameter %q", k)
		}
	}
	switch {
	case h.threads == 0 || h.time == 0 || h.memory == 0:
		return h, errors.New("m, t and p are all required and must be more than zero")
	case h.memory < 8*uint32(h.threads):
		return h, fmt.Errorf("m=%d is less than 8 KiB per lane", h.memory)
	case h.memory > maxMemory || h.time > maxTime:
		return h, fmt.Errorf("m=%d,t=%d is more than this gateway allows (m<=%d, t<=%d)", h.memory, h.time, maxMemory, maxTime)
	}
	var err error
	dec := base64.RawStdEncoding
	if h.salt, err = dec.DecodeString(strings.TrimRight(parts[4], "=")); err != nil || len(h.salt) < 8 {
		return h, errors.New("salt is not base64 of at least 8 bytes")
	}
	if h.key, err = dec.DecodeString(strings.TrimRight(parts[5], "=")); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("hash is not base64 of 16 to 64 bytes")
	}
	return h, nil
}

// HashPassword returns the PHC argon2id string of pw with the default
// parameters and a random salt, for the accounts file.
func HashPassword(pw string) (string, error) {
	return hashPassword(pw, DefaultMemory, DefaultTime, DefaultThreads)
}

func hashPassword(pw string, memory, passes uint32, threads uint8) (string, error) {
	if pw == "" {
		return "", errors.New("adminapi: empty password")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := phc{memory: memory, time: passes, threads: threads, salt: salt}
	h.key = argon2.IDKey([]byte(pw), salt, passes, memory, threads, keyLen)
	return h.String(), nil
}
