package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixedTime() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC) }

func commandRecord() *Record {
	r := &Record{}
	r.Reset()
	r.Time = fixedTime()
	r.Type = Command
	r.Session = "b1f7-scada-1"
	r.Party, r.PartyName, r.Org = "acme", "Jan Novák \"service\"", "ACME s.r.o."
	r.Source, r.Listener, r.Target = "127.0.0.1:40000", "scada", "feeder-plc"
	r.Unit, r.Func = 1, 16
	r.Class = "write"
	r.WriteTab, r.WriteAt, r.WriteN = "holding", 100, 2
	r.Values = append(r.Values, 500, 65535)
	r.NValues = 2
	r.Decision, r.Rule = "allow", "feeder-setpoints"
	return r
}

// The encoding is part of the audit format: a change must be deliberate.
func TestGoldenEncoding(t *testing.T) {
	recs := []*Record{commandRecord()}
	res := &Record{}
	res.Reset()
	res.Time, res.Type, res.Session, res.Cmd = fixedTime(), Result, "b1f7-scada-1", 1
	res.Target, res.Unit, res.Func, res.Status, res.LatencyUS = "feeder-plc", 1, 16, "ok", 412
	recs = append(recs, res)
	odd := &Record{}
	odd.Reset()
	odd.Time, odd.Type = fixedTime(), SessionRefused
	odd.PartyName = "bad\xff\x00\n\u2028name\\"
	odd.Decision, odd.Reason = "deny", "unidentified"
	recs = append(recs, odd)
	var got []byte
	var prev [32]byte
	for i, r := range recs {
		p := len(got)
		got = r.appendJSON(got, uint64(i+1), &prev)
		prev = hashLine(got[p : len(got)-1])
	}
	golden := filepath.Join("testdata", "records.golden.jsonl")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(got) != string(want) {
		t.Errorf("encoding changed:\n got: %s\nwant: %s", got, want)
	}
	// Every line is valid JSON whatever the strings held.
	sc := bufio.NewScanner(bytesReader(got))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		fixedTime(),
		time.Date(1999, 1, 2, 3, 4, 5, 6000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("CET", 3600)),
	} {
		want := tm.UTC().Format("2006-01-02T15:04:05.000000Z")
		if got := string(appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v) = %s; want %s", tm, got, want)
		}
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %q", len(out)+1, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestConcurrentAppendsAreWrittenInOrder(t *testing.T) {
	for _, d := range []Durability{Batch, Always, None} {
		t.Run([]string{"batch", "always", "none"}[d], func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{Durability: d, SyncInterval: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			const writers, each = 8, 200
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := commandRecord()
					for i := 0; i < each; i++ {
						if _, err := l.Append(context.Background(), r); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if d != None {
				// Append returned, so every record must already be in the file.
				if n := len(readLines(t, l.Path())); n != writers*each {
					t.Fatalf("after Append returned, file has %d records; want %d", n, writers*each)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, l.Path())
			if len(lines) != writers*each {
				t.Fatalf("file has %d records; want %d", len(lines), writers*each)
			}
			for i, m := range lines {
				if seq := m["seq"].(float64); int(seq) != i+1 {
					t.Fatalf("line %d has seq %v", i+1, seq)
				}
			}
		})
	}
}

func TestEnqueueIsWrittenBySyncLoop(t *testing.T) {
	l, err := Open(t.TempDir(), Options{SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Enqueue(commandRecord()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(readLines(t, l.Path())) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("enqueued record never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A write error stays until a repair succeeds: every later Append fails, so
// the caller refuses commands.
func TestWriteErrorIsSticky(t *testing.T) {
	l, err := Open(t.TempDir(), Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = ro // writes now fail with EBADF
	if _, err := l.Append(context.Background(), commandRecord()); err == nil {
		t.Fatal("Append succeeded on a read-only file")
	}
	if _, err := l.Append(context.Background(), commandRecord()); err == nil {
		t.Fatal("second Append succeeded after a write error")
	}
	if l.Err() == nil {
		t.Fatal("Err() = nil after a write error")
	}
}

// A write that hangs must not hang every caller: they fail after the deadline.
func TestAppendTimesOutWhenWriteHangs(t *testing.T) {
	l, err := Open(t.TempDir(), Options{AppendTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = w
	// Fill the pipe so the next write blocks.
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	fill := make([]byte, 1<<20)
	w.Write(fill)
	w.SetWriteDeadline(time.Time{})

	leader := make(chan error, 1)
	go func() { _, err := l.Append(context.Background(), commandRecord()); leader <- err }()
	time.Sleep(20 * time.Millisecond) // let it become the writer
	start := time.Now()
	seq, err := l.Append(context.Background(), commandRecord())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Append = %v; want ErrTimeout", err)
	}
	if seq == 0 {
		t.Fatal("a timed-out Append did not say which record is still queued")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("timed out after %v; want about 100ms", el)
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
	close(l.stop)
	l.wg.Wait()
	w.Close()
	r.Close()
}

// BenchmarkAppend measures the appender alone: producers=N goroutines per
// core append command records (about 400 bytes) with the chain and
// checkpoints on; segments are large so rotation and compression stay out.
func BenchmarkAppend(b *testing.B) {
	for _, d := range []Durability{Batch, Always, None} {
		for _, par := range []int{1, 8, 32} {
			name := fmt.Sprintf("%s/producers=%d", []string{"batch", "always", "none"}[d], par)
			if d == Always && par == 1 {
				continue
			}
			b.Run(name, func(b *testing.B) { benchAppend(b, d, par) })
		}
	}
}

func benchAppend(b *testing.B, d Durability, par int) {
	{
		{
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			l, err := Open(b.TempDir(), Options{Durability: d, Key: key, SegmentMaxBytes: 4 << 30, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ReportAllocs()
			b.ResetTimer()
			if par == 1 {
				// One goroutine, one record at a time: every record is its own batch.
				r := commandRecord()
				for range b.N {
					if _, err := l.Append(context.Background(), r); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					r := commandRecord()
					for pb.Next() {
						if _, err := l.Append(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(l.Health().Batches, 1)), "records/write")
		}
	}
}
