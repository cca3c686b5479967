package scenario

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// syncBuffer collects a child process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ptyPair runs socat to make two linked pseudo-terminals, a null-modem cable
// between the gateway's serial port and the simulated PLC's, and waits until
// both links exist. socat is stopped when the test ends.
func ptyPair(t *testing.T) (gwDev, plcDev string) {
	t.Helper()
	needTool(t, "socat", "-V")
	dir := t.TempDir()
	gwDev, plcDev = filepath.Join(dir, "gw"), filepath.Join(dir, "plc")
	cmd := exec.Command("socat", "-d", "-d",
		"pty,raw,echo=0,link="+gwDev, "pty,raw,echo=0,link="+plcDev)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("socat: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err1 := os.Stat(gwDev)
		_, err2 := os.Stat(plcDev)
		if err1 == nil && err2 == nil {
			return gwDev, plcDev
		}
		select {
		case <-exited:
			t.Fatalf("socat exited before making the pty pair:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat made no pty pair within 5s:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveRTU serves plc as a Modbus RTU slave on the tty dev until the test ends.
func serveRTU(t *testing.T, plc *modbussim.PLC, dev string) {
	t.Helper()
	f, err := modbussim.OpenSerial(dev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := plc.ServeRTU(ctx, f, modbussim.RTUOptions{Baud: 19200}); err != nil {
			t.Errorf("simulated RTU slave: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Close()
	})
}

const (
	rtuTimeout = 300 * time.Millisecond
	rtuBackoff = time.Second
)

// Modbus RTU end to end: the gateway's serial target talks over a pty pair
// to a simulated RTU slave with two units on one bus.
func TestRTUOverPty(t *testing.T) {
	gwDev, plcDev := ptyPair(t)
	plc, err := modbussim.New(map[byte]string{1: "feeder", 2: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	markUnits(t, plc)
	serveRTU(t, plc, plcDev)
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: rtu
    device: `+gwDev+`
    baud: 19200
    parity: N
    timeout: 300ms
    dead_unit_backoff: 1s
`+partiesYAML+rulesYAML+`
  - name: broadcast-setpoints
    parties: [engineering]
    targets: [plc]
    classes: [write]
    units: [0]
    ranges:
      holding: ["115-119"]
`)
	addr := gw.ModbusAddr("scada")
	rc := dialFrom(t, addr, monitoringIP)

	readMarks := func(t *testing.T, unit byte, off, n uint16) {
		t.Helper()
		got := registers(t, rc.call(unit, pduReadHolding(100+off, n)))
		if want := marks(unit, 100+off, n); !slices.Equal(got, want) {
			t.Fatalf("unit %d holding %d..: got %v, want %v", unit, 100+off, got, want)
		}
	}

	t.Run("ok/read", func(t *testing.T) {
		plc.ResetCounters()
		readMarks(t, 1, 0, 3)
		readMarks(t, 2, 4, 10)
		if got := registers(t, rc.call(1, pduReadHolding(0, 4))); !slices.Equal(got, []uint16{400, 500, 20, 300}) {
			t.Errorf("protection setpoints %v", got)
		}
		recent := plc.Recent()
		if len(recent) != 3 || recent[0].Via != "rtu" || recent[0].Unit != 1 || recent[1].Unit != 2 {
			t.Errorf("PLC saw %+v, want three RTU reads", recent)
		}
	})

	t.Run("ok/write-allowed", func(t *testing.T) {
		plc.ResetCounters()
		eng := dialFrom(t, addr, engineeringIP)
		if resp := eng.call(1, pduWriteMultiple(110, 4000, 4001)); !slices.Equal(resp, pdu(16, 110, 2)) {
			t.Fatalf("answer % x", resp)
		}
		if got := []uint16{plc.Unit(1).HoldingRegister(110), plc.Unit(1).HoldingRegister(111)}; !slices.Equal(got, []uint16{4000, 4001}) {
			t.Errorf("holding 110..111 = %v", got)
		}
		if n := plc.Counters().Writes(1); n != 1 {
			t.Errorf("PLC saw %d writes, want 1", n)
		}
		setHolding(t, plc, 1, 110, mark(1, 110), mark(1, 111))
	})

	t.Run("ok/broadcast-write-reaches-every-unit", func(t *testing.T) {
		plc.ResetCounters()
		eng := dialFrom(t, addr, engineeringIP)
		// Unit 0 is a broadcast: no unit answers, so neither does the
		// gateway; the read pipelined behind it gets its own answer.
		eng.write(append(frame(0x0B0B, 0, pduWriteSingle(116, 4242)), frame(0x0C0C, 2, pduReadHolding(115, 3))...))
		got := registers(t, eng.expect(0x0C0C, 2, 5*time.Second))
		if want := []uint16{mark(2, 115), 4242, mark(2, 117)}; !slices.Equal(got, want) {
			t.Errorf("unit 2 holding 115..117 = %v, want %v", got, want)
		}
		if got := plc.Unit(1).HoldingRegister(116); got != 4242 {
			t.Errorf("unit 1 holding 116 = %d, want 4242", got)
		}
		if n := plc.Counters().Writes(0); n != 1 {
			t.Errorf("PLC saw %d broadcast writes, want 1", n)
		}
		cmd := waitAudit(t, gw, "the broadcast", commandFrom(eng.source(), 6))
		res := waitAudit(t, gw, "its result", resultOf(cmd.Seq))
		if cmd.Decision != "allow" || cmd.Rule != "broadcast-setpoints" || cmd.unit() != 0 || res.Status != "broadcast sent" {
			t.Errorf("audit records:\n%s\n%s", cmd.String(), res.String())
		}
		setHolding(t, plc, 1, 116, mark(1, 116))
		setHolding(t, plc, 2, 116, mark(2, 116))
	})

	t.Run("fail/broadcast-outside-its-rule", func(t *testing.T) {
		plc.ResetCounters()
		eng := dialFrom(t, addr, engineeringIP)
		// A denied broadcast is answered, with the exception of its denial.
		expectException(t, eng.call(0, pduWriteSingle(100, 1)), 6, 0x02)
		if n := plc.Counters().Total(); n != 0 {
			t.Errorf("PLC saw %d requests, want none", n)
		}
	})

	t.Run("fail/read-only-party-write-stays-off-the-bus", func(t *testing.T) {
		plc.ResetCounters()
		expectException(t, rc.call(1, pduWriteSingle(100, 1)), 6, 0x01)
		if n := plc.Counters().Total(); n != 0 {
			t.Errorf("PLC saw %d requests, want none", n)
		}
	})

	t.Run("fail/bad-crc-then-next-works", func(t *testing.T) {
		defer plc.ClearFault(1)
		plc.ResetCounters()
		plc.SetFault(1, modbussim.Fault{BadCRC: true})
		expectException(t, rc.call(1, pduReadHolding(100, 2)), 3, 0x0B)
		if n := plc.Counters().Requests(1, 3); n != 1 {
			t.Errorf("PLC saw %d reads, want 1 (it answered with a bad CRC)", n)
		}
		plc.ClearFault(1)
		readMarks(t, 1, 2, 5)
		readMarks(t, 2, 2, 5)
	})

	t.Run("ok/plc-exception-passes-through", func(t *testing.T) {
		defer plc.ClearFault(1)
		plc.SetFault(1, modbussim.Fault{Exception: 0x02})
		expectException(t, rc.call(1, pduReadHolding(100, 2)), 3, 0x02)
		plc.ClearFault(1)
		readMarks(t, 1, 6, 2)
	})

	t.Run("ok/plc-illegal-address-passes-through", func(t *testing.T) {
		expectException(t, rc.call(2, pduReadHolding(127, 2)), 3, 0x02)
		readMarks(t, 2, 0, 1)
	})

	t.Run("fail/silent-unit-does-not-block-the-bus", func(t *testing.T) {
		defer plc.ClearFault(2)
		plc.ResetCounters()
		plc.SetFault(2, modbussim.Fault{Silent: true})
		resp, took := rc.timedCall(2, pduReadHolding(100, 2))
		expectException(t, resp, 3, 0x0B)
		if took < rtuTimeout*3/4 || took > rtuTimeout+700*time.Millisecond {
			t.Errorf("0x0B after %v, want about the timeout %v", took, rtuTimeout)
		}
		failedAt := time.Now()
		// Another unit on the same bus answers right after.
		readMarks(t, 1, 0, 4)
		// The dead unit is failed fast during its back-off: much faster
		// than the timeout, and without a frame on the bus.
		resp, took = rc.timedCall(2, pduReadHolding(100, 2))
		expectException(t, resp, 3, 0x0B)
		if took > rtuTimeout/3 {
			t.Errorf("second request to the silent unit took %v, want a fast failure (timeout %v)", took, rtuTimeout)
		}
		if n := plc.Counters().Requests(2, 3); n != 1 {
			t.Errorf("silent unit saw %d reads on the bus, want 1", n)
		}
		readMarks(t, 1, 4, 4)
		// After the back-off the unit is tried again and, healthy, answers.
		plc.ClearFault(2)
		time.Sleep(time.Until(failedAt.Add(rtuBackoff + 100*time.Millisecond)))
		readMarks(t, 2, 0, 4)
		readMarks(t, 1, 8, 4)
	})

	t.Run("ascii", func(t *testing.T) {
		t.Skip("modbussim serves Modbus RTU only; add an ASCII case when it serves ASCII")
	})
}
