package sshlink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The tests drive the real OpenSSH client (CI installs openssh-client).

func requireOpenSSH(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
}

type refusal struct {
	src    netip.AddrPort
	party  string
	what   string
	reason string
}

type event struct {
	kind, party, detail string
}

// fakeBackend enrolls keys and certificate principals, knows two targets,
// and records every call. Its terminator echoes bytes back.
type fakeBackend struct {
	mu       sync.Mutex
	keys     map[string]string // marshalled public key -> party
	certs    map[string]string // certificate principal -> party
	targets  map[string]uint32
	admit    func(id Identity, target string) Admission
	refused  []refusal
	events   []event
	serves   []string
	execs    [][]string
	admitted int
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		keys:    map[string]string{},
		certs:   map[string]string{},
		targets: map[string]uint32{"feeder-plc": 502, "line-opc": 4840},
	}
}

func (f *fakeBackend) enrollKey(t *testing.T, pubFile, party string) {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.keys[string(k.Marshal())] = party
	f.mu.Unlock()
}

func (f *fakeBackend) enrollCert(principal, party string) {
	f.mu.Lock()
	f.certs[principal] = party
	f.mu.Unlock()
}

func (f *fakeBackend) setAdmit(a func(Identity, string) Admission) {
	f.mu.Lock()
	f.admit = a
	f.mu.Unlock()
}

func (f *fakeBackend) execCalls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

func (f *fakeBackend) Identify(user string, key ssh.PublicKey, cert *ssh.Certificate) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cert != nil {
		p, ok := f.certs[user]
		return p, ok
	}
	p, ok := f.keys[string(key.Marshal())]
	return p, ok
}

func (f *fakeBackend) TargetPort(name string) (uint32, bool) {
	p, ok := f.targets[name]
	return p, ok
}

func (f *fakeBackend) Admit(ctx context.Context, id Identity, target string) Admission {
	f.mu.Lock()
	f.admitted++
	admit := f.admit
	f.mu.Unlock()
	if admit == nil {
		return Admission{Verdict: Allow}
	}
	return admit(id, target)
}

func (f *fakeBackend) Serve(ctx context.Context, id Identity, target string, ch io.ReadWriteCloser) {
	f.mu.Lock()
	f.serves = append(f.serves, id.Party+"->"+target)
	f.mu.Unlock()
	io.Copy(ch, ch)
}

func (f *fakeBackend) Exec(ctx context.Context, id Identity, argv []string, out io.Writer) int {
	f.mu.Lock()
	f.execs = append(f.execs, argv)
	f.mu.Unlock()
	switch argv[0] {
	case "request":
		if len(argv) < 2 {
			fmt.Fprintln(out, "request: name a target")
			return 2
		}
		fmt.Fprintf(out, "request R-0001 for %s created (%s); an engineer must approve it.\n", argv[1], strings.Join(argv[2:], " "))
		fmt.Fprintln(out, "Next: wait for approval, then forward with ssh -N -L.")
		return 0
	case "status":
		fmt.Fprintf(out, "party %s: request R-0001 pending\n", id.Party)
		return 0
	}
	return 1
}

func (f *fakeBackend) Refused(src netip.AddrPort, id *Identity, what, reason string) {
	r := refusal{src: src, what: what, reason: reason}
	if id != nil {
		r.party = id.Party
	}
	f.mu.Lock()
	f.refused = append(f.refused, r)
	f.mu.Unlock()
}

func (f *fakeBackend) Event(kind string, id Identity, detail string) {
	f.mu.Lock()
	f.events = append(f.events, event{kind, id.Party, detail})
	f.mu.Unlock()
}

func (f *fakeBackend) refusals() []refusal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.refused)
}

func (f *fakeBackend) serveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.serves)
}

func (f *fakeBackend) hasEvent(kind, detailPart string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.kind == kind && strings.Contains(e.detail, detailPart) {
			return true
		}
	}
	return false
}

// findRefusal waits briefly for a refusal whose what and reason contain the
// given parts and that carries the client's source address.
func (f *fakeBackend) findRefusal(t *testing.T, what, reasonPart string) refusal {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, r := range f.refusals() {
			if strings.Contains(r.what, what) && strings.Contains(r.reason, reasonPart) {
				if !r.src.IsValid() || !r.src.Addr().IsLoopback() || r.src.Port() == 0 {
					t.Errorf("refusal %q has no source address: %v", r.what, r.src)
				}
				if r.reason == "" {
					t.Errorf("refusal %q has no reason", r.what)
				}
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal %q with reason containing %q; got %+v", what, reasonPart, f.refusals())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// env is one running endpoint with a vendor key enrolled for party acme.
type env struct {
	t    *testing.T
	dir  string
	b    *fakeBackend
	srv  *Server
	port string
	key  string // enrolled private key file (party acme)
	ca   string // trusted CA private key file
}

func start(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	requireOpenSSH(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, b: newFakeBackend()}
	e.key = keygen(t, dir, "vendor")
	e.b.enrollKey(t, e.key+".pub", "acme")
	e.ca = keygen(t, dir, "ca")
	cfg := Config{
		Listen:         "127.0.0.1:0",
		HostKey:        filepath.Join(dir, "state", "ssh_host_ed25519_key"),
		TrustedUserCAs: []string{e.ca + ".pub"},
		IdleTimeout:    "1m",
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, e.b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, e.port, _ = net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return e
}

func keygen(t *testing.T, dir, name string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", f)
	return f
}

// signCert makes KEY-cert.pub with ssh-keygen -s and returns its path.
func signCert(t *testing.T, ca, key, id, principals, validity string, opts ...string) string {
	t.Helper()
	args := []string{"-q", "-s", ca, "-I", id, "-n", principals, "-z", "42", "-V", validity}
	for _, o := range opts {
		args = append(args, "-O", o)
	}
	run(t, "ssh-keygen", append(args, key+".pub")...)
	return key + "-cert.pub"
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sshArgs are the options every client run uses, then extra, then
// user@127.0.0.1 and the remote command.
func (e *env) sshArgs(key, user string, extra []string, command ...string) []string {
	args := []string{
		"-F", "/dev/null",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=5",
		"-o", "ServerAliveInterval=0",
		"-p", e.port,
		"-i", key,
	}
	args = append(args, extra...)
	args = append(args, user+"@127.0.0.1")
	return append(args, command...)
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

func sshEnv(dir string, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, extra...)
}

// ssh runs the OpenSSH client to completion (at most 15 s).
func (e *env) ssh(key, user string, extra []string, command ...string) result {
	return e.sshEnv(nil, key, user, extra, command...)
}

func (e *env) sshEnv(environ []string, key, user string, extra []string, command ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", e.sshArgs(key, user, extra, command...)...)
	cmd.Env = sshEnv(e.dir, environ...)
	cmd.Stdin = strings.NewReader("")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	t0 := time.Now()
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String(), took: time.Since(t0)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		e.t.Fatalf("ssh: %v", err)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("ssh did not finish in time: %s", r)
	}
	return r
}

// forward is a running `ssh -N -L` client.
type forward struct {
	cmd     *exec.Cmd
	network string // where ssh listens locally: "unix" or "tcp"
	local   string
	stderr  *syncBuffer
	done    chan struct{} // closed when ssh has exited
	err     error         // its exit, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// localPort picks a TCP port for ssh -L that is free now, below the
// ephemeral range, so that no outgoing connection takes it meanwhile.
func localPort(t *testing.T) string {
	t.Helper()
	for range 100 {
		p := strconv.Itoa(20000 + rand.IntN(12000))
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free local port")
	return ""
}

// startForward runs ssh -N -L SOCKET:dest in the background, with the local
// end on a Unix socket (no port races between parallel tests), and stops it
// at the end of the test.
func (e *env) startForward(key, user, dest string, extra ...string) *forward {
	e.t.Helper()
	dir, err := os.MkdirTemp("", "brana-ssh")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { os.RemoveAll(dir) })
	return e.runForward("unix", filepath.Join(dir, "l.sock"), key, user, dest, extra...)
}

// startForwardTCP is startForward exactly as a vendor runs it:
// ssh -N -L 127.0.0.1:PORT:dest.
func (e *env) startForwardTCP(key, user, dest string, extra ...string) *forward {
	e.t.Helper()
	return e.runForward("tcp", "127.0.0.1:"+localPort(e.t), key, user, dest, extra...)
}

func (e *env) runForward(network, local, key, user, dest string, extra ...string) *forward {
	e.t.Helper()
	f := &forward{network: network, local: local, stderr: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"-N", "-o", "ExitOnForwardFailure=yes", "-L", local + ":" + dest}, extra...)
	f.cmd = exec.Command("ssh", e.sshArgs(key, user, args)...)
	f.cmd.Env = sshEnv(e.dir)
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		f.err = f.cmd.Wait()
		close(f.done)
	}()
	e.t.Cleanup(f.stop)
	return f
}

func (f *forward) stop() {
	f.cmd.Process.Kill()
	<-f.done
}

// dial connects to the forward's local port once ssh listens on it.
func (f *forward) dial(t *testing.T) net.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial(f.network, f.local)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		select {
		case <-f.done:
			t.Fatalf("ssh -L exited: %v\n%s", f.err, f.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh -L not listening on %s: %v\n%s", f.local, err, f.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange writes msg and expects the echo back within d.
func exchange(t *testing.T, c net.Conn, msg string, d time.Duration) {
	t.Helper()
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
	c.SetDeadline(time.Time{})
}

// expectClosed expects the forwarded connection to be closed by ssh (the
// channel was refused) within d, with no byte coming back.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetDeadline(time.Now().Add(d))
	io.WriteString(c, "ping")
	n, err := c.Read(make([]byte, 16))
	if n > 0 || err == nil {
		t.Fatalf("forwarded connection got %d bytes (%v), want it closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("forwarded connection still open after %s", d)
	}
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) noServe() {
	e.t.Helper()
	if n := e.b.serveCount(); n != 0 {
		e.t.Fatalf("Serve was called %d times; nothing may reach the PLC", n)
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
