package modbustarget

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/protocols/modbus"
)

// fakePLC answers FC 3 reads of one register with the register's address as
// its value. It collects requests and answers them in reverse order, after an
// unsolicited frame, to prove that brana matches answers by transaction id.
func fakePLC(t *testing.T, batch int, accepted *atomic.Int32) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				for {
					var reqs [][]byte
					for len(reqs) < batch {
						hdr := make([]byte, 12)
						if _, err := io.ReadFull(c, hdr); err != nil {
							return
						}
						reqs = append(reqs, hdr)
					}
					out := modbus.AppendADU(nil, 0xBEEF, 1, []byte{3, 2, 0xDE, 0xAD}) // nobody asked
					for i := len(reqs) - 1; i >= 0; i-- {
						r := reqs[i]
						addr := binary.BigEndian.Uint16(r[8:])
						out = modbus.AppendADU(out, binary.BigEndian.Uint16(r), r[6], []byte{3, 2, byte(addr >> 8), byte(addr)})
					}
					c.Write(out)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestPipelinedAnswersMatchedByTransaction(t *testing.T) {
	var accepted atomic.Int32
	addr := fakePLC(t, 4, &accepted)
	tg := newTest(t, config.Target{Name: "t", Transport: "tcp", Address: addr, Connections: 1, Pipeline: 4,
		Queue: 16, QueueTimeout: config.Duration(time.Second), Timeout: config.Duration(2 * time.Second)})
	defer tg.Close()
	var wg sync.WaitGroup
	for round := 0; round < 5; round++ {
		for k := 0; k < 4; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := uint16(round*10 + k)
				var req modbus.Request
				if err := modbus.ParseRequest(1, []byte{3, byte(a >> 8), byte(a), 0, 1}, &req); err != nil {
					t.Error(err)
					return
				}
				var resp [modbus.MaxPDULen]byte
				n, _, err := tg.Do(t.Context(), &req, resp[:])
				if err != nil {
					t.Errorf("read %d: %v", a, err)
					return
				}
				if got := binary.BigEndian.Uint16(resp[2:n]); got != a {
					t.Errorf("read of register %d answered with %d: answers were shifted", a, got)
				}
			}()
		}
		wg.Wait()
	}
	if accepted.Load() != 1 {
		t.Errorf("the PLC accepted %d connections; want 1 (pipeline: 4 on connections: 1)", accepted.Load())
	}
	if h := tg.Health(); !h.Reachable() || h.LastResponse.IsZero() || h.Latency <= 0 || h.LastError != "" {
		t.Errorf("health after answered reads: %+v", h)
	}
	if d := tg.tcp.dropped.Load(); d != 5 {
		t.Errorf("%d unsolicited answers dropped; want 5", d)
	}
}

// A request that times out recycles the connection, and its late answer
// cannot reach the next request.
func TestTimeoutRecyclesConnection(t *testing.T) {
	var accepted atomic.Int32
	addr := fakePLC(t, 2, &accepted) // answers only in pairs: a lone request times out
	tg := newTest(t, config.Target{Name: "t", Transport: "tcp", Address: addr, Connections: 1, Pipeline: 1,
		Queue: 4, QueueTimeout: config.Duration(time.Second), Timeout: config.Duration(100 * time.Millisecond),
		DeadUnitBackoff: config.Duration(time.Millisecond)})
	defer tg.Close()
	var req modbus.Request
	modbus.ParseRequest(1, []byte{3, 0, 7, 0, 1}, &req)
	var resp [modbus.MaxPDULen]byte
	if _, _, err := tg.Do(t.Context(), &req, resp[:]); !errors.Is(err, ErrTimeout) {
		t.Fatalf("lone request: %v; want ErrTimeout", err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, _, err := tg.Do(t.Context(), &req, resp[:]); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second lone request: %v; want ErrTimeout", err)
	}
	if accepted.Load() != 2 {
		t.Fatalf("PLC accepted %d connections; want 2: the timed-out connection is recycled", accepted.Load())
	}
}
