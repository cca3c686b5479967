package modbustarget

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/protocols/modbus"
)

// tcpPool is a target's downstream Modbus TCP connections. Each carries up
// to depth requests at once (pipelining, for PLCs that allow it; depth 1 is
// the classic one-at-a-time). brana numbers the downstream transactions
// itself and matches answers by transaction id, so a late answer can only
// ever be dropped, never handed to another request.
//
// It is written by hand rather than with goburrow's TCP transporter, which
// holds a lock from write to read and allocates per request; the inline
// path must not.
type tcpPool struct {
	addr    string
	timeout time.Duration
	depth   int

	mu    sync.Mutex
	conns []*tcpConn // nil entries are not connected
	next  int

	dropped atomic.Uint64 // late or unsolicited answers dropped
}

func newTCPPool(addr string, timeout time.Duration, conns, depth int) *tcpPool {
	return &tcpPool{addr: addr, timeout: timeout, depth: depth, conns: make([]*tcpConn, conns)}
}

// tcpConn is one downstream connection with its reader goroutine.
type tcpConn struct {
	pool *tcpPool
	nc   net.Conn

	mu       sync.Mutex
	slots    []tcpSlot
	free     []int
	nextTx   uint16
	inflight int
	detached bool // taken out of the pool: closes when its last request ends
	dead     error

	wmu sync.Mutex

	// direct: one request at a time, read by its caller (pipeline 1).
	direct       bool
	rbuf         [8 * modbus.MaxADULen]byte
	rstart, rend int
}

// tcpSlot is one outstanding request on a connection.
type tcpSlot struct {
	busy     bool
	answered bool
	tx       uint16
	unit     byte
	resp     []byte
	n        int
	err      error
	done     chan struct{}
	timer    *time.Timer
	wbuf     [modbus.MaxADULen]byte
}

// exchange sends a validated request and waits for its answer.
func (p *tcpPool) exchange(req *modbus.Request, resp []byte) (int, error) {
	c, i, err := p.reserve(req.Unit, resp)
	if err != nil {
		return 0, err
	}
	s := &c.slots[i]
	adu := modbus.AppendADU(s.wbuf[:0], s.tx, req.Unit, req.PDU)

	if c.direct {
		n, err := c.roundTrip(s, adu, p.timeout)
		c.mu.Lock()
		c.releaseLocked(i)
		c.mu.Unlock()
		if err != nil {
			c.fail(err)
		}
		return n, err
	}

	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(p.timeout))
	_, err = c.nc.Write(adu)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrConnLost, err))
	}

	s.timer.Reset(p.timeout)
	select {
	case <-s.done:
		s.timer.Stop()
	case <-s.timer.C:
	}
	c.mu.Lock()
	n, err := s.n, s.err
	timedOut := !s.answered
	if timedOut {
		err = fmt.Errorf("%w after %v", ErrTimeout, p.timeout)
	}
	c.releaseLocked(i)
	c.mu.Unlock()
	if timedOut {
		// Whatever comes later is dropped by its transaction id; the
		// connection is recycled once its other requests are done.
		p.detach(c)
	}
	return n, err
}

// reserve finds (or dials) a connection with a free slot and claims it.
// The caller holds a token, so a free slot or an unconnected position exists.
func (p *tcpPool) reserve(unit byte, resp []byte) (*tcpConn, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *tcpConn
	bestLoad := 0
	empty := -1
	for k := range p.conns {
		j := (p.next + k) % len(p.conns)
		c := p.conns[j]
		if c == nil {
			if empty < 0 {
				empty = j
			}
			continue
		}
		c.mu.Lock()
		ok := len(c.free) > 0 && c.dead == nil && !c.detached
		load := c.inflight
		c.mu.Unlock()
		if ok && (best == nil || load < bestLoad) {
			best, bestLoad = c, load
		}
	}
	p.next++
	// Spread the load over the connections the target allows before
	// pipelining on one.
	if best == nil || (bestLoad > 0 && empty >= 0) {
		if empty < 0 {
			return nil, 0, fmt.Errorf("%w: no free downstream slot", ErrBusy)
		}
		c, err := p.dial()
		if err != nil {
			return nil, 0, err
		}
		p.conns[empty] = c
		best = c
	}
	// Claimed under p.mu, so no other reserve can take the slot found above;
	// releases and failures only ever add free slots or mark the conn dead.
	c := best
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free) == 0 || c.dead != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrConnLost, c.dead)
	}
	i := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.inflight++
	s := &c.slots[i]
	c.nextTx++
	s.busy, s.answered, s.tx, s.n, s.err = true, false, c.nextTx, 0, nil
	s.unit, s.resp = unit, resp
	select { // a signal left by a late answer to the slot's last user
	case <-s.done:
	default:
	}
	return c, i, nil
}

func (p *tcpPool) dial() (*tcpConn, error) {
	nc, err := net.DialTimeout("tcp", p.addr, p.timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
	}
	c := &tcpConn{pool: p, nc: nc, slots: make([]tcpSlot, p.depth), free: make([]int, 0, p.depth), direct: p.depth == 1}
	for i := range c.slots {
		c.slots[i].done = make(chan struct{}, 1)
		c.slots[i].timer = time.NewTimer(time.Hour)
		c.slots[i].timer.Stop()
		c.free = append(c.free, p.depth-1-i)
	}
	if !c.direct {
		go c.readLoop()
	}
	return c, nil
}

// roundTrip is the one-request-at-a-time exchange: the caller owns the
// connection, so it reads the answer itself (no hand-off to a reader
// goroutine on the inline path). Answers to other transaction ids are late
// answers to requests that timed out: dropped.
func (c *tcpConn) roundTrip(s *tcpSlot, adu []byte, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	c.nc.SetDeadline(deadline)
	if _, err := c.nc.Write(adu); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	for {
		frame, n, err := modbus.SplitFrame(c.rbuf[c.rstart:c.rend])
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		if frame != nil {
			c.rstart += n
			if frame.TxID() != s.tx {
				c.pool.dropped.Add(1)
				continue
			}
			pdu := frame.PDU()
			switch {
			case frame.Unit() != s.unit:
				return 0, fmt.Errorf("%w: answer from unit %d to a request for unit %d", ErrBadResponse, frame.Unit(), s.unit)
			case len(pdu) > len(s.resp):
				return 0, fmt.Errorf("%w: %d byte PDU", ErrBadResponse, len(pdu))
			}
			return copy(s.resp, pdu), nil
		}
		if c.rstart > 0 {
			c.rend = copy(c.rbuf[:], c.rbuf[c.rstart:c.rend])
			c.rstart = 0
		}
		m, err := c.nc.Read(c.rbuf[c.rend:])
		c.rend += m
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, fmt.Errorf("%w after %v", ErrTimeout, timeout)
			}
			return 0, fmt.Errorf("%w: %v", ErrConnLost, err)
		}
	}
}

func (c *tcpConn) readLoop() {
	var buf [8 * modbus.MaxADULen]byte
	start, end := 0, 0
	for {
		frame, n, err := modbus.SplitFrame(buf[start:end])
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrBadResponse, err))
			return
		}
		if frame != nil {
			c.deliver(frame)
			start += n
			continue
		}
		if start > 0 {
			end = copy(buf[:], buf[start:end])
			start = 0
		}
		m, err := c.nc.Read(buf[end:])
		end += m
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrConnLost, err))
			return
		}
	}
}

func (c *tcpConn) deliver(frame modbus.ADU) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx := frame.TxID()
	for i := range c.slots {
		s := &c.slots[i]
		if !s.busy || s.answered || s.tx != tx {
			continue
		}
		s.answered = true
		pdu := frame.PDU()
		switch {
		case frame.Unit() != s.unit:
			s.err = fmt.Errorf("%w: answer from unit %d to a request for unit %d", ErrBadResponse, frame.Unit(), s.unit)
		case len(pdu) > len(s.resp):
			s.err = fmt.Errorf("%w: %d byte PDU", ErrBadResponse, len(pdu))
		default:
			s.n = copy(s.resp, pdu)
		}
		s.done <- struct{}{}
		return
	}
	c.pool.dropped.Add(1)
}

// fail ends the connection: every waiting request gets err.
func (c *tcpConn) fail(err error) {
	c.mu.Lock()
	if c.dead == nil {
		c.dead = err
		c.nc.Close()
		for i := range c.slots {
			s := &c.slots[i]
			if s.busy && !s.answered {
				s.answered, s.err = true, err
				s.done <- struct{}{}
			}
		}
	}
	c.mu.Unlock()
	c.pool.detach(c)
}

// detach takes c out of the pool so that new requests get a fresh
// connection; c closes when its last request ends.
func (p *tcpPool) detach(c *tcpConn) {
	p.mu.Lock()
	for j := range p.conns {
		if p.conns[j] == c {
			p.conns[j] = nil
		}
	}
	p.mu.Unlock()
	c.mu.Lock()
	c.detached = true
	if c.inflight == 0 {
		c.nc.Close()
	}
	c.mu.Unlock()
}

func (c *tcpConn) releaseLocked(i int) {
	s := &c.slots[i]
	s.busy, s.resp = false, nil
	c.free = append(c.free, i)
	c.inflight--
	if c.detached && c.inflight == 0 {
		c.nc.Close()
	}
}

// close closes every connection.
func (p *tcpPool) close() {
	p.mu.Lock()
	conns := append([]*tcpConn(nil), p.conns...)
	p.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.fail(ErrClosed)
		}
	}
}
