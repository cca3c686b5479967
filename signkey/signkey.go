// Package signkey makes and reads the ed25519 key files that sign brana's
// manifests (jurisdiction data bundles, firmware allow-lists) as signed
// notes in the golang.org/x/mod/sumdb/note format.
//
// A signer key file holds one line "PRIVATE+KEY+name+hash+key" and is kept
// offline. A verifier key file holds one or more lines "name+hash+key", one
// key per line; blank lines and lines starting with '#' are ignored, so a
// gateway can trust an old and a new key while they are rotated.
package signkey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const (
	maxKeyFile   = 64 << 10
	maxVerifiers = 100
)

var (
	ErrNoKey     = errors.New("signkey: no key in file")
	ErrDuplicate = errors.New("signkey: key listed twice")
)

// Generate makes a new key pair named name (for example
// "substation-lhota-firmware"): the signer key and its verifier key.
func Generate(name string) (signer, verifier string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// WritePair writes a key pair made by Generate to prefix+".key" (mode 0600,
// refusing to overwrite an existing file, so that a key in use is not lost)
// and prefix+".pub" (mode 0644). It returns the two paths.
func WritePair(prefix, signer, verifier string) (signerPath, verifierPath string, err error) {
	signerPath, verifierPath = prefix+".key", prefix+".pub"
	f, err := os.OpenFile(signerPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("signkey: %w", err)
	}
	_, err = io.WriteString(f, signer+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(signerPath)
		return "", "", fmt.Errorf("signkey: %w", err)
	}
	if err := os.WriteFile(verifierPath, []byte(verifier+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("signkey: %w", err)
	}
	return signerPath, verifierPath, nil
}

// LoadSigner reads a signer key file.
func LoadSigner(path string) (note.Signer, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, fmt.Errorf("signkey: signer key: %w", err)
	}
	s, err := note.NewSigner(string(bytes.TrimSpace(data)))
	if err != nil {
		// The error would not help and the key must not end up in a log.
		return nil, fmt.Errorf("signkey: signer key %s: not a signer key (PRIVATE+KEY+name+hash+key)", path)
	}
	return s, nil
}

// LoadVerifier reads a verifier key file that holds exactly one key.
func LoadVerifier(path string) (note.Verifier, error) {
	vs, err := LoadVerifiers(path)
	if err != nil {
		return nil, err
	}
	if len(vs) != 1 {
		return nil, fmt.Errorf("signkey: verifier key %s: holds %d keys; want one", path, len(vs))
	}
	return vs[0], nil
}

// LoadVerifiers reads a verifier key file with one or more keys.
func LoadVerifiers(path string) ([]note.Verifier, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, fmt.Errorf("signkey: verifier key: %w", err)
	}
	vs, err := ParseVerifiers(string(data))
	if err != nil {
		return nil, fmt.Errorf("signkey: verifier key %s: %w", path, err)
	}
	return vs, nil
}

// ParseVerifiers parses the text of a verifier key file. Two keys with the
// same name and key hash are refused: note could not tell which one a
// signature names.
func ParseVerifiers(text string) ([]note.Verifier, error) {
	var vs []note.Verifier
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(vs) == maxVerifiers {
			return nil, fmt.Errorf("more than %d keys", maxVerifiers)
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		for _, o := range vs {
			if o.Name() == v.Name() && o.KeyHash() == v.KeyHash() {
				return nil, fmt.Errorf("%w: line %d: %s", ErrDuplicate, i+1, v.Name())
			}
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, ErrNoKey
	}
	return vs, nil
}

// readRegular reads a small regular file; a key is never read through a
// symlink, a device or a FIFO.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", filepath.Base(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), maxKeyFile)
	}
	return data, nil
}
