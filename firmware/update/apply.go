package update

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// ApplyOptions say what Apply installs over and how it checks the result.
type ApplyOptions struct {
	Verify VerifyOptions
	// Exe is the path the service starts brana from: either a symbolic
	// link to a versioned executable (brana -> brana-1.3.0), which is then
	// re-pointed, or the executable itself, which is then replaced.
	Exe string
	// State is the state file holding the version floor; empty for none.
	// Apply fills Verify.Floor from it.
	State string
	// HealthCheck runs after the switch with the release and the path of
	// the new executable. If the service is to run the new version before it
	// counts as healthy, HealthCheck restarts it. An error rolls back.
	HealthCheck func(ctx context.Context, rel *Release, newExe string) error
	// OnRollback, if set, runs after switching back, to put the previous
	// executable into service again (a restart of the service).
	OnRollback func(ctx context.Context) error
	Log        *slog.Logger
}

// Apply verifies bundle and installs it: the new executable is written
// beside the current one as NAME-VERSION (NAME being Exe's base name), the
// current one is kept as NAME.previous, and Exe is switched to the new one
// with rename(2), so that Exe names a complete executable at every moment.
// Then HealthCheck runs; if it fails, Exe is switched back the same way and
// the error says both why and that it was rolled back. Only a release that
// passed its health check raises the version floor in the state file.
func Apply(ctx context.Context, bundle []byte, opts ApplyOptions) (*Release, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Exe == "" || opts.HealthCheck == nil {
		return nil, errors.New("update: apply needs the executable's path and a health check")
	}
	if opts.State != "" {
		floor, err := ReadState(opts.State)
		if err != nil {
			return nil, err
		}
		opts.Verify.Floor = floor
	}
	rel, err := Verify(bundle, opts.Verify)
	if err != nil {
		return nil, err
	}
	log.Info("update verified", "version", rel.Version, "sha256", hex.EncodeToString(rel.SHA256[:]), "signing_key", rel.SigningKey)

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ins, err := prepare(opts.Exe, rel)
	if err != nil {
		return nil, err
	}
	if err := ins.install(); err != nil {
		os.Remove(ins.newPath)
		return nil, fmt.Errorf("update: installing brana %s: %w", rel.Version, err)
	}
	log.Info("update switched", "exe", opts.Exe, "new", ins.newPath, "previous", ins.prevPath)

	if herr := opts.HealthCheck(ctx, rel, ins.newPath); herr != nil {
		log.Error("update health check failed; rolling back", "version", rel.Version, "err", herr)
		if rerr := ins.rollback(); rerr != nil {
			return rel, fmt.Errorf("%w for brana %s: %v; ROLLBACK FAILED: %v: %s may run the new version; the previous executable is %s",
				ErrHealth, rel.Version, herr, rerr, opts.Exe, ins.prevPath)
		}
		os.Remove(ins.newPath)
		msg := fmt.Sprintf("rolled back: %s is the previous executable again", opts.Exe)
		if opts.OnRollback != nil {
			// The rollback must be put into service even when an
			// interrupt cancelled ctx and so caused it.
			if oerr := opts.OnRollback(context.WithoutCancel(ctx)); oerr != nil {
				msg += fmt.Sprintf(", but putting it back into service failed: %v", oerr)
			}
		}
		return rel, fmt.Errorf("%w for brana %s: %w; %s", ErrHealth, rel.Version, herr, msg)
	}
	if opts.State != "" {
		if err := WriteState(opts.State, rel.Version); err != nil {
			// The switch stands: the new version runs and passed. Only the
			// floor could not be raised, which the operator must hear of.
			return rel, fmt.Errorf("update: brana %s installed, but the version floor was not recorded: %w", rel.Version, err)
		}
	}
	log.Info("update installed", "version", rel.Version)
	return rel, nil
}

// installation is the plan of one switch, worked out before anything is
// written, so that rollback knows exactly what to restore.
type installation struct {
	exe      string
	link     bool   // exe is a symbolic link
	oldLink  string // its target as written, when link
	newLink  string // the target it gets, when link
	newPath  string // the new executable
	prevPath string // NAME.previous
	bin      []byte
}

func prepare(exe string, rel *Release) (*installation, error) {
	st, err := os.Lstat(exe)
	if err != nil {
		return nil, fmt.Errorf("update: current executable: %w", err)
	}
	dir, name := filepath.Split(exe)
	// rel.Version passed parseVersion, so it has no path separators.
	newName := name + "-" + rel.Version
	in := &installation{exe: exe, prevPath: filepath.Join(dir, name+".previous"), bin: rel.Binary}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		in.link = true
		if in.oldLink, err = os.Readlink(exe); err != nil {
			return nil, fmt.Errorf("update: current executable: %w", err)
		}
		// Beside the current executable, named the same way the link
		// names it (relative stays relative).
		in.newLink = filepath.Join(filepath.Dir(in.oldLink), newName)
		in.newPath = in.newLink
		if !filepath.IsAbs(in.newPath) {
			in.newPath = filepath.Join(dir, in.newPath)
		}
	case st.Mode().IsRegular():
		in.newPath = filepath.Join(dir, newName)
	default:
		return nil, fmt.Errorf("update: current executable %s is neither a file nor a symbolic link", exe)
	}
	if cur, err := os.Stat(exe); err == nil {
		if nst, err := os.Stat(in.newPath); err == nil && os.SameFile(cur, nst) {
			return nil, fmt.Errorf("update: brana %s is already the current executable %s", rel.Version, in.newPath)
		}
	}
	return in, nil
}

func (in *installation) install() error {
	if err := in.stage(); err != nil {
		return err
	}
	return in.switchNew()
}

// stage writes the new executable and keeps the current one as
// NAME.previous; Exe is not touched yet.
func (in *installation) stage() error {
	if err := writeFile(in.newPath, in.bin, 0o755); err != nil {
		return err
	}
	var err error
	if in.link {
		err = replaceSymlink(in.oldLink, in.prevPath)
	} else {
		err = replaceWithLink(in.exe, in.prevPath)
	}
	if err != nil {
		return fmt.Errorf("keeping the previous executable: %w", err)
	}
	return nil
}

// switchNew points Exe at the new executable with one rename.
func (in *installation) switchNew() error {
	if in.link {
		return replaceSymlink(in.newLink, in.exe)
	}
	return replaceWithLink(in.newPath, in.exe)
}

func (in *installation) rollback() error {
	if in.link {
		return replaceSymlink(in.oldLink, in.exe)
	}
	return replaceWithLink(in.prevPath, in.exe)
}

// tempName is a fresh name in dir for a file that is renamed into place.
func tempName(dir, base string) string {
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(dir, "."+base+".tmp"+hex.EncodeToString(b[:]))
}

// replaceSymlink makes path a symbolic link to target, atomically: a new
// link under a temporary name is renamed over path.
func replaceSymlink(target, path string) error {
	tmp := tempName(filepath.Dir(path), filepath.Base(path))
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// replaceWithLink makes path name the same content as src, atomically: a
// hard link to src (or, where the file system has none, a copy) under a
// temporary name is renamed over path.
func replaceWithLink(src, path string) error {
	// rename(2) between two names of one file does nothing and leaves the
	// temporary name behind; and there is nothing to do.
	if s, err := os.Stat(src); err == nil {
		if p, err := os.Stat(path); err == nil && os.SameFile(s, p) {
			return nil
		}
	}
	tmp := tempName(filepath.Dir(path), filepath.Base(path))
	if err := os.Link(src, tmp); err != nil {
		data, rerr := os.ReadFile(src)
		if rerr != nil {
			return rerr
		}
		st, serr := os.Stat(src)
		if serr != nil {
			return serr
		}
		if err := writeTemp(tmp, data, st.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeFile replaces path with data: temporary file, fsync, rename, fsync
// of the folder, so a power cut leaves the old file or the new one.
func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp := tempName(filepath.Dir(path), filepath.Base(path))
	if err := writeTemp(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func writeTemp(tmp string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	// The umask may have narrowed perm; an executable must stay 0755.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syncDir makes a rename in dir durable. It is best effort, as in
// gateway/atomicfile: once the rename is done the switch has happened, and
// reporting a failure then would make the caller undo a switch that stands.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

const stateHeader = "brana update state v1"

// ReadState returns the version floor recorded in the state file, or ""
// if there is no file yet. A file that exists but cannot be read is an
// error: silently losing the floor would re-open rollback.
func ReadState(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrState, err)
	}
	rest, ok := strings.CutPrefix(string(b), stateHeader+"\nfloor ")
	v, ok2 := strings.CutSuffix(rest, "\n")
	if _, ok3 := parseVersion(v); !ok || !ok2 || !ok3 || strings.Contains(v, "\n") {
		return "", fmt.Errorf("%w: %s: want %q and a line \"floor VERSION\"", ErrState, path, stateHeader)
	}
	return v, nil
}

// WriteState records v as the version floor.
func WriteState(path, v string) error {
	if _, ok := parseVersion(v); !ok {
		return fmt.Errorf("update: state: %q is not a version", v)
	}
	return writeFile(path, []byte(stateHeader+"\nfloor "+v+"\n"), 0o644)
}
