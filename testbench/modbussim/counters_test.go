package modbussim

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

func TestCounters(t *testing.T) {
	p := newPLC(t, allModels)
	c := dial(t, serveTCP(t, p))
	reqs := []struct {
		unit byte
		pdu  string
	}{
		{1, "03 0000 0001"},
		{1, "03 0000 0001"},
		{1, "04 0000 0001"},
		{1, "06 0064 0001"},                   // holding write
		{1, "06 0000 0000"},                   // rejected write: counted as a write, not a table write
		{1, "05 0000 ff00"},                   // coil write
		{2, "10 0064 0001 02 0001"},           // holding write
		{2, "17 0000 0001 0064 0001 02 0002"}, // read/write: a holding write
		{2, "15 09 06 0001 0000 0001 abcd"},   // file record write
		{2, "16 0064 ffff 0000"},              // mask write
		{3, "07"},                             // illegal function
		{9, "03 0000 0001"},                   // no such unit
	}
	for _, r := range reqs {
		roundTrip(t, c, r.unit, unhex(t, r.pdu))
	}
	s := p.Counters()
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"total", s.Total(), 12},
		{"unit-1-fc3", s.Requests(1, 3), 2},
		{"unit-1-fc4", s.Requests(1, 4), 1},
		{"unit-1-fc6", s.Requests(1, 6), 2},
		{"unit-2-fc3", s.Requests(2, 3), 0},
		{"unit-9-fc3", s.Requests(9, 3), 1},
		{"unit-3-fc7", s.Requests(3, 7), 1},
		{"unit-1-writes", s.Writes(1), 3},
		{"unit-2-writes", s.Writes(2), 4},
		{"unit-3-writes", s.Writes(3), 0},
		{"unit-1-holding-writes", s.TableWrites(1, TableHoldingRegisters), 1},
		{"unit-1-coil-writes", s.TableWrites(1, TableCoils), 1},
		{"unit-2-holding-writes", s.TableWrites(2, TableHoldingRegisters), 3},
		{"unit-2-file-writes", s.TableWrites(2, TableFileRecords), 1},
		{"unit-1-exceptions", s.Exceptions(1), 1},
		{"unit-3-exceptions", s.Exceptions(3), 1},
	}
	for _, ck := range checks {
		t.Run("ok/"+ck.name, func(t *testing.T) {
			if ck.got != ck.want {
				t.Fatalf("got %d, want %d", ck.got, ck.want)
			}
		})
	}

	recent := p.Recent()
	if len(recent) != len(reqs) {
		t.Fatalf("%d recent requests, want %d", len(recent), len(reqs))
	}
	for i, r := range reqs {
		if recent[i].Unit != r.unit || !bytes.Equal(recent[i].PDU, unhex(t, r.pdu)) || recent[i].Via != "tcp" {
			t.Errorf("recent[%d] = unit %d % x via %s, want unit %d %s", i, recent[i].Unit, recent[i].PDU, recent[i].Via, r.unit, r.pdu)
		}
	}

	// The snapshot is a copy.
	roundTrip(t, c, 1, unhex(t, "03 0000 0001"))
	if s.Requests(1, 3) != 2 || p.Counters().Requests(1, 3) != 3 {
		t.Error("snapshot changed after the fact or live counters did not move")
	}

	p.ResetCounters()
	if s := p.Counters(); s.Total() != 0 || s.Writes(1) != 0 || len(p.Recent()) != 0 {
		t.Error("ResetCounters left counts behind")
	}
}

func TestRecentIsBounded(t *testing.T) {
	p := newPLC(t, allModels)
	resp := make([]byte, maxPDU)
	for i := range RecentLimit + 10 {
		p.request(t.Context(), 1, []byte{6, 0, 100, byte(i >> 8), byte(i)}, resp, viaRTU)
	}
	recent := p.Recent()
	if len(recent) != RecentLimit {
		t.Fatalf("%d recent requests, want %d", len(recent), RecentLimit)
	}
	if first := recent[0].PDU; first[4] != 10 || recent[RecentLimit-1].PDU[4] != byte((RecentLimit+9)%256) {
		t.Errorf("oldest kept % x, newest % x", first, recent[RecentLimit-1].PDU)
	}
}

// TestConcurrentUse hammers one PLC from several clients while the process
// models run and faults change; it is meant for -race.
func TestConcurrentUse(t *testing.T) {
	p := newPLC(t, allModels)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Start(ctx)
	addr := serveTCP(t, p)

	const clients, rounds = 4, 50
	var wg sync.WaitGroup
	for i := range clients {
		c := client(t, "tcp://"+addr, 2*time.Second)
		wg.Go(func() {
			c.SetUnitId(byte(1 + i%3))
			for range rounds {
				if _, err := c.ReadRegisters(0, 10, modbus.INPUT_REGISTER); err != nil {
					t.Error(err)
					return
				}
				if err := c.WriteRegister(100+uint16(i), uint16(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for j := range rounds {
			p.SetFault(200, Fault{Delay: time.Duration(j)})
			p.ClearFault(200)
			p.Counters()
			p.Recent()
			p.FileRecords(1, 1)
			p.Unit(1).InputRegister(0)
		}
	})
	wg.Wait()
	if got := p.Counters().Total(); got != clients*rounds*2 {
		t.Errorf("total %d, want %d", got, clients*rounds*2)
	}
}

// TestRequestAllocs: the request path of a read does not allocate.
func TestRequestAllocs(t *testing.T) {
	p := newPLC(t, allModels)
	req := unhex(t, "03 0000 0010")
	resp := make([]byte, maxPDU)
	ctx := context.Background()
	p.request(ctx, 1, req, resp, viaTCP) // create the counter entries
	if n := testing.AllocsPerRun(100, func() { p.request(ctx, 1, req, resp, viaTCP) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}
