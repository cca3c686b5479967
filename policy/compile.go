package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Party kinds a PartySpec may declare.
// An owner is a controlling entity that never connects: it exists to be
// named in other parties' controlled_by.
var partyKinds = []string{"vendor", "integrator", "operator", "scada", "owner"}

// Compile checks spec against the names of the configured targets and
// compiles it. It reports every problem it finds, as an errors.Join of
// *FieldError, and returns a Policy only when there is none.
//
// Checks: empty, reserved ("*") or duplicate party ids; unknown party kinds;
// bad networks and networks shared by two parties (ambiguous identity);
// credential bindings: unparsable SSH keys, bad principals or TLS bindings,
// a credential bound twice, credentials on an owner;
// empty or duplicate rule names; rules without parties, targets or classes;
// unknown party ids, target names and classes; function codes outside
// 1..127; unit ids outside 0..255; unknown tables, empty range lists, bad
// range syntax or order; value bounds outside 0..65535 or min > max;
// rules naming an owner; jurisdiction evidence: country codes, dates,
// listing actions, relays, unknown or cyclic controlled_by; the high-risk
// set, high-risk ASNs and the bundle settings.
//
// Compile then judges every party (Party.Verdict, Party.Findings) from its
// evidence, its controllers' up the chain, its own listings and those given
// with WithListings. Compile opens no file and reads no clock.
func Compile(spec Spec, targets []string, opts ...Option) (*Policy, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := compiler{p: &Policy{
		byID:          make(map[string]*Party, len(spec.Parties)),
		targetIdx:     make(map[string]int, len(targets)),
		sshKeys:       make(map[string]*Party),
		sshPrincipals: make(map[string]*Party),
		tlsCerts:      make(map[string]tlsBinding),
		tlsNames:      make(map[tlsName]*Party),
		opcuaUsers:    make(map[string]*Party),
	}, bound: make(map[string]string)}
	p := c.p
	for _, t := range targets {
		if _, dup := p.targetIdx[t]; !dup {
			p.targetIdx[t] = len(p.targets)
			p.targets = append(p.targets, t)
		}
	}
	for i := range spec.Parties {
		c.party(i, &spec.Parties[i])
	}
	c.overlaps()
	c.controllers()
	c.compileJurisdiction(&spec.Jurisdiction, &o)
	names := make(map[string]int, len(spec.Rules))
	for i := range spec.Rules {
		c.rule(i, &spec.Rules[i], names)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	p.buildIndex()
	p.splitProtocols()
	p.judge()
	p.digest = digest(&spec)
	p.unidentified = newDenial(Unidentified, nil, "unidentified party")
	p.noRule = newDenial(NoRule, nil, "no rule allows this party on this target")
	p.notAdmitted = newDenial(NotAdmitted, nil, "session not admitted (jurisdiction)")
	p.needsApproval = newDenial(NeedsApproval, nil, "session needs an engineer's approval (jurisdiction)")
	return p, nil
}

type compiler struct {
	p     *Policy
	errs  []error
	bound map[string]string // credential key -> path of the binding that holds it
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) party(i int, ps *PartySpec) {
	path := fmt.Sprintf("parties[%d]", i)
	party := &Party{
		ID:           ps.ID,
		Name:         ps.Name,
		Organisation: ps.Organisation,
		Kind:         ps.Kind,
		LegalName:    ps.LegalName,
		Supervised:   ps.Supervised,
		index:        len(c.p.parties),
	}
	switch {
	case ps.ID == "":
		c.errorf(path+".id", "empty party id")
	case ps.ID == "*":
		c.errorf(path+".id", `party id "*" is reserved (it means any party in rules)`)
	case c.p.byID[ps.ID] != nil:
		c.errorf(path+".id", "duplicate party id %q (also parties[%d])", ps.ID, c.p.byID[ps.ID].index)
	default:
		c.p.byID[ps.ID] = party
	}
	if ps.Kind != "" && !contains(partyKinds, ps.Kind) {
		c.errorf(path+".kind", "unknown kind %q (want %s)", ps.Kind, strings.Join(partyKinds, ", "))
	}
	if ps.Supervised && ps.Kind == "owner" {
		c.errorf(path+".supervised", "party %q is an owner: it never connects, so it has no sessions to supervise", ps.ID)
	}
	for j, s := range ps.Networks {
		n, err := parseNetwork(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.networks[%d]", path, j), "%v", err)
			n = netip.Prefix{} // keep indexes aligned with the spec for overlaps
		}
		party.Networks = append(party.Networks, n)
	}
	c.evidence(path, ps, party)
	c.bindings(path, ps, party)
	c.p.parties = append(c.p.parties, party)
}

// overlaps reports every network of a party that overlaps a network of an
// earlier party: the source address would not say who is on the other end.
func (c *compiler) overlaps() {
	ps := c.p.parties
	for i, a := range ps {
		for j, an := range a.Networks {
			if !an.IsValid() {
				continue
			}
		earlier:
			for k, b := range ps[:i] {
				if b.ID == a.ID {
					continue
				}
				for l, bn := range b.Networks {
					if bn.IsValid() && an.Overlaps(bn) {
						c.errorf(fmt.Sprintf("parties[%d].networks[%d]", i, j),
							"%s overlaps %s of party %q (parties[%d].networks[%d]): identity by address would be ambiguous",
							an, bn, b.ID, k, l)
						break earlier
					}
				}
			}
		}
	}
}

// parseNetwork accepts a CIDR with no host bits set, or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		n, err := netip.ParsePrefix(s)
		if err != nil {
			return n, fmt.Errorf("bad network %q (want a CIDR such as 10.1.0.0/16 or a single address)", s)
		}
		if n.Addr().Is4In6() {
			return n, fmt.Errorf("network %q is IPv4-mapped IPv6: write it as IPv4", s)
		}
		if m := n.Masked(); m != n {
			return n, fmt.Errorf("network %q has host bits set (did you mean %s?)", s, m)
		}
		return n, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q (want a CIDR such as 10.1.0.0/16 or a single address)", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone; zones are not allowed", s)
	}
	if a.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("address %q is IPv4-mapped IPv6: write it as IPv4", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *compiler) rule(i int, rs *RuleSpec, names map[string]int) {
	path := fmt.Sprintf("rules[%d]", i)
	r := &Rule{
		Name:        rs.Name,
		Description: rs.Description,
		Reset:       rs.Reset,
		index:       i,
		spec:        cloneRuleSpec(*rs),
		parties:     make(map[string]bool, len(rs.Parties)),
		targets:     make(map[string]bool, len(rs.Targets)),
		anyFunc:     len(rs.Functions) == 0,
		anyUnit:     len(rs.Units) == 0,
		anyAddr:     len(rs.Ranges) == 0,
	}
	switch j, dup := names[rs.Name]; {
	case rs.Name == "":
		c.errorf(path+".name", "empty rule name")
	case dup:
		c.errorf(path+".name", "duplicate rule name %q (also rules[%d])", rs.Name, j)
	default:
		names[rs.Name] = i
	}

	if len(rs.Parties) == 0 {
		c.errorf(path+".parties", `no parties (use "*" for any party)`)
	}
	for j, id := range rs.Parties {
		switch {
		case id == "*":
			r.anyParty = true
		case c.p.byID[id] == nil:
			c.errorf(fmt.Sprintf("%s.parties[%d]", path, j), "unknown party %q", id)
		case c.p.byID[id].Kind == "owner":
			c.errorf(fmt.Sprintf("%s.parties[%d]", path, j), "party %q is an owner: it never connects", id)
		default:
			r.parties[id] = true
		}
	}
	if len(rs.Targets) == 0 {
		c.errorf(path+".targets", `no targets (use "*" for any target)`)
	}
	for j, t := range rs.Targets {
		switch _, ok := c.p.targetIdx[t]; {
		case t == "*":
			r.anyTarget = true
		case !ok:
			c.errorf(fmt.Sprintf("%s.targets[%d]", path, j), "unknown target %q", t)
		default:
			r.targets[t] = true
		}
	}

	if len(rs.Classes) == 0 {
		c.errorf(path+".classes", "no classes (want one or more of read, write, diagnose, control, program, unknown)")
	}
	for j, s := range rs.Classes {
		cl, err := opclass.Parse(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.classes[%d]", path, j), "unknown class %q (want read, write, diagnose, control, program or unknown)", s)
			continue
		}
		r.classes = r.classes.With(cl)
	}
	for j, f := range rs.Functions {
		if f < 1 || f > 127 {
			c.errorf(fmt.Sprintf("%s.functions[%d]", path, j), "function code %d outside 1..127", f)
			continue
		}
		r.funcs[f>>6] |= 1 << (f & 63)
	}
	for j, u := range rs.Units {
		if u < 0 || u > 255 {
			c.errorf(fmt.Sprintf("%s.units[%d]", path, j), "unit id %d outside 0..255", u)
			continue
		}
		r.units[u>>6] |= 1 << (u & 63)
	}

	seen := map[modbus.Table]string{}
	for _, name := range sortedKeys(rs.Ranges) {
		tpath := path + ".ranges." + name
		t, err := modbus.ParseTable(name)
		if err != nil {
			c.errorf(tpath, "unknown table %q (want coils, discrete, holding or input)", name)
			continue
		}
		if other, dup := seen[t]; dup {
			c.errorf(tpath, "table %s is also given as %q", t, other)
			continue
		}
		seen[t] = name
		list := rs.Ranges[name]
		if len(list) == 0 {
			c.errorf(tpath, "no ranges (leave the table out to allow none of its addresses)")
		}
		for j, s := range list {
			sp, err := parseSpan(s)
			if err != nil {
				c.errorf(fmt.Sprintf("%s[%d]", tpath, j), "%v", err)
				continue
			}
			r.ranges[t] = append(r.ranges[t], sp)
		}
	}

	if b := rs.Values; b != nil {
		ok := true
		if b.Min < 0 || b.Min > 0xFFFF {
			c.errorf(path+".values.min", "min %d outside 0..65535", b.Min)
			ok = false
		}
		if b.Max < 0 || b.Max > 0xFFFF {
			c.errorf(path+".values.max", "max %d outside 0..65535", b.Max)
			ok = false
		}
		if ok && b.Min > b.Max {
			c.errorf(path+".values", "min %d is greater than max %d", b.Min, b.Max)
		}
		r.bounded, r.min, r.max = true, uint16(b.Min), uint16(b.Max)
	}

	if rs.OPCUA != nil {
		c.compileOPCUA(path, rs, r)
	}
	for reason := ClassDenied; reason < numReasons; reason++ {
		if denialFormats[reason] != "" {
			r.denials[reason] = newDenial(reason, r, fmt.Sprintf(denialFormats[reason], r.Name))
		}
	}
	c.p.rules = append(c.p.rules, r)
}

// parseSpan parses "START" or "START-END", decimal addresses 0..65535.
func parseSpan(s string) (span, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parseAddr(lo)
	if err != nil {
		return span{}, fmt.Errorf("bad range %q: %v (want START or START-END, e.g. 0-99)", s, err)
	}
	b := a
	if isRange {
		if b, err = parseAddr(hi); err != nil {
			return span{}, fmt.Errorf("bad range %q: %v (want START or START-END, e.g. 0-99)", s, err)
		}
		if b < a {
			return span{}, fmt.Errorf("bad range %q: end before start", s)
		}
	}
	return span{a, b}, nil
}

func parseAddr(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("address %s outside 0..65535", s)
	case err != nil:
		return 0, fmt.Errorf("%q is not a decimal address", s)
	case n > 0xFFFF:
		return 0, fmt.Errorf("address %d outside 0..65535", n)
	}
	return uint32(n), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// digest hashes a canonical encoding of spec: every field in declaration
// order, strings and lists length-prefixed, map keys sorted, nil and empty
// lists alike. Changing the encoding changes every policy version, so a
// golden test pins it.
func digest(spec *Spec) string {
	w := canon{h: sha256.New()}
	w.str("brana policy spec v1")
	w.int(len(spec.Parties))
	for _, ps := range spec.Parties {
		w.str(ps.ID)
		w.str(ps.Name)
		w.str(ps.Organisation)
		w.str(ps.Kind)
		w.strs(ps.Networks)
	}
	w.int(len(spec.Rules))
	for _, rs := range spec.Rules {
		w.str(rs.Name)
		w.str(rs.Description)
		w.strs(rs.Parties)
		w.strs(rs.Targets)
		w.strs(rs.Classes)
		w.ints(rs.Functions)
		w.ints(rs.Units)
		keys := sortedKeys(rs.Ranges)
		w.int(len(keys))
		for _, k := range keys {
			w.str(k)
			w.strs(rs.Ranges[k])
		}
		if rs.Values == nil {
			w.int(0)
		} else {
			w.int(1)
			w.int(rs.Values.Min)
			w.int(rs.Values.Max)
		}
		w.bool(rs.Reset)
	}
	if hasJurisdiction(spec) {
		// Appended only when used, so that the digests of specs without
		// jurisdiction settings are those of earlier versions.
		w.str("jurisdiction v1")
		j := &spec.Jurisdiction
		w.strs(j.HighRisk)
		w.bool(j.Strict)
		w.str(j.GeoIP.CountryDB)
		w.str(j.GeoIP.ASNDB)
		w.str(j.Bundle.Dir)
		w.str(j.Bundle.PublicKey)
		w.int(len(j.ASNHighRisk))
		for _, a := range j.ASNHighRisk {
			w.int(int(a))
		}
		for _, ps := range spec.Parties {
			w.str(ps.LegalName)
			ev := ps.Evidence
			if ev == nil {
				w.int(0)
				continue
			}
			w.int(1)
			w.str(ev.EstablishedIn)
			w.strs(ev.ControlledBy)
			w.strs(ev.ManagementIn)
			w.strs(ev.OperatesFrom)
			w.strs(ev.DataTo)
			w.int(len(ev.Listings))
			for _, l := range ev.Listings {
				w.str(l.Source)
				w.str(l.Reference)
				w.str(l.Action)
				w.str(l.Date)
			}
			w.strs(ev.Relays)
			w.str(ev.ReviewedOn)
			w.str(ev.ReviewBy)
		}
	}
	digestOPCUA(&w, spec)
	if hasBindings(spec) {
		// Appended only when used, like jurisdiction above.
		w.str("bindings v1")
		for _, ps := range spec.Parties {
			w.strs(ps.SSHKeys)
			w.strs(ps.SSHPrincipals)
			w.int(len(ps.TLSClients))
			for _, b := range ps.TLSClients {
				w.str(b.Fingerprint)
				w.str(b.CommonName)
				w.str(b.Role)
			}
		}
	}
	if hasOPCUAUsers(spec) {
		// A section of its own, so that specs binding other credentials
		// keep their digests too.
		w.str("opcua users v1")
		for _, ps := range spec.Parties {
			w.strs(ps.OPCUAUsers)
		}
	}
	if hasSupervision(spec) {
		// Its own section, like the ones above: specs without supervision
		// keep their digests.
		w.str("supervision v1")
		w.bool(spec.Jurisdiction.SupervisePRC)
		for _, ps := range spec.Parties {
			w.bool(ps.Supervised)
		}
	}
	return hex.EncodeToString(w.h.Sum(nil))
}

func hasSupervision(spec *Spec) bool {
	if spec.Jurisdiction.SupervisePRC {
		return true
	}
	for _, ps := range spec.Parties {
		if ps.Supervised {
			return true
		}
	}
	return false
}

func hasJurisdiction(spec *Spec) bool {
	j := &spec.Jurisdiction
	if len(j.HighRisk) > 0 || j.Strict || j.GeoIP != (GeoIPSpec{}) || j.Bundle != (BundleSpec{}) || len(j.ASNHighRisk) > 0 {
		return true
	}
	for _, ps := range spec.Parties {
		if ps.LegalName != "" || ps.Evidence != nil {
			return true
		}
	}
	return false
}

type canon struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (w *canon) int(n int) {
	w.h.Write(binary.AppendVarint(w.buf[:0], int64(n)))
}

func (w *canon) bool(b bool) {
	if b {
		w.int(1)
	} else {
		w.int(0)
	}
}

func (w *canon) str(s string) {
	w.int(len(s))
	w.h.Write([]byte(s))
}

func (w *canon) strs(l []string) {
	w.int(len(l))
	for _, s := range l {
		w.str(s)
	}
}

func (w *canon) ints(l []int) {
	w.int(len(l))
	for _, n := range l {
		w.int(n)
	}
}
