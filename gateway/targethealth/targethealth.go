// Package targethealth keeps what the gateway learns about reaching a
// downstream target from the requests it forwards: when the target last
// answered, how long that took, and the last failure. It never probes, so a
// target nobody used since the start has no answer yet rather than a
// guessed state.
package targethealth

import (
	"sync"
	"sync/atomic"
	"time"
)

// Health is a snapshot.
type Health struct {
	LastResponse time.Time     // the last answer; zero: none since the start
	Latency      time.Duration // how long that answer took
	LastError    string        // the last failure to get an answer; "" if none since the start
	LastErrorAt  time.Time
}

// Reachable reports whether the last request got an answer.
func (h Health) Reachable() bool {
	return !h.LastResponse.IsZero() && !h.LastResponse.Before(h.LastErrorAt)
}

// Tracker records answers and failures. Answers cost two atomic stores (and
// an observation, with an Observer), as they come on the inline path;
// failures take a lock.
type Tracker struct {
	lastOK  atomic.Int64 // unix nanoseconds
	latency atomic.Int64
	observe Observer

	mu      sync.Mutex
	lastErr string
	errAt   time.Time
}

// Observer takes one measurement; a Prometheus histogram is one.
type Observer interface{ Observe(float64) }

// SetObserver has the latency of every answer, in seconds, observed by o
// (Answered, not Connected). Call it before the first request.
func (t *Tracker) SetObserver(o Observer) { t.observe = o }

// Answered records an answer to a request sent at start: one round trip,
// which the Observer sees.
func (t *Tracker) Answered(start time.Time) {
	d := t.reached(start)
	if t.observe != nil {
		t.observe.Observe(d.Seconds())
	}
}

// Connected records that the target answered an exchange begun at start
// that is not one request's round trip (an OPC UA session open: endpoints,
// secure channel, CreateSession, ActivateSession): the target is reachable
// and Health has the time it took, but the Observer does not see it.
func (t *Tracker) Connected(start time.Time) { t.reached(start) }

func (t *Tracker) reached(start time.Time) time.Duration {
	now := time.Now()
	d := now.Sub(start)
	t.latency.Store(int64(d))
	t.lastOK.Store(now.UnixNano())
	return d
}

// Failed records a request that got no usable answer.
func (t *Tracker) Failed(err error) {
	t.mu.Lock()
	t.lastErr, t.errAt = err.Error(), time.Now()
	t.mu.Unlock()
}

// Health returns a snapshot.
func (t *Tracker) Health() Health {
	var h Health
	if ok := t.lastOK.Load(); ok != 0 {
		h.LastResponse, h.Latency = time.Unix(0, ok), time.Duration(t.latency.Load())
	}
	t.mu.Lock()
	h.LastError, h.LastErrorAt = t.lastErr, t.errAt
	t.mu.Unlock()
	return h
}
