package modbussim

import (
	"maps"
	"sync"
	"time"
)

// RecentLimit bounds how many request PDUs [PLC.Recent] keeps.
const RecentLimit = 256

// Request is one request as it reached the PLC.
type Request struct {
	At   time.Time
	Via  string // "tcp" or "rtu"
	Unit byte   // as addressed; 0 is a broadcast
	PDU  []byte // function code and data
}

// Snapshot is a copy of the PLC's request counters. Counters count what
// reached the PLC, whether or not a fault or an exception followed, so a
// request a gateway blocked shows as zero here.
type Snapshot struct {
	total       uint64
	requests    map[uint16]uint64 // unit<<8 | function code
	writes      map[byte]uint64
	tableWrites map[uint16]uint64 // unit<<8 | table
	exceptions  map[byte]uint64
}

// Total is the number of requests received on all units.
func (s Snapshot) Total() uint64 { return s.total }

// Requests is the number of requests with function code fc received for unit
// (0 for broadcasts).
func (s Snapshot) Requests(unit, fc byte) uint64 { return s.requests[uint16(unit)<<8|uint16(fc)] }

// Writes is the number of write requests (FC 5, 6, 15, 16, 21, 22, 23)
// received for unit (0 for broadcasts), applied or not.
func (s Snapshot) Writes(unit byte) uint64 { return s.writes[unit] }

// TableWrites is the number of writes that changed table t of unit, broadcasts
// included.
func (s Snapshot) TableWrites(unit byte, t Table) uint64 {
	return s.tableWrites[uint16(unit)<<8|uint16(t)]
}

// Exceptions is the number of exception responses unit gave.
func (s Snapshot) Exceptions(unit byte) uint64 { return s.exceptions[unit] }

type stats struct {
	mu   sync.Mutex
	snap Snapshot

	// Ring of recent requests in fixed slots, so recording does not allocate.
	ring [RecentLimit]struct {
		at   time.Time
		via  via
		unit byte
		n    int
		pdu  [maxPDU]byte
	}
	next, count int
}

func (st *stats) init() {
	st.snap = Snapshot{
		requests:    make(map[uint16]uint64),
		writes:      make(map[byte]uint64),
		tableWrites: make(map[uint16]uint64),
		exceptions:  make(map[byte]uint64),
	}
}

func (st *stats) received(unit, fc byte, pdu []byte, v via) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.snap.total++
	st.snap.requests[uint16(unit)<<8|uint16(fc)]++
	if isWrite(fc) {
		st.snap.writes[unit]++
	}
	r := &st.ring[st.next]
	r.at, r.via, r.unit = time.Now(), v, unit
	r.n = copy(r.pdu[:], pdu)
	st.next = (st.next + 1) % RecentLimit
	st.count = min(st.count+1, RecentLimit)
}

func (st *stats) tableWrite(unit byte, t Table) {
	st.mu.Lock()
	st.snap.tableWrites[uint16(unit)<<8|uint16(t)]++
	st.mu.Unlock()
}

func (st *stats) exception(unit byte) {
	st.mu.Lock()
	st.snap.exceptions[unit]++
	st.mu.Unlock()
}

// Counters returns a copy of the request counters.
func (p *PLC) Counters() Snapshot {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	s := p.stats.snap
	s.requests = maps.Clone(s.requests)
	s.writes = maps.Clone(s.writes)
	s.tableWrites = maps.Clone(s.tableWrites)
	s.exceptions = maps.Clone(s.exceptions)
	return s
}

// ResetCounters zeroes the request counters and forgets recent requests.
func (p *PLC) ResetCounters() {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	p.stats.init()
	p.stats.next, p.stats.count = 0, 0
}

// Recent returns up to [RecentLimit] most recent requests, oldest first.
func (p *PLC) Recent() []Request {
	st := &p.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Request, 0, st.count)
	start := (st.next - st.count + RecentLimit) % RecentLimit
	for i := range st.count {
		r := &st.ring[(start+i)%RecentLimit]
		out = append(out, Request{At: r.at, Via: r.via.String(), Unit: r.unit, PDU: append([]byte(nil), r.pdu[:r.n]...)})
	}
	return out
}
