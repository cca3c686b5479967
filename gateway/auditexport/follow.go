package auditexport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/brana-ot/brana/gateway/audit"
)

// batch holds records read and not yet delivered: their lines, each followed
// by a newline, back to back (which is also the HTTP body).
type batch struct {
	seqs []uint64
	ends []int
	data []byte
}

func (b *batch) add(seq uint64, line []byte) {
	b.seqs = append(b.seqs, seq)
	b.data = append(append(b.data, line...), '\n')
	b.ends = append(b.ends, len(b.data))
}

func (b *batch) len() int { return len(b.seqs) }

// line i without its newline.
func (b *batch) line(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start : b.ends[i]-1]
}

func (b *batch) reset() {
	b.seqs, b.ends, b.data = b.seqs[:0], b.ends[:0], b.data[:0]
}

// sentRing remembers the hashes of the last records read, to find where a
// rewritten tail starts to differ from what was sent.
type sentRing [4096]sentEntry

type sentEntry struct {
	seq  uint64
	hash [32]byte
}

func (r *sentRing) put(seq uint64, h [32]byte) { r[seq%uint64(len(r))] = sentEntry{seq, h} }

func (r *sentRing) get(seq uint64) ([32]byte, bool) {
	e := r[seq%uint64(len(r))]
	return e.hash, e.seq == seq && seq != 0
}

// follower reads the log in order from a seq on, and keeps reading as it
// grows. It reads each segment once: it keeps the active segment open and
// reads what was appended since, moves on when a later segment appears
// (draining the old one first), and reads rotated segments through gzip.
//
// The log can be rewritten at its tail: after a failed write the writer cuts
// the batch back out and numbers again from there, and a power cut can lose
// an unsynced tail. The follower notices (the file shrank, seqs went back, or
// the hash chain does not continue from what it sent), rereads the segment
// and resends from the first record that differs from what it sent.
type follower struct {
	dir string
	log *slog.Logger

	next     uint64 // seq to deliver next
	last     uint64 // last record read in order, and the hash of its line
	lastHash [32]byte
	haveLast bool
	sent     *sentRing
	jumped   uint64 // seq of the last jump reported, to report each once
	durable  func() uint64

	seg      audit.Segment
	src      io.ReadCloser
	file     *os.File // src when the segment is not compressed, for size checks
	pos      int64    // bytes read from src
	buf      []byte
	r, w     int
	sealed   bool // a later segment exists, so this one is complete
	skipping bool // reading up to next after opening a segment: no chain check
}

func newFollower(dir string, c cursor, log *slog.Logger) *follower {
	f := &follower{dir: dir, log: log, next: c.seq + 1, sent: new(sentRing), buf: make([]byte, 64<<10)}
	if c.hasHash {
		f.sent.put(c.seq, c.hash)
	}
	return f
}

func (f *follower) close() {
	if f.src != nil {
		f.src.Close()
		f.src, f.file = nil, nil
	}
}

// read appends up to max records to b and returns when it has them or has
// read everything there is for now.
func (f *follower) read(max int, b *batch) error {
	limit := ^uint64(0)
	if f.durable != nil {
		limit = f.durable() // once per call: it may take the log's lock
	}
	for b.len() < max {
		if f.src == nil {
			if ok, err := f.open(); err != nil || !ok {
				return err
			}
		}
		line, ok, err := f.readLine()
		if err != nil {
			f.close()
			return err
		}
		if ok {
			if limit != ^uint64(0) {
				if seq, _, valid := parseHead(line); valid && seq >= f.next && seq > limit {
					f.r -= len(line) + 1 // not on disk for sure yet: read it again later
					return nil
				}
			}
			f.accept(line, b)
			continue
		}
		// End of what the segment holds now.
		if f.file != nil {
			if st, err := f.file.Stat(); err == nil && st.Size() < f.pos {
				f.rewind(fmt.Sprintf("%s shrank from %d to %d bytes", filepath.Base(f.seg.Path), f.pos, st.Size()))
				continue
			}
		}
		later, err := f.later()
		if err != nil {
			return err
		}
		switch {
		case later != nil && !f.sealed && !f.seg.Compressed:
			// Rotation finishes the old segment before creating the new
			// one: read the old one to its end once more, then move on.
			f.sealed = true
		case later != nil:
			f.close()
			if err := f.openSeg(*later); errors.Is(err, fs.ErrNotExist) {
				continue // compressed meanwhile: open finds it again by seq
			} else if err != nil {
				return err
			}
		default:
			f.caughtUp()
			return nil
		}
	}
	return nil
}

// later returns the first segment after the current one, if any.
func (f *follower) later() (*audit.Segment, error) {
	segs, err := audit.Segments(f.dir)
	if err != nil {
		return nil, err
	}
	for i := range segs {
		if segs[i].First > f.seg.First {
			return &segs[i], nil
		}
	}
	return nil, nil
}

// open positions the follower on the segment that holds next. ok is false
// when the log has no segments yet.
func (f *follower) open() (ok bool, err error) {
	for attempt := 0; ; attempt++ {
		segs, err := audit.Segments(f.dir)
		if err != nil || len(segs) == 0 {
			return false, err
		}
		s := segs[0]
		for _, x := range segs {
			if x.First <= f.next {
				s = x
			}
		}
		err = f.openSeg(s)
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue // compressed and removed between listing and opening
		}
		return err == nil, err
	}
}

func (f *follower) openSeg(s audit.Segment) error {
	rc, err := s.Open()
	if err != nil {
		return err
	}
	f.seg, f.src, f.file, f.pos = s, rc, nil, 0
	if file, ok := rc.(*os.File); ok {
		f.file = file
	}
	f.r, f.w, f.sealed, f.skipping, f.haveLast = 0, 0, false, true, false
	return nil
}

// readLine returns the next complete line (without its newline), or ok false
// at the end of what is there now. A partial last line stays buffered.
func (f *follower) readLine() (line []byte, ok bool, err error) {
	for {
		if i := bytes.IndexByte(f.buf[f.r:f.w], '\n'); i >= 0 {
			line = f.buf[f.r : f.r+i]
			f.r += i + 1
			return line, true, nil
		}
		if f.r > 0 {
			f.w = copy(f.buf, f.buf[f.r:f.w])
			f.r = 0
		}
		if f.w == len(f.buf) {
			f.buf = append(f.buf, make([]byte, len(f.buf))...)
		}
		n, err := f.src.Read(f.buf[f.w:])
		f.w += n
		f.pos += int64(n)
		if n == 0 {
			if err == nil || err == io.EOF {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("auditexport: reading %s: %w", filepath.Base(f.seg.Path), err)
		}
	}
}

// accept decides what one line means for delivery.
func (f *follower) accept(line []byte, b *batch) {
	seq, prev, ok := parseHead(line)
	if !ok {
		if !f.skipping {
			// Appended lines are whole records; this is a read that started
			// inside one, because the file was cut back and grew again.
			f.rewind("a line that is not a record follows seq " + strconv.FormatUint(f.next-1, 10))
		}
		return // not a record (verify reports it); Scan skips it too
	}
	if seq < f.next {
		if !f.skipping {
			f.rewind(fmt.Sprintf("seq %d follows seq %d", seq, f.next-1))
			return
		}
		sent, known := f.sent.get(seq)
		if !known {
			return
		}
		if h := sha256.Sum256(line); h != sent {
			f.log.Warn("audit export: the log was rewritten after these records were sent; sending its records again from here",
				"seq", seq, "sent_until", f.next-1)
			f.next = seq
		} else {
			f.last, f.lastHash, f.haveLast = seq, h, true
			return
		}
	}
	h := sha256.Sum256(line)
	if !f.skipping && f.haveLast && f.last+1 == seq && prev != f.lastHash {
		f.rewind(fmt.Sprintf("the hash chain does not continue at seq %d", seq))
		return
	}
	if seq > f.next && !f.skipping {
		f.rewind(fmt.Sprintf("seq %d follows seq %d", seq, f.next-1))
		return
	}
	if seq > f.next && f.jumped != seq {
		f.jumped = seq
		f.log.Warn("audit export: records are missing from the log (removed by retention before export, or the log was edited)",
			"missing_from", f.next, "missing_to", seq-1)
	}
	b.add(seq, line)
	f.sent.put(seq, h)
	f.next = seq + 1
	f.last, f.lastHash, f.haveLast, f.skipping = seq, h, true, false
}

// caughtUp handles the end of the log while still skipping: the log ends
// before the cursor, so records that were sent were lost from it (a power
// cut before fdatasync) and their seqs will be used again.
func (f *follower) caughtUp() {
	if !f.skipping {
		return
	}
	end := uint64(0)
	if f.haveLast {
		end = f.last
	} else if f.seg.First > 0 {
		end = f.seg.First - 1
	}
	if end+1 < f.next {
		f.log.Warn("audit export: the log ends before the export cursor; records sent earlier were lost from the log and their numbers will be used again",
			"log_ends_at", end, "cursor", f.next-1)
		f.next = end + 1
	}
}

// rewind rereads the current segment from its start after the log changed
// under the follower.
func (f *follower) rewind(why string) {
	f.log.Warn("audit export: the log changed under the exporter; rereading the segment", "why", why, "segment", filepath.Base(f.seg.Path))
	f.close()
}

// parseHead reads seq and prev from a stored line. The encoding fixes their
// place ({"seq":N,"prev":"HEX",...); other lines are decoded as JSON. Lines
// that are not complete JSON objects are not records.
func parseHead(line []byte) (seq uint64, prev [32]byte, ok bool) {
	const p1, p2 = `{"seq":`, `,"prev":"`
	if bytes.HasPrefix(line, []byte(p1)) {
		rest := line[len(p1):]
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		n, err := strconv.ParseUint(string(rest[:i]), 10, 64)
		rest = rest[i:]
		if err == nil && n > 0 && bytes.HasPrefix(rest, []byte(p2)) && len(rest) > len(p2)+64 && rest[len(p2)+64] == '"' {
			if _, err := hex.Decode(prev[:], rest[len(p2):len(p2)+64]); err == nil && json.Valid(line) {
				return n, prev, true
			}
		}
	}
	var r struct {
		Seq  uint64 `json:"seq"`
		Prev string `json:"prev"`
	}
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &r) != nil || r.Seq == 0 {
		return 0, prev, false
	}
	hex.Decode(prev[:], []byte(r.Prev))
	return r.Seq, prev, true
}
