package nodeopcua

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/freeport"
)

// DefaultNamespaceURI is the namespace of server.js's address space when
// ServerOptions leave it empty.
const DefaultNamespaceURI = "urn:brana:testbench:nodeplc"

// ServerOptions configure StartServer. Empty fields take defaults.
type ServerOptions struct {
	User         string // the one accepted UserName identity; default "operator"
	Password     string // default "brana-testbench"
	NamespaceURI string // default DefaultNamespaceURI
}

// Event is one line server.js printed: a write (one per WriteValue), a call
// (one per method), or a session activation. StatusCode is the outcome the
// server answered for a write or call item, "" until the answer was sent.
type Event struct {
	Event      string   `json:"event"`
	Channel    uint32   `json:"channel,omitempty"`
	Handle     uint32   `json:"handle,omitempty"`
	NodeID     string   `json:"nodeId,omitempty"`     // write: e.g. "ns=2;s=Feeder.Setpoint"
	Attribute  string   `json:"attribute,omitempty"`  // write: "Value", "DisplayName", ...
	IndexRange string   `json:"indexRange,omitempty"` // write
	DataType   string   `json:"dataType,omitempty"`   // write
	Value      any      `json:"value,omitempty"`      // write
	ObjectID   string   `json:"objectId,omitempty"`   // call
	MethodID   string   `json:"methodId,omitempty"`   // call
	Inputs     []Output `json:"inputs,omitempty"`     // call
	User       string   `json:"user,omitempty"`       // session
	StatusCode string   `json:"statusCode,omitempty"`
}

// serverLine is any line server.js prints; ready, result and fatal lines
// carry fields an Event does not.
type serverLine struct {
	Event
	Endpoint       string   `json:"endpoint"`
	NamespaceURI   string   `json:"namespaceUri"`
	NamespaceIndex int      `json:"namespaceIndex"`
	Service        string   `json:"service"`
	StatusCodes    []string `json:"statusCodes"`
	Error          string   `json:"error"`
}

// Server is a running server.js: node-opcua-server as a downstream PLC that
// offers only Basic256Sha256/SignAndEncrypt and one UserName identity.
type Server struct {
	opts     ServerOptions
	endpoint string
	nsIndex  int
	pkiDir   string

	mu     sync.Mutex
	events []Event
	log    bytes.Buffer
}

// StartServer starts server.js on a free loopback port with a PKI folder
// under t.TempDir(), waits until it listens, and stops it when t ends. It
// fails t when the server does not come up within a minute (node-opcua makes
// its key pair and certificate on first start).
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if opts.User == "" {
		opts.User = "operator"
	}
	if opts.Password == "" {
		opts.Password = "brana-testbench"
	}
	if opts.NamespaceURI == "" {
		opts.NamespaceURI = DefaultNamespaceURI
	}
	port, err := freeport.Port()
	if err != nil {
		t.Fatalf("nodeopcua server: %v", err)
	}
	s := &Server{opts: opts, pkiDir: filepath.Join(t.TempDir(), "pki")}
	cfg, err := json.Marshal(map[string]any{
		"port":         port,
		"user":         opts.User,
		"password":     opts.Password,
		"pkiDir":       s.pkiDir,
		"namespaceUri": opts.NamespaceURI,
	})
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("node", filepath.Join(Dir(), "server.js"), "-")
	cmd.Dir = Dir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{s}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodeopcua server: %v", err)
	}
	// The config goes on stdin, not argv, so that the password stays out of
	// the process list; stdin then stays open until cleanup.
	if _, err := stdin.Write(append(cfg, '\n')); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("nodeopcua server: config: %v", err)
	}

	ready := make(chan serverLine, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		s.read(stdout, ready)
	}()
	exited := make(chan error, 1)
	go func() {
		<-readDone
		exited <- cmd.Wait()
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = stdin.Close() // server.js exits when stdin ends
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)

	select {
	case l, ok := <-ready:
		if !ok || l.Event.Event != "ready" {
			stop()
			t.Fatalf("nodeopcua server did not start: %s\nlog:\n%s", l.Error, s.Log())
		}
		s.endpoint = l.Endpoint
		s.nsIndex = l.NamespaceIndex
	case <-time.After(60 * time.Second):
		stop()
		t.Fatalf("nodeopcua server not ready after 60 s\nlog:\n%s", s.Log())
	}
	return s
}

// read consumes server.js's stdout until it closes. The first ready or fatal
// line goes to ready; ready is closed when the output ends without one.
func (s *Server) read(r io.Reader, ready chan<- serverLine) {
	sent := false
	defer func() {
		if !sent {
			close(ready)
		}
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		var l serverLine
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &l) != nil {
			s.mu.Lock()
			s.log.Write(line) // node-opcua logs to stdout too
			s.log.WriteByte('\n')
			s.mu.Unlock()
			continue
		}
		switch l.Event.Event {
		case "ready", "fatal":
			if !sent {
				sent = true
				ready <- l
			}
			if l.Event.Event == "fatal" {
				s.mu.Lock()
				fmt.Fprintf(&s.log, "fatal: %s\n", l.Error)
				s.mu.Unlock()
			}
		case "result":
			s.result(l)
		default:
			s.mu.Lock()
			s.events = append(s.events, l.Event)
			s.mu.Unlock()
		}
	}
}

// result gives the items of the request l answers their status codes.
func (s *Server) result(l serverLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []int
	// The request's items are the latest events with its channel and handle.
	for i := len(s.events) - 1; i >= 0; i-- {
		e := s.events[i]
		if e.Event == l.Service && e.Channel == l.Channel && e.Handle == l.Handle && e.StatusCode == "" {
			items = append([]int{i}, items...)
		} else if len(items) > 0 {
			break
		}
	}
	for k, i := range items {
		switch {
		case k < len(l.StatusCodes):
			s.events[i].StatusCode = l.StatusCodes[k]
		case len(l.StatusCodes) == 1: // the whole request failed
			s.events[i].StatusCode = l.StatusCodes[0]
		}
	}
}

type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

// Endpoint is the server's endpoint URL, opc.tcp://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// NamespaceURI is the namespace of the Feeder nodes.
func (s *Server) NamespaceURI() string { return s.opts.NamespaceURI }

// NamespaceIndex is the index of NamespaceURI on the server.
func (s *Server) NamespaceIndex() int { return s.nsIndex }

// NodeID is the NodeId of the Feeder node with string identifier id, e.g.
// NodeID("Feeder.Setpoint") is "ns=2;s=Feeder.Setpoint".
func (s *Server) NodeID(id string) string { return fmt.Sprintf("ns=%d;s=%s", s.nsIndex, id) }

// User and Password are the one identity the server accepts.
func (s *Server) User() string { return s.opts.User }

// Password is the password of User.
func (s *Server) Password() string { return s.opts.Password }

// PKIDir is the server's PKI folder; its certificate is own/certs/certificate.pem.
func (s *Server) PKIDir() string { return filepath.Join(s.pkiDir, "server") }

// Certificate is the server's certificate in PEM.
func (s *Server) Certificate() ([]byte, error) {
	return os.ReadFile(filepath.Join(s.PKIDir(), "own", "certs", "certificate.pem"))
}

// Events are the writes, calls and session activations seen so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Writes are the WriteValues seen so far, in the order they arrived, whether
// the server then accepted them or not.
func (s *Server) Writes() []Event { return s.filter("write") }

// WritesTo counts the WriteValues seen for a node, any attribute. nodeID is
// the full NodeId ("ns=2;s=Feeder.Setpoint") or its string identifier
// ("Feeder.Setpoint").
func (s *Server) WritesTo(nodeID string) int {
	n := 0
	for _, e := range s.Writes() {
		if s.sameNode(e.NodeID, nodeID) {
			n++
		}
	}
	return n
}

// Calls counts the method calls seen so far.
func (s *Server) Calls() int { return len(s.filter("call")) }

// CallsTo counts the calls seen of a method, named like WritesTo's nodeID.
func (s *Server) CallsTo(methodID string) int {
	n := 0
	for _, e := range s.filter("call") {
		if s.sameNode(e.MethodID, methodID) {
			n++
		}
	}
	return n
}

// Log is node-opcua's own output so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *Server) filter(kind string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, e := range s.events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

func (s *Server) sameNode(seen, want string) bool {
	if seen == want || seen == s.NodeID(want) {
		return true
	}
	if rest, ok := strings.CutPrefix(want, "nsu="+s.opts.NamespaceURI+";"); ok {
		return seen == fmt.Sprintf("ns=%d;%s", s.nsIndex, rest)
	}
	return false
}
