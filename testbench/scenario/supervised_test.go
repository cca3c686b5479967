package scenario

import (
	"context"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// supervise marks the party whose networks line is netLine as supervised.
func supervise(t *testing.T, yaml, netLine string) string {
	t.Helper()
	if !strings.Contains(yaml, netLine) {
		t.Fatalf("config has no %q", netLine)
	}
	return strings.Replace(yaml, netLine, netLine+"    supervised: true\n", 1)
}

// liveSession returns the one live session of party.
func liveSession(t *testing.T, gw *gwtest.Gateway, party string) *sessions.Session {
	t.Helper()
	var found []string
	for _, i := range gw.Sessions().List() {
		if i.Party == party {
			found = append(found, i.ID)
		}
	}
	if len(found) != 1 {
		t.Fatalf("party %s has %d live sessions, want 1: %v", party, len(found), gw.Sessions().List())
	}
	s := gw.Sessions().Get(found[0])
	if s == nil {
		t.Fatalf("session %s is listed but Get does not find it", found[0])
	}
	return s
}

// A supervised party's write is refused with exception 06 while no engineer
// watches its session, and never reaches the PLC; once an engineer watches,
// the same write passes; when they stop, it is refused again. Reads pass
// throughout.
func TestSupervisedModbus(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	gw := gwtest.Start(t, supervise(t, tcpConfig(plcAddr, "    timeout: 1s\n"), "    networks: [127.0.0.2/32]\n"))
	rc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)

	read := func(step string) {
		t.Helper()
		if got := registers(t, rc.call(1, pduReadHolding(100, 2))); got[1] != mark(1, 101) {
			t.Fatalf("%s: read holding 100..101 = %v", step, got)
		}
	}
	refused := func(step string, v uint16, writesBefore uint64) {
		t.Helper()
		expectException(t, rc.call(1, pduWriteSingle(100, v)), 6, 6)
		if n := plc.Counters().Writes(1); n != writesBefore {
			t.Fatalf("%s: the PLC saw %d writes, want %d", step, n, writesBefore)
		}
		rec := waitAudit(t, gw, step, func(r *auditRec) bool {
			return r.Type == "command" && r.Source == rc.source() && r.fc() == 6 && len(r.Values) == 1 && r.Values[0] == v
		})
		if rec.Decision != "deny" || rec.Reason != "unsupervised" || rec.Exception != 6 || !strings.Contains(rec.Detail, "no engineer watches") {
			t.Fatalf("%s: audit record %s", step, &rec)
		}
	}

	read("before")
	refused("unwatched write", 41, 0)
	read("after the refusal")

	s := liveSession(t, gw, "engineering")
	if i := s.Info(); !i.Supervised || i.Watchers != 0 {
		t.Fatalf("session info %+v, want supervised and unwatched", i)
	}
	stop := s.Watch()
	if resp := rc.call(1, pduWriteSingle(100, 42)); string(resp) != string(pduWriteSingle(100, 42)) {
		t.Fatalf("watched write: answer % x, want the echo", resp)
	}
	if got := plc.Unit(1).HoldingRegister(100); got != 42 || plc.Counters().Writes(1) != 1 {
		t.Fatalf("watched write: holding 100 = %d after %d writes; want 42 after 1", got, plc.Counters().Writes(1))
	}
	rec := waitAudit(t, gw, "the watched write", func(r *auditRec) bool {
		return r.Type == "command" && r.Source == rc.source() && r.fc() == 6 && len(r.Values) == 1 && r.Values[0] == 42
	})
	if rec.Decision != "allow" || rec.Rule != "feeder-setpoints" {
		t.Fatalf("watched write: audit record %s", &rec)
	}
	read("while watched")

	stop()
	stop()
	refused("write after the engineer left", 43, 1)
	read("at the end")
	if got := plc.Unit(1).HoldingRegister(100); got != 42 {
		t.Fatalf("holding 100 = %d at the end, want 42", got)
	}
}

// The same over OPC UA: a write element is Bad_UserAccessDenied while no
// engineer watches, passes while one does. gopcua is the client.
func TestSupervisedOPCUA(t *testing.T) {
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, supervise(t, configHead+opcuaLab(plc.Endpoint(), "")+partiesYAML+opcuaRules("monitoring", "line-opc", ns), "    networks: [127.0.0.1/32]\n"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := gopcua.NewClient("opc.tcp://"+gw.Addr("opc-lab").String(), gopcua.SecurityMode(ua.MessageSecurityModeNone), gopcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)

	const path = "Feeder.Protection.OvercurrentPickup"
	node := plc.NodeID(path)
	write := func(step string, v float64) ua.StatusCode {
		t.Helper()
		resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: node, AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}}})
		if err != nil || len(resp.Results) != 1 {
			t.Fatalf("%s: write: %v %+v", step, err, resp)
		}
		return resp.Results[0]
	}
	read := func(step string) float64 {
		t.Helper()
		resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: node, AttributeID: ua.AttributeIDValue}}})
		if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != ua.StatusOK {
			t.Fatalf("%s: read: %v %+v", step, err, resp)
		}
		v, _ := resp.Results[0].Value.Value().(float64)
		return v
	}

	read("before")
	if st := write("unwatched write", 451); st != ua.StatusBadUserAccessDenied {
		t.Fatalf("unwatched write: status %v, want BadUserAccessDenied", st)
	}
	if n := plc.WritesTo(path); n != 0 {
		t.Fatalf("unwatched write: the PLC saw %d writes, want 0", n)
	}
	waitAudit(t, gw, "the unwatched write", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Write" && r.Decision == "deny" && r.Reason == "unsupervised" &&
			len(r.Items) == 1 && r.Items[0].Value == "451" && r.Items[0].Reason == "unsupervised" &&
			r.Items[0].Status == "BadUserAccessDenied" && strings.Contains(r.Detail, "no engineer watches")
	})

	stop := liveSession(t, gw, "monitoring").Watch()
	if st := write("watched write", 452); st != ua.StatusOK {
		t.Fatalf("watched write: status %v, want Good", st)
	}
	if v := read("while watched"); v != 452 || plc.WritesTo(path) != 1 {
		t.Fatalf("watched write: pickup %v after %d writes; want 452 after 1", v, plc.WritesTo(path))
	}
	stop()
	if st := write("write after the engineer left", 453); st != ua.StatusBadUserAccessDenied {
		t.Fatalf("write after the engineer left: status %v, want BadUserAccessDenied", st)
	}
	if v := read("at the end"); v != 452 || plc.WritesTo(path) != 1 {
		t.Fatalf("at the end: pickup %v after %d writes; want 452 after 1", v, plc.WritesTo(path))
	}
}
