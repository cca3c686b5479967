package scenario

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/gwtest"
)

// Malformed Modbus TCP over a real socket: broken MBAP framing closes the
// connection without reaching the PLC; a well-framed but invalid PDU gets
// exception 03 and the connection stays usable.
func TestMalformedFrames(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))
	addr := gw.ModbusAddr("scada")

	// withHeader is a read of holding 0..1 with the MBAP protocol id and
	// length fields replaced.
	withHeader := func(proto, length uint16) []byte {
		f := frame(7, 1, pduReadHolding(0, 2))
		binary.BigEndian.PutUint16(f[2:], proto)
		binary.BigEndian.PutUint16(f[4:], length)
		return f
	}
	closing := []struct {
		name  string
		frame []byte
	}{
		{"fail/protocol-id-1", withHeader(1, 6)},
		{"fail/protocol-id-ffff", withHeader(0xFFFF, 6)},
		{"fail/length-0", withHeader(0, 0)},
		{"fail/length-1", withHeader(0, 1)},
		{"fail/length-255", append(withHeader(0, 255), make([]byte, 249)...)},
	}
	for _, tt := range closing {
		t.Run(tt.name, func(t *testing.T) {
			plc.ResetCounters()
			rc := dialFrom(t, addr, monitoringIP)
			rc.write(tt.frame)
			rc.expectClosed(3 * time.Second)
			if n := plc.Counters().Total(); n != 0 {
				t.Errorf("PLC saw %d requests, want none", n)
			}
			rec := waitAudit(t, gw, "the invalid frame", func(r *auditRec) bool {
				return r.Type == "command" && r.Source == rc.source()
			})
			if rec.Decision != "invalid" || rec.Reason != "framing" {
				t.Errorf("audit record: %s", rec.String())
			}
		})
	}

	invalid := []struct {
		name string
		pdu  []byte
		code byte
	}{
		{"fail/fc3-quantity-0", pduReadHolding(0, 0), 0x03},
		{"fail/fc3-quantity-126", pduReadHolding(0, 126), 0x03},
		{"fail/fc3-address-overflow", pduReadHolding(0xFFFF, 2), 0x02},
		{"fail/fc3-pdu-too-long", append(pduReadHolding(0, 1), 0), 0x03},
		{"fail/fc16-byte-count-mismatch", append(pdu(16, 100, 2), 3, 0, 1, 0), 0x03},
		{"fail/fc16-byte-count-short-data", append(pdu(16, 100, 2), 4, 0, 1, 0), 0x03},
		{"fail/fc5-coil-value", pdu(5, 0, 0x1234), 0x03},
		{"fail/exception-bit-set", pdu(0x83, 0, 1), 0x01},
		{"fail/function-0", pdu(0, 0, 1), 0x01},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			plc.ResetCounters()
			rc := dialFrom(t, addr, monitoringIP)
			expectException(t, rc.call(1, tt.pdu), tt.pdu[0], tt.code)
			if n := plc.Counters().Total(); n != 0 {
				t.Errorf("PLC saw %d requests, want none", n)
			}
			rec := waitAudit(t, gw, "the invalid request", commandFrom(rc.source(), int(tt.pdu[0])))
			if rec.Decision != "invalid" || rec.Reason != "malformed" || rec.Exception != int(tt.code) {
				t.Errorf("audit record: %s", rec.String())
			}
			// The stream is still framed: the connection stays usable.
			if got := registers(t, rc.call(1, pduReadHolding(0, 2))); !slices.Equal(got, []uint16{400, 500}) {
				t.Errorf("read after the invalid request: %v, want [400 500]", got)
			}
		})
	}
}

// Requests split into single bytes, and several requests in one write, each
// get their own answer with their own transaction id, in order.
func TestStreamFraming(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder", 2: "feeder"})
	markUnits(t, plc)
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))
	addr := gw.ModbusAddr("scada")

	t.Run("ok/split-byte-by-byte", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		for i, p := range [][]byte{pduReadHolding(100, 3), pduReadHolding(0, 2)} {
			tx := uint16(0xA000 + i)
			for _, b := range frame(tx, 2, p) {
				rc.write([]byte{b})
				time.Sleep(2 * time.Millisecond)
			}
			got := registers(t, rc.expect(tx, 2, 5*time.Second))
			want := []uint16{400, 500}
			if i == 0 {
				want = marks(2, 100, 3)
			}
			if !slices.Equal(got, want) {
				t.Errorf("request %d: %v, want %v", i, got, want)
			}
		}
	})

	t.Run("ok/three-pipelined-in-one-write", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		reqs := []struct {
			tx         uint16
			unit       byte
			addr, n    uint16
			wantValues []uint16
		}{
			{0x0101, 1, 100, 2, marks(1, 100, 2)},
			{0x0007, 2, 105, 4, marks(2, 105, 4)},
			{0xFFFF, 1, 0, 4, []uint16{400, 500, 20, 300}},
		}
		var batch []byte
		for _, r := range reqs {
			batch = append(batch, frame(r.tx, r.unit, pduReadHolding(r.addr, r.n))...)
		}
		rc.write(batch)
		for _, r := range reqs {
			if got := registers(t, rc.expect(r.tx, r.unit, 5*time.Second)); !slices.Equal(got, r.wantValues) {
				t.Errorf("transaction %#04x: %v, want %v", r.tx, got, r.wantValues)
			}
		}
	})

	t.Run("ok/many-pipelined-in-one-write", func(t *testing.T) {
		// More requests than the gateway's read buffer holds at once.
		const n = 400
		rc := dialFrom(t, addr, monitoringIP)
		var batch []byte
		for i := range n {
			unit := byte(1 + i%2)
			batch = append(batch, frame(uint16(i), unit, pduReadHolding(100+uint16(i%20), 1))...)
		}
		go rc.c.Write(batch) // the answers must be read while the requests are still going out
		for i := range n {
			unit := byte(1 + i%2)
			got := registers(t, rc.expect(uint16(i), unit, 5*time.Second))
			if want := marks(unit, 100+uint16(i%20), 1); !slices.Equal(got, want) {
				t.Fatalf("request %d: %v, want %v", i, got, want)
			}
		}
	})

	t.Run("ok/pipelined-with-a-denial-between", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		batch := frame(1, 1, pduReadHolding(100, 1))
		batch = append(batch, frame(2, 1, pduWriteSingle(100, 9))...)
		batch = append(batch, frame(3, 2, pduReadHolding(101, 1))...)
		rc.write(batch)
		if got := registers(t, rc.expect(1, 1, 5*time.Second)); !slices.Equal(got, marks(1, 100, 1)) {
			t.Errorf("first: %v", got)
		}
		expectException(t, rc.expect(2, 1, 5*time.Second), 6, 0x01)
		if got := registers(t, rc.expect(3, 2, 5*time.Second)); !slices.Equal(got, marks(2, 101, 1)) {
			t.Errorf("third: %v", got)
		}
		if n := plc.Counters().Writes(1); n != 0 {
			t.Errorf("PLC saw %d writes, want none", n)
		}
	})
}
