package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/brana-ot/brana/protocols/opcua"
	"github.com/gopcua/opcua/ua"
)

// OPCUARuleSpec restricts a rule to OPC UA requests (PROTOCOLS.md, "OPC UA
// binary"). NodeIds are written without a namespace ("s=Feeder.Pickup",
// "i=1234"): they are in Namespace, a URI that is resolved against each
// session's NamespaceArray, since indexes differ between servers.
type OPCUARuleSpec struct {
	Namespace       string            `yaml:"namespace"`         // namespace URI the node ids are in
	Nodes           []string          `yaml:"nodes"`             // NodeIds, or "s=Prefix.*" for string ids with a prefix; empty (and no paths): any node of the namespace
	Paths           []string          `yaml:"paths"`             // browse paths from the Objects folder, "Feeder/Protection" (that node) or "Feeder/Protection/*" (and everything below it)
	Attributes      []string          `yaml:"attributes"`        // attribute names, e.g. value, displayname; empty: value for Write, any for other services
	Methods         []OPCUAMethodSpec `yaml:"methods"`           // the (object, method) pairs a Call may name; empty: no Call
	AllowIndexRange bool              `yaml:"allow_index_range"` // allow elements that carry an IndexRange
}

// OPCUAMethodSpec names one callable method on one object, both NodeIds in
// the rule's namespace.
type OPCUAMethodSpec struct {
	Object string `yaml:"object"`
	Method string `yaml:"method"`
}

// opcuaRule is a compiled OPCUARuleSpec.
type opcuaRule struct {
	uri        string
	anyNode    bool
	nodes      []nodePat
	paths      []OPCUAPath
	anyAttr    bool   // attributes not given: value for Write, any elsewhere
	attrs      uint64 // bit a: attribute id a allowed (a < 64)
	methods    [][2]nodePat
	indexRange bool

	indexRangeDenied Denial // AttributeDenied, with a message that names the index range
}

// nodePat is one NodeId of a rule, without namespace: a numeric id, or a
// string, GUID or opaque id compared by its StringID, or a string prefix.
type nodePat struct {
	kind   ua.NodeIDType // ua.NodeIDTypeNumeric for every numeric encoding
	num    uint32
	s      string
	prefix bool
}

// opcuaAttributes maps the attribute names a rule may use to their ids
// (OPC 10000-6, A.1), lower case without separators.
var opcuaAttributes = map[string]ua.AttributeID{
	"nodeid": ua.AttributeIDNodeID, "nodeclass": ua.AttributeIDNodeClass, "browsename": ua.AttributeIDBrowseName,
	"displayname": ua.AttributeIDDisplayName, "description": ua.AttributeIDDescription,
	"writemask": ua.AttributeIDWriteMask, "userwritemask": ua.AttributeIDUserWriteMask,
	"isabstract": ua.AttributeIDIsAbstract, "symmetric": ua.AttributeIDSymmetric, "inversename": ua.AttributeIDInverseName,
	"containsnoloops": ua.AttributeIDContainsNoLoops, "eventnotifier": ua.AttributeIDEventNotifier,
	"value": ua.AttributeIDValue, "datatype": ua.AttributeIDDataType, "valuerank": ua.AttributeIDValueRank,
	"arraydimensions": ua.AttributeIDArrayDimensions, "accesslevel": ua.AttributeIDAccessLevel,
	"useraccesslevel": ua.AttributeIDUserAccessLevel, "minimumsamplinginterval": ua.AttributeIDMinimumSamplingInterval,
	"historizing": ua.AttributeIDHistorizing, "executable": ua.AttributeIDExecutable,
	"userexecutable": ua.AttributeIDUserExecutable, "datatypedefinition": ua.AttributeIDDataTypeDefinition,
	"rolepermissions": ua.AttributeIDRolePermissions, "userrolepermissions": ua.AttributeIDUserRolePermissions,
	"accessrestrictions": ua.AttributeIDAccessRestrictions, "accesslevelex": ua.AttributeIDAccessLevelEx,
}

// nodeKind folds the three numeric encodings into one; -1 (as 0xff) for a
// type that is none of the six.
func nodeKind(n *ua.NodeID) ua.NodeIDType {
	switch t := n.Type(); t {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return ua.NodeIDTypeNumeric
	case ua.NodeIDTypeString, ua.NodeIDTypeGUID, ua.NodeIDTypeByteString:
		return t
	}
	return 0xff
}

// parseNodePat parses a rule NodeId: no namespace, and a trailing "*" only
// on a string id.
func parseNodePat(s string) (nodePat, error) {
	if strings.HasPrefix(s, "ns=") || strings.HasPrefix(s, "nsu=") || strings.Contains(s, ";") && !strings.HasPrefix(s, "s=") {
		return nodePat{}, fmt.Errorf("node id %q names a namespace: give it in namespace and the id without ns (e.g. s=Tag or i=1234)", s)
	}
	if rest, ok := strings.CutPrefix(s, "s="); ok && strings.HasSuffix(rest, "*") {
		p := strings.TrimSuffix(rest, "*")
		if p == "" {
			return nodePat{}, fmt.Errorf("node id prefix %q is empty: leave nodes out to allow the whole namespace", s)
		}
		return nodePat{kind: ua.NodeIDTypeString, s: p, prefix: true}, nil
	}
	if strings.HasSuffix(s, "*") {
		return nodePat{}, fmt.Errorf("node id %q: a prefix (trailing *) is allowed only on string ids (s=...)", s)
	}
	typed := strings.HasPrefix(s, "i=") || strings.HasPrefix(s, "s=") || strings.HasPrefix(s, "g=") || strings.HasPrefix(s, "b=")
	n, err := ua.ParseNodeID(s)
	if !typed || err != nil || n == nil {
		return nodePat{}, fmt.Errorf("bad node id %q (want s=Name, i=1234, g=GUID or b=base64, without ns)", s)
	}
	if n.Namespace() != 0 {
		return nodePat{}, fmt.Errorf("node id %q names a namespace: give it in namespace and the id without ns", s)
	}
	k := nodeKind(n)
	if k == ua.NodeIDTypeNumeric {
		return nodePat{kind: k, num: n.IntID()}, nil
	}
	return nodePat{kind: k, s: n.StringID()}, nil
}

// compileOPCUA checks and compiles rs.OPCUA into r.
func (c *compiler) compileOPCUA(path string, rs *RuleSpec, r *Rule) {
	us := rs.OPCUA
	path += ".opcua"
	o := &opcuaRule{uri: us.Namespace, anyNode: len(us.Nodes) == 0 && len(us.Paths) == 0, anyAttr: len(us.Attributes) == 0, indexRange: us.AllowIndexRange}
	for _, f := range []struct {
		name string
		set  bool
	}{{"functions", len(rs.Functions) > 0}, {"units", len(rs.Units) > 0}, {"ranges", len(rs.Ranges) > 0}, {"values", rs.Values != nil}} {
		if f.set {
			c.errorf(strings.TrimSuffix(path, ".opcua")+"."+f.name, "a rule with an opcua section cannot restrict Modbus %s: use two rules", f.name)
		}
	}
	if strings.TrimSpace(us.Namespace) == "" {
		c.errorf(path+".namespace", "empty namespace URI (e.g. urn:vendor:feeder; http://opcfoundation.org/UA/ for namespace 0)")
	}
	for j, s := range us.Nodes {
		np, err := parseNodePat(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.nodes[%d]", path, j), "%v", err)
			continue
		}
		o.nodes = append(o.nodes, np)
	}
	for j, s := range us.Paths {
		bp, err := parsePath(us.Namespace, s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.paths[%d]", path, j), "%v", err)
			continue
		}
		o.paths = append(o.paths, bp)
	}
	for j, s := range us.Attributes {
		a, ok := opcuaAttributes[strings.ToLower(strings.ReplaceAll(s, "_", ""))]
		if !ok {
			c.errorf(fmt.Sprintf("%s.attributes[%d]", path, j), "unknown attribute %q (e.g. value, displayname, description)", s)
			continue
		}
		o.attrs |= 1 << a
	}
	if len(us.Methods) > 0 && !r.classes.Has(opclass.Control) && !r.classes.Has(opclass.Program) {
		c.errorf(path+".methods", "methods need class control or program in the rule's classes")
	}
	for j, m := range us.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", path, j)
		obj, err1 := parseNodePat(m.Object)
		if err1 != nil {
			c.errorf(mp+".object", "%v", err1)
		}
		meth, err2 := parseNodePat(m.Method)
		if err2 != nil {
			c.errorf(mp+".method", "%v", err2)
		}
		for _, p := range []struct {
			field string
			np    nodePat
			err   error
		}{{"object", obj, err1}, {"method", meth, err2}} {
			if p.err == nil && p.np.prefix {
				c.errorf(mp+"."+p.field, "a method pair names exact node ids: no prefix")
			}
		}
		o.methods = append(o.methods, [2]nodePat{obj, meth})
	}
	o.indexRangeDenied = newDenial(AttributeDenied, r, fmt.Sprintf("index range not allowed by rule %q", r.Name))
	r.opcua = o
}

// splitProtocols removes the OPC UA rules from p.index, which DecideModbus
// uses, and indexes them by party×target in p.opcuaIndex.
func (p *Policy) splitProtocols() {
	p.opcuaIndex = make([][]*Rule, len(p.index))
	for i, rules := range p.index {
		var mb, uarules []*Rule
		for _, r := range rules {
			if r.opcua != nil {
				uarules = append(uarules, r)
			} else {
				mb = append(mb, r)
			}
		}
		p.index[i], p.opcuaIndex[i] = mb, uarules
	}
}

// nodeFreeService reports whether the elements of service refer to state of
// earlier, already decided requests (subscriptions, monitored items,
// continuation points) rather than to nodes: the class decides them.
func nodeFreeService(service string) bool {
	switch service {
	case "BrowseNext", "ModifyMonitoredItems", "SetMonitoringMode", "SetTriggering", "DeleteMonitoredItems",
		"CreateSubscription", "ModifySubscription", "SetPublishingMode", "Publish", "Republish",
		"DeleteSubscriptions", "TransferSubscriptions", "QueryNext":
		return true
	}
	return false
}

// lazyID is an element NodeId with its StringID computed at most once.
type lazyID struct {
	n    *ua.NodeID
	kind ua.NodeIDType
	s    string
	done bool
}

func newLazyID(n *ua.NodeID) lazyID {
	if n == nil {
		return lazyID{}
	}
	return lazyID{n: n, kind: nodeKind(n)}
}

// matches reports whether id, in namespace ns, is np.
func (id *lazyID) matches(np *nodePat) bool {
	if id.kind != np.kind {
		return false
	}
	if np.kind == ua.NodeIDTypeNumeric {
		return id.n.IntID() == np.num
	}
	if !id.done {
		id.s, id.done = id.n.StringID(), true
	}
	if np.prefix {
		return strings.HasPrefix(id.s, np.s)
	}
	return id.s == np.s
}

// How far an OPC UA rule got before it failed: when no rule allows an
// element, the denial names the rule that got furthest.
const (
	rankClass    = iota + 1 // the class is not allowed
	rankNoMethod            // a Call, and the rule names no method
	rankNode                // the node, or the (object, method) pair, is not allowed
	rankAttr                // the node is allowed, the attribute or index range is not
)

// checkOPCUA reports whether r allows e (nil), and if not, the denial and
// how far r got.
func (r *Rule) checkOPCUA(v *OPCUAView, e *opcua.Element, node, obj, meth *lazyID) (*Denial, int) {
	o := r.opcua
	ns := v.NS
	if !r.classes.Has(e.Class) {
		return &r.denials[ClassDenied], rankClass
	}
	if e.Index < 0 && node.n == nil && obj.n == nil && meth.n == nil {
		return nil, 0 // request-level: the class decides
	}
	idx, resolved := ns.Index(o.uri)
	if e.Service == "Call" {
		if len(o.methods) == 0 {
			return &r.denials[MethodDenied], rankNoMethod
		}
		if obj.n == nil || meth.n == nil || !resolved || obj.n.Namespace() != idx || meth.n.Namespace() != idx {
			return &r.denials[MethodDenied], rankNode
		}
		for i := range o.methods {
			if obj.matches(&o.methods[i][0]) && meth.matches(&o.methods[i][1]) {
				return nil, 0
			}
		}
		return &r.denials[MethodDenied], rankNode
	}
	if node.n == nil {
		if nodeFreeService(e.Service) {
			return nil, 0
		}
		return &r.denials[NodeDenied], rankNode
	}
	if !resolved || node.n.Namespace() != idx {
		return &r.denials[NodeDenied], rankNode
	}
	if !o.anyNode {
		found := false
		for i := range o.nodes {
			if node.matches(&o.nodes[i]) {
				found = true
				break
			}
		}
		for i := 0; i < len(o.paths) && !found && v.Paths != nil; i++ {
			found = v.Paths.Under(&o.paths[i], node.n)
		}
		if !found {
			return &r.denials[NodeDenied], rankNode
		}
	}
	if e.Attribute != 0 || e.Service == "Write" {
		switch a := e.Attribute; {
		case !o.anyAttr:
			if a >= 64 || o.attrs&(1<<a) == 0 {
				return &r.denials[AttributeDenied], rankAttr
			}
		case e.Service == "Write":
			if a != ua.AttributeIDValue {
				return &r.denials[AttributeDenied], rankAttr
			}
		}
	}
	if e.IndexRange != "" && !o.indexRange {
		return &o.indexRangeDenied, rankAttr
	}
	return nil, 0
}

// DecideOPCUA decides one element of an OPC UA request from party (nil:
// unidentified) to the named target, ns being the target server's
// NamespaceArray for this session. It returns the rule that allowed the
// element, or a *Denial; the terminator answers Bad_UserAccessDenied for
// each denied element and keeps the order.
//
// Only rules with an opcua section apply. A rule allows e when it names the
// party and the target, has e's class, and:
//   - e is request-level (Index -1, no NodeId): nothing more;
//   - e is a Call: (ObjectID, MethodID) is one of its method pairs;
//   - e names a node: the node is in the rule's namespace, as resolved
//     through ns (an unresolvable URI matches nothing), and among its nodes;
//     the attribute is among its attributes (none given: Value for Write,
//     any otherwise); an IndexRange needs allow_index_range;
//   - e names no node: only if its service names none (Publish
//     acknowledgements, monitored item ids, continuation points).
//
// The first allowing rule in file order wins; otherwise the denial names
// the rule that got furthest. DecideOPCUA does not allocate for numeric
// NodeIds; a string, GUID or opaque NodeId costs the one conversion of
// ua.NodeID.StringID.
func (p *Policy) DecideOPCUA(party *Party, target string, ns *opcua.NamespaceMap, e *opcua.Element) (*Rule, error) {
	return p.DecideOPCUAIn(party, target, &OPCUAView{NS: ns}, e)
}

// OPCUAView is what a decision knows of one OPC UA session: the server's
// NamespaceArray, and the browse paths of the rules resolved to nodes.
type OPCUAView struct {
	NS    *opcua.NamespaceMap
	Paths PathSet // nil: no paths resolved, so rules that name paths match no node by them
}

// PathSet tells which nodes a browse path of a rule covers, as the
// terminator resolved it against the server of one session.
type PathSet interface {
	Under(p *OPCUAPath, node *ua.NodeID) bool
}

// OPCUAPath is one browse path of a rule: browse names from the Objects
// folder, each in the rule's namespace.
type OPCUAPath struct {
	Key       string // namespace and path, unique: "urn:x|Feeder/Protection/*"
	Namespace string
	Names     []string
	Subtree   bool // the node and every node below it (hierarchical references)
}

// parsePath parses "A/B/C" or "A/B/*".
func parsePath(uri, s string) (OPCUAPath, error) {
	p := OPCUAPath{Key: uri + "|" + s, Namespace: uri}
	rest, sub := strings.CutSuffix(s, "/*")
	p.Subtree = sub
	if rest == "" || strings.HasPrefix(rest, "/") || strings.HasSuffix(rest, "/") {
		return p, fmt.Errorf("browse path %q: want names below the Objects folder separated by /, e.g. Feeder/Protection or Feeder/Protection/*", s)
	}
	for _, n := range strings.Split(rest, "/") {
		if n == "" || n == "*" || strings.TrimSpace(n) != n {
			return p, fmt.Errorf("browse path %q: empty or bad name %q (a * is allowed only as the last segment)", s, n)
		}
		p.Names = append(p.Names, n)
	}
	return p, nil
}

// OPCUAPaths lists the browse paths of the rules that may apply to party
// on target, for the terminator to resolve before it decides.
func (p *Policy) OPCUAPaths(party *Party, target string) []OPCUAPath {
	pi := p.partyIndex(party)
	ti, ok := p.targetIdx[target]
	if pi < 0 || !ok {
		return nil
	}
	var out []OPCUAPath
	for _, r := range p.opcuaIndex[pi*len(p.targets)+ti] {
		out = append(out, r.opcua.paths...)
	}
	return out
}

// DecideOPCUAIn is DecideOPCUA with rules that name browse paths resolved
// in view.
func (p *Policy) DecideOPCUAIn(party *Party, target string, v *OPCUAView, e *opcua.Element) (*Rule, error) {
	pi := p.partyIndex(party)
	if pi < 0 {
		return nil, &p.unidentified
	}
	ti, ok := p.targetIdx[target]
	if !ok {
		return nil, &p.noRule
	}
	rules := p.opcuaIndex[pi*len(p.targets)+ti]
	if len(rules) == 0 || e == nil {
		return nil, &p.noRule
	}
	node, obj, meth := newLazyID(e.NodeID), newLazyID(e.ObjectID), newLazyID(e.MethodID)
	var closest *Denial
	best := 0
	for _, r := range rules {
		d, rank := r.checkOPCUA(v, e, &node, &obj, &meth)
		if d == nil {
			return r, nil
		}
		if rank > best {
			closest, best = d, rank
		}
	}
	return nil, closest
}

func cloneOPCUA(s *OPCUARuleSpec) *OPCUARuleSpec {
	if s == nil {
		return nil
	}
	c := *s
	c.Nodes = slices.Clone(s.Nodes)
	c.Attributes = slices.Clone(s.Attributes)
	c.Paths = slices.Clone(s.Paths)
	c.Methods = slices.Clone(s.Methods)
	return &c
}

// digestOPCUA appends the OPC UA sections, only when a rule has one, so
// that the digests of Modbus-only specs are those of earlier versions.
func digestOPCUA(w *canon, spec *Spec) {
	used := false
	for i := range spec.Rules {
		used = used || spec.Rules[i].OPCUA != nil
	}
	if !used {
		return
	}
	w.str("opcua v1")
	for _, rs := range spec.Rules {
		o := rs.OPCUA
		if o == nil {
			w.int(0)
			continue
		}
		w.int(1)
		w.str(o.Namespace)
		w.strs(o.Nodes)
		w.strs(o.Attributes)
		w.int(len(o.Methods))
		for _, m := range o.Methods {
			w.str(m.Object)
			w.str(m.Method)
		}
		w.bool(o.AllowIndexRange)
	}
	// Paths came later: only specs that use them get the extra section.
	paths := false
	for _, rs := range spec.Rules {
		paths = paths || rs.OPCUA != nil && len(rs.OPCUA.Paths) > 0
	}
	if paths {
		w.str("opcua paths v1")
		for _, rs := range spec.Rules {
			if rs.OPCUA == nil {
				w.int(0)
				continue
			}
			w.strs(rs.OPCUA.Paths)
		}
	}
}
