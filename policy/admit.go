package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/brana-ot/brana/protocols/opcua"
)

// Signals are what the gateway knows about one session at run time. The
// geoip package fills the geolocation fields from an offline database.
type Signals struct {
	Source    netip.Addr // the address the session came from
	Country   string     // ISO 3166-1 alpha-2 country of Source, "" when no database knew it
	ASN       uint32     // autonomous system of Source, 0 when unknown
	ASOrg     string     // its owner's name as the database spells it
	GeoKnown  bool       // a database answered for Source
	GeoSource string     // which database(s) answered, e.g. "GeoLite2-Country.mmdb"
	GeoErr    string     // why none did: no database, a lookup error

	CertCountry string // subject country (C=) of the client certificate, if any

	Relay        string // the relay endpoint the session came through (host or address, optional port); "" for a direct session
	RelayCountry string // the country of the relay's address, if the gateway looked it up

	Now           time.Time // the gateway's clock
	ClockTrusted  bool      // Now is synchronised (NTP, RTC); review dates and bundle expiry depend on it
	BundleExpired bool      // the signed data bundle is past its expiry
}

// AdmissionVerdict is what happens to a session. The zero value is Deny.
type AdmissionVerdict uint8

const (
	Deny     AdmissionVerdict = iota // refused
	Approval                         // needs an engineer's explicit, time-boxed approval
	Allow                            // admitted; the rules decide each command
)

func (v AdmissionVerdict) String() string {
	switch v {
	case Approval:
		return "approval"
	case Allow:
		return "allow"
	}
	return "deny"
}

// Steps of the decision order (DESIGN.md, "Policy model"); the first that
// matches decides.
const (
	StepUnidentified = 1 // identity not bound to an enrolled party: deny
	StepBlocked      = 2 // the party or a controller is listed with action block: deny
	StepPRCManaged   = 3 // the registry says PRC-managed: approval (strict: deny)
	StepPRCRuntime   = 4 // a PRC finding at run time: approval (strict: deny), conflict recorded
	StepUnknown      = 5 // anything unknown: approval
	StepRules        = 6 // admitted: the rules decide
)

// Admission is the decision on one session, with everything behind it.
type Admission struct {
	Verdict  AdmissionVerdict
	Step     int    // 1..6 of the decision order
	Reason   string // one line: which step and which finding
	Party    string // party id, "" when unidentified
	Strict   bool   // strict mode was on
	Findings []Finding
	Conflict string // run-time PRC findings against what the party declared, e.g. "declared CZ, source address in CN"
	// Supervised: commands above read pass only while an engineer watches
	// the session (the party's supervised setting, or
	// jurisdiction.supervise_prc after a PRC finding).
	Supervised bool
}

// String renders a one-line summary for logs and audit records.
func (a Admission) String() string {
	s := fmt.Sprintf("%s (step %d): %s", a.Verdict, a.Step, a.Reason)
	if a.Conflict != "" {
		s += "; conflict: " + a.Conflict
	}
	if a.Supervised {
		s += "; supervised"
	}
	return s
}

// NeedsWatcher reports whether a command of class c may pass only while an
// engineer watches the session: in a supervised session, everything above
// read (an unknown class included).
func (a *Admission) NeedsWatcher(c opclass.Class) bool {
	return a.Supervised && c != opclass.Read
}

// Admit decides whether a session of party (nil: unidentified) with the
// run-time signals sig is admitted, needs approval or is denied, by the
// decision order of DESIGN.md; the first step that matches wins:
//
//  1. no enrolled party (or an owner, which never connects) → deny;
//  2. the party or a controller up the chain listed with action block → deny;
//  3. the registry says PRC-managed (Party.Verdict) → approval, strict: deny;
//  4. a PRC finding at run time: source country, source AS, certificate
//     country, relay (declared by a PRC party, in a high-risk country or
//     under its country domain) → approval, strict: deny; Conflict says what
//     the party declared against what was found;
//  5. anything unknown: registry evidence missing, review date passed, a
//     public source address without geo data, an undeclared relay, and for
//     sessions that are not local an untrusted clock or an expired bundle
//     → approval;
//  6. otherwise → allow, and the rules decide each command.
//
// An admitted session is supervised when its party says so, or after a
// PRC finding (steps 3 and 4) when jurisdiction.supervise_prc is set.
//
// A non-PRC finding never cancels a PRC one; geolocation only escalates. A
// loopback, private or link-local source is a local-network finding, not
// an unknown one. A session is local when the party is Local and its source
// is a local address.
//
// Admit is pure; it allocates (once per session). A Party from another
// Policy is matched by its ID and judged by this policy's registry.
func (p *Policy) Admit(party *Party, sig Signals) Admission {
	a := Admission{Strict: p.j.strict}
	pi := p.partyIndex(party)
	if pi < 0 {
		a.Verdict, a.Step, a.Reason = Deny, StepUnidentified, "identity not bound to an enrolled party"
		return a
	}
	pt := p.parties[pi]
	a.Party = pt.ID
	if pt.Kind == "owner" {
		a.Verdict, a.Step, a.Reason = Deny, StepUnidentified, fmt.Sprintf("party %q is an owner: it never connects", pt.ID)
		return a
	}
	a.Findings = slices.Clone(pt.Findings)
	static := len(a.Findings)
	a.Findings = p.runtimeFindings(a.Findings, pt, &sig)
	decisive := func(idx ...int) {
		for _, i := range idx {
			a.Findings[i].Decisive = true
		}
	}
	a.Supervised = pt.Supervised
	prcOrDeny := func(step int, why string) {
		a.Step = step
		a.Supervised = a.Supervised || p.j.supervisePRC
		if p.j.strict {
			a.Verdict, a.Reason = Deny, why+" (strict mode)"
		} else {
			a.Verdict, a.Reason = Approval, why
		}
	}

	// 2: blocked by a listing.
	if len(pt.blocked) > 0 {
		decisive(pt.blocked...)
		f := a.Findings[pt.blocked[0]]
		a.Verdict, a.Step = Deny, StepBlocked
		a.Reason = fmt.Sprintf("%s is listed with action block: %s", f.Subject, f.Value)
		return a
	}
	// 3: PRC-managed by the registry.
	if pt.Verdict == PRC {
		// The reason names the first fact; a controller finding only
		// says that the fact is up the chain.
		var first *Finding
		for i := range a.Findings[:static] {
			if f := &a.Findings[i]; f.Verdict == PRC {
				decisive(i)
				if first == nil || first.Kind == "controller" && f.Kind != "controller" {
					first = f
				}
			}
		}
		prcOrDeny(StepPRCManaged, "PRC-managed: "+first.Kind+" "+first.Subject+": "+first.Value)
		return a
	}
	// 4: a PRC finding at run time.
	var prc []string
	firstPRC := -1
	for i := static; i < len(a.Findings); i++ {
		if f := &a.Findings[i]; f.Verdict == PRC {
			decisive(i)
			prc = append(prc, conflictPhrase(f))
			if firstPRC < 0 {
				firstPRC = i
			}
		}
	}
	if firstPRC >= 0 {
		f := a.Findings[firstPRC]
		prcOrDeny(StepPRCRuntime, "PRC finding at run time: "+f.Kind+" "+f.Subject+": "+f.Value)
		a.Conflict = "declared " + pt.declared + ", " + strings.Join(prc, ", ")
		return a
	}
	// 5: anything unknown.
	firstUnknown := -1
	for i := range a.Findings {
		if a.Findings[i].Verdict == Unknown {
			decisive(i)
			if firstUnknown < 0 {
				firstUnknown = i
			}
		}
	}
	if firstUnknown >= 0 {
		f := a.Findings[firstUnknown]
		a.Verdict, a.Step = Approval, StepUnknown
		a.Reason = "unknown: " + f.Kind + " " + f.Subject + ": " + f.Value
		if n := countDecisive(a.Findings) - 1; n > 0 {
			a.Reason += fmt.Sprintf(" (and %d more)", n)
		}
		return a
	}
	a.Verdict, a.Step, a.Reason = Allow, StepRules, "no PRC or unknown finding: the rules decide"
	return a
}

func countDecisive(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Decisive {
			n++
		}
	}
	return n
}

// runtimeFindings appends what the session's signals say.
func (p *Policy) runtimeFindings(fs []Finding, pt *Party, sig *Signals) []Finding {
	src := sig.Source.WithZone("").Unmap()
	local := pt.Local && isLocalAddr(src)
	clock := sig.ClockTrusted && !sig.Now.IsZero()
	geoSource := sig.GeoSource
	if geoSource == "" {
		geoSource = "geo database"
	}

	// Source address.
	switch {
	case !src.IsValid():
		fs = append(fs, Finding{Kind: "geo", Subject: "source", Value: "source address not known", Verdict: Unknown, Source: "session"})
	case isLocalAddr(src):
		fs = append(fs, Finding{Kind: "geo", Subject: src.String(), Value: "local network", Verdict: NonPRC, Source: "session"})
	case sig.Country != "":
		cc := strings.ToUpper(sig.Country)
		fs = append(fs, Finding{Kind: "source-country", Subject: src.String(), Value: cc, Verdict: p.j.countryVerdict(cc), Source: geoSource})
	default:
		why := "no geo data"
		switch {
		case sig.GeoErr != "":
			why += ": " + sig.GeoErr
		case sig.GeoKnown:
			why += ": the database has no country for this address"
		}
		fs = append(fs, Finding{Kind: "geo", Subject: src.String(), Value: why, Verdict: Unknown, Source: geoSource})
	}
	if src.IsValid() && !isLocalAddr(src) && (sig.ASN != 0 || sig.ASOrg != "") {
		fs = append(fs, p.asnFinding(src, sig, geoSource))
	}

	// Certificate subject.
	if sig.CertCountry != "" {
		cc := strings.ToUpper(sig.CertCountry)
		fs = append(fs, Finding{Kind: "certificate", Subject: "client certificate", Value: "subject country " + cc, Verdict: p.j.countryVerdict(cc), Source: "session"})
	}

	// Relay.
	if sig.Relay != "" {
		fs = p.relayFindings(fs, pt, sig)
	}

	// Evidence review dates, the party's and its controllers'.
	if clock {
		for _, m := range append([]*Party{pt}, pt.chain...) {
			if stale(m.reviewBy, sig.Now) {
				fs = append(fs, Finding{Kind: "review", Subject: m.ID, Value: "evidence stale: review was due by " + m.ev.ReviewBy, Verdict: Unknown, Source: "config"})
			}
		}
	}

	// The clock and the bundle matter to every session but a local one.
	if !local {
		if !clock {
			fs = append(fs, Finding{Kind: "clock", Subject: "gateway", Value: "clock not trusted: review dates and data expiry cannot be checked", Verdict: Unknown, Source: "session"})
		}
		if sig.BundleExpired {
			fs = append(fs, Finding{Kind: "bundle", Subject: "data bundle", Value: "expired: listings and geo data may be out of date", Verdict: Unknown, Source: "bundle"})
		}
	}
	return fs
}

func (p *Policy) asnFinding(src netip.Addr, sig *Signals, geoSource string) Finding {
	what := "AS" + strconv.FormatUint(uint64(sig.ASN), 10)
	if sig.ASN == 0 {
		what = "AS?"
	}
	if sig.ASOrg != "" {
		what += " " + sig.ASOrg
	}
	f := Finding{Kind: "source-asn", Subject: src.String(), Value: what, Verdict: NonPRC, Source: geoSource}
	if where, ok := p.j.asns[sig.ASN]; ok && sig.ASN != 0 {
		f.Verdict, f.Value = PRC, what+" (high-risk: "+where+")"
		return f
	}
	if key := normName(sig.ASOrg); key != "" {
		for _, i := range p.j.byName[key] {
			if e := &p.j.listings[i]; e.Action != ActionNote {
				f.Verdict, f.Value = PRC, what+" (listed: "+e.Source+": "+e.Name+"; "+listingOrigin(e)+")"
				return f
			}
		}
	}
	return f
}

func (p *Policy) relayFindings(fs []Finding, pt *Party, sig *Signals) []Finding {
	host, addr := splitRelay(sig.Relay)
	prc := false
	for _, m := range p.j.relays {
		if m.matches(host, addr) {
			fs = append(fs, Finding{Kind: "relay", Subject: host, Value: "relay " + m.String() + " of PRC party " + m.party, Verdict: PRC, Source: "config"})
			prc = true
			break
		}
	}
	if cc := tldCountry(host); cc != "" && !addr.IsValid() && p.j.isHighRisk(cc) {
		fs = append(fs, Finding{Kind: "relay", Subject: host, Value: "relay domain in " + cc, Verdict: PRC, Source: "session"})
		prc = true
	}
	if cc := strings.ToUpper(sig.RelayCountry); cc != "" {
		v := p.j.countryVerdict(cc)
		prc = prc || v == PRC
		fs = append(fs, Finding{Kind: "relay", Subject: host, Value: "relay address in " + cc, Verdict: v, Source: sig.GeoSource})
	}
	declared := false
	for _, m := range pt.relays {
		if m.matches(host, addr) {
			declared = true
			break
		}
	}
	switch {
	case declared:
		fs = append(fs, Finding{Kind: "relay", Subject: host, Value: "declared by " + pt.ID, Verdict: NonPRC, Source: "config"})
	case !prc:
		fs = append(fs, Finding{Kind: "relay", Subject: host, Value: "relay not declared by " + pt.ID, Verdict: Unknown, Source: "session"})
	}
	return fs
}

// conflictPhrase says a run-time PRC finding briefly, for Admission.Conflict.
func conflictPhrase(f *Finding) string {
	switch f.Kind {
	case "source-country":
		return "source address in " + f.Value
	case "source-asn":
		return "source network " + f.Value
	case "certificate":
		return "certificate " + f.Value
	case "relay":
		return "relay " + f.Subject + ": " + f.Value
	}
	return f.Kind + " " + f.Value
}

// DecideAdmitted is DecideModbus behind an admission: a session whose
// admission denies is refused with Reason NotAdmitted, and one that needs
// approval is refused with Reason NeedsApproval unless approved (an active
// grant, which the approvals component checks) is true; otherwise the rules
// decide. A program-class request needs an approved grant whatever the
// admission. Like DecideModbus it is pure and does not allocate.
func (p *Policy) DecideAdmitted(a *Admission, approved bool, party *Party, target string, req *modbus.Request) (*Rule, error) {
	if d := p.admitted(a, approved, req.Class); d != nil {
		return nil, d
	}
	return p.DecideModbus(party, target, req)
}

// DecideOPCUAAdmitted is DecideAdmitted for one element of an OPC UA
// request: the session's admission and grant first, then DecideOPCUA.
func (p *Policy) DecideOPCUAAdmitted(a *Admission, approved bool, party *Party, target string, v *OPCUAView, e *opcua.Element) (*Rule, error) {
	if d := p.admitted(a, approved, e.Class); d != nil {
		return nil, d
	}
	return p.DecideOPCUAIn(party, target, v, e)
}

// admitted is the part of the decision that comes before the rules.
func (p *Policy) admitted(a *Admission, approved bool, class opclass.Class) *Denial {
	switch {
	case a == nil || a.Verdict == Deny:
		return &p.notAdmitted
	case a.Verdict == Approval && !approved:
		return &p.needsApproval
	case class == opclass.Program && !approved:
		// Loading logic or firmware always needs a grant that names program.
		return &p.needsApproval
	}
	return nil
}

// ReviewDue reports whether the evidence of party, or of a controller up
// its chain, is past its review_by day at now: Admit then finds it stale.
// For `brana check` and the console; Compile reads no clock.
func (party *Party) ReviewDue(now time.Time) bool {
	for _, m := range append([]*Party{party}, party.chain...) {
		if stale(m.reviewBy, now) {
			return true
		}
	}
	return false
}

// stale reports whether now is after the review_by day (UTC); a zero day
// is none declared.
func stale(reviewBy, now time.Time) bool {
	return !reviewBy.IsZero() && !now.Before(reviewBy.AddDate(0, 0, 1))
}

// HighRisk returns the high-risk set, sorted.
func (p *Policy) HighRisk() []string { return slices.Clone(p.j.highRisk) }

// Strict reports whether PRC findings deny rather than need approval.
func (p *Policy) Strict() bool { return p.j.strict }

// SupervisePRC reports whether sessions admitted past a PRC finding are supervised.
func (p *Policy) SupervisePRC() bool { return p.j.supervisePRC }
