// Package approvals keeps access requests and the grants they become: who
// asks (party and jurisdiction evidence), for which targets and operation
// classes, why, and for how long; who approved, denied or revoked them; and
// the three clocks of DESIGN.md ("Policy model", Approvals): how long a
// request may stay pending, by when an approved grant must first be used
// (claim-by), and the work window, from approval or from first use.
//
// Two-person approval is required by party kind, jurisdiction verdict,
// PRC-managed parties or operation class (default: program and PRC-managed
// parties). Nobody approves their own request, by party or by person, and
// nobody counts twice. Approvers may only shorten or narrow.
//
// Requests live in a bbolt file and in memory. Every change is written
// (and synced by bbolt) before its audit record is written and its event is
// emitted. Active, the per-command check of held sessions, reads memory only;
// a grant's first use is stored in the background. Webhooks are told of new
// requests and of every decision, with bounded retries in the background.
package approvals

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Options are the service's connections to the rest of the gateway.
type Options struct {
	// Audit receives one record per step, after the step is stored. The
	// gateway passes a func that appends to the audit log.
	Audit func(r *audit.Record)
	Now   func() time.Time // [time.Now]
	Log   *slog.Logger
	// HTTPClient sends webhooks [a client with a 10s timeout].
	HTTPClient *http.Client
	// Resolve, when set, gives the registered party behind an id: Create
	// takes the party's name, kind and evidence from it, never from the caller.
	Resolve func(partyID string) (PartyInfo, bool)
	// KnownTarget, when set, refuses requests for targets it does not know.
	KnownTarget func(name string) bool
	// Tick is how often Run checks the clocks [1s].
	Tick time.Duration
	// WebhookRetry is the first retry delay; it doubles up to a minute, for
	// at most 8 attempts [1s].
	WebhookRetry time.Duration
}

// Limits on what a request may carry.
const (
	maxTargets  = 64
	maxText     = 2000
	maxAhead    = 30 * 24 * time.Hour // how far ahead a wanted start may be
	maxSessions = 100                 // kept per grant for display
)

type entry struct {
	r        Request
	classes  opclass.Set
	dirty    bool // changed on the hot path, not yet stored
	announce bool // first use not yet audited and announced
}

// Service is the approvals service of one gateway.
type Service struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	now  func() time.Time
	st   *store

	// writeMu serializes changes: store, install, audit record, events.
	writeMu sync.Mutex
	// mu guards the in-memory view; it is held only briefly.
	mu     sync.RWMutex
	byID   map[string]*entry
	live   map[string]*entry   // pending and approved requests: the clocks and RequestFor look only here
	grants map[string][]*entry // party id → its approved requests
	dirty  []*entry

	subMu sync.Mutex
	subs  []func(Event)

	hooks  []*webhook
	kick   chan struct{}
	done   chan struct{}
	ctx    context.Context // cancelled by Close; for webhook requests
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// Open checks cfg, loads the store and starts the background writers.
func Open(cfg Config, opts Options) (*Service, error) {
	if p := cfg.Check(); len(p) > 0 {
		return nil, fmt.Errorf("approvals: config: %s", strings.Join(p, "; "))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.WebhookRetry <= 0 {
		opts.WebhookRetry = time.Second
	}
	st, err := openStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	rs, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	s := &Service{cfg: cfg, opts: opts, log: opts.Log, now: opts.Now, st: st,
		byID: make(map[string]*entry, len(rs)), live: make(map[string]*entry), grants: make(map[string][]*entry),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, r := range rs {
		e := &entry{}
		s.byID[r.ID] = e
		s.installLocked(e, r)
	}
	for _, w := range cfg.Webhooks {
		h, err := newWebhook(w, s)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.hooks = append(s.hooks, h)
	}
	for _, h := range s.hooks {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); h.run() }()
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.flushLoop() }()
	return s, nil
}

// Close stops the background work, stores what the hot path changed and
// closes the store. Undelivered webhooks are dropped.
func (s *Service) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	s.cancel()
	s.wg.Wait()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.st.close()
}

// Subscribe calls f for every event, in order, after the change is stored
// and audited. f runs on the goroutine that made the change, which holds the
// service's write lock: it must be quick and must not call Create, Approve,
// Deny, Revoke or RequestFor itself (hand those to another goroutine).
func (s *Service) Subscribe(f func(Event)) {
	s.subMu.Lock()
	s.subs = append(s.subs, f)
	s.subMu.Unlock()
}

// Config is the checked config in force.
func (s *Service) Config() Config { return s.cfg }

// Create validates req and stores it as a new pending request. It computes
// how many approvals it needs and its pending deadline. When Options.Resolve
// is set, the party is taken from it by req.Party.ID.
func (s *Service) Create(req Request) (Request, error) {
	if s.opts.Resolve != nil {
		p, ok := s.opts.Resolve(req.Party.ID)
		if !ok {
			return Request{}, fmt.Errorf("%w: unknown party %q", ErrInvalid, req.Party.ID)
		}
		req.Party = p
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.createLocked(req)
}

func (s *Service) createLocked(req Request) (Request, error) {
	if s.closed.Load() {
		return Request{}, ErrClosed
	}
	now := s.now()
	if err := s.normalize(&req, now); err != nil {
		return Request{}, err
	}
	req.ID = s.newID()
	req.Created = now
	req.State = StatePending
	req.Approvals, req.Denial, req.Revocation = nil, nil, nil
	req.ClaimBy, req.NotAfter, req.WindowStart, req.WindowEnd, req.FirstUse, req.Warned, req.Ended = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	req.EndReason, req.Sessions = "", nil
	s.setRequired(&req)
	req.PendingUntil = later(now, req.WantStart).Add(s.cfg.pendingTTL)
	if err := s.st.put(&req); err != nil {
		return Request{}, err
	}
	e := &entry{}
	s.mu.Lock()
	s.byID[req.ID] = e
	s.installLocked(e, req)
	s.mu.Unlock()
	s.publish(req, step{RecRequest, Created, "pending", "", s.describeNew(&req)})
	return clone(req), nil
}

// normalize validates a new request and fills its defaults.
func (s *Service) normalize(r *Request, now time.Time) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	r.Party.ID = strings.TrimSpace(r.Party.ID)
	if r.Party.ID == "" {
		return bad("no party")
	}
	var targets []string
	for _, t := range r.Targets {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(targets, t) {
			continue
		}
		if s.opts.KnownTarget != nil && !s.opts.KnownTarget(t) {
			return bad("unknown target %q", t)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return bad("no targets")
	}
	if len(targets) > maxTargets {
		return bad("more than %d targets", maxTargets)
	}
	r.Targets = targets
	var classes []opclass.Class
	for _, c := range r.Classes {
		if c > opclass.Program {
			return bad("unknown operation class %d", c)
		}
		if !slices.Contains(classes, c) {
			classes = append(classes, c)
		}
	}
	if len(classes) == 0 {
		return bad("no operation classes")
	}
	slices.Sort(classes)
	r.Classes = classes
	r.Reason, r.Ticket = strings.TrimSpace(r.Reason), strings.TrimSpace(r.Ticket)
	if r.Reason == "" && r.Ticket == "" {
		return bad("a reason or a ticket is required")
	}
	if len(r.Reason) > maxText || len(r.Ticket) > maxText {
		return bad("reason or ticket longer than %d bytes", maxText)
	}
	switch {
	case r.Duration == 0:
		r.Duration = s.cfg.defaultWindow
	case r.Duration < 0:
		return bad("negative duration")
	case r.Duration > s.cfg.maxWindow:
		return bad("duration %s is longer than the longest work window, %s", r.Duration, s.cfg.maxWindow)
	}
	if r.WantStart.Before(now) {
		r.WantStart = now
	}
	if r.WantStart.Sub(now) > maxAhead {
		return bad("wanted start is more than 30 days ahead")
	}
	if r.RequestedBy = strings.TrimSpace(r.RequestedBy); r.RequestedBy == "" {
		r.RequestedBy = r.Party.ID
	}
	return nil
}

func (s *Service) setRequired(r *Request) {
	why := s.cfg.twoPerson(r.Party, r.Classes)
	need := 1
	if why != "" {
		need = 2
	}
	if need >= r.Required {
		r.Required, r.RequiredBecause = need, why
	}
}

// newID returns an unused id such as R-7K3F9Q, from letters and digits that
// cannot be mistaken for one another (no 0, 1, I, L, O).
func (s *Service) newID() string {
	const alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		b := []byte("R-000000")
		var rnd [32]byte
		rand.Read(rnd[:])
		n := 2
		for _, x := range rnd {
			if x >= 248 { // 248 = 8*31: keep the draw uniform
				continue
			}
			b[n] = alphabet[int(x)%len(alphabet)]
			if n++; n == len(b) {
				break
			}
		}
		if n == len(b) && s.byID[string(b)] == nil {
			return string(b)
		}
	}
}

// NormalizeID accepts "r-7k3f9q" and "7K3F9Q" for R-7K3F9Q.
func NormalizeID(id string) string {
	id = strings.ToUpper(strings.TrimSpace(id))
	if !strings.HasPrefix(id, "R-") {
		id = "R-" + id
	}
	return id
}

// RequestFor is called when a held session's command needs a grant that the
// party has not got. It joins a pending request of the party that already
// covers target and class, or extends one that no approver has approved yet
// (extending after an approval would widen what that approver saw), or
// creates a new request. The party's evidence is merged into a joined request;
// a PRC finding is never dropped.
func (s *Service) RequestFor(p PartyInfo, target string, class opclass.Class, reason string) (Request, bool, error) {
	now := s.now()
	// Most calls repeat a request that is already pending and unchanged.
	s.mu.RLock()
	if e := s.pendingFor(p, target, class, now); e != nil && e.r.Covers(target, class) && !evidenceChanges(e.r.Party, p) {
		r := clone(e.r)
		s.mu.RUnlock()
		return r, false, nil
	}
	s.mu.RUnlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	var id string
	if e := s.pendingFor(p, target, class, now); e != nil {
		id = e.r.ID
	}
	s.mu.RUnlock()
	if id == "" {
		r, err := s.createLocked(Request{Party: p, Targets: []string{target}, Classes: []opclass.Class{class},
			Reason: reason, RequestedBy: p.ID, WantStart: now})
		return r, err == nil, err
	}
	r, err := s.updateLocked(id, false, func(r *Request, now time.Time) ([]step, error) {
		if r.State != StatePending {
			return nil, ErrState
		}
		covered := r.Covers(target, class)
		widened := mergeParty(&r.Party, p)
		if covered && !widened {
			return nil, errNoChange
		}
		var what []string
		if !slices.Contains(r.Targets, target) {
			if s.opts.KnownTarget != nil && !s.opts.KnownTarget(target) {
				return nil, fmt.Errorf("%w: unknown target %q", ErrInvalid, target)
			}
			r.Targets = append(r.Targets, target)
			what = append(what, "target "+target)
		}
		if !slices.Contains(r.Classes, class) {
			r.Classes = append(r.Classes, class)
			slices.Sort(r.Classes)
			what = append(what, "class "+class.String())
		}
		if widened {
			what = append(what, "new evidence")
		}
		s.setRequired(r)
		d := fmt.Sprintf("request %s extended with %s; needs %d approval(s)%s%s", r.ID, strings.Join(what, ", "),
			r.Required, because(r), evidence(r))
		return []step{{RecRequest, Extended, "extended", "", d}}, nil
	})
	if errors.Is(err, errNoChange) {
		r, err = s.Get(id)
	}
	return r, false, err
}

// pendingFor finds the party's pending request to join: one that covers
// target and class, else the newest one without approvals. Caller holds mu.
func (s *Service) pendingFor(p PartyInfo, target string, class opclass.Class, now time.Time) *entry {
	var extend *entry
	for _, e := range s.live {
		r := &e.r
		if r.State != StatePending || r.Party.ID != p.ID || !now.Before(r.PendingUntil) {
			continue
		}
		if r.Covers(target, class) {
			return e
		}
		if len(r.Approvals) == 0 && len(r.Targets) < maxTargets && (extend == nil || r.Created.After(extend.r.Created)) {
			extend = e
		}
	}
	return extend
}

var errNoChange = errors.New("approvals: no change")

// ApproveOpts are what an approver may change while approving: only ever
// shorter and narrower.
type ApproveOpts struct {
	Until   time.Time       // the grant ends by then at the latest
	Classes []opclass.Class // a subset of the requested classes
	Targets []string        // a subset of the requested targets
	Note    string
}

// Approve records one approval. The Required-th approval by different people
// turns the request into a grant: its claim-by clock starts and, with
// window_from approval, its work window.
func (s *Service) Approve(id string, by Approver, o ApproveOpts) (Request, error) {
	if by.User == "" {
		return Request{}, fmt.Errorf("%w: no approver", ErrInvalid)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.updateLocked(id, false, func(r *Request, now time.Time) ([]step, error) {
		if r.State != StatePending {
			return nil, fmt.Errorf("%w: request %s is %s", ErrState, r.ID, r.State)
		}
		if !now.Before(r.PendingUntil) {
			return nil, fmt.Errorf("%w: request %s expired at %s", ErrState, r.ID, stamp(r.PendingUntil))
		}
		if by.Party != "" && by.Party == r.Party.ID {
			return nil, fmt.Errorf("%w: %s belongs to party %s, which asks", ErrSelfApproval, by, r.Party.ID)
		}
		if by.User == r.RequestedBy {
			return nil, fmt.Errorf("%w: %s asked for it", ErrSelfApproval, by)
		}
		if i := slices.IndexFunc(r.Approvals, func(a Step) bool { return a.By == by.User }); i >= 0 {
			return nil, fmt.Errorf("%w: %s approved %s at %s", ErrTwice, by, r.ID, stamp(r.Approvals[i].At))
		}
		st := Step{By: by.User, ByName: by.Name, At: now, Note: strings.TrimSpace(o.Note)}
		if len(st.Note) > maxText {
			return nil, fmt.Errorf("%w: note longer than %d bytes", ErrInvalid, maxText)
		}
		var narrowed []string
		if len(o.Classes) > 0 {
			keep := make([]opclass.Class, 0, len(o.Classes))
			for _, c := range o.Classes {
				if !slices.Contains(r.Classes, c) {
					return nil, fmt.Errorf("%w: class %s was not requested", ErrWidens, c)
				}
				if !slices.Contains(keep, c) {
					keep = append(keep, c)
				}
			}
			slices.Sort(keep)
			if len(keep) < len(r.Classes) {
				r.Classes, st.Classes = keep, slices.Clone(keep)
				narrowed = append(narrowed, "classes "+strings.Join(classNames(keep), ","))
			}
		}
		if len(o.Targets) > 0 {
			var keep []string
			for _, t := range o.Targets {
				if !slices.Contains(r.Targets, t) {
					return nil, fmt.Errorf("%w: target %s was not requested", ErrWidens, t)
				}
				if !slices.Contains(keep, t) {
					keep = append(keep, t)
				}
			}
			if len(keep) < len(r.Targets) {
				r.Targets, st.Targets = keep, slices.Clone(keep)
				narrowed = append(narrowed, "targets "+strings.Join(keep, ","))
			}
		}
		start := later(now, r.WantStart)
		if !o.Until.IsZero() {
			if !o.Until.After(start) {
				return nil, fmt.Errorf("%w: until %s is not after the start %s", ErrInvalid, stamp(o.Until), stamp(start))
			}
			st.Until = o.Until
			if r.NotAfter.IsZero() || o.Until.Before(r.NotAfter) {
				r.NotAfter = o.Until
			}
			narrowed = append(narrowed, "until "+stamp(o.Until))
		}
		r.Approvals = append(r.Approvals, st)
		d := fmt.Sprintf("request %s approved by %s (%d of %d)", r.ID, by, len(r.Approvals), r.Required)
		if st.Note != "" {
			d += fmt.Sprintf("; note %q", st.Note)
		}
		if len(narrowed) > 0 {
			d += "; narrowed to " + strings.Join(narrowed, ", ")
		}
		d += evidence(r)
		if len(r.Approvals) < r.Required {
			return []step{{RecApprove, Approved, "pending", "", d}}, nil
		}
		r.State = StateApproved
		r.ClaimBy = start.Add(s.cfg.claimBy)
		if s.cfg.WindowFrom == FromApproval {
			r.WindowStart = start
			r.WindowEnd = capAt(start.Add(r.Duration), r.NotAfter)
			r.ClaimBy = capAt(r.ClaimBy, r.WindowEnd)
		}
		r.ClaimBy = capAt(r.ClaimBy, r.NotAfter)
		return []step{
			{RecApprove, "", "approved", "", d},
			{RecGrant, Granted, "approved", "", fmt.Sprintf("request %s granted; %s%s", r.ID, describeWindow(r), evidence(r))},
		}, nil
	})
}

// Deny refuses a pending request. The note is required: the requester reads it.
func (s *Service) Deny(id string, by Approver, note string) (Request, error) {
	return s.end(id, by, note, StatePending, StateDenied, RecDeny, Denied)
}

// Revoke ends a grant at once: subscribers end its sessions on the Revoked
// event. If the store cannot be written, the grant is still revoked in memory
// (and the error returned).
func (s *Service) Revoke(id string, by Approver, note string) (Request, error) {
	return s.end(id, by, note, StateApproved, StateRevoked, RecRevoke, Revoked)
}

func (s *Service) end(id string, by Approver, note string, from, to State, typ audit.Type, kind EventKind) (Request, error) {
	note = strings.TrimSpace(note)
	if by.User == "" {
		return Request{}, fmt.Errorf("%w: no approver", ErrInvalid)
	}
	if note == "" {
		return Request{}, fmt.Errorf("%w: a note is required", ErrInvalid)
	}
	if len(note) > maxText {
		return Request{}, fmt.Errorf("%w: note longer than %d bytes", ErrInvalid, maxText)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.updateLocked(id, to == StateRevoked, func(r *Request, now time.Time) ([]step, error) {
		if r.State != from {
			return nil, fmt.Errorf("%w: request %s is %s, not %s", ErrState, r.ID, r.State, from)
		}
		st := &Step{By: by.User, ByName: by.Name, At: now, Note: note}
		verb := "denied"
		if to == StateRevoked {
			r.Revocation, verb = st, "revoked"
		} else {
			r.Denial = st
		}
		r.State, r.Ended = to, now
		r.EndReason = fmt.Sprintf("%s by %s: %s", verb, by, note)
		d := fmt.Sprintf("request %s %s by %s; note %q", r.ID, verb, by, note)
		if len(r.Sessions) > 0 {
			d += "; sessions " + strings.Join(r.Sessions, ",")
		}
		return []step{{typ, kind, string(to), note, d + evidence(r)}}, nil
	})
}

// step is one audit record and event that a change produces.
type step struct {
	typ                    audit.Type
	kind                   EventKind // "" for none
	status, reason, detail string
}

// updateLocked applies f to a copy of request id, stores it, installs it and
// publishes its steps. The caller holds writeMu. With failClosed, a store
// error still installs and publishes the change (for revocations).
func (s *Service) updateLocked(id string, failClosed bool, f func(r *Request, now time.Time) ([]step, error)) (Request, error) {
	if s.closed.Load() {
		return Request{}, ErrClosed
	}
	id = NormalizeID(id)
	s.mu.RLock()
	e := s.byID[id]
	var r Request
	if e != nil {
		r = clone(e.r)
	}
	s.mu.RUnlock()
	if e == nil {
		return Request{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	steps, err := f(&r, s.now())
	if err != nil {
		return Request{}, err
	}
	storeErr := s.st.put(&r)
	if storeErr != nil && !failClosed {
		return Request{}, storeErr
	}
	s.mu.Lock()
	s.installLocked(e, r)
	r = clone(e.r)
	s.mu.Unlock()
	if storeErr != nil {
		s.log.Error("approvals: change not stored; applied in memory", "request", id, "err", storeErr)
	}
	s.publish(r, steps...)
	return r, storeErr
}

// installLocked puts r in e and the grant index. Fields that the hot path
// changes (first use and its window, sessions) are kept if r does not have
// them. The caller holds mu.
func (s *Service) installLocked(e *entry, r Request) {
	cur := &e.r
	if cur.ID == r.ID {
		if r.FirstUse.IsZero() && !cur.FirstUse.IsZero() {
			r.FirstUse = cur.FirstUse
			if s.cfg.WindowFrom == FromFirstUse {
				r.WindowStart, r.WindowEnd = cur.WindowStart, cur.WindowEnd
			}
		}
		for _, id := range cur.Sessions {
			if !slices.Contains(r.Sessions, id) {
				r.Sessions = append(r.Sessions, id)
			}
		}
	}
	e.r = r
	if r.State.Terminal() {
		delete(s.live, r.ID)
	} else {
		s.live[r.ID] = e
	}
	var set opclass.Set
	for _, c := range r.Classes {
		set = set.With(c)
	}
	e.classes = set
	list := s.grants[r.Party.ID]
	i := slices.Index(list, e)
	switch {
	case r.State == StateApproved && i < 0:
		s.grants[r.Party.ID] = append(list, e)
	case r.State != StateApproved && i >= 0:
		list = slices.Delete(list, i, i+1)
		if len(list) == 0 {
			delete(s.grants, r.Party.ID)
		} else {
			s.grants[r.Party.ID] = list
		}
	}
}

// publish writes the audit records and emits the events of a stored change.
func (s *Service) publish(r Request, steps ...step) {
	for _, st := range steps {
		if s.opts.Audit != nil {
			s.opts.Audit(&audit.Record{Type: st.typ, Unit: -1, Func: -1, Sub: -1,
				Party: r.Party.ID, PartyName: r.Party.Name, Org: r.Party.Org,
				Target: strings.Join(r.Targets, ","), Class: strings.Join(classNames(r.Classes), ","),
				Decision: strings.TrimPrefix(string(st.typ), "approval."), Status: st.status, Reason: st.reason, Detail: st.detail})
		}
		if st.kind == "" {
			continue
		}
		ev := Event{Kind: st.kind, Request: r}
		s.subMu.Lock()
		subs := s.subs
		s.subMu.Unlock()
		for _, f := range subs {
			f(ev)
		}
		for _, h := range s.hooks {
			h.notify(ev)
		}
	}
}

// Get returns request id ("R-7K3F9Q"; case and the prefix do not matter).
func (s *Service) Get(id string) (Request, error) {
	id = NormalizeID(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byID[id]
	if e == nil {
		return Request{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return clone(e.r), nil
}

// ListFilter selects requests; empty fields select all.
type ListFilter struct {
	States []State
	Party  string
}

// List returns the requests that match f, newest first.
func (s *Service) List(f ListFilter) []Request {
	s.mu.RLock()
	out := make([]Request, 0, len(s.byID))
	for _, e := range s.byID {
		if (len(f.States) == 0 || slices.Contains(f.States, e.r.State)) && (f.Party == "" || f.Party == e.r.Party.ID) {
			out = append(out, clone(e.r))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Request) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Active returns a grant that lets party use class on target now. It reads
// memory only and does not allocate; the first use of a grant starts its
// work window (with window_from first-use) at once and is stored, audited and
// announced in the background. The returned Request shares its slices with
// the service: read, do not modify.
func (s *Service) Active(party, target string, class opclass.Class) (Request, bool) {
	now := s.now()
	s.mu.RLock()
	for _, e := range s.grants[party] {
		if !e.classes.Has(class) || !slices.Contains(e.r.Targets, target) || !usable(&e.r, now) {
			continue
		}
		if e.r.FirstUse.IsZero() {
			s.mu.RUnlock()
			return s.firstUse(e, now)
		}
		r := e.r
		s.mu.RUnlock()
		return r, true
	}
	s.mu.RUnlock()
	return Request{}, false
}

func usable(r *Request, now time.Time) bool {
	if r.State != StateApproved {
		return false
	}
	start := r.WantStart
	if !r.WindowStart.IsZero() {
		start = r.WindowStart
	}
	if now.Before(start) {
		return false
	}
	if !r.WindowEnd.IsZero() && !now.Before(r.WindowEnd) {
		return false
	}
	return !r.FirstUse.IsZero() || now.Before(r.ClaimBy)
}

func (s *Service) firstUse(e *entry, now time.Time) (Request, bool) {
	s.mu.Lock()
	if !usable(&e.r, now) {
		s.mu.Unlock()
		return Request{}, false
	}
	if e.r.FirstUse.IsZero() {
		r := &e.r
		r.FirstUse = now
		if s.cfg.WindowFrom == FromFirstUse {
			r.WindowStart = now
			r.WindowEnd = capAt(now.Add(r.Duration), r.NotAfter)
		}
		e.announce = true
		s.markDirtyLocked(e)
	}
	r := e.r
	s.mu.Unlock()
	return r, true
}

// Attach notes that session used grant id, for listings and so that
// EndSessions finds it. The relay calls it once per session and grant.
func (s *Service) Attach(id, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[NormalizeID(id)]
	if e == nil || slices.Contains(e.r.Sessions, session) || len(e.r.Sessions) >= maxSessions {
		return
	}
	e.r.Sessions = append(slices.Clip(e.r.Sessions), session)
	s.markDirtyLocked(e)
}

func (s *Service) markDirtyLocked(e *entry) {
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) flushLoop() {
	for {
		select {
		case <-s.kick:
			s.flush()
		case <-s.done:
			s.flush()
			return
		}
	}
}

// flush stores what the hot path changed, then audits and announces first uses.
func (s *Service) flush() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = nil
	rs := make([]*Request, 0, len(dirty))
	var announce []Request
	for _, e := range dirty {
		e.dirty = false
		r := clone(e.r)
		rs = append(rs, &r)
		if e.announce {
			e.announce = false
			announce = append(announce, r)
		}
	}
	s.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	if err := s.st.put(rs...); err != nil {
		s.log.Error("approvals: storing first use", "err", err)
	}
	for _, r := range announce {
		s.publish(r, step{RecFirstUse, FirstUse, string(r.State), "", fmt.Sprintf("request %s first used; %s", r.ID, describeWindow(&r))})
	}
}

// Run checks the clocks until ctx is done or the service is closed.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		s.tick()
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-t.C:
		}
	}
}

// tick expires requests and grants whose clocks ran out and warns of work
// windows that end soon.
func (s *Service) tick() {
	now := s.now()
	s.mu.RLock()
	var due []string
	for id, e := range s.live {
		if r := &e.r; (r.State == StatePending || r.State == StateApproved) && clockDue(r, now, s.cfg.warnBefore) {
			due = append(due, id)
		}
	}
	s.mu.RUnlock()
	if len(due) == 0 {
		return
	}
	slices.Sort(due)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for _, id := range due {
		_, err := s.updateLocked(id, true, func(r *Request, now time.Time) ([]step, error) {
			return s.clock(r, now)
		})
		if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, ErrClosed) {
			s.log.Error("approvals: clock", "request", id, "err", err)
		}
	}
}

func clockDue(r *Request, now time.Time, warn time.Duration) bool {
	switch {
	case r.State == StatePending:
		return !now.Before(r.PendingUntil)
	case r.FirstUse.IsZero() && !now.Before(r.ClaimBy):
		return true
	case r.WindowEnd.IsZero():
		return false
	case !now.Before(r.WindowEnd):
		return true
	default:
		return r.Warned.IsZero() && !now.Before(r.WindowEnd.Add(-warn))
	}
}

// clock applies the clock that ran out to r.
func (s *Service) clock(r *Request, now time.Time) ([]step, error) {
	if (r.State != StatePending && r.State != StateApproved) || !clockDue(r, now, s.cfg.warnBefore) {
		return nil, errNoChange
	}
	expire := func(to State, key, why string) []step {
		r.State, r.Ended, r.EndReason = to, now, why
		d := fmt.Sprintf("request %s %s: %s", r.ID, to, why)
		if len(r.Sessions) > 0 {
			d += "; sessions " + strings.Join(r.Sessions, ",")
		}
		return []step{{RecExpire, Expired, string(to), key, d}}
	}
	switch {
	case r.State == StatePending:
		return expire(StateExpired, "pending_ttl", fmt.Sprintf("not approved by %s (pending_ttl %s, %d of %d approvals)",
			stamp(r.PendingUntil), s.cfg.PendingTTL, len(r.Approvals), r.Required)), nil
	case r.FirstUse.IsZero() && !now.Before(r.ClaimBy):
		return expire(StateExpired, "claim_by", fmt.Sprintf("granted but not used by %s (claim_by %s)", stamp(r.ClaimBy), s.cfg.ClaimBy)), nil
	case !now.Before(r.WindowEnd):
		return expire(StateClosed, "window_end", fmt.Sprintf("work window %s ended", describeSpan(r.WindowStart, r.WindowEnd))), nil
	}
	r.Warned = now
	d := fmt.Sprintf("request %s: work window ends at %s, in %s", r.ID, stamp(r.WindowEnd), r.WindowEnd.Sub(now).Round(time.Second))
	if len(r.Sessions) > 0 {
		d += "; sessions " + strings.Join(r.Sessions, ",")
	}
	return []step{{RecWarn, ExpiringSoon, string(r.State), "warn_before", d}}, nil
}

// Holds reports whether session ss works under grant r: it used the grant
// (Attach) or was opened under it (sessions.Info.Grant).
func (r *Request) Holds(ss *sessions.Session) bool {
	return slices.Contains(r.Sessions, ss.ID()) || ss.Info().Grant == r.ID
}

// EndSessions returns an event subscriber that stops, in reg, the sessions of
// a grant that was revoked or expired. The relay that owns each session
// writes its close record with the reason given.
func EndSessions(reg *sessions.Registry) func(Event) {
	return func(ev Event) {
		r := ev.Request
		if ev.Kind != Revoked && ev.Kind != Expired {
			return
		}
		reason := "grant " + r.ID + " " + string(r.State)
		if r.EndReason != "" {
			reason += ": " + r.EndReason
		}
		reg.KillWhere(r.Holds, reason)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// capAt returns t, or limit if limit is set and earlier.
func capAt(t, limit time.Time) time.Time {
	if !limit.IsZero() && limit.Before(t) {
		return limit
	}
	return t
}
