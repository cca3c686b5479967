// Package modbusrelay is brana's upstream Modbus TCP side: it accepts client
// connections, identifies the party, and for every request decodes, decides,
// writes the audit record and only then forwards to the target. Denials and
// downstream failures are answered with Modbus exceptions; a request is never
// passed on as raw bytes and a connection never becomes a TCP pipe.
package modbusrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/metrics"
	"github.com/brana-ot/brana/gateway/modbustarget"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
)

// Deps are the shared parts a listener works with.
type Deps struct {
	Policy   *atomic.Pointer[policy.Policy] // swapped on reload
	Targets  map[string]*modbustarget.Target
	Audit    *audit.Log
	Log      *slog.Logger
	BootID   string // makes session ids unique across restarts
	Sessions *sessions.Registry

	// Admit decides on a session (jurisdiction, DESIGN.md decision order).
	Admit func(p *policy.Party, id Identity) policy.Admission
	// Approvals holds access requests and grants; sessions that need
	// approval, and program-class commands, run only under a grant.
	Approvals *approvals.Service
	PartyInfo func(*policy.Party) approvals.PartyInfo

	// Manifest is the allow-list of program images in force (swapped on
	// reload); a nil manifest refuses every commit. Only targets with a
	// program profile hold their commit for it.
	Manifest *atomic.Pointer[firmware.Manifest]
	MaxImage int64 // bytes per image; 0: firmware.DefaultMaxImage

	// Metrics counts sessions, decisions and answer latency; nil: none.
	Metrics *metrics.Front
}

// sessionSeq numbers sessions across all servers of the process, so that ids
// stay unique when several servers share a name (SSH and TLS fronts).
var sessionSeq atomic.Uint64

type route struct {
	ok     bool
	target *modbustarget.Target
	name   string
	unit   int      // downstream unit id, -1 = same as upstream
	prog   *program // the target's program profile, or nil
}

func makeRoute(r config.Route, t *modbustarget.Target) route {
	rt := route{ok: true, target: t, name: r.Target, unit: -1, prog: newProgram(t.Program())}
	if r.TargetUnit != nil {
		rt.unit = *r.TargetUnit
	}
	return rt
}

// Server serves one configured Modbus TCP listener.
type Server struct {
	cfg    config.Listener
	d      Deps
	routes [256]route
	slots  chan struct{}

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// New builds a listener's server from its validated config.
func New(cfg config.Listener, d Deps) (*Server, error) {
	s := &Server{cfg: cfg, d: d, slots: make(chan struct{}, cfg.MaxConnections), conns: make(map[*conn]struct{})}
	for _, r := range cfg.Routes {
		t, ok := d.Targets[r.Target]
		if !ok {
			return nil, fmt.Errorf("modbusrelay: listener %s routes to unknown target %q", cfg.Name, r.Target)
		}
		rt := makeRoute(r, t)
		if len(r.Units) == 0 {
			for u := range s.routes {
				if !s.routes[u].ok {
					s.routes[u] = rt
				}
			}
			continue
		}
		for _, u := range r.Units {
			s.routes[u] = rt
		}
	}
	// Explicit units win over a catch-all route, whatever the order in the file.
	for _, r := range cfg.Routes {
		for _, u := range r.Units {
			s.routes[u] = makeRoute(r, d.Targets[r.Target])
		}
	}
	return s, nil
}

// Name is the listener's configured name.
func (s *Server) Name() string { return s.cfg.Name }

// Serve accepts connections on ln until ctx is done, then closes them all.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait and go on, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.d.Log.Warn("accept failed", "listener", s.cfg.Name, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			s.refuse(nc, nc.RemoteAddr().String(), nil, "too many connections", fmt.Sprintf("listener %s is at max_connections=%d", s.cfg.Name, s.cfg.MaxConnections))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.slots }()
			s.handle(ctx, nc)
		}()
	}
}

func remoteAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Stream is a client byte stream: a TCP connection, or an SSH channel that
// the vendor link hands over. Deadlines are used when it has them.
type Stream interface {
	io.ReadWriteCloser
}

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Identity says who is on a stream and how that was established.
type Identity = sessions.Identity

// refuse audits a connection that is not let in, then closes it.
func (s *Server) refuse(rw io.Closer, src string, p *policy.Party, reason, detail string) {
	rec := audit.Record{Type: audit.SessionRefused, Source: src, Listener: s.cfg.Name,
		Unit: -1, Func: -1, Sub: -1, Decision: "deny", Reason: reason, Detail: detail}
	if p != nil {
		rec.Party, rec.PartyName, rec.Org = p.ID, p.Name, p.Organisation
	}
	if _, err := s.d.Audit.Append(context.Background(), &rec); err != nil {
		s.d.Log.Error("audit append failed for a refused connection", "err", err)
	}
	s.d.Metrics.SessionRefused()
	s.d.Log.Info("connection refused", "listener", s.cfg.Name, "source", src, "reason", reason)
	rw.Close()
}

// handle identifies a TCP client by its source network and serves it.
func (s *Server) handle(ctx context.Context, nc net.Conn) {
	party := s.d.Policy.Load().PartyByAddr(remoteAddr(nc))
	if party == nil {
		s.refuse(nc, nc.RemoteAddr().String(), nil, policy.Unidentified.String(), "source address is not bound to an enrolled party")
		return
	}
	s.ServeStream(ctx, nc, Identity{Party: party, Source: nc.RemoteAddr().String(), Via: "source network"})
}

// ServeStream runs a Modbus TCP session for an identified party over rw
// until it ends, and closes rw.
func (s *Server) ServeStream(ctx context.Context, rw Stream, id Identity) {
	if s.d.Audit.SpaceLow() {
		// Better no session than records that cannot be kept.
		s.refuse(rw, id.Source, id.Party, "audit-disk-low", "free space under the audit log is below audit.min_free")
		return
	}
	adm := s.d.Admit(id.Party, id)
	if adm.Verdict == policy.Deny {
		s.refuse(rw, id.Source, id.Party, "jurisdiction", adm.String())
		return
	}
	c := &conn{
		s:     s,
		nc:    rw,
		party: id.Party,
		via:   id.Via,
		id:    s.d.BootID + "-" + s.cfg.Name + "-" + strconv.FormatUint(sessionSeq.Add(1), 10),
		src:   id.Source,
	}
	c.dl, _ = rw.(deadliner)
	c.adm.Store(&adm)
	c.rec.Values = make([]uint16, 0, audit.MaxValues)
	c.sess = sessions.New(sessions.Info{ID: c.id, Protocol: "modbus", Listener: s.cfg.Name, Party: id.Party.ID,
		PartyName: id.Party.Name, Org: id.Party.Organisation, Source: c.src, Via: id.Via, Since: time.Now()}, c.kill)
	c.sess.SetSupervised(adm.Supervised)
	c.certCountry = id.CertCountry
	c.sess.OnRecheck(c.readmit)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.d.Sessions.Add(c.sess)
	s.d.Metrics.SessionOpened()
	defer func() {
		s.d.Sessions.Remove(c.sess)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.serve(ctx)
}
