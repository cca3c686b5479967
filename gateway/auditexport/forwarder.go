package auditexport

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
)

var (
	// ErrBusy means another process (a running gateway, or another
	// `brana audit export`) is exporting with the same name and cursor.
	ErrBusy     = errors.New("auditexport: exporter is running elsewhere")
	errRejected = errors.New("auditexport: endpoint did not accept the batch")
)

// sender delivers one batch; it keeps its connection between batches and
// reconnects on the next send after a failure.
type sender interface {
	send(ctx context.Context, b *batch) error
	close()
}

// Forwarder exports the audit log in one directory to one destination.
type Forwarder struct {
	cfg  Config
	dir  string
	log  *slog.Logger
	tls  *tls.Config
	path string
	cur  cursor // owned by the running export
	seq  atomic.Uint64

	durable func() uint64

	poll       time.Duration // how often a caught-up forwarder looks for new records
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration // connect and write (syslog), whole request (http)
	grace      time.Duration // a batch in flight at shutdown may take this long to finish
	attempts   int           // Export gives up after this many failed sends of one batch
}

// New prepares a forwarder: it checks cfg, loads the TLS files and reads the
// cursor. It sends nothing until Run.
func New(cfg Config, auditDir string, log *slog.Logger) (*Forwarder, error) {
	if p := cfg.Check(); len(p) > 0 {
		return nil, fmt.Errorf("auditexport: exporter %q: %s", cfg.Name, strings.Join(p, "; "))
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Forwarder{
		cfg: cfg, dir: auditDir, log: log.With("exporter", cfg.Name),
		path: CursorPath(auditDir, cfg.Name),
		poll: 200 * time.Millisecond, minBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second,
		timeout: 10 * time.Second, grace: 2 * time.Second, attempts: 5,
	}
	if cfg.Type == "http" {
		f.timeout = 30 * time.Second
	}
	if cfg.TLS != nil {
		tc, err := f.cfg.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("auditexport: exporter %q: %w", cfg.Name, err)
		}
		f.tls = tc
	}
	c, err := loadCursor(f.path)
	if err != nil {
		return nil, err
	}
	f.cur = c
	f.seq.Store(c.seq)
	return f, nil
}

// Durable limits export to records the log has on disk for sure: records
// after synced() wait (at most the log's sync interval). Wire it to the
// gateway's own log, e.g. func() uint64 { return log.Health().Synced } when
// its durability is batch or always. Without it a forwarder sends what is
// written, and a power cut that loses an unsynced tail the SIEM already has
// is noticed at restart only at the cursor's record. Call before Run.
func (f *Forwarder) Durable(synced func() uint64) { f.durable = synced }

// Name is the exporter's name.
func (f *Forwarder) Name() string { return f.cfg.Name }

// Cursor is the seq of the last record delivered and persisted; 0 before the first.
func (f *Forwarder) Cursor() uint64 { return f.seq.Load() }

// Protected returns, for audit.Options.Protected, the lowest seq that some
// forwarder has not exported yet: retention keeps the segments holding it.
// With no forwarders nothing is protected.
func Protected(fwds []*Forwarder) func() uint64 {
	return func() uint64 {
		low := ^uint64(0)
		for _, f := range fwds {
			if n := f.Cursor() + 1; n < low {
				low = n
			}
		}
		return low
	}
}

// Run follows the log: it sends every record after the cursor, then looks
// for new ones every 200ms, and persists the cursor after each batch. Send
// failures are retried with backoff (250ms doubling to 30s) from the same
// record; nothing is skipped. When ctx is done it lets a batch in flight
// finish (briefly), and returns nil with the cursor on disk matching what was
// delivered. It returns an error only when it cannot start (another process
// holds the exporter) or cannot persist the cursor at shutdown.
func (f *Forwarder) Run(ctx context.Context) error {
	_, err := f.run(ctx, true)
	return err
}

// Export sends everything after the cursor of exporter cfg.Name to its
// destination once, persists the cursor and returns how many records it
// sent: `brana audit export`. A batch that fails five times in a row ends it
// with an error; what was sent before stays counted in the cursor. It refuses
// to run while a gateway forwards with the same exporter name (ErrBusy).
func Export(ctx context.Context, auditDir string, cfg Config) (sent int, err error) {
	f, err := New(cfg, auditDir, slog.Default())
	if err != nil {
		return 0, err
	}
	return f.run(ctx, false)
}

func (f *Forwarder) newSender() sender {
	if f.cfg.Type == "http" {
		return newHTTPSender(&f.cfg, f.tls, f.timeout, f.grace)
	}
	return &syslogSender{cfg: &f.cfg, tls: f.tls, facility: facilities[f.cfg.Facility], timeout: f.timeout, grace: f.grace}
}

func (f *Forwarder) run(ctx context.Context, follow bool) (sent int, err error) {
	release, err := lock(f.dir, f.cfg.Name)
	if err != nil {
		return 0, err
	}
	defer release()
	rd := newFollower(f.dir, f.cur, f.log)
	rd.durable = f.durable
	defer rd.close()
	snd := f.newSender()
	defer snd.close()
	stopped := func() error {
		if follow {
			return nil
		}
		return ctx.Err()
	}
	var b batch
	failures := 0
	backoff := f.minBackoff
	for {
		if ctx.Err() != nil {
			return sent, stopped() // records read but not sent stay after the cursor
		}
		if b.len() == 0 {
			if err := rd.read(f.cfg.BatchSize, &b); err != nil {
				if !follow {
					return sent, fmt.Errorf("auditexport: %w", err)
				}
				f.log.Warn("audit export: reading the log", "err", err, "retry_in", backoff)
				if !sleep(ctx, backoff) {
					return sent, nil
				}
				backoff = min(2*backoff, f.maxBackoff)
				continue
			}
			if b.len() == 0 {
				if !follow {
					return sent, nil
				}
				if !sleep(ctx, f.poll) {
					return sent, nil
				}
				continue
			}
		}
		if err := snd.send(ctx, &b); err != nil {
			failures++
			f.log.Warn("audit export: sending failed; retrying the same records", "err", err,
				"from_seq", b.seqs[0], "failures", failures, "retry_in", backoff)
			if !follow && failures >= f.attempts {
				return sent, fmt.Errorf("auditexport: exporter %q: giving up after %d failures at seq %d: %w", f.cfg.Name, failures, b.seqs[0], err)
			}
			if !sleep(ctx, backoff) {
				return sent, stopped()
			}
			backoff = min(2*backoff, f.maxBackoff)
			continue
		}
		if failures > 0 {
			f.log.Info("audit export: delivering again", "after_failures", failures, "from_seq", b.seqs[0])
			failures = 0
		}
		backoff = f.minBackoff
		if err := f.commit(ctx, &b, follow); err != nil {
			return sent, err
		}
		sent += b.len()
		full := b.len() == f.cfg.BatchSize
		b.reset()
		if !follow && !full {
			return sent, nil // caught up once: a one-shot export does not chase a busy log
		}
	}
}

// commit persists the cursor after a delivered batch. It retries while the
// disk refuses (sending more would only widen what a restart repeats).
func (f *Forwarder) commit(ctx context.Context, b *batch, follow bool) error {
	last := b.len() - 1
	c := cursor{seq: b.seqs[last], hash: sha256.Sum256(b.line(last)), hasHash: true}
	backoff := f.minBackoff
	for {
		err := saveCursor(f.path, c)
		if err == nil {
			break
		}
		if !follow {
			return err
		}
		f.log.Error("audit export: cannot persist the cursor; records up to it would be sent again after a restart",
			"err", err, "seq", c.seq)
		if !sleep(ctx, backoff) {
			if err := saveCursor(f.path, c); err != nil {
				return err
			}
			break
		}
		backoff = min(2*backoff, f.maxBackoff)
	}
	f.cur = c
	f.seq.Store(c.seq)
	return nil
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// WriteJSON writes every record with seq >= from as its stored line (JSON
// Lines, bytes unchanged) and returns how many: `brana audit export --stdout`.
// It moves no cursor.
func WriteJSON(w io.Writer, auditDir string, from uint64) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	err := audit.Scan(auditDir, from, func(l audit.Line) error {
		n++
		bw.Write(l.Bytes)
		return bw.WriteByte('\n')
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}
