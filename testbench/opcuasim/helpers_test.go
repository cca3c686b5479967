package opcuasim

import (
	"context"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// TestMain silences gopcua's server, which logs through the standard
// logger while it loads its node set.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// startPLC starts a PLC on a free loopback port; tick as in Options.Tick.
func startPLC(t *testing.T, model string, tick time.Duration) *PLC {
	t.Helper()
	p, err := New(Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: model, Tick: tick})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		p.Close()
	})
	return p
}

// connect opens a gopcua client session (security None, anonymous).
func connect(t *testing.T, p *PLC) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := opcua.NewClient(p.Endpoint(),
		opcua.SecurityMode(ua.MessageSecurityModeNone),
		opcua.AuthAnonymous(),
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", p.Endpoint(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readValues reads the Value attribute of nodes by string identifier.
func readValues(t *testing.T, c *opcua.Client, p *PLC, paths ...string) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, path := range paths {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: nodeID(p, path), AttributeID: ua.AttributeIDValue})
	}
	resp, err := c.Read(testCtx(t), req)
	if err != nil {
		t.Fatalf("read %v: %v", paths, err)
	}
	if len(resp.Results) != len(paths) {
		t.Fatalf("read %v: %d results", paths, len(resp.Results))
	}
	return resp.Results
}

func readValue(t *testing.T, c *opcua.Client, p *PLC, path string) any {
	t.Helper()
	dv := readValues(t, c, p, path)[0]
	if dv.Status != ua.StatusOK {
		t.Fatalf("read %s: %v", path, dv.Status)
	}
	return dv.Value.Value()
}

// nodeID is a NodeId in the PLC's namespace; it need not exist.
func nodeID(p *PLC, path string) *ua.NodeID { return ua.NewStringNodeID(p.NamespaceIndex(), path) }

func writeValue(t *testing.T, c *opcua.Client, nid *ua.NodeID, v any) ua.StatusCode {
	t.Helper()
	resp, err := c.Write(testCtx(t), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      nid,
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
	}}})
	if err != nil {
		t.Fatalf("write %s: %v", nid, err)
	}
	return resp.Results[0]
}

// callMethod calls a method of the PLC's namespace by string identifiers.
func callMethod(t *testing.T, c *opcua.Client, obj, method *ua.NodeID, args ...any) *ua.CallMethodResult {
	t.Helper()
	req := &ua.CallMethodRequest{ObjectID: obj, MethodID: method}
	for _, a := range args {
		req.InputArguments = append(req.InputArguments, ua.MustVariant(a))
	}
	res, err := c.Call(testCtx(t), req)
	if err != nil {
		t.Fatalf("call %s %s: %v", obj, method, err)
	}
	return res
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// set writes a value in-process through the same path as a client Write.
func set(t *testing.T, p *PLC, path string, v any) {
	t.Helper()
	st := p.writeValue(p.NodeID(path), ua.AttributeIDValue, "", &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)})
	if st != ua.StatusOK {
		t.Fatalf("set %s = %v: %v", path, v, st)
	}
}

// invoke calls a method in-process through the same path as a client Call.
func invoke(p *PLC, method string, args ...any) *ua.CallMethodResult {
	m := p.space.byPath(method)
	req := &ua.CallMethodRequest{ObjectID: m.parent.id, MethodID: m.id}
	for _, a := range args {
		req.InputArguments = append(req.InputArguments, ua.MustVariant(a))
	}
	return p.call(req)
}

// value returns a variable's value or fails.
func value(t *testing.T, p *PLC, path string) any {
	t.Helper()
	v, ok := p.Value(path)
	if !ok {
		t.Fatalf("no variable %s", path)
	}
	return v
}
