package bundle

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/policy"
)

func TestDefaultListings(t *testing.T) {
	l := DefaultListings()
	want := map[string]string{
		"Sichuan Juxinhe Network Technology Co. Ltd.":               policy.ActionBlock,
		"Beijing Huanyu Tianqiong Information Technology Co., Ltd.": policy.ActionBlock,
		"Sichuan Zhixin Ruijie Network Technology Co., Ltd.":        policy.ActionBlock,
		"Huawei Technologies Company":                               policy.ActionApproval,
		"ZTE Corporation":                                           policy.ActionApproval,
		"Hytera Communications Corporation":                         policy.ActionApproval,
		"Hangzhou Hikvision Digital Technology Company":             policy.ActionApproval,
		"Dahua Technology Company":                                  policy.ActionApproval,
		"China Mobile International USA Inc.":                       policy.ActionApproval,
		"China Telecom (Americas) Corp.":                            policy.ActionApproval,
		"Pacific Networks Corp.":                                    policy.ActionApproval,
		"ComNet (USA) LLC":                                          policy.ActionApproval,
		"China Unicom (Americas) Operations Limited":                policy.ActionApproval,
	}
	if len(l) != len(want) {
		t.Errorf("%d entries; want %d", len(l), len(want))
	}
	for _, e := range l {
		action, ok := want[e.Name]
		switch {
		case !ok:
			t.Errorf("unexpected entry %q", e.Name)
		case e.Action != action:
			t.Errorf("%s: action %s; want %s", e.Name, e.Action, action)
		}
		if e.Source == "" || !strings.HasPrefix(e.Reference, "https://") || e.Date != DefaultListingsCompiled || e.Country != "CN" {
			t.Errorf("%s: source %q, reference %q, date %q, country %q", e.Name, e.Source, e.Reference, e.Date, e.Country)
		}
		if e.Origin != "built-in listings compiled "+DefaultListingsCompiled {
			t.Errorf("%s: origin %q", e.Name, e.Origin)
		}
	}
	if !strings.Contains(string(defaultListings), "Compiled "+DefaultListingsCompiled) || !strings.Contains(string(defaultListings), "MUST BE REVIEWED") {
		t.Error("default listings lack their dated header")
	}
	// The caller owns the slice.
	l[0].Aliases[0] = "changed"
	if DefaultListings()[0].Aliases[0] == "changed" {
		t.Error("DefaultListings shares its slices")
	}
}

// TestDefaultListingsDecide runs the built-in listings through the decision
// order: an advisory company is denied, a covered-list company through its
// controller needs approval.
func TestDefaultListingsDecide(t *testing.T) {
	ev := func(cc string, ctl ...string) *policy.EvidenceSpec {
		return &policy.EvidenceSpec{EstablishedIn: cc, ManagementIn: []string{cc}, OperatesFrom: []string{cc}, DataTo: []string{cc}, ReviewBy: "2027-01-01", ControlledBy: ctl}
	}
	spec := policy.Spec{Parties: []policy.PartySpec{
		{ID: "zhixin", Kind: "vendor", LegalName: "SICHUAN ZHIXIN RUIJIE NETWORK TECHNOLOGY CO LTD", Networks: []string{"192.0.2.1"}, Evidence: ev("CN")},
		{ID: "cam-eu", Kind: "integrator", LegalName: "Cam Service Europe B.V.", Networks: []string{"192.0.2.2"}, Evidence: ev("NL", "hik")},
		{ID: "hik", Kind: "owner", Organisation: "Hangzhou Hikvision Digital Technology Co., Ltd.", Evidence: &policy.EvidenceSpec{EstablishedIn: "NL"}},
		{ID: "plain", Kind: "vendor", LegalName: "Huawei Partner s.r.o.", Networks: []string{"192.0.2.3"}, Evidence: ev("CZ")},
	}}
	pol, err := policy.Compile(spec, nil, policy.WithListings(DefaultListings()))
	if err != nil {
		t.Fatal(err)
	}
	sig := policy.Signals{Source: netip.MustParseAddr("192.0.2.9"), Country: "NL", GeoKnown: true, Now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), ClockTrusted: true}
	for _, tt := range []struct {
		party   string
		verdict policy.AdmissionVerdict
		step    int
	}{
		{"zhixin", policy.Deny, 2},
		{"cam-eu", policy.Approval, 3},
		{"plain", policy.Allow, 6}, // a name is matched whole, not as a part
	} {
		if a := pol.Admit(pol.Party(tt.party), sig); a.Verdict != tt.verdict || a.Step != tt.step {
			t.Errorf("%s: %s; want %s at step %d", tt.party, a, tt.verdict, tt.step)
		}
	}
}

func TestParseListings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		err  string
	}{
		{"ok/empty-file", "", 0, ""},
		{"ok/no-entries", "entries: []\n", 0, ""},
		{"ok/unquoted-date", "entries:\n  - {name: A, action: note, source: s, date: 2026-01-02}\n", 1, ""},
		{"fail/unknown-key", "entries:\n  - {name: A, action: note, source: s, url: x}\n", 0, "url"},
		{"fail/unknown-top-key", "listings: []\n", 0, "listings"},
		{"fail/no-name", "entries:\n  - {action: note, source: s}\n", 0, "entries[0]"},
		{"fail/no-source", "entries:\n  - {name: A, action: note}\n", 0, "no source"},
		{"fail/action", "entries:\n  - {name: A, action: deny, source: s}\n", 0, `unknown action "deny"`},
		{"fail/country", "entries:\n  - {name: A, action: note, source: s, country: China}\n", 0, "country code"},
		{"fail/date", "entries:\n  - {name: A, action: note, source: s, date: 26.11.2026}\n", 0, "date"},
		{"fail/asn-type", "entries:\n  - {name: A, action: note, source: s, asns: [AS1]}\n", 0, ""},
		{"fail/two-documents", "entries: []\n---\nentries: []\n", 0, "more than one"},
		{"fail/not-yaml", "entries: [\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseListings([]byte(tt.in), "test")
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil || len(l) != tt.n {
					t.Fatalf("ParseListings = %d entries, %v; want %d", len(l), err, tt.n)
				}
				return
			}
			if !errors.Is(err, ErrListings) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ParseListings: %v; want ErrListings with %q", err, tt.err)
			}
		})
	}
}
