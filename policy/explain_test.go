package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/brana-ot/brana/protocols/modbus"
)

func TestExplainModbus(t *testing.T) {
	p := mustCompile(t, testSpec())
	tests := []struct {
		name   string
		party  string
		target string
		req    *modbus.Request
		want   string
	}{
		{"ok/allow-write", "vendor", "plc1", opReq(t, "write:holding:100-101=20,30@1"), `
party vendor, target plc1: FC 16 (write) unit 1: write holding 100-101 =20,30
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: denies: class write not in read, diagnose
rule vendor-tune: allows
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: allow by rule vendor-tune
`},
		{"fail/value", "vendor", "plc1", opReq(t, "write:holding:100-101=20,51@1"), `
party vendor, target plc1: FC 16 (write) unit 1: write holding 100-101 =20,51
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: denies: class write not in read, diagnose
rule vendor-tune: denies: value 51 at holding 101 outside 10-50
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (value): value outside the bounds of rule "vendor-tune"
`},
		{"fail/address-and-function", "vendor", "plc1", opReq(t, "read:holding:95-104@1"), `
party vendor, target plc1: FC 3 (read) unit 1: read holding 95-104
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: denies: address 95-104 outside holding 0-99
rule vendor-tune: denies: class read not in write
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (address): address outside the ranges of rule "vendor-read"
`},
		{"fail/broadcast-masked-write", "scada", "plc1", opReq(t, "fc:22:holding:120=0,5@0"), `
party scada, target plc1: FC 22 (write) unit 0 (broadcast): write holding 120 (mask and 0x0000 or 0x0005)
rule scada-read: denies: class write not in read
rule scada-setpoints: denies: unit 0 (broadcast) not in 1, 2
rule vendor-read: skipped: other party
rule vendor-tune: skipped: other party
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (unit): unit id not allowed by rule "scada-setpoints"
`},
		{"fail/fc23-parts", "eng", "plc2", readWrite(t, 150, 2, 100, 1), `
party eng, target plc2: FC 23 (write) unit 1: read holding 150-151, write holding 100 =1
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: skipped: other party
rule vendor-tune: skipped: other party
rule any-diagnose: write part denies: class write not in diagnose; read part denies: class read not in diagnose
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: write part denies: class write not in read; read part denies: address 150-151 outside holding 0-99
rule eng-write: write part allows; read part denies: class read not in write
rule eng-coils-off: write part denies: address 100: no holding addresses allowed; read part denies: class read not in write
rule eng-everything: skipped: other target
decision: deny (address): address outside the ranges of rule "eng-read"
`},
		{"fail/masked-and-function", "vendor", "plc1", opReq(t, "fc:22:holding:100=0xFF00,0x0012@1"), `
party vendor, target plc1: FC 22 (write) unit 1: write holding 100 (mask and 0xFF00 or 0x0012)
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: denies: class write not in read, diagnose
rule vendor-tune: denies: mask write on holding 100 cannot be proved within 10-50
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (masked-write): mask write cannot be checked against the value bounds of rule "vendor-tune"
`},
		{"fail/function", "vendor", "plc1", opReq(t, "fc:43/14@1"), `
party vendor, target plc1: FC 43/14 (read) unit 1
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: denies: function 43 not in 3, 4, 8
rule vendor-tune: denies: class read not in write
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (function): function code not allowed by rule "vendor-read"
`},
		{"fail/no-rule", "vendor", "rtu", opReq(t, "read:holding:0"), `
party vendor, target rtu: FC 3 (read) unit 1: read holding 0
rule scada-read: skipped: other party
rule scada-setpoints: skipped: other party
rule vendor-read: skipped: other target
rule vendor-tune: skipped: other target
rule any-diagnose: skipped: other target
rule integ-broadcast: skipped: other party
rule integ-masked: skipped: other party
rule eng-read: skipped: other party
rule eng-write: skipped: other party
rule eng-coils-off: skipped: other party
rule eng-everything: skipped: other party
decision: deny (no-rule): no rule allows this party on this target
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var party *Party
			if tt.party != "" {
				party = p.Party(tt.party)
			}
			e := p.ExplainModbus(party, tt.target, tt.req)
			if got, want := e.String(), strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
			rule, err := p.DecideModbus(party, tt.target, tt.req)
			if e.Rule != rule || e.Err != err {
				t.Fatalf("Explanation decision = %v, %v; DecideModbus = %v, %v", ruleName(e.Rule), e.Err, ruleName(rule), err)
			}
		})
	}
}

func TestExplainModbusUnidentified(t *testing.T) {
	p := mustCompile(t, testSpec())
	e := p.ExplainModbus(nil, "plc1", opReq(t, "read:holding:0"))
	if e.Party != "" || len(e.Steps) != len(p.Rules()) {
		t.Fatalf("Explanation = %+v", e)
	}
	for _, s := range e.Steps {
		if s.Applies || s.Verdict != "skipped: unidentified party" {
			t.Fatalf("step %+v", s)
		}
	}
	lines := strings.Split(strings.TrimSpace(e.String()), "\n")
	if lines[0] != "party (unidentified), target plc1: FC 3 (read) unit 1: read holding 0" ||
		lines[len(lines)-1] != "decision: deny (unidentified): unidentified party" {
		t.Fatalf("String():\n%s", e)
	}
	e = p.ExplainModbus(p.Party("scada"), "nosuch", opReq(t, "read:holding:0"))
	if e.Steps[0].Verdict != "skipped: unknown target" || e.Steps[0].Applies {
		t.Fatalf("step %+v", e.Steps[0])
	}
	e.Err, e.Rule = errors.New("boom"), nil
	if !strings.HasSuffix(e.String(), "decision: deny: boom\n") {
		t.Fatalf("String():\n%s", e)
	}
}

// TestExplainAgreesWithDecide checks every request in a sweep: the rule that
// DecideModbus returns applies and allows in the explanation, and a denial's
// closest rule applies and denies.
func TestExplainAgreesWithDecide(t *testing.T) {
	p := mustCompile(t, testSpec())
	ops := []string{
		"read:holding:0-9", "read:holding:100", "read:coils:0", "read:input:7@1", "write:holding:100=20",
		"write:holding:100=5", "write:coils:3=1", "write:coils:3=0@0", "fc:22:holding:5=1,2", "diagnose", "control",
		"program", "fc:65", "fc:17", "fc:43/14", "fc:90/64", "write:holding:5=1@5", "read:holding:65535@5",
	}
	for _, party := range append(p.Parties(), nil) {
		for _, target := range append(testTargets, "nosuch") {
			for _, op := range ops {
				req := opReq(t, op)
				e := p.ExplainModbus(party, target, req)
				steps := map[string]Step{}
				for _, s := range e.Steps {
					steps[s.Rule] = s
				}
				var d *Denial
				switch {
				case e.Err == nil:
					if s := steps[e.Rule.Name]; !s.Applies || !strings.Contains(s.Verdict, "allows") {
						t.Errorf("%v %s %s: allowed by %s, whose step is %+v", party, target, op, e.Rule.Name, s)
					}
				case errors.As(e.Err, &d) && d.Rule != nil:
					if s := steps[d.Rule.Name]; !s.Applies || !strings.Contains(s.Verdict, "denies: ") {
						t.Errorf("%v %s %s: denied by %s, whose step is %+v", party, target, op, d.Rule.Name, s)
					}
				case d != nil:
					for _, s := range e.Steps {
						if s.Applies {
							t.Errorf("%v %s %s: %s, but rule %s applies", party, target, op, d.Reason, s.Rule)
						}
					}
				default:
					t.Errorf("%v %s %s: error %v", party, target, op, e.Err)
				}
			}
		}
	}
}
