package opcua

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/gopcua/opcua/ua"
)

// Element is one decision unit of a request. Array requests decompose into one
// Element per array entry, in request order; Index is the entry's position
// in that array, or -1 for the request as a whole (a service without a
// per-item array, or an empty array).
//
// NodeID, ObjectID and MethodID are the real NodeIds, already mapped back
// from RegisterNodes aliases; nil means the request names no NodeId here (or
// one that is not a node of this server), and a rule that needs a NodeId
// must then refuse.
type Element struct {
	Index      int
	Class      opclass.Class
	Service    string         // the OPC UA service name, e.g. "Write"
	NodeID     *ua.NodeID     // the node read, written, browsed or monitored
	Attribute  ua.AttributeID // Read, Write, CreateMonitoredItems; 0 elsewhere
	IndexRange string         // a sub-range of an array Value; rules may refuse it
	ObjectID   *ua.NodeID     // Call only
	MethodID   *ua.NodeID     // Call only: as requested, not as classified
	Detail     string         // for audit: method name, history details, ids
}

// Classifier classifies the requests of one session. Its zero value (and a
// nil *Classifier) knows no aliases, no instance methods and no namespaces.
// Its fields are set once when the session starts; the maps they point to
// may be updated concurrently with classification.
type Classifier struct {
	Aliases    *AliasMap     // RegisterNodes aliases of this session
	Methods    *MethodMap    // instance method ids learned from this server
	Namespaces *NamespaceMap // this server's NamespaceArray; needed for DI methods and URI-qualified ids
}

// Classify classifies req with a zero Classifier: no aliases, no learned
// methods, no namespaces.
func Classify(req ua.Request) (service string, elems []Element, err error) {
	return (*Classifier)(nil).Append(nil, req)
}

// Classify returns the OPC UA service name of req and its elements.
func (c *Classifier) Classify(req ua.Request) (service string, elems []Element, err error) {
	return c.Append(nil, req)
}

// Append is Classify appending to dst[:0], so that a caller that keeps the
// slice classifies the hot services without allocating. The only error is
// ErrNilRequest; a request type this package does not know is classified
// opclass.Unknown, not an error.
func (c *Classifier) Append(dst []Element, req ua.Request) (service string, elems []Element, err error) {
	if isNil(req) {
		return "", dst[:0], ErrNilRequest
	}
	b := builder{c: c, dst: dst[:0]}
	switch r := req.(type) {
	// Attribute service set.
	case *ua.ReadRequest:
		b.svc = "Read"
		for i, v := range r.NodesToRead {
			e := Element{Index: i, Class: opclass.Read}
			if v != nil {
				e.NodeID, e.Attribute, e.IndexRange = c.resolve(v.NodeID), v.AttributeID, v.IndexRange
			}
			b.add(e)
		}
		b.whole(len(r.NodesToRead), opclass.Read, "")
	case *ua.WriteRequest:
		b.svc = "Write"
		for i, v := range r.NodesToWrite {
			e := Element{Index: i, Class: opclass.Control}
			if v != nil {
				e.NodeID, e.Attribute, e.IndexRange = c.resolve(v.NodeID), v.AttributeID, v.IndexRange
				if v.AttributeID == ua.AttributeIDValue {
					e.Class = opclass.Write
				}
			}
			b.add(e)
		}
		b.whole(len(r.NodesToWrite), opclass.Write, "")
	case *ua.HistoryReadRequest:
		b.svc = "HistoryRead"
		detail := extName(r.HistoryReadDetails)
		for i, v := range r.NodesToRead {
			e := Element{Index: i, Class: opclass.Read, Detail: detail}
			if v != nil {
				e.NodeID, e.IndexRange = c.resolve(v.NodeID), v.IndexRange
			}
			b.add(e)
		}
		b.whole(len(r.NodesToRead), opclass.Read, detail)
	case *ua.HistoryUpdateRequest:
		b.svc = "HistoryUpdate"
		for i, x := range r.HistoryUpdateDetails {
			b.add(Element{Index: i, Class: opclass.Program, NodeID: c.resolve(historyUpdateNode(x)), Detail: extName(x)})
		}
		b.whole(len(r.HistoryUpdateDetails), opclass.Program, "")

	// Method service set.
	case *ua.CallRequest:
		b.svc = "Call"
		for i, m := range r.MethodsToCall {
			e := Element{Index: i, Class: opclass.Control}
			if m != nil {
				e.ObjectID, e.MethodID = c.resolve(m.ObjectID), c.resolve(m.MethodID)
				e.Class, e.Detail = c.classifyCall(e.MethodID, m.InputArguments)
			}
			b.add(e)
		}
		b.whole(len(r.MethodsToCall), opclass.Control, "")

	// View service set.
	case *ua.BrowseRequest:
		b.svc = "Browse"
		for i, d := range r.NodesToBrowse {
			e := Element{Index: i, Class: opclass.Read}
			if d != nil {
				e.NodeID = c.resolve(d.NodeID)
			}
			b.add(e)
		}
		b.whole(len(r.NodesToBrowse), opclass.Read, "")
	case *ua.BrowseNextRequest:
		b.svc = "BrowseNext"
		for i := range r.ContinuationPoints {
			b.add(Element{Index: i, Class: opclass.Read, Detail: "continuation point"})
		}
		b.whole(len(r.ContinuationPoints), opclass.Read, "")
	case *ua.TranslateBrowsePathsToNodeIDsRequest:
		b.svc = "TranslateBrowsePathsToNodeIds"
		for i, p := range r.BrowsePaths {
			e := Element{Index: i, Class: opclass.Read}
			if p != nil {
				e.NodeID = c.resolve(p.StartingNode)
			}
			b.add(e)
		}
		b.whole(len(r.BrowsePaths), opclass.Read, "")
	case *ua.RegisterNodesRequest:
		b.svc = "RegisterNodes"
		for i, n := range r.NodesToRegister {
			b.add(Element{Index: i, Class: opclass.Read, NodeID: c.resolve(n)})
		}
		b.whole(len(r.NodesToRegister), opclass.Read, "")
	case *ua.UnregisterNodesRequest:
		b.svc = "UnregisterNodes"
		for i, n := range r.NodesToUnregister {
			b.add(Element{Index: i, Class: opclass.Read, NodeID: c.resolve(n)})
		}
		b.whole(len(r.NodesToUnregister), opclass.Read, "")

	// MonitoredItem service set.
	case *ua.CreateMonitoredItemsRequest:
		b.svc = "CreateMonitoredItems"
		for i, m := range r.ItemsToCreate {
			e := Element{Index: i, Class: opclass.Read}
			if m != nil && m.ItemToMonitor != nil {
				v := m.ItemToMonitor
				e.NodeID, e.Attribute, e.IndexRange = c.resolve(v.NodeID), v.AttributeID, v.IndexRange
			}
			b.add(e)
		}
		b.whole(len(r.ItemsToCreate), opclass.Read, "")
	case *ua.ModifyMonitoredItemsRequest:
		b.svc = "ModifyMonitoredItems"
		for i, m := range r.ItemsToModify {
			e := Element{Index: i, Class: opclass.Read}
			if m != nil {
				e.Detail = idDetail("monitored item ", m.MonitoredItemID)
			}
			b.add(e)
		}
		b.whole(len(r.ItemsToModify), opclass.Read, "")
	case *ua.SetMonitoringModeRequest:
		b.svc = "SetMonitoringMode"
		b.ids(r.MonitoredItemIDs, opclass.Read, "monitored item ")
	case *ua.SetTriggeringRequest:
		// Two arrays: the elements are LinksToAdd then LinksToRemove, in
		// the order of AddResults then RemoveResults.
		b.svc = "SetTriggering"
		for i, l := range r.LinksToAdd {
			b.add(Element{Index: i, Class: opclass.Read, Detail: idDetail("add link to item ", l)})
		}
		for i, l := range r.LinksToRemove {
			b.add(Element{Index: len(r.LinksToAdd) + i, Class: opclass.Read, Detail: idDetail("remove link to item ", l)})
		}
		b.whole(len(r.LinksToAdd)+len(r.LinksToRemove), opclass.Read, "")
	case *ua.DeleteMonitoredItemsRequest:
		b.svc = "DeleteMonitoredItems"
		b.ids(r.MonitoredItemIDs, opclass.Read, "monitored item ")

	// Subscription service set.
	case *ua.CreateSubscriptionRequest:
		b.svc = "CreateSubscription"
		b.whole(0, opclass.Read, "")
	case *ua.ModifySubscriptionRequest:
		b.svc = "ModifySubscription"
		b.whole(0, opclass.Read, idDetail("subscription ", r.SubscriptionID))
	case *ua.SetPublishingModeRequest:
		b.svc = "SetPublishingMode"
		b.ids(r.SubscriptionIDs, opclass.Read, "subscription ")
	case *ua.PublishRequest:
		b.svc = "Publish"
		for i := range r.SubscriptionAcknowledgements {
			b.add(Element{Index: i, Class: opclass.Read, Detail: "acknowledgement"})
		}
		b.whole(len(r.SubscriptionAcknowledgements), opclass.Read, "")
	case *ua.RepublishRequest:
		b.svc = "Republish"
		b.whole(0, opclass.Read, idDetail("subscription ", r.SubscriptionID))
	case *ua.DeleteSubscriptionsRequest:
		b.svc = "DeleteSubscriptions"
		b.ids(r.SubscriptionIDs, opclass.Read, "subscription ")
	case *ua.TransferSubscriptionsRequest:
		// Takes over subscriptions of another session: never by default.
		b.svc = "TransferSubscriptions"
		b.ids(r.SubscriptionIDs, opclass.Unknown, "subscription ")

	// NodeManagement service set.
	case *ua.AddNodesRequest:
		b.svc = "AddNodes"
		for i, n := range r.NodesToAdd {
			e := Element{Index: i, Class: opclass.Program, Detail: "parent"}
			if n != nil {
				e.NodeID = c.local(n.ParentNodeID)
				e.Detail = "parent of new " + n.NodeClass.String()
			}
			b.add(e)
		}
		b.whole(len(r.NodesToAdd), opclass.Program, "")
	case *ua.DeleteNodesRequest:
		b.svc = "DeleteNodes"
		for i, n := range r.NodesToDelete {
			e := Element{Index: i, Class: opclass.Program}
			if n != nil {
				e.NodeID = c.resolve(n.NodeID)
			}
			b.add(e)
		}
		b.whole(len(r.NodesToDelete), opclass.Program, "")
	case *ua.AddReferencesRequest:
		b.svc = "AddReferences"
		for i, n := range r.ReferencesToAdd {
			e := Element{Index: i, Class: opclass.Program, Detail: "source"}
			if n != nil {
				e.NodeID = c.resolve(n.SourceNodeID)
			}
			b.add(e)
		}
		b.whole(len(r.ReferencesToAdd), opclass.Program, "")
	case *ua.DeleteReferencesRequest:
		b.svc = "DeleteReferences"
		for i, n := range r.ReferencesToDelete {
			e := Element{Index: i, Class: opclass.Program, Detail: "source"}
			if n != nil {
				e.NodeID = c.resolve(n.SourceNodeID)
			}
			b.add(e)
		}
		b.whole(len(r.ReferencesToDelete), opclass.Program, "")

	// Query service set: denied unless named.
	case *ua.QueryFirstRequest:
		b.svc = "QueryFirst"
		for i, t := range r.NodeTypes {
			e := Element{Index: i, Class: opclass.Unknown, Detail: "type definition"}
			if t != nil {
				e.NodeID = c.local(t.TypeDefinitionNode)
			}
			b.add(e)
		}
		b.whole(len(r.NodeTypes), opclass.Unknown, "")
	case *ua.QueryNextRequest:
		b.svc = "QueryNext"
		b.whole(0, opclass.Unknown, "")

	// Discovery service set: registration is denied unless named; the rest is
	// answered by the gateway itself.
	case *ua.RegisterServerRequest:
		b.svc = "RegisterServer"
		b.whole(0, opclass.Unknown, "")
	case *ua.RegisterServer2Request:
		b.svc = "RegisterServer2"
		b.whole(0, opclass.Unknown, "")
	case *ua.FindServersRequest:
		b.local("FindServers")
	case *ua.FindServersOnNetworkRequest:
		b.local("FindServersOnNetwork")
	case *ua.GetEndpointsRequest:
		b.local("GetEndpoints")

	// SecureChannel and Session service sets: terminated by the gateway.
	case *ua.OpenSecureChannelRequest:
		b.local("OpenSecureChannel")
	case *ua.CloseSecureChannelRequest:
		b.local("CloseSecureChannel")
	case *ua.CreateSessionRequest:
		b.local("CreateSession")
	case *ua.ActivateSessionRequest:
		b.local("ActivateSession")
	case *ua.CloseSessionRequest:
		b.local("CloseSession")
	case *ua.CancelRequest:
		b.local("Cancel")

	default:
		b.svc = fmt.Sprintf("unknown %T", req)
		b.whole(0, opclass.Unknown, "")
	}
	return b.svc, b.dst, nil
}

// isNil reports whether req is nil or a nil pointer in an interface.
func isNil(req ua.Request) bool {
	if req == nil {
		return true
	}
	v := reflect.ValueOf(req)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

type builder struct {
	c   *Classifier
	svc string
	dst []Element
}

func (b *builder) add(e Element) {
	e.Service = b.svc
	b.dst = append(b.dst, e)
}

// whole adds the request-level element when the request had no array
// entries (n == 0): a request always yields at least one element.
func (b *builder) whole(n int, class opclass.Class, detail string) {
	if n == 0 {
		b.add(Element{Index: -1, Class: class, Detail: detail})
	}
}

// ids adds one element per id of an integer-id array.
func (b *builder) ids(ids []uint32, class opclass.Class, prefix string) {
	for i, v := range ids {
		b.add(Element{Index: i, Class: class, Detail: idDetail(prefix, v)})
	}
	b.whole(len(ids), class, "")
}

// local classifies a session or discovery service, which the terminator
// answers itself and never forwards.
func (b *builder) local(svc string) {
	b.svc = svc
	b.whole(0, opclass.Unknown, "answered by the gateway, never forwarded")
}

func idDetail(prefix string, v uint32) string {
	return prefix + strconv.FormatUint(uint64(v), 10)
}

// resolve maps a RegisterNodes alias back to its real NodeId.
func (c *Classifier) resolve(n *ua.NodeID) *ua.NodeID {
	if c == nil || n == nil {
		return n
	}
	return c.Aliases.Resolve(n)
}

// local returns the NodeId of this server that an ExpandedNodeId names, or
// nil: for a node of another server (ServerIndex > 0), and for a namespace
// URI that is not in the server's NamespaceArray (or without a NamespaceMap).
func (c *Classifier) local(e *ua.ExpandedNodeID) *ua.NodeID {
	if e == nil || e.NodeID == nil || e.ServerIndex != 0 {
		return nil
	}
	n := e.NodeID
	if e.NamespaceURI != "" || n.URIFlag() {
		if c == nil {
			return nil
		}
		ns, ok := c.Namespaces.Index(e.NamespaceURI)
		if !ok {
			return nil
		}
		if n = withNamespace(n, ns); n == nil {
			return nil
		}
	}
	return c.resolve(n)
}

// historyUpdateNode returns the NodeId that one HistoryUpdateDetails
// extension object updates, or nil if the body is not a known details type.
func historyUpdateNode(x *ua.ExtensionObject) *ua.NodeID {
	if x == nil {
		return nil
	}
	switch d := x.Value.(type) {
	case *ua.UpdateDataDetails:
		return d.NodeID
	case *ua.UpdateStructureDataDetails:
		return d.NodeID
	case *ua.UpdateEventDetails:
		return d.NodeID
	case *ua.DeleteRawModifiedDetails:
		return d.NodeID
	case *ua.DeleteAtTimeDetails:
		return d.NodeID
	case *ua.DeleteEventDetails:
		return d.NodeID
	case *ua.HistoryUpdateDetails:
		return d.NodeID
	}
	return nil
}

// extName names the body of a history details extension object, for audit.
func extName(x *ua.ExtensionObject) string {
	if x == nil {
		return ""
	}
	switch d := x.Value.(type) {
	case *ua.ReadRawModifiedDetails:
		if d.IsReadModified {
			return "ReadRawModifiedDetails (modified)"
		}
		return "ReadRawModifiedDetails"
	case *ua.ReadEventDetails:
		return "ReadEventDetails"
	case *ua.ReadProcessedDetails:
		return "ReadProcessedDetails"
	case *ua.ReadAtTimeDetails:
		return "ReadAtTimeDetails"
	case *ua.ReadAnnotationDataDetails:
		return "ReadAnnotationDataDetails"
	case *ua.UpdateDataDetails:
		return "UpdateDataDetails"
	case *ua.UpdateStructureDataDetails:
		return "UpdateStructureDataDetails"
	case *ua.UpdateEventDetails:
		return "UpdateEventDetails"
	case *ua.DeleteRawModifiedDetails:
		return "DeleteRawModifiedDetails"
	case *ua.DeleteAtTimeDetails:
		return "DeleteAtTimeDetails"
	case *ua.DeleteEventDetails:
		return "DeleteEventDetails"
	case nil:
		return ""
	}
	return "unknown details"
}
