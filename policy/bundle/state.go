package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State is what the gateway keeps of the last accepted bundle, so that a
// rolled-back bundle is refused after a restart too.
type State struct {
	Serial  uint64    `json:"serial"`
	Digest  string    `json:"digest"` // hex SHA-256 of its MANIFEST
	Expires time.Time `json:"expires"`
}

// LoadState reads the state file. A missing file is the zero State (no
// bundle accepted yet); an unreadable or malformed one is an error, which
// the gateway should not take for "no bundle yet".
func LoadState(path string) (State, error) {
	var st State
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("bundle: state: %w", err)
	}
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("bundle: state %s: %w", path, err)
	}
	return st, nil
}

// SaveState writes the state file atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func SaveState(path string, st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle: state: %w", err)
	}
	return writeFileAtomic(path, append(data, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("bundle: write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("bundle: sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return fmt.Errorf("bundle: sync %s: %w", dir, derr)
		}
	}
	return nil
}
