package main

// The update commands install signed release bundles of brana itself
// (firmware/update) and make them: keys, signing-key certificates and
// bundles. main.go's switch in run() routes "update" here.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/brana-ot/brana/firmware/update"
	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
)

const updateUsage = `usage:
  brana update apply [-c FILE] [-exe PATH] [-restart CMD] [-wait 2m] BUNDLE
        verify BUNDLE, install it beside the current executable, switch, check
        the new one (version, check -c FILE; with -restart: run CMD and wait for
        the gateway to report the new version) and switch back if that fails
  brana update verify [-c FILE] [-root PUBFILE] [-platform OS/ARCH] BUNDLE
        check a bundle as apply would, without installing it
  brana update keygen -out PREFIX
        write PREFIX.key (private, keep offline) and PREFIX.pub; root and
        signing keys are made the same way
  brana update certify -root ROOTKEY -signing PUBFILE -name NAME -not-after DATE [-o FILE]
        certify a signing key with a root key
  brana update build -key KEY -cert CERT -version V -os OS -arch ARCH -binary FILE -expires DATE -o BUNDLE
        make a bundle signed with a certified signing key
DATE is YYYY-MM-DD (UTC) or an RFC 3339 time. Details: docs/UPDATE.md.
`

// updateRoots are the root keys apply and verify trust; nil means the ones
// compiled into firmware/update. Tests set their own.
var updateRoots []ed25519.PublicKey

func cmdUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, updateUsage)
		return exitUsage
	}
	switch args[0] {
	case "apply":
		return cmdUpdateApply(ctx, args[1:], stdout, stderr)
	case "verify":
		return cmdUpdateVerify(args[1:], stdout, stderr)
	case "keygen":
		return cmdUpdateKeygen(args[1:], stdout, stderr)
	case "certify":
		return cmdUpdateCertify(args[1:], stdout, stderr)
	case "build":
		return cmdUpdateBuild(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, updateUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "brana update: unknown command %q\n%s", args[0], updateUsage)
	return exitUsage
}

// oneArg parses flags around a single positional argument.
func oneArg(name string, fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return "", false
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "brana update %s: want one bundle file\n%s", name, updateUsage)
		return "", false
	}
	return pos[0], true
}

// readBundle reads a bundle file, refusing one too large to be a bundle
// before reading it into memory.
func readBundle(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > update.MaxBinary+1<<20 {
		return nil, fmt.Errorf("%s: %d bytes is larger than any bundle", path, st.Size())
	}
	return io.ReadAll(f)
}

// stateFile is where the version floor is kept: the gateway's data folder.
func stateFile(cfg *config.Config) string {
	return filepath.Join(gateway.DataDir(cfg), "update-state")
}

// adminSocket is the admin API socket the gateway opens for cfg.
func adminSocket(cfg *config.Config) string {
	sock := cfg.Admin.Socket
	if sock == "" {
		return filepath.Join(gateway.DataDir(cfg), "admin.sock")
	}
	if !filepath.IsAbs(sock) {
		return filepath.Join(gateway.DataDir(cfg), sock)
	}
	return sock
}

// currentExe is the path brana was started by, not resolved through
// symbolic links, since the link is what an update re-points.
// os.Executable resolves links on Linux, so it is only the fallback.
func currentExe() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

// cmdUpdateApply runs under ctx, which an interrupt cancels: the health
// check then fails and the switch is undone, rather than the process dying
// between switch and verdict.
func cmdUpdateApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update apply", stderr)
	file := fs.String("c", "/etc/brana/brana.yaml", "config file; the new executable must accept it, and the version floor is kept in its data_dir")
	exe := fs.String("exe", "", "path the service starts brana from (default: the path this brana was started by)")
	restart := fs.String("restart", "", "shell command that restarts the service, e.g. \"systemctl restart brana\"; run after the switch and again after a rollback")
	wait := fs.Duration("wait", 2*time.Minute, "with -restart: how long the restarted gateway has to report the new version on its admin socket")
	path, ok := oneArg("apply", fs, args, stderr)
	if !ok {
		return exitUsage
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, "brana update apply:", err)
		return exitFailed
	}
	if *exe == "" {
		if *exe, err = currentExe(); err != nil {
			fmt.Fprintln(stderr, "brana update apply: cannot tell where this brana runs from; give -exe:", err)
			return exitFailed
		}
	}
	bundle, err := readBundle(path)
	if err != nil {
		fmt.Fprintln(stderr, "brana update apply:", err)
		return exitFailed
	}
	h := &healthCheck{config: *file, restart: *restart, socket: adminSocket(cfg), wait: *wait}
	opts := update.ApplyOptions{
		Verify:      update.VerifyOptions{Roots: updateRoots, Current: gateway.Version},
		Exe:         *exe,
		State:       stateFile(cfg),
		HealthCheck: h.check,
		Log:         logger(stderr, "info"),
	}
	if *restart != "" {
		opts.OnRollback = h.runRestart
	}
	rel, err := update.Apply(ctx, bundle, opts)
	if err != nil {
		fmt.Fprintf(stderr, "brana update apply: %s: %v\n", path, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "installed brana %s (sha256 %s) at %s; the previous executable is kept as %s.previous\n",
		rel.Version, hex.EncodeToString(rel.SHA256[:]), *exe, filepath.Base(*exe))
	if *restart == "" {
		fmt.Fprintln(stdout, "the running gateway is still the old version until the service restarts")
	}
	return exitOK
}

// healthCheck is what apply runs against a new executable after the
// switch: it must run here and name the version it was bundled as, accept
// the config, and, if the service is restarted, come up as that version
// with a working audit log.
type healthCheck struct {
	config, restart, socket string
	wait                    time.Duration
}

func (h *healthCheck) check(ctx context.Context, rel *update.Release, exe string) error {
	out, err := runFor(ctx, 30*time.Second, exe, "version")
	if err != nil {
		return fmt.Errorf("%s version: %v: %s", exe, err, clipOutput(out))
	}
	if f := strings.Fields(out); len(f) < 2 || f[0] != "brana" || !sameVersion(f[1], rel.Version) {
		return fmt.Errorf("%s version said %q; want brana %s", exe, clipOutput(out), rel.Version)
	}
	if out, err := runFor(ctx, time.Minute, exe, "check", "-c", h.config); err != nil {
		return fmt.Errorf("%s check -c %s: %v: %s", exe, h.config, err, clipOutput(out))
	}
	if h.restart == "" {
		return nil
	}
	if err := h.runRestart(ctx); err != nil {
		return err
	}
	return h.awaitGateway(ctx, rel.Version)
}

func sameVersion(a, b string) bool {
	c, ok := update.CompareVersions(a, b)
	return ok && c == 0
}

func (h *healthCheck) runRestart(ctx context.Context) error {
	if out, err := runFor(ctx, 2*time.Minute, "/bin/sh", "-c", h.restart); err != nil {
		return fmt.Errorf("restart command %q: %v: %s", h.restart, err, clipOutput(out))
	}
	return nil
}

// awaitGateway polls the admin API's health endpoint until the gateway
// reports version v with no audit log error, or the wait is over.
func (h *healthCheck) awaitGateway(ctx context.Context, v string) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", h.socket)
		},
	}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(h.wait)
	last := "no answer yet"
	for {
		seen, err := gatewayHealth(ctx, hc)
		switch {
		case err != nil:
			last = err.Error()
		case !sameVersion(seen.Gateway.Version, v):
			last = fmt.Sprintf("the gateway reports version %q", seen.Gateway.Version)
		case seen.Gateway.Audit.Err != "":
			last = "the audit log reports: " + seen.Gateway.Audit.Err
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway on %s did not come up as brana %s within %s: %s", h.socket, v, h.wait, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

type healthAnswer struct {
	Gateway struct {
		Version string
		Audit   struct{ Err string }
	}
}

func gatewayHealth(ctx context.Context, hc *http.Client) (*healthAnswer, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://brana/v1/health", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var a healthAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("health answer: %v", err)
	}
	return &a, nil
}

// runFor runs a command with a time limit and returns its combined output.
func runFor(ctx context.Context, limit time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// clipOutput keeps an error message to the last few lines a command wrote.
func clipOutput(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}

func cmdUpdateVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update verify", stderr)
	file := fs.String("c", "", "config file whose data_dir holds the version floor (default: no floor but the running version)")
	rootFile := fs.String("root", "", "trust this root public key instead of the compiled-in ones")
	platform := fs.String("platform", runtime.GOOS+"/"+runtime.GOARCH, "platform the bundle must be for")
	path, ok := oneArg("verify", fs, args, stderr)
	if !ok {
		return exitUsage
	}
	goos, goarch, ok := strings.Cut(*platform, "/")
	if !ok {
		fmt.Fprintf(stderr, "brana update verify: -platform %q: want OS/ARCH, e.g. linux/arm64\n", *platform)
		return exitUsage
	}
	opts := update.VerifyOptions{Roots: updateRoots, Current: gateway.Version, GOOS: goos, GOARCH: goarch}
	if *rootFile != "" {
		k, err := readPublicKey(*rootFile)
		if err != nil {
			fmt.Fprintln(stderr, "brana update verify:", err)
			return exitFailed
		}
		opts.Roots = []ed25519.PublicKey{k}
	}
	if *file != "" {
		cfg, err := config.Load(*file)
		if err == nil {
			opts.Floor, err = update.ReadState(stateFile(cfg))
		}
		if err != nil {
			fmt.Fprintln(stderr, "brana update verify:", err)
			return exitFailed
		}
	}
	bundle, err := readBundle(path)
	if err != nil {
		fmt.Fprintln(stderr, "brana update verify:", err)
		return exitFailed
	}
	rel, err := update.Verify(bundle, opts)
	if err != nil {
		fmt.Fprintf(stdout, "%s: REJECTED: %v\n", path, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: OK: brana %s for %s/%s, %d bytes, sha256 %s, created %s, expires %s; signed by %q (certified until %s)\n",
		path, rel.Version, rel.GOOS, rel.GOARCH, len(rel.Binary), hex.EncodeToString(rel.SHA256[:]),
		rel.Created.Format(time.RFC3339), rel.Expires.Format(time.RFC3339), rel.SigningKey, rel.KeyNotAfter.Format(time.RFC3339))
	return exitOK
}

func cmdUpdateKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update keygen", stderr)
	out := fs.String("out", "", "file prefix")
	if fs.Parse(args) != nil || *out == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, updateUsage)
		return exitUsage
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err == nil {
		var pem []byte
		if pem, err = update.MarshalPrivateKey(priv); err == nil {
			// O_EXCL: a key is never overwritten by mistake.
			err = writeNew(*out+".key", pem, 0o600)
		}
	}
	if err == nil {
		err = writeNew(*out+".pub", update.MarshalPublicKey(pub), 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "brana update keygen:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "private key %s.key (keep it offline), public key %s.pub: %s", *out, *out, update.MarshalPublicKey(pub))
	return exitOK
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := update.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := update.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// parseDate reads YYYY-MM-DD (midnight UTC) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not YYYY-MM-DD or an RFC 3339 time", s)
}

func writeOut(path string, data []byte, stdout io.Writer) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func cmdUpdateCertify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update certify", stderr)
	rootFile := fs.String("root", "", "root private key file")
	signing := fs.String("signing", "", "signing public key file")
	name := fs.String("name", "", "name of the signing key, e.g. release-2026")
	notAfter := fs.String("not-after", "", "end of the certificate's validity")
	out := fs.String("o", "", "certificate file (default: standard output)")
	if fs.Parse(args) != nil || fs.NArg() != 0 || *rootFile == "" || *signing == "" || *name == "" || *notAfter == "" {
		fmt.Fprint(stderr, updateUsage)
		return exitUsage
	}
	until, err := parseDate(*notAfter)
	if err != nil {
		fmt.Fprintln(stderr, "brana update certify: -not-after:", err)
		return exitUsage
	}
	root, err := readPrivateKey(*rootFile)
	var pub ed25519.PublicKey
	if err == nil {
		pub, err = readPublicKey(*signing)
	}
	var cert []byte
	if err == nil {
		cert, err = update.Certify(root, pub, *name, until)
	}
	if err == nil {
		err = writeOut(*out, cert, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "brana update certify:", err)
		return exitFailed
	}
	return exitOK
}

func cmdUpdateBuild(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("update build", stderr)
	keyFile := fs.String("key", "", "signing private key file")
	certFile := fs.String("cert", "", "the signing key's certificate")
	version := fs.String("version", "", "release version, e.g. 1.4.0; the executable must say the same in `brana version`")
	goos := fs.String("os", "", "GOOS the executable is built for")
	goarch := fs.String("arch", "", "GOARCH the executable is built for")
	binary := fs.String("binary", "", "the executable")
	expires := fs.String("expires", "", "after this the bundle is refused")
	out := fs.String("o", "", "bundle file to write")
	if fs.Parse(args) != nil || fs.NArg() != 0 || *keyFile == "" || *certFile == "" || *version == "" ||
		*goos == "" || *goarch == "" || *binary == "" || *expires == "" || *out == "" {
		fmt.Fprint(stderr, updateUsage)
		return exitUsage
	}
	exp, err := parseDate(*expires)
	if err != nil {
		fmt.Fprintln(stderr, "brana update build: -expires:", err)
		return exitUsage
	}
	key, err := readPrivateKey(*keyFile)
	var cert, bin, bundle []byte
	if err == nil {
		cert, err = os.ReadFile(*certFile)
	}
	if err == nil {
		bin, err = os.ReadFile(*binary)
	}
	if err == nil {
		bundle, err = update.Build(bin, *version, *goos, *goarch, exp, key, cert)
	}
	if err == nil {
		err = os.WriteFile(*out, bundle, 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "brana update build:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: brana %s for %s/%s, %d bytes, expires %s\n", *out, *version, *goos, *goarch, len(bin), exp.UTC().Format(time.RFC3339))
	return exitOK
}
