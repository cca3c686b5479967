package opcuasim

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// newModel builds a PLC without a server, for deterministic model tests.
func newModel(t *testing.T, model string) *PLC {
	t.Helper()
	p, err := newPLC(model)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(p *PLC, d time.Duration) {
	for range d / (10 * time.Millisecond) {
		p.Step(10 * time.Millisecond)
	}
}

func near(a any, b, tol float64) bool {
	x, ok := a.(float64)
	return ok && math.Abs(x-b) <= tol
}

func TestFeederModel(t *testing.T) {
	p := newModel(t, "feeder")
	for path, want := range map[string]any{
		"Feeder.Breaker.Closed":               false,
		"Feeder.Measurements.CurrentL1":       0.0,
		"Feeder.Measurements.Voltage":         0.0,
		"Feeder.Measurements.Frequency":       0.0,
		"Feeder.Measurements.ActivePower":     0.0,
		"Feeder.Protection.OvercurrentPickup": 400.0,
		"Feeder.Protection.TimeDelay":         0.5,
		"Feeder.Protection.Tripped":           false,
		"Feeder.Protection.TripCount":         uint32(0),
		"Feeder.Simulation.LoadCurrent":       200.0,
		"Feeder.Simulation.PowerFactor":       0.95,
		"Feeder.Heartbeat":                    uint32(0),
		"Feeder.Firmware.Size":                uint64(0),
		"Feeder.Firmware.Writable":            true,
		"Feeder.Firmware.OpenCount":           uint16(0),
	} {
		if got := value(t, p, path); got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", path, got, got, want, want)
		}
	}

	if res := invoke(p, "Feeder.Breaker.Close"); res.StatusCode != ua.StatusOK {
		t.Fatalf("Close: %v", res.StatusCode)
	}
	run(p, 50*time.Millisecond)
	if i := value(t, p, "Feeder.Measurements.CurrentL1").(float64); i <= 0 || i >= 200 {
		t.Errorf("after 50 ms the current should be rising, got %v", i)
	}
	run(p, 2*time.Second)
	for path, want := range map[string]float64{
		"Feeder.Measurements.CurrentL1":   200,
		"Feeder.Measurements.CurrentL2":   196,
		"Feeder.Measurements.CurrentL3":   204,
		"Feeder.Measurements.Voltage":     21600,
		"Feeder.Measurements.ActivePower": math.Round(math.Sqrt(3)*21600*200/1000*0.95*10) / 10,
		"Feeder.Measurements.Frequency":   math.Round((50-math.Sqrt(3)*21600*200/1000*0.95/1e6)*1000) / 1000,
	} {
		if got := value(t, p, path); got != want {
			t.Errorf("settled %s = %v, want %v", path, got, want)
		}
	}
	if got := value(t, p, "Feeder.Heartbeat"); got != uint32(205) {
		t.Errorf("Heartbeat = %v after 205 steps", got)
	}

	// Overcurrent: the load rises above the pickup; the relay trips after
	// the delay and the trip latches.
	set(t, p, "Feeder.Simulation.LoadCurrent", 500.0)
	run(p, 300*time.Millisecond)
	if value(t, p, "Feeder.Breaker.Closed") != true {
		t.Fatal("tripped before the time delay")
	}
	run(p, time.Second)
	if value(t, p, "Feeder.Breaker.Closed") != false || value(t, p, "Feeder.Protection.Tripped") != true ||
		value(t, p, "Feeder.Protection.TripCount") != uint32(1) || value(t, p, "Feeder.Measurements.CurrentL1") != 0.0 {
		t.Fatal("no overcurrent trip")
	}
	if got := value(t, p, "Feeder.Protection.LastTripCurrent"); !near(got, 455.0, 55) { // pickup 400 .. 510 settled
		t.Errorf("LastTripCurrent = %v", got)
	}
	if res := invoke(p, "Feeder.Breaker.Close"); res.StatusCode != ua.StatusBadInvalidState {
		t.Errorf("Close with a latched trip: %v", res.StatusCode)
	}
	if res := invoke(p, "Feeder.Protection.Reset"); res.StatusCode != ua.StatusOK {
		t.Fatalf("Reset: %v", res.StatusCode)
	}
	set(t, p, "Feeder.Protection.OvercurrentPickup", 600.0)
	if res := invoke(p, "Feeder.Breaker.Close"); res.StatusCode != ua.StatusOK {
		t.Fatalf("Close after reset: %v", res.StatusCode)
	}
	run(p, 2*time.Second)
	if value(t, p, "Feeder.Breaker.Closed") != true || value(t, p, "Feeder.Measurements.CurrentL1") != 500.0 {
		t.Error("500 A under a 600 A pickup should hold")
	}
	if res := invoke(p, "Feeder.Breaker.Open"); res.StatusCode != ua.StatusOK || value(t, p, "Feeder.Breaker.Closed") != false {
		t.Errorf("Open: %v", res.StatusCode)
	}
}

func TestPumpModel(t *testing.T) {
	p := newModel(t, "pump")
	if got := value(t, p, "Pump.TankLevel"); got != 1500.0 {
		t.Fatalf("TankLevel = %v, want 1500", got)
	}
	// Inflow 15 l/s into 20 m²: 0.75 mm/s; pump 1 starts at 2500 mm after
	// about 1333 s.
	set(t, p, "Pump.Simulation.Inflow", 50.0) // 2.5 mm/s: 400 s
	for i := 0; value(t, p, "Pump.Pump1Running") != true; i++ {
		if i > 500 {
			t.Fatalf("pump 1 never started; level %v", value(t, p, "Pump.TankLevel"))
		}
		p.Step(time.Second)
	}
	if lvl := value(t, p, "Pump.TankLevel").(float64); lvl < 2490 || lvl > 2510 {
		t.Errorf("pump 1 started at %v mm, want 2500", lvl)
	}
	if value(t, p, "Pump.Pump1Starts") != uint32(1) || value(t, p, "Pump.Pump2Running") != false {
		t.Error("only pump 1 should start")
	}
	for range 20 {
		p.Step(time.Second)
	}
	if got := value(t, p, "Pump.Outflow"); got != 20.0 { // 25 l/s × 80 %
		t.Errorf("Outflow = %v, want 20", got)
	}
	if got := value(t, p, "Pump.Pump1Current"); got != 4+28*20.0/25 {
		t.Errorf("Pump1Current = %v", got)
	}

	// Manual mode: the commands are the operator's.
	set(t, p, "Pump.AutoMode", false)
	set(t, p, "Pump.Pump1Command", false)
	set(t, p, "Pump.Pump2Command", true)
	if value(t, p, "Pump.Pump1Running") != false || value(t, p, "Pump.Pump2Running") != true {
		t.Fatal("manual commands not applied at once")
	}
	// Empty the well with both pumps at full speed and no inflow: the
	// running pump trips on dry run.
	set(t, p, "Pump.Simulation.Inflow", 0.0)
	set(t, p, "Pump.SpeedSetpoint", 100.0)
	set(t, p, "Pump.Pump1Command", true) // start 2
	for i := 0; value(t, p, "Pump.Pump2Fault") != true; i++ {
		if i > 2000 {
			t.Fatalf("no dry-run trip; level %v", value(t, p, "Pump.TankLevel"))
		}
		p.Step(time.Second)
	}
	if value(t, p, "Pump.Pump1Running") != false || value(t, p, "Pump.DryRunAlarm") != true {
		t.Error("both pumps should trip below the dry-run level")
	}
	set(t, p, "Pump.Simulation.Inflow", 100.0)
	for range 200 {
		p.Step(time.Second)
	}
	if value(t, p, "Pump.Pump1Running") != false {
		t.Error("a fault latches until ResetFaults")
	}
	if res := invoke(p, "Pump.ResetFaults"); res.StatusCode != ua.StatusOK {
		t.Fatal(res.StatusCode)
	}
	if value(t, p, "Pump.Pump1Running") != true || value(t, p, "Pump.Pump1Starts") != uint32(3) {
		t.Errorf("ResetFaults should restart the commanded pump: running %v, starts %v",
			value(t, p, "Pump.Pump1Running"), value(t, p, "Pump.Pump1Starts"))
	}
}

func TestFileModes(t *testing.T) {
	p := newModel(t, "pump")
	open := func(mode byte) uint32 {
		t.Helper()
		res := invoke(p, "Pump.Firmware.Open", mode)
		if res.StatusCode != ua.StatusOK {
			t.Fatalf("Open(%d): %v", mode, res.StatusCode)
		}
		return res.OutputArguments[0].Value().(uint32)
	}
	ok := func(res *ua.CallMethodResult) *ua.CallMethodResult {
		t.Helper()
		if res.StatusCode != ua.StatusOK {
			t.Fatalf("%v", res.StatusCode)
		}
		return res
	}
	h := open(FileModeWrite)
	ok(invoke(p, "Pump.Firmware.Write", h, []byte("hello world")))
	ok(invoke(p, "Pump.Firmware.SetPosition", h, uint64(6)))
	ok(invoke(p, "Pump.Firmware.Write", h, []byte("there")))
	ok(invoke(p, "Pump.Firmware.Close", h))
	if got := p.FileContents(); string(got) != "hello there" {
		t.Fatalf("overwrite at a position: %q", got)
	}
	h = open(FileModeWrite | FileModeAppend)
	ok(invoke(p, "Pump.Firmware.Write", h, []byte("!")))
	ok(invoke(p, "Pump.Firmware.Close", h))
	if got := p.FileContents(); string(got) != "hello there!" {
		t.Fatalf("append: %q", got)
	}
	h = open(FileModeRead)
	h2 := open(FileModeRead) // readers share
	ok(invoke(p, "Pump.Firmware.SetPosition", h, uint64(1000)))
	if res := ok(invoke(p, "Pump.Firmware.GetPosition", h)); res.OutputArguments[0].Value() != uint64(12) {
		t.Errorf("SetPosition past the end: %v", res.OutputArguments[0].Value())
	}
	if res := ok(invoke(p, "Pump.Firmware.Read", h2, int32(5))); !bytes.Equal(res.OutputArguments[0].Value().([]byte), []byte("hello")) {
		t.Errorf("Read: %q", res.OutputArguments[0].Value())
	}
	if res := invoke(p, "Pump.Firmware.Read", h2, int32(-1)); res.StatusCode != ua.StatusBadInvalidArgument {
		t.Errorf("Read(-1): %v", res.StatusCode)
	}
	ok(invoke(p, "Pump.Firmware.Close", h))
	ok(invoke(p, "Pump.Firmware.Close", h2))
	h = open(FileModeWrite | FileModeEraseExisting)
	ok(invoke(p, "Pump.Firmware.Close", h))
	if got := p.FileContents(); len(got) != 0 {
		t.Fatalf("erase existing: %q", got)
	}
	for range MaxFileHandles {
		open(FileModeRead)
	}
	if res := invoke(p, "Pump.Firmware.Open", byte(FileModeRead)); res.StatusCode != ua.StatusBadResourceUnavailable {
		t.Errorf("handle %d: %v", MaxFileHandles+1, res.StatusCode)
	}
}

// TestFileCommitOnClose: the Firmware file is the PLC's program. Writes
// through a write handle are staged; the contents change only when that
// handle is closed.
func TestFileCommitOnClose(t *testing.T) {
	p := newModel(t, "feeder")
	call := func(method string, args ...any) *ua.CallMethodResult {
		t.Helper()
		res := invoke(p, "Feeder.Firmware."+method, args...)
		if res.StatusCode != ua.StatusOK {
			t.Fatalf("%s: %v", method, res.StatusCode)
		}
		return res
	}
	h := call("Open", byte(FileModeWrite)).OutputArguments[0].Value().(uint32)
	call("Write", h, []byte("program v1"))
	call("Close", h)
	if got, n := p.FileContents(), p.FileCommits(); string(got) != "program v1" || n != 1 {
		t.Fatalf("after the first Close: %q, %d commits", got, n)
	}

	h = call("Open", byte(FileModeWrite|FileModeEraseExisting)).OutputArguments[0].Value().(uint32)
	call("Write", h, []byte("program v2"))
	if got := p.FileContents(); string(got) != "program v1" {
		t.Errorf("staged write shows before Close: %q", got)
	}
	if got := value(t, p, "Feeder.Firmware.Size"); got != uint64(10) {
		t.Errorf("Size before Close: %v", got)
	}
	call("Close", h)
	if got, n := p.FileContents(), p.FileCommits(); string(got) != "program v2" || n != 2 {
		t.Fatalf("after the second Close: %q, %d commits", got, n)
	}

	// A transfer whose Close never comes changes nothing.
	h = call("Open", byte(FileModeWrite|FileModeEraseExisting)).OutputArguments[0].Value().(uint32)
	call("Write", h, []byte("tampered"))
	if got, n := p.FileContents(), p.FileCommits(); string(got) != "program v2" || n != 2 {
		t.Fatalf("without Close: %q, %d commits", got, n)
	}
}

// TestArguments: every method's InputArguments and OutputArguments
// properties describe what the Call handler checks.
func TestArguments(t *testing.T) {
	for _, model := range Models() {
		p := newModel(t, model)
		for _, n := range p.space.nodes {
			if n.class != ua.NodeClassMethod {
				continue
			}
			for _, prop := range []struct {
				name string
				args []*ua.Argument
			}{{"InputArguments", n.inArgs}, {"OutputArguments", n.outArgs}} {
				v, ok := p.Value(n.path + "." + prop.name)
				if len(prop.args) == 0 {
					if ok {
						t.Errorf("%s has %s but no arguments", n.path, prop.name)
					}
					continue
				}
				eos, _ := v.([]*ua.ExtensionObject)
				if !ok || len(eos) != len(prop.args) {
					t.Errorf("%s.%s = %v, want %d arguments", n.path, prop.name, v, len(prop.args))
					continue
				}
				for i, eo := range eos {
					if a, _ := eo.Value.(*ua.Argument); a != prop.args[i] {
						t.Errorf("%s.%s[%d] = %v", n.path, prop.name, i, eo.Value)
					}
				}
			}
		}
	}
}
