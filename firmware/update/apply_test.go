package update

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// install lays out a current executable the two ways Apply knows: a
// symbolic link brana -> brana-1.2.0, or the file brana itself.
func install(t *testing.T, layout string) (dir, exe string) {
	t.Helper()
	dir = t.TempDir()
	exe = filepath.Join(dir, "brana")
	switch layout {
	case "symlink":
		if err := os.WriteFile(filepath.Join(dir, "brana-1.2.0"), []byte("old brana"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("brana-1.2.0", exe); err != nil {
			t.Fatal(err)
		}
	case "file":
		if err := os.WriteFile(exe, []byte("old brana"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, exe
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApply(t *testing.T) {
	now := time.Now()
	c := newChain(t, now.AddDate(1, 0, 0))
	bundle := c.build(t, "new brana", "1.3.0", "amd64", now.AddDate(0, 3, 0))
	for _, layout := range []string{"symlink", "file"} {
		t.Run("ok/"+layout, func(t *testing.T) {
			dir, exe := install(t, layout)
			state := filepath.Join(dir, "update-state")
			var checked string
			rel, err := Apply(context.Background(), bundle, ApplyOptions{
				Verify: VerifyOptions{Roots: c.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "amd64"},
				Exe:    exe, State: state,
				HealthCheck: func(_ context.Context, _ *Release, newExe string) error {
					// The switch has happened before the check runs.
					checked = newExe + ":" + content(t, exe)
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			newExe := filepath.Join(dir, "brana-1.3.0")
			if rel.Version != "1.3.0" || checked != newExe+":new brana" {
				t.Fatalf("release %s, health check saw %q", rel.Version, checked)
			}
			if got := content(t, exe); got != "new brana" {
				t.Fatalf("%s holds %q after the update", exe, got)
			}
			if got := content(t, filepath.Join(dir, "brana.previous")); got != "old brana" {
				t.Fatalf("brana.previous holds %q", got)
			}
			st, _ := os.Stat(newExe)
			if st.Mode().Perm() != 0o755 {
				t.Fatalf("new executable mode %v", st.Mode().Perm())
			}
			if layout == "symlink" {
				if target, _ := os.Readlink(exe); target != "brana-1.3.0" {
					t.Fatalf("link points at %q", target)
				}
			}
			if floor, err := ReadState(state); err != nil || floor != "1.3.0" {
				t.Fatalf("floor %q, %v", floor, err)
			}
			noTempFiles(t, dir)
			// The same bundle again is a rollback now, by the running
			// version and by the floor alike.
			_, err = Apply(context.Background(), bundle, ApplyOptions{
				Verify: VerifyOptions{Roots: c.roots(), Current: "dev", GOOS: "linux", GOARCH: "amd64"},
				Exe:    exe, State: state, HealthCheck: func(context.Context, *Release, string) error { return nil },
			})
			if !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "installed before is 1.3.0") {
				t.Fatalf("re-apply: %v; want refused by the floor", err)
			}
		})
		t.Run("fail/health-check-rolls-back/"+layout, func(t *testing.T) {
			dir, exe := install(t, layout)
			state := filepath.Join(dir, "update-state")
			if err := WriteState(state, "1.2.0"); err != nil {
				t.Fatal(err)
			}
			restarted := false
			_, err := Apply(context.Background(), bundle, ApplyOptions{
				Verify: VerifyOptions{Roots: c.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "amd64"},
				Exe:    exe, State: state,
				HealthCheck: func(context.Context, *Release, string) error { return errors.New("gateway did not come up") },
				OnRollback: func(context.Context) error {
					restarted = content(t, exe) == "old brana"
					return nil
				},
			})
			if !errors.Is(err, ErrHealth) {
				t.Fatalf("err %v; want ErrHealth", err)
			}
			for _, want := range []string{"health check failed for brana 1.3.0", "gateway did not come up", "rolled back"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q; want it to say %q", err, want)
				}
			}
			if got := content(t, exe); got != "old brana" {
				t.Fatalf("%s holds %q after the rollback", exe, got)
			}
			if !restarted {
				t.Fatal("OnRollback did not run with the old executable in place")
			}
			if layout == "symlink" {
				if target, _ := os.Readlink(exe); target != "brana-1.2.0" {
					t.Fatalf("link points at %q", target)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "brana-1.3.0")); !os.IsNotExist(err) {
				t.Fatalf("the failed executable is left behind: %v", err)
			}
			if floor, _ := ReadState(state); floor != "1.2.0" {
				t.Fatalf("floor raised to %q by a failed update", floor)
			}
			noTempFiles(t, dir)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	now := time.Now()
	c := newChain(t, now.AddDate(1, 0, 0))
	bundle := c.build(t, "new brana", "1.3.0", "amd64", now.AddDate(0, 3, 0))
	tests := []struct {
		name  string
		state string
		err   error
		msg   string
	}{
		{"fail/state-floor", "brana update state v1\nfloor 1.5.0\n", ErrRollback, "bundle has 1.3.0, installed before is 1.5.0"},
		{"fail/state-garbled", "floor: 1.5.0\n", ErrState, "unreadable state file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, exe := install(t, "symlink")
			state := filepath.Join(dir, "update-state")
			os.WriteFile(state, []byte(tt.state), 0o644)
			ran := false
			_, err := Apply(context.Background(), bundle, ApplyOptions{
				Verify: VerifyOptions{Roots: c.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "amd64"},
				Exe:    exe, State: state,
				HealthCheck: func(context.Context, *Release, string) error { ran = true; return nil },
			})
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v; want %v with %q", err, tt.err, tt.msg)
			}
			if ran || content(t, exe) != "old brana" {
				t.Fatal("a refused bundle was installed")
			}
			if _, err := os.Stat(filepath.Join(dir, "brana-1.3.0")); !os.IsNotExist(err) {
				t.Fatal("a refused bundle was written")
			}
		})
	}
}

// Exe names a complete executable at every moment of a switch and a
// rollback: a reader that opens it in a loop never finds it missing or
// holding anything but the old or the new content.
func TestSwitchIsAtomic(t *testing.T) {
	for _, layout := range []string{"symlink", "file"} {
		t.Run(layout, func(t *testing.T) {
			dir, exe := install(t, layout)
			in, err := prepare(exe, &Release{Version: "1.3.0", Binary: []byte("new brana")})
			if err != nil {
				t.Fatal(err)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			var reads atomic.Int64
			errs := make(chan error, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					b, err := os.ReadFile(exe)
					if err == nil && string(b) != "old brana" && string(b) != "new brana" {
						err = errors.New("torn content " + string(b))
					}
					if err != nil {
						errs <- err
						return
					}
					reads.Add(1)
				}
			}()
			if err := in.stage(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 200 && len(errs) == 0; i++ {
				if err := in.switchNew(); err != nil {
					t.Fatal(err)
				}
				if err := in.rollback(); err != nil {
					t.Fatal(err)
				}
			}
			stop.Store(true)
			wg.Wait()
			select {
			case err := <-errs:
				t.Fatalf("reader saw: %v", err)
			default:
			}
			if reads.Load() == 0 {
				t.Fatal("the reader never ran")
			}
			if got := content(t, exe); got != "old brana" {
				t.Fatalf("after the last rollback %s holds %q", exe, got)
			}
			noTempFiles(t, dir)
		})
	}
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "update-state")
	if v, err := ReadState(path); err != nil || v != "" {
		t.Fatalf("missing state: %q %v", v, err)
	}
	if err := WriteState(path, "1.2.3-rc.1"); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadState(path); err != nil || v != "1.2.3-rc.1" {
		t.Fatalf("state %q %v", v, err)
	}
	if err := WriteState(path, "1.2\nfloor 9.9.9"); err == nil {
		t.Fatal("bad version written")
	}
	for _, bad := range []string{"", "brana update state v1\nfloor 1.2.3", "brana update state v1\nfloor 1.2.3\nfloor 1.2.4\n", "brana update state v1\nfloor dev\n"} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := ReadState(path); !errors.Is(err, ErrState) {
			t.Errorf("ReadState(%q) = %v; want ErrState", bad, err)
		}
	}
}

// An interrupt during the health check rolls back, and the previous
// executable is still put back into service.
func TestApplyInterrupted(t *testing.T) {
	now := time.Now()
	c := newChain(t, now.AddDate(1, 0, 0))
	bundle := c.build(t, "new brana", "1.3.0", "amd64", now.AddDate(0, 3, 0))
	_, exe := install(t, "file")
	ctx, cancel := context.WithCancel(context.Background())
	var rollbackCtx error = errors.New("OnRollback did not run")
	_, err := Apply(ctx, bundle, ApplyOptions{
		Verify: VerifyOptions{Roots: c.roots(), Current: "1.2.0", GOOS: "linux", GOARCH: "amd64"},
		Exe:    exe,
		HealthCheck: func(ctx context.Context, _ *Release, _ string) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		},
		OnRollback: func(ctx context.Context) error { rollbackCtx = ctx.Err(); return nil },
	})
	if !errors.Is(err, ErrHealth) || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err %v", err)
	}
	if rollbackCtx != nil || content(t, exe) != "old brana" {
		t.Fatalf("rollback: ctx %v, %s holds %q", rollbackCtx, exe, content(t, exe))
	}
}
