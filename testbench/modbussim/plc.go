package modbussim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors from New.
var (
	ErrUnknownModel = errors.New("modbussim: unknown model")
	ErrBadUnit      = errors.New("modbussim: unit id must be 1..247")
	ErrNoUnits      = errors.New("modbussim: no units configured")
)

// TickInterval is the process-model step used by [PLC.Start].
const TickInterval = 100 * time.Millisecond

// Table names one of a device's data tables.
type Table uint8

const (
	TableCoils Table = iota
	TableDiscreteInputs
	TableHoldingRegisters
	TableInputRegisters
	TableFileRecords
)

func (t Table) String() string {
	switch t {
	case TableCoils:
		return "coils"
	case TableDiscreteInputs:
		return "discrete-inputs"
	case TableHoldingRegisters:
		return "holding-registers"
	case TableInputRegisters:
		return "input-registers"
	case TableFileRecords:
		return "file-records"
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// Fault makes a unit misbehave. Faults apply in this order: Delay, then
// Disconnect, Silent and Exception (the request is not executed), then the
// request is executed and Garbage or BadCRC spoil the answer, as when a reply
// is lost on the way back after the write took effect. A fault stays until
// [PLC.ClearFault].
type Fault struct {
	Delay      time.Duration // wait before handling each request
	Silent     bool          // never answer (a dead or unpowered unit)
	Exception  byte          // answer every request with this exception code
	Disconnect bool          // TCP: close the connection on the next request; RTU: like Silent
	Garbage    bool          // answer with random-looking bytes and broken framing
	BadCRC     bool          // RTU: answer with a corrupted CRC; no effect on TCP
}

// PLC is a simulated Modbus server with one or more units. All methods are
// safe for concurrent use.
type PLC struct {
	units map[byte]*Device // fixed after New
	ids   []byte           // sorted unit ids

	faultMu sync.RWMutex
	faults  map[byte]Fault

	stats stats
	bus   busCounters
}

// Models returns the names of the process models, sorted.
func Models() []string {
	names := make([]string, 0, len(models))
	for name := range models {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// New builds a PLC with one device per unit id running the named model.
func New(units map[byte]string) (*PLC, error) {
	if len(units) == 0 {
		return nil, ErrNoUnits
	}
	p := &PLC{
		units:  make(map[byte]*Device, len(units)),
		faults: make(map[byte]Fault),
	}
	p.stats.init()
	for id, name := range units {
		if id < 1 || id > 247 {
			return nil, fmt.Errorf("%w: got %d", ErrBadUnit, id)
		}
		mk, ok := models[name]
		if !ok {
			return nil, fmt.Errorf("%w %q for unit %d (known: %s)", ErrUnknownModel, name, id, strings.Join(Models(), ", "))
		}
		p.units[id] = newDevice(id, name, mk(), &p.bus)
		p.ids = append(p.ids, id)
	}
	slices.Sort(p.ids)
	return p, nil
}

// Units returns the configured unit ids, sorted.
func (p *PLC) Units() []byte { return slices.Clone(p.ids) }

// Unit returns the device with the given unit id, or nil.
func (p *PLC) Unit(id byte) *Device { return p.units[id] }

// Step advances every process model by dt. Tests call it for deterministic
// dynamics instead of [PLC.Start].
func (p *PLC) Step(dt time.Duration) {
	for _, id := range p.ids {
		p.units[id].step(dt)
	}
}

// Start runs the process models in the background, stepping them by
// [TickInterval] on each tick until ctx is done.
func (p *PLC) Start(ctx context.Context) {
	go func() {
		t := time.NewTicker(TickInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.Step(TickInterval)
			}
		}
	}()
}

// SetFault sets the fault of a unit, replacing any earlier one.
func (p *PLC) SetFault(unit byte, f Fault) {
	p.faultMu.Lock()
	p.faults[unit] = f
	p.faultMu.Unlock()
}

// ClearFault makes a unit behave again.
func (p *PLC) ClearFault(unit byte) {
	p.faultMu.Lock()
	delete(p.faults, unit)
	p.faultMu.Unlock()
}

func (p *PLC) fault(unit byte) Fault {
	p.faultMu.RLock()
	defer p.faultMu.RUnlock()
	return p.faults[unit]
}

// FileRecords returns a copy of file number file of a unit as written with
// FC 21, indexed by record number (0..9999); nil if the file was never written.
func (p *PLC) FileRecords(unit byte, file uint16) []uint16 {
	d := p.units[unit]
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.files[file]
	if f == nil {
		return nil
	}
	return slices.Clone(f[:])
}

// via says which transport a request came in on; the answer to an unknown
// unit differs.
type via uint8

const (
	viaTCP via = iota + 1
	viaRTU
)

func (v via) String() string {
	if v == viaRTU {
		return "rtu"
	}
	return "tcp"
}

// outcome tells a transport what to do with one request.
type outcome struct {
	n          int  // response PDU length in the response buffer
	reply      bool // false: say nothing
	disconnect bool
	garbage    bool
	badCRC     bool
}

// request handles one request PDU for a unit and writes the response PDU into
// resp, which must hold maxPDU bytes.
func (p *PLC) request(ctx context.Context, unit byte, req, resp []byte, v via) outcome {
	if len(req) == 0 {
		return outcome{} // the transports never pass one; nothing to answer
	}
	fc := req[0]
	p.stats.received(unit, fc, req, v)
	p.bus.messages.Add(1)

	if unit == 0 {
		// Broadcast: writes reach every unit, nobody answers.
		if isWrite(fc) {
			var scratch [maxPDU]byte
			for _, id := range p.ids {
				if p.fault(id).Silent {
					continue
				}
				n, _ := p.units[id].execute(req, scratch[:], true)
				p.countResult(id, req, scratch[:n])
			}
		}
		return outcome{}
	}
	if unit == 255 && v == viaTCP {
		// 255 addresses "the TCP device itself": the first unit.
		unit = p.ids[0]
	}
	d := p.units[unit]
	if d == nil {
		if v == viaRTU {
			return outcome{}
		}
		// What a TCP gateway says when nothing answers behind it.
		return outcome{n: exception(resp, fc, 0x0B), reply: true}
	}

	f := p.fault(unit)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return outcome{}
		case <-t.C:
		}
	}
	switch {
	case f.Disconnect:
		if v == viaTCP {
			return outcome{disconnect: true}
		}
		return outcome{}
	case f.Silent:
		return outcome{}
	case f.Exception != 0:
		n := exception(resp, fc, f.Exception)
		p.stats.exception(unit)
		return outcome{n: n, reply: true}
	}

	n, ok := d.execute(req, resp, false)
	if !ok {
		return outcome{}
	}
	p.countResult(unit, req, resp[:n])
	return outcome{n: n, reply: true, garbage: f.Garbage, badCRC: f.BadCRC && v == viaRTU}
}

// countResult records applied writes per table and exceptions.
func (p *PLC) countResult(unit byte, req, resp []byte) {
	if len(resp) == 0 {
		return
	}
	if resp[0]&0x80 != 0 {
		p.stats.exception(unit)
		return
	}
	switch resp[0] {
	case 5, 15:
		p.stats.tableWrite(unit, TableCoils)
	case 6, 16, 22, 23:
		p.stats.tableWrite(unit, TableHoldingRegisters)
	case 21:
		p.stats.tableWrite(unit, TableFileRecords)
	}
}

func isWrite(fc byte) bool {
	switch fc {
	case 5, 6, 15, 16, 21, 22, 23:
		return true
	}
	return false
}
