package modbussim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// client opens a simonvetter/modbus client: an implementation nobody here wrote.
func client(t testing.TB, url string, timeout time.Duration) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL: url, Timeout: timeout, Speed: 19200,
		Logger: log.New(io.Discard, "", 0), // its warnings are expected here
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// independentClientChecks runs the function codes simonvetter/modbus knows
// (1, 2, 3, 4, 5, 6, 15, 16) against all three models; shared by the TCP and
// RTU tests.
func independentClientChecks(t *testing.T, p *PLC, c *modbus.ModbusClient) {
	tests := []struct {
		name string
		unit byte
		run  func(c *modbus.ModbusClient) (any, error)
		want any
	}{
		{"ok/feeder/read-holding", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(0, 4, modbus.HOLDING_REGISTER) }, []uint16{400, 500, 20, 300}},
		{"ok/feeder/write-coil-close", 1, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteCoil(0, true) }, nil},
		{"ok/feeder/read-coils-closed", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadCoils(0, 3) }, []bool{true, false, false}},
		{"ok/feeder/read-discrete-closed", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadDiscreteInputs(0, 4) }, []bool{true, false, false, false}},
		{"ok/feeder/read-input-voltage", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(3, 3, modbus.INPUT_REGISTER) }, []uint16{2200, 2200, 2200}},
		{"ok/feeder/write-register-pickup", 1, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteRegister(0, 350) }, nil},
		{"ok/feeder/write-registers-window", 1, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteRegisters(100, []uint16{1, 2, 3}) }, nil},
		{"ok/feeder/read-window", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(99, 5, modbus.HOLDING_REGISTER) }, []uint16{0, 1, 2, 3, 0}},
		{"fail/feeder/pickup-zero", 1, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteRegister(0, 0) }, modbus.ErrIllegalDataValue},
		{"fail/feeder/read-past-table", 1, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(120, 9, modbus.HOLDING_REGISTER) }, modbus.ErrIllegalDataAddress},
		{"ok/pump/read-level", 2, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(0, 1, modbus.INPUT_REGISTER) }, []uint16{1500}},
		{"ok/pump/write-coils-manual-run", 2, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteCoils(0, []bool{true, false, false}) }, nil},
		{"ok/pump/read-running", 2, func(c *modbus.ModbusClient) (any, error) { return c.ReadDiscreteInputs(0, 4) }, []bool{true, false, false, false}},
		{"fail/pump/speed-101", 2, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteRegister(2, 101) }, modbus.ErrIllegalDataValue},
		{"ok/points/throw-reverse", 3, func(c *modbus.ModbusClient) (any, error) { return nil, c.WriteCoil(1, true) }, nil},
		{"ok/points/moving", 3, func(c *modbus.ModbusClient) (any, error) { return c.ReadDiscreteInputs(0, 3) }, []bool{false, false, true}},
		{"ok/points/read-setpoints", 3, func(c *modbus.ModbusClient) (any, error) { return c.ReadRegisters(0, 3, modbus.HOLDING_REGISTER) }, []uint16{3000, 0, 8000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.SetUnitId(tc.unit)
			got, err := tc.run(c)
			if wantErr, ok := tc.want.(error); ok {
				if !errors.Is(err, wantErr) {
					t.Fatalf("err = %v, want %v", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				return
			}
			switch w := tc.want.(type) {
			case []uint16:
				if !slices.Equal(got.([]uint16), w) {
					t.Fatalf("got %v, want %v", got, w)
				}
			case []bool:
				if !slices.Equal(got.([]bool), w) {
					t.Fatalf("got %v, want %v", got, w)
				}
			}
		})
	}
	s := p.Counters()
	if s.Writes(1) != 4 || s.TableWrites(1, TableHoldingRegisters) != 2 || s.TableWrites(1, TableCoils) != 1 || s.Exceptions(1) != 2 {
		t.Errorf("unit 1: writes %d, holding writes %d, coil writes %d, exceptions %d",
			s.Writes(1), s.TableWrites(1, TableHoldingRegisters), s.TableWrites(1, TableCoils), s.Exceptions(1))
	}
}

func TestTCPIndependentClient(t *testing.T) {
	p := newPLC(t, allModels)
	c := client(t, "tcp://"+serveTCP(t, p), time.Second)
	independentClientChecks(t, p, c)
}

func TestTCPFraming(t *testing.T) {
	read1 := unhex(t, "03 0000 0001")
	tests := []struct {
		name   string
		send   [][]byte // written one after another with a pause
		want   []string // responses, MBAP included, in hex
		closed bool     // the server must close the connection
	}{
		{name: "ok/one-frame", send: [][]byte{mbap(7, 1, read1)}, want: []string{"0007 0000 0005 01 03 02 0190"}},
		{name: "ok/split-header-and-body", send: [][]byte{mbap(8, 1, read1)[:3], mbap(8, 1, read1)[3:9], mbap(8, 1, read1)[9:]},
			want: []string{"0008 0000 0005 01 03 02 0190"}},
		{name: "ok/pipelined-in-one-write", send: [][]byte{slices.Concat(mbap(1, 1, read1), mbap(2, 2, read1), mbap(3, 3, read1))},
			want: []string{"0001 0000 0005 01 03 02 0190", "0002 0000 0005 02 03 02 09c4", "0003 0000 0005 03 03 02 0bb8"}},
		{name: "ok/unknown-unit-gateway-exception", send: [][]byte{mbap(9, 9, read1)}, want: []string{"0009 0000 0003 09 83 0b"}},
		{name: "ok/unit-255-is-first-unit", send: [][]byte{mbap(10, 255, read1)}, want: []string{"000a 0000 0005 ff 03 02 0190"}},
		{name: "fail/protocol-id", send: [][]byte{unhex(t, "0001 0001 0006 01 03 0000 0001")}, closed: true},
		{name: "fail/length-0", send: [][]byte{unhex(t, "0001 0000 0000 01")}, closed: true},
		{name: "fail/length-1", send: [][]byte{unhex(t, "0001 0000 0001 01")}, closed: true},
		{name: "fail/length-255", send: [][]byte{unhex(t, "0001 0000 00ff 01")}, closed: true},
		{name: "fail/good-then-bad", send: [][]byte{slices.Concat(mbap(4, 1, read1), unhex(t, "0005 0007 0006 01 03 0000 0001"))},
			want: []string{"0004 0000 0005 01 03 02 0190"}, closed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPLC(t, allModels)
			c := dial(t, serveTCP(t, p))
			for _, b := range tc.send {
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			for _, w := range tc.want {
				tx, unit, pdu, err := readADU(t, c, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got := slices.Concat(mbap(tx, unit, pdu))
				if want := unhex(t, w); !bytes.Equal(got, want) {
					t.Fatalf("response\n got % x\nwant % x", got, want)
				}
			}
			if tc.closed {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("connection not closed: n=%d err=%v", n, err)
				}
			}
		})
	}
}

// TestTCPBroadcast: unit 0 writes reach every unit and get no answer.
func TestTCPBroadcast(t *testing.T) {
	p := newPLC(t, allModels)
	c := dial(t, serveTCP(t, p))
	c.Write(mbap(1, 0, unhex(t, "06 0064 0777")))
	c.Write(mbap(2, 0, unhex(t, "03 0000 0001"))) // broadcast read: ignored
	got := roundTrip(t, c, 2, unhex(t, "03 0064 0001"))
	if !bytes.Equal(got, unhex(t, "03 02 0777")) {
		t.Fatalf("got % x", got)
	}
	for _, id := range p.Units() {
		if v := p.Unit(id).HoldingRegister(100); v != 0x777 {
			t.Errorf("unit %d holding 100 = %#x", id, v)
		}
	}
	s := p.Counters()
	if s.Writes(0) != 1 || s.Requests(0, 3) != 1 || s.TableWrites(3, TableHoldingRegisters) != 1 {
		t.Errorf("broadcast counters: writes %d, reads %d, unit 3 holding writes %d", s.Writes(0), s.Requests(0, 3), s.TableWrites(3, TableHoldingRegisters))
	}
}

func TestTCPFaults(t *testing.T) {
	write := unhex(t, "06 0064 0042")
	tests := []struct {
		name    string
		fault   Fault
		timeout time.Duration // client timeout
		wantErr error         // from simonvetter/modbus; nil means success
		applied bool          // the write took effect at the PLC
		check   func(t *testing.T, addr string)
	}{
		{name: "ok/no-fault", applied: true},
		{name: "ok/delay-within-timeout", fault: Fault{Delay: 150 * time.Millisecond}, applied: true},
		{name: "fail/delay-past-timeout", fault: Fault{Delay: 400 * time.Millisecond}, timeout: 100 * time.Millisecond, wantErr: modbus.ErrRequestTimedOut, applied: true},
		{name: "fail/silent", fault: Fault{Silent: true}, timeout: 150 * time.Millisecond, wantErr: modbus.ErrRequestTimedOut},
		{name: "fail/exception-device-failure", fault: Fault{Exception: 0x04}, wantErr: modbus.ErrServerDeviceFailure},
		{name: "fail/exception-busy", fault: Fault{Exception: 0x06}, wantErr: modbus.ErrServerDeviceBusy},
		// simonvetter/modbus skips frames with a foreign protocol id, then times out.
		{name: "fail/garbage", fault: Fault{Garbage: true}, timeout: 200 * time.Millisecond, wantErr: modbus.ErrRequestTimedOut, applied: true,
			check: func(t *testing.T, addr string) {
				c := dial(t, addr)
				c.Write(mbap(5, 1, unhex(t, "03 0000 0001")))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				h := make([]byte, 7)
				if _, err := io.ReadFull(c, h); err != nil {
					t.Fatal(err)
				}
				if h[2] == 0 && h[3] == 0 {
					t.Fatalf("garbage has protocol id 0: % x", h)
				}
			}},
		{name: "ok/bad-crc-ignored-on-tcp", fault: Fault{BadCRC: true}, applied: true},
		{name: "fail/disconnect", fault: Fault{Disconnect: true},
			check: func(t *testing.T, addr string) {
				c := dial(t, addr)
				c.Write(mbap(5, 1, unhex(t, "03 0000 0001")))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := c.Read(make([]byte, 16)); err != io.EOF {
					t.Fatalf("connection not closed: n=%d err=%v", n, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPLC(t, allModels)
			addr := serveTCP(t, p)
			p.SetFault(1, tc.fault)
			p.SetFault(2, Fault{Silent: true}) // a fault on one unit leaves the others alone

			if tc.check != nil {
				tc.check(t, addr)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Second
			}
			c := client(t, "tcp://"+addr, timeout)
			c.SetUnitId(1)
			err := c.WriteRegister(100, 0x42)
			if tc.name == "fail/disconnect" {
				if err == nil {
					t.Fatal("write succeeded over a dropped connection")
				}
			} else if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.fault.Delay > 0 {
				time.Sleep(tc.fault.Delay) // let a timed-out request finish at the PLC
			}
			if got := p.Unit(1).HoldingRegister(100) == 0x42; got != tc.applied {
				t.Errorf("write applied = %v, want %v", got, tc.applied)
			}
			if p.Counters().Writes(1) == 0 {
				t.Error("request did not reach the PLC's counters")
			}

			// Unit 3 has no fault; after ClearFault unit 1 answers again.
			p.ClearFault(1)
			fresh := dial(t, addr)
			if got := roundTrip(t, fresh, 3, write); !bytes.Equal(got, write) {
				t.Fatalf("unit 3: % x", got)
			}
			if got := roundTrip(t, fresh, 1, write); !bytes.Equal(got, write) {
				t.Fatalf("unit 1 after ClearFault: % x", got)
			}
		})
	}
}

// TestTCPShutdown: cancelling the context ends ServeTCP and its connections.
func TestTCPShutdown(t *testing.T) {
	p := newPLC(t, allModels)
	p.SetFault(1, Fault{Delay: time.Hour})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ServeTCP(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	c.Write(mbap(1, 1, unhex(t, "03 0000 0001"))) // stuck in the delay
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeTCP did not return")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection still open: %v", err)
	}
}

const mbpollPath = "/usr/bin/mbpoll"

// TestMbpoll reads and writes with mbpoll (libmodbus), another independent client.
func TestMbpoll(t *testing.T) {
	if _, err := os.Stat(mbpollPath); err != nil {
		t.Skip("mbpoll not installed")
	}
	p := newPLC(t, allModels)
	addr := serveTCP(t, p)
	port := addr[strings.LastIndex(addr, ":")+1:]
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-m", "tcp", "-p", port}, args...)
		out, err := exec.Command(mbpollPath, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("-a", "1", "-r", "1", "-c", "10", "-1", "127.0.0.1")
	for _, want := range []string{"[1]: \t400", "[2]: \t500", "[3]: \t20", "[4]: \t300", "[10]: \t0"} {
		if !strings.Contains(out, want) {
			t.Errorf("mbpoll read: no %q in\n%s", want, out)
		}
	}
	run("-a", "2", "-r", "101", "-1", "127.0.0.1", "4660", "17")
	if d := p.Unit(2); d.HoldingRegister(100) != 4660 || d.HoldingRegister(101) != 17 {
		t.Errorf("mbpoll write: holding 100..101 = %d %d", d.HoldingRegister(100), d.HoldingRegister(101))
	}
	run("-a", "1", "-t", "0", "-r", "1", "-1", "127.0.0.1", "1")
	if !p.Unit(1).DiscreteInput(fdDIClosed) {
		t.Error("mbpoll coil write did not close the breaker")
	}
	if s := p.Counters(); s.Requests(1, 3) != 1 || s.Requests(2, 16) != 1 || s.Requests(1, 5) != 1 {
		t.Errorf("counters: fc3 %d, fc16 %d, fc5 %d", s.Requests(1, 3), s.Requests(2, 16), s.Requests(1, 5))
	}
}
