package approvals

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/protocols/opclass"
)

// State is where a request stands.
type State string

const (
	StatePending  State = "pending"  // waiting for approvals
	StateApproved State = "approved" // a grant: usable within its clocks
	StateDenied   State = "denied"   // an approver said no
	StateExpired  State = "expired"  // nobody approved it in time, or the grant was not used by its claim-by time
	StateRevoked  State = "revoked"  // an approver ended the grant
	StateClosed   State = "closed"   // the grant's work window ended
)

// Terminal reports whether nothing more can happen to a request in state s.
func (s State) Terminal() bool { return s != StatePending && s != StateApproved }

// EventKind names what happened to a request.
type EventKind string

const (
	Created      EventKind = "created"       // a new request is pending
	Extended     EventKind = "extended"      // a pending request gained targets or classes (RequestFor joined it)
	Approved     EventKind = "approved"      // one approval step; more are needed
	Granted      EventKind = "granted"       // the last approval needed: the request is a grant
	Denied       EventKind = "denied"        // an approver refused it
	Revoked      EventKind = "revoked"       // an approver ended a grant: end its sessions now
	Expired      EventKind = "expired"       // a clock ran out (pending TTL, claim-by or the work window): end its sessions now
	ExpiringSoon EventKind = "expiring-soon" // the work window ends within warn_before: warn its sessions
	FirstUse     EventKind = "first-use"     // the grant was used for the first time
)

// Event is passed to subscribers after the change is stored and audited.
type Event struct {
	Kind    EventKind
	Request Request
}

// Audit record types of approval steps, part of the audit format.
const (
	RecRequest  audit.Type = "approval.request"   // created or extended
	RecApprove  audit.Type = "approval.approve"   // one approver's step
	RecGrant    audit.Type = "approval.grant"     // the request became a grant
	RecDeny     audit.Type = "approval.deny"      // refused
	RecRevoke   audit.Type = "approval.revoke"    // a grant was ended by an approver
	RecExpire   audit.Type = "approval.expire"    // a clock ran out (Status says which)
	RecWarn     audit.Type = "approval.warn"      // the work window ends soon
	RecFirstUse audit.Type = "approval.first-use" // the grant was used for the first time
)

var (
	ErrNotFound     = errors.New("approvals: no such request")
	ErrInvalid      = errors.New("approvals: invalid request")
	ErrState        = errors.New("approvals: not possible in this state")
	ErrSelfApproval = errors.New("approvals: nobody approves their own request")
	ErrTwice        = errors.New("approvals: this approver has already approved")
	ErrWidens       = errors.New("approvals: an approver can only narrow a request")
	ErrClosed       = errors.New("approvals: service closed")
)

// PartyInfo is what an approver sees about who asks. Findings are evidence as
// text lines, such as policy.Finding.String() gives; IsPRCFinding says which
// are PRC findings. Verdict is policy.Verdict.String(): PRC, non-PRC or unknown.
type PartyInfo struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Org      string   `json:"org,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	PRC      bool     `json:"prc,omitempty"`     // registered as PRC-managed
	Verdict  string   `json:"verdict,omitempty"` // PRC | non-PRC | unknown (any case)
	Findings []string `json:"findings,omitempty"`
}

// IsPRCFinding reports whether a finding line is a PRC finding: it ends in
// "(PRC)" or "(PRC; source)", as policy.Finding.String() writes them, or it
// starts with "prc:".
func IsPRCFinding(f string) bool {
	return strings.HasSuffix(f, "(PRC)") || strings.Contains(f, "(PRC; ") || len(f) >= 4 && strings.EqualFold(f[:4], "prc:")
}

// HasPRC reports whether anything about the party points to the PRC.
func (p PartyInfo) HasPRC() bool {
	return p.PRC || strings.EqualFold(p.Verdict, "prc") || slices.ContainsFunc(p.Findings, IsPRCFinding)
}

// Approver is an authenticated person acting on requests.
type Approver struct {
	User  string `json:"user"`
	Name  string `json:"name,omitempty"`
	Party string `json:"party,omitempty"` // set when the person belongs to a party (e.g. a vendor's staff)
}

func (a Approver) String() string {
	if a.Name == "" || a.Name == a.User {
		return a.User
	}
	return a.Name + " (" + a.User + ")"
}

// Step is one decision on a request.
type Step struct {
	By      string          `json:"by"`
	ByName  string          `json:"by_name,omitempty"`
	At      time.Time       `json:"at"`
	Note    string          `json:"note,omitempty"`
	Until   time.Time       `json:"until,omitzero"`   // shortened: the grant ends by then
	Classes []opclass.Class `json:"classes,omitzero"` // narrowed to these
	Targets []string        `json:"targets,omitzero"` // narrowed to these
}

// Request is an access request and, once approved, a grant.
type Request struct {
	ID              string          `json:"id"` // short and typable: R-7K3F9Q
	Party           PartyInfo       `json:"party"`
	Targets         []string        `json:"targets"`
	Classes         []opclass.Class `json:"classes"`
	Reason          string          `json:"reason,omitempty"`
	Ticket          string          `json:"ticket,omitempty"`
	RequestedBy     string          `json:"requested_by"` // party id or a person's user name
	WantStart       time.Time       `json:"want_start,omitzero"`
	Duration        time.Duration   `json:"duration"`
	Created         time.Time       `json:"created"`
	State           State           `json:"state"`
	Required        int             `json:"required"`                   // approvals needed
	RequiredBecause string          `json:"required_because,omitempty"` // why two
	Approvals       []Step          `json:"approvals,omitempty"`
	Denial          *Step           `json:"denial,omitempty"`
	Revocation      *Step           `json:"revocation,omitempty"`
	PendingUntil    time.Time       `json:"pending_until,omitzero"`
	ClaimBy         time.Time       `json:"claim_by,omitzero"`
	NotAfter        time.Time       `json:"not_after,omitzero"` // the earliest Until of the approvals
	WindowStart     time.Time       `json:"window_start,omitzero"`
	WindowEnd       time.Time       `json:"window_end,omitzero"`
	FirstUse        time.Time       `json:"first_use,omitzero"`
	Warned          time.Time       `json:"warned,omitzero"`
	Ended           time.Time       `json:"ended,omitzero"`
	EndReason       string          `json:"end_reason,omitempty"`
	Sessions        []string        `json:"sessions,omitempty"` // sessions that used the grant, for display
}

// Covers reports whether the request names target and class.
func (r *Request) Covers(target string, class opclass.Class) bool {
	return slices.Contains(r.Targets, target) && slices.Contains(r.Classes, class)
}

func classNames(cs []opclass.Class) []string {
	if cs == nil {
		return nil
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// ParseClasses parses class names such as ["read", "write"].
func ParseClasses(names []string) ([]opclass.Class, error) {
	if names == nil {
		return nil, nil
	}
	out := make([]opclass.Class, 0, len(names))
	for _, n := range names {
		c, err := opclass.Parse(strings.TrimSpace(n))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// MarshalJSON writes classes by name and the duration as text ("2h0m0s").
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	return json.Marshal(struct {
		plain
		Classes  []string `json:"classes"`
		Duration string   `json:"duration"`
	}{plain(r), classNames(r.Classes), r.Duration.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request
	v := struct {
		*plain
		Classes  []string `json:"classes"`
		Duration string   `json:"duration"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	cs, err := ParseClasses(v.Classes)
	if err != nil {
		return err
	}
	r.Classes = cs
	r.Duration = 0
	if v.Duration != "" {
		if r.Duration, err = parseDuration(v.Duration); err != nil {
			return fmt.Errorf("%w: duration %q", ErrInvalid, v.Duration)
		}
	}
	return nil
}

// MarshalJSON writes classes by name.
func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step
	return json.Marshal(struct {
		plain
		Classes []string `json:"classes,omitempty"`
	}{plain(s), classNames(s.Classes)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Step) UnmarshalJSON(b []byte) error {
	type plain Step
	v := struct {
		*plain
		Classes []string `json:"classes"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	cs, err := ParseClasses(v.Classes)
	s.Classes = cs
	return err
}

// clone copies r deeply enough that changing the copy leaves r alone.
func clone(r Request) Request {
	r.Party.Findings = slices.Clone(r.Party.Findings)
	r.Targets = slices.Clone(r.Targets)
	r.Classes = slices.Clone(r.Classes)
	r.Approvals = slices.Clone(r.Approvals)
	r.Sessions = slices.Clone(r.Sessions)
	if r.Denial != nil {
		d := *r.Denial
		r.Denial = &d
	}
	if r.Revocation != nil {
		d := *r.Revocation
		r.Revocation = &d
	}
	return r
}
