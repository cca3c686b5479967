package opcuasim

import (
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// Namespace 0 ids this package uses.
const (
	typeBoolean    = id.Boolean
	typeByte       = id.Byte
	typeUInt16     = id.UInt16
	typeInt32      = id.Int32
	typeUInt32     = id.UInt32
	typeUInt64     = id.UInt64
	typeDouble     = id.Double
	typeByteString = id.ByteString
	typeArgument   = id.Argument

	typeBaseObject   = id.BaseObjectType
	typeFolder       = id.FolderType
	typeBaseVariable = id.BaseDataVariableType
	typeProperty     = id.PropertyType
	typeFile         = id.FileType
)

// minimumSamplingInterval is what the variables report (ms); values change
// at most once per model step.
const minimumSamplingInterval = 100.0

// node is one node of the PLC's namespace. The tree is fixed after New;
// get, set and call run with the PLC lock held.
type node struct {
	id      *ua.NodeID
	key     string // id.String()
	path    string // string identifier, e.g. "Feeder.Breaker.Closed"
	class   ua.NodeClass
	name    string
	desc    string
	typeDef uint32 // namespace 0 type definition; 0 for methods
	parent  *node
	ref     uint32 // reference type from parent to this node
	kids    []*node

	// Variables.
	dataType uint32
	rank     int32 // -1 scalar, 1 one-dimensional array
	get      func() any
	set      func(any) ua.StatusCode // nil: read-only

	// Methods.
	call            func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode)
	inArgs, outArgs []*ua.Argument

	srv *server.Node // what server.NameSpace.Node hands to gopcua
}

// parentName is "Breaker" for Feeder.Breaker.Close; used to name methods in
// the call counters.
func (n *node) parentName() string {
	if n.parent == nil {
		return ""
	}
	return n.parent.name
}

func (n *node) writable() bool { return n.set != nil }

func (n *node) accessLevel() byte {
	if n.writable() {
		return byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)
	}
	return byte(ua.AccessLevelTypeCurrentRead)
}

// space is the PLC's namespace. It implements server.NameSpace so that
// gopcua's subscription machinery reads values through it.
type space struct {
	p     *PLC
	uri   string
	ns    uint16
	root  *node // the model's object in Objects
	nodes map[string]*node
	vars  []*node // variables, in build order
}

var _ server.NameSpace = (*space)(nil)

// builder adds nodes to a space.
type builder struct{ s *space }

func (b *builder) add(parent *node, n *node) *node {
	if parent != nil {
		n.path = parent.path + "." + n.name
		n.parent = parent
		parent.kids = append(parent.kids, n)
	} else {
		n.path = n.name
	}
	n.id = ua.NewStringNodeID(b.s.ns, n.path)
	n.key = n.id.String()
	if n.desc == "" {
		n.desc = n.name
	}
	refs := []*ua.ReferenceDescription{}
	if n.typeDef != 0 {
		refs = append(refs, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
			IsForward:       true,
			NodeID:          ua.NewNumericExpandedNodeID(0, n.typeDef),
			BrowseName:      &ua.QualifiedName{},
			DisplayName:     &ua.LocalizedText{},
			TypeDefinition:  ua.NewTwoByteExpandedNodeID(0),
		})
	}
	n.srv = server.NewNode(n.id, server.Attributes{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(n.class)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: b.s.ns, Name: n.name}),
		ua.AttributeIDDisplayName: server.DataValueFromValue(localized(n.name)),
	}, refs, nil)
	b.s.nodes[n.key] = n
	if n.class == ua.NodeClassVariable {
		b.s.vars = append(b.s.vars, n)
	}
	return n
}

func (b *builder) object(parent *node, name, desc string, typeDef uint32) *node {
	return b.add(parent, &node{class: ua.NodeClassObject, name: name, desc: desc, typeDef: typeDef, ref: id.HasComponent})
}

func (b *builder) folder(parent *node, name, desc string) *node {
	return b.add(parent, &node{class: ua.NodeClassObject, name: name, desc: desc, typeDef: typeFolder, ref: id.Organizes})
}

func (b *builder) variable(parent *node, name, desc string, dataType uint32, get func() any, set func(any) ua.StatusCode) *node {
	return b.add(parent, &node{
		class: ua.NodeClassVariable, name: name, desc: desc, typeDef: typeBaseVariable, ref: id.HasComponent,
		dataType: dataType, rank: -1, get: get, set: set,
	})
}

func (b *builder) property(parent *node, name string, dataType uint32, rank int32, get func() any) *node {
	return b.add(parent, &node{
		class: ua.NodeClassVariable, name: name, typeDef: typeProperty, ref: id.HasProperty,
		dataType: dataType, rank: rank, get: get,
	})
}

func (b *builder) method(parent *node, name, desc string, in, out []*ua.Argument, call func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode)) *node {
	m := b.add(parent, &node{class: ua.NodeClassMethod, name: name, desc: desc, ref: id.HasComponent, call: call, inArgs: in, outArgs: out})
	for _, a := range []struct {
		name string
		args []*ua.Argument
	}{{"InputArguments", in}, {"OutputArguments", out}} {
		if len(a.args) == 0 {
			continue
		}
		eos := make([]*ua.ExtensionObject, len(a.args))
		for i, arg := range a.args {
			eos[i] = ua.NewExtensionObject(arg)
		}
		b.property(m, a.name, typeArgument, 1, func() any { return eos })
	}
	return m
}

// argument describes one scalar method argument.
func argument(name string, dataType uint32, desc string) *ua.Argument {
	return &ua.Argument{
		Name:        name,
		DataType:    ua.NewNumericNodeID(0, dataType),
		ValueRank:   -1,
		Description: localized(desc),
	}
}

func localized(s string) *ua.LocalizedText {
	lt := &ua.LocalizedText{Text: s}
	lt.UpdateMask()
	return lt
}

// lookup returns the node with the given id, or nil.
func (s *space) lookup(nid *ua.NodeID) *node {
	if nid == nil || nid.Namespace() != s.ns {
		return nil
	}
	return s.nodes[nid.String()]
}

// Name implements server.NameSpace.
func (s *space) Name() string { return s.uri }

// AddNode implements server.NameSpace. The PLC's address space is fixed; the
// node is not added.
func (s *space) AddNode(n *server.Node) *server.Node { return n }

// Node implements server.NameSpace.
func (s *space) Node(nid *ua.NodeID) *server.Node {
	if n := s.lookup(nid); n != nil {
		return n.srv
	}
	return nil
}

// Objects implements server.NameSpace: the model's object.
func (s *space) Objects() *server.Node { return s.root.srv }

// Root implements server.NameSpace. The namespace has no root of its own;
// its object hangs off namespace 0's Objects folder.
func (s *space) Root() *server.Node { return nil }

// ID implements server.NameSpace.
func (s *space) ID() uint16 { return s.ns }

// SetID implements server.NameSpace. The index is fixed when the nodes are
// built; New checks that the server assigned the same.
func (s *space) SetID(uint16) {}

// Attribute implements server.NameSpace. gopcua's monitored items call it to
// sample values.
func (s *space) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	n := s.lookup(nid)
	if n == nil {
		return badValue(ua.StatusBadNodeIDUnknown)
	}
	var v any
	switch attr {
	case ua.AttributeIDNodeID:
		v = n.id
	case ua.AttributeIDNodeClass:
		v = int32(n.class)
	case ua.AttributeIDBrowseName:
		v = &ua.QualifiedName{NamespaceIndex: s.ns, Name: n.name}
	case ua.AttributeIDDisplayName:
		v = localized(n.name)
	case ua.AttributeIDDescription:
		v = localized(n.desc)
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		v = uint32(0) // no attribute other than Value is writable
	}
	switch {
	case v != nil:
	case n.class == ua.NodeClassObject && attr == ua.AttributeIDEventNotifier:
		v = byte(0)
	case n.class == ua.NodeClassMethod && (attr == ua.AttributeIDExecutable || attr == ua.AttributeIDUserExecutable):
		v = true
	case n.class == ua.NodeClassVariable:
		switch attr {
		case ua.AttributeIDValue:
			s.p.mu.Lock()
			v = n.get()
			s.p.mu.Unlock()
			now := time.Now()
			return &ua.DataValue{
				EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
				Value:           ua.MustVariant(v),
				SourceTimestamp: now,
				ServerTimestamp: now,
			}
		case ua.AttributeIDDataType:
			v = ua.NewNumericNodeID(0, n.dataType)
		case ua.AttributeIDValueRank:
			v = n.rank
		case ua.AttributeIDArrayDimensions:
			if n.rank == 1 {
				v = []uint32{0}
			} else {
				v = []uint32{}
			}
		case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
			v = n.accessLevel()
		case ua.AttributeIDMinimumSamplingInterval:
			v = minimumSamplingInterval
		case ua.AttributeIDHistorizing:
			v = false
		}
	}
	if v == nil {
		return badValue(ua.StatusBadAttributeIDInvalid)
	}
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueServerTimestamp,
		Value:           ua.MustVariant(v),
		ServerTimestamp: time.Now(),
	}
}

// SetAttribute implements server.NameSpace. The PLC's Write handler does not
// use it; it is here for gopcua code paths that might.
func (s *space) SetAttribute(nid *ua.NodeID, attr ua.AttributeID, val *ua.DataValue) ua.StatusCode {
	return s.p.writeValue(nid, attr, "", val)
}

func badValue(st ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueStatusCode | ua.DataValueServerTimestamp,
		Status:          st,
		ServerTimestamp: time.Now(),
	}
}

// Reference types and their supertypes, for browse filters. Only the types
// this namespace uses are listed.
var refSupertypes = map[uint32][]uint32{
	id.Organizes:         {id.HierarchicalReferences, id.References},
	id.HasComponent:      {id.Aggregates, id.HasChild, id.HierarchicalReferences, id.References},
	id.HasProperty:       {id.Aggregates, id.HasChild, id.HierarchicalReferences, id.References},
	id.HasTypeDefinition: {id.NonHierarchicalReferences, id.References},
}

func refMatches(want *ua.NodeID, subtypes bool, ref uint32) bool {
	if nullID(want) {
		return true
	}
	if !isNumeric(want, 0) {
		return false
	}
	if want.IntID() == ref {
		return true
	}
	if !subtypes {
		return false
	}
	for _, sup := range refSupertypes[ref] {
		if sup == want.IntID() {
			return true
		}
	}
	return false
}

// references lists a node's references: forward ones first (type
// definition, children), then the inverse one to its parent.
func (s *space) references(n *node) []*ua.ReferenceDescription {
	var out []*ua.ReferenceDescription
	if n.typeDef != 0 {
		out = append(out, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
			IsForward:       true,
			NodeID:          ua.NewNumericExpandedNodeID(0, n.typeDef),
			BrowseName:      &ua.QualifiedName{Name: typeNames[n.typeDef]},
			DisplayName:     localized(typeNames[n.typeDef]),
			NodeClass:       ua.NodeClassObjectType,
			TypeDefinition:  ua.NewTwoByteExpandedNodeID(0),
		})
		if n.class == ua.NodeClassVariable {
			out[0].NodeClass = ua.NodeClassVariableType
		}
	}
	for _, k := range n.kids {
		out = append(out, s.describe(k.ref, true, k))
	}
	if n.parent != nil {
		out = append(out, s.describe(n.ref, false, n.parent))
	} else {
		out = append(out, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, n.ref),
			IsForward:       false,
			NodeID:          ua.NewNumericExpandedNodeID(0, id.ObjectsFolder),
			BrowseName:      &ua.QualifiedName{Name: "Objects"},
			DisplayName:     localized("Objects"),
			NodeClass:       ua.NodeClassObject,
			TypeDefinition:  ua.NewNumericExpandedNodeID(0, typeFolder),
		})
	}
	return out
}

var typeNames = map[uint32]string{
	typeBaseObject:   "BaseObjectType",
	typeFolder:       "FolderType",
	typeBaseVariable: "BaseDataVariableType",
	typeProperty:     "PropertyType",
	typeFile:         "FileType",
}

func (s *space) describe(ref uint32, forward bool, target *node) *ua.ReferenceDescription {
	td := ua.NewTwoByteExpandedNodeID(0)
	if target.typeDef != 0 {
		td = ua.NewNumericExpandedNodeID(0, target.typeDef)
	}
	return &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewNumericNodeID(0, ref),
		IsForward:       forward,
		NodeID:          &ua.ExpandedNodeID{NodeID: target.id},
		BrowseName:      &ua.QualifiedName{NamespaceIndex: s.ns, Name: target.name},
		DisplayName:     localized(target.name),
		NodeClass:       target.class,
		TypeDefinition:  td,
	}
}

// Browse implements server.NameSpace.
func (s *space) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	n := s.lookup(bd.NodeID)
	if n == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	if bd.BrowseDirection > ua.BrowseDirectionBoth {
		return &ua.BrowseResult{StatusCode: ua.StatusBadBrowseDirectionInvalid}
	}
	if t := bd.ReferenceTypeID; !nullID(t) && !knownRefType(t) {
		return &ua.BrowseResult{StatusCode: ua.StatusBadReferenceTypeIDInvalid}
	}
	refs := []*ua.ReferenceDescription{}
	for _, r := range s.references(n) {
		switch {
		case bd.BrowseDirection == ua.BrowseDirectionForward && !r.IsForward,
			bd.BrowseDirection == ua.BrowseDirectionInverse && r.IsForward,
			!refMatches(bd.ReferenceTypeID, bd.IncludeSubtypes, r.ReferenceTypeID.IntID()),
			bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(r.NodeClass) == 0:
			continue
		}
		refs = append(refs, r)
	}
	return &ua.BrowseResult{StatusCode: ua.StatusOK, References: refs}
}

// nullID reports whether nid is absent or the null NodeId (ns=0;i=0).
func nullID(nid *ua.NodeID) bool { return nid == nil || (isNumeric(nid, 0) && nid.IntID() == 0) }

func knownRefType(t *ua.NodeID) bool {
	if !isNumeric(t, 0) {
		return false
	}
	switch t.IntID() {
	case id.References, id.HierarchicalReferences, id.NonHierarchicalReferences, id.HasChild, id.Aggregates,
		id.Organizes, id.HasComponent, id.HasProperty, id.HasTypeDefinition,
		id.HasSubtype, id.HasEventSource, id.HasNotifier, id.HasModellingRule, id.HasEncoding, id.HasDescription,
		id.GeneratesEvent, id.HasOrderedComponent:
		return true
	}
	return false
}

// child returns n's child reached by a forward hierarchical reference with
// the given browse name, or nil.
func (s *space) child(n *node, name *ua.QualifiedName) *node {
	if name == nil || name.NamespaceIndex != s.ns {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name.Name {
			return k
		}
	}
	return nil
}

// byPath returns the node with the given string identifier, or nil.
func (s *space) byPath(path string) *node {
	return s.nodes[ua.NewStringNodeID(s.ns, strings.TrimSpace(path)).String()]
}
