package audit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Segment files are named by the sequence number of their first record, so
// that a directory listing sorts them in log order:
//
//	seg-00000000000000000001.jsonl      the active (or a not yet compressed) segment
//	seg-00000000000000120001.jsonl.gz   a rotated, compressed segment
const (
	segPrefix = "seg-"
	segExt    = ".jsonl"
	gzExt     = ".gz"
)

// HeadFile holds the latest signed checkpoint, outside the segments, so that
// cutting the log back past it is detected.
const HeadFile = "checkpoint.json"

// Segment is one file of the log.
type Segment struct {
	Path       string
	First      uint64 // sequence number of its first record
	Compressed bool
}

func segmentName(first uint64) string {
	return fmt.Sprintf("%s%020d%s", segPrefix, first, segExt)
}

// Segments lists the log's segment files in order.
func Segments(dir string) ([]Segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: listing %s: %w", dir, err)
	}
	var segs []Segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || e.IsDir() {
			continue
		}
		base, gz := strings.CutSuffix(name, gzExt)
		num, ok := strings.CutSuffix(strings.TrimPrefix(base, segPrefix), segExt)
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, Segment{Path: filepath.Join(dir, name), First: first, Compressed: gz})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].First < segs[j].First })
	for i := 1; i < len(segs); i++ {
		if segs[i].First == segs[i-1].First {
			// A crash between writing the .gz and removing the original leaves both.
			if segs[i-1].Compressed {
				segs = append(segs[:i-1], segs[i:]...)
			} else {
				segs = append(segs[:i], segs[i+1:]...)
			}
			i--
		}
	}
	return segs, nil
}

// Open returns a reader of the segment's uncompressed bytes.
func (s Segment) Open() (io.ReadCloser, error) {
	f, err := os.Open(s.Path)
	if !s.Compressed && errors.Is(err, fs.ErrNotExist) {
		// Compressed since it was listed: the .gz is complete and synced
		// before the original is removed.
		if gz, gzErr := os.Open(s.Path + gzExt); gzErr == nil {
			f, err, s.Compressed = gz, nil, true
		}
	}
	if err != nil {
		return nil, err
	}
	if !s.Compressed {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", s.Path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// tail is what recovery learns from the end of the active segment.
type tail struct {
	seq   uint64
	hash  [32]byte
	good  int64 // length of the file up to and including the last good record
	torn  []byte
	found bool // a good record was found
}

// readTail finds the last complete, parseable record of a segment. Bytes after
// it (a line cut by a crash, or blocks of zeros a file system can leave after
// a power cut) are returned as torn.
func readTail(path string) (tail, error) {
	var t tail
	data, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	end := len(data)
	for end > 0 {
		// The candidate line ends at end-1 with '\n'.
		if data[end-1] != '\n' {
			i := bytes.LastIndexByte(data[:end], '\n')
			end = i + 1
			continue
		}
		start := bytes.LastIndexByte(data[:end-1], '\n') + 1
		line := data[start : end-1]
		if seq, ok := lineSeq(line); ok {
			t.seq, t.hash, t.good, t.found = seq, hashLine(line), int64(end), true
			break
		}
		end = start
	}
	t.good = int64(end)
	if end < len(data) {
		t.torn = data[end:]
	}
	return t, nil
}

// lineSeq checks that a line is a JSON object and returns its seq.
func lineSeq(line []byte) (uint64, bool) {
	var r struct {
		Seq uint64 `json:"seq"`
	}
	if len(line) == 0 || line[0] != '{' {
		return 0, false
	}
	if err := jsonUnmarshal(line, &r); err != nil || r.Seq == 0 {
		return 0, false
	}
	return r.Seq, true
}

var errNoSegments = errors.New("audit: no segments")
