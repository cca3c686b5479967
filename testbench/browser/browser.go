package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that lib.js reads.
const (
	EnvChromium    = "BRANA_CHROMIUM"    // the browser; default [Chromium]
	EnvScreenshots = "BRANA_SCREENSHOTS" // directory for screenshots
	EnvTimeoutMS   = "BRANA_TIMEOUT_MS"  // default timeout of page actions
)

// Chromium is Debian's chromium, the only browser the tests use.
const Chromium = "/usr/bin/chromium"

// Dir is the directory holding lib.js and node_modules.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func chromiumPath() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	return Chromium
}

// Available reports why the browser tests cannot run here, or nil.
func Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not installed: %w", err)
	}
	if fi, err := os.Stat(chromiumPath()); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s not installed (run scripts/install-test-deps)", chromiumPath())
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "playwright-core", "package.json")); err != nil {
		return fmt.Errorf("playwright-core not installed (run scripts/install-test-deps): %w", err)
	}
	return nil
}

// Require skips t when the browser tests cannot run, or fails it when the
// environment variable CI is set.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium, node and playwright-core are required in CI: %v", err)
		}
		t.Skip(err)
	}
}

// Versions names the browser and playwright-core in use, for test logs.
func Versions(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, chromiumPath(), "--version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil {
		v = fmt.Sprintf("%s: %v", chromiumPath(), err)
	}
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(Dir(), "node_modules", "playwright-core", "package.json")); err == nil {
		json.Unmarshal(b, &pkg)
	}
	return fmt.Sprintf("%s, playwright-core %s", v, pkg.Version)
}

// Run runs `node script` in [Dir] with env added to this process's
// environment and returns its standard output. script is a file; a relative
// name is taken from the current directory. NODE_PATH holds Dir and its
// node_modules, so a script elsewhere loads the helpers with
// require('lib.js'). A non-zero exit is an error that carries the script's
// standard error.
func Run(ctx context.Context, script string, env map[string]string) (stdout string, err error) {
	s, err := Start(ctx, script, env)
	if err != nil {
		return "", err
	}
	return s.Wait()
}

// Script is a running browser script that a test talks to: it emits JSON
// lines {"signal": NAME, ...} on stdout (lib.js emit) and reads lines on
// stdin (lib.js waitFor).
type Script struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	errb  syncBuffer
	lines chan []byte // stdout, line by line; closed at EOF

	mu  sync.Mutex
	out bytes.Buffer // every line read from lines so far

	waitOnce sync.Once
	waitErr  error
}

// Start starts script as [Run] does and returns at once.
func Start(ctx context.Context, script string, env map[string]string) (*Script, error) {
	abs, err := filepath.Abs(script)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", abs)
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+filepath.Join(Dir(), "node_modules")+string(filepath.ListSeparator)+Dir(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
	)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	setProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	s := &Script{cmd: cmd, lines: make(chan []byte, 64)}
	cmd.Stderr = &s.errb
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			s.lines <- append([]byte(nil), sc.Bytes()...)
		}
		io.Copy(io.Discard, stdout)
	}()
	return s, nil
}

// Signal is one line a script emitted with lib.js emit.
type Signal map[string]any

// String returns the field k as a string ("" when missing).
func (s Signal) String(k string) string {
	v, _ := s[k].(string)
	return v
}

// Await reads the script's output until it emits the signal name and returns
// it. It fails when the script ends first or ctx is done.
func (s *Script) Await(ctx context.Context, name string) (Signal, error) {
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				_, err := s.Wait()
				if err == nil {
					err = errors.New("script exited")
				}
				return nil, fmt.Errorf("waiting for %q: %w", name, err)
			}
			s.mu.Lock()
			s.out.Write(line)
			s.out.WriteByte('\n')
			s.mu.Unlock()
			var sig Signal
			if len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &sig) == nil && sig.String("signal") == name {
				return sig, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q: %w\n%s", name, ctx.Err(), s.errb.String())
		}
	}
}

// Send writes line to the script's standard input (lib.js waitFor).
func (s *Script) Send(line string) error {
	_, err := io.WriteString(s.stdin, line+"\n")
	return err
}

// Wait closes the script's standard input, waits for it to exit and returns
// its whole standard output.
func (s *Script) Wait() (stdout string, err error) {
	s.waitOnce.Do(func() {
		s.stdin.Close()
		for line := range s.lines {
			s.mu.Lock()
			s.out.Write(line)
			s.out.WriteByte('\n')
			s.mu.Unlock()
		}
		if err := s.cmd.Wait(); err != nil {
			s.waitErr = fmt.Errorf("node %s: %w\n%s", filepath.Base(s.cmd.Args[1]), err, s.errb.String())
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String(), s.waitErr
}

// Stderr is what the script has written to standard error so far.
func (s *Script) Stderr() string { return s.errb.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
