package modbustarget

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/protocols/modbus"
)

func TestFrameGap(t *testing.T) {
	tests := []struct {
		baud int
		want time.Duration
	}{
		{9600, 4010416 * time.Nanosecond},
		{19200, 2005208 * time.Nanosecond},
		{38400, 1750 * time.Microsecond},
		{115200, 1750 * time.Microsecond},
	}
	for _, tt := range tests {
		got := frameGap(tt.baud)
		if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("frameGap(%d) = %v; want %v", tt.baud, got, tt.want)
		}
	}
}

func TestExceptionMapping(t *testing.T) {
	tests := []struct {
		err  error
		want byte
	}{
		{ErrBusy, modbus.ExServerBusy},
		{ErrUnreachable, modbus.ExGatewayPath},
		{ErrClosed, modbus.ExGatewayPath},
		{ErrTimeout, modbus.ExGatewayTargetFailed},
		{ErrUnitDown, modbus.ExGatewayTargetFailed},
		{fmt.Errorf("%w: bad crc", ErrBadResponse), modbus.ExGatewayTargetFailed},
	}
	for _, tt := range tests {
		if got := Exception(tt.err); got != tt.want {
			t.Errorf("Exception(%v) = %#x; want %#x", tt.err, got, tt.want)
		}
	}
}

func newTest(t *testing.T, c config.Target) *Target {
	t.Helper()
	tg, err := New(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// A unit that timed out is failed fast for the back-off, then one probe goes through.
func TestDeadUnitBackoff(t *testing.T) {
	tg := newTest(t, config.Target{Name: "t", Transport: "tcp", Address: "127.0.0.1:1", Connections: 1, Queue: 1,
		DeadUnitBackoff: config.Duration(50 * time.Millisecond)})
	if !tg.admitUnit(3) {
		t.Fatal("healthy unit not admitted")
	}
	tg.unitFailed(3)
	if tg.admitUnit(3) {
		t.Fatal("unit in back-off admitted")
	}
	if !tg.admitUnit(4) {
		t.Fatal("another unit was held back by unit 3")
	}
	time.Sleep(60 * time.Millisecond)
	if !tg.admitUnit(3) {
		t.Fatal("probe after back-off not admitted")
	}
	if tg.admitUnit(3) {
		t.Fatal("a second request admitted while the probe is out")
	}
	tg.unitOK(3)
	if !tg.admitUnit(3) {
		t.Fatal("unit not admitted after a good answer")
	}
}

func TestQueueBound(t *testing.T) {
	tg := newTest(t, config.Target{Name: "t", Transport: "tcp", Address: "127.0.0.1:1", Connections: 1, Queue: 1,
		QueueTimeout: config.Duration(30 * time.Millisecond)})
	if err := tg.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One waiter may queue (and times out); a second is refused at once.
	res := make(chan error, 1)
	go func() { res <- tg.acquire(t.Context()) }()
	time.Sleep(10 * time.Millisecond)
	if n := tg.Queued(); n != 1 {
		t.Errorf("Queued() = %d with one waiter", n)
	}
	start := time.Now()
	if err := tg.acquire(t.Context()); !errors.Is(err, ErrBusy) || time.Since(start) > 20*time.Millisecond {
		t.Fatalf("second waiter: %v after %v; want ErrBusy at once", err, time.Since(start))
	}
	if err := <-res; !errors.Is(err, ErrBusy) {
		t.Fatalf("queued waiter: %v; want ErrBusy after queue_timeout", err)
	}
	if n := tg.Queued(); n != 0 {
		t.Errorf("Queued() = %d once the waiter gave up", n)
	}
	tg.tokens <- struct{}{}
	if err := tg.acquire(t.Context()); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestUnreachableTarget(t *testing.T) {
	tg := newTest(t, config.Target{Name: "t", Transport: "tcp", Address: "127.0.0.1:1", Connections: 1, Queue: 1,
		Timeout: config.Duration(time.Second), RetryReads: 2})
	var req modbus.Request
	if err := modbus.ParseRequest(1, []byte{3, 0, 0, 0, 1}, &req); err != nil {
		t.Fatal(err)
	}
	var resp [modbus.MaxPDULen]byte
	_, out, err := tg.Do(t.Context(), &req, resp[:])
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Do = %v; want ErrUnreachable", err)
	}
	if out.Retries != 2 || !out.Recycled {
		t.Fatalf("outcome = %+v; want 2 retries of the read", out)
	}
	if h := tg.Health(); h.Reachable() || !h.LastResponse.IsZero() || !strings.Contains(h.LastError, "cannot connect") {
		t.Fatalf("health = %+v; want unreachable with the connect error", h)
	}
	if err := modbus.ParseRequest(1, []byte{6, 0, 0, 0, 1}, &req); err != nil {
		t.Fatal(err)
	}
	_, out, err = tg.Do(t.Context(), &req, resp[:])
	if err == nil || out.Retries != 0 {
		t.Fatalf("write: %v, %+v; want an error and no retry", err, out)
	}
}
