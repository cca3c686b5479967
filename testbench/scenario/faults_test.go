package scenario

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

const (
	targetTimeout = 200 * time.Millisecond
	unitBackoff   = 50 * time.Millisecond
)

// faultTarget are the target settings of the downstream fault tests.
const faultTarget = "    timeout: 200ms\n    dead_unit_backoff: 50ms\n    connections: 1\n"

// Downstream faults become exception 0x0B within about the target timeout,
// and never shift answers: whatever the faulty unit did, the next request
// (to a healthy unit, or to the same unit once it recovered) gets its own
// values. Exceptions from the PLC itself pass through unchanged.
func TestDownstreamFaults(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder", 2: "feeder"})
	markUnits(t, plc)
	gw := gwtest.Start(t, tcpConfig(plcAddr, faultTarget))
	addr := gw.ModbusAddr("scada")

	// readMarks reads holding 100+off.. of unit over rc and checks the values
	// are that unit's own.
	readMarks := func(t *testing.T, rc *rawConn, unit byte, off, n uint16) {
		t.Helper()
		got := registers(t, rc.call(unit, pduReadHolding(100+off, n)))
		if want := marks(unit, 100+off, n); !slices.Equal(got, want) {
			t.Fatalf("unit %d holding %d..: got %v, want %v (a shifted or misrouted answer)", unit, 100+off, got, want)
		}
	}
	// failsWith0B sends a read to the faulty unit 1 and checks the gateway
	// answers 0x0B within about the target timeout, and audits the failure.
	failsWith0B := func(t *testing.T, rc *rawConn, maxWait time.Duration) {
		t.Helper()
		resp, took := rc.timedCall(1, pduReadHolding(100, 2))
		expectException(t, resp, 3, 0x0B)
		if took > maxWait {
			t.Errorf("0x0B after %v, want within %v", took, maxWait)
		}
		cmd := waitAudit(t, gw, "the failed read", func(r *auditRec) bool {
			return r.Type == "command" && r.Source == rc.source() && r.fc() == 3 && r.unit() == 1
		})
		res := waitAudit(t, gw, "the failed read's result", resultOf(cmd.Seq))
		if res.Status != "failed" || res.Exception != 0x0B || res.Detail == "" {
			t.Errorf("result record: %s", res.String())
		}
	}
	// recovered waits out the dead-unit back-off and checks unit 1 answers
	// with its own values again.
	recovered := func(t *testing.T, rc *rawConn) {
		t.Helper()
		time.Sleep(2 * unitBackoff)
		readMarks(t, rc, 1, 3, 4)
		readMarks(t, rc, 1, 0, 2)
	}

	t.Run("fail/silent-unit", func(t *testing.T) {
		defer plc.ClearFault(1)
		rc := dialFrom(t, addr, monitoringIP)
		plc.SetFault(1, modbussim.Fault{Silent: true})
		resp, took := rc.timedCall(1, pduReadHolding(100, 2))
		expectException(t, resp, 3, 0x0B)
		if took < targetTimeout*3/4 || took > targetTimeout+500*time.Millisecond {
			t.Errorf("0x0B after %v, want about the target timeout %v", took, targetTimeout)
		}
		// The next request, to a healthy unit on the same target and
		// connection, gets its own answer.
		readMarks(t, rc, 2, 0, 2)
		readMarks(t, rc, 2, 5, 3)
		// Another client is not disturbed either.
		other := dialFrom(t, addr, monitoringIP)
		readMarks(t, other, 2, 10, 1)
		if n := plc.Counters().Requests(1, 3); n != 1 {
			t.Errorf("silent unit saw %d reads, want 1", n)
		}
		plc.ClearFault(1)
		recovered(t, rc)
	})

	t.Run("fail/late-answer-is-dropped", func(t *testing.T) {
		defer plc.ClearFault(1)
		rc := dialFrom(t, addr, monitoringIP)
		const delay = 350 * time.Millisecond
		plc.SetFault(1, modbussim.Fault{Delay: delay})
		t0 := time.Now()
		failsWith0B(t, rc, targetTimeout+500*time.Millisecond)
		plc.ClearFault(1)
		// Before the late answer arrives: another unit, then the same unit
		// (the back-off has passed) ask for other registers. A late answer
		// delivered here would carry holding 100..101 of unit 1.
		readMarks(t, rc, 2, 2, 3)
		time.Sleep(2 * unitBackoff)
		if time.Since(t0) >= delay {
			t.Log("the late answer was already due; the test is weaker on this run")
		}
		readMarks(t, rc, 1, 7, 3)
		// After the late answer was sent by the PLC.
		time.Sleep(time.Until(t0.Add(delay + 50*time.Millisecond)))
		readMarks(t, rc, 1, 12, 2)
		readMarks(t, rc, 2, 12, 2)
	})

	t.Run("fail/disconnect-then-recovery", func(t *testing.T) {
		defer plc.ClearFault(1)
		rc := dialFrom(t, addr, monitoringIP)
		plc.SetFault(1, modbussim.Fault{Disconnect: true})
		failsWith0B(t, rc, targetTimeout+500*time.Millisecond)
		readMarks(t, rc, 2, 0, 2) // the target reconnects for the next request
		plc.ClearFault(1)
		recovered(t, rc)
	})

	t.Run("fail/garbage-answer", func(t *testing.T) {
		defer plc.ClearFault(1)
		rc := dialFrom(t, addr, monitoringIP)
		plc.SetFault(1, modbussim.Fault{Garbage: true})
		failsWith0B(t, rc, targetTimeout+500*time.Millisecond)
		readMarks(t, rc, 2, 4, 4)
		plc.ClearFault(1)
		recovered(t, rc)
	})

	passthrough := []struct {
		name  string
		fault modbussim.Fault
		pdu   []byte
		code  byte
	}{
		{"ok/plc-exception-04-passes-through", modbussim.Fault{Exception: 0x04}, pduReadHolding(100, 2), 0x04},
		{"ok/plc-exception-06-passes-through", modbussim.Fault{Exception: 0x06}, pduReadHolding(100, 2), 0x06},
		{"ok/plc-exception-01-passes-through", modbussim.Fault{Exception: 0x01}, pduReadInput(0, 2), 0x01},
		// No fault: the model has 128 holding registers and says 02 itself.
		{"ok/plc-illegal-address-passes-through", modbussim.Fault{}, pduReadHolding(126, 4), 0x02},
	}
	for _, tt := range passthrough {
		t.Run(tt.name, func(t *testing.T) {
			defer plc.ClearFault(1)
			plc.ResetCounters()
			rc := dialFrom(t, addr, monitoringIP)
			plc.SetFault(1, tt.fault)
			expectException(t, rc.call(1, tt.pdu), tt.pdu[0], tt.code)
			// It came from the PLC, not from the gateway.
			c := plc.Counters()
			if c.Requests(1, tt.pdu[0]) != 1 || c.Exceptions(1) != 1 {
				t.Errorf("PLC saw %d requests and gave %d exceptions, want 1 and 1", c.Requests(1, tt.pdu[0]), c.Exceptions(1))
			}
			cmd := waitAudit(t, gw, "the read", commandFrom(rc.source(), int(tt.pdu[0])))
			res := waitAudit(t, gw, "its result", resultOf(cmd.Seq))
			if res.Exception != int(tt.code) || !strings.HasPrefix(res.Status, "exception from target") {
				t.Errorf("result record: %s", res.String())
			}
			plc.ClearFault(1)
			readMarks(t, rc, 1, 0, 3)
		})
	}
}

// Writes that fail downstream are never retried, even with retry_reads set;
// reads are, and the audit result says how often.
func TestRetries(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder", 2: "feeder"})
	markUnits(t, plc)
	gw := gwtest.Start(t, tcpConfig(plcAddr, faultTarget+"    retry_reads: 2\n"))
	addr := gw.ModbusAddr("scada")

	tests := []struct {
		name     string
		src      string
		fault    modbussim.Fault
		pdu      []byte
		attempts uint64 // requests with this function code at the PLC
		retries  int    // in the audit result
	}{
		{"fail/write-single-silent-not-retried", engineeringIP, modbussim.Fault{Silent: true}, pduWriteSingle(110, 77), 1, 0},
		{"fail/write-multiple-disconnect-not-retried", engineeringIP, modbussim.Fault{Disconnect: true}, pduWriteMultiple(110, 1, 2), 1, 0},
		{"fail/write-garbage-answer-not-retried", engineeringIP, modbussim.Fault{Garbage: true}, pduWriteSingle(111, 5), 1, 0},
		{"fail/read-silent-retried", monitoringIP, modbussim.Fault{Silent: true}, pduReadHolding(100, 2), 3, 2},
		{"fail/read-disconnect-retried", monitoringIP, modbussim.Fault{Disconnect: true}, pduReadHolding(100, 2), 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer plc.ClearFault(1)
			time.Sleep(2 * unitBackoff) // a back-off left by the case before
			plc.ResetCounters()
			rc := dialFrom(t, addr, tt.src)
			plc.SetFault(1, tt.fault)
			expectException(t, rc.call(1, tt.pdu), tt.pdu[0], 0x0B)
			plc.ClearFault(1)
			if n := plc.Counters().Requests(1, tt.pdu[0]); n != tt.attempts {
				t.Errorf("PLC saw FC %d %d times, want %d", tt.pdu[0], n, tt.attempts)
			}
			cmd := waitAudit(t, gw, "the command", commandFrom(rc.source(), int(tt.pdu[0])))
			res := waitAudit(t, gw, "its result", resultOf(cmd.Seq))
			if cmd.Decision != "allow" || res.Status != "failed" || res.Retries != tt.retries || res.Exception != 0x0B {
				t.Errorf("retries %d, want %d\ncommand: %s\nresult:  %s", res.Retries, tt.retries, cmd.String(), res.String())
			}
			// Nothing was retried behind the client's back later either.
			time.Sleep(2 * targetTimeout)
			if n := plc.Counters().Requests(1, tt.pdu[0]); n != tt.attempts {
				t.Errorf("PLC saw FC %d %d times after a while, want %d", tt.pdu[0], n, tt.attempts)
			}
			if got := registers(t, rc.call(2, pduReadHolding(100, 2))); !slices.Equal(got, marks(2, 100, 2)) {
				t.Errorf("next read: %v, want %v", got, marks(2, 100, 2))
			}
		})
	}
}

// A PLC that restarts (or closes an idle connection, as many do) leaves the
// gateway with a dead downstream connection. The PLC is answering again, so
// clients must get answers again at once, not after a dead-unit back-off.
func TestPLCRestart(t *testing.T) {
	// restart stops the PLC's endpoint, dropping every connection, and
	// serves it again on the same address.
	restart := func(t *testing.T, plc *modbussim.PLC, srv *plcServer) *plcServer {
		srv.stop()
		return servePLC(t, plc, srv.addr)
	}
	newPLC := func(t *testing.T) *modbussim.PLC {
		plc, err := modbussim.New(map[byte]string{1: "feeder", 2: "feeder"})
		if err != nil {
			t.Fatal(err)
		}
		markUnits(t, plc)
		return plc
	}

	t.Run("ok/read-retried-on-a-new-connection", func(t *testing.T) {
		plc := newPLC(t)
		srv := servePLC(t, plc, "127.0.0.1:0")
		gw := gwtest.Start(t, tcpConfig(srv.addr, "    timeout: 500ms\n    retry_reads: 1\n"))
		rc := dialFrom(t, gw.ModbusAddr("scada"), monitoringIP)
		if got := registers(t, rc.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
			t.Fatalf("before the restart: %v", got)
		}
		srv = restart(t, plc, srv)
		// The gateway either noticed the closed connection already (its
		// reader sees the EOF) or the first attempt meets it and the read is
		// retried on a new connection: either way the client gets its answer.
		if got := registers(t, rc.call(1, pduReadHolding(102, 3))); !slices.Equal(got, marks(1, 102, 3)) {
			t.Fatalf("after the restart: %v, want %v", got, marks(1, 102, 3))
		}
		cmd := waitAudit(t, gw, "the read after the restart", func(r *auditRec) bool {
			return r.Type == "command" && r.Source == rc.source() && deref(r.ReadAddr) == 102
		})
		res := waitAudit(t, gw, "its result", resultOf(cmd.Seq))
		if res.Status != "ok" || res.Retries > 1 {
			t.Errorf("result record: status %q retries %d, want ok and at most 1: %s", res.Status, res.Retries, res.String())
		}
		if n := srv.accepted.Load(); n != 1 {
			t.Errorf("the restarted PLC accepted %d connections, want 1", n)
		}
	})

	t.Run("ok/reads-answered-again-right-after-restart", func(t *testing.T) {
		plc := newPLC(t)
		srv := servePLC(t, plc, "127.0.0.1:0")
		gw := gwtest.Start(t, tcpConfig(srv.addr, "    timeout: 500ms\n")) // dead_unit_backoff: default 5s
		rc := dialFrom(t, gw.ModbusAddr("scada"), monitoringIP)
		if got := registers(t, rc.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
			t.Fatalf("before the restart: %v", got)
		}
		restart(t, plc, srv)
		// Without read retries the first request may meet the dead
		// connection and fail with 0x0B, as on a direct connection ...
		resp := rc.call(1, pduReadHolding(102, 3))
		if resp[0] == 0x83 {
			expectException(t, resp, 3, 0x0B)
			t.Logf("first read after the restart: exception 0x0B")
		} else if got := registers(t, resp); !slices.Equal(got, marks(1, 102, 3)) {
			t.Fatalf("first read after the restart: %v, want %v", got, marks(1, 102, 3))
		}
		// ... but the PLC is up: the next reads, to the same unit and to
		// another, are answered, not failed for a back-off period.
		for _, unit := range []byte{1, 2, 1} {
			resp := rc.call(unit, pduReadHolding(105, 2))
			if resp[0]&0x80 != 0 {
				t.Fatalf("unit %d after the restart: exception % x; the PLC is up and answering", unit, resp)
			}
			if got := registers(t, resp); !slices.Equal(got, marks(unit, 105, 2)) {
				t.Fatalf("unit %d after the restart: %v", unit, got)
			}
		}
	})

	t.Run("fail/plc-down-then-up", func(t *testing.T) {
		addr := freeAddr(t) // nobody listens yet
		gw := gwtest.Start(t, tcpConfig(addr, "    timeout: 500ms\n"))
		rc := dialFrom(t, gw.ModbusAddr("scada"), monitoringIP)
		resp, took := rc.timedCall(1, pduReadHolding(100, 2))
		expectException(t, resp, 3, 0x0A) // gateway path unavailable
		if took > 400*time.Millisecond {
			t.Errorf("connection refused took %v to report", took)
		}
		cmd := waitAudit(t, gw, "the read", commandFrom(rc.source(), 3))
		res := waitAudit(t, gw, "its result", resultOf(cmd.Seq))
		if res.Status != "failed" || res.Exception != 0x0A {
			t.Errorf("result record: %s", res.String())
		}
		plc := newPLC(t)
		servePLC(t, plc, addr)
		if got := registers(t, rc.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
			t.Fatalf("once the PLC is up: %v", got)
		}
	})
}
