package opcua

import (
	"encoding/base64"
	"sync"

	"github.com/gopcua/opcua/ua"
)

// nodeKey is a NodeId as a comparable value. The two-byte, four-byte and
// numeric encodings of one numeric identifier give the same key (OPC 10000-6,
// 5.2.2.9): they name the same node, so a client cannot dodge a lookup by
// choosing a longer encoding.
type nodeKey struct {
	kind ua.NodeIDType
	ns   uint16
	num  uint32
	s    string
}

// invalidKind marks a NodeId whose type nibble is none of the six encodings;
// only a failed decode leaves one behind.
const invalidKind ua.NodeIDType = 0xff

// kindOf returns the key kind of n without building the key.
func kindOf(n *ua.NodeID) ua.NodeIDType {
	switch t := n.Type(); t {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return ua.NodeIDTypeNumeric
	case ua.NodeIDTypeString, ua.NodeIDTypeGUID, ua.NodeIDTypeByteString:
		return t
	}
	return invalidKind
}

func keyOf(n *ua.NodeID) nodeKey {
	switch k := kindOf(n); k {
	case ua.NodeIDTypeNumeric:
		return nodeKey{kind: k, ns: n.Namespace(), num: n.IntID()}
	case invalidKind:
		return nodeKey{kind: k, ns: n.Namespace(), num: uint32(n.EncodingMask())}
	default:
		return nodeKey{kind: k, ns: n.Namespace(), s: n.StringID()}
	}
}

// kindSlot indexes idMap.kinds: 0..5 for the encodings, 6 for invalid.
func kindSlot(k ua.NodeIDType) int {
	if k == invalidKind {
		return 6
	}
	return int(k)
}

// isNumeric reports whether n is the numeric NodeId ns;i=num in any of its
// three encodings.
func isNumeric(n *ua.NodeID, ns uint16, num uint32) bool {
	if n == nil {
		return false
	}
	switch n.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return n.Namespace() == ns && n.IntID() == num
	}
	return false
}

// MaxRegistered bounds the entries of one AliasMap or MethodMap, so that a
// client registering nodes in a loop cannot grow the gateway's memory without
// limit. Register and Learn fail with ErrMapFull beyond it; the terminator
// then refuses the request rather than forget an alias.
const MaxRegistered = 1 << 16

// idMap maps NodeIds to NodeIds, safe for concurrent use; the zero value is
// empty and ready. It counts its keys per kind, so that a lookup of a string
// or GUID NodeId, whose key costs an allocation, is skipped while no key of
// that kind is stored (servers mostly hand out numeric aliases).
type idMap struct {
	mu    sync.RWMutex
	m     map[nodeKey]*ua.NodeID
	kinds [7]int
}

func (m *idMap) set(from, to *ua.NodeID) error {
	if from == nil || to == nil {
		return ErrNilNodeID
	}
	k := keyOf(from)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; !ok && len(m.m) >= MaxRegistered {
		return ErrMapFull
	}
	if m.m == nil {
		m.m = make(map[nodeKey]*ua.NodeID)
	}
	if _, ok := m.m[k]; !ok {
		m.kinds[kindSlot(k.kind)]++
	}
	m.m[k] = to
	return nil
}

func (m *idMap) get(id *ua.NodeID) (*ua.NodeID, bool) {
	if m == nil || id == nil {
		return nil, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.kinds[kindSlot(kindOf(id))] == 0 { // no key to build, no allocation
		return nil, false
	}
	to, ok := m.m[keyOf(id)]
	return to, ok
}

func (m *idMap) remove(id *ua.NodeID) {
	if id == nil {
		return
	}
	k := keyOf(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; ok {
		m.kinds[kindSlot(k.kind)]--
		delete(m.m, k)
	}
}

func (m *idMap) len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

// AliasMap holds one session's RegisterNodes aliases (OPC 10000-4, 5.8.5):
// the server may answer RegisterNodes with new NodeIds that the client then
// uses instead of the real ones. Policy names real NodeIds, so every NodeId of
// a request is mapped back through Resolve before it is decided. The zero
// value is empty and ready; it is safe for concurrent use.
type AliasMap struct{ m idMap }

// Register records that alias stands for real, as the terminator learns it
// from a RegisterNodes response (RegisteredNodeIDs[i] for the resolved
// NodeId of element i). An alias that is itself registered is resolved first,
// so chains collapse; a server that answers with the NodeId it was given adds
// no entry. It fails with ErrNilNodeID or ErrMapFull.
func (a *AliasMap) Register(alias, real *ua.NodeID) error {
	if alias == nil || real == nil {
		return ErrNilNodeID
	}
	real = a.Resolve(real)
	if keyOf(alias) == keyOf(real) {
		a.m.remove(alias)
		return nil
	}
	return a.m.set(alias, real)
}

// Resolve returns the real NodeId that id is an alias for, or id itself if
// it is no registered alias. A nil map resolves nothing.
func (a *AliasMap) Resolve(id *ua.NodeID) *ua.NodeID {
	if a == nil {
		return id
	}
	if real, ok := a.m.get(id); ok {
		return real
	}
	return id
}

// Unregister forgets alias, after the server accepted UnregisterNodes for it.
func (a *AliasMap) Unregister(alias *ua.NodeID) { a.m.remove(alias) }

// Len returns the number of registered aliases.
func (a *AliasMap) Len() int { return a.m.len() }

// MethodMap teaches the classifier a server's own instance method ids. A
// client may call FileType Write through the instance's Method node
// (ns=3;s=Recipe.Write) instead of the type's (i=11588); the call request
// itself does not say which it is. The terminator, which can browse, learns
// for an object of a known type which of its methods instantiate which type
// method, and records it here; Classify then treats the instance method as
// the type method. The zero value is empty and ready; it is safe for
// concurrent use.
type MethodMap struct{ m idMap }

// Learn records that the method node instance instantiates typeMethod (a
// type-level method id such as ua.NewNumericNodeID(0, id.FileType_Write)).
// It fails with ErrNilNodeID or ErrMapFull.
func (m *MethodMap) Learn(instance, typeMethod *ua.NodeID) error {
	return m.m.set(instance, typeMethod)
}

// TypeMethod returns the type-level method that instance was learned to
// instantiate, or nil.
func (m *MethodMap) TypeMethod(instance *ua.NodeID) *ua.NodeID {
	if m == nil {
		return nil
	}
	t, _ := m.m.get(instance)
	return t
}

// NamespaceMap resolves namespace URIs against one server's NamespaceArray
// (the Value of i=2255, Server_NamespaceArray). Namespace indexes differ from
// server to server and may change when a server restarts, so rules name URIs
// and are resolved per session. A NamespaceMap is immutable and safe for
// concurrent use.
type NamespaceMap struct {
	uris  []string
	index map[string]uint16
}

// NewNamespaceMap builds the map from a NamespaceArray. Index 0 is always
// the OPC UA namespace; should a URI appear twice, the first index wins.
// Entries beyond index 65535 cannot be addressed by a NodeId and are ignored.
func NewNamespaceMap(namespaceArray []string) *NamespaceMap {
	n := min(len(namespaceArray), 1<<16)
	m := &NamespaceMap{
		uris:  append([]string(nil), namespaceArray[:n]...),
		index: make(map[string]uint16, n),
	}
	for i, uri := range m.uris {
		if _, dup := m.index[uri]; !dup {
			m.index[uri] = uint16(i)
		}
	}
	return m
}

// Index returns the namespace index of uri in this server.
func (m *NamespaceMap) Index(uri string) (uint16, bool) {
	if m == nil {
		return 0, false
	}
	ns, ok := m.index[uri]
	return ns, ok
}

// URI returns the namespace URI of index ns in this server.
func (m *NamespaceMap) URI(ns uint16) (string, bool) {
	if m == nil || int(ns) >= len(m.uris) {
		return "", false
	}
	return m.uris[ns], true
}

// withNamespace returns n's identifier in namespace ns. It returns nil if n
// cannot be rebuilt (an invalid type, or an opaque id that is not base64).
func withNamespace(n *ua.NodeID, ns uint16) *ua.NodeID {
	switch n.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return ua.NewNumericNodeID(ns, n.IntID())
	case ua.NodeIDTypeString:
		return ua.NewStringNodeID(ns, n.StringID())
	case ua.NodeIDTypeGUID:
		return ua.NewGUIDNodeID(ns, n.StringID())
	case ua.NodeIDTypeByteString:
		b, err := base64.StdEncoding.DecodeString(n.StringID())
		if err != nil {
			return nil
		}
		return ua.NewByteStringNodeID(ns, b)
	}
	return nil
}
