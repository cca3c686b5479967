package targethealth

import (
	"errors"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	var tr Tracker
	if h := tr.Health(); h.Reachable() || !h.LastResponse.IsZero() || h.LastError != "" {
		t.Fatalf("fresh tracker: %+v", h)
	}
	tr.Answered(time.Now().Add(-3 * time.Millisecond))
	h := tr.Health()
	if !h.Reachable() || h.Latency < 3*time.Millisecond || time.Since(h.LastResponse) > time.Second {
		t.Fatalf("after an answer: %+v", h)
	}
	time.Sleep(time.Millisecond)
	tr.Failed(errors.New("connection refused"))
	if h := tr.Health(); h.Reachable() || h.LastError != "connection refused" || h.LastResponse.IsZero() {
		t.Fatalf("after a failure: %+v", h)
	}
	time.Sleep(time.Millisecond)
	tr.Answered(time.Now())
	if h := tr.Health(); !h.Reachable() || h.LastError != "connection refused" {
		t.Fatalf("answering again: %+v", h)
	}
	if n := testing.AllocsPerRun(100, func() { tr.Answered(time.Now()) }); n != 0 {
		t.Fatalf("Answered allocates %.0f times", n)
	}
}

type lastObserved struct {
	n    int
	last float64
}

func (o *lastObserved) Observe(v float64) { o.n, o.last = o.n+1, v }

// With an observer, every answer's latency is observed in seconds, still
// without allocating.
func TestTrackerObserver(t *testing.T) {
	var tr Tracker
	var o lastObserved
	tr.SetObserver(&o)
	tr.Answered(time.Now().Add(-5 * time.Millisecond))
	if o.n != 1 || o.last < 0.005 || o.last > 1 {
		t.Fatalf("observed %d, last %v; want 1 observation of about 0.005", o.n, o.last)
	}
	tr.Failed(errors.New("timeout"))
	if o.n != 1 {
		t.Fatal("a failure was observed as a latency")
	}
	if n := testing.AllocsPerRun(100, func() { tr.Answered(time.Now()) }); n != 0 {
		t.Fatalf("Answered with an observer allocates %.0f times", n)
	}
}

// A connection set-up shows the target reachable, with the time it took,
// but is not a round trip: the observer does not see it.
func TestTrackerConnected(t *testing.T) {
	var tr Tracker
	var o lastObserved
	tr.SetObserver(&o)
	tr.Failed(errors.New("connection refused"))
	time.Sleep(time.Millisecond)
	tr.Connected(time.Now().Add(-4 * time.Millisecond))
	if h := tr.Health(); !h.Reachable() || h.Latency < 4*time.Millisecond {
		t.Fatalf("after a connection: %+v", h)
	}
	if o.n != 0 {
		t.Fatalf("a connection set-up was observed %d times as a round trip", o.n)
	}
	tr.Answered(time.Now())
	if o.n != 1 {
		t.Fatalf("observed %d answers, want 1", o.n)
	}
}
