package nodeopcua_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/nodeopcua"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// TestNodeOPCUAAgainstSimulator drives the simulated feeder PLC with
// node-opcua: browse, read, write, call and a subscription on one session.
func TestNodeOPCUAAgainstSimulator(t *testing.T) {
	nodeopcua.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plc.Close()
	ns := plc.NamespaceURI()
	if closed, _ := plc.Value("Feeder.Breaker.Closed"); closed != false {
		t.Fatalf("breaker starts closed=%v, want false", closed)
	}

	ops := []nodeopcua.Op{
		{"op": "browse", "path": "Feeder", "namespace": ns},
		{"op": "read", "path": "Feeder/Measurements/CurrentL1", "namespace": ns},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup", "dataType": "Double", "value": 450.5},
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"},
		{"op": "write", "path": "Feeder/Protection/OvercurrentPickup", "namespace": ns, "dataType": "Double", "value": 5000},
		{"op": "call", "path": "Feeder/Breaker/Close", "namespace": ns},
		{"op": "read", "path": "Feeder/Breaker/Closed", "namespace": ns},
		{"op": "subscribe", "path": "Feeder/Heartbeat", "namespace": ns, "seconds": 3, "publishingInterval": 200},
	}
	start := time.Now()
	res, stderr, err := nodeopcua.Run(ctx, plc.Endpoint(), ops)
	t.Logf("node-opcua ran %d operations in %v", len(res), time.Since(start).Round(time.Millisecond))
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if stderr != "" {
		t.Logf("node-opcua log:\n%s", stderr)
	}
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr)
	}
	for _, r := range res {
		if r.Error != "" {
			t.Errorf("op %d %s: %s", r.I, r.Op, r.Error)
		}
	}
	if t.Failed() {
		t.Fatalf("stderr:\n%s", stderr)
	}

	// browse Objects/Feeder
	names := map[string]bool{}
	for _, ref := range res[0].References {
		names[ref.BrowseName] = true
	}
	for _, want := range []string{"Breaker", "Measurements", "Protection", "Simulation", "Heartbeat", "Firmware"} {
		if !names[want] {
			t.Errorf("browse Objects/Feeder: no %s in %+v", want, res[0].References)
		}
	}
	if want := "ns=2;s=Feeder"; res[0].NodeID != want {
		t.Errorf("Objects/Feeder resolved to %s, want %s", res[0].NodeID, want)
	}

	// read a measurement (breaker open: no current)
	if r := res[1]; r.StatusCode != "Good" || r.DataType != "Double" {
		t.Errorf("read CurrentL1: %+v", r)
	} else if v, ok := r.Value.(float64); !ok || v != 0 {
		t.Errorf("CurrentL1 with the breaker open = %v, want 0", r.Value)
	}

	// write OvercurrentPickup, in range then out of range
	if r := res[2]; r.StatusCode != "Good" {
		t.Errorf("write OvercurrentPickup 450.5: %s", r.StatusCode)
	}
	if r := res[3]; r.StatusCode != "Good" || r.Value != 450.5 {
		t.Errorf("read back OvercurrentPickup: %+v", r)
	}
	if r := res[4]; r.StatusCode != "BadOutOfRange" {
		t.Errorf("write OvercurrentPickup 5000: %s, want BadOutOfRange", r.StatusCode)
	}
	if v, _ := plc.Value("Feeder.Protection.OvercurrentPickup"); v != 450.5 {
		t.Errorf("simulator OvercurrentPickup = %v, want 450.5", v)
	}
	if n := plc.WritesTo("Feeder.Protection.OvercurrentPickup"); n != 2 {
		t.Errorf("simulator counted %d writes to OvercurrentPickup, want 2", n)
	}

	// call Breaker/Close
	if r := res[5]; r.StatusCode != "Good" {
		t.Errorf("call Breaker/Close: %+v", r)
	}
	if n := plc.Calls("Breaker.Close"); n != 1 {
		t.Errorf("simulator counted %d calls of Breaker.Close, want 1", n)
	}
	if v, _ := plc.Value("Feeder.Breaker.Closed"); v != true {
		t.Errorf("simulator breaker closed = %v after Close()", v)
	}
	if r := res[6]; r.StatusCode != "Good" || r.Value != true {
		t.Errorf("read Breaker/Closed after Close(): %+v", r)
	}

	// subscription to the heartbeat for 3 s
	r := res[7]
	if r.Notifications < 2 {
		t.Errorf("subscription to Heartbeat: %d notifications in 3 s, want >= 2: %+v", r.Notifications, r)
	}
	for i := 1; i < len(r.Values); i++ {
		a, _ := r.Values[i-1].(float64)
		b, _ := r.Values[i].(float64)
		if b <= a {
			t.Errorf("heartbeat notifications not increasing: %v", r.Values)
			break
		}
	}
	c := plc.Counters()
	if c.MonitoredItems < 1 || c.Calls < 1 || c.Writes < 2 || c.Browses < 1 {
		t.Errorf("simulator counters %+v", c)
	}
}

// TestNodeOPCUAFileTransfer loads a program into the simulator's FileType
// object with node-opcua: Open for writing, Write the image as a
// ByteString, Close with the handle Open returned. The image becomes the
// program only at Close.
func TestNodeOPCUAFileTransfer(t *testing.T) {
	nodeopcua.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "pump"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer plc.Close()
	ns := plc.NamespaceURI()
	image := []byte("PUMP PROGRAM v7\x00\x01\x02\xff")
	handle := map[string]any{"output": map[string]any{"op": 0, "index": 0}}
	res, stderr, err := nodeopcua.Run(ctx, plc.Endpoint(), []nodeopcua.Op{
		{"op": "call", "path": "Pump/Firmware/Open", "namespace": ns, "inputs": []map[string]any{{"dataType": "Byte", "value": 2 | 4}}},
		{"op": "call", "path": "Pump/Firmware/Write", "namespace": ns, "inputs": []any{handle,
			map[string]any{"dataType": "ByteString", "value": base64.StdEncoding.EncodeToString(image[:8])}}},
		{"op": "call", "path": "Pump/Firmware/Write", "namespace": ns, "inputs": []any{handle,
			map[string]any{"dataType": "ByteString", "value": base64.StdEncoding.EncodeToString(image[8:])}}},
		{"op": "read", "path": "Pump/Firmware/Size", "namespace": ns},
		{"op": "call", "path": "Pump/Firmware/Close", "namespace": ns, "inputs": []any{handle}},
	})
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, i := range []int{0, 1, 2, 4} {
		if res[i].StatusCode != "Good" {
			t.Errorf("op %d: %+v", i, res[i])
		}
	}
	if res[3].Value != "0" {
		t.Errorf("Size before Close: %v, want 0 (nothing committed yet)", res[3].Value)
	}
	if got := plc.FileContents(); !bytes.Equal(got, image) || plc.FileCommits() != 1 {
		t.Errorf("program after Close: %q, %d commits", got, plc.FileCommits())
	}
}
