package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"sort"
)

// DefaultMaxImage is the largest image a Hasher takes unless told
// otherwise.
const DefaultMaxImage = 64 << 20

// maxPieces bounds the disjoint written ranges of one image, so that a
// client writing single bytes at scattered offsets cannot make every write
// cost a long copy.
const maxPieces = 4096

// Hasher reassembles an image from pieces written at byte offsets, in any
// order, and computes its SHA-256 as the contiguous prefix grows, so that
// the hash is ready when the transfer is committed.
//
// It keeps the bytes it has seen, up to the limit: a piece that is written
// again (a retransmission) must match what was written before, byte for
// byte, or the write is refused with ErrOverlap. Otherwise a client could
// send an approved image for hashing and overwrite part of it afterwards.
//
// A Hasher is not safe for concurrent use.
type Hasher struct {
	max    int64
	buf    []byte // the image so far; bytes outside spans are zero
	spans  []span // written ranges: sorted, disjoint, never touching
	h      hash.Hash
	hashed int64 // bytes of buf fed to h
}

type span struct{ start, end int64 }

// NewHasher returns a Hasher for images of at most max bytes
// (DefaultMaxImage if max ≤ 0).
func NewHasher(max int64) *Hasher {
	if max <= 0 {
		max = DefaultMaxImage
	}
	return &Hasher{max: max, h: sha256.New()}
}

// Check reports whether WriteAt(p, off) would succeed, without writing.
func (h *Hasher) Check(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if off < 0 {
		return fmt.Errorf("%w: offset %d", ErrRequest, off)
	}
	if off > h.max-int64(len(p)) {
		return fmt.Errorf("%w: %d bytes at offset %d end past the limit of %d bytes", ErrTooLarge, len(p), off, h.max)
	}
	end := off + int64(len(p))
	i, j := h.around(off, end)
	for _, s := range h.spans[i:j] {
		lo, hi := max(s.start, off), min(s.end, end)
		if lo >= hi {
			continue // touches, does not overlap
		}
		was, now := h.buf[lo:hi], p[lo-off:hi-off]
		if !bytes.Equal(was, now) {
			k := 0
			for was[k] == now[k] {
				k++
			}
			return fmt.Errorf("%w: byte %d was %#02x, now %#02x", ErrOverlap, lo+int64(k), was[k], now[k])
		}
	}
	if len(h.spans)-(j-i)+1 > maxPieces {
		return fmt.Errorf("%w: more than %d separate ranges", ErrFragmented, maxPieces)
	}
	return nil
}

// WriteAt adds p at byte offset off. On error nothing is written.
func (h *Hasher) WriteAt(p []byte, off int64) error {
	if err := h.Check(p, off); err != nil || len(p) == 0 {
		return err
	}
	h.write(p, off)
	return nil
}

// write adds p at off; Check has passed.
func (h *Hasher) write(p []byte, off int64) {
	end := off + int64(len(p))
	if end > int64(len(h.buf)) {
		if end > int64(cap(h.buf)) {
			// Grow by doubling, within the limit, so that an image written
			// in order costs amortised constant time per byte.
			c := min(max(end, 2*int64(cap(h.buf)), 4096), h.max)
			nb := make([]byte, end, c)
			copy(nb, h.buf)
			h.buf = nb
		} else {
			h.buf = h.buf[:end]
		}
	}
	copy(h.buf[off:end], p)

	i, j := h.around(off, end)
	merged := span{off, end}
	if i < j {
		merged.start = min(merged.start, h.spans[i].start)
		merged.end = max(merged.end, h.spans[j-1].end)
	}
	h.spans = slices.Replace(h.spans, i, j, merged)

	if first := h.spans[0]; first.start == 0 && first.end > h.hashed {
		h.h.Write(h.buf[h.hashed:first.end])
		h.hashed = first.end
	}
}

// around returns the spans [i, j) that overlap or touch [off, end).
func (h *Hasher) around(off, end int64) (i, j int) {
	i = sort.Search(len(h.spans), func(k int) bool { return h.spans[k].end >= off })
	j = i
	for j < len(h.spans) && h.spans[j].start <= end {
		j++
	}
	return i, j
}

// Sum returns the SHA-256 (lower-case hex) of the image, its size (the end
// of the furthest byte written) and whether every byte up to the size has
// been written. The hash is "" while the image is not complete.
func (h *Hasher) Sum() (hexSum string, size int64, complete bool) {
	size = int64(len(h.buf))
	if size == 0 || len(h.spans) != 1 || h.spans[0].start != 0 {
		return "", size, false
	}
	return hex.EncodeToString(h.h.Sum(nil)), size, true
}

// Commit is Sum for the commit step: an image with nothing written or with
// a gap is an error (ErrEmpty, ErrGap), which names the first gap. It
// changes nothing and may be called again.
func (h *Hasher) Commit() (hexSum string, size int64, err error) {
	sum, size, ok := h.Sum()
	switch {
	case ok:
		return sum, size, nil
	case size == 0:
		return "", 0, ErrEmpty
	case h.spans[0].start > 0:
		return "", size, fmt.Errorf("%w: bytes 0-%d of %d never written", ErrGap, h.spans[0].start-1, size)
	}
	return "", size, fmt.Errorf("%w: bytes %d-%d of %d never written", ErrGap, h.spans[0].end, h.spans[1].start-1, size)
}
