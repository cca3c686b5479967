// Package sessions keeps the registry of live client sessions, so that
// engineers can list them and stop one at once, and so that a revoked grant
// or a shrunk policy can end the sessions it covered.
package sessions

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Info describes a live session for listings.
type Info struct {
	ID        string    `json:"id"`
	Protocol  string    `json:"protocol"`
	Listener  string    `json:"listener"`
	Party     string    `json:"party"`
	PartyName string    `json:"party_name"`
	Org       string    `json:"org"`
	Source    string    `json:"source"`
	Via       string    `json:"via,omitempty"` // e.g. "ssh key SHA256:…", "source network"
	Grant     string    `json:"grant,omitempty"`
	Since     time.Time `json:"since"`
	Requests  uint64    `json:"requests"`
	Refused   uint64    `json:"refused"`
	// Supervised: the policy lets commands above read through only while
	// an engineer watches (Watchers > 0).
	Supervised bool `json:"supervised"`
	Watchers   int  `json:"watchers"`
}

// Session is one live session. The protocol front that owns it provides stop.
type Session struct {
	info     Info
	stop     func(reason string)
	requests atomic.Uint64
	refused  atomic.Uint64
	stopped  atomic.Bool
	grant    atomic.Pointer[string]
	recheck  func()

	supervised atomic.Bool
	watchers   atomic.Int32
}

// OnRecheck sets what Registry.RecheckAll runs for this session (the
// protocol front re-admits it under a new policy). Call before Add.
func (s *Session) OnRecheck(f func()) { s.recheck = f }

// SetGrant records the grant the session's commands run under.
func (s *Session) SetGrant(id string) {
	if g := s.grant.Load(); g == nil || *g != id {
		s.grant.Store(&id)
	}
}

// Grant is the grant the session's commands last ran under, or "".
func (s *Session) Grant() string {
	if g := s.grant.Load(); g != nil {
		return *g
	}
	return ""
}

// SetSupervised records whether the session's admission requires an
// engineer to watch it; a reload may change it.
func (s *Session) SetSupervised(v bool) { s.supervised.Store(v) }

// Supervised reports whether the session runs under supervision.
func (s *Session) Supervised() bool { return s.supervised.Load() }

// Watch counts an engineer watching the session live until stop is called;
// stop may be called more than once.
func (s *Session) Watch() (stop func()) {
	s.watchers.Add(1)
	var once sync.Once
	return func() { once.Do(func() { s.watchers.Add(-1) }) }
}

// Watched reports whether anyone watches the session now. It is one atomic
// load: the relays ask it per command of a supervised session.
func (s *Session) Watched() bool { return s.watchers.Load() > 0 }

// New makes a session; stop must end it at once (close the connection) and
// may be called from any goroutine, once.
func New(info Info, stop func(reason string)) *Session {
	return &Session{info: info, stop: stop}
}

// ID is the session's id.
func (s *Session) ID() string { return s.info.ID }

// Party is the session's party id.
func (s *Session) Party() string { return s.info.Party }

// Via says how the session's party was identified.
func (s *Session) Via() string { return s.info.Via }

// Source is the client's address.
func (s *Session) Source() string { return s.info.Source }

// Counted records one request and whether it was refused.
func (s *Session) Counted(refused bool) {
	s.requests.Add(1)
	if refused {
		s.refused.Add(1)
	}
}

// Stop ends the session with a reason; only the first call has an effect.
func (s *Session) Stop(reason string) bool {
	if s.stopped.Swap(true) {
		return false
	}
	s.stop(reason)
	return true
}

// Info returns a snapshot.
func (s *Session) Info() Info {
	i := s.info
	i.Requests, i.Refused = s.requests.Load(), s.refused.Load()
	i.Grant = s.Grant()
	i.Supervised, i.Watchers = s.supervised.Load(), int(s.watchers.Load())
	return i
}

// Registry holds the live sessions of one gateway.
type Registry struct {
	mu sync.Mutex
	m  map[string]*Session
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry { return &Registry{m: make(map[string]*Session)} }

// Add registers s; Remove must follow when it ends.
func (r *Registry) Add(s *Session) {
	r.mu.Lock()
	r.m[s.info.ID] = s
	r.mu.Unlock()
}

// Remove forgets a session.
func (r *Registry) Remove(s *Session) {
	r.mu.Lock()
	if r.m[s.info.ID] == s {
		delete(r.m, s.info.ID)
	}
	r.mu.Unlock()
}

// Get returns the live session with id, or nil.
func (r *Registry) Get(id string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

// List returns snapshots of every live session, oldest first.
func (r *Registry) List() []Info {
	r.mu.Lock()
	out := make([]Info, 0, len(r.m))
	for _, s := range r.m {
		out = append(out, s.Info())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return a.Since.Compare(b.Since) })
	return out
}

// Len is the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// Count is the number of live sessions of a protocol ("modbus", "opcua").
func (r *Registry) Count(protocol string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.m {
		if s.info.Protocol == protocol {
			n++
		}
	}
	return n
}

// Kill stops the session with id; false if there is none.
func (r *Registry) Kill(id, reason string) bool {
	r.mu.Lock()
	s := r.m[id]
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.Stop(reason)
	return true
}

// RecheckAll runs every session's recheck hook, after a policy change.
func (r *Registry) RecheckAll() {
	r.mu.Lock()
	all := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		if s.recheck != nil {
			s.recheck()
		}
	}
}

// KillWhere stops every session for which match is true and returns their ids.
func (r *Registry) KillWhere(match func(*Session) bool, reason string) []string {
	r.mu.Lock()
	var hit []*Session
	for _, s := range r.m {
		if match(s) {
			hit = append(hit, s)
		}
	}
	r.mu.Unlock()
	ids := make([]string, 0, len(hit))
	for _, s := range hit {
		if s.Stop(reason) {
			ids = append(ids, s.info.ID)
		}
	}
	return ids
}
