package opcua

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// fuzzTypes are the request types gopcua v0.8.0 decodes.
var fuzzTypes = []func() ua.Request{
	func() ua.Request { return new(ua.ReadRequest) },
	func() ua.Request { return new(ua.WriteRequest) },
	func() ua.Request { return new(ua.CallRequest) },
	func() ua.Request { return new(ua.BrowseRequest) },
	func() ua.Request { return new(ua.BrowseNextRequest) },
	func() ua.Request { return new(ua.TranslateBrowsePathsToNodeIDsRequest) },
	func() ua.Request { return new(ua.RegisterNodesRequest) },
	func() ua.Request { return new(ua.UnregisterNodesRequest) },
	func() ua.Request { return new(ua.HistoryReadRequest) },
	func() ua.Request { return new(ua.HistoryUpdateRequest) },
	func() ua.Request { return new(ua.CreateMonitoredItemsRequest) },
	func() ua.Request { return new(ua.ModifyMonitoredItemsRequest) },
	func() ua.Request { return new(ua.SetMonitoringModeRequest) },
	func() ua.Request { return new(ua.SetTriggeringRequest) },
	func() ua.Request { return new(ua.DeleteMonitoredItemsRequest) },
	func() ua.Request { return new(ua.CreateSubscriptionRequest) },
	func() ua.Request { return new(ua.ModifySubscriptionRequest) },
	func() ua.Request { return new(ua.SetPublishingModeRequest) },
	func() ua.Request { return new(ua.PublishRequest) },
	func() ua.Request { return new(ua.RepublishRequest) },
	func() ua.Request { return new(ua.TransferSubscriptionsRequest) },
	func() ua.Request { return new(ua.DeleteSubscriptionsRequest) },
	func() ua.Request { return new(ua.AddNodesRequest) },
	func() ua.Request { return new(ua.AddReferencesRequest) },
	func() ua.Request { return new(ua.DeleteNodesRequest) },
	func() ua.Request { return new(ua.DeleteReferencesRequest) },
	func() ua.Request { return new(ua.QueryFirstRequest) },
	func() ua.Request { return new(ua.QueryNextRequest) },
	func() ua.Request { return new(ua.RegisterServerRequest) },
	func() ua.Request { return new(ua.RegisterServer2Request) },
	func() ua.Request { return new(ua.FindServersRequest) },
	func() ua.Request { return new(ua.FindServersOnNetworkRequest) },
	func() ua.Request { return new(ua.GetEndpointsRequest) },
	func() ua.Request { return new(ua.OpenSecureChannelRequest) },
	func() ua.Request { return new(ua.CloseSecureChannelRequest) },
	func() ua.Request { return new(ua.CreateSessionRequest) },
	func() ua.Request { return new(ua.ActivateSessionRequest) },
	func() ua.Request { return new(ua.CloseSessionRequest) },
	func() ua.Request { return new(ua.CancelRequest) },
}

// entries returns the length of req's per-item array, or -1 if its service
// has none; it is written apart from Classify on purpose.
func entries(req ua.Request) int {
	switch r := req.(type) {
	case *ua.ReadRequest:
		return len(r.NodesToRead)
	case *ua.WriteRequest:
		return len(r.NodesToWrite)
	case *ua.CallRequest:
		return len(r.MethodsToCall)
	case *ua.BrowseRequest:
		return len(r.NodesToBrowse)
	case *ua.BrowseNextRequest:
		return len(r.ContinuationPoints)
	case *ua.TranslateBrowsePathsToNodeIDsRequest:
		return len(r.BrowsePaths)
	case *ua.RegisterNodesRequest:
		return len(r.NodesToRegister)
	case *ua.UnregisterNodesRequest:
		return len(r.NodesToUnregister)
	case *ua.HistoryReadRequest:
		return len(r.NodesToRead)
	case *ua.HistoryUpdateRequest:
		return len(r.HistoryUpdateDetails)
	case *ua.CreateMonitoredItemsRequest:
		return len(r.ItemsToCreate)
	case *ua.ModifyMonitoredItemsRequest:
		return len(r.ItemsToModify)
	case *ua.SetMonitoringModeRequest:
		return len(r.MonitoredItemIDs)
	case *ua.SetTriggeringRequest:
		return len(r.LinksToAdd) + len(r.LinksToRemove)
	case *ua.DeleteMonitoredItemsRequest:
		return len(r.MonitoredItemIDs)
	case *ua.SetPublishingModeRequest:
		return len(r.SubscriptionIDs)
	case *ua.PublishRequest:
		return len(r.SubscriptionAcknowledgements)
	case *ua.TransferSubscriptionsRequest:
		return len(r.SubscriptionIDs)
	case *ua.DeleteSubscriptionsRequest:
		return len(r.SubscriptionIDs)
	case *ua.AddNodesRequest:
		return len(r.NodesToAdd)
	case *ua.AddReferencesRequest:
		return len(r.ReferencesToAdd)
	case *ua.DeleteNodesRequest:
		return len(r.NodesToDelete)
	case *ua.DeleteReferencesRequest:
		return len(r.ReferencesToDelete)
	case *ua.QueryFirstRequest:
		return len(r.NodeTypes)
	}
	return -1
}

// serviceClass is the class of every element of the services whose class
// does not depend on the element.
var serviceClass = map[string]opclass.Class{
	"Read": opclass.Read, "Browse": opclass.Read, "BrowseNext": opclass.Read,
	"TranslateBrowsePathsToNodeIds": opclass.Read, "RegisterNodes": opclass.Read, "UnregisterNodes": opclass.Read,
	"HistoryRead": opclass.Read, "CreateMonitoredItems": opclass.Read, "ModifyMonitoredItems": opclass.Read,
	"SetMonitoringMode": opclass.Read, "SetTriggering": opclass.Read, "DeleteMonitoredItems": opclass.Read,
	"CreateSubscription": opclass.Read, "ModifySubscription": opclass.Read, "SetPublishingMode": opclass.Read,
	"Publish": opclass.Read, "Republish": opclass.Read, "DeleteSubscriptions": opclass.Read,
	"HistoryUpdate": opclass.Program, "AddNodes": opclass.Program, "AddReferences": opclass.Program,
	"DeleteNodes": opclass.Program, "DeleteReferences": opclass.Program,
	"TransferSubscriptions": opclass.Unknown, "QueryFirst": opclass.Unknown, "QueryNext": opclass.Unknown,
	"RegisterServer": opclass.Unknown, "RegisterServer2": opclass.Unknown, "FindServers": opclass.Unknown,
	"FindServersOnNetwork": opclass.Unknown, "GetEndpoints": opclass.Unknown, "OpenSecureChannel": opclass.Unknown,
	"CloseSecureChannel": opclass.Unknown, "CreateSession": opclass.Unknown, "ActivateSession": opclass.Unknown,
	"CloseSession": opclass.Unknown, "Cancel": opclass.Unknown,
}

// fuzzClassifier knows aliases of every kind, learned methods and the DI
// namespace, so that decoded requests reach every lookup.
func fuzzClassifier(tb testing.TB) *Classifier {
	c := &Classifier{
		Aliases:    new(AliasMap),
		Methods:    new(MethodMap),
		Namespaces: NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:plc", DIURI, "urn:plc:3"}),
	}
	for _, err := range []error{
		c.Aliases.Register(num(2, 900), tank),
		c.Aliases.Register(num(2, 901), ns0(id.FileType_Write)),
		c.Aliases.Register(str(2, "a"), num(2, 7)),
		c.Aliases.Register(ua.NewGUIDNodeID(2, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), num(2, 8)),
		c.Aliases.Register(ua.NewByteStringNodeID(2, []byte{1}), num(2, 9)),
		c.Methods.Learn(str(3, "Recipe.Write"), ns0(id.FileType_Write)),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

func checkInvariants(t *testing.T, c *Classifier, req ua.Request, svc string, elems []Element, err error) {
	t.Helper()
	if err != nil || svc == "" {
		t.Fatalf("Classify = %q, %v", svc, err)
	}
	n := entries(req)
	if n <= 0 {
		if len(elems) != 1 || elems[0].Index != -1 {
			t.Fatalf("%s without entries: %+v; want one request-level element", svc, elems)
		}
	} else if len(elems) != n {
		t.Fatalf("%s: %d elements for %d entries", svc, len(elems), n)
	}
	for i, e := range elems {
		if n > 0 && e.Index != i {
			t.Fatalf("%s: element %d has index %d", svc, i, e.Index)
		}
		if e.Service != svc || strings.HasPrefix(e.Class.String(), "class(") {
			t.Fatalf("%s: element %d: service %q class %v", svc, i, e.Service, e.Class)
		}
		if want, ok := serviceClass[svc]; ok && e.Class != want {
			t.Fatalf("%s: element %d is %v; want %v", svc, i, e.Class, want)
		}
	}
	switch r := req.(type) {
	case *ua.WriteRequest:
		for i, w := range r.NodesToWrite {
			want := opclass.Control
			if w != nil && w.AttributeID == ua.AttributeIDValue {
				want = opclass.Write
			}
			if elems[i].Class != want {
				t.Fatalf("Write element %d (attribute %d) is %v; want %v", i, elems[i].Attribute, elems[i].Class, want)
			}
		}
	case *ua.CallRequest:
		for i, e := range elems {
			m := e.MethodID
			if c != nil {
				if t := c.Methods.TypeMethod(m); t != nil {
					m = t
				}
			}
			if e.Index >= 0 && isNumeric(m, 0, id.FileType_Write) && e.Class != opclass.Program {
				t.Fatalf("Call element %d of FileType Write is %v", i, e.Class)
			}
			if e.Index >= 0 && r.MethodsToCall[i] == nil && e.Class != opclass.Control {
				t.Fatalf("nil Call element %d is %v", i, e.Class)
			}
		}
	}
}

func hdr() *ua.RequestHeader {
	return &ua.RequestHeader{
		AuthenticationToken: ua.NewNumericNodeID(0, 7),
		Timestamp:           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		RequestHandle:       42,
		TimeoutHint:         10000,
		AdditionalHeader:    ua.NewExtensionObject(nil),
	}
}

func qn(s string) *ua.QualifiedName { return &ua.QualifiedName{NamespaceIndex: 2, Name: s} }

func dv(v any) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
}

// richSeeds are complete requests as a client encodes them.
func richSeeds() []ua.Request {
	return []ua.Request{
		&ua.ReadRequest{RequestHeader: hdr(), NodesToRead: []*ua.ReadValueID{
			{NodeID: num(2, 7), AttributeID: 13, IndexRange: "1:2", DataEncoding: qn("")},
			{NodeID: tank, AttributeID: 13, DataEncoding: qn("")},
			{NodeID: num(2, 900), AttributeID: 4, DataEncoding: qn("")},
		}},
		&ua.WriteRequest{RequestHeader: hdr(), NodesToWrite: []*ua.WriteValue{
			{NodeID: num(2, 900), AttributeID: 13, Value: dv(int32(5))},
			{NodeID: tank, AttributeID: 4, Value: dv(ua.NewLocalizedText("x"))},
			{NodeID: num(2, 7), AttributeID: 13, IndexRange: "0", Value: dv([]float64{1, 2})},
		}},
		&ua.CallRequest{RequestHeader: hdr(), MethodsToCall: []*ua.CallMethodRequest{
			{ObjectID: str(2, "f"), MethodID: ns0(id.FileType_Write), InputArguments: []*ua.Variant{ua.MustVariant(uint32(1)), ua.MustVariant([]byte{1, 2})}},
			{ObjectID: str(2, "f"), MethodID: ns0(id.FileType_Open), InputArguments: []*ua.Variant{ua.MustVariant(byte(2))}},
			{ObjectID: str(2, "f"), MethodID: ns0(id.FileType_Open), InputArguments: []*ua.Variant{ua.MustVariant(byte(1))}},
			{ObjectID: num(2, 900), MethodID: num(2, 901)},
			{ObjectID: str(3, "Recipe"), MethodID: str(3, "Recipe.Write")},
			{ObjectID: num(1, 5), MethodID: num(2, 265)},
		}},
		&ua.BrowseRequest{RequestHeader: hdr(), View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
			NodesToBrowse: []*ua.BrowseDescription{{NodeID: ns0(id.ObjectsFolder), ReferenceTypeID: ns0(id.HierarchicalReferences)}}},
		&ua.CreateMonitoredItemsRequest{RequestHeader: hdr(), SubscriptionID: 1, ItemsToCreate: []*ua.MonitoredItemCreateRequest{
			{ItemToMonitor: &ua.ReadValueID{NodeID: str(2, "a"), AttributeID: 13, DataEncoding: qn("")},
				RequestedParameters: &ua.MonitoringParameters{Filter: ua.NewExtensionObject(nil)}},
		}},
		&ua.HistoryReadRequest{RequestHeader: hdr(),
			HistoryReadDetails: ua.NewExtensionObject(&ua.ReadRawModifiedDetails{NumValuesPerNode: 10}),
			NodesToRead:        []*ua.HistoryReadValueID{{NodeID: tank, DataEncoding: qn("")}}},
		&ua.HistoryUpdateRequest{RequestHeader: hdr(), HistoryUpdateDetails: []*ua.ExtensionObject{
			ua.NewExtensionObject(&ua.UpdateDataDetails{NodeID: tank, PerformInsertReplace: 1, UpdateValues: []*ua.DataValue{dv(1.5)}}),
			ua.NewExtensionObject(&ua.DeleteAtTimeDetails{NodeID: num(2, 4), ReqTimes: []time.Time{time.Unix(1, 0)}}),
		}},
		&ua.AddNodesRequest{RequestHeader: hdr(), NodesToAdd: []*ua.AddNodesItem{{
			ParentNodeID:       ua.NewExpandedNodeID(num(9, 5), DIURI, 0),
			ReferenceTypeID:    ns0(id.Organizes),
			RequestedNewNodeID: ua.NewNumericExpandedNodeID(2, 100),
			BrowseName:         qn("x"),
			NodeClass:          ua.NodeClassObject,
			NodeAttributes:     ua.NewExtensionObject(nil),
			TypeDefinition:     ua.NewNumericExpandedNodeID(0, id.BaseObjectType),
		}}},
		&ua.PublishRequest{RequestHeader: hdr(), SubscriptionAcknowledgements: []*ua.SubscriptionAcknowledgement{{SubscriptionID: 1, SequenceNumber: 2}}},
		&ua.SetTriggeringRequest{RequestHeader: hdr(), SubscriptionID: 1, TriggeringItemID: 2, LinksToAdd: []uint32{3}, LinksToRemove: []uint32{4, 5}},
		&ua.RegisterNodesRequest{RequestHeader: hdr(), NodesToRegister: []*ua.NodeID{tank, num(2, 900)}},
		&ua.TransferSubscriptionsRequest{RequestHeader: hdr(), SubscriptionIDs: []uint32{1}},
	}
}

func kindOfRequest(req ua.Request) uint8 {
	for i, f := range fuzzTypes {
		if reflect.TypeOf(f()) == reflect.TypeOf(req) {
			return uint8(i)
		}
	}
	panic("request type not in fuzzTypes")
}

func FuzzClassify(f *testing.F) {
	h, err := ua.Encode(hdr())
	if err != nil {
		f.Fatal(err)
	}
	// Every type: a header and zeros, which decodes as empty arrays and
	// null fields.
	for i := range fuzzTypes {
		f.Add(uint8(i), append(append([]byte(nil), h...), make([]byte, 128)...))
	}
	for _, req := range richSeeds() {
		b, err := ua.Encode(req)
		if err != nil {
			f.Fatalf("encoding seed %T: %v", req, err)
		}
		if _, err := ua.Decode(b, reflect.New(reflect.TypeOf(req).Elem()).Interface()); err != nil {
			f.Fatalf("seed %T does not decode: %v", req, err)
		}
		f.Add(kindOfRequest(req), b)
	}
	c := fuzzClassifier(f)
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		req := fuzzTypes[int(kind)%len(fuzzTypes)]()
		if checkBody(data, reflect.TypeOf(req)) != nil {
			return // DecodeRequest refuses it: gopcua might allocate far past the input or panic
		}
		cl := c
		if _, err := ua.Decode(data, req); err != nil {
			// A failed decode leaves a partial request behind. The
			// terminator never classifies one, but Classify must not
			// panic on it either; without maps it touches no GUID text.
			cl = nil
		}
		svc, elems, err := cl.Classify(req)
		checkInvariants(t, cl, req, svc, elems, err)
	})
}

// TestFuzzSeedsClassify runs the invariants over the rich seeds themselves,
// so that plain go test checks what the seeds mean.
func TestFuzzSeedsClassify(t *testing.T) {
	c := fuzzClassifier(t)
	for _, req := range richSeeds() {
		svc, elems, err := c.Classify(req)
		checkInvariants(t, c, req, svc, elems, err)
	}
}

// The production guard must see the two ways gopcua v0.8.0's decoder fails
// on small hostile input, tell them from plain truncation, and let real
// requests through.
func TestDecodeHazard(t *testing.T) {
	h, err := ua.Encode(hdr())
	if err != nil {
		t.Fatal(err)
	}
	le := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	readT := reflect.TypeOf(new(ua.ReadRequest))
	callT := reflect.TypeOf(new(ua.CallRequest))
	tests := []struct {
		name   string
		data   []byte
		t      reflect.Type
		hazard bool // refused as a hazard
		ok     bool // accepted
	}{
		// MaxAge, TimestampsToReturn, then a NodesToRead count of 2^29.
		{"fail/huge-array-count", cat(h, make([]byte, 12), le(1<<29)), readT, true, false},
		// One CallMethodRequest with null ObjectId and MethodId (two-byte
		// i=0) and one InputArgument: an Int32 array of length -2.
		{"fail/negative-variant-array", cat(h, le(1), []byte{0, 0, 0, 0}, le(1), []byte{0x86}, le(0xfffffffe)), callT, true, false},
		// Refused, but only as truncated: gopcua's allocation stays small.
		{"fail/small-count-beyond-input", cat(h, make([]byte, 12), le(3)), readT, false, false},
		{"ok/null-array", cat(h, make([]byte, 12), le(0xffffffff)), readT, false, true},
	}
	for _, req := range richSeeds() {
		b, err := ua.Encode(req)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name   string
			data   []byte
			t      reflect.Type
			hazard bool
			ok     bool
		}{"ok/seed-" + reflect.TypeOf(req).Elem().Name(), b, reflect.TypeOf(req), false, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBody(tt.data, tt.t)
			if (err == nil) != tt.ok || (err != nil && err.hazard != tt.hazard) {
				t.Fatalf("checkBody = %+v; want ok %v, hazard %v", err, tt.ok, tt.hazard)
			}
		})
	}
	// The negative Variant length really does panic in gopcua v0.8.0; if a
	// newer version stops panicking, this guard can go.
	t.Run("ok/gopcua-still-panics-on-negative-variant-array", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Log("gopcua no longer panics on a negative Variant array length")
			}
		}()
		var v ua.Variant
		_, _ = v.Decode([]byte{0x86, 0xfe, 0xff, 0xff, 0xff})
	})
}

// decodeAllocBound is what decoding a body of n bytes may allocate, as
// heapAllocated sees it: a decoded request takes some hundred bytes per
// encoded element and gopcua's reflection adds its own; a hazard past the
// guard costs gigabytes.
func decodeAllocBound(n int) uint64 { return 4<<20 + 1024*uint64(n) }

// heapAllocated runs f and returns about the bytes it allocated. It reads
// runtime/metrics rather than MemStats, which stops the world for longer
// than most decodes take; the metric counts small objects only when their
// span is swapped, an error of a few hundred KiB that the bound allows for,
// while large allocations, the ones that matter, count at once.
func heapAllocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

func FuzzDecodeRequest(f *testing.F) {
	for _, req := range richSeeds() {
		b, err := EncodeRequest(nil, req)
		if err != nil {
			f.Fatalf("encoding seed %T: %v", req, err)
		}
		f.Add(b)
	}
	for _, b := range forgedBodies(f) {
		f.Add(b)
	}
	c := fuzzClassifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := checkDecode(t, data, DecodeRequest, EncodeRequest)
		if req != nil {
			svc, elems, err := c.Classify(req)
			checkInvariants(t, c, req, svc, elems, err)
		}
	})
}

// FuzzDecodeResponse is FuzzDecodeRequest for what a PLC answers.
func FuzzDecodeResponse(f *testing.F) {
	for _, resp := range []ua.Response{
		&ua.ReadResponse{ResponseHeader: respHdr(), Results: []*ua.DataValue{dv(int32(5)), dv([]float64{1, 2}),
			{EncodingMask: ua.DataValueStatusCode | ua.DataValueServerTimestamp, Status: ua.StatusBadNodeIDUnknown, ServerTimestamp: time.Unix(5, 0)}},
			DiagnosticInfos: []*ua.DiagnosticInfo{{EncodingMask: ua.DiagnosticInfoAdditionalInfo | ua.DiagnosticInfoInnerDiagnosticInfo,
				AdditionalInfo: "x", InnerDiagnosticInfo: &ua.DiagnosticInfo{}}}},
		&ua.WriteResponse{ResponseHeader: respHdr(), Results: []ua.StatusCode{ua.StatusOK}},
		&ua.CallResponse{ResponseHeader: respHdr(), Results: []*ua.CallMethodResult{{OutputArguments: []*ua.Variant{ua.MustVariant("s")}}}},
		&ua.BrowseResponse{ResponseHeader: respHdr(), Results: []*ua.BrowseResult{{References: []*ua.ReferenceDescription{{
			ReferenceTypeID: ns0(id.Organizes), NodeID: ua.NewNumericExpandedNodeID(2, 7), BrowseName: qn("t"),
			DisplayName: ua.NewLocalizedText("t"), TypeDefinition: ua.NewNumericExpandedNodeID(0, id.BaseObjectType)}}}}},
		&ua.ServiceFault{ResponseHeader: respHdr()},
	} {
		b, err := EncodeResponse(nil, resp)
		if err != nil {
			f.Fatalf("encoding seed %T: %v", resp, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data, DecodeResponse, EncodeResponse)
	})
}

// checkDecode decodes data and checks what DecodeRequest and DecodeResponse
// promise: no panic and no allocation far beyond the input; a *CodecError,
// found before gopcua could panic; and a result that re-encodes, decodes
// again and then encodes the same (the first round may normalise: a null
// String becomes empty). It returns the decoded value, or nil.
func checkDecode[T any](t *testing.T, data []byte, decode func([]byte) (T, error), encode func([]byte, T) ([]byte, error)) T {
	var v, zero T
	if len(data) > 1<<16 {
		return zero
	}
	var err error
	if n := heapAllocated(func() { v, err = decode(data) }); n > decodeAllocBound(len(data)) {
		t.Fatalf("decoding %d bytes allocated %d (error %v)", len(data), n, err)
	}
	if err != nil {
		if ce := codecError(t, err); ce.panicked {
			t.Fatalf("gopcua panicked past the guard: %v", err)
		}
		return zero
	}
	enc, err := encode(nil, v)
	if err != nil {
		t.Fatalf("decoded %T does not re-encode: %v", v, err)
	}
	v2, err := decode(enc)
	if err != nil {
		t.Fatalf("re-encoded %T does not decode: %v\n% x", v, err, enc)
	}
	enc2, err := encode(nil, v2)
	if err != nil || !bytes.Equal(enc2, enc) {
		t.Fatalf("%T is not stable: %v\n% x\n% x", v, err, enc, enc2)
	}
	return v
}
