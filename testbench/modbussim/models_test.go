package modbussim

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		units   map[byte]string
		wantErr error
	}{
		{name: "ok/all-models", units: allModels},
		{name: "ok/unit-247", units: map[byte]string{247: "pump"}},
		{name: "fail/unknown-model", units: map[byte]string{1: "reactor"}, wantErr: ErrUnknownModel},
		{name: "fail/unit-0", units: map[byte]string{0: "feeder"}, wantErr: ErrBadUnit},
		{name: "fail/unit-248", units: map[byte]string{248: "feeder"}, wantErr: ErrBadUnit},
		{name: "fail/empty", units: nil, wantErr: ErrNoUnits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.units)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			for id, model := range tc.units {
				if got := p.Unit(id).Model(); got != model {
					t.Errorf("unit %d model %q", id, got)
				}
			}
		})
	}
	_, err := New(map[byte]string{3: "reactor"})
	if want := `modbussim: unknown model "reactor" for unit 3 (known: feeder, points, pump)`; err == nil || err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	if got := Models(); !slices.Equal(got, []string{"feeder", "points", "pump"}) {
		t.Errorf("Models() = %v", got)
	}
}

// stepN advances the PLC n times by dt.
func stepN(p *PLC, n int, dt time.Duration) {
	for range n {
		p.Step(dt)
	}
}

func TestFeederDynamics(t *testing.T) {
	tick := 10 * time.Millisecond

	t.Run("ok/close-raises-current", func(t *testing.T) {
		p := newPLC(t, map[byte]string{1: "feeder"})
		d := p.Unit(1)
		p.Step(time.Second)
		if d.InputRegister(0) != 0 || d.InputRegister(6) != 0 {
			t.Fatal("current or power with the breaker open")
		}
		if err := d.SetCoil(0, true); err != nil {
			t.Fatal(err)
		}
		p.Step(tick)
		early := d.InputRegister(0)
		if early == 0 || early >= 2000 {
			t.Fatalf("current 10 ms after closing = %d, want a rising value", early)
		}
		stepN(p, 100, tick)
		// 200 A load with the 0.98 / 1.02 phase spread.
		for i, want := range []uint16{2000, 1960, 2040} {
			if got := d.InputRegister(uint16(i)); got != want {
				t.Errorf("I L%d = %d, want %d", i+1, got, want)
			}
		}
		// 22 kV minus 2 V/A drop; P = √3·U·I·pf.
		if u := d.InputRegister(3); u != 2160 {
			t.Errorf("U = %d, want 2160", u)
		}
		if pw := d.InputRegister(6); pw != 7108 {
			t.Errorf("P = %d kW, want 7108", pw)
		}
		if f := d.InputRegister(8); f != 49993 {
			t.Errorf("f = %d mHz", f)
		}
		if err := d.SetCoil(0, false); err != nil {
			t.Fatal(err)
		}
		if d.InputRegister(0) != 0 || d.InputRegister(3) != 0 || d.DiscreteInput(fdDITrip) {
			t.Error("opening the breaker did not cut current and voltage, or counted as a trip")
		}
	})

	t.Run("ok/overcurrent-trip", func(t *testing.T) {
		p := newPLC(t, map[byte]string{1: "feeder"})
		d := p.Unit(1)
		d.SetCoil(0, true)
		stepN(p, 100, tick)
		// 200 A × 1.02 on L3 against a 150 A pickup with 500 ms delay.
		if err := d.SetHoldingRegister(fdHROCPickup, 150); err != nil {
			t.Fatal(err)
		}
		stepN(p, 49, tick)
		if !d.Coil(0) || !d.DiscreteInput(fdDIOCStart) {
			t.Fatal("tripped before the delay or protection not started")
		}
		p.Step(tick)
		if d.Coil(0) || !d.DiscreteInput(fdDIOpen) || !d.DiscreteInput(fdDITrip) {
			t.Fatal("no trip after the delay")
		}
		if d.InputRegister(fdIRTrips) != 1 || d.InputRegister(fdIRTripAmps) != 2040 || d.InputRegister(0) != 0 {
			t.Errorf("trips %d, trip current %d, current %d", d.InputRegister(fdIRTrips), d.InputRegister(fdIRTripAmps), d.InputRegister(0))
		}
		// A latched trip blocks closing until reset.
		d.SetCoil(0, true)
		if d.Coil(0) {
			t.Fatal("closed onto a latched trip")
		}
		d.SetCoil(fdCoilReset, true)
		d.SetHoldingRegister(fdHROCPickup, 400)
		d.SetCoil(0, true)
		if !d.Coil(0) || d.DiscreteInput(fdDITrip) || d.Coil(fdCoilReset) {
			t.Fatal("reset did not clear the trip or the reset coil stuck")
		}
	})

	t.Run("ok/earth-fault-trip", func(t *testing.T) {
		p := newPLC(t, map[byte]string{1: "feeder"})
		d := p.Unit(1)
		d.SetCoil(0, true)
		d.SetHoldingRegister(fdHREFCurrent, 350) // 35 A residual against 20 A
		stepN(p, 29, tick)
		if !d.Coil(0) || d.InputRegister(fdIRResidual) != 350 {
			t.Fatal("tripped early or residual not measured")
		}
		p.Step(tick)
		if d.Coil(0) || !d.DiscreteInput(fdDIEFTrip) || !d.DiscreteInput(fdDITrip) {
			t.Fatal("no earth-fault trip")
		}
	})

	t.Run("ok/earth-switch-interlock", func(t *testing.T) {
		p := newPLC(t, map[byte]string{1: "feeder"})
		d := p.Unit(1)
		d.SetCoil(fdCoilEarth, true)
		d.SetCoil(0, true)
		if d.Coil(0) || !d.DiscreteInput(fdDIEarthed) {
			t.Fatal("breaker closed onto an earthed feeder")
		}
		d.SetCoil(fdCoilEarth, false)
		d.SetCoil(0, true)
		d.SetCoil(fdCoilEarth, true)
		if !d.Coil(0) || d.Coil(fdCoilEarth) {
			t.Fatal("earth switch closed onto a live feeder")
		}
	})
}

func TestPumpDynamics(t *testing.T) {
	t.Run("ok/level-rises-with-inflow", func(t *testing.T) {
		p := newPLC(t, map[byte]string{2: "pump"})
		d := p.Unit(2)
		p.Step(10 * time.Second) // 15 l/s into 20 m² = 0.75 mm/s
		if got := d.InputRegister(pmIRLevel); got != 1508 {
			t.Fatalf("level %d mm, want 1508", got)
		}
	})

	t.Run("ok/manual-pump-lowers-level", func(t *testing.T) {
		p := newPLC(t, map[byte]string{2: "pump"})
		d := p.Unit(2)
		d.SetCoil(pmCoilAuto, false)
		d.SetCoil(pmCoilRun1, true)
		stepN(p, 200, 100*time.Millisecond)
		if got := d.InputRegister(pmIROutflow); got != 200 { // 25 l/s × 80 %
			t.Errorf("outflow %d, want 200", got)
		}
		if got := d.InputRegister(pmIRLevel); got >= 1500 {
			t.Errorf("level %d did not fall", got)
		}
		if d.InputRegister(pmIRCurrent1) != 264 || d.InputRegister(pmIRPressure) <= 800 {
			t.Errorf("motor current %d, pressure %d", d.InputRegister(pmIRCurrent1), d.InputRegister(pmIRPressure))
		}
	})

	t.Run("ok/auto-start-and-stop", func(t *testing.T) {
		p := newPLC(t, map[byte]string{2: "pump"})
		d := p.Unit(2)
		d.SetHoldingRegister(pmHRStart, 1505)
		stepN(p, 10, time.Second)
		if !d.Coil(pmCoilRun1) || !d.DiscreteInput(pmDIRunning1) || d.DiscreteInput(pmDIRunning1+1) {
			t.Fatalf("lead pump did not start at the start level (level %d)", d.InputRegister(pmIRLevel))
		}
		d.SetHoldingRegister(pmHRStop, 1500)
		for range 60 {
			if !d.DiscreteInput(pmDIRunning1) {
				break
			}
			p.Step(time.Second)
		}
		if d.DiscreteInput(pmDIRunning1) || d.Coil(pmCoilRun1) || d.InputRegister(pmIRLevel) > 1500 {
			t.Fatalf("pump did not stop at the stop level (level %d)", d.InputRegister(pmIRLevel))
		}
	})

	t.Run("ok/dry-run-fault", func(t *testing.T) {
		p := newPLC(t, map[byte]string{2: "pump"})
		d := p.Unit(2)
		d.SetCoil(pmCoilAuto, false)
		d.SetHoldingRegister(pmHRInflow, 0)
		d.SetHoldingRegister(pmHRDry, 1450)
		d.SetCoil(pmCoilRun1, true)
		stepN(p, 120, time.Second)
		if d.DiscreteInput(pmDIRunning1) || !d.DiscreteInput(pmDIFault1) || !d.DiscreteInput(pmDILow) {
			t.Fatal("no dry-run trip")
		}
		d.SetHoldingRegister(pmHRDry, 300)
		d.SetCoil(pmCoilReset, true)
		if !d.DiscreteInput(pmDIRunning1) || d.DiscreteInput(pmDIFault1) {
			t.Fatal("fault reset did not restart the commanded pump")
		}
	})
}

func TestPointsDynamics(t *testing.T) {
	tick := 100 * time.Millisecond

	t.Run("ok/throw-reverse-and-back", func(t *testing.T) {
		p := newPLC(t, map[byte]string{3: "points"})
		d := p.Unit(3)
		d.SetCoil(ptCoilReverse, true)
		stepN(p, 29, tick)
		if !d.DiscreteInput(ptDIMoving) || d.DiscreteInput(ptDIReverse) || d.InputRegister(ptIRCurrent) != 35 {
			t.Fatal("not moving during the throw")
		}
		p.Step(tick)
		if !d.DiscreteInput(ptDIReverse) || d.DiscreteInput(ptDIMoving) || d.Coil(ptCoilReverse) {
			t.Fatal("not detected reverse after 3 s")
		}
		if d.InputRegister(ptIRLastMs) != 3000 || d.InputRegister(ptIRThrows) != 1 || d.InputRegister(ptIRPosition) != 2 {
			t.Errorf("throw time %d, count %d", d.InputRegister(ptIRLastMs), d.InputRegister(ptIRThrows))
		}
		d.SetCoil(ptCoilNormal, true)
		stepN(p, 30, tick)
		if !d.DiscreteInput(ptDINormal) || d.InputRegister(ptIRThrows) != 2 {
			t.Fatal("did not return to normal")
		}
	})

	t.Run("ok/obstruction-fails-to-detect", func(t *testing.T) {
		p := newPLC(t, map[byte]string{3: "points"})
		d := p.Unit(3)
		d.SetHoldingRegister(ptHRObstruction, 1)
		d.SetCoil(ptCoilReverse, true)
		stepN(p, 79, tick)
		if !d.DiscreteInput(ptDIMoving) || d.InputRegister(ptIRCurrent) != 80 {
			t.Fatal("no stall current while obstructed")
		}
		p.Step(tick)
		if !d.DiscreteInput(ptDIFailed) || d.DiscreteInput(ptDINormal) || d.DiscreteInput(ptDIReverse) {
			t.Fatal("no failure to detect after the timeout")
		}
	})
}
