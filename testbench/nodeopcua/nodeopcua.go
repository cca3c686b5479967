package nodeopcua

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Op is one operation for client.js, e.g.
// {"op": "read", "path": "Feeder/Measurements/Voltage", "namespace": uri}.
type Op map[string]any

// Reference is one reference returned by a browse operation.
type Reference struct {
	BrowseName      string `json:"browseName"`
	BrowseNamespace int    `json:"browseNamespace"`
	NodeID          string `json:"nodeId"`
	NodeClass       string `json:"nodeClass"`
	ReferenceType   string `json:"referenceType"`
}

// Output is one output argument of a call operation.
type Output struct {
	DataType string `json:"dataType"`
	Value    any    `json:"value"`
}

// Result is what client.js printed for one operation. Values are JSON-decoded
// (numbers are float64, 64-bit integers decimal strings, ByteStrings base64,
// arrays []any).
type Result struct {
	I          int    `json:"i"`
	Op         string `json:"op"`
	Error      string `json:"error,omitempty"`
	NodeID     string `json:"nodeId,omitempty"`
	StatusCode string `json:"statusCode,omitempty"`

	DataType string `json:"dataType,omitempty"` // read
	Value    any    `json:"value,omitempty"`    // read

	// readMany, writeMany, registerNodes: one entry per item. For
	// registerNodes NodeIDs are the aliases the server returned.
	NodeIDs   []string `json:"nodeIds,omitempty"`
	DataTypes []string `json:"dataTypes,omitempty"` // readMany

	References []Reference `json:"references,omitempty"` // browse

	Outputs              []Output `json:"outputs,omitempty"`              // call
	InputArgumentResults []string `json:"inputArgumentResults,omitempty"` // call

	// Values: readMany (one per item) and subscribe (one per notification).
	Values []any `json:"values,omitempty"`
	// StatusCodes: readMany and writeMany (one per item), subscribe (the
	// distinct codes of the notifications).
	StatusCodes []string `json:"statusCodes,omitempty"`

	// subscribe
	Notifications             int      `json:"notifications,omitempty"`
	Seconds                   float64  `json:"seconds,omitempty"`
	ElapsedSeconds            float64  `json:"elapsedSeconds,omitempty"`
	RevisedPublishingInterval float64  `json:"revisedPublishingInterval,omitempty"`
	KeepAlives                int      `json:"keepAlives,omitempty"`
	LastNotificationSeconds   *float64 `json:"lastNotificationSeconds,omitempty"` // nil: no notification
	Terminated                bool     `json:"terminated,omitempty"`              // ended before Seconds were up
	StatusChanges             []string `json:"statusChanges,omitempty"`           // StatusChangeNotifications
	Errors                    []string `json:"errors,omitempty"`                  // subscription, session and connection trouble
}

// ClientOptions say how client.js connects. The zero value is security None
// with an anonymous user.
type ClientOptions struct {
	// Security is "POLICY:MODE" in node-opcua's names, e.g.
	// "Basic256Sha256:SignAndEncrypt"; "" or "None" for no security.
	Security string
	// User and Password select a UserName identity; "" is anonymous.
	User, Password string
	// UserCert and UserKey are files holding an X509 user identity's
	// certificate and private key (PEM, or DER when the name ends in .der).
	// They exclude User.
	UserCert, UserKey string
	// PKIDir is the client's PKI folder (its certificate is made there on
	// first use and server certificates are trusted on first sight; see
	// [ClientCertificate]). "" makes a temporary one per run; a folder
	// reused across runs saves generating a key each time.
	PKIDir string
	// ConnectTimeout bounds connecting and activating the session; 0 is
	// client.js's default of 15 s.
	ConnectTimeout time.Duration
}

func (o ClientOptions) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRANA_OPCUA_") {
			env = append(env, kv)
		}
	}
	set := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	set("BRANA_OPCUA_SECURITY", o.Security)
	set("BRANA_OPCUA_USER", o.User)
	set("BRANA_OPCUA_PASSWORD", o.Password)
	// client.js runs in Dir(), so relative paths are made absolute here.
	set("BRANA_OPCUA_USER_CERT", absPath(o.UserCert))
	set("BRANA_OPCUA_USER_KEY", absPath(o.UserKey))
	set("BRANA_OPCUA_PKI", absPath(o.PKIDir))
	if o.ConnectTimeout > 0 {
		set("BRANA_OPCUA_CONNECT_TIMEOUT", strconv.FormatFloat(o.ConnectTimeout.Seconds(), 'f', -1, 64))
	}
	return env
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// ClientCertificateFile is where node-opcua keeps the client's application
// certificate (PEM) in the PKI folder pkiDir.
func ClientCertificateFile(pkiDir string) string {
	return filepath.Join(pkiDir, "own", "certs", "client_certificate.pem")
}

// ClientCertificate returns the DER of the client's application certificate
// in pkiDir, as made by [InitPKI] or any secure run with that PKIDir (also
// one whose connection failed).
func ClientCertificate(pkiDir string) ([]byte, error) {
	b, err := os.ReadFile(ClientCertificateFile(pkiDir))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", ClientCertificateFile(pkiDir))
	}
	return blk.Bytes, nil
}

// InitPKI makes the client's PKI folder pkiDir with its key and self-signed
// application certificate, without connecting anywhere, so that a server can
// be told to trust [ClientCertificate] before the first run. An existing
// certificate is kept.
func InitPKI(ctx context.Context, pkiDir string) error {
	if pkiDir == "" {
		return fmt.Errorf("InitPKI: no folder")
	}
	env := append(ClientOptions{PKIDir: pkiDir}.env(), "BRANA_OPCUA_INIT_PKI=1")
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "client.js"))
	cmd.Dir = Dir()
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	for _, line := range bytes.Split(out.Bytes(), []byte("\n")) {
		var r struct{ Op, Error string }
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &r) != nil || r.Op != "initPKI" {
			continue
		}
		if r.Error != "" {
			return fmt.Errorf("node-opcua initPKI: %s", r.Error)
		}
	}
	if runErr != nil {
		return fmt.Errorf("client.js initPKI: %w\n%s%s", runErr, out.Bytes(), errb.Bytes())
	}
	_, err := ClientCertificate(pkiDir)
	return err
}

// Dir is the directory holding client.js and node_modules.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// packages are the npm packages that client.js and server.js load.
var packages = []string{"node-opcua-client", "node-opcua-server"}

// Available reports why node-opcua cannot run here, or nil.
func Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not installed: %w", err)
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(Dir(), "node_modules", p, "package.json")); err != nil {
			return fmt.Errorf("%s not installed (run scripts/install-test-deps): %w", p, err)
		}
	}
	return nil
}

// Require skips t when node-opcua cannot run, or fails it when the
// environment variable CI is set.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node-opcua is required in CI: %v", err)
		}
		t.Skip(err)
	}
}

// Run runs ops against endpoint with client.js on one session and returns one
// result per operation. A connection failure is an error that names the
// status code the server answered, if any (e.g. "BadUserAccessDenied",
// "BadIdentityTokenRejected", "BadSecurityChecksFailed"); client.js tries
// once and gives up after ClientOptions.ConnectTimeout. A failed operation
// is a Result with Error set. log holds node-opcua's own output (stderr and
// the lines on stdout that are not results). The connection is set by the
// BRANA_OPCUA_* environment variables (see client.js), by default security
// None and anonymous.
func Run(ctx context.Context, endpoint string, ops []Op) (results []Result, log string, err error) {
	return run(ctx, endpoint, ops, nil)
}

// RunWith is Run with the connection set by opts alone, whatever the
// environment says.
func RunWith(ctx context.Context, endpoint string, ops []Op, opts ClientOptions) (results []Result, log string, err error) {
	return run(ctx, endpoint, ops, opts.env())
}

func run(ctx context.Context, endpoint string, ops []Op, env []string) (results []Result, log string, err error) {
	in, err := json.Marshal(ops)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "client.js"), endpoint, "-")
	cmd.Dir = Dir()
	cmd.Env = env // nil: the environment of this process
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' { // node-opcua logs to stdout too
			errb.Write(line)
			errb.WriteByte('\n')
			continue
		}
		var r Result
		if err := json.Unmarshal(line, &r); err != nil {
			return results, errb.String(), fmt.Errorf("client.js output %q: %w", line, err)
		}
		switch r.Op {
		case "connect", "fatal", "disconnect":
			return results, errb.String(), fmt.Errorf("node-opcua %s: %s", r.Op, r.Error)
		}
		results = append(results, r)
	}
	if len(results) != len(ops) {
		return results, errb.String(), fmt.Errorf("client.js printed %d results for %d operations (%v)", len(results), len(ops), runErr)
	}
	// Exit status 3 means some operation failed; its Result says which.
	if ee, ok := runErr.(*exec.ExitError); runErr != nil && !(ok && ee.ExitCode() == 3) {
		return results, errb.String(), fmt.Errorf("client.js: %w", runErr)
	}
	return results, errb.String(), nil
}
