// Package modbustarget owns brana's downstream side for Modbus: one Target per
// configured PLC, reached over TCP, RTU or ASCII through goburrow/modbus.
// Many upstream clients share a target's few connections through a bounded
// queue. brana owns the transaction space: goburrow numbers the downstream
// transactions, any error (timeout, mismatched or garbled answer) recycles the
// connection so that a late response can never be delivered to the next
// request, writes are never retried, and a unit that stopped answering is
// failed fast for a back-off period so it cannot stall the others.
package modbustarget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gbmodbus "github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/targethealth"
	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

var (
	ErrBusy        = errors.New("modbustarget: queue full")
	ErrTimeout     = errors.New("modbustarget: no response in time")
	ErrUnitDown    = errors.New("modbustarget: unit is not answering (backing off)")
	ErrUnreachable = errors.New("modbustarget: cannot connect")
	ErrBadResponse = errors.New("modbustarget: invalid response")
	ErrConnLost    = errors.New("modbustarget: connection lost")
	ErrClosed      = errors.New("modbustarget: target closed")
)

// Exception is the Modbus exception a gateway answers for a downstream error
// (Modbus Application Protocol V1.1b3, section 7: 0A, 0B are gateway codes).
func Exception(err error) byte {
	switch {
	case errors.Is(err, ErrBusy):
		return modbus.ExServerBusy
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrClosed):
		return modbus.ExGatewayPath
	default:
		return modbus.ExGatewayTargetFailed
	}
}

// Outcome describes how a request went downstream, for the audit record.
type Outcome struct {
	Retries  int  // read retries after transport errors
	Recycled bool // the downstream connection was closed after this request
}

// transport is goburrow's Packager and Transporter with a unit setter, for
// serial lines.
type transport interface {
	gbmodbus.Packager
	gbmodbus.Transporter
	Close() error
	setUnit(byte)
}

type rtuTransport struct{ *gbmodbus.RTUClientHandler }

func (t rtuTransport) setUnit(u byte) { t.SlaveId = u }

type asciiTransport struct{ *gbmodbus.ASCIIClientHandler }

func (t asciiTransport) setUnit(u byte) { t.SlaveId = u }

// unitState is lock-free: every request checks it, and a healthy unit
// (downUntil 0) costs one atomic load.
type unitState struct {
	downUntil atomic.Int64 // unix nanoseconds; 0 = answering
	probing   atomic.Bool  // one request is testing a unit whose back-off ended
}

// Target is one downstream Modbus device or serial bus.
type Target struct {
	cfg    config.Target
	serial bool
	gap    time.Duration // serial: silence kept between frames
	log    *slog.Logger

	// tokens bound the requests in flight (connections × pipeline for TCP,
	// one for a serial line); requests wait for one in a bounded queue.
	tokens  chan struct{}
	waiting atomic.Int32
	tcp     *tcpPool
	line    transport // serial: goburrow's RTU or ASCII client; used with the one token

	mu    sync.Mutex
	units [256]unitState
	last  time.Time // serial: end of the last transaction

	closed atomic.Bool
	health targethealth.Tracker
}

// New builds a target from its (validated) config. Connections are opened lazily.
func New(cfg config.Target, log *slog.Logger) (*Target, error) {
	t := &Target{cfg: cfg, log: log.With("target", cfg.Name)}
	n := 1
	switch cfg.Transport {
	case "tcp":
		depth := max(cfg.Pipeline, 1)
		n = max(cfg.Connections, 1) * depth
		t.tcp = newTCPPool(cfg.Address, cfg.Timeout.D(), max(cfg.Connections, 1), depth)
	case "rtu", "ascii":
		t.serial = true
		t.gap = cfg.FrameGap.D()
		if t.gap == 0 {
			t.gap = frameGap(cfg.Baud)
		}
		t.line = t.newTransport()
	default:
		return nil, fmt.Errorf("modbustarget: %s: unknown transport %q", cfg.Name, cfg.Transport)
	}
	t.tokens = make(chan struct{}, n)
	for range n {
		t.tokens <- struct{}{}
	}
	return t, nil
}

// frameGap is 3.5 character times; above 19200 baud the spec fixes it at 1.75 ms.
func frameGap(baud int) time.Duration {
	if baud <= 0 || baud > 19200 {
		return 1750 * time.Microsecond
	}
	// 11 bits per character.
	return time.Duration(3.5 * 11 * float64(time.Second) / float64(baud))
}

func (t *Target) newTransport() transport {
	c := t.cfg
	switch c.Transport {
	case "rtu":
		h := gbmodbus.NewRTUClientHandler(c.Device)
		h.Config = serialConfig(c)
		h.IdleTimeout = time.Hour
		return rtuTransport{h}
	case "ascii":
		h := gbmodbus.NewASCIIClientHandler(c.Device)
		h.Config = serialConfig(c)
		h.IdleTimeout = time.Hour
		return asciiTransport{h}
	default:
		panic("modbustarget: goburrow transports are for serial lines")
	}
}

func serialConfig(c config.Target) serial.Config {
	return serial.Config{
		Address:  c.Device,
		BaudRate: c.Baud,
		DataBits: c.DataBits,
		StopBits: c.StopBits,
		Parity:   c.Parity,
		Timeout:  c.Timeout.D(),
	}
}

// Name is the target's configured name.
func (t *Target) Name() string { return t.cfg.Name }

// Program is how the device takes a program image, or nil.
func (t *Target) Program() *config.Program { return t.cfg.Program }

// Address is where the target is reached: host:port, or the serial device.
func (t *Target) Address() string {
	if t.serial {
		return t.cfg.Device
	}
	return t.cfg.Address
}

// Health says when the target last answered a forwarded request and what
// last went wrong; the gateway does not probe targets.
func (t *Target) Health() targethealth.Health { return t.health.Health() }

// ObserveLatency has the round trip of every answered request, in seconds,
// observed by o (for metrics). Call it before the first request.
func (t *Target) ObserveLatency(o targethealth.Observer) { t.health.SetObserver(o) }

// Queued is the number of requests waiting for a connection now.
func (t *Target) Queued() int { return int(t.waiting.Load()) }

// Do sends req (already validated and allowed, addressed to the downstream
// unit) and copies the response PDU into resp. The response is checked against
// the request before it is returned; an exception response is a success here.
func (t *Target) Do(ctx context.Context, req *modbus.Request, resp []byte) (int, Outcome, error) {
	var out Outcome
	if t.closed.Load() {
		return 0, out, ErrClosed
	}
	if !t.admitUnit(req.Unit) {
		return 0, out, ErrUnitDown
	}
	if err := t.acquire(ctx); err != nil {
		t.releaseProbe(req.Unit)
		return 0, out, err
	}
	defer func() { t.tokens <- struct{}{} }()

	start := time.Now()
	for {
		var n int
		var err error
		if t.serial {
			n, err = t.exchangeSerial(req, resp)
		} else {
			n, err = t.tcp.exchange(req, resp)
			if err == nil && n > 0 {
				if cerr := modbus.CheckResponse(req, resp[:n]); cerr != nil {
					err = fmt.Errorf("%w: %v", ErrBadResponse, cerr)
				}
			}
		}
		if err == nil {
			t.unitOK(req.Unit)
			t.health.Answered(start)
			return n, out, nil
		}
		if t.serial {
			t.line.Close() // never read a late answer into the next request
		}
		out.Recycled = true
		if errors.Is(err, ErrTimeout) {
			t.unitFailed(req.Unit)
		}
		// Only idempotent reads are retried (a CRC error or a dropped
		// connection is worth another try); a write may have reached the PLC.
		if req.Class != opclass.Read || out.Retries >= t.cfg.RetryReads {
			t.releaseProbe(req.Unit)
			t.health.Failed(err)
			return 0, out, err
		}
		out.Retries++
	}
}

func (t *Target) acquire(ctx context.Context) error {
	select {
	case <-t.tokens:
		return nil
	default:
	}
	if int(t.waiting.Add(1)) > t.cfg.Queue {
		t.waiting.Add(-1)
		return ErrBusy
	}
	defer t.waiting.Add(-1)
	timer := time.NewTimer(t.cfg.QueueTimeout.D())
	defer timer.Stop()
	select {
	case <-t.tokens:
		return nil
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exchangeSerial runs one transaction on the serial line with goburrow's
// packager and transporter, keeping the line's pacing.
func (t *Target) exchangeSerial(req *modbus.Request, resp []byte) (int, error) {
	tr := t.line
	t.pace()
	defer t.markEnd()
	tr.setUnit(req.Unit)
	adu, err := tr.Encode(&gbmodbus.ProtocolDataUnit{FunctionCode: req.PDU[0], Data: req.PDU[1:]})
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if req.Unit == 0 {
		return t.broadcast(tr, adu)
	}
	raw, err := tr.Send(adu)
	if err != nil {
		return 0, classify(err)
	}
	if err := tr.Verify(adu, raw); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	pdu, err := tr.Decode(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	n := 1 + len(pdu.Data)
	if n > len(resp) {
		return 0, fmt.Errorf("%w: %d byte PDU", ErrBadResponse, n)
	}
	resp[0] = pdu.FunctionCode
	copy(resp[1:], pdu.Data)
	if err := modbus.CheckResponse(req, resp[:n]); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return n, nil
}

// broadcast sends a unit-0 frame on a serial line: no unit answers, so after
// the send the bus is kept quiet for the turnaround delay and the request is
// reported as done with an empty response.
func (t *Target) broadcast(tr transport, adu []byte) (int, error) {
	_, err := tr.Send(adu)
	time.Sleep(t.cfg.Turnaround.D())
	if err != nil && !errors.Is(classify(err), ErrTimeout) {
		return 0, classify(err)
	}
	return 0, nil
}

// classify maps goburrow and OS errors onto this package's errors.
func classify(err error) error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial":
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, serial.ErrTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	default:
		// EOF, reset: the PLC (or something between) closed the connection,
		// often an idle one. That says nothing about the unit, so no back-off.
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
}

// pace keeps the inter-frame silence a serial line needs between transactions.
func (t *Target) pace() {
	t.mu.Lock()
	wait := t.gap - time.Since(t.last)
	t.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
}

func (t *Target) markEnd() {
	t.mu.Lock()
	t.last = time.Now()
	t.mu.Unlock()
}

// admitUnit fails fast for a unit in back-off, letting one probe through per period.
func (t *Target) admitUnit(u byte) bool {
	s := &t.units[u]
	d := s.downUntil.Load()
	if d == 0 {
		return true
	}
	if time.Now().UnixNano() < d {
		return false
	}
	return s.probing.CompareAndSwap(false, true)
}

func (t *Target) releaseProbe(u byte) { t.units[u].probing.Store(false) }

func (t *Target) unitOK(u byte) {
	s := &t.units[u]
	if s.downUntil.Load() != 0 {
		s.downUntil.Store(0)
		s.probing.Store(false)
	}
}

func (t *Target) unitFailed(u byte) {
	t.units[u].downUntil.Store(time.Now().Add(t.cfg.DeadUnitBackoff.D()).UnixNano())
	t.log.Warn("unit not answering; failing its requests fast", "unit", u, "backoff", t.cfg.DeadUnitBackoff.D())
}

// Close closes the target's connections; requests in flight fail.
func (t *Target) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if t.tcp != nil {
		t.tcp.close()
	}
	if t.line != nil {
		t.line.Close()
	}
	return nil
}
