package policy

import (
	"errors"
	"testing"

	"github.com/brana-ot/brana/protocols/modbus"
)

var testTargets = []string{"plc1", "plc2", "rtu"}

// testSpec is the policy most tests decide against. Rule order matters: the
// first allowing rule wins and ties in denial go to the earlier rule.
func testSpec() Spec {
	return Spec{
		Parties: []PartySpec{
			{ID: "scada", Name: "Control room SCADA", Organisation: "ČEPS, a.s.", Kind: "scada", Networks: []string{"10.1.0.0/16", "10.1.7.0/24"}},
			{ID: "vendor", Name: "Jan Novák", Organisation: "Vendor s.r.o.", Kind: "vendor", Networks: []string{"192.0.2.0/24", "2001:db8::/32"}},
			{ID: "integ", Name: "Integrator laptop", Organisation: "Integrator a.s.", Kind: "integrator", Networks: []string{"198.51.100.7"}},
			{ID: "eng", Name: "Duty engineer", Organisation: "ČEPS, a.s.", Kind: "operator"},
		},
		Rules: []RuleSpec{
			{Name: "scada-read", Parties: []string{"scada"}, Targets: []string{"*"}, Classes: []string{"read"}},
			{
				Name: "scada-setpoints", Parties: []string{"scada"}, Targets: []string{"plc1"}, Classes: []string{"write"},
				Units:  []int{1, 2},
				Ranges: map[string][]string{"holding": {"100-199", "300"}, "coils": {"0-15"}},
				Values: &Bounds{Min: 0, Max: 1000},
			},
			{
				Name: "vendor-read", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"read", "diagnose"},
				Functions: []int{3, 4, 8}, Units: []int{1},
				Ranges: map[string][]string{"holding": {"0-99"}, "input": {"0-65535"}},
			},
			{
				Name: "vendor-tune", Description: "Vendor may tune PID parameters", Parties: []string{"vendor"}, Targets: []string{"plc1"},
				Classes: []string{"write"}, Functions: []int{6, 16, 22, 23}, Units: []int{1},
				Ranges: map[string][]string{"holding": {"100-109"}},
				Values: &Bounds{Min: 10, Max: 50}, Reset: true,
			},
			{Name: "any-diagnose", Parties: []string{"*"}, Targets: []string{"plc2"}, Classes: []string{"diagnose"}},
			{
				Name: "integ-broadcast", Parties: []string{"integ"}, Targets: []string{"rtu"}, Classes: []string{"read", "write"},
				Units:  []int{0, 5},
				Ranges: map[string][]string{"holding": {"0-9", "65530-65535"}},
			},
			{Name: "integ-masked", Parties: []string{"integ"}, Targets: []string{"plc2"}, Classes: []string{"write"}, Ranges: map[string][]string{"holding": {"0-9"}}},
			{Name: "eng-read", Parties: []string{"eng"}, Targets: []string{"plc2"}, Classes: []string{"read"}, Ranges: map[string][]string{"holding": {"0-99"}}},
			{Name: "eng-write", Parties: []string{"eng"}, Targets: []string{"plc2"}, Classes: []string{"write"}, Ranges: map[string][]string{"holding": {"100-199"}}},
			{
				Name: "eng-coils-off", Parties: []string{"eng"}, Targets: []string{"plc1", "plc2"}, Classes: []string{"write"},
				Ranges: map[string][]string{"coils": {"0-99"}}, Values: &Bounds{Min: 0, Max: 0},
			},
			{Name: "eng-everything", Parties: []string{"eng"}, Targets: []string{"plc1"}, Classes: []string{"read", "write", "diagnose", "control", "program", "unknown"}},
		},
	}
}

func mustCompile(t testing.TB, spec Spec) *Policy {
	t.Helper()
	p, err := Compile(spec, testTargets)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// parse decodes a request PDU the way the relay does.
func parse(t testing.TB, unit byte, pdu ...byte) *modbus.Request {
	t.Helper()
	req := new(modbus.Request)
	if err := modbus.ParseRequest(unit, pdu, req); err != nil {
		t.Fatalf("ParseRequest(% x): %v", pdu, err)
	}
	return req
}

// opReq builds a request from an explain op string.
func opReq(t testing.TB, op string) *modbus.Request {
	t.Helper()
	unit, pdu, err := ParseModbusOp(op)
	if err != nil {
		t.Fatalf("ParseModbusOp(%q): %v", op, err)
	}
	return parse(t, unit, pdu...)
}

// readWrite builds an FC 23 request on unit 1: read rq registers from rs,
// write vals from ws.
func readWrite(t testing.TB, rs, rq, ws uint16, vals ...uint16) *modbus.Request {
	t.Helper()
	wq := uint16(len(vals))
	pdu := []byte{23, byte(rs >> 8), byte(rs), byte(rq >> 8), byte(rq), byte(ws >> 8), byte(ws), byte(wq >> 8), byte(wq), byte(2 * wq)}
	for _, v := range vals {
		pdu = append(pdu, byte(v>>8), byte(v))
	}
	return parse(t, 1, pdu...)
}

func TestDecideModbus(t *testing.T) {
	p := mustCompile(t, testSpec())
	wrapped := &modbus.Request{Unit: 5, Func: 3, Class: 1, Read: modbus.Range{Table: modbus.HoldingRegisters, Start: 65535, Count: 2}}
	tests := []struct {
		name    string
		party   string // "" = unidentified
		target  string
		op      string          // explain op, or
		req     *modbus.Request // a prebuilt request
		rule    string          // allowing rule, or
		reason  Reason          // the denial reason
		closest string          // and the denial's rule ("" = none)
	}{
		{name: "ok/read-holding-in-range", party: "vendor", target: "plc1", op: "read:holding:0-9@1", rule: "vendor-read"},
		{name: "ok/read-holding-at-0-edge", party: "vendor", target: "plc1", op: "read:holding:0@1", rule: "vendor-read"},
		{name: "ok/read-holding-at-range-end", party: "vendor", target: "plc1", op: "read:holding:90-99@1", rule: "vendor-read"},
		{name: "ok/read-input-at-65535-edge", party: "vendor", target: "plc1", op: "read:input:65411-65535@1", rule: "vendor-read"},
		{name: "ok/diagnose-by-fc8", party: "vendor", target: "plc1", op: "diagnose", rule: "vendor-read"},
		{name: "ok/wildcard-target", party: "scada", target: "rtu", op: "read:coils:0-7@9", rule: "scada-read"},
		{name: "ok/wildcard-party", party: "vendor", target: "plc2", op: "fc:8/0", rule: "any-diagnose"},
		{name: "ok/wildcard-party-other", party: "integ", target: "plc2", op: "diagnose", rule: "any-diagnose"},
		{name: "ok/rangeless-read", party: "scada", target: "plc1", op: "fc:17", rule: "scada-read"},
		{name: "ok/write-in-second-range", party: "scada", target: "plc1", op: "write:holding:300=7@2", rule: "scada-setpoints"},
		{name: "ok/value-at-min", party: "vendor", target: "plc1", op: "write:holding:100=10@1", rule: "vendor-tune"},
		{name: "ok/value-at-max", party: "vendor", target: "plc1", op: "write:holding:109=50@1", rule: "vendor-tune"},
		{name: "ok/values-at-both-bounds", party: "vendor", target: "plc1", op: "write:holding:100-102=10,30,50@1", rule: "vendor-tune"},
		{name: "ok/coil-write", party: "scada", target: "plc1", op: "write:coils:3=1@1", rule: "scada-setpoints"},
		{name: "ok/coils-write-multiple", party: "scada", target: "plc1", op: "write:coils:8-15=1,0,1,1,0,0,1,1@1", rule: "scada-setpoints"},
		{name: "ok/coil-off-within-bounds", party: "eng", target: "plc2", op: "write:coils:5=0", rule: "eng-coils-off"},
		{name: "ok/first-allowing-rule-wins", party: "eng", target: "plc1", op: "write:coils:5=0", rule: "eng-coils-off"},
		{name: "ok/later-rule-allows-after-earlier-denies", party: "eng", target: "plc1", op: "write:coils:5=1", rule: "eng-everything"},
		{name: "ok/unknown-class-named", party: "eng", target: "plc1", op: "fc:65", rule: "eng-everything"},
		{name: "ok/program-named", party: "eng", target: "plc1", op: "program", rule: "eng-everything"},
		{name: "ok/broadcast-unit-0-listed", party: "integ", target: "rtu", op: "write:holding:5=1@0", rule: "integ-broadcast"},
		{name: "ok/broadcast-unit-0-rule-without-units", party: "eng", target: "plc2", op: "write:holding:100=1@0", rule: "eng-write"},
		{name: "ok/range-at-65535-edge", party: "integ", target: "rtu", op: "read:holding:65530-65535@5", rule: "integ-broadcast"},
		{name: "ok/masked-write-without-bounds", party: "integ", target: "plc2", op: "fc:22:holding:5=0x00F2,0x0025", rule: "integ-masked"},
		{name: "ok/fc23-read-and-write-by-two-rules", party: "eng", target: "plc2", req: readWrite(t, 0, 10, 100, 1, 2), rule: "eng-write"},
		{name: "ok/party-from-other-policy-matched-by-id", party: "other:vendor", target: "plc1", op: "read:holding:0@1", rule: "vendor-read"},

		{name: "fail/unidentified", target: "plc1", op: "read:holding:0@1", reason: Unidentified},
		{name: "fail/unknown-party-object", party: "ghost", target: "plc1", op: "read:holding:0@1", reason: Unidentified},
		{name: "fail/no-rule", party: "vendor", target: "rtu", op: "read:holding:0@1", reason: NoRule},
		{name: "fail/no-rule-unknown-target", party: "scada", target: "nosuch", op: "read:holding:0@1", reason: NoRule},
		{name: "fail/class", party: "vendor", target: "plc1", op: "control", reason: ClassDenied, closest: "vendor-read"},
		{name: "fail/class-unknown", party: "eng", target: "plc2", op: "fc:65", reason: ClassDenied, closest: "any-diagnose"},
		{name: "fail/function", party: "vendor", target: "plc1", op: "read:coils:0@1", reason: FunctionDenied, closest: "vendor-read"},
		{name: "fail/unit", party: "vendor", target: "plc1", op: "read:holding:0@2", reason: UnitDenied, closest: "vendor-read"},
		{name: "fail/broadcast-unit-0-not-listed", party: "scada", target: "plc1", op: "write:holding:100=5@0", reason: UnitDenied, closest: "scada-setpoints"},
		{name: "fail/unit-not-listed-beside-0", party: "integ", target: "rtu", op: "write:holding:5=1@1", reason: UnitDenied, closest: "integ-broadcast"},
		{name: "fail/address-straddles-range-end", party: "vendor", target: "plc1", op: "read:holding:95-104@1", reason: AddressDenied, closest: "vendor-read"},
		{name: "fail/address-straddles-two-ranges", party: "integ", target: "rtu", op: "read:holding:9-10@5", reason: AddressDenied, closest: "integ-broadcast"},
		{name: "fail/address-table-not-in-ranges", party: "integ", target: "rtu", op: "read:coils:0@5", reason: AddressDenied, closest: "integ-broadcast"},
		{name: "fail/address-range-would-wrap", party: "integ", target: "rtu", req: wrapped, reason: AddressDenied, closest: "integ-broadcast"},
		{name: "fail/coil-address", party: "scada", target: "plc1", op: "write:coils:16=1@1", reason: AddressDenied, closest: "scada-setpoints"},
		{name: "fail/value-below-min", party: "vendor", target: "plc1", op: "write:holding:100=9@1", reason: ValueDenied, closest: "vendor-tune"},
		{name: "fail/value-above-max", party: "vendor", target: "plc1", op: "write:holding:100=51@1", reason: ValueDenied, closest: "vendor-tune"},
		{name: "fail/value-one-of-many", party: "vendor", target: "plc1", op: "write:holding:100-102=20,51,20@1", reason: ValueDenied, closest: "vendor-tune"},
		{name: "fail/coil-value-above-bounds", party: "eng", target: "plc2", op: "write:coils:5=1", reason: ValueDenied, closest: "eng-coils-off"},
		{name: "fail/masked-write-with-bounds", party: "vendor", target: "plc1", op: "fc:22:holding:100=0xFF00,0x0012@1", reason: MaskedWrite, closest: "vendor-tune"},
		{name: "fail/masked-write-outside-range", party: "integ", target: "plc2", op: "fc:22:holding:10=0,1", reason: AddressDenied, closest: "integ-masked"},
		{name: "fail/most-specific-is-later-rule", party: "vendor", target: "plc1", op: "write:holding:100=60@1", reason: ValueDenied, closest: "vendor-tune"},
		{name: "fail/most-specific-is-earlier-rule", party: "vendor", target: "plc1", op: "read:holding:150@1", reason: AddressDenied, closest: "vendor-read"},
		{name: "fail/most-specific-across-three-rules", party: "eng", target: "plc2", op: "write:coils:7=1", reason: ValueDenied, closest: "eng-coils-off"},
		{name: "fail/fc23-read-part-denied-write-allowed", party: "eng", target: "plc2", req: readWrite(t, 150, 2, 100, 1), reason: AddressDenied, closest: "eng-read"},
		{name: "fail/fc23-write-part-denied-read-allowed", party: "eng", target: "plc2", req: readWrite(t, 0, 2, 50, 1), reason: AddressDenied, closest: "eng-write"},
		{name: "fail/fc23-read-part-function", party: "vendor", target: "plc1", req: readWrite(t, 0, 2, 100, 20), reason: FunctionDenied, closest: "vendor-read"},
		{name: "fail/fc23-write-value", party: "vendor", target: "plc1", req: readWrite(t, 0, 2, 100, 99), reason: ValueDenied, closest: "vendor-tune"},
	}
	other := mustCompile(t, testSpec())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var party *Party
			switch tt.party {
			case "":
			case "ghost":
				party = &Party{ID: "ghost"}
			case "other:vendor":
				party = other.Party("vendor")
			default:
				if party = p.Party(tt.party); party == nil {
					t.Fatalf("no party %q", tt.party)
				}
			}
			req := tt.req
			if req == nil {
				req = opReq(t, tt.op)
			}
			rule, err := p.DecideModbus(party, tt.target, req)
			if tt.rule != "" {
				if err != nil || rule == nil || rule.Name != tt.rule {
					t.Fatalf("DecideModbus = %v, %v; want allow by %s", ruleName(rule), err, tt.rule)
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) || rule != nil {
				t.Fatalf("DecideModbus = %v, %v; want a *Denial", ruleName(rule), err)
			}
			if d.Reason != tt.reason || ruleName(d.Rule) != tt.closest {
				t.Fatalf("denial = %s by %s (%v); want %s by %s", d.Reason, ruleName(d.Rule), err, tt.reason, tt.closest)
			}
		})
	}
}

func ruleName(r *Rule) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func TestDenialError(t *testing.T) {
	p := mustCompile(t, testSpec())
	_, err := p.DecideModbus(p.Party("vendor"), "plc1", opReq(t, "write:holding:100=51@1"))
	var d *Denial
	if !errors.As(err, &d) {
		t.Fatalf("err = %v; want *Denial", err)
	}
	if got, want := err.Error(), `policy: value outside the bounds of rule "vendor-tune"`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if !d.Rule.Reset {
		t.Error("vendor-tune denial: Rule.Reset is false; want true")
	}
	_, err = p.DecideModbus(nil, "plc1", opReq(t, "read:holding:0"))
	if got, want := err.Error(), "policy: unidentified party"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	// A Denial built by hand still prints.
	if got, want := (&Denial{Reason: NoRule, Msg: "x"}).Error(), "policy: x"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		Unidentified: "unidentified", NoRule: "no-rule", ClassDenied: "class", FunctionDenied: "function",
		UnitDenied: "unit", AddressDenied: "address", ValueDenied: "value", MaskedWrite: "masked-write",
		Reason(200): "reason(200)",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("Reason(%d).String() = %q; want %q", r, r.String(), s)
		}
	}
}

func TestEmptyPolicyDenies(t *testing.T) {
	p, err := Compile(Spec{Parties: []PartySpec{{ID: "scada", Networks: []string{"10.0.0.0/8"}}}}, testTargets)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.DecideModbus(p.Party("scada"), "plc1", opReq(t, "read:holding:0"))
	var d *Denial
	if !errors.As(err, &d) || d.Reason != NoRule {
		t.Fatalf("err = %v; want no-rule denial", err)
	}
}

func TestAccessors(t *testing.T) {
	p := mustCompile(t, testSpec())
	if n := len(p.Parties()); n != 4 {
		t.Errorf("Parties() has %d; want 4", n)
	}
	rules := p.Rules()
	if len(rules) != len(testSpec().Rules) || rules[3].Name != "vendor-tune" || rules[3].Description == "" || !rules[3].Reset {
		t.Errorf("Rules()[3] = %+v", rules[3])
	}
	rules[0] = nil // a copy: the policy is untouched
	if p.Rules()[0] == nil {
		t.Error("Rules() returned the policy's own slice")
	}
	s := p.Rules()[1].Spec()
	s.Ranges["holding"][0] = "0-65535"
	if p.Rules()[1].Spec().Ranges["holding"][0] != "100-199" {
		t.Error("Rule.Spec() shares its ranges with the policy")
	}
	if v := p.Party("vendor"); v == nil || v.Organisation != "Vendor s.r.o." || len(v.Networks) != 2 {
		t.Errorf("Party(vendor) = %+v", v)
	}
	if p.Party("nobody") != nil {
		t.Error("Party(nobody) != nil")
	}
}
