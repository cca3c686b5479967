// Package opcuarelay terminates OPC UA for one target: towards the vendor it
// is an OPC UA server (secure conversation with policy None, over the SSH
// link or a loopback listener), towards the PLC an OPC UA client
// ([opcuatarget]). It answers the discovery and session services itself,
// so that they describe brana and never the PLC, decides on every element
// of every other service request, writes the decision to the audit log
// before anything is forwarded, and answers Bad_UserAccessDenied in the
// slots of refused elements.
package opcuarelay

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/metrics"
	"github.com/brana-ot/brana/gateway/opcuatarget"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opcua/secconv"
)

// Deps are the shared parts a terminator works with.
type Deps struct {
	Policy    *atomic.Pointer[policy.Policy]
	Audit     *audit.Log
	Log       *slog.Logger
	BootID    string
	Sessions  *sessions.Registry
	Admit     func(p *policy.Party, id sessions.Identity) policy.Admission
	Approvals *approvals.Service
	PartyInfo func(*policy.Party) approvals.PartyInfo

	// Manifest, when set, holds every FileType Close and CloseAndCommit of
	// a file written in the session until the image is found on the
	// manifest in force (nil in the pointer: none, every such commit is
	// refused). Unset, program-class grants alone decide.
	Manifest *atomic.Pointer[firmware.Manifest]
	MaxImage int64 // bytes per image; 0: firmware.DefaultMaxImage

	// Metrics counts sessions, decisions and answer latency; nil: none.
	Metrics *metrics.Front
}

// Options configure one terminator.
type Options struct {
	Name           string // listener name in audit records, e.g. "ssh-line-opc"
	MaxConnections int
	IdleTimeout    time.Duration // a channel with no traffic for this long is closed

	// Security is brana's own secured endpoint; nil offers policy None only
	// (the SSH link, loopback labs).
	Security *Security
}

// Security is what a secured endpoint offers and how it checks clients.
type Security struct {
	Server   *secconv.Server
	AppURI   string                   // the application URI in brana's certificate, which it announces
	Policies []string                 // policy URIs offered, None only if listed
	Modes    []ua.MessageSecurityMode // Sign, SignAndEncrypt
	Trust    func(clientCert []byte) error

	Identities []string // anonymous, username, x509
	Users      Users    // checks user names and passwords; nil: none
}

// Users checks a user name and password (argon2id hashes).
type Users interface {
	Check(user, password string) bool
}

// Server terminates OPC UA for one target.
type Server struct {
	opt    Options
	target *opcuatarget.Target
	d      Deps
	slots  chan struct{}

	mu    sync.Mutex
	chans map[*channel]struct{}
}

// New builds a terminator for target.
func New(opt Options, target *opcuatarget.Target, d Deps) *Server {
	if opt.MaxConnections <= 0 {
		opt.MaxConnections = 16
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 10 * time.Minute
	}
	return &Server{opt: opt, target: target, d: d, slots: make(chan struct{}, opt.MaxConnections), chans: make(map[*channel]struct{})}
}

// offers reports whether the endpoint offers a security policy.
func (s *Server) offers(policy string) bool {
	if s.opt.Security == nil {
		return policy == secconv.PolicyNone
	}
	return slices.Contains(s.opt.Security.Policies, policy)
}

// offersMode reports whether a secured endpoint offers a security mode.
func (s *Server) offersMode(m ua.MessageSecurityMode) bool {
	return s.opt.Security != nil && slices.Contains(s.opt.Security.Modes, m)
}

// Name is the terminator's listener name.
func (s *Server) Name() string { return s.opt.Name }

// Serve accepts connections on ln (a loopback listener) until ctx is done,
// identifying each client by its source network.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, nc)
		}()
	}
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	party := s.d.Policy.Load().PartyByAddr(ip)
	if party == nil && s.opt.Security == nil {
		s.refuse(nc, nc.RemoteAddr().String(), nil, policy.Unidentified.String(), "source address is not bound to an enrolled party")
		return
	}
	// On a secured endpoint the party comes from the user identity at
	// ActivateSession; the source network only names anonymous users.
	s.ServeStream(ctx, nc, sessions.Identity{Party: party, Source: nc.RemoteAddr().String(), Via: "source network"})
}

// refuse audits a connection that is not let in, then closes it.
func (s *Server) refuse(rw io.Closer, src string, p *policy.Party, reason, detail string) {
	rec := audit.Record{Type: audit.SessionRefused, Source: src, Listener: s.opt.Name, Target: s.target.Name(),
		Unit: -1, Func: -1, Sub: -1, Decision: "deny", Reason: reason, Detail: detail}
	if p != nil {
		rec.Party, rec.PartyName, rec.Org = p.ID, p.Name, p.Organisation
	}
	if _, err := s.d.Audit.Append(context.Background(), &rec); err != nil {
		s.d.Log.Error("audit append failed for a refused connection", "err", err)
	}
	s.d.Metrics.SessionRefused()
	s.d.Log.Info("opc ua connection refused", "listener", s.opt.Name, "source", src, "reason", reason)
	rw.Close()
}

// ServeStream runs OPC UA secure conversation for an identified party over
// rw until it ends, and closes rw.
func (s *Server) ServeStream(ctx context.Context, rw io.ReadWriteCloser, id sessions.Identity) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.refuse(rw, id.Source, id.Party, "busy", "the listener's max_connections is reached")
		return
	}
	if s.d.Audit.SpaceLow() {
		s.refuse(rw, id.Source, id.Party, "audit-disk-low", "free space under the audit log is below audit.min_free")
		return
	}
	c := newChannel(s, rw, id)
	if s.opt.Security == nil {
		adm := s.d.Admit(id.Party, id)
		if adm.Verdict == policy.Deny {
			s.refuse(rw, id.Source, id.Party, "jurisdiction", adm.String())
			return
		}
		c.adm.Store(&adm)
	}
	s.mu.Lock()
	s.chans[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.chans, c)
		s.mu.Unlock()
	}()
	c.serve(ctx)
}
