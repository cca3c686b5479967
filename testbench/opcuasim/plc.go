package opcuasim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/testbench/freeport"
)

// Errors from New and Start.
var (
	ErrUnknownModel = errors.New("opcuasim: unknown model")
	ErrBadEndpoint  = errors.New("opcuasim: bad endpoint")
	ErrStarted      = errors.New("opcuasim: already started")
	ErrClosed       = errors.New("opcuasim: closed")
)

// TickInterval is the process-model step used by [PLC.Start] when
// Options.Tick is zero.
const TickInterval = 100 * time.Millisecond

// NamespacePrefix is the prefix of the PLC's namespace URI; the model name
// follows it.
const NamespacePrefix = "urn:brana:testbench:"

// Options configure a PLC.
type Options struct {
	// Endpoint is the URL to serve, "opc.tcp://127.0.0.1:4840"; port 0
	// picks a free port ([PLC.Endpoint] tells which). Empty means
	// "opc.tcp://127.0.0.1:0".
	Endpoint string
	// Model is the process model: "feeder" or "pump".
	Model string
	// Tick is the model step of Start. Zero means TickInterval; negative
	// runs no ticker, so only [PLC.Step] moves the plant.
	Tick time.Duration
	// Logger receives gopcua's server diagnostics at debug level; nil
	// discards them.
	Logger *slog.Logger
}

// PLC is a simulated OPC UA PLC. All methods are safe for concurrent use.
type PLC struct {
	model    string
	endpoint string
	tick     time.Duration
	internal string // gopcua's own endpoint, behind the relay
	srv      *server.Server
	space    *space
	relay    *relay

	mu        sync.Mutex // guards the model, the file and last
	m         model
	firmware  file
	heartbeat uint32
	last      map[*node]any // values last announced to subscriptions

	stats stats

	// Changed values waiting for the notifier goroutine, by NodeId string.
	pendingMu sync.Mutex
	pending   map[string]*ua.NodeID
	wake      chan struct{}

	runMu   sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// Models returns the names of the process models, sorted.
func Models() []string { return slices.Sorted(maps.Keys(models)) }

// modelNamespace is the index of the model's namespace: gopcua's server
// starts with namespace 0, New adds the server's own namespace 1, then the
// model's.
const modelNamespace = 2

// New builds a PLC and reserves its port (Close releases it). It does not
// serve yet; see [PLC.Start].
func New(opts Options) (*PLC, error) {
	host, port, err := endpointAddr(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	p, err := newPLC(opts.Model)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("opcuasim: listen: %w", err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	p.endpoint = "opc.tcp://" + net.JoinHostPort(host, strconv.Itoa(port))
	p.tick = opts.Tick
	if p.tick == 0 {
		p.tick = TickInterval
	}

	// gopcua's server cannot report the port it binds nor use a listener
	// it is given, so it gets a free loopback port of its own; the relay
	// forwards the public one to it.
	internal, err := freeport.Port()
	if err != nil {
		ln.Close()
		return nil, err
	}
	p.internal = fmt.Sprintf("opc.tcp://127.0.0.1:%d", internal)
	p.relay = newRelay(ln, fmt.Sprintf("127.0.0.1:%d", internal))

	srvOpts := []server.Option{
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.EndPoint("127.0.0.1", internal), // the first is where gopcua listens
		server.EndPoint(host, port),
		server.ServerName("brana testbench " + opts.Model),
		server.ManufacturerName("brana testbench"),
		server.ProductName("opcuasim " + opts.Model),
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		// Clients that dial "localhost" find a matching endpoint too.
		srvOpts = append(srvOpts, server.EndPoint("localhost", port))
	}
	if opts.Logger != nil {
		srvOpts = append(srvOpts, server.SetLogger(printfLogger{opts.Logger}))
	}
	p.srv = server.New(srvOpts...)

	// Namespace 1 is the server's own, as on most servers, so the model
	// namespace is 2 and clients must resolve it by URI.
	server.NewNodeNameSpace(p.srv, NamespacePrefix+"opcuasim:"+opts.Model)
	if ns := p.srv.AddNamespace(p.space); ns != modelNamespace {
		ln.Close()
		return nil, fmt.Errorf("opcuasim: model namespace got index %d, want %d", ns, modelNamespace)
	}
	ns0, err := p.srv.Namespace(0)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("opcuasim: namespace 0: %w", err)
	}
	ns0.Objects().AddRef(p.space.root.srv, id.Organizes, true)

	for typ, h := range map[uint16]server.Handler{
		id.ReadRequest_Encoding_DefaultBinary:                          p.handleRead,
		id.WriteRequest_Encoding_DefaultBinary:                         p.handleWrite,
		id.CallRequest_Encoding_DefaultBinary:                          p.handleCall,
		id.BrowseRequest_Encoding_DefaultBinary:                        p.handleBrowse,
		id.TranslateBrowsePathsToNodeIDsRequest_Encoding_DefaultBinary: p.handleTranslate,
		id.CreateMonitoredItemsRequest_Encoding_DefaultBinary:          p.handleCreateMonitoredItems,
		id.GetEndpointsRequest_Encoding_DefaultBinary:                  p.handleGetEndpoints,
		id.FindServersRequest_Encoding_DefaultBinary:                   p.handleFindServers,
	} {
		// Registered before Start, these win over gopcua's own handlers.
		p.srv.RegisterHandler(typ, h)
	}
	return p, nil
}

// newPLC builds the model and its namespace without a server.
func newPLC(model string) (*PLC, error) {
	mk, ok := models[model]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, model, strings.Join(Models(), ", "))
	}
	p := &PLC{
		model:   model,
		m:       mk.new(),
		last:    make(map[*node]any),
		pending: make(map[string]*ua.NodeID),
		wake:    make(chan struct{}, 1),
	}
	p.stats.reset()
	p.space = &space{p: p, uri: NamespacePrefix + model, ns: modelNamespace, nodes: make(map[string]*node)}
	b := &builder{s: p.space}
	root := b.object(nil, mk.object, "simulated "+model, typeBaseObject)
	root.ref = id.Organizes
	p.space.root = root
	p.m.build(b, root)
	b.variable(root, "Heartbeat", "counts model steps", typeUInt32, func() any { return p.heartbeat }, nil)
	buildFile(b, root, "Firmware", "program image store: FileType, written with Open/Write/Close", &p.firmware)

	p.mu.Lock()
	p.snapshotLocked()
	p.mu.Unlock()
	return p, nil
}

// endpointAddr returns the host and port of an opc.tcp URL; an empty
// endpoint is 127.0.0.1 port 0.
func endpointAddr(endpoint string) (string, int, error) {
	if endpoint == "" {
		return "127.0.0.1", 0, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "opc.tcp" || u.Hostname() == "" {
		return "", 0, fmt.Errorf("%w %q: want opc.tcp://HOST:PORT", ErrBadEndpoint, endpoint)
	}
	port := 4840
	if s := u.Port(); s != "" {
		port, err = strconv.Atoi(s)
		if err != nil || port < 0 || port > 65535 {
			return "", 0, fmt.Errorf("%w %q: bad port", ErrBadEndpoint, endpoint)
		}
	}
	return u.Hostname(), port, nil
}

// Endpoint returns the URL clients connect to.
func (p *PLC) Endpoint() string { return p.endpoint }

// Model returns the process model's name.
func (p *PLC) Model() string { return p.model }

// NamespaceURI returns the URI of the namespace that holds the model's
// nodes, "urn:brana:testbench:" followed by the model name.
func (p *PLC) NamespaceURI() string { return p.space.uri }

// NamespaceIndex returns the index of [PLC.NamespaceURI] in the server's
// NamespaceArray (2).
func (p *PLC) NamespaceIndex() uint16 { return p.space.ns }

// NodeID returns the NodeId of the node with the given string identifier
// ("Feeder.Breaker.Closed"), or nil if there is none.
func (p *PLC) NodeID(path string) *ua.NodeID {
	if n := p.space.byPath(path); n != nil {
		return n.id
	}
	return nil
}

// Value returns the current value of a variable by string identifier
// ("Feeder.Measurements.CurrentL1"), as the Go type of its OPC UA data type
// (bool, float64, uint32, ...). ok is false if there is no such variable.
func (p *PLC) Value(path string) (v any, ok bool) {
	n := p.space.byPath(path)
	if n == nil || n.class != ua.NodeClassVariable {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return n.get(), true
}

// FileContents returns a copy of the committed contents of the Firmware file
// (the PLC's program): what the last write handle held when it was closed.
// Writes through a handle that is still open do not show here.
func (p *PLC) FileContents() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.firmware.data)
}

// FileCommits returns how many write handles of the Firmware file were
// closed, each replacing its contents.
func (p *PLC) FileCommits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firmware.commits
}

// Step advances the process model by dt and announces changed values to
// subscriptions. Tests call it for deterministic dynamics, with a negative
// Options.Tick.
func (p *PLC) Step(dt time.Duration) {
	p.mu.Lock()
	p.m.step(dt)
	p.heartbeat++
	changed := p.snapshotLocked()
	p.mu.Unlock()
	p.notify(changed)
}

// snapshotLocked records every variable's value and returns the ids of those
// that changed since the last call.
func (p *PLC) snapshotLocked() []*ua.NodeID {
	var changed []*ua.NodeID
	for _, n := range p.space.vars {
		v := n.get()
		if old, ok := p.last[n]; ok && (!scalar(v) || old == v) {
			continue
		}
		p.last[n] = v
		changed = append(changed, n.id)
	}
	return changed
}

func scalar(v any) bool {
	switch v.(type) {
	case bool, float64, uint16, uint32, uint64:
		return true
	}
	return false // the argument arrays, which never change
}

// notify queues changed values for the notifier goroutine. gopcua's
// ChangeNotification samples values through space.Attribute (so it must not
// run with p.mu held) and can block while it holds the monitored item lock,
// so neither the service loop nor the ticker calls it directly.
func (p *PLC) notify(ids []*ua.NodeID) {
	if len(ids) == 0 {
		return
	}
	p.pendingMu.Lock()
	for _, nid := range ids {
		p.pending[nid.String()] = nid
	}
	p.pendingMu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// notifier tells gopcua's monitored items which values changed. Changes that
// pile up while it waits are coalesced: a subscriber sees the latest value.
func (p *PLC) notifier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.pendingMu.Lock()
		ids := slices.Collect(maps.Values(p.pending))
		clear(p.pending)
		p.pendingMu.Unlock()
		for _, nid := range ids {
			if ctx.Err() != nil {
				return
			}
			p.srv.ChangeNotification(nid)
		}
	}
}

// Start listens on the endpoint and runs the process model until ctx is done
// or Close is called. It returns once clients can connect.
func (p *PLC) Start(ctx context.Context) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.started:
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := p.srv.Start(ctx); err != nil {
		cancel()
		return fmt.Errorf("opcuasim: start %s: %w", p.internal, err)
	}
	p.started, p.cancel, p.done = true, cancel, make(chan struct{})
	go p.relay.serve()
	go p.notifier(ctx)
	go p.run(ctx)
	return nil
}

func (p *PLC) run(ctx context.Context) {
	defer close(p.done)
	if p.tick < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Step(p.tick)
		}
	}
}

// Close closes every client connection, stops the model and the server and
// releases the port.
func (p *PLC) Close() {
	p.runMu.Lock()
	if p.closed {
		p.runMu.Unlock()
		return
	}
	p.closed = true
	started, cancel, done := p.started, p.cancel, p.done
	p.runMu.Unlock()

	// Cut the connections while gopcua still drains its message queue: its
	// channel goroutines block on a full queue once its context is done.
	p.relay.close()
	p.srv.Close()
	if started {
		cancel()
		<-done
	}
}

// DropConnections closes every client connection, as a PLC reboot or a cut
// cable would, and returns how many it closed. The PLC keeps serving; its
// sessions and subscriptions are lost with the connections' secure channels.
func (p *PLC) DropConnections() int { return p.relay.drop() }

// printfLogger adapts gopcua's printf-style logger interface to slog.
type printfLogger struct{ l *slog.Logger }

func (l printfLogger) Debug(msg string, args ...any) { l.l.Debug(fmt.Sprintf(msg, args...)) }
func (l printfLogger) Info(msg string, args ...any)  { l.l.Debug(fmt.Sprintf(msg, args...)) }
func (l printfLogger) Warn(msg string, args ...any)  { l.l.Debug(fmt.Sprintf(msg, args...)) }
func (l printfLogger) Error(msg string, args ...any) { l.l.Debug(fmt.Sprintf(msg, args...)) }
