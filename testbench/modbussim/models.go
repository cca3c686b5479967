package modbussim

import (
	"math"
	"time"
)

// model is a process model. Its methods run with the device lock held.
type model interface {
	layout() layout
	// reset puts default setpoints and the initial plant state in the tables.
	reset(d *Device)
	// accept reports whether holding register addr may take v (else
	// exception 03 and nothing is written).
	accept(addr, v uint16) bool
	// written tells the model that table t changed at [addr, addr+n), so
	// commands take effect at once rather than on the next step.
	written(d *Device, t Table, addr, n uint16)
	step(d *Device, dt time.Duration)
}

type layout struct {
	description                     string
	coils, discrete, holding, input int
}

var models = map[string]func() model{
	"feeder": func() model { return &feeder{} },
	"pump":   func() model { return &pump{} },
	"points": func() model { return &points{} },
}

// Every model leaves holding registers 100..119 as a free setpoint window.
const (
	freeFirst = 100
	freeLast  = 119
)

// bounds holds the accepted range of the named holding registers.
type bounds map[uint16][2]uint16

func (b bounds) accept(addr, v uint16) bool {
	r, ok := b[addr]
	return !ok || (v >= r[0] && v <= r[1])
}

// reg rounds a physical value to a register, clamped to 0..65535.
func reg(v float64) uint16 { return uint16(math.Round(math.Max(0, math.Min(v, 65535)))) }

// lag moves x towards target with a first-order time constant tau.
func lag(x, target float64, dt, tau time.Duration) float64 {
	return x + (target-x)*(1-math.Exp(-dt.Seconds()/tau.Seconds()))
}

// ms returns a duration in milliseconds from a register.
func ms(v uint16) time.Duration { return time.Duration(v) * time.Millisecond }

// feeder is a 22 kV feeder bay; see the package documentation for its map.
type feeder struct {
	closed, earthed bool
	ocTrip, efTrip  bool // latched until reset
	amps            float64
	ocTime, efTime  time.Duration
	trips           uint16
	lastTripAmps    float64
}

const (
	fdCoilBreaker, fdCoilEarth, fdCoilReset = 0, 1, 2

	fdDIClosed, fdDIOpen, fdDIEarthed, fdDITrip, fdDIOCStart, fdDIEFTrip = 0, 1, 2, 3, 4, 5

	fdIRCurrent, fdIRVoltage, fdIRPower, fdIRReactive, fdIRFreq, fdIRResidual, fdIRTrips, fdIRTripAmps = 0, 3, 6, 7, 8, 9, 10, 11

	fdHROCPickup, fdHROCDelay, fdHREFPickup, fdHREFDelay, fdHRLoad, fdHRPF, fdHREFCurrent = 0, 1, 2, 3, 10, 11, 12

	nominalVolts = 22000.0
	nominalMHz   = 50000.0
)

var feederBounds = bounds{
	fdHROCPickup:  {1, 2000},
	fdHROCDelay:   {0, 60000},
	fdHREFPickup:  {1, 500},
	fdHREFDelay:   {0, 60000},
	fdHRLoad:      {0, 3000},
	fdHRPF:        {0, 1000},
	fdHREFCurrent: {0, 5000},
}

// Phase currents differ slightly, as on a real feeder.
var phaseShare = [3]float64{1.0, 0.98, 1.02}

func (*feeder) layout() layout {
	return layout{description: "22 kV feeder bay", coils: 16, discrete: 16, holding: 128, input: 32}
}

func (m *feeder) accept(addr, v uint16) bool { return feederBounds.accept(addr, v) }

func (m *feeder) reset(d *Device) {
	h := d.holding
	h[fdHROCPickup], h[fdHROCDelay] = 400, 500
	h[fdHREFPickup], h[fdHREFDelay] = 20, 300
	h[fdHRLoad], h[fdHRPF], h[fdHREFCurrent] = 200, 950, 0
	m.publish(d)
}

func (m *feeder) written(d *Device, t Table, addr, n uint16) {
	if t != TableCoils {
		return
	}
	for a := addr; a < addr+n; a++ {
		switch a {
		case fdCoilBreaker:
			want := d.coils[a]
			switch {
			case want && !m.closed && (m.earthed || m.ocTrip || m.efTrip):
				// Interlock: the close command is refused.
			case want && !m.closed:
				m.closed = true
			case !want && m.closed:
				m.open()
			}
		case fdCoilEarth:
			if !m.closed {
				m.earthed = d.coils[a]
			}
		case fdCoilReset:
			if d.coils[a] {
				m.ocTrip, m.efTrip = false, false
				m.ocTime, m.efTime = 0, 0
			}
		}
	}
	m.publish(d)
}

func (m *feeder) open() {
	m.closed = false
	m.amps = 0 // the breaker interrupts at once
	m.ocTime, m.efTime = 0, 0
}

func (m *feeder) step(d *Device, dt time.Duration) {
	h := d.holding
	if m.closed {
		m.amps = lag(m.amps, float64(h[fdHRLoad]), dt, 100*time.Millisecond)

		peak := m.amps * phaseShare[2]
		if peak > float64(h[fdHROCPickup]) {
			m.ocTime += dt
		} else {
			m.ocTime = 0
		}
		residual := float64(h[fdHREFCurrent]) / 10
		if residual > float64(h[fdHREFPickup]) {
			m.efTime += dt
		} else {
			m.efTime = 0
		}
		switch {
		case m.ocTime > 0 && m.ocTime >= ms(h[fdHROCDelay]):
			m.trip(peak)
			m.ocTrip = true
		case m.efTime > 0 && m.efTime >= ms(h[fdHREFDelay]):
			m.trip(peak)
			m.efTrip = true
		}
	}
	m.publish(d)
}

func (m *feeder) trip(peak float64) {
	m.trips++
	m.lastTripAmps = peak
	m.open()
}

// publish writes the model state into the tables a client reads.
func (m *feeder) publish(d *Device) {
	h, in, di := d.holding, d.input, d.discrete
	d.coils[fdCoilBreaker] = m.closed
	d.coils[fdCoilEarth] = m.earthed
	d.coils[fdCoilReset] = false
	di[fdDIClosed], di[fdDIOpen] = m.closed, !m.closed
	di[fdDIEarthed] = m.earthed
	di[fdDITrip] = m.ocTrip || m.efTrip
	di[fdDIOCStart] = m.ocTime > 0
	di[fdDIEFTrip] = m.efTrip

	var volts, residual float64
	if m.closed {
		volts = nominalVolts - 2*m.amps // voltage drop along the feeder
		residual = float64(h[fdHREFCurrent]) / 10
	}
	for i, share := range phaseShare {
		in[fdIRCurrent+i] = reg(m.amps * share * 10)
		in[fdIRVoltage+i] = reg(volts / 10)
	}
	pf := float64(h[fdHRPF]) / 1000
	s := math.Sqrt(3) * volts * m.amps / 1000 // kVA
	p := s * pf
	in[fdIRPower] = reg(p)
	in[fdIRReactive] = reg(s * math.Sqrt(1-pf*pf))
	if m.closed {
		in[fdIRFreq] = reg(nominalMHz - p/1000) // slight droop under load
	} else {
		in[fdIRFreq] = 0 // line-side VT sees nothing
	}
	in[fdIRResidual] = reg(residual * 10)
	in[fdIRTrips] = m.trips
	in[fdIRTripAmps] = reg(m.lastTripAmps * 10)
}

// pump is a pumping station with a wet well and two pumps.
type pump struct {
	level   float64 // mm
	flow    [2]float64
	running [2]bool
	fault   [2]bool
	starts  [2]uint16
}

const (
	pmCoilRun1, pmCoilRun2, pmCoilAuto, pmCoilReset = 0, 1, 2, 3

	pmDIRunning1, pmDIFault1, pmDIHigh, pmDILow = 0, 2, 4, 5

	pmIRLevel, pmIROutflow, pmIRPressure, pmIRCurrent1, pmIRInflow, pmIRStarts1 = 0, 1, 2, 3, 5, 6

	pmHRStart, pmHRStop, pmHRSpeed, pmHRHigh, pmHRDry, pmHRInflow = 0, 1, 2, 3, 4, 10

	wellArea     = 20.0   // m²
	wellDepth    = 4000.0 // mm
	pumpCapacity = 25.0   // l/s at 100 %
)

var pumpBounds = bounds{
	pmHRStart:  {0, 4000},
	pmHRStop:   {0, 4000},
	pmHRSpeed:  {0, 100},
	pmHRHigh:   {0, 4000},
	pmHRDry:    {0, 4000},
	pmHRInflow: {0, 1000},
}

func (*pump) layout() layout {
	return layout{description: "water pumping station", coils: 16, discrete: 16, holding: 128, input: 32}
}

func (m *pump) accept(addr, v uint16) bool { return pumpBounds.accept(addr, v) }

func (m *pump) reset(d *Device) {
	h := d.holding
	h[pmHRStart], h[pmHRStop], h[pmHRSpeed] = 2500, 1000, 80
	h[pmHRHigh], h[pmHRDry], h[pmHRInflow] = 3500, 300, 150
	d.coils[pmCoilAuto] = true
	m.level = 1500
	m.publish(d)
}

func (m *pump) written(d *Device, t Table, addr, n uint16) {
	if t == TableCoils && addr <= pmCoilReset && addr+n > pmCoilReset && d.coils[pmCoilReset] {
		m.fault = [2]bool{}
	}
	m.run(d)
	m.publish(d)
}

// run starts and stops the pumps from the commands.
func (m *pump) run(d *Device) {
	for i := range m.running {
		on := d.coils[pmCoilRun1+i] && !m.fault[i]
		if on && !m.running[i] {
			m.starts[i]++
		}
		m.running[i] = on
	}
}

func (m *pump) step(d *Device, dt time.Duration) {
	h := d.holding
	if d.coils[pmCoilAuto] {
		switch {
		case m.level <= float64(h[pmHRStop]):
			d.coils[pmCoilRun1], d.coils[pmCoilRun2] = false, false
		case m.level >= float64(h[pmHRHigh]):
			d.coils[pmCoilRun1], d.coils[pmCoilRun2] = true, true
		case m.level >= float64(h[pmHRStart]):
			d.coils[pmCoilRun1] = true
		}
	}
	for i := range m.running {
		if m.running[i] && m.level <= float64(h[pmHRDry]) {
			m.fault[i] = true // dry-run protection
		}
	}
	m.run(d)

	speed := float64(h[pmHRSpeed]) / 100
	out := 0.0
	for i := range m.flow {
		target := 0.0
		if m.running[i] {
			target = pumpCapacity * speed
		}
		m.flow[i] = lag(m.flow[i], target, dt, 2*time.Second)
		out += m.flow[i]
	}
	in := float64(h[pmHRInflow]) / 10
	// l/s × s / m² = mm
	m.level = math.Max(0, math.Min(wellDepth, m.level+(in-out)*dt.Seconds()/wellArea))
	m.publish(d)
}

func (m *pump) publish(d *Device) {
	h, in, di := d.holding, d.input, d.discrete
	d.coils[pmCoilReset] = false
	out := m.flow[0] + m.flow[1]
	in[pmIRLevel] = reg(m.level)
	in[pmIROutflow] = reg(out * 10)
	in[pmIRPressure] = reg(800 + 30*out) // static head plus friction
	in[pmIRInflow] = h[pmHRInflow]
	for i := range m.flow {
		amps := 0.0
		if m.running[i] {
			amps = 4 + 28*m.flow[i]/pumpCapacity // magnetising plus load
		}
		in[pmIRCurrent1+i] = reg(amps * 10)
		in[pmIRStarts1+i] = m.starts[i]
		di[pmDIRunning1+i] = m.running[i]
		di[pmDIFault1+i] = m.fault[i]
	}
	di[pmDIHigh] = m.level >= float64(h[pmHRHigh])
	di[pmDILow] = m.level <= float64(h[pmHRDry])
}

// points is a railway point machine.
type points struct {
	position byte // 0 none detected, 1 normal, 2 reverse
	target   byte
	moving   bool
	failed   bool
	rejected bool
	elapsed  time.Duration
	lastMs   uint16
	throws   uint16
}

const (
	ptCoilNormal, ptCoilReverse = 0, 1

	ptDINormal, ptDIReverse, ptDIMoving, ptDIFailed, ptDIRejected = 0, 1, 2, 3, 4

	ptIRLastMs, ptIRCurrent, ptIRThrows, ptIRPosition = 0, 1, 2, 3

	ptHRThrowMs, ptHRObstruction, ptHRTimeout = 0, 1, 2

	ptNormal, ptReverse = 1, 2
)

var pointsBounds = bounds{
	ptHRThrowMs:     {100, 20000},
	ptHRObstruction: {0, 1},
	ptHRTimeout:     {500, 60000},
}

func (*points) layout() layout {
	return layout{description: "railway point machine", coils: 16, discrete: 16, holding: 128, input: 32}
}

func (m *points) accept(addr, v uint16) bool { return pointsBounds.accept(addr, v) }

func (m *points) reset(d *Device) {
	d.holding[ptHRThrowMs], d.holding[ptHRTimeout] = 3000, 8000
	m.position = ptNormal
	m.publish(d)
}

func (m *points) written(d *Device, t Table, addr, n uint16) {
	if t != TableCoils || addr > ptCoilReverse {
		return
	}
	normal, reverse := d.coils[ptCoilNormal], d.coils[ptCoilReverse]
	switch {
	case normal && reverse:
		// Both directions at once: a real interlocking refuses.
		m.rejected = true
	case normal:
		m.throw(ptNormal)
	case reverse:
		m.throw(ptReverse)
	}
	m.publish(d)
}

func (m *points) throw(to byte) {
	m.rejected = false
	if m.moving && m.target == to {
		return
	}
	if !m.moving && m.position == to && !m.failed {
		return // already there
	}
	m.target, m.moving, m.failed, m.elapsed = to, true, false, 0
	m.position = 0 // detection is lost as soon as the blades move
}

func (m *points) step(d *Device, dt time.Duration) {
	h := d.holding
	if m.moving {
		m.elapsed += dt
		switch {
		case h[ptHRObstruction] == 0 && m.elapsed >= ms(h[ptHRThrowMs]):
			m.moving, m.position = false, m.target
			m.throws++
			m.lastMs = reg(float64(m.elapsed.Milliseconds()))
		case m.elapsed >= ms(h[ptHRTimeout]):
			m.moving, m.failed = false, true
		}
	}
	m.publish(d)
}

func (m *points) publish(d *Device) {
	di, in := d.discrete, d.input
	// The commands read 1 while a throw in that direction runs.
	d.coils[ptCoilNormal] = m.moving && m.target == ptNormal
	d.coils[ptCoilReverse] = m.moving && m.target == ptReverse
	di[ptDINormal] = m.position == ptNormal
	di[ptDIReverse] = m.position == ptReverse
	di[ptDIMoving] = m.moving
	di[ptDIFailed] = m.failed
	di[ptDIRejected] = m.rejected
	in[ptIRLastMs] = m.lastMs
	switch {
	case m.moving && d.holding[ptHRObstruction] != 0:
		in[ptIRCurrent] = 80 // stalled motor
	case m.moving:
		in[ptIRCurrent] = 35
	default:
		in[ptIRCurrent] = 0
	}
	in[ptIRThrows] = m.throws
	in[ptIRPosition] = uint16(m.position)
}
