package opcua

import (
	"errors"
	"testing"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

var (
	num  = ua.NewNumericNodeID
	str  = ua.NewStringNodeID
	ns0  = func(i uint32) *ua.NodeID { return ua.NewNumericNodeID(0, i) }
	b    = func(v byte) *ua.Variant { return ua.MustVariant(v) }
	tank = str(2, "Tank.Level")
)

// el is the expected part of an Element; NodeIds compare by String, so ""
// means nil, and Detail is compared only when set.
type el struct {
	idx    int
	class  opclass.Class
	node   string
	attr   ua.AttributeID
	rng    string
	obj    string
	meth   string
	detail string
}

func call(obj, meth *ua.NodeID, args ...*ua.Variant) *ua.CallMethodRequest {
	return &ua.CallMethodRequest{ObjectID: obj, MethodID: meth, InputArguments: args}
}

func callReq(ms ...*ua.CallMethodRequest) *ua.CallRequest { return &ua.CallRequest{MethodsToCall: ms} }

func historyDetails(v any) *ua.ExtensionObject { return ua.NewExtensionObject(v) }

// whole is the single request-level element of a service without entries.
func whole(c opclass.Class) []el { return []el{{idx: -1, class: c}} }

func TestClassify(t *testing.T) {
	di := NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:plc", DIURI})
	withDI := &Classifier{Namespaces: di}

	tests := []struct {
		name string
		c    *Classifier
		req  ua.Request
		svc  string
		want []el
	}{
		// read
		{"ok/read/read", nil, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
			{NodeID: tank, AttributeID: ua.AttributeIDValue},
			{NodeID: num(2, 7), AttributeID: ua.AttributeIDDisplayName},
			{NodeID: num(2, 8), AttributeID: ua.AttributeIDValue, IndexRange: "1:3"},
		}}, "Read", []el{
			{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level", attr: 13},
			{idx: 1, class: opclass.Read, node: "ns=2;i=7", attr: 4},
			{idx: 2, class: opclass.Read, node: "ns=2;i=8", attr: 13, rng: "1:3"},
		}},
		{"ok/read/read-empty", nil, &ua.ReadRequest{}, "Read", whole(opclass.Read)},
		{"ok/read/read-nil-entry", nil, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{nil}}, "Read",
			[]el{{idx: 0, class: opclass.Read}}},
		{"ok/read/history-read", nil, &ua.HistoryReadRequest{
			HistoryReadDetails: historyDetails(&ua.ReadRawModifiedDetails{}),
			NodesToRead:        []*ua.HistoryReadValueID{{NodeID: tank}, {NodeID: num(2, 9), IndexRange: "0"}},
		}, "HistoryRead", []el{
			{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level", detail: "ReadRawModifiedDetails"},
			{idx: 1, class: opclass.Read, node: "ns=2;i=9", rng: "0"},
		}},
		{"ok/read/browse", nil, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{
			{NodeID: ns0(id.ObjectsFolder)}, {NodeID: tank},
		}}, "Browse", []el{{idx: 0, class: opclass.Read, node: "i=85"}, {idx: 1, class: opclass.Read, node: "ns=2;s=Tank.Level"}}},
		{"ok/read/browse-next", nil, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{{1}, {2}}}, "BrowseNext",
			[]el{{idx: 0, class: opclass.Read}, {idx: 1, class: opclass.Read}}},
		{"ok/read/translate-browse-paths", nil, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{
			{StartingNode: ns0(id.ObjectsFolder), RelativePath: &ua.RelativePath{}},
		}}, "TranslateBrowsePathsToNodeIds", []el{{idx: 0, class: opclass.Read, node: "i=85"}}},
		{"ok/read/register-nodes", nil, &ua.RegisterNodesRequest{NodesToRegister: []*ua.NodeID{tank, num(2, 1)}},
			"RegisterNodes", []el{{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level"}, {idx: 1, class: opclass.Read, node: "ns=2;i=1"}}},
		{"ok/read/unregister-nodes", nil, &ua.UnregisterNodesRequest{NodesToUnregister: []*ua.NodeID{num(2, 900)}},
			"UnregisterNodes", []el{{idx: 0, class: opclass.Read, node: "ns=2;i=900"}}},
		{"ok/read/create-subscription", nil, &ua.CreateSubscriptionRequest{}, "CreateSubscription", whole(opclass.Read)},
		{"ok/read/modify-subscription", nil, &ua.ModifySubscriptionRequest{SubscriptionID: 4}, "ModifySubscription",
			[]el{{idx: -1, class: opclass.Read, detail: "subscription 4"}}},
		{"ok/read/set-publishing-mode", nil, &ua.SetPublishingModeRequest{SubscriptionIDs: []uint32{4, 5}}, "SetPublishingMode",
			[]el{{idx: 0, class: opclass.Read, detail: "subscription 4"}, {idx: 1, class: opclass.Read, detail: "subscription 5"}}},
		{"ok/read/publish", nil, &ua.PublishRequest{SubscriptionAcknowledgements: []*ua.SubscriptionAcknowledgement{{SubscriptionID: 4, SequenceNumber: 1}}},
			"Publish", []el{{idx: 0, class: opclass.Read}}},
		{"ok/read/publish-no-acks", nil, &ua.PublishRequest{}, "Publish", whole(opclass.Read)},
		{"ok/read/republish", nil, &ua.RepublishRequest{SubscriptionID: 4}, "Republish", whole(opclass.Read)},
		{"ok/read/delete-subscriptions", nil, &ua.DeleteSubscriptionsRequest{SubscriptionIDs: []uint32{4}}, "DeleteSubscriptions",
			[]el{{idx: 0, class: opclass.Read}}},
		{"ok/read/create-monitored-items", nil, &ua.CreateMonitoredItemsRequest{ItemsToCreate: []*ua.MonitoredItemCreateRequest{
			{ItemToMonitor: &ua.ReadValueID{NodeID: tank, AttributeID: ua.AttributeIDValue}},
			{ItemToMonitor: &ua.ReadValueID{NodeID: ns0(id.Server), AttributeID: ua.AttributeIDEventNotifier}},
			{ItemToMonitor: &ua.ReadValueID{NodeID: num(2, 3), AttributeID: ua.AttributeIDValue, IndexRange: "2"}},
			{},
		}}, "CreateMonitoredItems", []el{
			{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level", attr: 13},
			{idx: 1, class: opclass.Read, node: "i=2253", attr: 12},
			{idx: 2, class: opclass.Read, node: "ns=2;i=3", attr: 13, rng: "2"},
			{idx: 3, class: opclass.Read},
		}},
		{"ok/read/modify-monitored-items", nil, &ua.ModifyMonitoredItemsRequest{ItemsToModify: []*ua.MonitoredItemModifyRequest{{MonitoredItemID: 7}}},
			"ModifyMonitoredItems", []el{{idx: 0, class: opclass.Read, detail: "monitored item 7"}}},
		{"ok/read/delete-monitored-items", nil, &ua.DeleteMonitoredItemsRequest{MonitoredItemIDs: []uint32{7, 8}}, "DeleteMonitoredItems",
			[]el{{idx: 0, class: opclass.Read}, {idx: 1, class: opclass.Read, detail: "monitored item 8"}}},
		{"ok/read/set-monitoring-mode", nil, &ua.SetMonitoringModeRequest{MonitoredItemIDs: []uint32{7}}, "SetMonitoringMode",
			[]el{{idx: 0, class: opclass.Read}}},
		{"ok/read/set-triggering", nil, &ua.SetTriggeringRequest{LinksToAdd: []uint32{1, 2}, LinksToRemove: []uint32{3}}, "SetTriggering",
			[]el{{idx: 0, class: opclass.Read}, {idx: 1, class: opclass.Read}, {idx: 2, class: opclass.Read, detail: "remove link to item 3"}}},

		// write and control by attribute
		{"ok/write/value", nil, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: tank, AttributeID: ua.AttributeIDValue}}},
			"Write", []el{{idx: 0, class: opclass.Write, node: "ns=2;s=Tank.Level", attr: 13}}},
		{"ok/write/value-index-range", nil, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: tank, AttributeID: ua.AttributeIDValue, IndexRange: "0:1"}}},
			"Write", []el{{idx: 0, class: opclass.Write, node: "ns=2;s=Tank.Level", attr: 13, rng: "0:1"}}},
		{"ok/control/write-display-name", nil, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: tank, AttributeID: ua.AttributeIDDisplayName}}},
			"Write", []el{{idx: 0, class: opclass.Control, node: "ns=2;s=Tank.Level", attr: 4}}},
		{"ok/control/write-access-level", nil, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: tank, AttributeID: ua.AttributeIDAccessLevel}}},
			"Write", []el{{idx: 0, class: opclass.Control, attr: ua.AttributeIDAccessLevel, node: "ns=2;s=Tank.Level"}}},
		{"ok/write/mixed-keeps-order", nil, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
			{NodeID: num(2, 1), AttributeID: ua.AttributeIDValue},
			{NodeID: num(2, 2), AttributeID: ua.AttributeIDDescription},
			nil,
			{NodeID: num(2, 3), AttributeID: ua.AttributeIDValue},
		}}, "Write", []el{
			{idx: 0, class: opclass.Write, node: "ns=2;i=1", attr: 13},
			{idx: 1, class: opclass.Control, node: "ns=2;i=2", attr: 5},
			{idx: 2, class: opclass.Control},
			{idx: 3, class: opclass.Write, node: "ns=2;i=3", attr: 13},
		}},
		{"ok/write/empty", nil, &ua.WriteRequest{}, "Write", whole(opclass.Write)},

		// Call
		{"ok/control/call-ordinary", nil, callReq(call(num(2, 10), num(2, 11))), "Call",
			[]el{{idx: 0, class: opclass.Control, obj: "ns=2;i=10", meth: "ns=2;i=11"}}},
		{"ok/control/call-ns0-ordinary", nil, callReq(call(ns0(id.Server), ns0(id.Server_RequestServerStateChange))), "Call",
			[]el{{idx: 0, class: opclass.Control, obj: "i=2253", meth: "i=12886"}}},
		{"ok/control/call-program-state-machine-start", nil, callReq(call(num(2, 10), ns0(id.ProgramStateMachineType_Start))), "Call",
			[]el{{idx: 0, class: opclass.Control}}},
		{"ok/program/call-filetype-write-instance-object", nil, callReq(call(str(2, "Recipe.csv"), ns0(id.FileType_Write), b(1))), "Call",
			[]el{{idx: 0, class: opclass.Program, obj: "ns=2;s=Recipe.csv", meth: "i=11588", detail: "FileType_Write"}}},
		{"ok/program/call-filetype-write-four-byte-encoding", nil, callReq(call(str(2, "Recipe.csv"), ua.NewFourByteNodeID(0, id.FileType_Write))), "Call",
			[]el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-close", nil, callReq(call(str(2, "f"), ns0(id.FileType_Close))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-set-position", nil, callReq(call(str(2, "f"), ns0(id.FileType_SetPosition))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/control/call-filetype-read", nil, callReq(call(str(2, "f"), ns0(id.FileType_Read))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/control/call-filetype-get-position", nil, callReq(call(str(2, "f"), ns0(id.FileType_GetPosition))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/control/call-filetype-open-read", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), b(1))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/program/call-filetype-open-write", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), b(2))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-read-write", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), b(3))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-erase", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), b(5))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-append", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), b(9))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-no-mode", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-mode-not-byte", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), ua.MustVariant(uint32(1)))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-filetype-open-nil-mode", nil, callReq(call(str(2, "f"), ns0(id.FileType_Open), nil)), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-trustlist-instance-write", nil, callReq(call(ns0(id.ServerConfiguration_CertificateGroups_DefaultApplicationGroup_TrustList),
			ns0(id.ServerConfiguration_CertificateGroups_DefaultApplicationGroup_TrustList_Write))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-trustlist-close-and-update", nil, callReq(call(str(2, "tl"), ns0(id.TrustListType_CloseAndUpdate))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-temporary-generate-file-for-write", nil, callReq(call(str(2, "t"), ns0(id.TemporaryFileTransferType_GenerateFileForWrite))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-temporary-close-and-commit", nil, callReq(call(str(2, "t"), ns0(id.TemporaryFileTransferType_CloseAndCommit))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/control/call-temporary-generate-file-for-read", nil, callReq(call(str(2, "t"), ns0(id.TemporaryFileTransferType_GenerateFileForRead))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/program/call-file-directory-create-file", nil, callReq(call(str(2, "d"), ns0(id.FileDirectoryType_CreateFile))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-file-directory-delete", nil, callReq(call(str(2, "d"), ns0(id.FileDirectoryType_DeleteFileSystemObject))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-di-install-software-package", withDI, callReq(call(num(1, 5), num(2, 265))), "Call",
			[]el{{idx: 0, class: opclass.Program, detail: "DI:InstallationStateMachineType_InstallSoftwarePackage"}}},
		{"ok/program/call-di-prepare", withDI, callReq(call(num(1, 5), num(2, 228))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-di-generate-file-for-write", withDI, callReq(call(num(1, 5), num(2, 145))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/program/call-di-confirm", withDI, callReq(call(num(1, 5), num(2, 321))), "Call", []el{{idx: 0, class: opclass.Program}}},
		{"ok/control/call-di-document-read", withDI, callReq(call(num(1, 5), num(2, 63))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/control/call-di-id-in-other-namespace", withDI, callReq(call(num(1, 5), num(1, 265))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/control/call-di-without-namespace-map", nil, callReq(call(num(1, 5), num(2, 265))), "Call", []el{{idx: 0, class: opclass.Control}}},
		{"ok/call/mixed-keeps-order", nil, callReq(
			call(num(2, 10), num(2, 11)),
			call(str(2, "f"), ns0(id.FileType_Write)),
			nil,
		), "Call", []el{{idx: 0, class: opclass.Control}, {idx: 1, class: opclass.Program}, {idx: 2, class: opclass.Control}}},
		{"ok/call/empty", nil, callReq(), "Call", whole(opclass.Control)},

		// program
		{"ok/program/add-nodes", withDI, &ua.AddNodesRequest{NodesToAdd: []*ua.AddNodesItem{
			{ParentNodeID: ua.NewNumericExpandedNodeID(2, 5), NodeClass: ua.NodeClassVariable},
			{ParentNodeID: ua.NewExpandedNodeID(num(9, 5), DIURI, 0)},
			{ParentNodeID: ua.NewExpandedNodeID(num(9, 5), "urn:elsewhere", 0)},
			{ParentNodeID: ua.NewExpandedNodeID(num(2, 5), "", 3)},
			nil,
		}}, "AddNodes", []el{
			{idx: 0, class: opclass.Program, node: "ns=2;i=5", detail: "parent of new NodeClassVariable"},
			{idx: 1, class: opclass.Program, node: "ns=2;i=5"},
			{idx: 2, class: opclass.Program},
			{idx: 3, class: opclass.Program},
			{idx: 4, class: opclass.Program},
		}},
		{"ok/program/delete-nodes", nil, &ua.DeleteNodesRequest{NodesToDelete: []*ua.DeleteNodesItem{{NodeID: tank}}}, "DeleteNodes",
			[]el{{idx: 0, class: opclass.Program, node: "ns=2;s=Tank.Level"}}},
		{"ok/program/add-references", nil, &ua.AddReferencesRequest{ReferencesToAdd: []*ua.AddReferencesItem{{SourceNodeID: tank}}}, "AddReferences",
			[]el{{idx: 0, class: opclass.Program, node: "ns=2;s=Tank.Level"}}},
		{"ok/program/delete-references", nil, &ua.DeleteReferencesRequest{ReferencesToDelete: []*ua.DeleteReferencesItem{{SourceNodeID: tank}}}, "DeleteReferences",
			[]el{{idx: 0, class: opclass.Program, node: "ns=2;s=Tank.Level"}}},
		{"ok/program/history-update", nil, &ua.HistoryUpdateRequest{HistoryUpdateDetails: []*ua.ExtensionObject{
			historyDetails(&ua.UpdateDataDetails{NodeID: tank}),
			historyDetails(&ua.DeleteRawModifiedDetails{NodeID: num(2, 4)}),
			nil,
		}}, "HistoryUpdate", []el{
			{idx: 0, class: opclass.Program, node: "ns=2;s=Tank.Level", detail: "UpdateDataDetails"},
			{idx: 1, class: opclass.Program, node: "ns=2;i=4", detail: "DeleteRawModifiedDetails"},
			{idx: 2, class: opclass.Program},
		}},
		{"ok/program/history-update-empty", nil, &ua.HistoryUpdateRequest{}, "HistoryUpdate", whole(opclass.Program)},

		// unknown
		{"ok/unknown/transfer-subscriptions", nil, &ua.TransferSubscriptionsRequest{SubscriptionIDs: []uint32{4}}, "TransferSubscriptions",
			[]el{{idx: 0, class: opclass.Unknown}}},
		{"ok/unknown/transfer-subscriptions-empty", nil, &ua.TransferSubscriptionsRequest{}, "TransferSubscriptions", whole(opclass.Unknown)},
		{"ok/unknown/query-first", nil, &ua.QueryFirstRequest{NodeTypes: []*ua.NodeTypeDescription{{TypeDefinitionNode: ua.NewNumericExpandedNodeID(0, id.BaseObjectType)}}},
			"QueryFirst", []el{{idx: 0, class: opclass.Unknown, node: "i=58"}}},
		{"ok/unknown/query-next", nil, &ua.QueryNextRequest{}, "QueryNext", whole(opclass.Unknown)},
		{"ok/unknown/register-server", nil, &ua.RegisterServerRequest{}, "RegisterServer", whole(opclass.Unknown)},
		{"ok/unknown/register-server2", nil, &ua.RegisterServer2Request{}, "RegisterServer2", whole(opclass.Unknown)},
		{"ok/unknown/find-servers", nil, &ua.FindServersRequest{}, "FindServers", whole(opclass.Unknown)},
		{"ok/unknown/find-servers-on-network", nil, &ua.FindServersOnNetworkRequest{}, "FindServersOnNetwork", whole(opclass.Unknown)},
		{"ok/unknown/get-endpoints", nil, &ua.GetEndpointsRequest{}, "GetEndpoints", whole(opclass.Unknown)},
		{"ok/unknown/open-secure-channel", nil, &ua.OpenSecureChannelRequest{}, "OpenSecureChannel", whole(opclass.Unknown)},
		{"ok/unknown/close-secure-channel", nil, &ua.CloseSecureChannelRequest{}, "CloseSecureChannel", whole(opclass.Unknown)},
		{"ok/unknown/create-session", nil, &ua.CreateSessionRequest{}, "CreateSession", whole(opclass.Unknown)},
		{"ok/unknown/activate-session", nil, &ua.ActivateSessionRequest{}, "ActivateSession", whole(opclass.Unknown)},
		{"ok/unknown/close-session", nil, &ua.CloseSessionRequest{}, "CloseSession", whole(opclass.Unknown)},
		{"ok/unknown/cancel", nil, &ua.CancelRequest{}, "Cancel", whole(opclass.Unknown)},
		{"ok/unknown/foreign-request-type", nil, &foreignRequest{}, "unknown *opcua.foreignRequest", whole(opclass.Unknown)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, got, err := tt.c.Classify(tt.req)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if svc != tt.svc {
				t.Errorf("service = %q; want %q", svc, tt.svc)
			}
			checkElements(t, svc, got, tt.want)
		})
	}
}

func checkElements(t *testing.T, svc string, got []Element, want []el) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d elements %+v; want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Index != w.idx || g.Class != w.class || g.Service != svc {
			t.Errorf("element %d: index %d class %v service %q; want %d %v %q", i, g.Index, g.Class, g.Service, w.idx, w.class, svc)
		}
		if w.node != "" || w.attr != 0 || w.rng != "" || w.obj != "" || w.meth != "" {
			if g.NodeID.String() != w.node || g.Attribute != w.attr || g.IndexRange != w.rng {
				t.Errorf("element %d: node %q attr %d range %q; want %q %d %q", i, g.NodeID.String(), g.Attribute, g.IndexRange, w.node, w.attr, w.rng)
			}
			if g.ObjectID.String() != w.obj || g.MethodID.String() != w.meth {
				t.Errorf("element %d: object %q method %q; want %q %q", i, g.ObjectID.String(), g.MethodID.String(), w.obj, w.meth)
			}
		}
		if w.detail != "" && g.Detail != w.detail {
			t.Errorf("element %d: detail %q; want %q", i, g.Detail, w.detail)
		}
	}
}

// foreignRequest is a ua.Request this package does not know.
type foreignRequest struct{ h *ua.RequestHeader }

func (r *foreignRequest) Header() *ua.RequestHeader     { return r.h }
func (r *foreignRequest) SetHeader(h *ua.RequestHeader) { r.h = h }

func TestClassifyNil(t *testing.T) {
	tests := []struct {
		name string
		req  ua.Request
	}{
		{"fail/nil-request", nil},
		{"fail/typed-nil-read", (*ua.ReadRequest)(nil)},
		{"fail/typed-nil-call", (*ua.CallRequest)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, elems, err := Classify(tt.req)
			if !errors.Is(err, ErrNilRequest) || len(elems) != 0 {
				t.Fatalf("Classify = %v, %v; want ErrNilRequest and no elements", elems, err)
			}
		})
	}
}

// The side doors of PROTOCOLS.md: aliases, instance method ids, type-level
// method ids on instance objects.
func TestSideDoors(t *testing.T) {
	var aliases AliasMap
	var methods MethodMap
	c := &Classifier{Aliases: &aliases, Methods: &methods}
	mustNil(t, aliases.Register(num(2, 900), tank))
	mustNil(t, aliases.Register(num(2, 901), ns0(id.FileType_Write)))
	mustNil(t, methods.Learn(str(3, "Recipe.Write"), ns0(id.FileType_Write)))
	mustNil(t, methods.Learn(str(3, "Recipe.Open"), ns0(id.FileType_Open)))

	tests := []struct {
		name string
		req  ua.Request
		want []el
	}{
		{"ok/alias/read-resolves-to-real", &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: num(2, 900), AttributeID: 13}}},
			[]el{{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level", attr: 13}}},
		{"ok/alias/four-byte-encoding-resolves", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: ua.NewFourByteNodeID(2, 900), AttributeID: 13}}},
			[]el{{idx: 0, class: opclass.Write, node: "ns=2;s=Tank.Level", attr: 13}}},
		{"ok/alias/monitored-item-resolves", &ua.CreateMonitoredItemsRequest{ItemsToCreate: []*ua.MonitoredItemCreateRequest{
			{ItemToMonitor: &ua.ReadValueID{NodeID: num(2, 900), AttributeID: 13}}}},
			[]el{{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level", attr: 13}}},
		{"ok/alias/unregister-resolves", &ua.UnregisterNodesRequest{NodesToUnregister: []*ua.NodeID{num(2, 900)}},
			[]el{{idx: 0, class: opclass.Read, node: "ns=2;s=Tank.Level"}}},
		{"ok/alias/method-alias-of-filetype-write-is-program", callReq(call(str(2, "f"), num(2, 901))),
			[]el{{idx: 0, class: opclass.Program, obj: "ns=2;s=f", meth: "i=11588"}}},
		{"ok/alias/object-alias-resolves", callReq(call(num(2, 900), num(2, 11))),
			[]el{{idx: 0, class: opclass.Control, obj: "ns=2;s=Tank.Level", meth: "ns=2;i=11"}}},
		{"ok/learned/instance-write-is-program", callReq(call(str(3, "Recipe"), str(3, "Recipe.Write"))),
			[]el{{idx: 0, class: opclass.Program, obj: "ns=3;s=Recipe", meth: "ns=3;s=Recipe.Write", detail: "FileType_Write"}}},
		{"ok/learned/instance-open-read-is-control", callReq(call(str(3, "Recipe"), str(3, "Recipe.Open"), b(1))),
			[]el{{idx: 0, class: opclass.Control}}},
		{"ok/learned/instance-open-write-is-program", callReq(call(str(3, "Recipe"), str(3, "Recipe.Open"), b(6))),
			[]el{{idx: 0, class: opclass.Program}}},
		{"ok/unlearned/instance-write-is-control", callReq(call(str(3, "Other"), str(3, "Other.Write"))),
			[]el{{idx: 0, class: opclass.Control}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, got, err := c.Classify(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			checkElements(t, svc, got, tt.want)
		})
	}

	t.Run("ok/alias/unregistered-is-itself", func(t *testing.T) {
		aliases.Unregister(num(2, 900))
		_, got, _ := c.Classify(&ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: num(2, 900)}}})
		if got[0].NodeID.String() != "ns=2;i=900" {
			t.Fatalf("NodeID = %v after Unregister; want ns=2;i=900", got[0].NodeID)
		}
	})
}

func TestAppendReuses(t *testing.T) {
	dst := make([]Element, 0, 8)
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: tank}, {NodeID: tank}}}
	var c Classifier
	_, got, _ := c.Append(dst, req)
	_, got2, _ := c.Append(got, &ua.CreateSubscriptionRequest{})
	if &got[0] != &dst[:1][0] || len(got2) != 1 || got2[0].Index != -1 || got2[0].Service != "CreateSubscription" {
		t.Fatalf("Append did not reuse dst[:0]: %+v", got2)
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
