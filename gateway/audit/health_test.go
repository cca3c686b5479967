package audit

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// observations records what an Observer is given.
type observations struct {
	mu   sync.Mutex
	vals []float64
}

func (o *observations) Observe(v float64) {
	o.mu.Lock()
	o.vals = append(o.vals, v)
	o.mu.Unlock()
}

func (o *observations) sum() (n int, sum float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, v := range o.vals {
		sum += v
	}
	return len(o.vals), sum
}

// Health counts what the metrics export: records written since the log was
// opened (the batches add up to them), fdatasyncs, failed writes and the
// records refused because of them.
func TestHealthCounts(t *testing.T) {
	dir := t.TempDir()
	// Records from an earlier run are not counted as written by this one.
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(context.Background(), commandRecord()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var batches, syncs observations
	l, err = Open(dir, Options{Durability: Always, SyncInterval: time.Hour, BatchRecords: &batches, SyncSeconds: &syncs})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := l.Append(context.Background(), commandRecord()); err != nil {
			t.Fatal(err)
		}
	}
	h := l.Health()
	if h.Appended != 5 || h.WriteErrors != 0 || h.AppendErrors != 0 || h.Stalled {
		t.Fatalf("after 5 appends: %+v", h)
	}
	if n, sum := batches.sum(); n < 1 || sum != 5 {
		t.Errorf("%d batches of %v records in all; want them to add up to 5", n, sum)
	}
	if n, _ := syncs.sum(); n < 5 {
		t.Errorf("%d fdatasyncs observed for 5 appends with durability always", n)
	}

	ro, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = ro // writes now fail with EBADF
	for range 2 {
		if _, err := l.Append(context.Background(), commandRecord()); err == nil {
			t.Fatal("Append succeeded on a read-only file")
		}
	}
	h = l.Health()
	if h.Appended != 5 || h.WriteErrors != 1 || h.AppendErrors != 2 || h.Err == "" {
		t.Fatalf("after a failed write and a refused append: %+v; want 5 appended, 1 write error, 2 append errors", h)
	}
	if _, sum := batches.sum(); sum != 5 {
		t.Errorf("batches add up to %v after the failure; the failed one is not a write", sum)
	}
}

// A write that hangs beyond the append timeout shows as Stalled, and stops
// showing once it completes.
func TestHealthStalled(t *testing.T) {
	l, err := Open(t.TempDir(), Options{AppendTimeout: 100 * time.Millisecond, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if l.Health().Stalled {
		t.Fatal("an idle log is stalled")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = w
	// Fill the pipe so the next write blocks.
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	w.Write(make([]byte, 1<<20))
	w.SetWriteDeadline(time.Time{})

	leader := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), commandRecord()); leader <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for !l.Health().Stalled {
		if time.Now().After(deadline) {
			t.Fatal("a write hanging for 5s is not reported as stalled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The writer waits; a caller behind it is refused after the timeout.
	if _, err := l.Append(context.Background(), commandRecord()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Append behind a stalled write = %v; want ErrTimeout", err)
	}
	if h := l.Health(); h.AppendErrors != 1 || !h.Stalled {
		t.Errorf("while the write hangs: %+v; want stalled, 1 append error (the caller that timed out)", h)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	<-leader
	if l.Health().Stalled {
		t.Error("still stalled after the write completed")
	}
	close(l.stop)
	l.wg.Wait()
	w.Close()
	r.Close()
}
