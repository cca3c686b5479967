package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// Token scopes.
const (
	ScopeRead    = "read"    // every GET of the API
	ScopeApprove = "approve" // also approve, deny, revoke and kill, if its creator may
)

const (
	tokenPrefix = "brana_"
	maxTokens   = 1000
)

// Token is an API token as stored and listed. The token itself is shown
// once, when it is made; only its SHA-256 is kept.
type Token struct {
	ID       string    `json:"id"`
	User     string    `json:"user"` // the token acts as this person
	Name     string    `json:"name"` // what it is for
	Scope    string    `json:"scope"`
	Created  time.Time `json:"created"`
	Hash     string    `json:"hash,omitempty"`     // hex SHA-256 of the token; never in API answers
	LastUsed time.Time `json:"last_used,omitzero"` // since the gateway started; not stored
}

type tokenFile struct {
	Tokens []Token `json:"tokens"`
}

// tokenStore keeps API tokens in a JSON file, written whole on every change.
type tokenStore struct {
	path string
	mu   sync.Mutex
	list []Token
	byH  map[string]int // hash → index in list
}

func openTokens(path string) (*tokenStore, error) {
	ts := &tokenStore{path: path, byH: map[string]int{}}
	if path == "" {
		return ts, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("console: tokens: %w", err)
		}
		return ts, ts.saveLocked()
	}
	if err != nil {
		return nil, fmt.Errorf("console: tokens: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		// Whoever can write it can add a token that approves.
		return nil, fmt.Errorf("console: tokens: %s is writable by others; chmod 600 it", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("console: tokens: %w", err)
	}
	var f tokenFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("console: tokens: %s: %w", path, err)
	}
	for i, t := range f.Tokens {
		if t.ID == "" || len(t.Hash) != 64 || (t.Scope != ScopeRead && t.Scope != ScopeApprove) {
			return nil, fmt.Errorf("console: tokens: %s: entry %d is incomplete", path, i)
		}
	}
	ts.list = f.Tokens
	ts.index()
	return ts, nil
}

func (ts *tokenStore) index() {
	clear(ts.byH)
	for i, t := range ts.list {
		ts.byH[t.Hash] = i
	}
}

func (ts *tokenStore) saveLocked() error {
	if ts.path == "" {
		return nil
	}
	f := tokenFile{Tokens: make([]Token, len(ts.list))}
	for i, t := range ts.list {
		t.LastUsed = time.Time{}
		f.Tokens[i] = t
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(ts.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("console: tokens: %w", err)
	}
	return nil
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// create makes a token for user and returns it with its secret.
func (ts *tokenStore) create(user, name, scope string, now time.Time) (Token, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, "", err
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	var idb [6]byte
	rand.Read(idb[:])
	t := Token{ID: "T-" + strings.ToUpper(hex.EncodeToString(idb[:])), User: user, Name: name, Scope: scope,
		Created: now.UTC(), Hash: hashToken(secret)}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.list) >= maxTokens {
		return Token{}, "", fmt.Errorf("there are already %d tokens; revoke some first", maxTokens)
	}
	ts.list = append(ts.list, t)
	if err := ts.saveLocked(); err != nil {
		ts.list = ts.list[:len(ts.list)-1]
		return Token{}, "", err
	}
	ts.index()
	t.Hash = ""
	return t, secret, nil
}

// lookup finds the token with secret and notes its use.
func (ts *tokenStore) lookup(secret string, now time.Time) (Token, bool) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return Token{}, false
	}
	h := hashToken(secret)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	i, ok := ts.byH[h]
	if !ok {
		return Token{}, false
	}
	ts.list[i].LastUsed = now.UTC()
	t := ts.list[i]
	t.Hash = ""
	return t, true
}

// all lists the tokens without their hashes.
func (ts *tokenStore) all() []Token {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]Token, len(ts.list))
	for i, t := range ts.list {
		t.Hash = ""
		out[i] = t
	}
	return out
}

// revoke removes token id and returns it.
func (ts *tokenStore) revoke(id string) (Token, bool, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	i := slices.IndexFunc(ts.list, func(t Token) bool { return t.ID == id })
	if i < 0 {
		return Token{}, false, nil
	}
	t := ts.list[i]
	ts.list = slices.Delete(ts.list, i, i+1)
	ts.index()
	t.Hash = ""
	// A revocation holds in memory even when the file cannot be written:
	// the token stops working now, and the error says it may come back at restart.
	return t, true, ts.saveLocked()
}

// exists reports whether token id is still valid.
func (ts *tokenStore) exists(id string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.ContainsFunc(ts.list, func(t Token) bool { return t.ID == id })
}
