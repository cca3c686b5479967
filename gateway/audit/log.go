// Package audit owns brana's audit log: typed records encoded as JSON Lines
// with a fixed field order, each carrying its sequence number and the SHA-256
// of the previous record's bytes, in segment files with signed checkpoints.
//
// Records are appended by group commit so that a command's record is in the
// file before the command reaches the plant. If the log cannot take a record
// in time, Append fails and the caller refuses the command (fail-closed);
// nothing is dropped silently: a failed batch is cut back out of the file and
// replaced by an explicit gap record once writing works again.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/brana-ot/brana/gateway/atomicfile"
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
	ErrLost    = errors.New("audit: record not written (write failed)")
)

// Options configure a Log. Zero values take the defaults in brackets.
type Options struct {
	Durability         Durability
	SyncInterval       time.Duration      // [200ms] longest a record waits for fdatasync (batch) or write (none)
	AppendTimeout      time.Duration      // [2s] fail-closed deadline for Append
	Key                ed25519.PrivateKey // signs checkpoints; nil: no checkpoints
	CheckpointEvery    uint64             // [10000] records between checkpoints
	CheckpointInterval time.Duration      // [60s] longest time between checkpoints while records arrive
	SegmentMaxBytes    int64              // [64 MiB] rotate the active segment beyond this size
	SegmentMaxAge      time.Duration      // [24h] or this age
	RetainFor          time.Duration      // [0 = forever] delete rotated segments older than this ...
	Protected          func() uint64      // ... unless they hold records at or after this seq (not yet exported); nil: none
	MinFreeBytes       uint64             // [64 MiB] below this free space, SpaceLow reports true
	Now                func() time.Time
	Log                *slog.Logger

	// Measurements for metrics; nil: not taken. A Prometheus histogram
	// is an Observer.
	BatchRecords Observer // records per write to the file
	SyncSeconds  Observer // seconds per fdatasync
}

// Observer takes one measurement.
type Observer interface{ Observe(float64) }

func (o *Options) defaults() {
	if o.SyncInterval <= 0 {
		o.SyncInterval = 200 * time.Millisecond
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = 2 * time.Second
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 10000
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Minute
	}
	if o.SegmentMaxBytes <= 0 {
		o.SegmentMaxBytes = 64 << 20
	}
	if o.SegmentMaxAge <= 0 {
		o.SegmentMaxAge = 24 * time.Hour
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Log is an append-only audit log in one directory.
//
// Group commit without a hand-off: the first caller that finds no write in
// flight becomes the writer for everything queued so far; later callers wait
// for that write (or become the next writer). One write and, in Always mode,
// one fdatasync per batch; each caller learns the fate of its own record.
type Log struct {
	opts  Options
	dir   string
	keyID string

	mu        sync.Mutex
	buf       []byte // encoded records not yet handed to a writer
	spare     []byte
	seq       uint64   // last sequence number assigned
	hash      [32]byte // hash of that record
	written   uint64   // last sequence number written to the file
	synced    uint64   // last sequence number fdatasync'd
	durSeq    uint64   // last record known to be in the file, and its hash:
	durHash   [32]byte // the chain restarts here after a failed write
	flushing  bool
	syncMu    sync.Mutex    // held around fdatasync and while a segment is closed
	done      chan struct{} // closed when the write in flight finishes; made by the first waiter
	arriving  atomic.Int32  // callers between entering append and taking the lock
	lastBatch uint64        // records in the last write
	err       error         // set by a failed write until a gap record is written
	epoch     uint64        // bumped when queued records are dropped after a failed write
	lostFrom  uint64        // first seq dropped by the last failure
	closed    bool
	subs      []*subscriber // live feeds; read by the appender under mu

	liveDropped atomic.Uint64 // records live subscribers lost because they were slow

	f         *os.File // active segment
	segPath   string
	segSize   int64
	segOpened time.Time

	ckptSeq  uint64 // seq covered by the last checkpoint
	ckptTime time.Time
	head     []byte // checkpoint line to publish in HeadFile once synced

	batches  atomic.Uint64 // writes, for the average batch size in metrics
	openSeq  uint64        // seq when the log was opened: written-openSeq records were written since
	flushAt  time.Time     // when the write in flight started, for Health().Stalled
	writeErr uint64        // failed writes and fdatasyncs
	refused  atomic.Uint64 // records Append or Enqueue refused with an error
	spaceLow atomic.Bool
	compress chan string
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open opens the log in dir, creating it if needed. It repairs a torn tail
// left by a crash and records the repair in a gap record.
func Open(dir string, opts Options) (*Log, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: creating %s: %w", dir, err)
	}
	l := &Log{
		opts:     opts,
		dir:      dir,
		buf:      make([]byte, 0, 64<<10),
		spare:    make([]byte, 0, 64<<10),
		compress: make(chan string, 64),
		stop:     make(chan struct{}),
	}
	if opts.Key != nil {
		l.keyID = KeyID(opts.Key.Public().(ed25519.PublicKey))
	}
	repair, err := l.recover()
	if err != nil {
		return nil, err
	}
	l.durSeq, l.durHash, l.written, l.synced = l.seq, l.hash, l.seq, l.seq
	l.openSeq = l.seq
	l.ckptSeq, l.ckptTime = l.seq, opts.Now()
	l.checkSpace()

	l.wg.Add(2)
	go l.syncLoop()
	go l.compressLoop()
	// Segments a crash left uncompressed; before the gap record, whose
	// rotation queues the segment it leaves on its own.
	if segs, err := Segments(dir); err == nil {
		for _, s := range segs {
			if !s.Compressed && s.Path != l.segPath {
				l.queueCompress(s.Path)
			}
		}
	}
	if repair != "" {
		opts.Log.Warn("audit log repaired at start", "detail", repair)
		if _, err := l.Append(context.Background(), &Record{Type: Gap, Unit: -1, Func: -1, Sub: -1, Detail: repair}); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// recover finds where the chain ends and opens the active segment for appending.
// It returns a description of any repair, for a gap record.
func (l *Log) recover() (string, error) {
	segs, err := Segments(l.dir)
	if err != nil {
		return "", err
	}
	var repair string
	var active string
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.Compressed {
			seq, hash, found, err := lastRecord(s)
			if err != nil {
				return "", fmt.Errorf("audit: reading %s: %w", s.Path, err)
			}
			if found {
				l.seq, l.hash = seq, hash
				break
			}
			continue
		}
		t, err := readTail(s.Path)
		if err != nil {
			return "", fmt.Errorf("audit: reading %s: %w", s.Path, err)
		}
		if len(t.torn) > 0 {
			saved := filepath.Join(l.dir, fmt.Sprintf("torn-%s-%d.bin", filepath.Base(s.Path), l.opts.Now().Unix()))
			if err := os.WriteFile(saved, t.torn, 0o640); err != nil {
				return "", fmt.Errorf("audit: saving torn tail: %w", err)
			}
			if err := os.Truncate(s.Path, t.good); err != nil {
				return "", fmt.Errorf("audit: cutting torn tail of %s: %w", s.Path, err)
			}
			after := "the start of the segment"
			if t.found {
				after = "seq " + strconv.FormatUint(t.seq, 10)
			}
			repair = fmt.Sprintf("repaired torn tail of %s after a crash: %d bytes after %s moved to %s",
				filepath.Base(s.Path), len(t.torn), after, filepath.Base(saved))
		}
		if active == "" {
			active = s.Path
		}
		if t.found {
			l.seq, l.hash = t.seq, t.hash
			break
		}
	}
	if active == "" {
		active = filepath.Join(l.dir, segmentName(l.seq+1))
	}
	if err := l.openSegment(active); err != nil {
		return "", err
	}
	return repair, nil
}

func (l *Log) openSegment(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	syncDir(l.dir)
	l.f, l.segPath, l.segSize, l.segOpened = f, path, st.Size(), l.opts.Now()
	return nil
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Path is the active segment.
func (l *Log) Path() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segPath
}

// Err reports a write failure not yet repaired, for health output.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// SpaceLow reports that free space under the log is below the floor: the
// gateway then refuses new sessions rather than risk losing records.
func (l *Log) SpaceLow() bool { return l.spaceLow.Load() }

// Health is a snapshot for health output.
type Health struct {
	Seq, Written, Synced uint64
	Batches              uint64 // writes so far
	Segment              string
	Err                  string
	SpaceLow             bool
	LiveDropped          uint64 // records slow live subscribers did not get
	Appended             uint64 // records written to the file since the log was opened
	WriteErrors          uint64 // failed writes and fdatasyncs since then
	AppendErrors         uint64 // records refused with an error (their commands were refused)
	// Stalled: the write in flight has taken longer than the append
	// timeout, so every command waiting for it is being refused.
	Stalled bool
}

// Health reports the log's state.
func (l *Log) Health() Health {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := Health{Seq: l.seq, Written: l.written, Synced: l.synced, Batches: l.batches.Load(), Segment: filepath.Base(l.segPath),
		SpaceLow: l.spaceLow.Load(), LiveDropped: l.liveDropped.Load(), Appended: l.written - l.openSeq,
		WriteErrors: l.writeErr, AppendErrors: l.refused.Load(), Stalled: l.flushing && time.Since(l.flushAt) > l.opts.AppendTimeout}
	if l.err != nil {
		h.Err = l.err.Error()
	}
	return h
}

// Append encodes rec (stamping its time if zero) and returns its sequence
// number once the record is as durable as the log's Durability promises.
// It is never cancelled by ctx: a client that hangs up must not leave a
// half-logged command. Callers refuse the command when it returns an error;
// after ErrTimeout the returned seq names the record that is still queued.
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
	l.arriving.Add(1)
	l.mu.Lock()
	l.arriving.Add(-1)
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		l.refused.Add(1)
		return 0, err
	}
	seq := l.encodeLocked(rec)
	if !wait {
		l.mu.Unlock()
		return seq, nil
	}
	epoch := l.epoch
	var deadline *time.Timer
	defer stopTimer(&deadline)
	for {
		if l.epoch != epoch {
			err := l.err
			l.mu.Unlock()
			l.refused.Add(1)
			return 0, fmt.Errorf("%w: %v", ErrLost, err)
		}
		if l.written >= seq && (l.opts.Durability != Always || l.synced >= seq) {
			l.mu.Unlock()
			return seq, nil
		}
		if !l.flushing {
			l.flushLocked(l.opts.Durability == Always)
			continue
		}
		if l.done == nil {
			l.done = make(chan struct{})
		}
		done := l.done
		l.mu.Unlock()
		if deadline == nil {
			deadline = time.NewTimer(l.opts.AppendTimeout)
		}
		select {
		case <-done:
		case <-deadline.C:
			// The record stays queued and will be written if the log
			// recovers: seq lets the caller follow it with what happened.
			l.refused.Add(1)
			return seq, fmt.Errorf("%w after %v", ErrTimeout, l.opts.AppendTimeout)
		}
		l.mu.Lock()
	}
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
	}
}

// encodeLocked appends rec to the batch buffer and advances the chain.
func (l *Log) encodeLocked(rec *Record) uint64 {
	p := len(l.buf)
	l.seq++
	l.buf = rec.appendJSON(l.buf, l.seq, &l.hash)
	l.hash = sha256.Sum256(l.buf[p : len(l.buf)-1])
	if len(l.subs) > 0 {
		l.publishLocked(l.buf[p : len(l.buf)-1])
	}
	return l.seq
}

// flushLocked writes everything buffered (and fdatasyncs if syncNow). Called
// and returns with l.mu held; releases it around the I/O so that new records
// keep queueing.
func (l *Log) flushLocked(syncNow bool) {
	if l.flushing || (len(l.buf) == 0 && (!syncNow || l.synced >= l.written)) {
		return
	}
	l.flushing = true
	l.flushAt = time.Now()
	// Under load, callers just woken by the last write are about to add
	// records and would wait for this write anyway: yielding once lets them
	// in first, so one write carries many records instead of one.
	if l.arriving.Load() > 0 || l.lastBatch > 1 {
		l.mu.Unlock()
		runtime.Gosched()
		l.mu.Lock()
	}
	batch, last, lastHash, written := l.buf, l.seq, l.hash, l.written
	l.lastBatch = last - l.written
	l.buf = l.spare[:0]
	f, sizeBefore := l.f, l.segSize
	l.mu.Unlock()

	var err error
	if len(batch) > 0 {
		l.batches.Add(1)
		if _, err = f.Write(batch); err != nil {
			// Cut a partly written batch back out, so the file stays a clean chain.
			f.Truncate(sizeBefore)
		}
	}
	if err == nil && syncNow {
		l.syncMu.Lock()
		err = l.fdatasync(f)
		l.syncMu.Unlock()
	}
	if o := l.opts.BatchRecords; o != nil && err == nil && len(batch) > 0 {
		o.Observe(float64(last - written))
	}

	l.mu.Lock()
	l.spare = batch[:0]
	l.flushing = false
	if err != nil {
		l.failLocked(err)
	} else {
		l.segSize += int64(len(batch))
		l.written, l.durSeq, l.durHash = last, last, lastHash
		if syncNow {
			l.synced = last
		}
		l.rotateLocked()
	}
	if l.done != nil {
		close(l.done)
		l.done = nil
	}
}

// failLocked drops everything not in the file and rewinds the chain to the
// last record that is. Waiting callers get ErrLost; the records of Enqueue
// callers are accounted for by the gap record repair writes.
func (l *Log) failLocked(err error) {
	if l.err == nil {
		l.lostFrom = l.durSeq + 1
	}
	l.err = fmt.Errorf("audit: writing %s: %w", filepath.Base(l.segPath), err)
	l.writeErr++
	l.epoch++
	l.buf = l.buf[:0]
	l.seq, l.hash, l.written = l.durSeq, l.durHash, l.durSeq
	if l.synced > l.durSeq {
		l.synced = l.durSeq
	}
	l.head = nil
	l.opts.Log.Error("audit log write failed; commands are refused until it recovers", "err", err)
}

// repair tries to resume after a failed write by writing a gap record that
// says which records were lost.
func (l *Log) repair() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil || l.flushing || l.closed {
		return
	}
	cause := l.err
	l.err = nil
	l.encodeLocked(&Record{Time: l.opts.Now(), Type: Gap, Unit: -1, Func: -1, Sub: -1,
		Detail: fmt.Sprintf("records from seq %d on were not written (%v); their commands were refused; numbering resumes here", l.lostFrom, cause)})
	l.flushLocked(true)
	if l.err == nil {
		l.opts.Log.Warn("audit log recovered after a write failure", "lost_from", l.lostFrom)
	}
}

// rotateLocked starts a new segment when the active one is too big or too old.
func (l *Log) rotateLocked() {
	if l.segSize == 0 || (l.segSize < l.opts.SegmentMaxBytes && l.opts.Now().Sub(l.segOpened) < l.opts.SegmentMaxAge) {
		return
	}
	old := l.f
	// A Sync may be syncing the old file outside l.mu: wait for it before
	// the file is closed.
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.fdatasync(old); err != nil {
		l.failLocked(err)
		return
	}
	l.synced = l.written
	oldPath := l.segPath
	if err := l.openSegment(filepath.Join(l.dir, segmentName(l.written+1))); err != nil {
		l.f = old // keep appending to the old one rather than lose records
		l.opts.Log.Error("audit segment rotation failed", "err", err)
		return
	}
	old.Close()
	l.queueCompress(oldPath)
}

func (l *Log) queueCompress(path string) {
	select {
	case l.compress <- path:
	default: // compressed at the next start
	}
}

// syncLoop writes what Enqueue and None mode left buffered, bounds how long a
// written record waits for fdatasync, writes checkpoints, repairs after
// failures, watches free space and applies retention.
func (l *Log) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	lastRetention := time.Time{}
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.repair()
		l.maybeCheckpoint(false)
		l.Sync()
		l.publishHead()
		l.checkSpace()
		if now := l.opts.Now(); l.opts.RetainFor > 0 && now.Sub(lastRetention) > time.Minute {
			lastRetention = now
			l.retain()
		}
	}
}

// Sync writes and fdatasyncs everything appended so far.
func (l *Log) Sync() error {
	l.mu.Lock()
	for l.flushing {
		if l.done == nil {
			l.done = make(chan struct{})
		}
		done := l.done
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	syncNow := l.opts.Durability != None || l.closed
	if !syncNow || l.opts.Durability == Always {
		l.flushLocked(syncNow)
		err := l.err
		l.mu.Unlock()
		return err
	}
	// Batch: write under the write token, but fdatasync outside it, so that
	// commands keep being written (and forwarded) while the disk syncs.
	l.flushLocked(false)
	f, written, err := l.f, l.written, l.err
	need := written > l.synced
	l.mu.Unlock()
	if err != nil || !need {
		return err
	}
	l.syncMu.Lock()
	err = l.fdatasync(f)
	l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failLocked(err)
		return l.err
	}
	if written > l.synced {
		l.synced = written
	}
	return nil
}

// checkpointMessage is what a checkpoint signs: the sequence number and the
// hash of the record just before the checkpoint, which commits to everything
// before it through the chain.
func checkpointMessage(seq uint64, hash string) []byte {
	return []byte("brana audit checkpoint v1\n" + strconv.FormatUint(seq, 10) + "\n" + hash + "\n")
}

// maybeCheckpoint appends a signed checkpoint if enough records or time passed
// (or always, when forced and anything is uncovered).
func (l *Log) maybeCheckpoint(force bool) {
	if l.opts.Key == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || l.seq == l.ckptSeq {
		return
	}
	now := l.opts.Now()
	if !force && l.seq-l.ckptSeq < l.opts.CheckpointEvery && now.Sub(l.ckptTime) < l.opts.CheckpointInterval {
		return
	}
	h := hex.EncodeToString(l.hash[:])
	rec := &Record{Time: now, Type: Checkpoint, Unit: -1, Func: -1, Sub: -1,
		CkptSeq: l.seq, CkptHash: h, Key: l.keyID,
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(l.opts.Key, checkpointMessage(l.seq, h)))}
	p := len(l.buf)
	l.encodeLocked(rec)
	l.head = append([]byte(nil), l.buf[p:]...)
	l.ckptSeq, l.ckptTime = l.seq, now
}

// publishHead writes the latest synced checkpoint to HeadFile (temp file,
// fsync, rename), so that verify can tell a log cut back past it.
func (l *Log) publishHead() {
	l.mu.Lock()
	head := l.head
	if head == nil || l.synced < l.ckptSeq {
		l.mu.Unlock()
		return
	}
	l.head = nil
	l.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(l.dir, HeadFile), head, 0o640); err != nil {
		l.opts.Log.Error("audit: publishing checkpoint", "err", err)
	}
}

func (l *Log) checkSpace() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.dir, &st); err != nil {
		return
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	low := free < l.opts.MinFreeBytes
	if low != l.spaceLow.Swap(low) {
		if low {
			l.opts.Log.Error("audit log disk space below the floor; new sessions are refused", "free_bytes", free, "floor_bytes", l.opts.MinFreeBytes)
		} else {
			l.opts.Log.Info("audit log disk space back above the floor", "free_bytes", free)
		}
	}
}

// Close writes a final checkpoint, syncs everything and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.repair()
	l.maybeCheckpoint(true)
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.Sync()
	l.publishHead()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.mu.Lock()
	for _, s := range l.subs {
		s.endLocked(l)
	}
	l.subs = nil
	l.mu.Unlock()
	return err
}

// fdatasync syncs f and times it for metrics.
func (l *Log) fdatasync(f *os.File) error {
	o := l.opts.SyncSeconds
	if o == nil {
		return fdatasync(f)
	}
	start := time.Now()
	err := fdatasync(f)
	o.Observe(time.Since(start).Seconds())
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

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// writeFileAtomic replaces path with data (temp file, fsync, rename).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.WriteFile(path, data, mode)
}
