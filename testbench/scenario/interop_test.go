package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/brana-ot/brana/testbench/gwtest"
)

// Interoperability: peers that nobody here wrote talk to the real gateway.

// runTool runs an external command with a deadline and returns its combined output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// mbpoll prints one "[reference]: value" line per register.
var mbpollValue = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)\s*$`)

// mbpoll (libmodbus-based) as a client through the gateway.
func TestMbpollClient(t *testing.T) {
	needTool(t, "mbpoll", "-V")
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	setHolding(t, plc, 1, 4, 11, 12, 13, 14, 15, 16) // free registers: make every value distinct
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))
	host, port, _ := net.SplitHostPort(gw.ModbusAddr("scada"))

	t.Run("ok/read-holding-registers", func(t *testing.T) {
		out, err := runTool(t, "mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "1", "-c", "10", "-1", host)
		if err != nil {
			t.Fatalf("mbpoll: %v\n%s", err, out)
		}
		var got []uint16
		for i, m := range mbpollValue.FindAllStringSubmatch(out, -1) {
			ref, _ := strconv.Atoi(m[1])
			v, _ := strconv.Atoi(m[2])
			if ref != i+1 {
				t.Fatalf("mbpoll printed reference %d at position %d:\n%s", ref, i, out)
			}
			got = append(got, uint16(v))
		}
		if want := []uint16{400, 500, 20, 300, 11, 12, 13, 14, 15, 16}; !slices.Equal(got, want) {
			t.Fatalf("mbpoll read %v, want %v\n%s", got, want, out)
		}
		if n := plc.Counters().Requests(1, 3); n != 1 {
			t.Errorf("PLC saw %d FC 3 requests, want 1", n)
		}
	})

	t.Run("fail/write-refused", func(t *testing.T) {
		out, err := runTool(t, "mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "101", "-1", host, "500")
		if !strings.Contains(out, "Illegal function") {
			t.Fatalf("mbpoll output lacks \"Illegal function\" (err %v):\n%s", err, out)
		}
		if n := plc.Counters().Writes(1); n != 0 {
			t.Errorf("PLC saw %d writes, want none", n)
		}
		if got := plc.Unit(1).HoldingRegister(100); got != 0 {
			t.Errorf("holding 100 = %d, want 0", got)
		}
		waitAudit(t, gw, "mbpoll's refused write", func(r *auditRec) bool {
			return r.Type == "command" && r.Class == "write" && r.Decision == "deny" && r.Reason == "class" &&
				deref(r.WriteAddr) == 100 && slices.Equal(r.Values, []uint16{500})
		})
	})
}

type pyOutcome struct {
	OK        bool     `json:"ok"`
	Registers []uint16 `json:"registers"`
	Exception int      `json:"exception"`
	Error     string   `json:"error"`
}

// pymodbus as a client through the gateway, from both parties' addresses.
func TestPymodbusClient(t *testing.T) {
	const python = "/usr/bin/python3"
	needTool(t, python, "-c", "import pymodbus.client")
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	setHolding(t, plc, 1, 100, 10, 20, 30)
	gw := gwtest.Start(t, tcpConfig(plcAddr, "    timeout: 1s\n"))
	host, port, _ := net.SplitHostPort(gw.ModbusAddr("scada"))

	out, err := exec.Command(python, filepath.Join("testdata", "pymodbus_client.py"), host, port).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pymodbus client: %v\n%s%s", err, out, stderr)
	}
	var res struct {
		Version          string    `json:"version"`
		ReadSetpoints    pyOutcome `json:"read_setpoints"`
		ReadWindow       pyOutcome `json:"read_window"`
		RefusedWrite     pyOutcome `json:"refused_write"`
		ReadAfterRefusal pyOutcome `json:"read_after_refusal"`
		AllowedWrite     pyOutcome `json:"allowed_write"`
		OutOfBounds      pyOutcome `json:"out_of_bounds_write"`
		ReadBack         pyOutcome `json:"read_back"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pymodbus client output: %v\n%s", err, out)
	}
	t.Logf("pymodbus %s: %s", res.Version, out)

	checks := []struct {
		name string
		got  pyOutcome
		want pyOutcome
	}{
		{"ok/read-setpoints", res.ReadSetpoints, pyOutcome{OK: true, Registers: []uint16{400, 500, 20, 300}}},
		{"ok/read-window", res.ReadWindow, pyOutcome{OK: true, Registers: []uint16{10, 20, 30}}},
		{"fail/read-only-party-write", res.RefusedWrite, pyOutcome{Exception: 1}},
		{"ok/read-after-refusal", res.ReadAfterRefusal, pyOutcome{OK: true, Registers: []uint16{10}}},
		{"ok/engineering-write", res.AllowedWrite, pyOutcome{OK: true}},
		{"fail/engineering-write-out-of-bounds", res.OutOfBounds, pyOutcome{Exception: 3}},
		{"ok/read-back", res.ReadBack, pyOutcome{OK: true, Registers: []uint16{10, 777, 30}}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got.OK != c.want.OK || c.got.Exception != c.want.Exception || !slices.Equal(c.got.Registers, c.want.Registers) || c.got.Error != "" {
				t.Errorf("got %+v, want %+v", c.got, c.want)
			}
		})
	}
	if n := plc.Counters().Writes(1); n != 1 {
		t.Errorf("PLC saw %d writes, want only the allowed one", n)
	}
	if got := plc.Unit(1).HoldingRegister(102); got != 30 {
		t.Errorf("holding 102 = %d, want 30 (the out-of-bounds write must not land)", got)
	}
}

// regServer is a tiny PLC built on simonvetter/modbus's server: a holding
// and an input register array for unit 1 and counters of what reached it.
type regServer struct {
	mu      sync.Mutex
	holding [128]uint16
	input   [32]uint16
	reads   int
	writes  int
	units   []uint8
}

func (s *regServer) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalFunction
}

func (s *regServer) HandleDiscreteInputs(req *mb.DiscreteInputsRequest) ([]bool, error) {
	return nil, mb.ErrIllegalFunction
}

func (s *regServer) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units = append(s.units, req.UnitId)
	if req.UnitId != 1 {
		return nil, mb.ErrGWTargetFailedToRespond
	}
	if int(req.Addr)+int(req.Quantity) > len(s.holding) {
		return nil, mb.ErrIllegalDataAddress
	}
	if req.IsWrite {
		s.writes++
		copy(s.holding[req.Addr:], req.Args)
		return nil, nil
	}
	s.reads++
	return slices.Clone(s.holding[req.Addr : req.Addr+req.Quantity]), nil
}

func (s *regServer) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units = append(s.units, req.UnitId)
	if int(req.Addr)+int(req.Quantity) > len(s.input) {
		return nil, mb.ErrIllegalDataAddress
	}
	s.reads++
	return slices.Clone(s.input[req.Addr : req.Addr+req.Quantity]), nil
}

func (s *regServer) counts() (reads, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.writes
}

// startSVServer starts a simonvetter/modbus server on a free loopback port.
// The library binds its own listener and does not expose it, so a port is
// found with port 0 and handed over; a lost race is retried.
func startSVServer(t *testing.T, h mb.RequestHandler) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		srv, err := mb.NewServer(&mb.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 4, Logger: quiet}, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			if attempt < 5 {
				continue
			}
			t.Fatalf("simonvetter server: %v", err)
		}
		t.Cleanup(func() { srv.Stop() })
		return addr
	}
}

// simonvetter/modbus's server as an independent PLC behind the gateway.
func TestSimonvetterServerDownstream(t *testing.T) {
	s := &regServer{}
	for i := range s.holding {
		s.holding[i] = uint16(3000 + i)
	}
	for i := range s.input {
		s.input[i] = uint16(10 * i)
	}
	gw := gwtest.Start(t, tcpConfig(startSVServer(t, s), "    timeout: 1s\n"))
	addr := gw.ModbusAddr("scada")

	t.Run("ok/read-holding-with-simonvetter-client", func(t *testing.T) {
		got, err := svClient(t, addr, 1).ReadRegisters(0, 5, mb.HOLDING_REGISTER)
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint16{3000, 3001, 3002, 3003, 3004}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("ok/read-input", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		if got := registers(t, rc.call(1, pduReadInput(3, 3))); !slices.Equal(got, []uint16{30, 40, 50}) {
			t.Errorf("got %v", got)
		}
	})

	t.Run("ok/allowed-write-single", func(t *testing.T) {
		_, before := s.counts()
		rc := dialFrom(t, addr, engineeringIP)
		if resp, want := rc.call(1, pduWriteSingle(110, 4321)), pduWriteSingle(110, 4321); !slices.Equal(resp, want) {
			t.Fatalf("answer % x, want % x", resp, want)
		}
		if _, after := s.counts(); after != before+1 {
			t.Errorf("server saw %d writes, want 1", after-before)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.holding[110] != 4321 {
			t.Errorf("holding 110 = %d, want 4321", s.holding[110])
		}
	})

	t.Run("ok/allowed-write-multiple", func(t *testing.T) {
		rc := dialFrom(t, addr, engineeringIP)
		if resp := rc.call(1, pduWriteMultiple(100, 1, 2, 3)); !slices.Equal(resp, pdu(16, 100, 3)) {
			t.Fatalf("answer % x", resp)
		}
		if got := registers(t, rc.call(1, pduReadHolding(99, 5))); !slices.Equal(got, []uint16{3099, 1, 2, 3, 3103}) {
			t.Errorf("read back %v", got)
		}
	})

	t.Run("fail/write-by-read-only-party", func(t *testing.T) {
		_, before := s.counts()
		// simonvetter's client cannot bind a source address: it is "monitoring".
		err := svClient(t, addr, 1).WriteRegister(105, 1)
		if !errors.Is(err, mb.ErrIllegalFunction) {
			t.Errorf("write: %v, want %v", err, mb.ErrIllegalFunction)
		}
		if _, after := s.counts(); after != before {
			t.Errorf("server saw %d writes, want none", after-before)
		}
	})

	t.Run("ok/server-exception-passes-through", func(t *testing.T) {
		rc := dialFrom(t, addr, monitoringIP)
		expectException(t, rc.call(1, pduReadHolding(126, 4)), 3, 0x02)
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.units {
		if u != 1 {
			t.Errorf("the server was addressed as unit %d", u)
		}
	}
}
