package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// The request mix. Every client walks the same ten-slot pattern (7 × FC 3,
// 2 × FC 4, 1 × FC 6), each from its own offset, so that at any moment the
// clients send a blend of all three.
type opKind uint8

const (
	readHolding   opKind = iota // FC 3, holding registers 0..9
	readInput                   // FC 4, input registers 0..9
	writeSetpoint               // FC 6, one of holding registers 100..119, value 0..5000
	numKinds
)

var mix = [10]opKind{
	readHolding, readHolding, readInput, readHolding, readHolding,
	writeSetpoint, readHolding, readHolding, readInput, readHolding,
}

// Addresses and values of the mix; the gateway's rules in gatewayConfig allow
// exactly these (and the feeder model accepts any value in its setpoint window).
const (
	unitID       = 1
	readAt       = 0
	readCount    = 10
	setpointAt   = 100
	setpointN    = 20
	setpointMax  = 5000
	mbapLen      = 7
	maxFrameLen  = 260
	readRespLen  = mbapLen + 2 + 2*readCount // header, fc, byte count, registers
	writeRespLen = mbapLen + 5               // echo of the request
)

var fcOf = [numKinds]byte{readHolding: 3, readInput: 4, writeSetpoint: 6}

// client is one load-generating connection with one request outstanding.
// Its buffers are fixed: a request does not allocate.
type client struct {
	id  int
	nc  net.Conn
	tx  uint16
	seq int // position in the mix; continues across runs

	req  [12]byte
	resp [maxFrameLen]byte

	lat    []time.Duration // latencies of the current run; capacity is fixed
	counts [numKinds]int   // requests sent and answered correctly, per kind, over the client's life
}

// maxSamples bounds the samples one client keeps per run: far above what a
// client can do in one window at 2 cores, so a run never hits it.
func maxSamples(clients int) int { return max(8192, (1<<18)/clients) }

func dialClients(addr string, n int) ([]*client, error) {
	return dialClientsCap(addr, n, maxSamples(n))
}

// dialClientsCap is dialClients with each client keeping at most samples
// latencies per run.
func dialClientsCap(addr string, n, samples int) ([]*client, error) {
	cs := make([]*client, 0, n)
	for i := range n {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			closeClients(cs)
			return nil, fmt.Errorf("bench: dialing %s: %w", addr, err)
		}
		cs = append(cs, &client{id: i, nc: nc, seq: i * 3, tx: uint16(i * 1000),
			lat: make([]time.Duration, 0, samples)})
	}
	return cs, nil
}

func closeClients(cs []*client) {
	for _, c := range cs {
		c.nc.Close()
	}
}

// build writes the next request of the mix into c.req and returns its kind and length.
func (c *client) build() (opKind, int) {
	k := mix[c.seq%len(mix)]
	c.seq++
	c.tx++
	b := c.req[:]
	binary.BigEndian.PutUint16(b[0:], c.tx)
	binary.BigEndian.PutUint16(b[2:], 0) // protocol id
	binary.BigEndian.PutUint16(b[4:], 6) // unit + 5 PDU bytes
	b[6] = unitID
	b[7] = fcOf[k]
	switch k {
	case readHolding, readInput:
		binary.BigEndian.PutUint16(b[8:], readAt)
		binary.BigEndian.PutUint16(b[10:], readCount)
	case writeSetpoint:
		binary.BigEndian.PutUint16(b[8:], uint16(setpointAt+(c.id+c.seq)%setpointN))
		binary.BigEndian.PutUint16(b[10:], uint16((c.seq*37)%(setpointMax+1)))
	}
	return k, 12
}

var errResponse = errors.New("bench: bad response")

// do sends one request and reads and checks its response.
func (c *client) do() (opKind, error) {
	k, n := c.build()
	if _, err := c.nc.Write(c.req[:n]); err != nil {
		return k, err
	}
	want := readRespLen
	if k == writeSetpoint {
		want = writeRespLen
	}
	// Usually one read returns the whole frame; the length says when it did not.
	got, err := io.ReadAtLeast(c.nc, c.resp[:], mbapLen)
	if err != nil {
		return k, err
	}
	total := mbapLen - 1 + int(binary.BigEndian.Uint16(c.resp[4:]))
	if total > len(c.resp) || total < mbapLen+1 {
		return k, fmt.Errorf("%w: MBAP length %d", errResponse, total-mbapLen+1)
	}
	if got < total {
		if _, err := io.ReadFull(c.nc, c.resp[got:total]); err != nil {
			return k, err
		}
	} else if got > total {
		return k, fmt.Errorf("%w: %d bytes after the response", errResponse, got-total)
	}
	r := c.resp[:total]
	switch {
	case binary.BigEndian.Uint16(r[0:]) != c.tx:
		return k, fmt.Errorf("%w: transaction id %d, want %d", errResponse, binary.BigEndian.Uint16(r[0:]), c.tx)
	case binary.BigEndian.Uint16(r[2:]) != 0:
		return k, fmt.Errorf("%w: protocol id %d", errResponse, binary.BigEndian.Uint16(r[2:]))
	case r[6] != unitID:
		return k, fmt.Errorf("%w: unit %d", errResponse, r[6])
	case r[7] == fcOf[k]|0x80:
		return k, fmt.Errorf("%w: exception %02x to FC %d", errResponse, r[8], fcOf[k])
	case r[7] != fcOf[k]:
		return k, fmt.Errorf("%w: function code %d, want %d", errResponse, r[7], fcOf[k])
	case total != want:
		return k, fmt.Errorf("%w: FC %d answered with %d bytes, want %d", errResponse, fcOf[k], total, want)
	case k != writeSetpoint && r[8] != 2*readCount:
		return k, fmt.Errorf("%w: byte count %d", errResponse, r[8])
	case k == writeSetpoint && string(r[7:]) != string(c.req[7:12]):
		return k, fmt.Errorf("%w: FC 6 echo % x, want % x", errResponse, r[7:], c.req[7:12])
	}
	return k, nil
}

// Run is the outcome of one load run on one path.
type Run struct {
	Requests int
	Elapsed  time.Duration // from the start signal until the last client finished
}

// load runs all clients at once, each until it has sent limit requests (0: no
// limit) or the window is over, whichever comes first, one request
// outstanding per client. Latencies are in each client's lat slice.
func load(cs []*client, window time.Duration, limit int) (Run, error) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(cs))
		end   time.Time // set before start is closed
	)
	for i, c := range cs {
		c.lat = c.lat[:0]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.nc.SetDeadline(end.Add(5 * time.Second))
			for limit == 0 || len(c.lat) < limit {
				if len(c.lat) == cap(c.lat) {
					errs[i] = fmt.Errorf("bench: client %d: sample buffer full (%d)", c.id, cap(c.lat))
					return
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				k, err := c.do()
				if err != nil {
					errs[i] = fmt.Errorf("bench: client %d, request %d: %w", c.id, len(c.lat), err)
					return
				}
				c.lat = append(c.lat, time.Since(t0))
				c.counts[k]++
			}
		}()
	}
	t0 := time.Now()
	end = t0.Add(window)
	close(start)
	wg.Wait()
	run := Run{Elapsed: time.Since(t0)}
	for _, c := range cs {
		run.Requests += len(c.lat)
	}
	return run, errors.Join(errs...)
}

// Stats gathers a path's runs over a benchmark.
type Stats struct {
	Lat      []time.Duration
	Requests int
	Elapsed  time.Duration
}

func (s *Stats) add(r Run, cs []*client) {
	s.Requests += r.Requests
	s.Elapsed += r.Elapsed
	for _, c := range cs {
		s.Lat = append(s.Lat, c.lat...)
	}
}

// Percentile returns the nearest-rank percentile p (0 < p ≤ 100) of the
// latencies in µs; it sorts s.Lat.
func (s *Stats) Percentile(p float64) float64 {
	if len(s.Lat) == 0 {
		return 0
	}
	slices.Sort(s.Lat)
	i := int(float64(len(s.Lat))*p/100+0.999999) - 1
	i = min(max(i, 0), len(s.Lat)-1)
	return float64(s.Lat[i]) / float64(time.Microsecond)
}

// Throughput is requests per second over all runs.
func (s *Stats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}
