package opcuasim

import (
	"math"
	"time"

	"github.com/gopcua/opcua/ua"
)

// model is a process model. All its methods run with the PLC lock held.
type model interface {
	// build adds the model's nodes under root, the model's object in
	// Objects.
	build(b *builder, root *node)
	// step advances the plant by dt.
	step(dt time.Duration)
	// changed runs after a client write or method call changed the model.
	changed()
}

// models maps an Options.Model name to its constructor and the browse name
// of its object in the Objects folder.
var models = map[string]struct {
	object string
	new    func() model
}{
	"feeder": {"Feeder", func() model { return newFeeder() }},
	"pump":   {"Pump", func() model { return newPump() }},
}

// lag moves x towards target with a first-order time constant tau.
func lag(x, target float64, dt, tau time.Duration) float64 {
	return x + (target-x)*(1-math.Exp(-dt.Seconds()/tau.Seconds()))
}

// round rounds x to the given number of decimals, so a settled lag reaches
// its target exactly and stops producing data changes.
func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// feeder is a 22 kV feeder bay with a breaker and overcurrent protection;
// see the package documentation for its nodes.
type feeder struct {
	closed  bool
	tripped bool // latched until Protection/Reset
	amps    float64
	ocTime  time.Duration

	trips        uint32
	lastTripAmps float64

	pickup float64 // A
	delay  float64 // s
	load   float64 // A per phase, simulation knob
	pf     float64 // simulation knob
}

const (
	nominalVolts = 22000.0
	nominalHz    = 50.0
)

// Phase currents differ slightly, as on a real feeder.
var phaseShare = [3]float64{1.0, 0.98, 1.02}

func newFeeder() *feeder {
	return &feeder{pickup: 400, delay: 0.5, load: 200, pf: 0.95}
}

func (m *feeder) build(b *builder, root *node) {
	br := b.object(root, "Breaker", "circuit breaker of the bay", typeBaseObject)
	b.variable(br, "Closed", "true while the breaker is closed", typeBoolean, func() any { return m.closed }, nil)
	b.method(br, "Close", "close the breaker; Bad_InvalidState while a protection trip is latched", nil, nil,
		func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
			if m.tripped {
				return nil, ua.StatusBadInvalidState
			}
			m.closed = true
			return nil, ua.StatusOK
		})
	b.method(br, "Open", "open (trip) the breaker", nil, nil,
		func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
			m.open()
			return nil, ua.StatusOK
		})

	ms := b.folder(root, "Measurements", "measured values of the bay")
	for i, name := range []string{"CurrentL1", "CurrentL2", "CurrentL3"} {
		share := phaseShare[i]
		b.variable(ms, name, "phase current (A)", typeDouble, func() any { return round(m.amps*share, 2) }, nil)
	}
	b.variable(ms, "Voltage", "line voltage L1-L2 (V)", typeDouble, func() any { return round(m.volts(), 1) }, nil)
	b.variable(ms, "Frequency", "frequency (Hz); 0 while the breaker is open", typeDouble, func() any { return round(m.hz(), 3) }, nil)
	b.variable(ms, "ActivePower", "active power (kW)", typeDouble, func() any { return round(m.kw(), 1) }, nil)

	pr := b.object(root, "Protection", "overcurrent protection relay", typeBaseObject)
	b.variable(pr, "OvercurrentPickup", "overcurrent pickup (A, 1..2000)", typeDouble,
		func() any { return m.pickup }, setDouble(&m.pickup, 1, 2000))
	b.variable(pr, "TimeDelay", "overcurrent time delay (s, 0..60)", typeDouble,
		func() any { return m.delay }, setDouble(&m.delay, 0, 60))
	b.variable(pr, "Tripped", "protection trip latched", typeBoolean, func() any { return m.tripped }, nil)
	b.variable(pr, "TripCount", "number of protection trips", typeUInt32, func() any { return m.trips }, nil)
	b.variable(pr, "LastTripCurrent", "highest phase current at the last trip (A)", typeDouble,
		func() any { return round(m.lastTripAmps, 2) }, nil)
	b.method(pr, "Reset", "clear a latched protection trip", nil, nil,
		func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
			m.tripped, m.ocTime = false, 0
			return nil, ua.StatusOK
		})

	sim := b.folder(root, "Simulation", "knobs of the simulated plant")
	b.variable(sim, "LoadCurrent", "load current per phase while closed (A, 0..3000)", typeDouble,
		func() any { return m.load }, setDouble(&m.load, 0, 3000))
	b.variable(sim, "PowerFactor", "load power factor (0..1)", typeDouble,
		func() any { return m.pf }, setDouble(&m.pf, 0, 1))
}

func (m *feeder) open() {
	m.closed = false
	m.amps = 0 // the breaker interrupts at once
	m.ocTime = 0
}

func (m *feeder) volts() float64 {
	if !m.closed {
		return 0
	}
	return nominalVolts - 2*m.amps // voltage drop along the feeder
}

func (m *feeder) kw() float64 { return math.Sqrt(3) * m.volts() * m.amps / 1000 * m.pf }

func (m *feeder) hz() float64 {
	if !m.closed {
		return 0 // line-side VT sees nothing
	}
	return nominalHz - m.kw()/1e6 // slight droop under load
}

func (m *feeder) step(dt time.Duration) {
	if !m.closed {
		return
	}
	m.amps = lag(m.amps, m.load, dt, 100*time.Millisecond)
	if math.Abs(m.amps-m.load) < 0.001 {
		m.amps = m.load
	}
	peak := m.amps * phaseShare[2]
	if peak > m.pickup {
		m.ocTime += dt
	} else {
		m.ocTime = 0
	}
	if m.ocTime > 0 && m.ocTime.Seconds() >= m.delay {
		m.trips++
		m.lastTripAmps = peak
		m.tripped = true
		m.open()
	}
}

func (m *feeder) changed() {}

// pump is a pumping station with a wet well and two pumps.
type pump struct {
	level   float64 // mm
	flow    [2]float64
	running [2]bool
	fault   [2]bool
	starts  [2]uint32
	command [2]bool
	auto    bool

	start, stop, high, dry float64 // mm
	speed                  float64 // %
	inflow                 float64 // l/s, simulation knob
}

const (
	wellArea     = 20.0   // m²
	wellDepth    = 4000.0 // mm
	pumpCapacity = 25.0   // l/s at 100 %
)

func newPump() *pump {
	return &pump{level: 1500, auto: true, start: 2500, stop: 1000, high: 3500, dry: 300, speed: 80, inflow: 15}
}

func (m *pump) build(b *builder, root *node) {
	b.variable(root, "TankLevel", "wet well level (mm, 0..4000)", typeDouble, func() any { return round(m.level, 1) }, nil)
	b.variable(root, "Inflow", "measured inflow (l/s)", typeDouble, func() any { return m.inflow }, nil)
	b.variable(root, "Outflow", "measured outflow (l/s)", typeDouble, func() any { return round(m.flow[0]+m.flow[1], 2) }, nil)
	b.variable(root, "DischargePressure", "discharge pressure (mbar)", typeDouble,
		func() any { return round(800+30*(m.flow[0]+m.flow[1]), 1) }, nil)
	for i := range 2 {
		n := string(rune('1' + i))
		b.variable(root, "Pump"+n+"Running", "pump "+n+" running", typeBoolean, func() any { return m.running[i] }, nil)
		b.variable(root, "Pump"+n+"Fault", "pump "+n+" dry-run fault (latched)", typeBoolean, func() any { return m.fault[i] }, nil)
		b.variable(root, "Pump"+n+"Current", "pump "+n+" motor current (A)", typeDouble, func() any { return round(m.amps(i), 2) }, nil)
		b.variable(root, "Pump"+n+"Starts", "pump "+n+" start count", typeUInt32, func() any { return m.starts[i] }, nil)
		b.variable(root, "Pump"+n+"Command", "pump "+n+" run command (level control overrides it in auto mode)", typeBoolean,
			func() any { return m.command[i] }, setBool(&m.command[i]))
	}
	b.variable(root, "HighLevelAlarm", "level at or above HighLevel", typeBoolean, func() any { return m.level >= m.high }, nil)
	b.variable(root, "DryRunAlarm", "level at or below DryRunLevel", typeBoolean, func() any { return m.level <= m.dry }, nil)
	b.variable(root, "AutoMode", "level control drives the pump commands", typeBoolean, func() any { return m.auto }, setBool(&m.auto))
	b.variable(root, "SpeedSetpoint", "pump speed (%, 0..100)", typeDouble, func() any { return m.speed }, setDouble(&m.speed, 0, 100))
	b.variable(root, "StartLevel", "auto: pump 1 starts at this level (mm, 0..4000)", typeDouble, func() any { return m.start }, setDouble(&m.start, 0, wellDepth))
	b.variable(root, "StopLevel", "auto: both pumps stop at this level (mm, 0..4000)", typeDouble, func() any { return m.stop }, setDouble(&m.stop, 0, wellDepth))
	b.variable(root, "HighLevel", "auto: pump 2 starts at this level; high alarm (mm, 0..4000)", typeDouble, func() any { return m.high }, setDouble(&m.high, 0, wellDepth))
	b.variable(root, "DryRunLevel", "a running pump at or below this level trips (mm, 0..4000)", typeDouble, func() any { return m.dry }, setDouble(&m.dry, 0, wellDepth))
	b.method(root, "ResetFaults", "clear latched pump faults", nil, nil,
		func([]*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
			m.fault = [2]bool{}
			m.run()
			return nil, ua.StatusOK
		})

	sim := b.folder(root, "Simulation", "knobs of the simulated plant")
	b.variable(sim, "Inflow", "inflow into the well (l/s, 0..100)", typeDouble, func() any { return m.inflow }, setDouble(&m.inflow, 0, 100))
}

func (m *pump) amps(i int) float64 {
	if !m.running[i] {
		return 0
	}
	return 4 + 28*m.flow[i]/pumpCapacity // magnetising plus load
}

// run starts and stops the pumps from the commands.
func (m *pump) run() {
	for i := range m.running {
		on := m.command[i] && !m.fault[i]
		if on && !m.running[i] {
			m.starts[i]++
		}
		m.running[i] = on
	}
}

func (m *pump) changed() { m.run() }

func (m *pump) step(dt time.Duration) {
	if m.auto {
		switch {
		case m.level <= m.stop:
			m.command = [2]bool{}
		case m.level >= m.high:
			m.command = [2]bool{true, true}
		case m.level >= m.start:
			m.command[0] = true
		}
	}
	for i := range m.running {
		if m.running[i] && m.level <= m.dry {
			m.fault[i] = true // dry-run protection
		}
	}
	m.run()

	out := 0.0
	for i := range m.flow {
		target := 0.0
		if m.running[i] {
			target = pumpCapacity * m.speed / 100
		}
		m.flow[i] = lag(m.flow[i], target, dt, 2*time.Second)
		if math.Abs(m.flow[i]-target) < 0.001 {
			m.flow[i] = target
		}
		out += m.flow[i]
	}
	// l/s × s / m² = mm
	m.level = math.Max(0, math.Min(wellDepth, m.level+(m.inflow-out)*dt.Seconds()/wellArea))
}

// setDouble returns a setter for a Double setpoint in [lo, hi].
func setDouble(p *float64, lo, hi float64) func(any) ua.StatusCode {
	return func(v any) ua.StatusCode {
		f, ok := v.(float64)
		if !ok {
			return ua.StatusBadTypeMismatch
		}
		if math.IsNaN(f) || f < lo || f > hi {
			return ua.StatusBadOutOfRange
		}
		*p = f
		return ua.StatusOK
	}
}

// setBool returns a setter for a Boolean command.
func setBool(p *bool) func(any) ua.StatusCode {
	return func(v any) ua.StatusCode {
		b, ok := v.(bool)
		if !ok {
			return ua.StatusBadTypeMismatch
		}
		*p = b
		return ua.StatusOK
	}
}
