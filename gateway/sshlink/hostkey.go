package sshlink

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// LoadOrCreateHostKey reads the host key, or generates an ed25519 key and
// writes it (0600, temp file + fsync + rename) when the file does not exist
// yet; created reports a new key. It is the one place a host key is made:
// the endpoint at start and `brana init` both call it.
func LoadOrCreateHostKey(file string, log *slog.Logger) (s ssh.Signer, created bool, err error) {
	b, err := os.ReadFile(file)
	if err == nil {
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("ssh host key is readable by others", "file", file, "mode", fi.Mode().Perm().String())
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("sshlink: host key %s: %w", file, err)
		}
		return s, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("sshlink: host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("sshlink: generating host key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "brana ssh host key")
	if err != nil {
		return nil, false, fmt.Errorf("sshlink: encoding host key: %w", err)
	}
	if err := writeFileAtomic(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, false, fmt.Errorf("sshlink: writing host key: %w", err)
	}
	s, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("sshlink: host key: %w", err)
	}
	log.Info("generated ssh host key", "file", file, "fingerprint", ssh.FingerprintSHA256(s.PublicKey()))
	return s, true, nil
}

// writeFileAtomic writes data to a temp file beside name, syncs it and renames
// it into place, so that a crash never leaves a half-written key.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(name, data, perm)
}
