package audit

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A reader that listed a segment just before it was compressed still reads
// it, from the .gz.
func TestSegmentOpenAfterCompression(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg-00000000000000000001.jsonl")
	if err := os.WriteFile(path, []byte("{\"seq\":1}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	segs, err := Segments(dir)
	if err != nil || len(segs) != 1 || segs[0].Compressed {
		t.Fatalf("Segments = %v, %v", segs, err)
	}
	if err := compressFile(path); err != nil {
		t.Fatal(err)
	}
	rc, err := segs[0].Open()
	if err != nil {
		t.Fatalf("opening a segment compressed since it was listed: %v", err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != "{\"seq\":1}\n" {
		t.Fatalf("read %q", b)
	}
	// Queued twice: the second compression finds the work done.
	if err := compressFile(path); err != nil {
		t.Fatalf("compressing again: %v", err)
	}
}
