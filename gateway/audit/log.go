// Package audit owns brana's audit log: typed records, encoded as JSON Lines
// with a fixed field order, appended by group commit so that a command's
// record is in the file before the command reaches the plant. If the log
// cannot take a record in time, Append fails and the caller refuses the
// command (fail-closed); nothing is dropped silently.
package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Durability says when Append returns.
type Durability uint8

const (
	// Batch: the record is written to the file (page cache) before Append
	// returns, and fdatasync'd within the sync interval. The default.
	Batch Durability = iota
	// Always: the record is fdatasync'd before Append returns.
	Always
	// None: the record is buffered and written within the sync interval. Labs only.
	None
)

// ParseDurability reads the config spelling.
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "batch", "":
		return Batch, nil
	case "always":
		return Always, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("audit: unknown durability %q (always, batch, none)", s)
}

var (
	ErrTimeout = errors.New("audit: record not accepted in time")
	ErrClosed  = errors.New("audit: log is closed")
)

// Options configure a Log.
type Options struct {
	Durability    Durability
	SyncInterval  time.Duration // batch/none: longest time a record waits for fdatasync or write
	AppendTimeout time.Duration // fail-closed deadline for Append
	Now           func() time.Time
}

// Log is an append-only audit log in one directory.
//
// Group commit without a hand-off: the first caller that finds no write in
// flight becomes the writer for everything queued so far; later callers wait
// for that write (or become the next writer). One write and, in Always mode,
// one fdatasync per batch; each caller learns the fate of its own record.
type Log struct {
	opts Options
	f    *os.File
	path string

	mu       sync.Mutex
	buf      []byte // encoded records not yet handed to a writer
	spare    []byte
	seq      uint64 // last sequence number assigned
	written  uint64 // last sequence number written to the file
	synced   uint64 // last sequence number fdatasync'd
	flushing bool
	done     chan struct{} // closed when the write in flight finishes
	err      error         // sticky write error
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens (creating if needed) the log in dir.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	if opts.AppendTimeout <= 0 {
		opts.AppendTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("audit: opening %s: %w", path, err)
	}
	l := &Log{
		opts:  opts,
		f:     f,
		path:  path,
		buf:   make([]byte, 0, 64<<10),
		spare: make([]byte, 0, 64<<10),
		stop:  make(chan struct{}),
	}
	l.wg.Add(1)
	go l.syncLoop()
	return l, nil
}

// Path is the file the log appends to.
func (l *Log) Path() string { return l.path }

// Err reports the sticky write error, if any, for health output.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Append encodes rec (stamping its time if zero) and returns its sequence
// number once the record is as durable as the log's Durability promises.
// It is never cancelled by ctx: a client that hangs up must not leave a
// half-logged command. Callers refuse the command when it returns an error.
func (l *Log) Append(ctx context.Context, rec *Record) (uint64, error) {
	return l.append(rec, l.opts.Durability != None)
}

// Enqueue appends rec without waiting for the write; it is written with the
// next batch, within the sync interval. For outcome records whose command
// record is already in the file.
func (l *Log) Enqueue(rec *Record) (uint64, error) {
	return l.append(rec, false)
}

func (l *Log) append(rec *Record, wait bool) (uint64, error) {
	if rec.Time.IsZero() {
		rec.Time = l.opts.Now()
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	l.seq++
	seq := l.seq
	l.buf = rec.appendJSON(l.buf, seq)
	if !wait {
		l.mu.Unlock()
		return seq, nil
	}
	var deadline *time.Timer
	for {
		if l.written >= seq && (l.opts.Durability != Always || l.synced >= seq) {
			l.mu.Unlock()
			stopTimer(deadline)
			return seq, nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			stopTimer(deadline)
			return 0, err
		}
		if !l.flushing {
			l.flushLocked() // returns with l.mu held
			continue
		}
		done := l.done
		l.mu.Unlock()
		if deadline == nil {
			deadline = time.NewTimer(l.opts.AppendTimeout)
		}
		select {
		case <-done:
		case <-deadline.C:
			return 0, fmt.Errorf("%w after %v", ErrTimeout, l.opts.AppendTimeout)
		}
		l.mu.Lock()
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// flushLocked writes everything buffered. Called and returns with l.mu held;
// releases it around the I/O so that new records keep queueing.
func (l *Log) flushLocked() {
	if len(l.buf) == 0 || l.flushing {
		return
	}
	l.flushing = true
	batch, last := l.buf, l.seq
	l.buf = l.spare[:0]
	done := make(chan struct{})
	l.done = done
	syncNow := l.opts.Durability == Always
	l.mu.Unlock()

	_, err := l.f.Write(batch)
	if err == nil && syncNow {
		err = fdatasync(l.f)
	}

	l.mu.Lock()
	l.spare = batch[:0]
	l.flushing = false
	if err != nil {
		l.err = fmt.Errorf("audit: writing %s: %w", l.path, err)
	} else {
		l.written = last
		if syncNow {
			l.synced = last
		}
	}
	close(done)
}

// syncLoop writes what Enqueue and None mode left buffered and, in Batch
// mode, bounds how long a written record waits for fdatasync.
func (l *Log) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Sync()
		}
	}
}

// Sync writes and fdatasyncs everything appended so far.
func (l *Log) Sync() error {
	l.mu.Lock()
	for l.flushing {
		done := l.done
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	l.flushLocked()
	written, err := l.written, l.err
	need := written > l.synced
	l.mu.Unlock()
	if err != nil || !need {
		return err
	}
	if err := fdatasync(l.f); err != nil {
		l.mu.Lock()
		if l.err == nil {
			l.err = fmt.Errorf("audit: syncing %s: %w", l.path, err)
		}
		err = l.err
		l.mu.Unlock()
		return err
	}
	l.mu.Lock()
	if written > l.synced {
		l.synced = written
	}
	l.mu.Unlock()
	return nil
}

// Close writes and syncs everything and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	err := l.Sync()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
