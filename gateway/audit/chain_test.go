package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// writeLog appends n command records with a checkpoint every 10 and closes
// the log (which writes a final checkpoint and the head file).
func writeLog(t *testing.T, dir string, key ed25519.PrivateKey, n int, opts Options) {
	t.Helper()
	opts.Key = key
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = 10
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Hour // checkpoints by count are forced below
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := commandRecord()
		r.Time = time.Time{}
		r.Values = append(r.Values[:0], uint16(i))
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if (i+1)%10 == 0 {
			l.maybeCheckpoint(false)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func segmentLines(t *testing.T, dir string) (string, [][]byte) {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	path := segs[len(segs)-1].Path
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, bytes.SplitAfter(data, []byte("\n"))
}

func rewrite(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyUntouched(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	writeLog(t, dir, key, 35, Options{})
	rep, err := Verify(dir, pub(key))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != 35+4 || rep.Checkpoints != 4 || rep.LastCheckpoint != rep.Last {
		t.Fatalf("report = %+v; want 35 records + 4 checkpoints, the last record a checkpoint", rep)
	}
	// Reopening continues the chain across restarts.
	writeLog(t, dir, key, 5, Options{})
	if rep, err = Verify(dir, pub(key)); err != nil || rep.Records != 45 {
		t.Fatalf("after restart: %+v %v", rep, err)
	}
}

// Each way of tampering is found, and the report names the place.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir, path string, lines [][]byte)
		want   string // substring of the problem
	}{
		{"fail/edited-byte", func(t *testing.T, dir, path string, lines [][]byte) {
			lines[4] = bytes.Replace(lines[4], []byte(`"values":[4]`), []byte(`"values":[9]`), 1)
			rewrite(t, path, lines)
		}, ":6: seq 6: hash chain broken"},
		{"fail/deleted-line", func(t *testing.T, dir, path string, lines [][]byte) {
			rewrite(t, path, append(lines[:7:7], lines[8:]...))
		}, ":8: seq 9: follows seq 7"},
		{"fail/swapped-lines", func(t *testing.T, dir, path string, lines [][]byte) {
			lines[2], lines[3] = lines[3], lines[2]
			rewrite(t, path, lines)
		}, ":3: seq 4: follows seq 2"},
		{"fail/forged-insert-recomputed", func(t *testing.T, dir, path string, lines [][]byte) {
			// A forger inserts a record after seq 3 and recomputes every later
			// seq and hash: only the checkpoint signatures can catch it.
			var out [][]byte
			var prev [32]byte
			seq := uint64(0)
			for i, ln := range lines {
				if len(ln) == 0 {
					continue
				}
				recs := []map[string]any{}
				var m map[string]any
				json.Unmarshal(ln, &m)
				recs = append(recs, m)
				if i == 3 {
					forged := map[string]any{"type": "command", "party": "acme", "decision": "allow", "fc": 6}
					recs = append(recs, forged)
				}
				for _, r := range recs {
					seq++
					r["seq"] = seq
					r["prev"] = fmt.Sprintf("%x", prev)
					if r["type"] == "checkpoint" {
						r["ckpt_seq"] = seq - 1
						r["ckpt_hash"] = r["prev"]
					}
					b, _ := json.Marshal(r)
					prev = hashLine(b)
					out = append(out, append(b, '\n'))
				}
			}
			rewrite(t, path, out)
			os.Remove(filepath.Join(dir, HeadFile))
		}, "checkpoint signature does not verify"},
		{"fail/truncated-past-checkpoint", func(t *testing.T, dir, path string, lines [][]byte) {
			rewrite(t, path, lines[:20])
		}, "records were cut from the end"},
		{"fail/torn-tail", func(t *testing.T, dir, path string, lines [][]byte) {
			lines[len(lines)-2] = lines[len(lines)-2][:20]
			rewrite(t, path, lines[:len(lines)-1])
		}, "torn last line"},
		{"fail/garbage-line", func(t *testing.T, dir, path string, lines [][]byte) {
			lines[10] = []byte("{not json\n")
			rewrite(t, path, lines)
		}, ":11: seq 11: not a valid record"},
		{"fail/other-key", func(t *testing.T, dir, path string, lines [][]byte) {}, "not by the given key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, key := t.TempDir(), testKey(t)
			writeLog(t, dir, key, 35, Options{})
			path, lines := segmentLines(t, dir)
			tt.tamper(t, dir, path, lines)
			check := pub(key)
			if tt.name == "fail/other-key" {
				check = pub(testKey(t))
			}
			_, err := Verify(dir, check)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Verify = %v; want a *Problem", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify = %q; want it to say %q", err, tt.want)
			}
		})
	}
}

// A crash leaves a torn line; the next start cuts it off, keeps the bytes
// for forensics, writes a gap record, and the log verifies again.
func TestRecoveryRepairsTornTail(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	writeLog(t, dir, key, 12, Options{})
	path, _ := segmentLines(t, dir)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte(`{"seq":99,"prev":"abc","ti`))
	f.Write(make([]byte, 512)) // a power cut can leave zeros
	f.Close()
	if _, err := Verify(dir, pub(key)); err == nil {
		t.Fatal("torn log verified before repair")
	}
	writeLog(t, dir, key, 3, Options{})
	rep, err := Verify(dir, pub(key))
	if err != nil {
		t.Fatalf("after repair: %v", err)
	}
	if rep.Gaps != 1 {
		t.Fatalf("gaps = %d; want the repair recorded", rep.Gaps)
	}
	torn, _ := filepath.Glob(filepath.Join(dir, "torn-*"))
	if len(torn) != 1 {
		t.Fatalf("torn bytes not kept: %v", torn)
	}
}

// After a failed write the chain rewinds, commands are refused, and once
// writing works again a gap record says what was lost.
func TestWriteFailureAndRecovery(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	l, err := Open(dir, Options{Key: key, SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(context.Background(), commandRecord()); err != nil {
			t.Fatal(err)
		}
	}
	l.Enqueue(commandRecord()) // in the buffer when the disk fills up
	good := l.f
	ro, _ := os.Open(l.segPath)
	l.mu.Lock()
	l.f = ro
	l.mu.Unlock()
	if _, err := l.Append(context.Background(), commandRecord()); !errors.Is(err, ErrLost) {
		t.Fatalf("Append on a failing disk = %v; want ErrLost", err)
	}
	if _, err := l.Append(context.Background(), commandRecord()); err == nil {
		t.Fatal("Append succeeded while the log is failed")
	}
	l.repair() // still failing
	if l.Err() == nil {
		t.Fatal("repair on a failing disk cleared the error")
	}
	l.mu.Lock()
	l.f = good
	l.mu.Unlock()
	ro.Close()
	l.repair()
	if err := l.Err(); err != nil {
		t.Fatalf("repair with space back: %v", err)
	}
	if _, err := l.Append(context.Background(), commandRecord()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep, err := Verify(dir, pub(key))
	if err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
	if rep.Gaps != 1 || rep.Records != 3+1+1+1 {
		t.Fatalf("report %+v; want 3 records, a gap, 1 record, a checkpoint", rep)
	}
	lines := readLines(t, l.Path())
	if d := lines[3]["detail"].(string); !strings.Contains(d, "from seq 4") {
		t.Fatalf("gap record = %q; want it to name seq 4", d)
	}
}

func TestRotationCompressionAndScan(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	writeLog(t, dir, key, 200, Options{SegmentMaxBytes: 8 << 10})
	// Compression runs in the background; restart to finish what was queued.
	l, err := Open(dir, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	segs, _ := Segments(dir)
	if len(segs) < 5 {
		t.Fatalf("only %d segments; want rotation at 8 KiB", len(segs))
	}
	compressed := 0
	for _, s := range segs {
		if s.Compressed {
			compressed++
		}
	}
	if compressed == 0 {
		t.Fatal("no rotated segment was compressed")
	}
	rep, err := Verify(dir, pub(key))
	if err != nil {
		t.Fatalf("Verify across %d segments: %v", len(segs), err)
	}
	var seqs []uint64
	if err := Scan(dir, 150, func(ln Line) error { seqs = append(seqs, ln.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if seqs[0] != 150 || seqs[len(seqs)-1] != rep.Last || len(seqs) != int(rep.Last-149) {
		t.Fatalf("Scan from 150 gave %d..%d (%d); want 150..%d", seqs[0], seqs[len(seqs)-1], len(seqs), rep.Last)
	}
}

func TestRetentionKeepsUnexported(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	writeLog(t, dir, key, 200, Options{SegmentMaxBytes: 8 << 10})
	l, err := Open(dir, Options{Key: key, RetainFor: time.Nanosecond, Protected: func() uint64 { return 60 }})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	// Compression of leftovers is asynchronous; run retention when it is done.
	deadline := time.Now().Add(5 * time.Second)
	for {
		segs, _ := Segments(dir)
		all := true
		for _, s := range segs[:len(segs)-1] {
			all = all && s.Compressed
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.retain()
	l.Close()
	segs, _ := Segments(dir)
	if segs[0].First > 60 {
		t.Fatalf("first remaining segment starts at %d: records not yet exported (>= 60) were deleted", segs[0].First)
	}
	if segs[0].First == 1 {
		t.Fatal("nothing was deleted")
	}
	rep, err := Verify(dir, pub(key))
	if err != nil {
		t.Fatalf("Verify after retention: %v", err)
	}
	if len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, ";"), "removed") {
		t.Fatalf("notes %v do not mention removed segments", rep.Notes)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "audit.pem")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v; want 0600", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reload: %v %v", created, err)
	}
	p, err := ParsePublicKeyPEM(PublicKeyPEM(pub(k1)))
	if err != nil || !p.Equal(pub(k1)) {
		t.Fatalf("public key round trip: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
}
