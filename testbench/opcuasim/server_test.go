package opcuasim

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want error
	}{
		{"fail/unknown-model", Options{Model: "boiler"}, ErrUnknownModel},
		{"fail/scheme", Options{Model: "feeder", Endpoint: "tcp://127.0.0.1:4840"}, ErrBadEndpoint},
		{"fail/port", Options{Model: "feeder", Endpoint: "opc.tcp://127.0.0.1:99999"}, ErrBadEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("New(%+v) = %v, want %v", tc.opts, err, tc.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	p, err := New(Options{Model: "pump", Tick: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.Endpoint(), "opc.tcp://127.0.0.1:") || strings.HasSuffix(p.Endpoint(), ":0") {
		t.Fatalf("Endpoint = %q", p.Endpoint())
	}
	ctx := testCtx(t)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	c := connect(t, p)
	if got := readValue(t, c, p, "Pump.TankLevel"); got != 1500.0 {
		t.Errorf("TankLevel = %v", got)
	}

	// Several sessions at once; the counters see every operation.
	const clients, writes = 4, 10
	done := make(chan struct{})
	for i := range clients {
		c := connect(t, p)
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range writes {
				if st := writeValue(t, c, p.NodeID("Pump.SpeedSetpoint"), float64(10*i+j)); st != ua.StatusOK {
					t.Errorf("write: %v", st)
				}
				readValues(t, c, p, "Pump.TankLevel", "Pump.Pump1Running")
			}
		}()
	}
	for range clients {
		<-done
	}
	if got := p.WritesTo("Pump.SpeedSetpoint"); got != clients*writes {
		t.Errorf("WritesTo = %d, want %d", got, clients*writes)
	}
	if got := p.Counters().Reads; got != 2*clients*writes+1 {
		t.Errorf("Reads = %d, want %d", got, 2*clients*writes+1)
	}

	// A dropped connection fails the client; the PLC serves new ones.
	if n := p.DropConnections(); n != clients+1 {
		t.Errorf("DropConnections = %d, want %d", n, clients+1)
	}
	if _, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: p.NodeID("Pump.TankLevel"), AttributeID: ua.AttributeIDValue}}}); err == nil {
		t.Error("read on a dropped connection succeeded")
	}
	c = connect(t, p)
	if got := readValue(t, c, p, "Pump.SpeedSetpoint"); got == 80.0 {
		t.Errorf("SpeedSetpoint back at its default after a dropped connection")
	}

	p.Close()
	p.Close() // idempotent
	if _, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: p.NodeID("Pump.TankLevel"), AttributeID: ua.AttributeIDValue}}}); err == nil {
		t.Error("read after Close succeeded")
	}
	u, _ := url.Parse(p.Endpoint())
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Errorf("port not released after Close: %v", err)
	} else {
		ln.Close()
	}
	if err := p.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

// TestReadServices runs the tests that change nothing but counters on one
// PLC: building a gopcua server takes seconds under the race detector.
func TestReadServices(t *testing.T) {
	t.Parallel()
	p := startPLC(t, "feeder", -1)
	c := connect(t, p)
	t.Run("namespace", func(t *testing.T) { testNamespace(t, p, c) })
	t.Run("browse", func(t *testing.T) { testBrowse(t, p, c) })
	t.Run("translate", func(t *testing.T) { testTranslateBrowsePath(t, p, c) })
	t.Run("read", func(t *testing.T) { testRead(t, p, c) })
}

func testNamespace(t *testing.T, p *PLC, c *opcua.Client) {
	if got, want := p.NamespaceURI(), "urn:brana:testbench:feeder"; got != want {
		t.Fatalf("NamespaceURI = %q, want %q", got, want)
	}
	ns, err := c.NamespaceArray(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(ns, p.NamespaceURI()); i != int(p.NamespaceIndex()) || i != 2 {
		t.Fatalf("NamespaceArray %q: %s at %d, PLC says %d", ns, p.NamespaceURI(), i, p.NamespaceIndex())
	}
}

// browseNames browses forward hierarchical references of a node and returns
// the browse names it finds, with their NodeIds.
func browseNames(t *testing.T, c *opcua.Client, nid *ua.NodeID) map[string]*ua.ReferenceDescription {
	t.Helper()
	resp, err := c.Browse(testCtx(t), &ua.BrowseRequest{
		View:                          &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		RequestedMaxReferencesPerNode: 0,
		NodesToBrowse: []*ua.BrowseDescription{{
			NodeID:          nid,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true,
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		}},
	})
	if err != nil {
		t.Fatalf("browse %s: %v", nid, err)
	}
	if st := resp.Results[0].StatusCode; st != ua.StatusOK {
		t.Fatalf("browse %s: %v", nid, st)
	}
	out := make(map[string]*ua.ReferenceDescription)
	for _, r := range resp.Results[0].References {
		out[r.BrowseName.Name] = r
	}
	return out
}

func testBrowse(t *testing.T, p *PLC, c *opcua.Client) {

	objects := browseNames(t, c, ua.NewNumericNodeID(0, id.ObjectsFolder))
	feeder, ok := objects["Feeder"]
	if !ok {
		t.Fatalf("Objects has no Feeder: %v", slices.Collect(mapsKeys(objects)))
	}
	if !feeder.NodeID.NodeID.Equal(p.NodeID("Feeder")) || feeder.BrowseName.NamespaceIndex != p.NamespaceIndex() {
		t.Fatalf("Objects/Feeder = %v %v", feeder.NodeID, feeder.BrowseName)
	}
	if _, ok := objects["Server"]; !ok {
		t.Errorf("Objects lost the Server object")
	}

	for _, tc := range []struct {
		path string
		want []string
	}{
		{"Feeder", []string{"Breaker", "Measurements", "Protection", "Simulation", "Heartbeat", "Firmware"}},
		{"Feeder.Breaker", []string{"Closed", "Close", "Open"}},
		{"Feeder.Measurements", []string{"CurrentL1", "CurrentL2", "CurrentL3", "Voltage", "Frequency", "ActivePower"}},
		{"Feeder.Protection", []string{"OvercurrentPickup", "TimeDelay", "Tripped", "TripCount", "Reset"}},
		{"Feeder.Firmware", []string{"Size", "Writable", "UserWritable", "OpenCount", "Open", "Close", "Read", "Write", "GetPosition", "SetPosition"}},
	} {
		t.Run("ok/"+tc.path, func(t *testing.T) {
			got := browseNames(t, c, p.NodeID(tc.path))
			for _, name := range tc.want {
				r, ok := got[name]
				if !ok {
					t.Errorf("%s has no %s (has %v)", tc.path, name, slices.Sorted(mapsKeys(got)))
					continue
				}
				if want := p.NodeID(tc.path + "." + name); !r.NodeID.NodeID.Equal(want) {
					t.Errorf("%s/%s = %v, want %v", tc.path, name, r.NodeID, want)
				}
			}
		})
	}

	// Node classes and types as a generic client sees them.
	closed := c.Node(p.NodeID("Feeder.Breaker.Closed"))
	if nc, err := closed.NodeClass(testCtx(t)); err != nil || nc != ua.NodeClassVariable {
		t.Errorf("Closed NodeClass = %v, %v", nc, err)
	}
	close := c.Node(p.NodeID("Feeder.Breaker.Close"))
	if nc, err := close.NodeClass(testCtx(t)); err != nil || nc != ua.NodeClassMethod {
		t.Errorf("Close NodeClass = %v, %v", nc, err)
	}
	fw := browseTypeDefinition(t, c, p.NodeID("Feeder.Firmware"))
	if !fw.Equal(ua.NewNumericNodeID(0, id.FileType)) {
		t.Errorf("Firmware TypeDefinition = %v, want FileType", fw)
	}
	if n := p.Counters().Browses; n == 0 {
		t.Errorf("Browses = 0")
	}
}

func browseTypeDefinition(t *testing.T, c *opcua.Client, nid *ua.NodeID) *ua.NodeID {
	t.Helper()
	resp, err := c.Browse(testCtx(t), &ua.BrowseRequest{
		View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		NodesToBrowse: []*ua.BrowseDescription{{
			NodeID:          nid,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		}},
	})
	if err != nil || len(resp.Results[0].References) != 1 {
		t.Fatalf("browse type definition of %s: %v %+v", nid, err, resp)
	}
	return resp.Results[0].References[0].NodeID.NodeID
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func testTranslateBrowsePath(t *testing.T, p *PLC, c *opcua.Client) {
	ns := p.NamespaceIndex()
	path := func(start *ua.NodeID, names ...ua.QualifiedName) *ua.BrowsePath {
		bp := &ua.BrowsePath{StartingNode: start, RelativePath: &ua.RelativePath{}}
		for _, n := range names {
			bp.RelativePath.Elements = append(bp.RelativePath.Elements, &ua.RelativePathElement{
				ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
				IncludeSubtypes: true,
				TargetName:      &n,
			})
		}
		return bp
	}
	root, objects := ua.NewNumericNodeID(0, id.RootFolder), ua.NewNumericNodeID(0, id.ObjectsFolder)
	q := func(name string) ua.QualifiedName { return ua.QualifiedName{NamespaceIndex: ns, Name: name} }
	var out *ua.TranslateBrowsePathsToNodeIDsResponse
	err := c.Send(testCtx(t), &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{
		path(root, ua.QualifiedName{Name: "Objects"}, q("Feeder"), q("Protection"), q("TimeDelay")),
		path(objects, q("Feeder"), q("Breaker"), q("Close")),
		path(p.NodeID("Feeder"), q("Firmware"), q("Write")),
		path(objects, q("Feeder"), q("Nothing")),
		path(objects, ua.QualifiedName{NamespaceIndex: 1, Name: "Feeder"}),
	}}, func(v ua.Response) error {
		out = v.(*ua.TranslateBrowsePathsToNodeIDsResponse)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"Feeder.Protection.TimeDelay", "Feeder.Breaker.Close", "Feeder.Firmware.Write", ua.StatusBadNoMatch, ua.StatusBadNoMatch}
	for i, w := range want {
		r := out.Results[i]
		switch w := w.(type) {
		case string:
			if r.StatusCode != ua.StatusOK || len(r.Targets) != 1 || !r.Targets[0].TargetID.NodeID.Equal(p.NodeID(w)) {
				t.Errorf("path %d: %v %v, want %s", i, r.StatusCode, r.Targets, w)
			}
		case ua.StatusCode:
			if r.StatusCode != w {
				t.Errorf("path %d: %v, want %v", i, r.StatusCode, w)
			}
		}
	}
}

func testRead(t *testing.T, p *PLC, c *opcua.Client) {
	p.ResetCounters()

	vals := readValues(t, c, p, "Feeder.Breaker.Closed", "Feeder.Protection.OvercurrentPickup",
		"Feeder.Measurements.CurrentL1", "Feeder.Heartbeat", "Feeder.Nothing")
	for i, want := range []any{false, 400.0, 0.0, uint32(0)} {
		if vals[i].Status != ua.StatusOK || vals[i].Value.Value() != want {
			t.Errorf("value %d = %v %v, want %v", i, vals[i].Status, vals[i].Value, want)
		}
	}
	if vals[4].Status != ua.StatusBadNodeIDUnknown {
		t.Errorf("unknown node: %v", vals[4].Status)
	}
	if got := p.Counters().Reads; got != 5 {
		t.Errorf("Reads = %d, want 5", got)
	}

	// Attributes a generic client reads before it writes.
	pickup := p.NodeID("Feeder.Protection.OvercurrentPickup")
	current := p.NodeID("Feeder.Measurements.CurrentL1")
	resp, err := c.Read(testCtx(t), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: pickup, AttributeID: ua.AttributeIDDataType},
		{NodeID: pickup, AttributeID: ua.AttributeIDAccessLevel},
		{NodeID: current, AttributeID: ua.AttributeIDAccessLevel},
		{NodeID: pickup, AttributeID: ua.AttributeIDValueRank},
		{NodeID: pickup, AttributeID: ua.AttributeIDBrowseName},
		{NodeID: pickup, AttributeID: ua.AttributeIDExecutable},
		{NodeID: p.NodeID("Feeder.Breaker.Close"), AttributeID: ua.AttributeIDExecutable},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Results
	if dt, ok := r[0].Value.Value().(*ua.NodeID); !ok || !dt.Equal(ua.NewNumericNodeID(0, id.Double)) {
		t.Errorf("DataType = %v", r[0].Value)
	}
	if r[1].Value.Value() != byte(ua.AccessLevelTypeCurrentRead|ua.AccessLevelTypeCurrentWrite) {
		t.Errorf("setpoint AccessLevel = %v", r[1].Value)
	}
	if r[2].Value.Value() != byte(ua.AccessLevelTypeCurrentRead) {
		t.Errorf("measurement AccessLevel = %v", r[2].Value)
	}
	if r[3].Value.Value() != int32(-1) {
		t.Errorf("ValueRank = %v", r[3].Value)
	}
	if qn, ok := r[4].Value.Value().(*ua.QualifiedName); !ok || qn.Name != "OvercurrentPickup" || qn.NamespaceIndex != p.NamespaceIndex() {
		t.Errorf("BrowseName = %v", r[4].Value)
	}
	if r[5].Status != ua.StatusBadAttributeIDInvalid {
		t.Errorf("Executable of a variable: %v", r[5].Status)
	}
	if r[6].Value.Value() != true {
		t.Errorf("Executable of a method: %v", r[6].Value)
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	p := startPLC(t, "feeder", -1)
	c := connect(t, p)
	ns := p.NamespaceIndex()

	pickup := p.NodeID("Feeder.Protection.OvercurrentPickup")
	p.ResetCounters()
	if st := writeValue(t, c, pickup, 350.0); st != ua.StatusOK {
		t.Fatalf("write setpoint: %v", st)
	}
	if got := readValue(t, c, p, "Feeder.Protection.OvercurrentPickup"); got != 350.0 {
		t.Fatalf("setpoint reads %v after write", got)
	}
	if got := p.Counters().Writes; got != 1 {
		t.Errorf("Writes = %d, want 1", got)
	}
	for _, key := range []string{"Feeder.Protection.OvercurrentPickup", pickup.String()} {
		if got := p.WritesTo(key); got != 1 {
			t.Errorf("WritesTo(%q) = %d, want 1", key, got)
		}
	}

	for _, tc := range []struct {
		name string
		wv   *ua.WriteValue
		want ua.StatusCode
	}{
		{"ok/time-delay", wv(p.NodeID("Feeder.Protection.TimeDelay"), 1.5), ua.StatusOK},
		{"ok/load", wv(p.NodeID("Feeder.Simulation.LoadCurrent"), 250.0), ua.StatusOK},
		{"fail/read-only-measurement", wv(p.NodeID("Feeder.Measurements.CurrentL1"), 10.0), ua.StatusBadNotWritable},
		{"fail/read-only-breaker", wv(p.NodeID("Feeder.Breaker.Closed"), true), ua.StatusBadNotWritable},
		{"fail/type-float", wv(pickup, float32(300)), ua.StatusBadTypeMismatch},
		{"fail/type-int", wv(pickup, int32(300)), ua.StatusBadTypeMismatch},
		{"fail/type-array", wv(pickup, []float64{300}), ua.StatusBadTypeMismatch},
		{"fail/range-high", wv(pickup, 5000.0), ua.StatusBadOutOfRange},
		{"fail/range-low", wv(pickup, 0.0), ua.StatusBadOutOfRange},
		{"fail/attribute", &ua.WriteValue{NodeID: pickup, AttributeID: ua.AttributeIDDisplayName,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(&ua.LocalizedText{Text: "x", EncodingMask: ua.LocalizedTextText})}}, ua.StatusBadNotWritable},
		{"fail/index-range", &ua.WriteValue{NodeID: pickup, AttributeID: ua.AttributeIDValue, IndexRange: "0",
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(300.0)}}, ua.StatusBadIndexRangeNoData},
		{"fail/unknown-node", wv(ua.NewStringNodeID(ns, "Feeder.Nothing"), 1.0), ua.StatusBadNodeIDUnknown},
		{"fail/unknown-namespace", wv(ua.NewStringNodeID(9, "Feeder.Protection.OvercurrentPickup"), 1.0), ua.StatusBadNodeIDUnknown},
		{"fail/server-node", wv(ua.NewNumericNodeID(0, id.Server_ServiceLevel), byte(1)), ua.StatusBadNotWritable},
		{"fail/method", wv(p.NodeID("Feeder.Breaker.Close"), true), ua.StatusBadNotWritable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Counters().Writes
			resp, err := c.Write(testCtx(t), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{tc.wv}})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Results[0]; got != tc.want {
				t.Fatalf("write = %v, want %v", got, tc.want)
			}
			if got := p.Counters().Writes; got != before+1 {
				t.Errorf("Writes %d → %d, want +1 (refused writes count too)", before, got)
			}
			if got := p.WritesTo(tc.wv.NodeID.String()); got == 0 {
				t.Errorf("WritesTo(%s) = 0", tc.wv.NodeID)
			}
		})
	}
	if got := readValue(t, c, p, "Feeder.Protection.OvercurrentPickup"); got != 350.0 {
		t.Errorf("refused writes changed the setpoint to %v", got)
	}
	if got := readValue(t, c, p, "Feeder.Measurements.CurrentL1"); got != 0.0 {
		t.Errorf("refused write changed the measurement to %v", got)
	}
}

func wv(nid *ua.NodeID, v any) *ua.WriteValue {
	return &ua.WriteValue{NodeID: nid, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}
}

func TestCallBreaker(t *testing.T) {
	t.Parallel()
	p := startPLC(t, "feeder", 20*time.Millisecond)
	c := connect(t, p)
	breaker := p.NodeID("Feeder.Breaker")
	p.ResetCounters()

	if res := callMethod(t, c, breaker, p.NodeID("Feeder.Breaker.Close")); res.StatusCode != ua.StatusOK {
		t.Fatalf("Close: %v", res.StatusCode)
	}
	if got := readValue(t, c, p, "Feeder.Breaker.Closed"); got != true {
		t.Fatalf("Closed = %v after Close()", got)
	}
	eventually(t, 5*time.Second, "currents to follow the load", func() bool {
		v := readValues(t, c, p, "Feeder.Measurements.CurrentL1", "Feeder.Measurements.CurrentL3", "Feeder.Measurements.Voltage")
		return v[0].Value.Value() == 200.0 && v[1].Value.Value() == 204.0 && v[2].Value.Value() == 21600.0
	})

	if res := callMethod(t, c, breaker, p.NodeID("Feeder.Breaker.Open")); res.StatusCode != ua.StatusOK {
		t.Fatalf("Open: %v", res.StatusCode)
	}
	v := readValues(t, c, p, "Feeder.Breaker.Closed", "Feeder.Measurements.CurrentL1", "Feeder.Measurements.Frequency")
	if v[0].Value.Value() != false || v[1].Value.Value() != 0.0 || v[2].Value.Value() != 0.0 {
		t.Fatalf("after Open(): Closed %v, CurrentL1 %v, Frequency %v", v[0].Value, v[1].Value, v[2].Value)
	}

	for _, tc := range []struct {
		name   string
		obj    *ua.NodeID
		method *ua.NodeID
		args   []any
		want   ua.StatusCode
	}{
		{"fail/method-of-other-object", p.NodeID("Feeder.Protection"), p.NodeID("Feeder.Breaker.Close"), nil, ua.StatusBadMethodInvalid},
		{"fail/unknown-method", breaker, nodeID(p, "Feeder.Breaker.Explode"), nil, ua.StatusBadMethodInvalid},
		{"fail/unknown-object", nodeID(p, "Feeder.Nothing"), p.NodeID("Feeder.Breaker.Close"), nil, ua.StatusBadNodeIDUnknown},
		{"fail/variable-as-method", breaker, p.NodeID("Feeder.Breaker.Closed"), nil, ua.StatusBadMethodInvalid},
		{"fail/too-many-arguments", breaker, p.NodeID("Feeder.Breaker.Open"), []any{true}, ua.StatusBadTooManyArguments},
		{"fail/filetype-method-on-breaker", breaker, ua.NewNumericNodeID(0, id.FileType_Open), []any{byte(1)}, ua.StatusBadMethodInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := callMethod(t, c, tc.obj, tc.method, tc.args...); res.StatusCode != tc.want {
				t.Fatalf("call = %v, want %v", res.StatusCode, tc.want)
			}
		})
	}
	if got := readValue(t, c, p, "Feeder.Breaker.Closed"); got != false {
		t.Errorf("refused calls closed the breaker")
	}

	// Refused calls count too, by the method they name.
	if got := p.Counters().Calls; got != 8 {
		t.Errorf("Calls = %d, want 8", got)
	}
	for key, want := range map[string]uint64{
		"Close": 3, "Breaker.Close": 3, "Open": 3, "Breaker.Open": 2, "FileType.Open": 1, "Firmware.Close": 0,
		nodeID(p, "Feeder.Breaker.Explode").String(): 1,
		p.NodeID("Feeder.Breaker.Closed").String():   1,
	} {
		if got := p.Calls(key); got != want {
			t.Errorf("Calls(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestFirmwareFile(t *testing.T) {
	t.Parallel()
	p := startPLC(t, "feeder", -1)
	c := connect(t, p)
	fw := p.NodeID("Feeder.Firmware")
	m := func(name string) *ua.NodeID { return p.NodeID("Feeder.Firmware." + name) }
	image := bytes.Repeat([]byte("brana firmware image "), 500) // 10.5 KB

	res := callMethod(t, c, fw, m("Open"), byte(FileModeWrite|FileModeEraseExisting))
	if res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 {
		t.Fatalf("Open(write): %v %v", res.StatusCode, res.OutputArguments)
	}
	h := res.OutputArguments[0].Value().(uint32)

	// A second writer, or a reader, is refused while the write handle is open.
	if res := callMethod(t, c, fw, m("Open"), byte(FileModeWrite)); res.StatusCode != ua.StatusBadNotWritable {
		t.Errorf("second Open(write): %v", res.StatusCode)
	}
	if res := callMethod(t, c, fw, m("Open"), byte(FileModeRead)); res.StatusCode != ua.StatusBadNotReadable {
		t.Errorf("Open(read) while writing: %v", res.StatusCode)
	}
	if res := callMethod(t, c, fw, m("Read"), h, int32(10)); res.StatusCode != ua.StatusBadInvalidState {
		t.Errorf("Read on a write handle: %v", res.StatusCode)
	}

	for chunk := range slices.Chunk(image, 4000) {
		if res := callMethod(t, c, fw, m("Write"), h, chunk); res.StatusCode != ua.StatusOK {
			t.Fatalf("Write: %v", res.StatusCode)
		}
	}
	if res := callMethod(t, c, fw, m("GetPosition"), h); res.StatusCode != ua.StatusOK || res.OutputArguments[0].Value() != uint64(len(image)) {
		t.Errorf("GetPosition: %v %v", res.StatusCode, res.OutputArguments)
	}
	if got := readValue(t, c, p, "Feeder.Firmware.OpenCount"); got != uint16(1) {
		t.Errorf("OpenCount = %v while open", got)
	}
	if res := callMethod(t, c, fw, m("Close"), h); res.StatusCode != ua.StatusOK {
		t.Fatalf("Close: %v", res.StatusCode)
	}
	if res := callMethod(t, c, fw, m("Close"), h); res.StatusCode != ua.StatusBadInvalidArgument {
		t.Errorf("Close of a closed handle: %v", res.StatusCode)
	}
	if got := p.FileContents(); !bytes.Equal(got, image) {
		t.Fatalf("FileContents: %d bytes, want %d", len(got), len(image))
	}
	if got := readValue(t, c, p, "Feeder.Firmware.Size"); got != uint64(len(image)) {
		t.Errorf("Size = %v", got)
	}

	// Read it back by the method ids of FileType itself, as some tools do.
	open, read, closeID := ua.NewNumericNodeID(0, id.FileType_Open), ua.NewNumericNodeID(0, id.FileType_Read), ua.NewNumericNodeID(0, id.FileType_Close)
	res = callMethod(t, c, fw, open, byte(FileModeRead))
	if res.StatusCode != ua.StatusOK {
		t.Fatalf("FileType.Open(read): %v", res.StatusCode)
	}
	rh := res.OutputArguments[0].Value().(uint32)
	var back []byte
	for {
		res := callMethod(t, c, fw, read, rh, int32(3000))
		if res.StatusCode != ua.StatusOK {
			t.Fatalf("FileType.Read: %v", res.StatusCode)
		}
		b := res.OutputArguments[0].Value().([]byte)
		if len(b) == 0 {
			break
		}
		back = append(back, b...)
	}
	if !bytes.Equal(back, image) {
		t.Errorf("read back %d bytes, want %d", len(back), len(image))
	}
	if res := callMethod(t, c, fw, m("Write"), rh, []byte("x")); res.StatusCode != ua.StatusBadInvalidState {
		t.Errorf("Write on a read handle: %v", res.StatusCode)
	}
	if res := callMethod(t, c, fw, closeID, rh); res.StatusCode != ua.StatusOK {
		t.Errorf("FileType.Close: %v", res.StatusCode)
	}

	for _, tc := range []struct {
		name string
		args []any
		want ua.StatusCode
	}{
		{"fail/mode-zero", []any{byte(0)}, ua.StatusBadInvalidArgument},
		{"fail/erase-without-write", []any{byte(FileModeRead | FileModeEraseExisting)}, ua.StatusBadInvalidArgument},
		{"fail/mode-type", []any{uint32(2)}, ua.StatusBadInvalidArgument},
		{"fail/missing", nil, ua.StatusBadArgumentsMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := callMethod(t, c, fw, m("Open"), tc.args...)
			if res.StatusCode != tc.want {
				t.Fatalf("Open(%v) = %v, want %v", tc.args, res.StatusCode, tc.want)
			}
		})
	}
	if got := p.Calls("Firmware.Write"); got != 4 {
		t.Errorf(`Calls("Firmware.Write") = %d, want 4`, got)
	}
	if got, got2 := p.Calls("Open"), p.Calls("Firmware.Open"); got != 8 || got2 != 8 {
		t.Errorf(`Calls("Open") = %d, Calls("Firmware.Open") = %d, want 8`, got, got2)
	}
}

func TestSubscription(t *testing.T) {
	t.Parallel()
	p := startPLC(t, "feeder", 50*time.Millisecond)
	c := connect(t, p)
	ctx := testCtx(t)

	notes := make(chan *opcua.PublishNotificationData, 64)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 100 * time.Millisecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel(ctx)
	const hHeartbeat, hCurrent = 1, 2
	resp, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(p.NodeID("Feeder.Heartbeat"), ua.AttributeIDValue, hHeartbeat),
		opcua.NewMonitoredItemCreateRequestWithDefaults(p.NodeID("Feeder.Measurements.CurrentL1"), ua.AttributeIDValue, hCurrent),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.StatusCode != ua.StatusOK {
			t.Fatalf("monitor: %v", r.StatusCode)
		}
	}
	if got := p.Counters().MonitoredItems; got != 2 {
		t.Errorf("MonitoredItems = %d, want 2", got)
	}
	if res := callMethod(t, c, p.NodeID("Feeder.Breaker"), p.NodeID("Feeder.Breaker.Close")); res.StatusCode != ua.StatusOK {
		t.Fatalf("Close: %v", res.StatusCode)
	}

	var beats []uint32
	var currents []float64
	timeout := time.After(10 * time.Second)
	for len(beats) < 10 || len(currents) == 0 || currents[len(currents)-1] != 200.0 {
		select {
		case n := <-notes:
			if n.Error != nil {
				t.Fatalf("notification: %v", n.Error)
			}
			dcn, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, item := range dcn.MonitoredItems {
				switch item.ClientHandle {
				case hHeartbeat:
					beats = append(beats, item.Value.Value.Value().(uint32))
				case hCurrent:
					currents = append(currents, item.Value.Value.Value().(float64))
				}
			}
		case <-timeout:
			t.Fatalf("after 10 s: heartbeats %v, currents %v", beats, currents)
		}
	}
	if !slices.IsSorted(beats) || beats[0] == beats[len(beats)-1] {
		t.Errorf("heartbeats do not advance: %v", beats)
	}
	if len(currents) < 2 || !slices.IsSorted(currents) {
		t.Errorf("CurrentL1 should rise towards the load in steps: %v", currents)
	}

	// A subscription that dies with its connection must not stall the PLC.
	p.DropConnections()
	time.Sleep(500 * time.Millisecond)
	c2 := connect(t, p)
	before := readValue(t, c2, p, "Feeder.Heartbeat").(uint32)
	eventually(t, 5*time.Second, "the model to keep running", func() bool {
		return readValue(t, c2, p, "Feeder.Heartbeat").(uint32) > before+5
	})
}
