// Package auditquery reads brana's audit log for people: it selects records by
// time, party, target, session, operation class, decision, type, OPC UA
// service and OPC UA node, and prints them either as the stored JSON lines
// (unchanged, so hashes still match and the output pipes into jq) or as one
// aligned line per record for an auditor.
//
// It only reads: the log in the directory may be live, and what a query sees
// is every complete record up to the moment each segment is read.
package auditquery

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Filter selects records. Zero fields select everything.
//
// Party, Target, Session, Class, Decision and Type each take one value or
// several separated by commas (any of them matches):
//   - Party matches the party id exactly, or a case-insensitive part of the
//     party's name or organisation ("acme" finds "ACME s.r.o.").
//   - Type matches a record type exactly, or a family: "session" selects
//     session.open, session.close and session.refused.
//   - Class and Decision of a result record are those of its command, so that
//     "--decision allow --class write" shows the writes and their outcomes.
//     A result with a decision of its own (an OPC UA request that failed on
//     the way to the PLC is "error") matches either.
//
// Service takes one OPC UA service name or several separated by commas, any
// case ("write" finds Write). Node is one case-insensitive part of a NodeId
// and matches a record when any of its recorded OPC UA items names such a
// node ("TimeDelay" finds ns=2;s=Feeder.Protection.TimeDelay); a result
// record matches when its command does. Only the first audit.MaxValues items
// of a request are recorded, so only those can match.
type Filter struct {
	Since, Until time.Time // Since inclusive, Until exclusive; zero: open
	Party        string
	Target       string
	Session      string
	Class        string
	Decision     string
	Type         string
	Service      string
	Node         string
	FromSeq      uint64 // first seq to consider; 0: from the start of the log
	ToSeq        uint64 // last seq to consider; 0: to the end
}

// Flags are the command-line spellings of a Filter, exactly as given.
type Flags struct {
	Since, Until                                  string // RFC 3339 time, local date or time, or duration before now ("2h")
	Party, Target, Session, Class, Decision, Type string
	Service, Node                                 string
	FromSeq, ToSeq                                uint64
}

// Decisions are the values a record's decision field takes: "held" waits for
// an approved grant, "partial" is an OPC UA request some of whose elements
// were refused, "error" an OPC UA result whose request failed on the way.
var Decisions = []string{"allow", "deny", "held", "partial", "invalid", "error"}

// Types are the record types, for validation and help texts.
var Types = []audit.Type{
	audit.GatewayStart, audit.GatewayStop, audit.ConfigLoad,
	audit.SessionOpen, audit.SessionClose, audit.SessionRefused,
	audit.Command, audit.Result, audit.Checkpoint, audit.Gap, audit.Retention,
}

var (
	errEmptyRange = errors.New("auditquery: --since is not before --until: nothing can match")
	errStop       = errors.New("auditquery: stop") // ends a Scan early; never returned
)

// ParseFilter turns command-line flags into a Filter. Times are RFC 3339
// ("2026-11-26T12:00:00Z", "2026-11-26T13:00:00+01:00"), a local date or
// date and time ("2026-11-26", "2026-11-26T13:00"), or a duration meaning
// that long before now ("2h", "90m"). Class, Decision and Type are checked
// against the known values so that a typo is an error, not an empty answer.
func ParseFilter(fl Flags, now time.Time) (Filter, error) {
	f := Filter{
		Party: fl.Party, Target: fl.Target, Session: fl.Session,
		Class: fl.Class, Decision: fl.Decision, Type: fl.Type,
		Service: fl.Service, Node: strings.TrimSpace(fl.Node),
		FromSeq: fl.FromSeq, ToSeq: fl.ToSeq,
	}
	var err error
	if f.Since, err = ParseTime(fl.Since, now); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = ParseTime(fl.Until, now); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, errEmptyRange
	}
	if f.ToSeq != 0 && f.FromSeq > f.ToSeq {
		return f, fmt.Errorf("auditquery: --from-seq %d is after --to-seq %d", f.FromSeq, f.ToSeq)
	}
	for _, c := range split(f.Class) {
		if _, err := opclass.Parse(c); err != nil {
			return f, fmt.Errorf("--class: %q is not an operation class (read, diagnose, write, control, program, unknown)", c)
		}
	}
	for _, d := range split(f.Decision) {
		if !contains(Decisions, d) {
			return f, fmt.Errorf("--decision: %q is not a decision (%s)", d, strings.Join(Decisions, ", "))
		}
	}
	for _, t := range split(f.Type) {
		if !knownType(t) {
			return f, fmt.Errorf("--type: %q is not a record type (%s)", t, typeList())
		}
	}
	return f, nil
}

// ParseTime reads one time flag; "" is the zero time (no bound).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration means that long ago and cannot be negative", s)
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-26T12:00:00Z), a local date or time (2026-11-26, 2026-11-26T13:00) nor a duration before now (2h)", s)
}

func knownType(t string) bool {
	for _, k := range Types {
		if string(k) == t || strings.HasPrefix(string(k), t+".") {
			return true
		}
	}
	return false
}

func typeList() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// split turns "a, b" into [a b]; "" into nothing.
func split(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// matcher is a Filter prepared for many records.
type matcher struct {
	f                                          Filter
	party                                      []string // lower case for names
	partyRaw, target, session, class, dec, typ []string
	service                                    []string
	node                                       string // lower case
}

func newMatcher(f Filter) *matcher {
	m := &matcher{f: f, partyRaw: split(f.Party), target: split(f.Target), session: split(f.Session),
		class: split(f.Class), dec: split(f.Decision), typ: split(f.Type), service: split(f.Service),
		node: strings.ToLower(f.Node)}
	for _, p := range m.partyRaw {
		m.party = append(m.party, strings.ToLower(p))
	}
	return m
}

// match reports whether r is selected; t is its parsed time.
func (m *matcher) match(r *record, t time.Time) bool {
	if !m.f.Since.IsZero() && t.Before(m.f.Since) {
		return false
	}
	if !m.f.Until.IsZero() && !t.Before(m.f.Until) {
		return false
	}
	if len(m.partyRaw) > 0 && !m.matchParty(r) {
		return false
	}
	if len(m.target) > 0 && !contains(m.target, r.Target) {
		return false
	}
	if len(m.session) > 0 && !contains(m.session, r.Session) {
		return false
	}
	if len(m.class) > 0 && !contains(m.class, r.Class) {
		return false
	}
	if len(m.dec) > 0 && !contains(m.dec, r.Decision) && (r.cmdDecision == "" || !contains(m.dec, r.cmdDecision)) {
		return false
	}
	if len(m.service) > 0 && !m.matchService(r.Service) {
		return false
	}
	if m.node != "" && !m.matchNode(r) {
		return false
	}
	if len(m.typ) > 0 {
		ok := false
		for _, t := range m.typ {
			if r.Type == t || strings.HasPrefix(r.Type, t+".") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (m *matcher) matchService(s string) bool {
	if s == "" {
		return false
	}
	for _, x := range m.service {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// matchNode looks at the record's own items and, for a result, at the nodes
// its command named: result items carry only a status.
func (m *matcher) matchNode(r *record) bool {
	for i := range r.Items {
		if n := r.Items[i].Node; n != "" && strings.Contains(strings.ToLower(n), m.node) {
			return true
		}
	}
	for _, n := range r.cmdNodes {
		if strings.Contains(strings.ToLower(n), m.node) {
			return true
		}
	}
	return false
}

func (m *matcher) matchParty(r *record) bool {
	if r.Party != "" && contains(m.partyRaw, r.Party) {
		return true
	}
	name, org := strings.ToLower(r.PartyName), strings.ToLower(r.Org)
	for _, p := range m.party {
		if (name != "" && strings.Contains(name, p)) || (org != "" && strings.Contains(org, p)) {
			return true
		}
	}
	return false
}
