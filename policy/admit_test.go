package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// ev is complete evidence for a party in one country, reviewed this year.
func ev(cc string) *EvidenceSpec {
	return &EvidenceSpec{
		EstablishedIn: cc, ManagementIn: []string{cc}, OperatesFrom: []string{cc}, DataTo: []string{cc},
		ReviewedOn: "2026-01-10", ReviewBy: "2027-01-10",
	}
}

func withEv(e *EvidenceSpec, f func(e *EvidenceSpec)) *EvidenceSpec {
	f(e)
	return e
}

// jurisdictionSpec is a registry with every kind of party the decision
// order knows.
func jurisdictionSpec() Spec {
	return Spec{
		Parties: []PartySpec{
			{ID: "scada", Kind: "scada", Networks: []string{"10.1.0.0/16"}},
			{ID: "vendor", Kind: "vendor", LegalName: "Vendor s.r.o.", Networks: []string{"192.0.2.0/24"},
				Evidence: withEv(ev("CZ"), func(e *EvidenceSpec) { e.Relays = []string{"relay.vendor.example", "203.0.113.0/28"} })},
			// A: established in DE, controlled by B (NL), controlled by C (CN).
			{ID: "chain", Kind: "integrator", LegalName: "Chain GmbH", Networks: []string{"198.51.100.0/28"},
				Evidence: withEv(ev("DE"), func(e *EvidenceSpec) { e.ControlledBy = []string{"holding"} })},
			{ID: "holding", Kind: "owner", LegalName: "Holding B.V.", Evidence: &EvidenceSpec{EstablishedIn: "NL", ControlledBy: []string{"fund"}}},
			{ID: "fund", Kind: "owner", LegalName: "State Fund", Evidence: &EvidenceSpec{EstablishedIn: "CN",
				Relays: []string{"*.relay.fund.example"}}},
			// Controlled by an owner whose legal name is an alias on a listing.
			{ID: "camvendor", Kind: "vendor", LegalName: "Cam Service a.s.", Networks: []string{"198.51.100.16/28"},
				Evidence: withEv(ev("CZ"), func(e *EvidenceSpec) { e.ControlledBy = []string{"camowner"} })},
			{ID: "camowner", Kind: "owner", LegalName: "HIKVISION", Evidence: &EvidenceSpec{EstablishedIn: "CZ"}},
			// On a listing with action block, by name.
			{ID: "listed", Kind: "vendor", LegalName: "Sichuan Juxinhe Network Technology Co., Ltd", Networks: []string{"198.51.100.32/28"}, Evidence: ev("CZ")},
			// Controlled by an owner the config lists with action block.
			{ID: "blockedchild", Kind: "vendor", Networks: []string{"198.51.100.48/28"},
				Evidence: withEv(ev("CZ"), func(e *EvidenceSpec) { e.ControlledBy = []string{"blockedowner"} })},
			{ID: "blockedowner", Kind: "owner", Evidence: &EvidenceSpec{EstablishedIn: "SG",
				Listings: []ListingSpec{{Source: "Operator's own list", Reference: "memo 2026-11", Action: "block", Date: "2026-11-01"}}}},
			{ID: "noev", Kind: "vendor", Networks: []string{"198.51.100.64/28"}},
			{ID: "partial", Kind: "vendor", Networks: []string{"198.51.100.80/28"},
				Evidence: withEv(ev("CZ"), func(e *EvidenceSpec) { e.DataTo = nil })},
			{ID: "stale", Kind: "vendor", Networks: []string{"198.51.100.96/28"},
				Evidence: withEv(ev("AT"), func(e *EvidenceSpec) { e.ReviewedOn, e.ReviewBy = "2025-06-01", "2026-06-01" })},
			{ID: "stalectl", Kind: "vendor", Networks: []string{"198.51.100.112/28"},
				Evidence: withEv(ev("AT"), func(e *EvidenceSpec) { e.ControlledBy = []string{"staleowner"} })},
			{ID: "staleowner", Kind: "owner", Evidence: &EvidenceSpec{EstablishedIn: "AT", ReviewBy: "2026-11-25"}},
			{ID: "noted", Kind: "vendor", Networks: []string{"198.51.100.128/28"},
				Evidence: withEv(ev("PL"), func(e *EvidenceSpec) {
					e.Listings = []ListingSpec{{Source: "Press report", Action: "note"}}
				})},
			{ID: "hkmgmt", Kind: "vendor", Networks: []string{"198.51.100.144/28"},
				Evidence: withEv(ev("SG"), func(e *EvidenceSpec) { e.ManagementIn = []string{"SG", "HK"} })},
			{ID: "roaming-op", Kind: "operator", Networks: []string{"203.0.113.200/32", "10.9.0.0/16"}},
		},
		Rules: []RuleSpec{
			{Name: "read-all", Parties: []string{"*"}, Targets: []string{"*"}, Classes: []string{"read"}},
		},
		Jurisdiction: JurisdictionSpec{ASNHighRisk: []uint32{4134}},
	}
}

var testListings = []ListingEntry{
	{Name: "Sichuan Juxinhe Network Technology Co. Ltd.", Country: "CN", Action: "block", Source: "Joint advisory AA25-239A", Reference: "https://example.test/aa25-239a", Date: "2026-11-26", Origin: "bundle serial 3"},
	{Name: "Hangzhou Hikvision Digital Technology Company", Aliases: []string{"Hikvision"}, Country: "CN", Action: "approval", Source: "FCC Covered List", Date: "2026-11-26", Origin: "bundle serial 3"},
	{Name: "China Mobile International Limited", Country: "CN", Action: "approval", Source: "FCC Covered List", ASNs: []uint32{58453}, Origin: "bundle serial 3"},
	{Name: "Broken", Action: "maybe"}, // ignored: fails validation
}

func sigFrom(addr, cc string) Signals {
	s := Signals{Now: testNow, ClockTrusted: true, GeoSource: "test.mmdb"}
	if addr != "" {
		s.Source = netip.MustParseAddr(addr)
	}
	if cc != "" {
		s.Country, s.GeoKnown = cc, true
	}
	return s
}

func TestAdmit(t *testing.T) {
	p, err := Compile(jurisdictionSpec(), testTargets, WithListings(testListings))
	if err != nil {
		t.Fatal(err)
	}
	strictSpec := jurisdictionSpec()
	strictSpec.Jurisdiction.Strict = true
	strict, err := Compile(strictSpec, testTargets, WithListings(testListings))
	if err != nil {
		t.Fatal(err)
	}
	with := func(s Signals, f func(s *Signals)) Signals { f(&s); return s }
	cz := sigFrom("192.0.2.10", "CZ")

	tests := []struct {
		name     string
		pol      *Policy
		party    string // "" is unidentified
		sig      Signals
		verdict  AdmissionVerdict
		step     int
		reason   string // substring
		conflict string // exact
		finding  string // a decisive finding, substring of its String()
	}{
		// 1: identity.
		{name: "fail/1-unidentified", sig: cz, verdict: Deny, step: 1, reason: "not bound to an enrolled party"},
		{name: "fail/1-owner-never-connects", party: "fund", sig: cz, verdict: Deny, step: 1, reason: "owner"},
		// 2: block listings.
		{name: "fail/2-listed-block-by-name", party: "listed", sig: cz, verdict: Deny, step: 2,
			reason: "listed with action block", finding: "listing listed: Joint advisory AA25-239A: Sichuan Juxinhe Network Technology Co. Ltd., CN, as \"Sichuan Juxinhe Network Technology Co., Ltd\""},
		{name: "fail/2-controller-listed-block", party: "blockedchild", sig: cz, verdict: Deny, step: 2,
			reason: "blockedowner is listed with action block", finding: "listing blockedowner: Operator's own list; memo 2026-11"},
		{name: "fail/2-block-wins-over-strict-and-runtime", pol: strict, party: "listed", sig: sigFrom("192.0.2.10", "CN"), verdict: Deny, step: 2},
		// 3: PRC-managed by the registry.
		{name: "ok/3-chain-a-b-c-in-cn", party: "chain", sig: cz, verdict: Approval, step: 3,
			reason: "PRC-managed: established fund: CN", finding: "established fund: CN (PRC; config)"},
		{name: "ok/3-controller-finding", party: "chain", sig: cz, verdict: Approval, step: 3,
			finding: "controller fund: State Fund controls chain (chain → holding → fund) (PRC; config)"},
		{name: "fail/3-strict-denies", pol: strict, party: "chain", sig: cz, verdict: Deny, step: 3, reason: "strict mode"},
		{name: "ok/3-listing-by-alias-through-controller", party: "camvendor", sig: cz, verdict: Approval, step: 3,
			finding: "listing camowner: FCC Covered List: Hangzhou Hikvision Digital Technology Company, CN, as \"HIKVISION\""},
		{name: "ok/3-management-in-hk", party: "hkmgmt", sig: cz, verdict: Approval, step: 3, finding: "management hkmgmt: HK (PRC"},
		{name: "ok/3-registry-before-runtime", party: "chain", sig: sigFrom("192.0.2.10", "CN"), verdict: Approval, step: 3},
		// 4: PRC findings at run time.
		{name: "ok/4-declared-cz-source-in-cn", party: "vendor", sig: sigFrom("192.0.2.10", "CN"), verdict: Approval, step: 4,
			conflict: "declared CZ, source address in CN", finding: "source-country 192.0.2.10: CN (PRC; test.mmdb)"},
		{name: "fail/4-strict-denies", pol: strict, party: "vendor", sig: sigFrom("192.0.2.10", "CN"), verdict: Deny, step: 4,
			reason: "strict mode", conflict: "declared CZ, source address in CN"},
		{name: "ok/4-source-in-mo", party: "vendor", sig: sigFrom("192.0.2.10", "MO"), verdict: Approval, step: 4, conflict: "declared CZ, source address in MO"},
		{name: "ok/4-asn-configured", party: "vendor", sig: with(cz, func(s *Signals) { s.ASN, s.ASOrg = 4134, "CHINANET-BACKBONE" }), verdict: Approval, step: 4,
			conflict: "declared CZ, source network AS4134 CHINANET-BACKBONE (high-risk: config jurisdiction.asn_high_risk)"},
		{name: "ok/4-asn-listed-by-number", party: "vendor", sig: with(cz, func(s *Signals) { s.ASN = 58453 }), verdict: Approval, step: 4,
			finding: "AS58453 (high-risk: bundle serial 3: China Mobile International Limited)"},
		{name: "ok/4-asn-org-listed-by-name", party: "vendor", sig: with(cz, func(s *Signals) { s.ASN, s.ASOrg = 64500, "Hikvision" }), verdict: Approval, step: 4,
			finding: "AS64500 Hikvision (listed: FCC Covered List"},
		{name: "ok/4-certificate-cn-despite-cz-source", party: "vendor", sig: with(cz, func(s *Signals) { s.CertCountry = "cn" }), verdict: Approval, step: 4,
			conflict: "declared CZ, certificate subject country CN"},
		{name: "ok/4-relay-of-prc-party", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay = "eu1.relay.fund.example:443" }), verdict: Approval, step: 4,
			finding: "relay eu1.relay.fund.example: relay *.relay.fund.example of PRC party fund"},
		{name: "ok/4-relay-domain-cn", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay = "relay.example.cn" }), verdict: Approval, step: 4,
			conflict: "declared CZ, relay relay.example.cn: relay domain in CN"},
		{name: "ok/4-relay-address-in-hk", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay, s.RelayCountry = "203.0.113.5:22", "HK" }), verdict: Approval, step: 4,
			conflict: "declared CZ, relay 203.0.113.5: relay address in HK"},
		{name: "ok/4-prc-beats-unknown", party: "noev", sig: sigFrom("198.51.100.70", "CN"), verdict: Approval, step: 4,
			conflict: "declared nothing, source address in CN"},
		{name: "ok/4-local-party-cert-cn", party: "scada", sig: with(sigFrom("10.1.2.3", ""), func(s *Signals) { s.CertCountry = "CN" }), verdict: Approval, step: 4,
			conflict: "declared local network, certificate subject country CN"},
		// 5: unknown.
		{name: "ok/5-no-evidence", party: "noev", sig: sigFrom("198.51.100.70", "CZ"), verdict: Approval, step: 5, finding: "evidence noev: no jurisdiction evidence declared"},
		{name: "ok/5-key-field-missing", party: "partial", sig: sigFrom("198.51.100.81", "CZ"), verdict: Approval, step: 5, finding: "data partial: data_to not declared"},
		{name: "ok/5-review-expired", party: "stale", sig: sigFrom("198.51.100.97", "AT"), verdict: Approval, step: 5, finding: "review stale: evidence stale: review was due by 2026-06-01"},
		{name: "ok/5-controller-review-expired", party: "stalectl", sig: sigFrom("198.51.100.113", "AT"), verdict: Approval, step: 5, finding: "review staleowner"},
		{name: "ok/6-review-due-today-still-fresh", party: "stalectl", sig: with(sigFrom("198.51.100.113", "AT"), func(s *Signals) {
			s.Now = time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC)
		}), verdict: Allow, step: 6},
		{name: "ok/5-missing-geo-database", party: "vendor", sig: with(sigFrom("192.0.2.10", ""), func(s *Signals) { s.GeoErr = "no country database" }), verdict: Approval, step: 5,
			finding: "geo 192.0.2.10: no geo data: no country database"},
		{name: "ok/5-geo-without-country", party: "vendor", sig: with(sigFrom("192.0.2.10", ""), func(s *Signals) { s.GeoKnown = true }), verdict: Approval, step: 5,
			finding: "no country for this address"},
		{name: "ok/5-no-source-address", party: "vendor", sig: sigFrom("", ""), verdict: Approval, step: 5, finding: "source address not known"},
		{name: "ok/5-clock-untrusted", party: "vendor", sig: with(cz, func(s *Signals) { s.ClockTrusted = false }), verdict: Approval, step: 5, finding: "clock gateway"},
		{name: "ok/5-clock-zero", party: "vendor", sig: with(cz, func(s *Signals) { s.Now = time.Time{} }), verdict: Approval, step: 5, finding: "clock gateway"},
		{name: "ok/5-bundle-expired", party: "vendor", sig: with(cz, func(s *Signals) { s.BundleExpired = true }), verdict: Approval, step: 5, finding: "bundle data bundle: expired"},
		{name: "ok/5-relay-not-declared", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay = "jump.other.example" }), verdict: Approval, step: 5, finding: "relay not declared by vendor"},
		{name: "ok/5-local-operator-public-network", party: "roaming-op", sig: sigFrom("203.0.113.200", "CZ"), verdict: Approval, step: 5, finding: "no jurisdiction evidence"},
		{name: "ok/5-strict-unknown-is-approval", pol: strict, party: "noev", sig: sigFrom("198.51.100.70", "CZ"), verdict: Approval, step: 5},
		// 6: admitted.
		{name: "ok/6-cz-vendor-from-cz", party: "vendor", sig: cz, verdict: Allow, step: 6},
		{name: "ok/6-declared-relay-host", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay = "Relay.Vendor.Example." }), verdict: Allow, step: 6},
		{name: "ok/6-declared-relay-network", party: "vendor", sig: with(cz, func(s *Signals) { s.Relay, s.RelayCountry = "203.0.113.3", "CZ" }), verdict: Allow, step: 6},
		{name: "ok/6-note-listing-changes-nothing", party: "noted", sig: sigFrom("198.51.100.130", "PL"), verdict: Allow, step: 6},
		{name: "ok/6-local-scada", party: "scada", sig: sigFrom("10.1.2.3", ""), verdict: Allow, step: 6, finding: ""},
		{name: "ok/6-local-scada-clock-and-bundle-do-not-matter", party: "scada", sig: with(sigFrom("10.1.2.3", ""), func(s *Signals) {
			s.ClockTrusted, s.BundleExpired = false, true
		}), verdict: Allow, step: 6},
		{name: "ok/6-local-address-is-not-unknown", party: "vendor", sig: sigFrom("fe80::1", ""), verdict: Allow, step: 6},
		{name: "ok/6-ipv4-mapped-local", party: "scada", sig: sigFrom("::ffff:10.1.2.3", ""), verdict: Allow, step: 6},
		{name: "ok/6-non-prc-asn", party: "vendor", sig: with(cz, func(s *Signals) { s.ASN, s.ASOrg = 2852, "CESNET z.s.p.o." }), verdict: Allow, step: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.pol
			if pol == nil {
				pol = p
			}
			var party *Party
			if tt.party != "" {
				party = pol.Party(tt.party)
				if party == nil {
					t.Fatalf("no party %q", tt.party)
				}
			}
			a := pol.Admit(party, tt.sig)
			if a.Verdict != tt.verdict || a.Step != tt.step {
				t.Fatalf("Admit = %s; want %s at step %d\n%s", a, tt.verdict, tt.step, findings(a))
			}
			if !strings.Contains(a.Reason, tt.reason) {
				t.Errorf("Reason = %q; want it to contain %q", a.Reason, tt.reason)
			}
			if (tt.conflict != "" || a.Step != StepPRCRuntime) && a.Conflict != tt.conflict {
				t.Errorf("Conflict = %q; want %q", a.Conflict, tt.conflict)
			}
			if tt.finding != "" {
				found := false
				for _, f := range a.Findings {
					found = found || f.Decisive && strings.Contains(f.String(), tt.finding)
				}
				if !found {
					t.Errorf("no decisive finding like %q in\n%s", tt.finding, findings(a))
				}
			}
			if a.Verdict == Allow {
				for _, f := range a.Findings {
					if f.Verdict != NonPRC || f.Decisive {
						t.Errorf("allowed with finding %s", f)
					}
				}
			}
		})
	}
}

func findings(a Admission) string {
	var b strings.Builder
	for _, f := range a.Findings {
		if f.Decisive {
			b.WriteString("* ")
		} else {
			b.WriteString("- ")
		}
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func TestStaticVerdicts(t *testing.T) {
	p, err := Compile(jurisdictionSpec(), testTargets, WithListings(testListings))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Verdict{
		"scada": NonPRC, "vendor": NonPRC, "chain": PRC, "holding": PRC, "fund": PRC, "camvendor": PRC, "camowner": PRC,
		"listed": PRC, "blockedchild": PRC, "blockedowner": PRC, "noev": Unknown, "partial": Unknown,
		"stale":    NonPRC, // staleness is judged at admission, against the session's clock
		"stalectl": NonPRC, "staleowner": NonPRC, "noted": NonPRC, "hkmgmt": PRC, "roaming-op": Unknown,
	}
	for _, party := range p.Parties() {
		if got, ok := want[party.ID]; !ok || party.Verdict != got {
			t.Errorf("%s: Verdict = %s; want %s", party.ID, party.Verdict, got)
		}
	}
	if !p.Party("stalectl").ReviewDue(testNow) || !p.Party("stale").ReviewDue(testNow) || p.Party("vendor").ReviewDue(testNow) {
		t.Error("ReviewDue wrong")
	}
	if !p.Party("scada").Local || p.Party("roaming-op").Local || p.Party("vendor").Local {
		t.Errorf("Local: scada %v, roaming-op %v, vendor %v; want true, false, false",
			p.Party("scada").Local, p.Party("roaming-op").Local, p.Party("vendor").Local)
	}
	// Without the bundle listings only the config's own listings count.
	bare := mustCompile(t, jurisdictionSpec())
	if v := bare.Party("listed").Verdict; v != NonPRC {
		t.Errorf("listed without listings: %s; want non-PRC", v)
	}
	if v := bare.Party("blockedchild").Verdict; v != PRC {
		t.Errorf("blockedchild without listings: %s; want PRC (own config listing)", v)
	}
}

func TestHighRiskConfigurable(t *testing.T) {
	s := jurisdictionSpec()
	s.Jurisdiction.HighRisk = []string{"CN", "RU"}
	p := mustCompile(t, s)
	if got := p.HighRisk(); strings.Join(got, ",") != "CN,RU" {
		t.Fatalf("HighRisk() = %v", got)
	}
	if a := p.Admit(p.Party("vendor"), sigFrom("192.0.2.10", "RU")); a.Step != StepPRCRuntime {
		t.Errorf("source in RU with RU high-risk: %s", a)
	}
	if a := p.Admit(p.Party("vendor"), sigFrom("192.0.2.10", "HK")); a.Step != StepRules {
		t.Errorf("source in HK with HK not high-risk: %s", a)
	}
	if a := mustCompile(t, jurisdictionSpec()).Admit(p.Party("hkmgmt"), sigFrom("192.0.2.10", "CZ")); a.Step != StepPRCManaged {
		t.Errorf("party from another policy, default set: %s", a)
	}
}

func TestJurisdictionCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		path   string
		msg    string
	}{
		{"fail/cycle", func(s *Spec) { s.Parties[4].Evidence.ControlledBy = []string{"chain"} }, "parties[4].evidence.controlled_by[0]",
			"ownership cycle: chain → holding → fund → chain"},
		{"fail/self-control", func(s *Spec) { s.Parties[1].Evidence.ControlledBy = []string{"vendor"} }, "parties[1].evidence.controlled_by[0]",
			"ownership cycle: vendor → vendor"},
		{"fail/unknown-controller", func(s *Spec) { s.Parties[2].Evidence.ControlledBy = []string{"ghost"} }, "parties[2].evidence.controlled_by[0]", `unknown party "ghost"`},
		{"fail/country-three-letters", func(s *Spec) { s.Parties[1].Evidence.EstablishedIn = "CZE" }, "parties[1].evidence.established_in", "not an ISO 3166-1"},
		{"fail/country-lower-case", func(s *Spec) { s.Parties[1].Evidence.OperatesFrom = []string{"CZ", "cz"} }, "parties[1].evidence.operates_from[1]", `"cz"`},
		{"fail/country-uk", func(s *Spec) { s.Parties[1].Evidence.DataTo = []string{"UK"} }, "parties[1].evidence.data_to[0]", `"UK"`},
		{"fail/management-country", func(s *Spec) { s.Parties[1].Evidence.ManagementIn = []string{"XX"} }, "parties[1].evidence.management_in[0]", `"XX"`},
		{"fail/high-risk-code", func(s *Spec) { s.Jurisdiction.HighRisk = []string{"CN", "hk"} }, "jurisdiction.high_risk[1]", "two upper-case letters"},
		{"fail/asn-zero", func(s *Spec) { s.Jurisdiction.ASNHighRisk = []uint32{4134, 0} }, "jurisdiction.asn_high_risk[1]", "reserved"},
		{"fail/review-date", func(s *Spec) { s.Parties[1].Evidence.ReviewBy = "2027-13-01" }, "parties[1].evidence.review_by", "not a date"},
		{"fail/reviewed-on-date", func(s *Spec) { s.Parties[1].Evidence.ReviewedOn = "10.1.2026" }, "parties[1].evidence.reviewed_on", "YYYY-MM-DD"},
		{"fail/review-before-reviewed", func(s *Spec) { s.Parties[1].Evidence.ReviewBy = "2025-01-01" }, "parties[1].evidence.review_by", "before reviewed_on 2026-01-10"},
		{"fail/listing-action", func(s *Spec) { s.Parties[9].Evidence.Listings[0].Action = "deny" }, "parties[9].evidence.listings[0].action", `unknown action "deny"`},
		{"fail/listing-source", func(s *Spec) { s.Parties[9].Evidence.Listings[0].Source = "" }, "parties[9].evidence.listings[0].source", "missing"},
		{"fail/listing-date", func(s *Spec) { s.Parties[9].Evidence.Listings[0].Date = "yesterday" }, "parties[9].evidence.listings[0].date", "not a date"},
		{"fail/relay", func(s *Spec) { s.Parties[1].Evidence.Relays = []string{"relay.example", "bad host!"} }, "parties[1].evidence.relays[1]", "bad relay"},
		{"fail/relay-cidr", func(s *Spec) { s.Parties[1].Evidence.Relays = []string{"203.0.113.1/24"} }, "parties[1].evidence.relays[0]", "host bits"},
		{"fail/owner-with-networks", func(s *Spec) { s.Parties[3].Networks = []string{"203.0.113.64/28"} }, "parties[3].networks", "owner never connects"},
		{"fail/rule-names-owner", func(s *Spec) { s.Rules[0].Parties = []string{"vendor", "fund"} }, "rules[0].parties[1]", `"fund" is an owner`},
		{"fail/bundle-without-key", func(s *Spec) { s.Jurisdiction.Bundle.Dir = "/var/lib/brana/bundle" }, "jurisdiction.bundle.public_key", "missing"},
		{"fail/key-without-bundle", func(s *Spec) { s.Jurisdiction.Bundle.PublicKey = "/etc/brana/bundle.pub" }, "jurisdiction.bundle.dir", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := jurisdictionSpec()
			tt.mutate(&s)
			p, err := Compile(s, testTargets)
			if err == nil {
				t.Fatalf("Compile succeeded with %d parties", len(p.Parties()))
			}
			var hit bool
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				if errors.As(e, &fe) && fe.Path == tt.path && strings.Contains(fe.Msg, tt.msg) {
					hit = true
				}
			}
			if !hit {
				t.Fatalf("want %s: ...%s...; got\n%v", tt.path, tt.msg, err)
			}
		})
	}
}

func TestCycleReportedOnce(t *testing.T) {
	s := jurisdictionSpec()
	s.Parties[4].Evidence.ControlledBy = []string{"holding"} // holding ↔ fund
	_, err := Compile(s, testTargets)
	if err == nil {
		t.Fatal("Compile succeeded")
	}
	if n := strings.Count(err.Error(), "ownership cycle"); n != 1 {
		t.Fatalf("%d cycle errors; want 1:\n%v", n, err)
	}
	if !strings.Contains(err.Error(), "holding → fund → holding") {
		t.Fatalf("cycle not named: %v", err)
	}
}

func TestDiamondChain(t *testing.T) {
	s := jurisdictionSpec()
	// chain is controlled by holding and by fund directly; fund once.
	s.Parties[2].Evidence.ControlledBy = []string{"holding", "fund"}
	p := mustCompile(t, s)
	n := 0
	for _, f := range p.Party("chain").Findings {
		if f.Kind == "controller" && f.Subject == "fund" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("fund appears %d times as controller; want 1", n)
	}
}

func TestDigestJurisdiction(t *testing.T) {
	base := mustCompile(t, jurisdictionSpec()).Digest()
	for name, mutate := range map[string]func(s *Spec){
		"strict":      func(s *Spec) { s.Jurisdiction.Strict = true },
		"high-risk":   func(s *Spec) { s.Jurisdiction.HighRisk = []string{"CN"} },
		"asn":         func(s *Spec) { s.Jurisdiction.ASNHighRisk = []uint32{4837} },
		"geoip":       func(s *Spec) { s.Jurisdiction.GeoIP.CountryDB = "/x.mmdb" },
		"legal-name":  func(s *Spec) { s.Parties[1].LegalName = "Vendor a.s." },
		"established": func(s *Spec) { s.Parties[1].Evidence.EstablishedIn = "SK" },
		"controller":  func(s *Spec) { s.Parties[2].Evidence.ControlledBy = nil },
		"listing":     func(s *Spec) { s.Parties[9].Evidence.Listings[0].Action = "note" },
		"relay":       func(s *Spec) { s.Parties[1].Evidence.Relays = nil },
		"review":      func(s *Spec) { s.Parties[1].Evidence.ReviewBy = "2027-01-11" },
	} {
		s := jurisdictionSpec()
		mutate(&s)
		if mustCompile(t, s).Digest() == base {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestDecideAdmitted(t *testing.T) {
	p, err := Compile(jurisdictionSpec(), testTargets, WithListings(testListings))
	if err != nil {
		t.Fatal(err)
	}
	req := opReq(t, "read:holding:0@1")
	allow := p.Admit(p.Party("vendor"), sigFrom("192.0.2.10", "CZ"))
	approval := p.Admit(p.Party("vendor"), sigFrom("192.0.2.10", "CN"))
	deny := p.Admit(p.Party("listed"), sigFrom("192.0.2.10", "CZ"))
	tests := []struct {
		name     string
		a        *Admission
		approved bool
		reason   Reason // 0 for allow
	}{
		{"ok/allowed", &allow, false, 0},
		{"ok/approved", &approval, true, 0},
		{"fail/approval-pending", &approval, false, NeedsApproval},
		{"fail/denied-even-if-approved", &deny, true, NotAdmitted},
		{"fail/no-admission", nil, true, NotAdmitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := p.DecideAdmitted(tt.a, tt.approved, p.Party("vendor"), "plc1", req)
			var d *Denial
			switch {
			case tt.reason == 0 && (err != nil || rule == nil):
				t.Fatalf("want allow, got %v", err)
			case tt.reason != 0 && (!errors.As(err, &d) || d.Reason != tt.reason):
				t.Fatalf("want %s, got %v", tt.reason, err)
			}
			if allocs := testing.AllocsPerRun(1000, func() {
				_, _ = p.DecideAdmitted(tt.a, tt.approved, p.Party("vendor"), "plc1", req)
			}); allocs != 0 {
				t.Fatalf("DecideAdmitted allocates %.1f times; want 0", allocs)
			}
		})
	}
}

func TestExplainAdmission(t *testing.T) {
	p, err := Compile(jurisdictionSpec(), testTargets, WithListings(testListings))
	if err != nil {
		t.Fatal(err)
	}
	e := p.Explain(p.Party("vendor"), "plc1", opReq(t, "read:holding:0-9@1"), sigFrom("192.0.2.10", "CN"))
	want := `party vendor, target plc1: FC 3 (read) unit 1: read holding 0-9
admission: approval (step 4): PRC finding at run time: source-country 192.0.2.10: CN
  conflict: declared CZ, source address in CN
  - established vendor: CZ (non-PRC; config)
  - management vendor: CZ (non-PRC; config)
  - operations vendor: CZ (non-PRC; config)
  - data vendor: CZ (non-PRC; config)
  - relay vendor: uses relay relay.vendor.example (non-PRC; config)
  - relay vendor: uses relay 203.0.113.0/28 (non-PRC; config)
  * source-country 192.0.2.10: CN (PRC; test.mmdb)
rule read-all: allows
decision: needs approval (step 4); once approved: allow by rule read-all
`
	if got := e.String(); got != want {
		t.Fatalf("String():\n%s\nwant:\n%s", got, want)
	}
	e = p.Explain(p.Party("listed"), "plc1", opReq(t, "read:holding:0-9@1"), sigFrom("192.0.2.10", "CZ"))
	if !strings.HasSuffix(e.String(), "decision: deny (not admitted, step 2): listed is listed with action block: Joint advisory AA25-239A: Sichuan Juxinhe Network Technology Co. Ltd., CN, as \"Sichuan Juxinhe Network Technology Co., Ltd\"; https://example.test/aa25-239a; 2026-11-26; action block\n") {
		t.Fatalf("String():\n%s", e)
	}
	// ExplainModbus, without admission, prints as before.
	if s := p.ExplainModbus(p.Party("vendor"), "plc1", opReq(t, "read:holding:0-9@1")).String(); strings.Contains(s, "admission") {
		t.Fatalf("ExplainModbus:\n%s", s)
	}
}

func TestValidCountry(t *testing.T) {
	if n := len(iso3166) / 3; n != 250 {
		t.Fatalf("%d codes; want 249 ISO 3166-1 alpha-2 codes and XK", n)
	}
	for _, cc := range []string{"CN", "HK", "MO", "CZ", "GB", "XK", "TW"} {
		if !ValidCountry(cc) {
			t.Errorf("ValidCountry(%q) = false", cc)
		}
	}
	for _, cc := range []string{"", "C", "cn", "UK", "EU", "XX", "CZE", "Cz", "N "} {
		if ValidCountry(cc) {
			t.Errorf("ValidCountry(%q) = true", cc)
		}
	}
}
