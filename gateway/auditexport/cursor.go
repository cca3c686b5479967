package auditexport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// cursor is an exporter's position: the seq of the last record delivered and
// the SHA-256 of its line, so that a restart can tell whether the log still
// holds that record as it was sent (it may not, after a power cut lost an
// unsynced tail that the SIEM had already received).
type cursor struct {
	seq     uint64
	hash    [32]byte
	hasHash bool
}

// CursorPath is where the exporter name keeps its cursor in the audit directory.
func CursorPath(auditDir, name string) string {
	return filepath.Join(auditDir, "export-"+name+".cursor")
}

// The file is one line: "SEQ SHA256HEX\n". An operator may write "SEQ\n" by
// hand to move an exporter; removing the file exports the log from its start.
func loadCursor(path string) (cursor, error) {
	var c cursor
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("auditexport: reading cursor: %w", err)
	}
	f := bytes.Fields(data)
	if len(f) == 0 || len(f) > 2 {
		return c, fmt.Errorf("auditexport: cursor %s is not \"SEQ [HASH]\"; fix or remove it", path)
	}
	if c.seq, err = strconv.ParseUint(string(f[0]), 10, 64); err != nil {
		return c, fmt.Errorf("auditexport: cursor %s: seq %q is not a number; fix or remove it", path, f[0])
	}
	if len(f) == 2 {
		if n, err := hex.Decode(c.hash[:], f[1]); err != nil || n != 32 {
			return c, fmt.Errorf("auditexport: cursor %s: %q is not a SHA-256 in hex; fix or remove it", path, f[1])
		}
		c.hasHash = true
	}
	return c, nil
}

// saveCursor replaces the cursor file: temp file, fsync, rename, fsync dir.
func saveCursor(path string, c cursor) error {
	b := strconv.AppendUint(nil, c.seq, 10)
	if c.hasHash {
		b = append(b, ' ')
		b = hex.AppendEncode(b, c.hash[:])
	}
	b = append(b, '\n')
	if err := atomicfile.WriteFile(path, b, 0o640); err != nil {
		return fmt.Errorf("auditexport: writing cursor: %w", err)
	}
	return nil
}

// lock takes DIR/export-NAME.lock so that two processes never move one cursor.
func lock(auditDir, name string) (release func(), err error) {
	path := filepath.Join(auditDir, "export-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("auditexport: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %q holds %s", ErrBusy, name, path)
		}
		return nil, fmt.Errorf("auditexport: locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
