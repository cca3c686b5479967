package policy

import (
	"strings"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
)

func TestAdmitSupervised(t *testing.T) {
	compile := func(f func(s *Spec)) *Policy {
		s := jurisdictionSpec()
		f(&s)
		p, err := Compile(s, testTargets, WithListings(testListings))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := compile(func(*Spec) {})
	party := compile(func(s *Spec) { s.Parties[1].Supervised = true })
	prc := compile(func(s *Spec) { s.Jurisdiction.SupervisePRC = true })
	cz, cn := sigFrom("192.0.2.10", "CZ"), sigFrom("192.0.2.10", "CN")
	chainSig := sigFrom("198.51.100.1", "DE")

	tests := []struct {
		name       string
		pol        *Policy
		party      string
		sig        Signals
		step       int
		supervised bool
	}{
		{"ok/plain", plain, "vendor", cz, StepRules, false},
		{"ok/plain-prc-managed", plain, "chain", chainSig, StepPRCManaged, false},
		{"ok/party-supervised", party, "vendor", cz, StepRules, true},
		{"ok/party-supervised-other-party", party, "scada", sigFrom("10.1.0.1", ""), StepRules, false},
		{"ok/supervise-prc-managed", prc, "chain", chainSig, StepPRCManaged, true},
		{"ok/supervise-prc-runtime", prc, "vendor", cn, StepPRCRuntime, true},
		{"ok/supervise-prc-no-finding", prc, "vendor", cz, StepRules, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.pol.Admit(tt.pol.Party(tt.party), tt.sig)
			if a.Step != tt.step || a.Supervised != tt.supervised {
				t.Fatalf("Admit = step %d supervised %v (%s); want step %d supervised %v", a.Step, a.Supervised, a, tt.step, tt.supervised)
			}
			if got := strings.HasSuffix(a.String(), "; supervised"); got != tt.supervised {
				t.Fatalf("String() = %q", a.String())
			}
		})
	}
	if !prc.SupervisePRC() || plain.SupervisePRC() {
		t.Fatal("SupervisePRC reported wrongly")
	}
}

func TestNeedsWatcher(t *testing.T) {
	a := Admission{Supervised: true}
	for _, c := range opclass.All() {
		if got, want := a.NeedsWatcher(c), c != opclass.Read; got != want {
			t.Errorf("supervised NeedsWatcher(%s) = %v; want %v", c, got, want)
		}
		if (&Admission{}).NeedsWatcher(c) {
			t.Errorf("unsupervised NeedsWatcher(%s) = true", c)
		}
	}
}

func TestSupervisedOwner(t *testing.T) {
	s := jurisdictionSpec()
	s.Parties[3].Supervised = true // holding, an owner
	_, err := Compile(s, testTargets)
	fes := fieldErrors(t, err)
	if len(fes) != 1 || fes[0].Path != "parties[3].supervised" || !strings.Contains(fes[0].Msg, "owner") {
		t.Fatalf("errors: %v", err)
	}
}

// Specs that do not supervise keep their digests (TestDigestGolden); each
// supervision setting changes it.
func TestDigestSupervision(t *testing.T) {
	seen := map[string]string{}
	for _, m := range []struct {
		name   string
		mutate func(s *Spec)
	}{
		{"none", func(*Spec) {}},
		{"party-1", func(s *Spec) { s.Parties[1].Supervised = true }},
		{"party-2", func(s *Spec) { s.Parties[2].Supervised = true }},
		{"prc", func(s *Spec) { s.Jurisdiction.SupervisePRC = true }},
		{"prc-and-party-1", func(s *Spec) { s.Jurisdiction.SupervisePRC = true; s.Parties[1].Supervised = true }},
	} {
		s := jurisdictionSpec()
		m.mutate(&s)
		got := mustCompile(t, s).Digest()
		if other, dup := seen[got]; dup {
			t.Fatalf("%s: digest %s same as %s", m.name, got, other)
		}
		seen[got] = m.name
	}
}
