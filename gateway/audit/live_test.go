package audit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Each subscriber gets every record's line exactly as the file holds it, in order.
func TestSubscribeDeliversLines(t *testing.T) {
	l, err := Open(t.TempDir(), Options{Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	a, cancelA := l.Subscribe()
	b, cancelB := l.Subscribe()
	defer cancelB()
	const n = 5
	for range n {
		if _, err := l.Append(context.Background(), commandRecord()); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(file, []byte("\n")), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("file has %d lines; want %d", len(lines), n)
	}
	for name, ch := range map[string]<-chan []byte{"a": a, "b": b} {
		for i := range n {
			select {
			case got := <-ch:
				if !bytes.Equal(got, lines[i]) {
					t.Fatalf("%s: record %d = %s; want %s", name, i+1, got, lines[i])
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: record %d never delivered", name, i+1)
			}
		}
	}
	cancelA()
	cancelA() // idempotent
	if _, ok := <-a; ok {
		t.Fatal("channel still open after cancel")
	}
	if _, err := l.Append(context.Background(), commandRecord()); err != nil {
		t.Fatal(err)
	}
	if got := <-b; !bytes.Contains(got, []byte(`"seq":6`)) {
		t.Fatalf("b after a cancelled: %s", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range b { // the final checkpoint, if any, then the close
	}
	c, cancelC := l.Subscribe()
	if _, ok := <-c; ok {
		t.Fatal("a subscription after Close delivered a record")
	}
	cancelC()
}

// A subscriber that does not read never holds up the appender: it loses
// what does not fit its buffer, and the loss is counted.
func TestSubscribeSlowSubscriberLoses(t *testing.T) {
	l, err := Open(t.TempDir(), Options{Durability: None, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch, cancel := l.Subscribe()
	defer cancel()
	const n = LiveBuffer + 50
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := commandRecord()
		for range n {
			if _, err := l.Append(context.Background(), r); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the appender blocked on a subscriber that does not read")
	}
	if got := l.Health().LiveDropped; got != 50 {
		t.Fatalf("LiveDropped = %d; want 50", got)
	}
	if len(ch) != LiveBuffer {
		t.Fatalf("buffered %d; want %d", len(ch), LiveBuffer)
	}
	if first := <-ch; !bytes.Contains(first, []byte(`"seq":1,`)) {
		t.Fatalf("first delivered record = %s; want seq 1", first)
	}
}

// Subscribing and cancelling while records are appended is safe (run with -race).
func TestSubscribeConcurrent(t *testing.T) {
	l, err := Open(t.TempDir(), Options{Durability: None, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	var wg, subs sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := commandRecord()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.Append(context.Background(), r); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 4 {
		subs.Add(1)
		go func() {
			defer subs.Done()
			for range 50 {
				ch, cancel := l.Subscribe()
				<-ch
				cancel()
			}
		}()
	}
	subs.Wait()
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// Without subscribers the appender allocates nothing for the live feed.
func TestSubscribeNoneNoAllocs(t *testing.T) {
	l, err := Open(t.TempDir(), Options{Durability: None, SyncInterval: time.Hour, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := commandRecord()
	l.Append(context.Background(), r) // warm the buffers
	allocs := testing.AllocsPerRun(100, func() {
		l.mu.Lock()
		l.encodeLocked(r)
		l.buf = l.buf[:0]
		l.mu.Unlock()
	})
	if allocs != 0 {
		t.Fatalf("encoding a record allocates %.1f times without subscribers; want 0", allocs)
	}
}
