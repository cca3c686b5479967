package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Explanation is what `brana policy explain` prints: what each rule made of
// one request, and the decision, which is exactly DecideModbus's.
type Explanation struct {
	Party   string // party id; "" when unidentified
	Target  string
	Request string // the request as the relay sees it, e.g. "FC 3 (read) unit 1: read holding 0-9"
	Steps   []Step // one per rule, in file order
	Rule    *Rule  // the allowing rule, as DecideModbus returns it
	Err     error  // the *Denial, as DecideModbus returns it

	// Admission is the session admission (Explain); nil for ExplainModbus.
	// When it does not allow, it decides before the rules do.
	Admission *Admission
}

// Step is one rule's verdict on the request.
type Step struct {
	Rule    string
	Applies bool   // the rule names the party and the target
	Verdict string // "allows", "skipped: other party", "denies: address 120-121 outside holding 0-99", ...
}

// ExplainModbus says rule by rule what each rule made of req, and the final
// decision. Unlike DecideModbus it allocates; it is for people, not for the
// relay.
func (p *Policy) ExplainModbus(party *Party, target string, req *modbus.Request) Explanation {
	e := Explanation{Target: target, Request: describe(req)}
	e.Rule, e.Err = p.DecideModbus(party, target, req)
	pi := p.partyIndex(party)
	if pi >= 0 {
		e.Party = p.parties[pi].ID
	}
	_, knownTarget := p.targetIdx[target]
	for _, r := range p.rules {
		st := Step{Rule: r.Name}
		switch {
		case pi < 0:
			st.Verdict = "skipped: unidentified party"
		case !r.anyParty && !r.parties[e.Party]:
			st.Verdict = "skipped: other party"
		case !knownTarget:
			st.Verdict = "skipped: unknown target"
		case !r.anyTarget && !r.targets[target]:
			st.Verdict = "skipped: other target"
		case r.opcua != nil:
			st.Verdict = "skipped: OPC UA rule"
		default:
			st.Applies = true
			st.Verdict = r.verdict(req)
		}
		e.Steps = append(e.Steps, st)
	}
	return e
}

// Explain is ExplainModbus with the session admission in front: the
// findings about party and the run-time signals sig, the step of the
// decision order that matched, then what each rule makes of req. It is what
// `brana policy explain` prints.
func (p *Policy) Explain(party *Party, target string, req *modbus.Request, sig Signals) Explanation {
	e := p.ExplainModbus(party, target, req)
	a := p.Admit(party, sig)
	e.Admission = &a
	return e
}

// String renders e for a terminal: a header, the admission with its
// findings (decisive ones marked *), one line per rule, the decision.
func (e Explanation) String() string {
	var b strings.Builder
	party := e.Party
	if party == "" {
		party = "(unidentified)"
	}
	fmt.Fprintf(&b, "party %s, target %s: %s\n", party, e.Target, e.Request)
	a := e.Admission
	if a != nil {
		fmt.Fprintf(&b, "admission: %s (step %d): %s\n", a.Verdict, a.Step, a.Reason)
		if a.Conflict != "" {
			fmt.Fprintf(&b, "  conflict: %s\n", a.Conflict)
		}
		for _, f := range a.Findings {
			mark := "-"
			if f.Decisive {
				mark = "*"
			}
			fmt.Fprintf(&b, "  %s %s\n", mark, f)
		}
	}
	for _, s := range e.Steps {
		fmt.Fprintf(&b, "rule %s: %s\n", s.Rule, s.Verdict)
	}
	prefix := "decision: "
	switch {
	case a == nil || a.Verdict == Allow:
	case a.Verdict == Deny:
		fmt.Fprintf(&b, "decision: deny (not admitted, step %d): %s\n", a.Step, a.Reason)
		return b.String()
	default:
		prefix = fmt.Sprintf("decision: needs approval (step %d); once approved: ", a.Step)
	}
	b.WriteString(prefix)
	var d *Denial
	switch {
	case e.Err == nil && e.Rule != nil:
		fmt.Fprintf(&b, "allow by rule %s\n", e.Rule.Name)
	case errors.As(e.Err, &d):
		fmt.Fprintf(&b, "deny (%s): %s\n", d.Reason, d.Msg)
	case e.Err != nil:
		fmt.Fprintf(&b, "deny: %v\n", e.Err)
	default:
		b.WriteString("deny\n")
	}
	return b.String()
}

// verdict says what r makes of req, part by part for FC 23.
func (r *Rule) verdict(req *modbus.Request) string {
	first, second, two := split(req)
	v1 := r.accessVerdict(req, &first)
	if !two {
		return v1
	}
	v2 := r.accessVerdict(req, &second)
	if v1 == "allows" && v2 == "allows" {
		return "allows"
	}
	return "write part " + v1 + "; read part " + v2
}

func (r *Rule) accessVerdict(req *modbus.Request, a *access) string {
	reason, ok := r.check(req.Func, req.Unit, a)
	if ok {
		return "allows"
	}
	return "denies: " + r.detail(reason, req, a)
}

// detail says in words how a failed r at reason.
func (r *Rule) detail(reason Reason, req *modbus.Request, a *access) string {
	switch reason {
	case ClassDenied:
		var names []string
		for _, c := range opclass.All() {
			if r.classes.Has(c) {
				names = append(names, c.String())
			}
		}
		return fmt.Sprintf("class %s not in %s", a.class, strings.Join(names, ", "))
	case FunctionDenied:
		return fmt.Sprintf("function %d not in %s", req.Func, joinInts(r.spec.Functions))
	case UnitDenied:
		if req.Unit == 0 {
			return fmt.Sprintf("unit 0 (broadcast) not in %s", joinInts(r.spec.Units))
		}
		return fmt.Sprintf("unit %d not in %s", req.Unit, joinInts(r.spec.Units))
	case AddressDenied:
		addr := fmtSpan(uint32(a.rng.Start), uint32(a.rng.Start)+uint32(a.rng.Count)-1)
		var spans []span
		if int(a.rng.Table) < len(r.ranges) {
			spans = r.ranges[a.rng.Table]
		}
		if len(spans) == 0 {
			return fmt.Sprintf("address %s: no %s addresses allowed", addr, a.rng.Table)
		}
		list := make([]string, len(spans))
		for i, s := range spans {
			list[i] = fmtSpan(s.lo, s.hi)
		}
		return fmt.Sprintf("address %s outside %s %s", addr, a.rng.Table, strings.Join(list, ", "))
	case ValueDenied:
		bounds := fmtSpan(uint32(r.min), uint32(r.max))
		i := r.outOfBounds(&a.values)
		if i < 0 {
			return fmt.Sprintf("no values to check against %s", bounds)
		}
		return fmt.Sprintf("value %d at %s %d outside %s", a.values.At(i), a.rng.Table, uint32(a.rng.Start)+uint32(i), bounds)
	case MaskedWrite:
		return fmt.Sprintf("mask write on %s %d cannot be proved within %s", a.rng.Table, a.rng.Start, fmtSpan(uint32(r.min), uint32(r.max)))
	}
	return reason.String()
}

// describe renders req the way explanations and tests name it.
func describe(req *modbus.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FC %d", req.Func)
	switch req.Func {
	case 8, 43, 90:
		fmt.Fprintf(&b, "/%d", req.Sub)
	}
	fmt.Fprintf(&b, " (%s) unit %d", req.Class, req.Unit)
	if req.Unit == 0 {
		b.WriteString(" (broadcast)")
	}
	sep := ": "
	if rg := req.Read; rg.Count != 0 {
		fmt.Fprintf(&b, "%sread %s %s", sep, rg.Table, fmtSpan(uint32(rg.Start), uint32(rg.Start)+uint32(rg.Count)-1))
		sep = ", "
	}
	if rg := req.Write; rg.Count != 0 {
		fmt.Fprintf(&b, "%swrite %s %s", sep, rg.Table, fmtSpan(uint32(rg.Start), uint32(rg.Start)+uint32(rg.Count)-1))
		if and, or, ok := req.Masks(); ok {
			fmt.Fprintf(&b, " (mask and 0x%04X or 0x%04X)", and, or)
		} else if req.Masked {
			b.WriteString(" (masked)")
		} else if n := req.Values.Len(); n > 0 {
			b.WriteString(" =")
			const show = 16
			for i := 0; i < n && i < show; i++ {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(int(req.Values.At(i))))
			}
			if n > show {
				fmt.Fprintf(&b, ",… (%d values)", n)
			}
		}
	}
	return b.String()
}

func fmtSpan(lo, hi uint32) string {
	if lo == hi {
		return strconv.FormatUint(uint64(lo), 10)
	}
	return strconv.FormatUint(uint64(lo), 10) + "-" + strconv.FormatUint(uint64(hi), 10)
}

func joinInts(l []int) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
