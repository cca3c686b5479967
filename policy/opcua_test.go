package policy

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/brana-ot/brana/protocols/opcua"
	"github.com/gopcua/opcua/ua"
)

const feederNS = "urn:example:feeder"

// opcuaSpec is testSpec with OPC UA rules appended.
func opcuaSpec() Spec {
	s := testSpec()
	s.Rules = append(s.Rules,
		RuleSpec{Name: "vendor-ua-measure", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"read"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Nodes: []string{"s=Feeder.Measurements.*", "i=1234"}}},
		RuleSpec{Name: "vendor-ua-setpoint", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"write", "control"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Nodes: []string{"s=Feeder.Protection.OvercurrentPickup"}}},
		RuleSpec{Name: "vendor-ua-curve", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"write"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Nodes: []string{"s=Feeder.Curve"}, AllowIndexRange: true}},
		RuleSpec{Name: "vendor-ua-reset", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"control"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Methods: []OPCUAMethodSpec{{Object: "s=Feeder.Breaker", Method: "s=Feeder.Breaker.Reset"}}}},
		RuleSpec{Name: "integ-ua", Parties: []string{"integ"}, Targets: []string{"plc1"}, Classes: []string{"read", "write", "control"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Attributes: []string{"value", "DisplayName"}}},
	)
	return s
}

var (
	// The same feeder namespace at index 2 on one server and 1 on another.
	nsA    = opcua.NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:example:other", feederNS})
	nsB    = opcua.NewNamespaceMap([]string{"http://opcfoundation.org/UA/", feederNS})
	nsNone = opcua.NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:example:other"})
)

func sid(ns uint16, s string) *ua.NodeID { return ua.NewStringNodeID(ns, s) }

func readElem(n *ua.NodeID) *opcua.Element {
	return &opcua.Element{Index: 0, Class: opclass.Read, Service: "Read", NodeID: n, Attribute: ua.AttributeIDValue}
}

func writeElem(n *ua.NodeID, attr ua.AttributeID, rng string) *opcua.Element {
	cl := opclass.Control
	if attr == ua.AttributeIDValue {
		cl = opclass.Write
	}
	return &opcua.Element{Index: 0, Class: cl, Service: "Write", NodeID: n, Attribute: attr, IndexRange: rng}
}

func callElem(obj, meth *ua.NodeID) *opcua.Element {
	return &opcua.Element{Index: 0, Class: opclass.Control, Service: "Call", ObjectID: obj, MethodID: meth}
}

func TestDecideOPCUA(t *testing.T) {
	p := mustCompile(t, opcuaSpec())
	vendor, integ := p.Party("vendor"), p.Party("integ")
	tests := []struct {
		name   string
		party  *Party
		target string
		ns     *opcua.NamespaceMap
		e      *opcua.Element
		rule   string // allowing rule (ok) or the rule the denial names (fail; "" for none)
		reason Reason
		zero   bool // the decision must not allocate
	}{
		{"ok/read-prefix", vendor, "plc1", nsA, readElem(sid(2, "Feeder.Measurements.Voltage")), "vendor-ua-measure", 0, false},
		{"ok/read-numeric-fourbyte", vendor, "plc1", nsA, readElem(ua.NewFourByteNodeID(2, 1234)), "vendor-ua-measure", 0, true},
		{"ok/read-numeric", vendor, "plc1", nsA, readElem(ua.NewNumericNodeID(2, 1234)), "vendor-ua-measure", 0, true},
		{"ok/read-other-server-index", vendor, "plc1", nsB, readElem(sid(1, "Feeder.Measurements.Voltage")), "vendor-ua-measure", 0, false},
		{"ok/read-any-attribute", vendor, "plc1", nsA, &opcua.Element{Class: opclass.Read, Service: "Read", NodeID: ua.NewNumericNodeID(2, 1234), Attribute: ua.AttributeIDDescription}, "vendor-ua-measure", 0, true},
		{"ok/monitor-prefix", vendor, "plc1", nsA, &opcua.Element{Class: opclass.Read, Service: "CreateMonitoredItems", NodeID: sid(2, "Feeder.Measurements.Current"), Attribute: ua.AttributeIDValue}, "vendor-ua-measure", 0, false},
		{"ok/write-value", vendor, "plc1", nsA, writeElem(sid(2, "Feeder.Protection.OvercurrentPickup"), ua.AttributeIDValue, ""), "vendor-ua-setpoint", 0, false},
		{"ok/write-index-range-allowed", vendor, "plc1", nsA, writeElem(sid(2, "Feeder.Curve"), ua.AttributeIDValue, "2:3"), "vendor-ua-curve", 0, false},
		{"ok/write-displayname-named", integ, "plc1", nsA, writeElem(sid(2, "Feeder.Label"), ua.AttributeIDDisplayName, ""), "integ-ua", 0, false},
		{"ok/call-method", vendor, "plc1", nsA, callElem(sid(2, "Feeder.Breaker"), sid(2, "Feeder.Breaker.Reset")), "vendor-ua-reset", 0, false},
		{"ok/call-method-other-server", vendor, "plc1", nsB, callElem(sid(1, "Feeder.Breaker"), sid(1, "Feeder.Breaker.Reset")), "vendor-ua-reset", 0, false},
		{"ok/request-level", vendor, "plc1", nsA, &opcua.Element{Index: -1, Class: opclass.Read, Service: "CreateSubscription"}, "vendor-ua-measure", 0, true},
		{"ok/request-level-unknown-namespace", vendor, "plc1", nsNone, &opcua.Element{Index: -1, Class: opclass.Read, Service: "Read"}, "vendor-ua-measure", 0, true},
		{"ok/request-level-control", vendor, "plc1", nsA, &opcua.Element{Index: -1, Class: opclass.Control, Service: "Call"}, "vendor-ua-setpoint", 0, true},
		{"ok/publish-ack", vendor, "plc1", nsA, &opcua.Element{Index: 0, Class: opclass.Read, Service: "Publish", Detail: "acknowledgement"}, "vendor-ua-measure", 0, true},

		{"fail/read-outside-prefix", vendor, "plc1", nsA, readElem(sid(2, "Feeder.Protection.OvercurrentPickup")), "vendor-ua-measure", NodeDenied, false},
		{"fail/read-prefix-needs-string", vendor, "plc1", nsA, readElem(ua.NewByteStringNodeID(2, []byte("Feeder.Measurements.Voltage"))), "vendor-ua-measure", NodeDenied, false},
		{"fail/read-other-numeric", vendor, "plc1", nsA, readElem(ua.NewNumericNodeID(2, 1235)), "vendor-ua-measure", NodeDenied, true},
		{"fail/read-wrong-namespace-index", vendor, "plc1", nsB, readElem(sid(2, "Feeder.Measurements.Voltage")), "vendor-ua-measure", NodeDenied, true},
		{"fail/read-unknown-namespace", vendor, "plc1", nsNone, readElem(sid(2, "Feeder.Measurements.Voltage")), "vendor-ua-measure", NodeDenied, true},
		{"fail/read-nil-namespace-map", vendor, "plc1", nil, readElem(sid(2, "Feeder.Measurements.Voltage")), "vendor-ua-measure", NodeDenied, true},
		{"fail/read-no-node", vendor, "plc1", nsA, &opcua.Element{Index: 0, Class: opclass.Read, Service: "Read"}, "vendor-ua-measure", NodeDenied, true},
		{"fail/write-displayname", vendor, "plc1", nsA, writeElem(sid(2, "Feeder.Protection.OvercurrentPickup"), ua.AttributeIDDisplayName, ""), "vendor-ua-setpoint", AttributeDenied, false},
		{"fail/write-index-range", vendor, "plc1", nsA, writeElem(sid(2, "Feeder.Protection.OvercurrentPickup"), ua.AttributeIDValue, "0:1"), "vendor-ua-setpoint", AttributeDenied, false},
		{"fail/write-read-only-node", vendor, "plc1", nsA, writeElem(sid(2, "Feeder.Measurements.Voltage"), ua.AttributeIDValue, ""), "vendor-ua-setpoint", NodeDenied, false},
		{"fail/read-attribute-not-named", integ, "plc1", nsA, &opcua.Element{Class: opclass.Read, Service: "Read", NodeID: ua.NewNumericNodeID(2, 7), Attribute: ua.AttributeIDDescription}, "integ-ua", AttributeDenied, true},
		{"fail/call-other-method", vendor, "plc1", nsA, callElem(sid(2, "Feeder.Breaker"), sid(2, "Feeder.Breaker.Close")), "vendor-ua-reset", MethodDenied, false},
		{"fail/call-other-object", vendor, "plc1", nsA, callElem(sid(2, "Feeder.Recloser"), sid(2, "Feeder.Breaker.Reset")), "vendor-ua-reset", MethodDenied, false},
		{"fail/call-wrong-namespace", vendor, "plc1", nsA, callElem(sid(1, "Feeder.Breaker"), sid(1, "Feeder.Breaker.Reset")), "vendor-ua-reset", MethodDenied, true},
		{"fail/call-without-methods", integ, "plc1", nsA, callElem(sid(2, "Feeder.Breaker"), sid(2, "Feeder.Breaker.Reset")), "integ-ua", MethodDenied, false},
		{"fail/request-level-class", vendor, "plc1", nsA, &opcua.Element{Index: -1, Class: opclass.Program, Service: "AddNodes"}, "vendor-ua-measure", ClassDenied, true},
		{"fail/unidentified", nil, "plc1", nsA, readElem(ua.NewNumericNodeID(2, 1234)), "", Unidentified, true},
		{"fail/no-rule-target", vendor, "rtu", nsA, readElem(ua.NewNumericNodeID(2, 1234)), "", NoRule, true},
		{"fail/unknown-target", vendor, "nosuch", nsA, readElem(ua.NewNumericNodeID(2, 1234)), "", NoRule, true},
		// eng has a Modbus rule for plc1 allowing every class, and no OPC UA rule.
		{"fail/modbus-rule-not-opcua", p.Party("eng"), "plc1", nsA, readElem(ua.NewNumericNodeID(2, 1234)), "", NoRule, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := p.DecideOPCUA(tt.party, tt.target, tt.ns, tt.e)
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil || rule == nil || rule.Name != tt.rule {
					t.Fatalf("want allow by %q, got %v, %v", tt.rule, ruleName(rule), err)
				}
			} else {
				var d *Denial
				if rule != nil || !errors.As(err, &d) || d.Reason != tt.reason {
					t.Fatalf("want %s denial, got %v, %v", tt.reason, ruleName(rule), err)
				}
				if got := ruleName(d.Rule); d.Rule != nil && got != tt.rule || d.Rule == nil && tt.rule != "" {
					t.Fatalf("denial names rule %v; want %q (%v)", got, tt.rule, err)
				}
			}
			allocs := testing.AllocsPerRun(200, func() {
				_, _ = p.DecideOPCUA(tt.party, tt.target, tt.ns, tt.e)
			})
			// Numeric ids cost nothing; a string, GUID or opaque NodeId costs
			// one ua.NodeID.StringID conversion per id (a Call has two).
			if tt.zero && allocs != 0 || allocs > 2 {
				t.Fatalf("DecideOPCUA allocates %.1f times (zero: %v)", allocs, tt.zero)
			}
		})
	}
}

func TestDecideOPCUAIndexRangeMessage(t *testing.T) {
	p := mustCompile(t, opcuaSpec())
	_, err := p.DecideOPCUA(p.Party("vendor"), "plc1", nsA, writeElem(sid(2, "Feeder.Protection.OvercurrentPickup"), ua.AttributeIDValue, "0:1"))
	if err == nil || !strings.Contains(err.Error(), `index range not allowed by rule "vendor-ua-setpoint"`) {
		t.Fatalf("err = %v", err)
	}
	_, err = p.DecideOPCUA(p.Party("vendor"), "plc1", nsA, writeElem(sid(2, "Feeder.Protection.OvercurrentPickup"), ua.AttributeIDDisplayName, ""))
	if err == nil || !strings.Contains(err.Error(), `attribute not allowed by rule "vendor-ua-setpoint"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestDecideOPCUAClassified decides the elements the classifier makes of a
// real request: per element, in order.
func TestDecideOPCUAClassified(t *testing.T) {
	p := mustCompile(t, opcuaSpec())
	c := &opcua.Classifier{Namespaces: nsB}
	req := &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		{NodeID: sid(1, "Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDValue, Value: &ua.DataValue{}},
		{NodeID: sid(1, "Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDDisplayName, Value: &ua.DataValue{}},
		{NodeID: sid(1, "Feeder.Curve"), AttributeID: ua.AttributeIDValue, IndexRange: "1", Value: &ua.DataValue{}},
		{NodeID: sid(1, "Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDValue, IndexRange: "1", Value: &ua.DataValue{}},
	}}
	_, elems, err := c.Classify(req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range elems {
		_, err := p.DecideOPCUA(p.Party("vendor"), "plc1", nsB, &elems[i])
		var d *Denial
		if errors.As(err, &d) {
			got = append(got, d.Reason.String())
		} else {
			got = append(got, "allow")
		}
	}
	if want := []string{"allow", "attribute", "allow", "attribute"}; !slices.Equal(got, want) {
		t.Fatalf("decisions %v; want %v", got, want)
	}

	_, elems, _ = c.Classify(&ua.CreateSubscriptionRequest{})
	if len(elems) != 1 || elems[0].Index != -1 {
		t.Fatalf("elems = %+v; want one request-level element", elems)
	}
	if r, err := p.DecideOPCUA(p.Party("vendor"), "plc1", nsB, &elems[0]); err != nil {
		t.Fatalf("CreateSubscription: %v, %v", ruleName(r), err)
	}
}

// TestOPCUARulesNotModbus: a rule with an opcua section never allows a
// Modbus request, and explanations skip it.
func TestOPCUARulesNotModbus(t *testing.T) {
	p := mustCompile(t, opcuaSpec())
	// integ has only an OPC UA rule on plc1 (any node, read/write/control).
	_, err := p.DecideModbus(p.Party("integ"), "plc1", opReq(t, "read:holding:0@1"))
	var d *Denial
	if !errors.As(err, &d) || d.Reason != NoRule {
		t.Fatalf("err = %v; want no-rule denial", err)
	}
	// The Modbus rules keep working next to OPC UA rules.
	if r, err := p.DecideModbus(p.Party("vendor"), "plc1", opReq(t, "read:holding:0-9@1")); err != nil || r.Name != "vendor-read" {
		t.Fatalf("vendor read: %v, %v", ruleName(r), err)
	}
	e := p.ExplainModbus(p.Party("integ"), "plc1", opReq(t, "read:holding:0@1"))
	for _, st := range e.Steps {
		if st.Rule == "integ-ua" && st.Verdict != "skipped: OPC UA rule" {
			t.Fatalf("explain step %+v", st)
		}
	}
}

func TestCompileOPCUAErrors(t *testing.T) {
	s := testSpec()
	base := len(s.Rules)
	s.Rules = append(s.Rules,
		RuleSpec{Name: "ua-bad", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"read"},
			Functions: []int{3},
			OPCUA: &OPCUARuleSpec{
				Namespace:  " ",
				Nodes:      []string{"s=Ok", "ns=2;s=X", "i=abc", "i=5*", "s=*", ""},
				Attributes: []string{"value", "colour"},
				Methods:    []OPCUAMethodSpec{{Object: "s=Obj", Method: "s=M*"}, {Object: "x=1", Method: "i=7"}},
			}},
		RuleSpec{Name: "ua-good", Parties: []string{"vendor"}, Targets: []string{"plc1"}, Classes: []string{"program"},
			OPCUA: &OPCUARuleSpec{Namespace: feederNS, Nodes: []string{"i=1", "g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "b=Zm9v"},
				Attributes: []string{"Value", "display_name", "AccessLevelEx"},
				Methods:    []OPCUAMethodSpec{{Object: "i=11575", Method: "i=11588"}}}},
	)
	_, err := Compile(s, testTargets)
	if err == nil {
		t.Fatal("Compile succeeded")
	}
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		paths = append(paths, fe.Path)
	}
	r := "rules[" + strconv.Itoa(base) + "]"
	want := []string{
		r + ".functions",
		r + ".opcua.namespace",
		r + ".opcua.nodes[1]", r + ".opcua.nodes[2]", r + ".opcua.nodes[3]", r + ".opcua.nodes[4]", r + ".opcua.nodes[5]",
		r + ".opcua.attributes[1]",
		r + ".opcua.methods",
		r + ".opcua.methods[0].method",
		r + ".opcua.methods[1].object",
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths:\n%s\nwant:\n%s\n(%v)", strings.Join(paths, "\n"), strings.Join(want, "\n"), err)
	}
}

func TestOPCUASpecAndDigest(t *testing.T) {
	p := mustCompile(t, opcuaSpec())
	var r *Rule
	for _, x := range p.Rules() {
		if x.Name == "vendor-ua-measure" {
			r = x
		}
	}
	s := r.Spec()
	s.OPCUA.Nodes[0] = "changed"
	if r.Spec().OPCUA.Nodes[0] != "s=Feeder.Measurements.*" {
		t.Fatal("Rule.Spec shares the opcua section")
	}
	other := opcuaSpec()
	other.Rules[len(other.Rules)-1].OPCUA.AllowIndexRange = true
	if mustCompile(t, other).Digest() == p.Digest() {
		t.Fatal("digest ignores the opcua section")
	}
	if mustCompile(t, testSpec()).Digest() == p.Digest() {
		t.Fatal("digest ignores OPC UA rules")
	}
}

// fakePaths covers, for each path key, the listed NodeId strings.
type fakePaths map[string][]string

func (f fakePaths) Under(p *OPCUAPath, n *ua.NodeID) bool {
	return slices.Contains(f[p.Key], n.String())
}

func TestDecideOPCUABrowsePaths(t *testing.T) {
	s := testSpec()
	s.Rules = append(s.Rules, RuleSpec{Name: "vendor-ua-protection", Parties: []string{"vendor"}, Targets: []string{"plc1"},
		Classes: []string{"write"}, OPCUA: &OPCUARuleSpec{Namespace: feederNS, Paths: []string{"Feeder/Protection/*", "Feeder/Setpoint"}}})
	p, err := Compile(s, testTargets)
	if err != nil {
		t.Fatal(err)
	}
	paths := p.OPCUAPaths(p.Party("vendor"), "plc1")
	if len(paths) != 2 || paths[0].Key != feederNS+"|Feeder/Protection/*" || !paths[0].Subtree ||
		strings.Join(paths[1].Names, ".") != "Feeder.Setpoint" || paths[1].Subtree {
		t.Fatalf("OPCUAPaths = %+v", paths)
	}
	resolved := fakePaths{
		feederNS + "|Feeder/Protection/*": {"ns=2;s=Feeder.Protection", "ns=2;s=Feeder.Protection.TimeDelay"},
		feederNS + "|Feeder/Setpoint":     {"ns=2;i=77"},
	}
	vendor := p.Party("vendor")
	for _, tt := range []struct {
		name  string
		view  *OPCUAView
		node  *ua.NodeID
		allow bool
	}{
		{"ok/below-a-subtree-path", &OPCUAView{NS: nsA, Paths: resolved}, sid(2, "Feeder.Protection.TimeDelay"), true},
		{"ok/exact-path", &OPCUAView{NS: nsA, Paths: resolved}, ua.NewNumericNodeID(2, 77), true},
		{"fail/outside-the-paths", &OPCUAView{NS: nsA, Paths: resolved}, sid(2, "Feeder.Simulation.LoadCurrent"), false},
		{"fail/paths-not-resolved", &OPCUAView{NS: nsA}, sid(2, "Feeder.Protection.TimeDelay"), false},
		{"fail/covered-node-in-another-namespace", &OPCUAView{NS: nsB, Paths: resolved}, sid(2, "Feeder.Protection.TimeDelay"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.DecideOPCUAIn(vendor, "plc1", tt.view, writeElem(tt.node, ua.AttributeIDValue, ""))
			if (err == nil) != tt.allow {
				t.Fatalf("decision: %v, want allow=%v", err, tt.allow)
			}
		})
	}
	for _, bad := range []string{"", "/Feeder", "Feeder/", "Feeder//Protection", "Feeder/*/Protection", "*"} {
		s := testSpec()
		s.Rules = append(s.Rules, RuleSpec{Name: "bad", Parties: []string{"vendor"}, Targets: []string{"plc1"},
			Classes: []string{"write"}, OPCUA: &OPCUARuleSpec{Namespace: feederNS, Paths: []string{bad}}})
		if _, err := Compile(s, testTargets); err == nil || !strings.Contains(err.Error(), "paths[0]") {
			t.Errorf("path %q: %v, want an error naming paths[0]", bad, err)
		}
	}
}
