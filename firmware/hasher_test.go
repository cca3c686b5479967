package firmware

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestHasher(t *testing.T) {
	img := testImage(10007)
	want := sum(img)
	chunks := func(size int) [][2]int {
		var c [][2]int
		for off := 0; off < len(img); off += size {
			c = append(c, [2]int{off, min(off+size, len(img))})
		}
		return c
	}
	shuffled := func(c [][2]int, seed uint64) [][2]int {
		r := rand.New(rand.NewPCG(seed, 1))
		r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		return c
	}
	reversed := func(c [][2]int) [][2]int {
		for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
			c[i], c[j] = c[j], c[i]
		}
		return c
	}
	tests := []struct {
		name   string
		chunks [][2]int
	}{
		{"ok/one-write", chunks(len(img))},
		{"ok/in-order", chunks(240)},
		{"ok/words-in-order", chunks(2)},
		{"ok/reversed", reversed(chunks(240))},
		{"ok/shuffled", shuffled(chunks(100), 1)},
		{"ok/shuffled-words", shuffled(chunks(2), 2)},
		{"ok/retransmitted", append(chunks(240), chunks(240)[3], [2]int{1000, 1500}, [2]int{0, len(img)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHasher(0)
			for i, c := range tt.chunks {
				if err := h.WriteAt(img[c[0]:c[1]], int64(c[0])); err != nil {
					t.Fatalf("chunk %d %v: %v", i, c, err)
				}
			}
			got, size, ok := h.Sum()
			if got != want || size != int64(len(img)) || !ok {
				t.Fatalf("Sum = %s, %d, %v; want %s, %d, true", got, size, ok, want, len(img))
			}
			if got, _, err := h.Commit(); err != nil || got != want {
				t.Fatalf("Commit = %s, %v", got, err)
			}
		})
	}
}

func TestHasherRefuses(t *testing.T) {
	img := testImage(1000)
	t.Run("fail/overlap-conflict", func(t *testing.T) {
		h := NewHasher(0)
		h.WriteAt(img[:600], 0)
		changed := append([]byte(nil), img[500:700]...)
		changed[50] ^= 1
		err := h.WriteAt(changed, 500)
		if !errors.Is(err, ErrOverlap) || err.Error() != "firmware: overlapping write with different content: byte 550 was 0x0c, now 0x0d" {
			t.Fatalf("WriteAt: %v", err)
		}
		// Refused writes change nothing: the image completes as it was.
		if err := h.WriteAt(img[600:], 600); err != nil {
			t.Fatal(err)
		}
		if s, _, err := h.Commit(); err != nil || s != sum(img) {
			t.Fatalf("Commit = %s, %v", s, err)
		}
	})
	t.Run("fail/overlap-conflict-pending", func(t *testing.T) {
		h := NewHasher(0)
		h.WriteAt(img[800:900], 800)
		if err := h.WriteAt(make([]byte, 300), 700); !errors.Is(err, ErrOverlap) {
			t.Fatalf("WriteAt over a piece not yet hashed: %v", err)
		}
	})
	t.Run("fail/gap", func(t *testing.T) {
		h := NewHasher(0)
		h.WriteAt(img[:100], 0)
		h.WriteAt(img[200:], 200)
		if s, size, ok := h.Sum(); s != "" || size != 1000 || ok {
			t.Fatalf("Sum with a gap = %q, %d, %v", s, size, ok)
		}
		_, _, err := h.Commit()
		if !errors.Is(err, ErrGap) || err.Error() != "firmware: image has a gap: bytes 100-199 of 1000 never written" {
			t.Fatalf("Commit: %v", err)
		}
	})
	t.Run("fail/gap-at-start", func(t *testing.T) {
		h := NewHasher(0)
		h.WriteAt(img[2:], 2)
		if _, _, err := h.Commit(); !errors.Is(err, ErrGap) || err.Error() != "firmware: image has a gap: bytes 0-1 of 1000 never written" {
			t.Fatalf("Commit: %v", err)
		}
	})
	t.Run("fail/empty", func(t *testing.T) {
		if _, _, err := NewHasher(0).Commit(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("Commit: %v", err)
		}
	})
	t.Run("fail/cap", func(t *testing.T) {
		h := NewHasher(1000)
		if err := h.WriteAt(img, 0); err != nil {
			t.Fatalf("exactly the limit: %v", err)
		}
		if err := h.WriteAt([]byte{1}, 1000); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("one byte past the limit: %v", err)
		}
		if err := NewHasher(0).WriteAt([]byte{1}, 1<<62); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("far offset: %v", err)
		}
		if err := NewHasher(0).WriteAt([]byte{1}, -1); !errors.Is(err, ErrRequest) {
			t.Fatalf("negative offset: %v", err)
		}
	})
	t.Run("fail/fragmented", func(t *testing.T) {
		h := NewHasher(0)
		for i := range maxPieces {
			if err := h.WriteAt([]byte{1}, int64(2*i+1)); err != nil {
				t.Fatalf("piece %d: %v", i, err)
			}
		}
		if err := h.WriteAt([]byte{1}, 2*maxPieces+1); !errors.Is(err, ErrFragmented) {
			t.Fatalf("one piece too many: %v", err)
		}
		// Filling a gap joins pieces and is always possible.
		if err := h.WriteAt([]byte{0}, 2); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHasherOneByteChanged(t *testing.T) {
	img := testImage(5000)
	h1, h2 := NewHasher(0), NewHasher(0)
	h1.WriteAt(img, 0)
	bad := append([]byte(nil), img...)
	bad[4321] ^= 0x80
	h2.WriteAt(bad, 0)
	s1, n1, _ := h1.Commit()
	s2, n2, _ := h2.Commit()
	if s1 == s2 || n1 != n2 || s1 != sum(img) || s2 != sum(bad) {
		t.Fatalf("sums %s %s", s1, s2)
	}
}

// Writing an image in order allocates only to grow the buffer.
func TestHasherAllocs(t *testing.T) {
	img := testImage(240)
	h := NewHasher(0)
	h.WriteAt(make([]byte, 1<<20), 0)
	off := int64(1 << 20)
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.WriteAt(img, off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(img))
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per in-order write", allocs)
	}
}
