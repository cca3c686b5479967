package scenario

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// Upstream unit ids are routed to targets and rewritten with target_unit; a
// unit with no route gets exception 0x0A and reaches no PLC.
func TestUnitRouting(t *testing.T) {
	plcA, addrA := startPLC(t, map[byte]string{1: "feeder", 3: "pump"})
	plcB, addrB := startPLC(t, map[byte]string{1: "pump"})
	markUnits(t, plcA)
	setHolding(t, plcB, 1, 100, 7000, 7001, 7002) // unit 1 of PLC B, distinct from unit 1 of PLC A
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - units: [1, 3]
        target: plc
      - units: [5]
        target: plc
        target_unit: 3
      - units: [7]
        target: pumps
        target_unit: 1
targets:
  - name: plc
    transport: tcp
    address: `+addrA+`
  - name: pumps
    transport: tcp
    address: `+addrB+partiesYAML+rulesYAML)
	addr := gw.ModbusAddr("scada")

	tests := []struct {
		name      string
		unit      byte // upstream
		want      []uint16
		plc       *modbussim.PLC
		plcUnit   byte // where the request must land
		target    string
		auditUnit int // the downstream unit in the audit record
	}{
		{name: "ok/unit-1-as-is", unit: 1, want: marks(1, 100, 3), plc: plcA, plcUnit: 1, target: "plc", auditUnit: 1},
		{name: "ok/unit-3-as-is", unit: 3, want: marks(3, 100, 3), plc: plcA, plcUnit: 3, target: "plc", auditUnit: 3},
		{name: "ok/unit-5-remapped-to-3", unit: 5, want: marks(3, 100, 3), plc: plcA, plcUnit: 3, target: "plc", auditUnit: 3},
		{name: "ok/unit-7-remapped-to-other-plc-unit-1", unit: 7, want: []uint16{7000, 7001, 7002}, plc: plcB, plcUnit: 1, target: "pumps", auditUnit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plcA.ResetCounters()
			plcB.ResetCounters()
			rc := dialFrom(t, addr, monitoringIP)
			// call checks the answer carries the upstream unit id.
			if got := registers(t, rc.call(tt.unit, pduReadHolding(100, 3))); !slices.Equal(got, tt.want) {
				t.Fatalf("upstream unit %d: %v, want %v", tt.unit, got, tt.want)
			}
			if n := tt.plc.Counters().Requests(tt.plcUnit, 3); n != 1 {
				t.Errorf("unit %d of the PLC saw %d reads, want 1", tt.plcUnit, n)
			}
			if total := plcA.Counters().Total() + plcB.Counters().Total(); total != 1 {
				t.Errorf("the PLCs saw %d requests in all, want 1", total)
			}
			rec := waitAudit(t, gw, "the read", commandFrom(rc.source(), 3))
			if rec.Target != tt.target || rec.unit() != tt.auditUnit || rec.Decision != "allow" {
				t.Errorf("audit record target/unit = %s/%d, want %s/%d: %s", rec.Target, rec.unit(), tt.target, tt.auditUnit, rec.String())
			}
		})
	}

	for _, unit := range []byte{2, 6, 0, 255} {
		t.Run(fmt.Sprintf("fail/unit-%d-has-no-route", unit), func(t *testing.T) {
			plcA.ResetCounters()
			plcB.ResetCounters()
			rc := dialFrom(t, addr, monitoringIP)
			expectException(t, rc.call(unit, pduReadHolding(100, 3)), 3, 0x0A)
			if total := plcA.Counters().Total() + plcB.Counters().Total(); total != 0 {
				t.Errorf("the PLCs saw %d requests, want none", total)
			}
			rec := waitAudit(t, gw, "the unrouted read", commandFrom(rc.source(), 3))
			if rec.Decision != "deny" || rec.Reason != "no-route" || rec.Exception != 0x0A || rec.unit() != int(unit) {
				t.Errorf("audit record: %s", rec.String())
			}
			// The connection stays usable.
			if got := registers(t, rc.call(1, pduReadHolding(100, 1))); !slices.Equal(got, marks(1, 100, 1)) {
				t.Errorf("next read: %v", got)
			}
		})
	}
}

// Many upstream clients share one downstream connection and every one gets
// its own answers.
func TestSharedDownstreamConnection(t *testing.T) {
	plc, err := modbussim.New(map[byte]string{1: "feeder", 2: "pump"})
	if err != nil {
		t.Fatal(err)
	}
	markUnits(t, plc)
	srv := servePLC(t, plc, "127.0.0.1:0")
	gw := gwtest.Start(t, tcpConfig(srv.addr, "    timeout: 2s\n    connections: 1\n    queue: 64\n"))
	addr := gw.ModbusAddr("scada")

	const clients, perClient = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	t0 := time.Now()
	for i := range clients {
		unit := byte(1 + i%2)
		c := svClient(t, addr, unit)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				off := uint16((i + j) % 17)
				n := uint16(1 + (i*7+j)%4)
				var (
					got  []uint16
					want []uint16
					err  error
				)
				if j%5 == 4 {
					// The model's protection or pump setpoints (holding 0..1).
					got, err = c.ReadRegisters(0, 2, mb.HOLDING_REGISTER)
					want = []uint16{400, 500}
					if unit == 2 {
						want = []uint16{2500, 1000}
					}
				} else {
					got, err = c.ReadRegisters(100+off, n, mb.HOLDING_REGISTER)
					want = marks(unit, 100+off, n)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d (unit %d) request %d: %v", i, unit, j, err)
					return
				}
				if !slices.Equal(got, want) {
					errs <- fmt.Errorf("client %d (unit %d) request %d: got %v, want %v", i, unit, j, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := plc.Counters()
	if got := c.Requests(1, 3) + c.Requests(2, 3); got != clients*perClient {
		t.Errorf("PLC saw %d reads, want %d", got, clients*perClient)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("PLC accepted %d connections, want 1 (connections: 1)", n)
	}
	t.Logf("%d requests from %d clients in %v", clients*perClient, clients, time.Since(t0))
}
