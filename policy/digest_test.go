package policy

import (
	"regexp"
	"testing"
)

func TestDigestStable(t *testing.T) {
	want := mustCompile(t, testSpec()).Digest()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("Digest() = %q; want 64 hex digits", want)
	}
	for i := 0; i < 50; i++ {
		// Maps built in a different insertion order, and Go's random map
		// iteration, must not show in the digest.
		s := testSpec()
		s.Rules[1].Ranges = map[string][]string{}
		s.Rules[1].Ranges["coils"] = []string{"0-15"}
		s.Rules[1].Ranges["holding"] = []string{"100-199", "300"}
		// nil and empty lists decode alike from YAML; they hash alike too.
		s.Rules[0].Functions = []int{}
		if got := mustCompile(t, s).Digest(); got != want {
			t.Fatalf("run %d: Digest() = %s; want %s", i, got, want)
		}
	}
}

func TestDigestChanges(t *testing.T) {
	base := mustCompile(t, testSpec()).Digest()
	mutations := []struct {
		name   string
		mutate func(s *Spec)
	}{
		{"rule-name", func(s *Spec) { s.Rules[0].Name = "scada-read2" }},
		{"rule-description", func(s *Spec) { s.Rules[0].Description = "x" }},
		{"rule-parties", func(s *Spec) { s.Rules[4].Parties = []string{"scada"} }},
		{"rule-targets", func(s *Spec) { s.Rules[0].Targets = []string{"plc1"} }},
		{"rule-classes", func(s *Spec) { s.Rules[0].Classes = []string{"read", "diagnose"} }},
		{"rule-functions", func(s *Spec) { s.Rules[2].Functions = []int{3, 4} }},
		{"rule-units", func(s *Spec) { s.Rules[2].Units = []int{2} }},
		{"rule-range", func(s *Spec) { s.Rules[2].Ranges["holding"] = []string{"0-98"} }},
		{"rule-range-table", func(s *Spec) { s.Rules[2].Ranges["coils"] = []string{"0-99"} }},
		{"rule-range-moved-between-tables", func(s *Spec) {
			s.Rules[2].Ranges = map[string][]string{"holding": {"0-65535"}, "input": {"0-99"}}
		}},
		{"rule-ranges-dropped", func(s *Spec) { s.Rules[2].Ranges = nil }},
		{"rule-bounds-min", func(s *Spec) { s.Rules[3].Values.Min = 11 }},
		{"rule-bounds-max", func(s *Spec) { s.Rules[3].Values.Max = 49 }},
		{"rule-bounds-dropped", func(s *Spec) { s.Rules[3].Values = nil }},
		{"rule-bounds-added-as-zero", func(s *Spec) { s.Rules[0].Values = &Bounds{} }},
		{"rule-reset", func(s *Spec) { s.Rules[3].Reset = false }},
		{"rule-order", func(s *Spec) { s.Rules[0], s.Rules[1] = s.Rules[1], s.Rules[0] }},
		{"rule-removed", func(s *Spec) { s.Rules = s.Rules[:len(s.Rules)-1] }},
		{"party-name", func(s *Spec) { s.Parties[0].Name = "SCADA" }},
		{"party-organisation", func(s *Spec) { s.Parties[0].Organisation = "ČEPS" }},
		{"party-kind", func(s *Spec) { s.Parties[0].Kind = "operator" }},
		{"party-network", func(s *Spec) { s.Parties[0].Networks[0] = "10.2.0.0/16" }},
		{"strings-not-run-together", func(s *Spec) {
			s.Rules[0].Name, s.Rules[0].Description = "scada-rea", "d"
		}},
	}
	seen := map[string]string{base: "base"}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			s := testSpec()
			m.mutate(&s)
			got := mustCompile(t, s).Digest()
			if other, dup := seen[got]; dup {
				t.Fatalf("digest %s same as %s", got, other)
			}
			seen[got] = m.name
		})
	}
}

// TestDigestGolden pins the canonical encoding: policy versions in old audit
// records must keep meaning the same spec.
func TestDigestGolden(t *testing.T) {
	s := Spec{
		Parties: []PartySpec{{ID: "scada", Name: "SCADA", Organisation: "ČEPS, a.s.", Kind: "scada", Networks: []string{"10.1.0.0/16"}}},
		Rules: []RuleSpec{{
			Name: "r", Parties: []string{"scada"}, Targets: []string{"plc1"}, Classes: []string{"read", "write"},
			Functions: []int{3, 16}, Units: []int{1}, Ranges: map[string][]string{"input": {"0-9"}, "holding": {"0-99", "120"}},
			Values: &Bounds{Min: 0, Max: 100}, Reset: true,
		}},
	}
	const want = "6cd8ee8243df184e904e012e48831947749d00594ce03f1b30463d3b55ebca21"
	if got := mustCompile(t, s).Digest(); got != want {
		t.Fatalf("Digest() = %s; want %s", got, want)
	}
}
