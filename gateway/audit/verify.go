package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Problem is the first place where a log fails verification.
type Problem struct {
	File string // segment (or HeadFile) name
	Line int    // 1-based line in the uncompressed segment, 0 if not about a line
	Seq  uint64
	Msg  string
}

func (p *Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: seq %d: %s", p.File, p.Line, p.Seq, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// ErrUnreadable wraps I/O errors that stop verification (as opposed to a Problem).
var ErrUnreadable = errors.New("audit: cannot read log")

// Report summarises a verification.
type Report struct {
	Segments       int
	Records        int
	First, Last    uint64
	Checkpoints    int
	LastCheckpoint uint64 // seq of the last checkpoint record
	Signed         bool   // checkpoint signatures were checked against a public key
	Gaps           int    // gap records: repairs brana made and said so
	Notes          []string
}

// chainFields are the parts of a record verification needs.
type chainFields struct {
	Seq      uint64 `json:"seq"`
	Prev     string `json:"prev"`
	Type     Type   `json:"type"`
	CkptSeq  uint64 `json:"ckpt_seq"`
	CkptHash string `json:"ckpt_hash"`
	Key      string `json:"key"`
	Sig      string `json:"sig"`
}

// Line is one stored record, as Scan hands it out.
type Line struct {
	Segment string // file name
	LineNo  int
	Seq     uint64
	Bytes   []byte // without the newline; valid only during the callback
}

// Scan calls fn for every complete record with seq >= from, in order.
func Scan(dir string, from uint64, fn func(Line) error) error {
	segs, err := Segments(dir)
	if err != nil {
		return err
	}
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].First <= from {
			continue
		}
		err := eachLine(s, func(n int, line []byte, complete bool) error {
			if !complete {
				return nil
			}
			seq, ok := lineSeq(line)
			if !ok || seq < from {
				return nil
			}
			return fn(Line{Segment: filepath.Base(s.Path), LineNo: n, Seq: seq, Bytes: line})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// eachLine reads a segment line by line; complete is false for a last line
// without its newline.
func eachLine(s Segment, fn func(n int, line []byte, complete bool) error) error {
	rc, err := s.Open()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	var long []byte
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			complete := line[len(line)-1] == '\n'
			if complete {
				line = line[:len(line)-1]
			}
			if ferr := fn(n, line, complete); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnreadable, s.Path, err)
		}
	}
}

// Verify checks the whole log in dir: sequence numbers, the hash chain across
// segments, checkpoint signatures (when pub is given) and the published head
// checkpoint. It returns the first Problem found, or an error wrapping
// ErrUnreadable when the files cannot be read.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	rep.Signed = pub != nil
	segs, err := Segments(dir)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if len(segs) == 0 {
		return rep, &Problem{File: dir, Msg: "no audit segments found"}
	}
	head, headErr := os.ReadFile(filepath.Join(dir, HeadFile))
	var headRec chainFields
	var headHash [32]byte
	if headErr == nil {
		head = bytes.TrimSuffix(head, []byte("\n"))
		if err := json.Unmarshal(head, &headRec); err != nil || headRec.Type != Checkpoint {
			return rep, &Problem{File: HeadFile, Msg: "is not a checkpoint record"}
		}
		if p := checkSig(headRec, pub); p != "" {
			return rep, &Problem{File: HeadFile, Msg: p}
		}
		headHash = hashLine(head)
	} else if !errors.Is(headErr, os.ErrNotExist) {
		return rep, fmt.Errorf("%w: %v", ErrUnreadable, headErr)
	} else {
		rep.Notes = append(rep.Notes, "no published checkpoint ("+HeadFile+"): a cut at the end cannot be detected")
	}

	var prev [32]byte
	var prevSeq uint64
	headSeen := false
	for si, s := range segs {
		rep.Segments++
		name := filepath.Base(s.Path)
		first := true
		last := si == len(segs)-1
		err := eachLine(s, func(n int, line []byte, complete bool) error {
			bad := func(seq uint64, format string, a ...any) error {
				return &Problem{File: name, Line: n, Seq: seq, Msg: fmt.Sprintf(format, a...)}
			}
			if !complete {
				if last {
					return bad(prevSeq+1, "torn last line (%d bytes without a newline): a crash the gateway has not repaired yet, or the file was cut", len(line))
				}
				return bad(prevSeq+1, "line without a newline inside a rotated segment")
			}
			var r chainFields
			if err := json.Unmarshal(line, &r); err != nil || r.Seq == 0 {
				return bad(prevSeq+1, "not a valid record: edited or corrupted")
			}
			if first && r.Seq != s.First {
				return bad(r.Seq, "segment named for seq %d starts at seq %d", s.First, r.Seq)
			}
			first = false
			if rep.Records == 0 {
				rep.First = r.Seq
				if r.Seq != 1 {
					rep.Notes = append(rep.Notes, fmt.Sprintf("the log starts at seq %d: earlier segments were removed (retention)", r.Seq))
				}
			} else {
				if r.Seq != prevSeq+1 {
					return bad(r.Seq, "follows seq %d: records were deleted, inserted or reordered", prevSeq)
				}
				if r.Prev != hex.EncodeToString(prev[:]) {
					return bad(r.Seq, "hash chain broken: prev does not match the record before (that record was edited, or this one forged)")
				}
			}
			switch r.Type {
			case Checkpoint:
				if r.CkptSeq != r.Seq-1 || r.CkptHash != r.Prev {
					return bad(r.Seq, "checkpoint does not sign the record before it")
				}
				if p := checkSig(r, pub); p != "" {
					return bad(r.Seq, "%s", p)
				}
				rep.Checkpoints++
				rep.LastCheckpoint = r.Seq
			case Gap:
				rep.Gaps++
			}
			prev, prevSeq = hashLine(line), r.Seq
			rep.Records++
			rep.Last = r.Seq
			if headErr == nil && r.Seq == headRec.Seq {
				if prev != headHash {
					return bad(r.Seq, "differs from the published checkpoint in %s", HeadFile)
				}
				headSeen = true
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	if headErr == nil && !headSeen {
		return rep, &Problem{File: HeadFile, Seq: headRec.Seq,
			Msg: fmt.Sprintf("the log ends at seq %d but the published checkpoint is seq %d: records were cut from the end", rep.Last, headRec.Seq)}
	}
	if rep.Checkpoints == 0 {
		rep.Notes = append(rep.Notes, "no checkpoints: records are chained but not signed")
	} else if rep.LastCheckpoint < rep.Last {
		rep.Notes = append(rep.Notes, fmt.Sprintf("records %d..%d come after the last checkpoint: chained, not yet signed", rep.LastCheckpoint+1, rep.Last))
	}
	if pub == nil && rep.Checkpoints > 0 {
		rep.Notes = append(rep.Notes, "signatures not checked: pass --pubkey with the audit public key kept apart from this gateway")
	}
	return rep, nil
}

func checkSig(r chainFields, pub ed25519.PublicKey) string {
	if pub == nil {
		return ""
	}
	if r.Key != KeyID(pub) {
		return fmt.Sprintf("checkpoint signed by key %s, not by the given key %s", r.Key, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || !ed25519.Verify(pub, checkpointMessage(r.CkptSeq, r.CkptHash), sig) {
		return "checkpoint signature does not verify"
	}
	return ""
}
