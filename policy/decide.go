package policy

import (
	"strconv"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Reason says why a request was denied. The Modbus reasons from ClassDenied
// to MaskedWrite are ordered by how far a rule got before it failed: when no
// rule allows a request, the denial names the rule that got furthest. The
// OPC UA reasons come last; opcua.go ranks them.
type Reason uint8

const (
	Unidentified    Reason = iota // the session's identity is bound to no party
	NoRule                        // no rule names this party and this target
	ClassDenied                   // no rule for party×target allows the operation class
	FunctionDenied                // the class is allowed, the function code is not
	UnitDenied                    // the function is allowed, the unit id is not (unit 0: broadcast)
	AddressDenied                 // the unit is allowed, the addresses are not
	ValueDenied                   // the addresses are allowed, a written value is outside the bounds
	MaskedWrite                   // the addresses are allowed, but FC 22's result cannot be bounded
	NotAdmitted                   // the session's admission denied it (jurisdiction; see the Admission)
	NeedsApproval                 // the session's admission needs an approval that has not been given
	NodeDenied                    // OPC UA: the class is allowed, the node (or its namespace) is not
	AttributeDenied               // OPC UA: the node is allowed, the attribute or the index range is not
	MethodDenied                  // OPC UA: the class is allowed, the (object, method) pair of a Call is not
	numReasons
)

var reasonNames = [numReasons]string{
	Unidentified:    "unidentified",
	NoRule:          "no-rule",
	ClassDenied:     "class",
	FunctionDenied:  "function",
	UnitDenied:      "unit",
	AddressDenied:   "address",
	ValueDenied:     "value",
	MaskedWrite:     "masked-write",
	NotAdmitted:     "not-admitted",
	NeedsApproval:   "needs-approval",
	NodeDenied:      "node",
	AttributeDenied: "attribute",
	MethodDenied:    "method",
}

// String returns the name used in audit records and explanations.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// rank orders failures by how far the rule got; a value and a mask-write
// failure are equally far.
func (r Reason) rank() Reason {
	if r == MaskedWrite {
		return ValueDenied
	}
	return r
}

// Messages shown to the client, per reason; %q is the rule name.
var denialFormats = [numReasons]string{
	ClassDenied:     "operation class not allowed by rule %q",
	FunctionDenied:  "function code not allowed by rule %q",
	UnitDenied:      "unit id not allowed by rule %q",
	AddressDenied:   "address outside the ranges of rule %q",
	ValueDenied:     "value outside the bounds of rule %q",
	MaskedWrite:     "mask write cannot be checked against the value bounds of rule %q",
	NodeDenied:      "node not allowed by rule %q",
	AttributeDenied: "attribute not allowed by rule %q",
	MethodDenied:    "method not allowed by rule %q",
}

// Denial is the error DecideModbus returns when policy refuses a request.
// Denials are built at Compile and shared: do not modify one.
type Denial struct {
	Reason Reason
	Rule   *Rule  // the rule that came closest to allowing the request; nil for Unidentified and NoRule
	Msg    string // short, safe to show the client; the audit record gets Reason and Rule besides

	text string // "policy: " + Msg, built once
}

func newDenial(reason Reason, rule *Rule, msg string) Denial {
	return Denial{Reason: reason, Rule: rule, Msg: msg, text: "policy: " + msg}
}

// Error returns "policy: " and the short message, which names the rule.
func (d *Denial) Error() string {
	if d.text != "" {
		return d.text
	}
	return "policy: " + d.Msg
}

// access is one part of a request that a rule must allow: the whole request,
// or for FC 23 its write part and its read part separately.
type access struct {
	class  opclass.Class
	rng    modbus.Range // Count 0: the access has no address range
	write  bool         // the write part: value bounds apply
	masked bool
	values modbus.Values
}

// split decomposes req: the primary access has the request's class and, if it
// writes, its write range and values; a request that also reads (FC 23) has a
// second access, of class read, over its read range.
func split(req *modbus.Request) (first, second access, two bool) {
	if req.Write.Count != 0 || req.Masked {
		first = access{class: req.Class, rng: req.Write, write: true, masked: req.Masked, values: req.Values}
		if req.Read.Count != 0 {
			second = access{class: opclass.Read, rng: req.Read}
			two = true
		}
		return first, second, two
	}
	return access{class: req.Class, rng: req.Read}, second, false
}

// check reports whether r allows a, and if not, the first restriction a fails.
func (r *Rule) check(fn, unit byte, a *access) (Reason, bool) {
	if !r.classes.Has(a.class) {
		return ClassDenied, false
	}
	if !r.anyFunc && (fn > 127 || r.funcs[fn>>6]&(1<<(fn&63)) == 0) {
		return FunctionDenied, false
	}
	if !r.anyUnit && r.units[unit>>6]&(1<<(unit&63)) == 0 {
		return UnitDenied, false
	}
	if a.rng.Count != 0 && !r.anyAddr && r.span(a.rng) < 0 {
		return AddressDenied, false
	}
	if r.bounded && a.write {
		if a.masked {
			return MaskedWrite, false
		}
		if r.outOfBounds(&a.values) >= 0 || a.values.Len() == 0 {
			return ValueDenied, false
		}
	}
	return 0, true
}

// span returns the index of the configured range of rg's table that holds
// all of rg, or -1. End is computed wide, so a range past 0xFFFF never fits.
func (r *Rule) span(rg modbus.Range) int {
	if int(rg.Table) >= len(r.ranges) {
		return -1
	}
	lo, hi := uint32(rg.Start), uint32(rg.Start)+uint32(rg.Count)-1
	for i, s := range r.ranges[rg.Table] {
		if lo >= s.lo && hi <= s.hi {
			return i
		}
	}
	return -1
}

// outOfBounds returns the index of the first value outside r's bounds, or -1.
func (r *Rule) outOfBounds(v *modbus.Values) int {
	for i, n := 0, v.Len(); i < n; i++ {
		if x := v.At(i); x < r.min || x > r.max {
			return i
		}
	}
	return -1
}

// decide returns the first rule that allows a or, if none does, the rule
// that got furthest and how it failed.
func decide(rules []*Rule, fn, unit byte, a *access) (allow, closest *Rule, why Reason) {
	for _, r := range rules {
		reason, ok := r.check(fn, unit, a)
		if ok {
			return r, nil, 0
		}
		if closest == nil || reason.rank() > why.rank() {
			closest, why = r, reason
		}
	}
	return nil, closest, why
}

// rulesFor returns the rules that name party and target, or the denial for
// an unidentified party or a pair no rule names.
func (p *Policy) rulesFor(party *Party, target string) ([]*Rule, *Denial) {
	pi := p.partyIndex(party)
	if pi < 0 {
		return nil, &p.unidentified
	}
	ti, ok := p.targetIdx[target]
	if !ok {
		return nil, &p.noRule
	}
	rules := p.index[pi*len(p.targets)+ti]
	if len(rules) == 0 {
		return nil, &p.noRule
	}
	return rules, nil
}

// DecideModbus decides one request from party (nil: unidentified) to the
// named target. It returns the rule that allowed the request, or a *Denial.
//
// Each access of the request (see the package doc) needs a rule that names
// the party and the target, has its class, and fits the rule's function
// codes, unit ids, address ranges and value bounds where the rule sets them.
// For FC 23 the write part and the read part may be allowed by different
// rules; the rule returned is the one that allowed the write part. The first
// allowing rule in file order wins. A denied write part is reported before a
// denied read part.
//
// DecideModbus is pure and does not allocate. A Party from another Policy is
// matched by its ID.
func (p *Policy) DecideModbus(party *Party, target string, req *modbus.Request) (*Rule, error) {
	rules, d := p.rulesFor(party, target)
	if d != nil {
		return nil, d
	}
	first, second, two := split(req)
	allow, closest, why := decide(rules, req.Func, req.Unit, &first)
	if allow == nil {
		return nil, &closest.denials[why]
	}
	if two {
		if ok, closest, why := decide(rules, req.Func, req.Unit, &second); ok == nil {
			return nil, &closest.denials[why]
		}
	}
	return allow, nil
}
