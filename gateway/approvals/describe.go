package approvals

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

const maxFindings = 50

// stamp formats a time for audit details and messages.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func describeSpan(from, to time.Time) string { return stamp(from) + " to " + stamp(to) }

func because(r *Request) string {
	if r.RequiredBecause == "" {
		return ""
	}
	return " (" + r.RequiredBecause + ")"
}

// evidence lists the party's findings for an audit detail.
func evidence(r *Request) string {
	p := r.Party
	var parts []string
	if p.PRC {
		parts = append(parts, "registered PRC-managed")
	}
	if p.Verdict != "" {
		parts = append(parts, "verdict "+p.Verdict)
	}
	parts = append(parts, p.Findings...)
	if len(parts) == 0 {
		return ""
	}
	return "; evidence: " + strings.Join(parts, "; ")
}

func (s *Service) describeNew(r *Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request %s by %s", r.ID, r.RequestedBy)
	if r.Reason != "" {
		fmt.Fprintf(&b, "; reason %q", r.Reason)
	}
	if r.Ticket != "" {
		fmt.Fprintf(&b, "; ticket %q", r.Ticket)
	}
	fmt.Fprintf(&b, "; wanted from %s for %s; pending until %s; needs %d approval(s)%s%s",
		stamp(r.WantStart), r.Duration, stamp(r.PendingUntil), r.Required, because(r), evidence(r))
	return b.String()
}

func describeWindow(r *Request) string {
	var b strings.Builder
	if !r.WindowEnd.IsZero() {
		b.WriteString("work window " + describeSpan(r.WindowStart, r.WindowEnd))
	} else {
		fmt.Fprintf(&b, "work window of %s from first use", r.Duration)
		if !r.NotAfter.IsZero() {
			b.WriteString(", ending by " + stamp(r.NotAfter))
		}
	}
	if r.FirstUse.IsZero() && !r.ClaimBy.IsZero() {
		b.WriteString("; claim by " + stamp(r.ClaimBy))
	}
	return b.String()
}

func verdictRank(v string) int {
	switch strings.ToLower(v) {
	case "prc":
		return 3
	case "unknown":
		return 2
	case "non-prc":
		return 1
	}
	return 0
}

// mergeParty adds src's evidence to dst and reports whether dst changed. A
// PRC finding or verdict is never replaced by a milder one.
func mergeParty(dst *PartyInfo, src PartyInfo) bool {
	changed := false
	if src.PRC && !dst.PRC {
		dst.PRC, changed = true, true
	}
	if verdictRank(src.Verdict) > verdictRank(dst.Verdict) {
		dst.Verdict, changed = src.Verdict, true
	}
	for _, f := range src.Findings {
		if len(dst.Findings) >= maxFindings {
			break
		}
		if !slices.Contains(dst.Findings, f) {
			dst.Findings, changed = append(dst.Findings, f), true
		}
	}
	if dst.Name == "" && src.Name != "" {
		dst.Name, changed = src.Name, true
	}
	if dst.Org == "" && src.Org != "" {
		dst.Org, changed = src.Org, true
	}
	if dst.Kind == "" && src.Kind != "" {
		dst.Kind, changed = src.Kind, true
	}
	return changed
}

// evidenceChanges reports whether merging src into p would change it.
func evidenceChanges(p, src PartyInfo) bool {
	p.Findings = slices.Clone(p.Findings)
	return mergeParty(&p, src)
}
