package scenario

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/brana-ot/brana/testbench/gwtest"
)

// An allowed read by an independent client returns the PLC's values, and the
// audit log holds the command record (write-ahead) before its result.
func TestAllowedReadIsAudited(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))

	c := svClient(t, gw.ModbusAddr("scada"), 1)
	got, err := c.ReadRegisters(0, 4, mb.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read through the gateway: %v", err)
	}
	// The feeder's protection setpoints: pickup 400 A, 500 ms, earth fault 20 A, 300 ms.
	if want := []uint16{400, 500, 20, 300}; !slices.Equal(got, want) {
		t.Fatalf("holding 0..3 = %v, want %v", got, want)
	}
	if n := plc.Counters().Requests(1, 3); n != 1 {
		t.Errorf("PLC saw %d FC 3 requests, want 1", n)
	}

	cmd := waitAudit(t, gw, "the read command", func(r *auditRec) bool {
		return r.Type == "command" && r.fc() == 3 && r.Party == "monitoring"
	})
	checks := []struct{ field, got, want string }{
		{"decision", cmd.Decision, "allow"},
		{"rule", cmd.Rule, "monitoring-read"},
		{"party", cmd.Party, "monitoring"},
		{"party_name", cmd.PartyName, "Dispatch monitoring"},
		{"org", cmd.Org, "Distribuce Lhota a.s."},
		{"listener", cmd.Listener, "scada"},
		{"target", cmd.Target, "plc"},
		{"class", cmd.Class, "read"},
		{"read_table", cmd.ReadTable, "holding"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("command record %s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if cmd.unit() != 1 || deref(cmd.ReadAddr) != 0 || deref(cmd.ReadCount) != 4 {
		t.Errorf("command record unit/read_addr/read_count = %d/%d/%d, want 1/0/4",
			cmd.unit(), deref(cmd.ReadAddr), deref(cmd.ReadCount))
	}
	if !strings.HasPrefix(cmd.Source, monitoringIP+":") || cmd.Session == "" {
		t.Errorf("command record source %q session %q", cmd.Source, cmd.Session)
	}

	res := waitAudit(t, gw, "the read's result", resultOf(cmd.Seq))
	if res.line <= cmd.line || res.Seq <= cmd.Seq {
		t.Errorf("result (line %d, seq %d) is not after its command (line %d, seq %d)", res.line, res.Seq, cmd.line, cmd.Seq)
	}
	if res.Status != "ok" || res.Exception != 0 || res.Session != cmd.Session || res.Target != "plc" {
		t.Errorf("result record: %s", res.String())
	}
	if res.LatencyUS <= 0 {
		t.Errorf("result record has no latency: %s", res.String())
	}
}

// Denied requests get the exception of their denial reason, never reach the
// PLC, and are audited with decision deny, reason and rule.
func TestPolicyDenials(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder", 2: "feeder"})
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))
	addr := gw.ModbusAddr("scada")

	tests := []struct {
		name   string
		src    string
		unit   byte
		pdu    []byte
		code   byte // exception; 0 = the write is allowed
		reason string
		rule   string
		reset  bool // the connection is reset after the answer
	}{
		{name: "ok/engineering-writes-setpoint", src: engineeringIP, unit: 1, pdu: pduWriteSingle(105, 1234), rule: "feeder-setpoints"},
		{name: "ok/engineering-writes-window-edges", src: engineeringIP, unit: 1, pdu: pduWriteMultiple(118, 0, 5000), rule: "feeder-setpoints"},
		{name: "fail/read-only-party-writes-single", src: monitoringIP, unit: 1, pdu: pduWriteSingle(100, 1), code: 0x01, reason: "class", rule: "monitoring-read"},
		{name: "fail/read-only-party-writes-multiple", src: monitoringIP, unit: 1, pdu: pduWriteMultiple(100, 1, 2), code: 0x01, reason: "class", rule: "monitoring-read"},
		{name: "fail/read-only-party-writes-coil", src: monitoringIP, unit: 1, pdu: pdu(5, 0, 0xFF00), code: 0x01, reason: "class", rule: "monitoring-read"},
		{name: "fail/address-below-range", src: engineeringIP, unit: 1, pdu: pduWriteSingle(99, 1), code: 0x02, reason: "address", rule: "feeder-setpoints"},
		{name: "fail/address-straddles-range-end", src: engineeringIP, unit: 1, pdu: pduWriteMultiple(118, 1, 2, 3), code: 0x02, reason: "address", rule: "feeder-setpoints"},
		{name: "fail/address-protection-setpoint", src: engineeringIP, unit: 1, pdu: pduWriteSingle(0, 100), code: 0x02, reason: "address", rule: "feeder-setpoints"},
		{name: "fail/value-above-bounds", src: engineeringIP, unit: 1, pdu: pduWriteSingle(100, 5001), code: 0x03, reason: "value", rule: "feeder-setpoints"},
		{name: "fail/value-above-bounds-in-multiple", src: engineeringIP, unit: 1, pdu: pduWriteMultiple(100, 10, 65535, 20), code: 0x03, reason: "value", rule: "feeder-setpoints"},
		{name: "fail/reset-rule-closes-connection", src: engineeringIP, unit: 2, pdu: pduWriteSingle(100, 1), code: 0x02, reason: "address", rule: "unit2-coils-reset", reset: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plc.ResetCounters()
			rc := dialFrom(t, addr, tt.src)
			fc := tt.pdu[0]
			resp := rc.call(tt.unit, tt.pdu)

			if tt.code == 0 {
				if !slices.Equal(resp, tt.pdu[:5]) {
					t.Fatalf("answer % x, want the echo % x", resp, tt.pdu[:5])
				}
				if n := plc.Counters().Writes(tt.unit); n != 1 {
					t.Errorf("PLC saw %d writes, want 1", n)
				}
			} else {
				expectException(t, resp, fc, tt.code)
				if n := plc.Counters().Total(); n != 0 {
					t.Errorf("PLC saw %d requests (writes: %d), want none", n, plc.Counters().Writes(tt.unit))
				}
			}

			rec := waitAudit(t, gw, "the write", commandFrom(rc.source(), int(fc)))
			// The record names what was to be written.
			wantAddr, wantVals := writeOf(tt.pdu)
			if rec.Class != "write" || rec.unit() != int(tt.unit) || deref(rec.WriteAddr) != int(wantAddr) ||
				deref(rec.WriteCount) != len(wantVals) || rec.NValues != len(wantVals) || !slices.Equal(rec.Values, wantVals) {
				t.Errorf("audit record does not describe the write at %d of %v: %s", wantAddr, wantVals, rec.String())
			}
			if rec.Party != map[string]string{monitoringIP: "monitoring", engineeringIP: "engineering"}[tt.src] {
				t.Errorf("audit record party %q for source %s", rec.Party, tt.src)
			}
			if tt.code == 0 {
				if rec.Decision != "allow" || rec.Rule != tt.rule || rec.Class != "write" {
					t.Errorf("audit record: %s", rec.String())
				}
				waitAudit(t, gw, "the write's result", resultOf(rec.Seq))
			} else if rec.Decision != "deny" || rec.Reason != tt.reason || rec.Rule != tt.rule || rec.Exception != int(tt.code) {
				t.Errorf("audit record decision/reason/rule/exception = %s/%s/%s/%d, want deny/%s/%s/%d\n%s",
					rec.Decision, rec.Reason, rec.Rule, rec.Exception, tt.reason, tt.rule, tt.code, rec.String())
			}

			if tt.reset {
				rc.expectClosed(3 * time.Second)
				return
			}
			// The connection stays usable after a denial.
			got := registers(t, rc.call(tt.unit, pduReadHolding(0, 2)))
			if !slices.Equal(got, []uint16{400, 500}) {
				t.Errorf("read after the write: %v, want [400 500]", got)
			}
		})
	}

	if got := plc.Unit(1).HoldingRegister(105); got != 1234 {
		t.Errorf("allowed write: holding 105 = %d, want 1234", got)
	}
	if got := plc.Unit(1).HoldingRegister(100); got != 0 {
		t.Errorf("denied writes changed holding 100 to %d", got)
	}
}

// A source address bound to no party is refused before any Modbus is spoken.
func TestUnidentifiedSourceRefused(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: `+plcAddr+`
parties:
  - id: engineering
    name: "Protection engineer"
    organisation: "Servis Morava s.r.o."
    kind: operator
    networks: [127.0.0.2/32]
rules:
  - name: engineering-read
    parties: [engineering]
    targets: [plc]
    classes: [read]
`)
	addr := gw.ModbusAddr("scada")

	t.Run("fail/unidentified-source", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		rc.c.Write(frame(1, 1, pduReadHolding(0, 1))) // may fail: the gateway may have closed already
		rc.expectClosed(3 * time.Second)
		rec := waitAudit(t, gw, "the refused session", func(r *auditRec) bool {
			return r.Type == "session.refused" && r.Source == rc.source()
		})
		if rec.Decision != "deny" || rec.Reason != "unidentified" || rec.Party != "" {
			t.Errorf("refusal record: %s", rec.String())
		}
		if n := plc.Counters().Total(); n != 0 {
			t.Errorf("PLC saw %d requests, want none", n)
		}
		for _, r := range readAudit(t, gw.AuditPath()) {
			if r.Source == rc.source() && r.Type != "session.refused" {
				t.Errorf("unexpected record for the refused source: %s", r.String())
			}
		}
	})

	t.Run("ok/identified-source", func(t *testing.T) {
		rc := dialFrom(t, addr, engineeringIP)
		if got := registers(t, rc.call(1, pduReadHolding(0, 1))); !slices.Equal(got, []uint16{400}) {
			t.Errorf("holding 0 = %v, want [400]", got)
		}
	})
}

// writeOf returns the address and values of an FC 5, 6 or 16 request PDU as
// the audit log records them (a coil value as 0 or 1).
func writeOf(p []byte) (uint16, []uint16) {
	addr := binary.BigEndian.Uint16(p[1:])
	switch p[0] {
	case 5:
		if binary.BigEndian.Uint16(p[3:]) == 0xFF00 {
			return addr, []uint16{1}
		}
		return addr, []uint16{0}
	case 6:
		return addr, []uint16{binary.BigEndian.Uint16(p[3:])}
	}
	vals := make([]uint16, binary.BigEndian.Uint16(p[3:]))
	for i := range vals {
		vals[i] = binary.BigEndian.Uint16(p[6+2*i:])
	}
	return addr, vals
}
