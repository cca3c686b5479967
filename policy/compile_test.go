package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		path   string
		msg    string // substring of the message
	}{
		{"fail/empty-party-id", func(s *Spec) { s.Parties[3].ID = "" }, "parties[3].id", "empty party id"},
		{"fail/reserved-party-id", func(s *Spec) { s.Parties[3].ID = "*" }, "parties[3].id", "reserved"},
		{"fail/duplicate-party-id", func(s *Spec) { s.Parties[3].ID = "scada" }, "parties[3].id", `duplicate party id "scada" (also parties[0])`},
		{"fail/unknown-kind", func(s *Spec) { s.Parties[0].Kind = "vendr" }, "parties[0].kind", `unknown kind "vendr"`},
		{"fail/bad-cidr", func(s *Spec) { s.Parties[1].Networks[1] = "2001:db8::/129" }, "parties[1].networks[1]", "bad network"},
		{"fail/bad-address", func(s *Spec) { s.Parties[2].Networks[0] = "198.51.100.300" }, "parties[2].networks[0]", "bad address"},
		{"fail/host-bits-set", func(s *Spec) { s.Parties[0].Networks[0] = "10.1.2.3/16" }, "parties[0].networks[0]", "did you mean 10.1.0.0/16"},
		{"fail/ipv4-mapped-network", func(s *Spec) { s.Parties[2].Networks[0] = "::ffff:198.51.100.0/120" }, "parties[2].networks[0]", "write it as IPv4"},
		{"fail/ipv4-mapped-address", func(s *Spec) { s.Parties[2].Networks[0] = "::ffff:198.51.100.7" }, "parties[2].networks[0]", "write it as IPv4"},
		{"fail/zone", func(s *Spec) { s.Parties[2].Networks[0] = "fe80::1%eth0" }, "parties[2].networks[0]", "zone"},
		{"fail/overlapping-networks", func(s *Spec) { s.Parties[3].Networks = []string{"10.0.0.0/8"} }, "parties[3].networks[0]",
			`10.0.0.0/8 overlaps 10.1.0.0/16 of party "scada" (parties[0].networks[0])`},
		{"fail/same-address-two-parties", func(s *Spec) { s.Parties[3].Networks = []string{"198.51.100.7/32"} }, "parties[3].networks[0]", `party "integ"`},
		{"fail/empty-rule-name", func(s *Spec) { s.Rules[2].Name = "" }, "rules[2].name", "empty rule name"},
		{"fail/duplicate-rule-name", func(s *Spec) { s.Rules[2].Name = "scada-read" }, "rules[2].name", `duplicate rule name "scada-read" (also rules[0])`},
		{"fail/rule-without-parties", func(s *Spec) { s.Rules[0].Parties = nil }, "rules[0].parties", "no parties"},
		{"fail/rule-without-targets", func(s *Spec) { s.Rules[0].Targets = []string{} }, "rules[0].targets", "no targets"},
		{"fail/unknown-party", func(s *Spec) { s.Rules[4].Parties = []string{"*", "ghost"} }, "rules[4].parties[1]", `unknown party "ghost"`},
		{"fail/unknown-target", func(s *Spec) { s.Rules[1].Targets = []string{"plc9"} }, "rules[1].targets[0]", `unknown target "plc9"`},
		{"fail/unknown-class", func(s *Spec) { s.Rules[2].Classes = []string{"read", "exec"} }, "rules[2].classes[1]", `unknown class "exec"`},
		{"fail/rule-without-classes", func(s *Spec) { s.Rules[2].Classes = nil }, "rules[2].classes", "no classes"},
		{"fail/function-0", func(s *Spec) { s.Rules[2].Functions = []int{0} }, "rules[2].functions[0]", "function code 0 outside 1..127"},
		{"fail/function-128", func(s *Spec) { s.Rules[2].Functions = []int{3, 128} }, "rules[2].functions[1]", "function code 128 outside 1..127"},
		{"fail/unit-256", func(s *Spec) { s.Rules[2].Units = []int{256} }, "rules[2].units[0]", "unit id 256 outside 0..255"},
		{"fail/unit-negative", func(s *Spec) { s.Rules[2].Units = []int{1, -1} }, "rules[2].units[1]", "unit id -1 outside 0..255"},
		{"fail/unknown-table", func(s *Spec) { s.Rules[2].Ranges["holdings"] = []string{"0"} }, "rules[2].ranges.holdings", `unknown table "holdings"`},
		{"fail/table-given-twice", func(s *Spec) { s.Rules[2].Ranges["holding-registers"] = []string{"0"} }, "rules[2].ranges.holding-registers", `also given as "holding"`},
		{"fail/empty-range-list", func(s *Spec) { s.Rules[2].Ranges["coils"] = nil }, "rules[2].ranges.coils", "no ranges"},
		{"fail/range-syntax-open-end", func(s *Spec) { s.Rules[2].Ranges["holding"] = []string{"0-"} }, "rules[2].ranges.holding[0]", `bad range "0-"`},
		{"fail/range-syntax-word", func(s *Spec) { s.Rules[1].Ranges["holding"] = []string{"100-199", "abc"} }, "rules[1].ranges.holding[1]", `bad range "abc"`},
		{"fail/range-syntax-three-parts", func(s *Spec) { s.Rules[2].Ranges["holding"] = []string{"1-2-3"} }, "rules[2].ranges.holding[0]", `bad range "1-2-3"`},
		{"fail/range-syntax-hex", func(s *Spec) { s.Rules[2].Ranges["holding"] = []string{"0x10"} }, "rules[2].ranges.holding[0]", "not a decimal address"},
		{"fail/range-order", func(s *Spec) { s.Rules[2].Ranges["holding"] = []string{"99-0"} }, "rules[2].ranges.holding[0]", "end before start"},
		{"fail/range-above-65535", func(s *Spec) { s.Rules[2].Ranges["input"] = []string{"0-65536"} }, "rules[2].ranges.input[0]", "address 65536 outside 0..65535"},
		{"fail/range-huge", func(s *Spec) { s.Rules[2].Ranges["input"] = []string{"99999999999"} }, "rules[2].ranges.input[0]", "outside 0..65535"},
		{"fail/bounds-min-greater-than-max", func(s *Spec) { s.Rules[3].Values = &Bounds{Min: 51, Max: 50} }, "rules[3].values", "min 51 is greater than max 50"},
		{"fail/bounds-min-negative", func(s *Spec) { s.Rules[3].Values = &Bounds{Min: -1, Max: 50} }, "rules[3].values.min", "min -1 outside 0..65535"},
		{"fail/bounds-max-above-65535", func(s *Spec) { s.Rules[3].Values = &Bounds{Max: 65536} }, "rules[3].values.max", "max 65536 outside 0..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			tt.mutate(&s)
			p, err := Compile(s, testTargets)
			if p != nil || err == nil {
				t.Fatalf("Compile = %v, %v; want an error", p, err)
			}
			// The first error is the one the mutation caused; renaming a
			// party also makes the rules that name it fail, later.
			fes := fieldErrors(t, err)
			if fes[0].Path != tt.path || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Fatalf("first error = %q; want path %q and a message containing %q\nall:\n%v", fes[0], tt.path, tt.msg, err)
			}
			if fes[0].Error() != fes[0].Path+": "+fes[0].Msg {
				t.Fatalf("Error() = %q", fes[0].Error())
			}
			for _, fe := range fes[1:] {
				if !strings.Contains(fe.Msg, "unknown party") {
					t.Fatalf("unexpected further error %q", fe)
				}
			}
		})
	}
}

// fieldErrors unpacks Compile's errors.Join, failing on anything that is not
// a *FieldError.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not an errors.Join", err)
	}
	var out []*FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %T (%v) is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	return out
}

func TestCompileReportsAllErrors(t *testing.T) {
	s := testSpec()
	s.Parties[1].ID = "scada"                                                  // duplicate
	s.Rules[0].Classes = []string{"rread"}                                     // unknown class
	s.Rules[2].Ranges = map[string][]string{"holding": {"9-0"}, "coil": {"x"}} // two bad ranges, sorted by table
	s.Rules[5].Units = []int{300}
	_, err := Compile(s, testTargets)
	var paths []string
	for _, fe := range fieldErrors(t, err) {
		paths = append(paths, fe.Path)
	}
	want := []string{
		"parties[1].id",
		"rules[0].classes[0]",
		"rules[2].parties[0]", // "vendor" no longer names a party
		"rules[2].ranges.coil[0]",
		"rules[2].ranges.holding[0]",
		"rules[3].parties[0]",
		"rules[5].units[0]",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("paths:\n%s\nwant:\n%s\nerr:\n%v", strings.Join(paths, "\n"), strings.Join(want, "\n"), err)
	}
}

func TestCompileAccepts(t *testing.T) {
	s := testSpec()
	s.Parties[0].Kind = "" // kind is optional in this cut
	s.Rules[0].Functions = []int{1, 127}
	s.Rules[0].Units = []int{0, 255}
	s.Rules[0].Ranges = map[string][]string{"holding-registers": {" 0 - 9 ", "65535"}, "discrete": {"0-65535"}}
	s.Rules[0].Values = &Bounds{Min: 0, Max: 65535}
	if _, err := Compile(s, append(testTargets, "plc1")); err != nil { // duplicate target names are harmless
		t.Fatal(err)
	}
}

func TestPartyByAddr(t *testing.T) {
	p := mustCompile(t, testSpec())
	tests := []struct {
		name, addr, party string
	}{
		{"ok/ipv4-in-network", "10.1.2.3", "scada"},
		{"ok/ipv4-in-nested-network", "10.1.7.9", "scada"},
		{"ok/ipv4-network-start", "192.0.2.0", "vendor"},
		{"ok/ipv4-network-end", "192.0.2.255", "vendor"},
		{"ok/single-address", "198.51.100.7", "integ"},
		{"ok/ipv6", "2001:db8:1::42", "vendor"},
		{"ok/ipv4-mapped-ipv6", "::ffff:10.1.2.3", "scada"},
		{"ok/ipv6-with-zone", "2001:db8::1%eth0", "vendor"},
		{"fail/unidentified-ipv4", "10.2.0.1", ""},
		{"fail/next-to-single-address", "198.51.100.8", ""},
		{"fail/unidentified-ipv6", "2001:db9::1", ""},
		{"fail/loopback", "127.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.PartyByAddr(netip.MustParseAddr(tt.addr))
			if tt.party == "" {
				if got != nil {
					t.Fatalf("PartyByAddr(%s) = %s; want nil", tt.addr, got.ID)
				}
				return
			}
			if got == nil || got.ID != tt.party {
				t.Fatalf("PartyByAddr(%s) = %v; want %s", tt.addr, got, tt.party)
			}
		})
	}
	if got := p.PartyByAddr(netip.Addr{}); got != nil {
		t.Fatalf("PartyByAddr(zero) = %v; want nil", got.ID)
	}
}

// TestPartyByAddrLongestPrefix checks the lookup itself with nested networks
// of different parties, which Compile refuses today (ambiguous identity) but
// which the lookup must still resolve to the most specific network.
func TestPartyByAddrLongestPrefix(t *testing.T) {
	a, b, c, d := &Party{ID: "a"}, &Party{ID: "b"}, &Party{ID: "c"}, &Party{ID: "d"}
	p := &Policy{nets: []netEntry{
		{netip.MustParsePrefix("10.0.0.0/8"), a},
		{netip.MustParsePrefix("10.1.2.3/32"), c},
		{netip.MustParsePrefix("10.1.0.0/16"), b},
		{netip.MustParsePrefix("2001:db8::/32"), a},
		{netip.MustParsePrefix("2001:db8:5::/48"), d},
	}}
	p.sortNets()
	for addr, want := range map[string]string{
		"10.9.9.9": "a", "10.1.9.9": "b", "10.1.2.3": "c", "10.1.2.4": "b",
		"2001:db8::1": "a", "2001:db8:5::1": "d", "::ffff:10.1.2.3": "c",
	} {
		if got := p.PartyByAddr(netip.MustParseAddr(addr)); got == nil || got.ID != want {
			t.Errorf("PartyByAddr(%s) = %v; want %s", addr, got, want)
		}
	}
}
