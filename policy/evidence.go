package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// compileJurisdiction checks the jurisdiction settings and indexes the
// listings that Compile was given.
func (c *compiler) compileJurisdiction(js *JurisdictionSpec, o *options) {
	j := &c.p.j
	hr := js.HighRisk
	if len(hr) == 0 {
		hr = DefaultHighRisk
	}
	for i, cc := range hr {
		if !ValidCountry(cc) {
			c.errorf(fmt.Sprintf("jurisdiction.high_risk[%d]", i), "%q is not an ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. CN)", cc)
			continue
		}
		if !contains(j.highRisk, cc) {
			j.highRisk = append(j.highRisk, cc)
		}
	}
	slices.Sort(j.highRisk)
	j.strict = js.Strict
	j.supervisePRC = js.SupervisePRC
	j.asns = make(map[uint32]string)
	for i, asn := range js.ASNHighRisk {
		if asn == 0 || asn == 23456 || asn == 0xFFFFFFFF {
			c.errorf(fmt.Sprintf("jurisdiction.asn_high_risk[%d]", i), "AS%d is reserved", asn)
			continue
		}
		j.asns[asn] = "config jurisdiction.asn_high_risk"
	}
	switch b := js.Bundle; {
	case b.Dir != "" && b.PublicKey == "":
		c.errorf("jurisdiction.bundle.public_key", "missing: a bundle needs the file with the key that verifies its signature")
	case b.Dir == "" && b.PublicKey != "":
		c.errorf("jurisdiction.bundle.dir", "missing: a bundle key needs the bundle directory")
	}

	j.byName = make(map[string][]int)
	for _, e := range o.listings {
		if ValidateListing(&e) != nil {
			continue
		}
		e.Aliases = slices.Clone(e.Aliases)
		e.ASNs = slices.Clone(e.ASNs)
		i := len(j.listings)
		j.listings = append(j.listings, e)
		for _, n := range append([]string{e.Name}, e.Aliases...) {
			if k := normName(n); k != "" && !slices.Contains(j.byName[k], i) {
				j.byName[k] = append(j.byName[k], i)
			}
		}
		if e.Action != ActionNote {
			for _, asn := range e.ASNs {
				if _, dup := j.asns[asn]; !dup && asn != 0 {
					j.asns[asn] = listingOrigin(&e) + ": " + e.Name
				}
			}
		}
	}
}

// evidence checks one party's evidence fields, except controlled_by, which
// is resolved once every party is known.
func (c *compiler) evidence(path string, ps *PartySpec, party *Party) {
	if ps.Kind == "owner" && len(ps.Networks) > 0 {
		c.errorf(path+".networks", "a party of kind owner never connects: it has no networks")
	}
	ev := ps.Evidence
	if ev == nil {
		return
	}
	cp := *ev
	cp.ControlledBy = slices.Clone(ev.ControlledBy)
	cp.ManagementIn = slices.Clone(ev.ManagementIn)
	cp.OperatesFrom = slices.Clone(ev.OperatesFrom)
	cp.DataTo = slices.Clone(ev.DataTo)
	cp.Listings = slices.Clone(ev.Listings)
	cp.Relays = slices.Clone(ev.Relays)
	party.ev = &cp
	path += ".evidence"
	country := func(field, cc string) {
		if !ValidCountry(cc) {
			c.errorf(field, "%q is not an ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. CZ)", cc)
		}
	}
	if ev.EstablishedIn != "" {
		country(path+".established_in", ev.EstablishedIn)
	}
	for _, f := range []struct {
		name string
		list []string
	}{{"management_in", ev.ManagementIn}, {"operates_from", ev.OperatesFrom}, {"data_to", ev.DataTo}} {
		for k, cc := range f.list {
			country(fmt.Sprintf("%s.%s[%d]", path, f.name, k), cc)
		}
	}
	for k, l := range ev.Listings {
		lp := fmt.Sprintf("%s.listings[%d]", path, k)
		if strings.TrimSpace(l.Source) == "" {
			c.errorf(lp+".source", "missing: say which list the party is on")
		}
		if !contains(listingActions, l.Action) {
			c.errorf(lp+".action", "unknown action %q (want block, approval or note)", l.Action)
		}
		if l.Date != "" {
			if _, err := parseDate(l.Date); err != nil {
				c.errorf(lp+".date", "%v", err)
			}
		}
	}
	for k, s := range ev.Relays {
		m, err := parseRelay(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.relays[%d]", path, k), "%v", err)
			continue
		}
		m.party = ps.ID
		party.relays = append(party.relays, m)
	}
	var ok [2]bool
	for k, f := range []struct{ name, v string }{{"reviewed_on", ev.ReviewedOn}, {"review_by", ev.ReviewBy}} {
		if f.v == "" {
			continue
		}
		t, err := parseDate(f.v)
		if err != nil {
			c.errorf(path+"."+f.name, "%v", err)
			continue
		}
		ok[k] = true
		if k == 1 {
			party.reviewBy = t
		}
	}
	if ok[0] && ok[1] && ev.ReviewBy < ev.ReviewedOn {
		c.errorf(path+".review_by", "%s is before reviewed_on %s", ev.ReviewBy, ev.ReviewedOn)
	}
}

// controllers resolves controlled_by and reports ownership cycles, naming
// every party on the cycle at the edge that closes it.
func (c *compiler) controllers() {
	ps := c.p.parties
	for i, party := range ps {
		if party.ev == nil {
			continue
		}
		for k, id := range party.ev.ControlledBy {
			q := c.p.byID[id]
			if q == nil {
				c.errorf(fmt.Sprintf("parties[%d].evidence.controlled_by[%d]", i, k), "unknown party %q", id)
				continue
			}
			party.control = append(party.control, q)
		}
	}
	// Depth-first search; a grey party is on the current path, so an edge
	// to it closes a cycle.
	const white, grey, black = 0, 1, 2
	color := make([]int, len(ps))
	var stack []*Party
	var visit func(*Party)
	visit = func(u *Party) {
		color[u.index] = grey
		stack = append(stack, u)
		for _, v := range u.control {
			switch color[v.index] {
			case white:
				visit(v)
			case grey:
				var ids []string
				for k := slices.Index(stack, v); k < len(stack); k++ {
					ids = append(ids, stack[k].ID)
				}
				ids = append(ids, v.ID)
				k := slices.Index(u.ev.ControlledBy, v.ID)
				c.errorf(fmt.Sprintf("parties[%d].evidence.controlled_by[%d]", u.index, k),
					"ownership cycle: %s (each controlled by the next)", strings.Join(ids, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		color[u.index] = black
	}
	for _, u := range ps {
		if color[u.index] == white {
			visit(u)
		}
	}
}

// judge computes every party's static verdict and findings, and the relays
// of PRC parties. It runs only on a spec without errors.
func (p *Policy) judge() {
	for _, party := range p.parties {
		p.judgeParty(party)
	}
	for _, party := range p.parties {
		if party.Verdict == PRC {
			p.j.relays = append(p.j.relays, party.relays...)
		}
	}
}

func (p *Policy) judgeParty(party *Party) {
	var fs []Finding
	if party.ev == nil {
		switch {
		case (party.Kind == "scada" || party.Kind == "operator") && len(party.Networks) > 0 && allLocal(party.Networks):
			party.Local = true
			nets := make([]string, len(party.Networks))
			for i, n := range party.Networks {
				nets[i] = n.String()
			}
			fs = append(fs, Finding{Kind: "local", Subject: party.ID, Value: "every network is private, loopback or link-local: " + strings.Join(nets, ", "), Verdict: NonPRC, Source: "config"})
			party.declared = "local network"
		default:
			fs = append(fs, Finding{Kind: "evidence", Subject: party.ID, Value: "no jurisdiction evidence declared", Verdict: Unknown, Source: "config"})
			party.declared = "nothing"
		}
	} else {
		fs = p.ownFindings(fs, party, true)
		party.declared = declaredCountries(party.ev)
	}

	// Controllers up the chain, breadth first; each once (diamonds).
	parent := map[*Party]*Party{party: nil}
	queue := []*Party{party}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range u.control {
			if _, seen := parent[v]; seen {
				continue
			}
			parent[v] = u
			party.chain = append(party.chain, v)
			queue = append(queue, v)
		}
	}
	fs = p.listingFindings(fs, party, party)
	for _, ctl := range party.chain {
		var path []string
		for q := ctl; q != nil; q = parent[q] {
			path = append(path, q.ID)
		}
		slices.Reverse(path)
		at := len(fs)
		fs = append(fs, Finding{}) // the controller finding, filled in below
		fs = p.ownFindings(fs, ctl, false)
		fs = p.listingFindings(fs, party, ctl)
		v := NonPRC
		for _, f := range fs[at+1:] {
			v = worse(v, f.Verdict)
		}
		name := ctl.LegalName
		if name == "" {
			name = ctl.Organisation
		}
		value := "controls " + party.ID + " (" + strings.Join(path, " → ") + ")"
		if name != "" {
			value = name + " " + value
		}
		fs[at] = Finding{Kind: "controller", Subject: ctl.ID, Value: value, Verdict: v, Source: "config"}
	}

	v := NonPRC
	for _, f := range fs {
		v = worse(v, f.Verdict)
	}
	party.Verdict, party.Findings = v, fs
}

// listingFindings appends the listings of m, a party on the chain of party
// (or party itself): its own from the config, and those matching its legal
// name or organisation. Block listings are noted in party.blocked.
func (p *Policy) listingFindings(fs []Finding, party, m *Party) []Finding {
	if m.ev != nil {
		for _, l := range m.ev.Listings {
			if l.Action == ActionBlock {
				party.blocked = append(party.blocked, len(fs))
			}
			fs = append(fs, Finding{Kind: "listing", Subject: m.ID, Value: listingValue(l.Source, l.Reference, l.Date, l.Action, ""), Verdict: actionVerdict(l.Action), Source: "config"})
		}
	}
	var seen []int
	for _, n := range []string{m.LegalName, m.Organisation} {
		key := normName(n)
		if key == "" {
			continue
		}
		for _, i := range p.j.byName[key] {
			if slices.Contains(seen, i) {
				continue
			}
			seen = append(seen, i)
			e := &p.j.listings[i]
			if e.Action == ActionBlock {
				party.blocked = append(party.blocked, len(fs))
			}
			what := e.Name
			if e.Country != "" {
				what += ", " + e.Country
			}
			if n != e.Name {
				what += `, as "` + n + `"`
			}
			fs = append(fs, Finding{Kind: "listing", Subject: m.ID, Value: listingValue(e.Source, e.Reference, e.Date, e.Action, what), Verdict: actionVerdict(e.Action), Source: listingOrigin(e)})
		}
	}
	return fs
}

// ownFindings appends what m's own evidence says. A subject (the party being
// judged) must declare every key field: established_in, management_in,
// operates_from, data_to and review_by; an owner, or a controller up the
// chain, only established_in.
func (p *Policy) ownFindings(fs []Finding, m *Party, subject bool) []Finding {
	subject = subject && m.Kind != "owner"
	ev := m.ev
	if ev == nil {
		return append(fs, Finding{Kind: "evidence", Subject: m.ID, Value: "no jurisdiction evidence declared", Verdict: Unknown, Source: "config"})
	}
	add := func(kind, cc string) {
		fs = append(fs, Finding{Kind: kind, Subject: m.ID, Value: cc, Verdict: p.j.countryVerdict(cc), Source: "config"})
	}
	missing := func(kind, field string) {
		fs = append(fs, Finding{Kind: kind, Subject: m.ID, Value: field + " not declared", Verdict: Unknown, Source: "config"})
	}
	if ev.EstablishedIn != "" {
		add("established", ev.EstablishedIn)
	} else {
		missing("established", "established_in")
	}
	for _, f := range []struct {
		kind, field string
		list        []string
	}{{"management", "management_in", ev.ManagementIn}, {"operations", "operates_from", ev.OperatesFrom}, {"data", "data_to", ev.DataTo}} {
		for _, cc := range f.list {
			add(f.kind, cc)
		}
		if len(f.list) == 0 && subject {
			missing(f.kind, f.field)
		}
	}
	for _, r := range m.relays {
		v, value := NonPRC, "uses relay "+r.String()
		if cc := tldCountry(r.host); cc != "" && p.j.isHighRisk(cc) {
			v, value = PRC, value+" (domain in "+cc+")"
		}
		fs = append(fs, Finding{Kind: "relay", Subject: m.ID, Value: value, Verdict: v, Source: "config"})
	}
	if subject && ev.ReviewBy == "" {
		missing("review", "review_by")
	}
	return fs
}

func allLocal(nets []netip.Prefix) bool {
	for _, n := range nets {
		if !isLocalNet(n) {
			return false
		}
	}
	return true
}

// declaredCountries says where a party declared itself to be, for the
// conflict note of an admission: "CZ", or "CZ/DE".
func declaredCountries(ev *EvidenceSpec) string {
	var cs []string
	for _, cc := range append(append([]string{ev.EstablishedIn}, ev.ManagementIn...), ev.OperatesFrom...) {
		if cc != "" && !slices.Contains(cs, cc) {
			cs = append(cs, cc)
		}
	}
	if len(cs) == 0 {
		return "nothing"
	}
	return strings.Join(cs, "/")
}

func actionVerdict(action string) Verdict {
	if action == ActionNote {
		return NonPRC
	}
	return PRC
}

func listingValue(source, ref, date, action, what string) string {
	s := source
	if what != "" {
		s += ": " + what
	}
	if ref != "" {
		s += "; " + ref
	}
	if date != "" {
		s += "; " + date
	}
	return s + "; action " + action
}

func listingOrigin(e *ListingEntry) string {
	if e.Origin != "" {
		return e.Origin
	}
	return "listings"
}
