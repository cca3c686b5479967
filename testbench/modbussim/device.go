package modbussim

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxPDU      = 253
	fileRecords = 10000 // record numbers 0..9999 (0x270F) per file
	vendorName  = "brana testbench"
	revision    = "1.0"
)

// The program area of every unit; see the package documentation.
const (
	ProgramFile           = 1      // FC 21 file that stages a program image
	ProgramCommitRegister = 9000   // holding register that commits the staged image
	ProgramCommitValue    = 0xC0DE // the value that commits
)

// Modbus exception codes used here.
const (
	excIllegalFunction = 0x01
	excIllegalAddress  = 0x02
	excIllegalValue    = 0x03
)

// busCounters are the serial-line diagnostics that all units share, as they
// would share one port.
type busCounters struct {
	messages   atomic.Uint64 // requests seen on the line, any unit
	commErrors atomic.Uint64 // frames dropped for a bad CRC or framing
}

// Device is one unit of a [PLC]: its data tables and process model.
type Device struct {
	id    byte
	model model
	name  string

	mu       sync.Mutex
	coils    []bool
	discrete []bool
	holding  []uint16
	input    []uint16
	files    map[uint16]*[fileRecords]uint16

	// Program area: records of ProgramFile below staged make the image a
	// commit loads.
	program []byte
	commits int
	staged  int

	// Serial-line diagnostics (FC 8).
	bus        *busCounters
	listenOnly bool
	messages   uint64 // requests addressed to this unit
	exceptions uint64
	noResponse uint64
}

func newDevice(id byte, name string, m model, bus *busCounters) *Device {
	l := m.layout()
	d := &Device{
		id:       id,
		bus:      bus,
		model:    m,
		name:     name,
		coils:    make([]bool, l.coils),
		discrete: make([]bool, l.discrete),
		holding:  make([]uint16, l.holding),
		input:    make([]uint16, l.input),
		files:    make(map[uint16]*[fileRecords]uint16),
		program:  []byte(vendorName + " " + name + " factory program\n"),
	}
	m.reset(d)
	return d
}

// Model returns the name of the device's process model.
func (d *Device) Model() string { return d.name }

// Coil returns coil addr (false outside the table).
func (d *Device) Coil(addr uint16) bool { return get(d, d.coils, addr) }

// DiscreteInput returns discrete input addr (false outside the table).
func (d *Device) DiscreteInput(addr uint16) bool { return get(d, d.discrete, addr) }

// HoldingRegister returns holding register addr (0 outside the table).
func (d *Device) HoldingRegister(addr uint16) uint16 { return get(d, d.holding, addr) }

// InputRegister returns input register addr (0 outside the table).
func (d *Device) InputRegister(addr uint16) uint16 { return get(d, d.input, addr) }

// Program returns a copy of the unit's program: the image of the last
// commit, or the factory program before any.
func (d *Device) Program() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.program)
}

// ProgramCommits returns how many staged images were committed.
func (d *Device) ProgramCommits() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commits
}

// commitProgram handles a write of v to ProgramCommitRegister. Anything but
// ProgramCommitValue, or a commit with nothing staged, is refused with
// exception 03 and leaves the program as it was.
func (d *Device) commitProgram(v uint16) byte {
	f := d.files[ProgramFile]
	if v != ProgramCommitValue || f == nil || d.staged == 0 {
		return excIllegalValue
	}
	img := make([]byte, 2*d.staged)
	for i, w := range f[:d.staged] {
		put(img[2*i:], w)
	}
	d.program = img
	d.commits++
	// The download buffer is consumed, so the next transfer starts empty.
	delete(d.files, ProgramFile)
	d.staged = 0
	return 0
}

func get[T any](d *Device, table []T, addr uint16) T {
	d.mu.Lock()
	defer d.mu.Unlock()
	var zero T
	if int(addr) >= len(table) {
		return zero
	}
	return table[addr]
}

// SetCoil writes a coil as a local operator would: the model reacts as to a
// client write, but no request is counted.
func (d *Device) SetCoil(addr uint16, v bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(addr) >= len(d.coils) {
		return fmt.Errorf("modbussim: coil %d outside table of %d", addr, len(d.coils))
	}
	d.coils[addr] = v
	d.model.written(d, TableCoils, addr, 1)
	return nil
}

// SetHoldingRegister writes a holding register as a local operator would,
// with the model's value check.
func (d *Device) SetHoldingRegister(addr, v uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(addr) >= len(d.holding) {
		return fmt.Errorf("modbussim: holding register %d outside table of %d", addr, len(d.holding))
	}
	if !d.model.accept(addr, v) {
		return fmt.Errorf("modbussim: value %d not accepted by holding register %d", v, addr)
	}
	d.holding[addr] = v
	d.model.written(d, TableHoldingRegisters, addr, 1)
	return nil
}

func (d *Device) step(dt time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.model.step(d, dt)
}

func exception(resp []byte, fc, code byte) int {
	resp[0] = fc | 0x80
	resp[1] = code
	return 2
}

// inRange reports whether [addr, addr+qty) lies in a table of size n,
// computed wide so it cannot wrap.
func inRange(addr, qty uint16, n int) bool { return int(addr)+int(qty) <= n }

// execute runs one request PDU on the device and writes the response PDU to
// resp. ok is false when the device must stay quiet (listen-only mode).
// broadcast requests are executed but never answered.
func (d *Device) execute(req, resp []byte, broadcast bool) (n int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.messages++
	if len(req) == 0 {
		return 0, false
	}
	fc := req[0]
	if d.listenOnly {
		// Only "restart communications" is heard, and not answered.
		if fc == 8 && len(req) == 5 && be(req[1:]) == 1 {
			d.listenOnly = false
		}
		d.noResponse++
		return 0, false
	}
	n = d.dispatch(req, resp)
	if n > 0 && resp[0]&0x80 != 0 {
		d.exceptions++
	}
	if broadcast {
		d.noResponse++
		return n, false
	}
	if n == 0 {
		d.noResponse++
		return 0, false
	}
	return n, true
}

func be(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func put(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }

func (d *Device) dispatch(req, resp []byte) int {
	fc := req[0]
	switch fc {
	case 1, 2:
		return d.readBits(req, resp)
	case 3, 4:
		return d.readRegisters(req, resp)
	case 5:
		return d.writeCoil(req, resp)
	case 6:
		return d.writeRegister(req, resp)
	case 8:
		return d.diagnostics(req, resp)
	case 15:
		return d.writeCoils(req, resp)
	case 16:
		return d.writeRegisters(req, resp)
	case 17:
		return d.reportServerID(req, resp)
	case 20:
		return d.readFileRecord(req, resp)
	case 21:
		return d.writeFileRecord(req, resp)
	case 22:
		return d.maskWrite(req, resp)
	case 23:
		return d.readWriteRegisters(req, resp)
	case 43:
		return d.deviceIdentification(req, resp)
	}
	return exception(resp, fc, excIllegalFunction)
}

func (d *Device) readBits(req, resp []byte) int {
	fc := req[0]
	if len(req) != 5 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, qty := be(req[1:]), be(req[3:])
	if qty < 1 || qty > 2000 {
		return exception(resp, fc, excIllegalValue)
	}
	table := d.coils
	if fc == 2 {
		table = d.discrete
	}
	if !inRange(addr, qty, len(table)) {
		return exception(resp, fc, excIllegalAddress)
	}
	nb := (int(qty) + 7) / 8
	resp[0], resp[1] = fc, byte(nb)
	clear(resp[2 : 2+nb])
	for i, v := range table[addr : int(addr)+int(qty)] {
		if v {
			resp[2+i/8] |= 1 << (i % 8)
		}
	}
	return 2 + nb
}

func (d *Device) readRegisters(req, resp []byte) int {
	fc := req[0]
	if len(req) != 5 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, qty := be(req[1:]), be(req[3:])
	if qty < 1 || qty > 125 {
		return exception(resp, fc, excIllegalValue)
	}
	table := d.holding
	if fc == 4 {
		table = d.input
	}
	if !inRange(addr, qty, len(table)) {
		return exception(resp, fc, excIllegalAddress)
	}
	return 2 + d.putRegisters(resp, fc, table[addr:int(addr)+int(qty)])
}

func (d *Device) putRegisters(resp []byte, fc byte, regs []uint16) int {
	resp[0], resp[1] = fc, byte(2*len(regs))
	for i, v := range regs {
		put(resp[2+2*i:], v)
	}
	return 2 * len(regs)
}

func (d *Device) writeCoil(req, resp []byte) int {
	fc := req[0]
	if len(req) != 5 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, v := be(req[1:]), be(req[3:])
	if v != 0 && v != 0xFF00 {
		return exception(resp, fc, excIllegalValue)
	}
	if int(addr) >= len(d.coils) {
		return exception(resp, fc, excIllegalAddress)
	}
	d.coils[addr] = v == 0xFF00
	d.model.written(d, TableCoils, addr, 1)
	return copy(resp, req)
}

func (d *Device) writeRegister(req, resp []byte) int {
	fc := req[0]
	if len(req) != 5 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, v := be(req[1:]), be(req[3:])
	if addr == ProgramCommitRegister {
		if e := d.commitProgram(v); e != 0 {
			return exception(resp, fc, e)
		}
		return copy(resp, req)
	}
	if int(addr) >= len(d.holding) {
		return exception(resp, fc, excIllegalAddress)
	}
	if !d.model.accept(addr, v) {
		return exception(resp, fc, excIllegalValue)
	}
	d.holding[addr] = v
	d.model.written(d, TableHoldingRegisters, addr, 1)
	return copy(resp, req)
}

func (d *Device) writeCoils(req, resp []byte) int {
	fc := req[0]
	if len(req) < 6 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, qty, bc := be(req[1:]), be(req[3:]), int(req[5])
	if qty < 1 || qty > 1968 || bc != (int(qty)+7)/8 || len(req) != 6+bc {
		return exception(resp, fc, excIllegalValue)
	}
	if !inRange(addr, qty, len(d.coils)) {
		return exception(resp, fc, excIllegalAddress)
	}
	for i := range int(qty) {
		d.coils[int(addr)+i] = req[6+i/8]&(1<<(i%8)) != 0
	}
	d.model.written(d, TableCoils, addr, qty)
	return copy(resp, req[:5])
}

// checkRegisters reports whether the model accepts vals (big-endian words)
// at addr, so a multi-register write is all or nothing.
func (d *Device) checkRegisters(addr uint16, vals []byte) bool {
	for i := 0; i < len(vals); i += 2 {
		if !d.model.accept(addr+uint16(i/2), be(vals[i:])) {
			return false
		}
	}
	return true
}

func (d *Device) storeRegisters(addr uint16, vals []byte) {
	for i := 0; i < len(vals); i += 2 {
		d.holding[int(addr)+i/2] = be(vals[i:])
	}
	d.model.written(d, TableHoldingRegisters, addr, uint16(len(vals)/2))
}

func (d *Device) writeRegisters(req, resp []byte) int {
	fc := req[0]
	if len(req) < 6 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, qty, bc := be(req[1:]), be(req[3:]), int(req[5])
	if qty < 1 || qty > 123 || bc != 2*int(qty) || len(req) != 6+bc {
		return exception(resp, fc, excIllegalValue)
	}
	if addr == ProgramCommitRegister && qty == 1 {
		if e := d.commitProgram(be(req[6:])); e != 0 {
			return exception(resp, fc, e)
		}
		return copy(resp, req[:5])
	}
	if !inRange(addr, qty, len(d.holding)) {
		return exception(resp, fc, excIllegalAddress)
	}
	if !d.checkRegisters(addr, req[6:]) {
		return exception(resp, fc, excIllegalValue)
	}
	d.storeRegisters(addr, req[6:])
	return copy(resp, req[:5])
}

func (d *Device) maskWrite(req, resp []byte) int {
	fc := req[0]
	if len(req) != 7 {
		return exception(resp, fc, excIllegalValue)
	}
	addr, and, or := be(req[1:]), be(req[3:]), be(req[5:])
	if int(addr) >= len(d.holding) {
		return exception(resp, fc, excIllegalAddress)
	}
	v := d.holding[addr]&and | or&^and
	if !d.model.accept(addr, v) {
		return exception(resp, fc, excIllegalValue)
	}
	d.holding[addr] = v
	d.model.written(d, TableHoldingRegisters, addr, 1)
	return copy(resp, req)
}

func (d *Device) readWriteRegisters(req, resp []byte) int {
	fc := req[0]
	if len(req) < 10 {
		return exception(resp, fc, excIllegalValue)
	}
	raddr, rqty, waddr, wqty, bc := be(req[1:]), be(req[3:]), be(req[5:]), be(req[7:]), int(req[9])
	if rqty < 1 || rqty > 125 || wqty < 1 || wqty > 121 || bc != 2*int(wqty) || len(req) != 10+bc {
		return exception(resp, fc, excIllegalValue)
	}
	if !inRange(raddr, rqty, len(d.holding)) || !inRange(waddr, wqty, len(d.holding)) {
		return exception(resp, fc, excIllegalAddress)
	}
	if !d.checkRegisters(waddr, req[10:]) {
		return exception(resp, fc, excIllegalValue)
	}
	// The write happens before the read (spec 6.17).
	d.storeRegisters(waddr, req[10:])
	return 2 + d.putRegisters(resp, fc, d.holding[raddr:int(raddr)+int(rqty)])
}

func (d *Device) diagnostics(req, resp []byte) int {
	fc := req[0]
	if len(req) < 3 {
		return exception(resp, fc, excIllegalValue)
	}
	sub := be(req[1:])
	if sub == 0 {
		return copy(resp, req) // return query data
	}
	if len(req) != 5 {
		return exception(resp, fc, excIllegalValue)
	}
	data := be(req[3:])
	var v uint64
	switch sub {
	case 1: // restart communications; 0xFF00 would also clear the event log
		if data != 0 && data != 0xFF00 {
			return exception(resp, fc, excIllegalValue)
		}
		return copy(resp, req)
	case 2: // diagnostic register: nothing to report
	case 4: // force listen-only mode: executed, never answered
		if data != 0 {
			return exception(resp, fc, excIllegalValue)
		}
		d.listenOnly = true
		return 0
	case 10: // clear counters
		if data != 0 {
			return exception(resp, fc, excIllegalValue)
		}
		d.messages, d.exceptions, d.noResponse = 0, 0, 0
		d.bus.messages.Store(0)
		d.bus.commErrors.Store(0)
		return copy(resp, req)
	case 11:
		v = d.bus.messages.Load()
	case 12:
		v = d.bus.commErrors.Load()
	case 13:
		v = d.exceptions
	case 14:
		v = d.messages
	case 15:
		v = d.noResponse
	case 16, 17, 18: // NAK, busy and overrun never happen here
	default:
		return exception(resp, fc, excIllegalFunction)
	}
	if data != 0 {
		return exception(resp, fc, excIllegalValue)
	}
	copy(resp, req[:3])
	put(resp[3:], uint16(min(v, 0xFFFF)))
	return 5
}

func (d *Device) reportServerID(req, resp []byte) int {
	fc := req[0]
	if len(req) != 1 {
		return exception(resp, fc, excIllegalValue)
	}
	// byte count | server id | run indicator (0xFF = running) | additional data
	resp[0] = fc
	resp[2] = d.id
	resp[3] = 0xFF
	n := copy(resp[4:], vendorName+" "+d.name)
	resp[1] = byte(2 + n)
	return 4 + n
}

// Device identification objects (FC 43 / MEI 14). Only basic and regular
// objects exist, so the extended stream equals the regular one.
func (d *Device) idObject(id byte) (string, bool) {
	switch id {
	case 0:
		return vendorName, true
	case 1:
		return d.name, true // product code
	case 2:
		return revision, true
	case 3:
		return "https://github.com/brana-ot/brana", true
	case 4:
		return d.name, true // product name
	case 5:
		return d.model.layout().description, true
	case 6:
		return "modbussim", true
	}
	return "", false
}

func (d *Device) deviceIdentification(req, resp []byte) int {
	fc := req[0]
	if len(req) < 2 || req[1] != 0x0E {
		return exception(resp, fc, excIllegalFunction)
	}
	if len(req) != 4 {
		return exception(resp, fc, excIllegalValue)
	}
	code, obj := req[2], req[3]
	var last byte
	switch code {
	case 1:
		last = 2
	case 2, 3:
		last = 6
	case 4:
		if _, ok := d.idObject(obj); !ok {
			return exception(resp, fc, excIllegalAddress)
		}
	default:
		return exception(resp, fc, excIllegalValue)
	}
	first := obj
	if code == 4 {
		last = obj
	} else if obj > last {
		first = 0 // unknown start object: restart at the beginning (spec 6.21)
	}
	resp[0], resp[1], resp[2] = fc, 0x0E, code
	resp[3] = 0x82 // regular identification, stream and individual access
	resp[4], resp[5], resp[6] = 0, 0, 0
	n := 7
	for id := first; id <= last; id++ {
		s, _ := d.idObject(id)
		if n+2+len(s) > maxPDU {
			resp[4], resp[5] = 0xFF, id // more follows from here
			break
		}
		resp[n], resp[n+1] = id, byte(len(s))
		n += 2 + copy(resp[n+2:], s)
		resp[6]++
	}
	return n
}

// fileSubRequests walks the sub-requests of FC 20/21: reference type 6, file
// number, record number, record length (and for FC 21 the record data).
// It returns an exception code or 0.
func fileSubRequests(body []byte, withData bool, each func(file, rec, n uint16, data []byte)) byte {
	for len(body) > 0 {
		if len(body) < 7 {
			return excIllegalValue
		}
		ref, file, rec, n := body[0], be(body[1:]), be(body[3:]), be(body[5:])
		size := 7
		if withData {
			size += 2 * int(n)
		}
		if len(body) < size {
			return excIllegalValue
		}
		if ref != 6 || file == 0 || n == 0 || int(rec)+int(n) > fileRecords {
			return excIllegalAddress
		}
		if each != nil {
			each(file, rec, n, body[7:size])
		}
		body = body[size:]
	}
	return 0
}

func (d *Device) readFileRecord(req, resp []byte) int {
	fc := req[0]
	if len(req) < 2 {
		return exception(resp, fc, excIllegalValue)
	}
	bc := int(req[1])
	if bc < 0x07 || bc > 0xF5 || len(req) != 2+bc || bc%7 != 0 {
		return exception(resp, fc, excIllegalValue)
	}
	size := 2
	if e := fileSubRequests(req[2:], false, func(_, _, n uint16, _ []byte) { size += 2 + 2*int(n) }); e != 0 {
		return exception(resp, fc, e)
	}
	if size > maxPDU {
		return exception(resp, fc, excIllegalValue)
	}
	resp[0], resp[1] = fc, byte(size-2)
	n := 2
	fileSubRequests(req[2:], false, func(file, rec, cnt uint16, _ []byte) {
		resp[n], resp[n+1] = byte(1+2*cnt), 6
		n += 2
		f := d.files[file]
		for i := range cnt {
			var v uint16
			if f != nil {
				v = f[rec+i]
			}
			put(resp[n:], v)
			n += 2
		}
	})
	return n
}

func (d *Device) writeFileRecord(req, resp []byte) int {
	fc := req[0]
	if len(req) < 2 {
		return exception(resp, fc, excIllegalValue)
	}
	bc := int(req[1])
	if bc < 0x09 || bc > 0xFB || len(req) != 2+bc {
		return exception(resp, fc, excIllegalValue)
	}
	// Check everything first so a bad sub-request writes nothing.
	if e := fileSubRequests(req[2:], true, nil); e != 0 {
		return exception(resp, fc, e)
	}
	fileSubRequests(req[2:], true, func(file, rec, cnt uint16, data []byte) {
		f := d.files[file]
		if f == nil {
			f = new([fileRecords]uint16)
			d.files[file] = f
		}
		for i := range cnt {
			f[rec+i] = be(data[2*i:])
		}
		if file == ProgramFile {
			d.staged = max(d.staged, int(rec)+int(cnt))
		}
	})
	return copy(resp, req)
}
