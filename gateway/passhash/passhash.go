// Package passhash owns brana's password hashes: argon2id (RFC 9106) in the
// PHC string format, "$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH". The admin
// API's accounts and the users of brana's OPC UA endpoint are checked with
// it, so that there is one implementation of the hash to review.
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Default parameters of New (RFC 9106's second recommendation with two
// lanes): 64 MiB, 3 passes.
const (
	DefaultMemory  = 64 * 1024 // KiB
	DefaultTime    = 3
	DefaultThreads = 2
	saltLen        = 16
	keyLen         = 32
	maxMemory      = 1 << 20 // KiB: a hash must not be able to exhaust a Pi-class gateway
	maxTime        = 64
)

// ErrEmpty is returned by New for an empty password.
var ErrEmpty = errors.New("passhash: empty password")

// Hash is a parsed PHC argon2id string.
type Hash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// Verify reports whether password hashes to h, comparing in constant time.
// The zero Hash verifies nothing.
func (h Hash) Verify(password string) bool {
	if len(h.key) == 0 {
		return false
	}
	k := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

// Decoy returns a hash with h's cost that no password verifies. Verifying
// it for an unknown user takes as long as for a known one, so that timing
// does not tell them apart. The decoy of the zero Hash is the cheapest
// valid one.
func (h Hash) Decoy() Hash {
	d := Hash{memory: 8, time: 1, threads: 1, salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	if len(h.key) > 0 {
		d.memory, d.time, d.threads = h.memory, h.time, h.threads
		d.key = make([]byte, len(h.key))
	}
	// No password yields an all-zero key (but for odds of 2^-128 and less); the comparison still runs.
	return d
}

// String returns the PHC string.
func (h Hash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memory, h.time, h.threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// Parse reads a PHC argon2id string, refusing parameters that this gateway
// could not afford to verify.
func Parse(s string) (Hash, error) {
	var h Hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, errors.New(`not a PHC string "$argon2id$v=19$m=...,t=...,p=...$SALT$HASH"`)
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

// New returns the PHC argon2id string of password with the default
// parameters and a random salt.
func New(password string) (string, error) {
	return NewWithCost(password, DefaultMemory, DefaultTime, DefaultThreads)
}

// NewWithCost is New with other parameters: memory in KiB, passes, lanes.
// Tests use it for cheap hashes.
func NewWithCost(password string, memory, passes uint32, threads uint8) (string, error) {
	if password == "" {
		return "", ErrEmpty
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := Hash{memory: memory, time: passes, threads: threads, salt: salt}
	h.key = argon2.IDKey([]byte(password), salt, passes, memory, threads, keyLen)
	return h.String(), nil
}
