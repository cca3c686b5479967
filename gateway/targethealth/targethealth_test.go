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
