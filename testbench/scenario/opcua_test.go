package scenario

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/nodeopcua"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// startOPCUAPLC starts the simulated feeder PLC on loopback.
func startOPCUAPLC(t *testing.T) *opcuasim.PLC {
	t.Helper()
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plc.Close)
	return plc
}

// opcuaRules lets party read everything (its own namespace and namespace 0,
// which every client browses and reads on connect) and write one setting.
func opcuaRules(party, target, ns string) string {
	return `
rules:
  - name: opc-read
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [read]
    opcua: {namespace: "` + ns + `"}
  - name: opc-read-ns0
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [read]
    opcua: {namespace: "http://opcfoundation.org/UA/"}
  - name: opc-pickup
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [write]
    opcua:
      namespace: "` + ns + `"
      nodes: ["s=Feeder.Protection.OvercurrentPickup"]
`
}

// opcuaServiceOps are the [O1] service checks, run by node-opcua through
// brana: browse and read, an allowed and a denied write, a mixed array write
// and a program-class Call. check verifies their results and the PLC.
func opcuaServiceOps(ns string) []nodeopcua.Op {
	pickup := "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"
	delay := "nsu=" + ns + ";s=Feeder.Protection.TimeDelay"
	return []nodeopcua.Op{
		{"op": "browse", "path": "Feeder", "namespace": ns},
		{"op": "read", "path": "Feeder/Measurements/Voltage", "namespace": ns},
		{"op": "write", "nodeId": pickup, "dataType": "Double", "value": 450},
		{"op": "write", "nodeId": delay, "dataType": "Double", "value": 7},
		{"op": "writeMany", "items": []map[string]any{
			{"nodeId": delay, "dataType": "Double", "value": 8},
			{"nodeId": pickup, "dataType": "Double", "value": 460},
			{"nodeId": delay, "dataType": "Double", "value": 9},
		}},
		{"op": "call", "path": "Feeder/Firmware/Open", "namespace": ns, "inputs": []map[string]any{{"dataType": "Byte", "value": 2}}},
		{"op": "read", "nodeId": pickup},
	}
}

func checkOPCUAServices(t *testing.T, plc *opcuasim.PLC, res []nodeopcua.Result) {
	t.Helper()
	if len(res[0].References) == 0 || res[0].Error != "" {
		t.Errorf("browse Feeder: %+v", res[0])
	}
	if res[1].DataType != "Double" || res[1].StatusCode != "Good" {
		t.Errorf("read Voltage: %+v", res[1])
	}
	if res[2].StatusCode != "Good" {
		t.Errorf("allowed write: %+v", res[2])
	}
	if res[3].StatusCode != "BadUserAccessDenied" {
		t.Errorf("denied write: %+v, want BadUserAccessDenied", res[3])
	}
	if got := strings.Join(res[4].StatusCodes, ","); got != "BadUserAccessDenied,Good,BadUserAccessDenied" {
		t.Errorf("mixed array write: %s (%+v)", got, res[4])
	}
	if res[5].StatusCode != "BadUserAccessDenied" {
		t.Errorf("FileType Open for writing: %+v, want BadUserAccessDenied", res[5])
	}
	if v, _ := res[6].Value.(float64); v != 460 {
		t.Errorf("pickup after the writes: %+v, want 460", res[6])
	}
	if n := plc.WritesTo("Feeder.Protection.OvercurrentPickup"); n != 2 {
		t.Errorf("PLC saw %d writes to OvercurrentPickup, want 2", n)
	}
	if n := plc.WritesTo("Feeder.Protection.TimeDelay"); n != 0 {
		t.Errorf("PLC saw %d writes to TimeDelay, want none", n)
	}
	if n := plc.Calls("Firmware.Open"); n != 0 {
		t.Errorf("PLC saw %d Firmware.Open calls, want none", n)
	}
}

func runNode(t *testing.T, endpoint string, ops []nodeopcua.Op, timeout time.Duration) []nodeopcua.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, log, err := nodeopcua.Run(ctx, endpoint, ops)
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Fatalf("node-opcua: %v\n%s", err, log)
	}
	return res
}

// The [O1] done-when over the loopback listener: node-opcua, a stack nobody
// here wrote, browses, reads and writes through brana; the denied write
// and the denied elements of an array write never reach the PLC; a
// FileType Open for writing is refused as program; the audit log has every
// element with its decision.
func TestOPCUALoopbackListener(t *testing.T) {
	nodeopcua.Require(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
targets:
  - name: line-opc
    protocol: opcua
    endpoint: `+plc.Endpoint()+`
`+partiesYAML+opcuaRules("monitoring", "line-opc", ns))
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	res := runNode(t, endpoint, opcuaServiceOps(ns), 60*time.Second)
	checkOPCUAServices(t, plc, res)

	mixed := waitAudit(t, gw, "the mixed array write", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Write" && r.Decision == "partial"
	})
	if mixed.NItems != 3 || mixed.Items[0].Decision != "deny" || mixed.Items[0].Status != "BadUserAccessDenied" || mixed.Items[1].Decision != "allow" ||
		mixed.Items[1].Value != "460" || !strings.Contains(mixed.Items[1].Node, "Feeder.Protection.OvercurrentPickup") {
		t.Errorf("audit record of the mixed write: %s", &mixed)
	}
	waitAudit(t, gw, "the refused FileType Open", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Call" && r.Class == "program" && r.Decision == "held" &&
			strings.Contains(r.Detail, "access request R-")
	})
	waitAudit(t, gw, "the session record", func(r *auditRec) bool {
		return r.Type == "session.open" && r.Party == "monitoring" && strings.Contains(r.Detail, "PLC session None/")
	})
}

// A subscription through brana keeps delivering values for over a minute:
// Publish long polls are not cut by the request timeout.
func TestOPCUASubscriptionLastsAMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for over a minute")
	}
	nodeopcua.Require(t)
	t.Parallel()
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
targets:
  - name: line-opc
    protocol: opcua
    endpoint: `+plc.Endpoint()+`
    timeout: 2s
`+partiesYAML+opcuaRules("monitoring", "line-opc", ns))
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	res := runNode(t, endpoint, []nodeopcua.Op{
		{"op": "subscribe", "path": "Feeder/Heartbeat", "namespace": ns, "seconds": 65, "publishingInterval": 500, "samplingInterval": 250},
	}, 120*time.Second)
	r := res[0]
	if r.Error != "" || r.Notifications < 60 {
		t.Fatalf("subscription over 65 s: %d notifications (%s)", r.Notifications, r.Error)
	}
	last := fmt.Sprint(r.Values[len(r.Values)-1])
	first := fmt.Sprint(r.Values[0])
	if first == last {
		t.Fatalf("heartbeat did not move: %v", r.Values)
	}
}
