package firmware

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/protocols/modbus"
)

// fc21 builds a write-file-record PDU with one sub-request per record.
func fc21(records ...FileRecord) []byte {
	pdu := []byte{modbus.FuncWriteFileRecord, 0}
	for _, r := range records {
		n := len(r.Data) / 2
		pdu = append(pdu, 6, byte(r.File>>8), byte(r.File), byte(r.Record>>8), byte(r.Record), byte(n>>8), byte(n))
		pdu = append(pdu, r.Data...)
	}
	pdu[1] = byte(len(pdu) - 2)
	return pdu
}

func parse(t *testing.T, unit byte, pdu []byte) *modbus.Request {
	t.Helper()
	req := new(modbus.Request)
	if err := modbus.ParseRequest(unit, pdu, req); err != nil {
		t.Fatalf("ParseRequest(% x): %v", pdu[:min(len(pdu), 16)], err)
	}
	return req
}

// fc16 builds a write-multiple-registers PDU.
func fc16(start uint16, data []byte) []byte {
	n := len(data) / 2
	pdu := []byte{modbus.FuncWriteMultipleRegisters, byte(start >> 8), byte(start), byte(n >> 8), byte(n), byte(len(data))}
	return append(pdu, data...)
}

func newTracker(t *testing.T, cfg Config) *Tracker {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestAppendFileRecords(t *testing.T) {
	pdu := fc21(FileRecord{File: 4, Record: 7, Data: []byte{1, 2, 3, 4}}, FileRecord{File: 5, Record: 9999, Data: []byte{5, 6}})
	req := parse(t, 1, pdu)
	var scratch [8]FileRecord
	recs, err := AppendFileRecords(scratch[:0], req)
	if err != nil || len(recs) != 2 {
		t.Fatalf("AppendFileRecords = %v, %v", recs, err)
	}
	if r := recs[0]; r.File != 4 || r.Record != 7 || r.Offset() != 14 || string(r.Data) != "\x01\x02\x03\x04" {
		t.Fatalf("record 0: %+v", r)
	}
	if r := recs[1]; r.File != 5 || r.Offset() != 19998 || string(r.Data) != "\x05\x06" {
		t.Fatalf("record 1: %+v", r)
	}
	if n := testing.AllocsPerRun(100, func() { AppendFileRecords(scratch[:0], req) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	read := parse(t, 1, []byte{modbus.FuncReadFileRecord, 7, 6, 0, 4, 0, 0, 0, 2})
	if _, err := AppendFileRecords(nil, read); !errors.Is(err, ErrRequest) {
		t.Fatalf("FC 20: %v", err)
	}
}

func TestTrackerFileRecords(t *testing.T) {
	img := testImage(3000)
	m := sampleManifest(img)
	// Records of 50 words (100 bytes), two per request, sent last first.
	var reqs [][]byte
	for off := 0; off < len(img); off += 200 {
		var recs []FileRecord
		for o := off; o < min(off+200, len(img)); o += 100 {
			recs = append(recs, FileRecord{File: 3, Record: uint16(o / 2), Data: img[o:min(o+100, len(img))]})
		}
		reqs = append([][]byte{fc21(recs...)}, reqs...)
	}
	t.Run("ok/out-of-order", func(t *testing.T) {
		tr := newTracker(t, Config{})
		for _, pdu := range reqs {
			if err := tr.WriteFileRecords(parse(t, 1, pdu)); err != nil {
				t.Fatal(err)
			}
		}
		im, s, size, err := tr.Check(&m)
		if err != nil || im == nil || s != sum(img) || size != 3000 || im.Version != "3.40.0" {
			t.Fatalf("Check = %+v, %s, %d, %v", im, s, size, err)
		}
		st := tr.Transfers()
		if len(st) != 1 || st[0].Key != (Key{Kind: KindFileRecords, Unit: 1, File: 3}) || !st[0].Complete || st[0].SHA256 != s {
			t.Fatalf("Transfers = %+v", st)
		}
	})
	t.Run("fail/one-byte-changed", func(t *testing.T) {
		tr := newTracker(t, Config{})
		bad := append([]byte(nil), img...)
		bad[1234] ^= 1
		for off := 0; off < len(bad); off += 200 {
			if err := tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 3, Record: uint16(off / 2), Data: bad[off:min(off+200, len(bad))]}))); err != nil {
				t.Fatal(err)
			}
		}
		im, s, size, err := tr.Check(&m)
		if !errors.Is(err, ErrNotApproved) || im != nil || s != sum(bad) || size != 3000 {
			t.Fatalf("Check = %+v, %s, %d, %v", im, s, size, err)
		}
		if !strings.Contains(err.Error(), sum(bad)) || !strings.Contains(err.Error(), "modbus unit 1 file 3") {
			t.Fatalf("error %q names neither the hash nor the transfer", err)
		}
	})
	t.Run("fail/gap", func(t *testing.T) {
		tr := newTracker(t, Config{})
		for i, pdu := range reqs {
			if i != 4 {
				tr.WriteFileRecords(parse(t, 1, pdu))
			}
		}
		if _, _, _, err := tr.Check(&m); !errors.Is(err, ErrGap) {
			t.Fatalf("Check: %v", err)
		}
	})
	t.Run("fail/conflict-in-one-request-changes-nothing", func(t *testing.T) {
		tr := newTracker(t, Config{})
		pdu := fc21(FileRecord{File: 3, Record: 0, Data: img[:4]}, FileRecord{File: 3, Record: 1, Data: []byte{0xEE, 0xEE}})
		if err := tr.WriteFileRecords(parse(t, 1, pdu)); !errors.Is(err, ErrOverlap) {
			t.Fatalf("WriteFileRecords: %v", err)
		}
		if st := tr.Transfers(); len(st) != 0 {
			t.Fatalf("a refused request left %+v", st)
		}
	})
	t.Run("fail/conflict-with-earlier-request", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 3, Record: 0, Data: img[:200]})))
		pdu := fc21(FileRecord{File: 3, Record: 100, Data: img[200:400]}, FileRecord{File: 3, Record: 10, Data: []byte{0, 0}})
		if err := tr.WriteFileRecords(parse(t, 1, pdu)); !errors.Is(err, ErrOverlap) {
			t.Fatalf("WriteFileRecords: %v", err)
		}
		if st := tr.Transfers(); len(st) != 1 || st[0].Size != 200 {
			t.Fatalf("a refused request changed the transfer: %+v", st)
		}
	})
	t.Run("fail/several-files", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 3, Record: 0, Data: img[:200]})))
		tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 4, Record: 0, Data: img[:200]})))
		if _, _, _, err := tr.Check(&m); !errors.Is(err, ErrSeveral) {
			t.Fatalf("Check: %v", err)
		}
		tr.Remove(Key{Kind: KindFileRecords, Unit: 1, File: 4})
		if _, _, _, err := tr.Check(&m); !errors.Is(err, ErrNotApproved) {
			t.Fatalf("Check after Remove: %v", err)
		}
	})
	t.Run("fail/too-many-files", func(t *testing.T) {
		tr := newTracker(t, Config{MaxTransfers: 2})
		for f := uint16(1); f <= 2; f++ {
			if err := tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: f, Data: []byte{1, 2}}))); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 3, Data: []byte{1, 2}}))); !errors.Is(err, ErrTooMany) {
			t.Fatalf("third file: %v", err)
		}
	})
	t.Run("fail/cap", func(t *testing.T) {
		tr := newTracker(t, Config{MaxImage: 1000})
		if err := tr.WriteFileRecords(parse(t, 1, fc21(FileRecord{File: 3, Record: 499, Data: []byte{1, 2, 3, 4}}))); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("WriteFileRecords past the limit: %v", err)
		}
	})
}

func TestTrackerWindow(t *testing.T) {
	img := testImage(1000)
	m := sampleManifest(img)
	win := Window{Table: modbus.HoldingRegisters, Start: 1000, Count: 600}
	t.Run("ok/words", func(t *testing.T) {
		tr := newTracker(t, Config{Windows: []Window{win}})
		// Blocks of 100 registers, last first, then the first word again by FC 6.
		for off := 800; off >= 0; off -= 200 {
			in, err := tr.WriteRegisters(parse(t, 2, fc16(1000+uint16(off/2), img[off:off+200])))
			if !in || err != nil {
				t.Fatalf("offset %d: %v, %v", off, in, err)
			}
		}
		if in, err := tr.WriteRegisters(parse(t, 2, []byte{modbus.FuncWriteSingleRegister, 0x03, 0xE8, img[0], img[1]})); !in || err != nil {
			t.Fatalf("FC 6 rewrite of the first word: %v, %v", in, err)
		}
		im, s, size, err := tr.Check(&m)
		if err != nil || im == nil || s != sum(img) || size != 1000 {
			t.Fatalf("Check = %+v, %s, %d, %v", im, s, size, err)
		}
		if k := tr.Transfers()[0].Key; k != (Key{Kind: KindWindow, Unit: 2, File: 1000}) {
			t.Fatalf("key %+v", k)
		}
	})
	tests := []struct {
		name string
		pdu  []byte
		in   bool
		err  error
	}{
		{"ok/outside", fc16(10, img[:20]), false, nil},
		{"ok/right-after", fc16(1600, img[:20]), false, nil},
		{"ok/coil", []byte{modbus.FuncWriteSingleCoil, 0x03, 0xE8, 0xFF, 0x00}, false, nil},
		{"fail/straddles-start", fc16(990, img[:40]), true, ErrWindowEdge},
		{"fail/straddles-end", fc16(1590, img[:40]), true, ErrWindowEdge},
		{"fail/mask-write", []byte{modbus.FuncMaskWriteRegister, 0x03, 0xE8, 0x00, 0xF2, 0x00, 0x25}, true, ErrMasked},
		{"fail/changed-word", []byte{modbus.FuncWriteSingleRegister, 0x03, 0xE8, img[0] ^ 1, img[1]}, true, ErrOverlap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, Config{Windows: []Window{win}})
			tr.WriteRegisters(parse(t, 2, fc16(1000, img[:20])))
			in, err := tr.WriteRegisters(parse(t, 2, tt.pdu))
			if in != tt.in || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("WriteRegisters = %v, %v; want %v, %v", in, err, tt.in, tt.err)
			}
		})
	}
	t.Run("ok/fc23-write-part", func(t *testing.T) {
		tr := newTracker(t, Config{Windows: []Window{win}})
		pdu := []byte{modbus.FuncReadWriteMultipleRegisters, 0, 0, 0, 1, 0x03, 0xE8, 0, 2, 4}
		pdu = append(pdu, img[:4]...)
		if in, err := tr.WriteRegisters(parse(t, 2, pdu)); !in || err != nil {
			t.Fatalf("FC 23: %v, %v", in, err)
		}
	})
	for _, bad := range []Window{
		{Table: modbus.Coils, Start: 0, Count: 10},
		{Table: modbus.HoldingRegisters, Start: 0, Count: 0},
		{Table: modbus.HoldingRegisters, Start: 0xFFFF, Count: 2},
	} {
		if _, err := NewTracker(Config{Windows: []Window{bad}}); err == nil {
			t.Errorf("NewTracker accepted window %+v", bad)
		}
	}
	if _, err := NewTracker(Config{Windows: []Window{win, {Table: modbus.HoldingRegisters, Start: 1599, Count: 2}}}); err == nil {
		t.Error("NewTracker accepted overlapping windows")
	}
}

func TestTrackerFileType(t *testing.T) {
	img := testImage(5000)
	m := sampleManifest(img)
	const obj = "ns=2;s=PLC/Firmware"
	t.Run("ok/open-write-close", func(t *testing.T) {
		tr := newTracker(t, Config{})
		if err := tr.FileOpened(obj, 7, FileModeWrite|FileModeEraseExisting); err != nil {
			t.Fatal(err)
		}
		// Another handle on another object with the same number is another transfer.
		if err := tr.FileOpened("ns=2;s=PLC/Log", 7, FileModeRead); err != nil {
			t.Fatal(err)
		}
		for off := 0; off < 4000; off += 1000 {
			if err := tr.FileWrite(obj, 7, img[off:off+1000]); err != nil {
				t.Fatal(err)
			}
		}
		// Back to 3000 and on to the end: a rewrite of the same bytes.
		if err := tr.FileSetPosition(obj, 7, 3000); err != nil {
			t.Fatal(err)
		}
		if err := tr.FileWrite(obj, 7, img[3000:]); err != nil {
			t.Fatal(err)
		}
		im, s, size, err := tr.CheckFile(obj, 7, &m)
		if err != nil || im == nil || s != sum(img) || size != 5000 {
			t.Fatalf("CheckFile = %+v, %s, %d, %v", im, s, size, err)
		}
		if _, _, _, err := tr.Check(&m); err != nil {
			t.Fatalf("Check with one file: %v", err)
		}
		tr.FileClosed(obj, 7)
		if _, _, _, err := tr.CheckFile(obj, 7, &m); !errors.Is(err, ErrNoTransfer) {
			t.Fatalf("CheckFile after close: %v", err)
		}
	})
	t.Run("fail/one-byte-changed", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.FileOpened(obj, 1, 0x6)
		bad := append([]byte(nil), img...)
		bad[0] ^= 0xFF
		tr.FileWrite(obj, 1, bad)
		_, s, _, err := tr.CheckFile(obj, 1, &m)
		if !errors.Is(err, ErrNotApproved) || s != sum(bad) {
			t.Fatalf("CheckFile = %s, %v", s, err)
		}
	})
	t.Run("fail/rewrite-differs", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.FileOpened(obj, 1, 0x6)
		tr.FileWrite(obj, 1, img)
		tr.FileSetPosition(obj, 1, 10)
		if err := tr.FileWrite(obj, 1, []byte("evil")); !errors.Is(err, ErrOverlap) {
			t.Fatalf("FileWrite over the image: %v", err)
		}
	})
	t.Run("fail/gap-after-set-position", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.FileOpened(obj, 1, 0x6)
		tr.FileSetPosition(obj, 1, 100)
		tr.FileWrite(obj, 1, img[100:])
		if _, _, _, err := tr.CheckFile(obj, 1, &m); !errors.Is(err, ErrGap) {
			t.Fatalf("CheckFile: %v", err)
		}
	})
	for _, mode := range []byte{FileModeWrite, FileModeWrite | FileModeAppend, FileModeWrite | FileModeEraseExisting | FileModeAppend, 0x3} {
		if err := newTracker(t, Config{}).FileOpened(obj, 1, mode); !errors.Is(err, ErrOpenMode) {
			t.Errorf("FileOpened mode %#x: %v", mode, err)
		}
	}
	t.Run("fail/untracked-handle", func(t *testing.T) {
		tr := newTracker(t, Config{})
		tr.FileOpened(obj, 2, FileModeRead)
		if err := tr.FileWrite(obj, 2, img); !errors.Is(err, ErrHandle) {
			t.Fatalf("FileWrite on a read handle: %v", err)
		}
		if err := tr.FileSetPosition(obj, 3, 0); !errors.Is(err, ErrHandle) {
			t.Fatalf("FileSetPosition on an unknown handle: %v", err)
		}
	})
	t.Run("fail/position-past-limit", func(t *testing.T) {
		tr := newTracker(t, Config{MaxImage: 4096})
		tr.FileOpened(obj, 1, 0x6)
		tr.FileSetPosition(obj, 1, 1<<63)
		if err := tr.FileWrite(obj, 1, img[:1]); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("FileWrite: %v", err)
		}
	})
	t.Run("ok/temporary-file-transfer", func(t *testing.T) {
		const transferObj, fileObj = "ns=2;s=PLC/Transfer", "ns=2;i=9001"
		tr := newTracker(t, Config{})
		if err := tr.FileGenerated(transferObj, fileObj, 3); err != nil {
			t.Fatal(err)
		}
		tr.FileWrite(fileObj, 3, img[:2500])
		tr.FileWrite(fileObj, 3, img[2500:])
		im, s, _, err := tr.CheckFile(transferObj, 3, &m)
		if err != nil || im == nil || s != sum(img) {
			t.Fatalf("CheckFile on the transfer object = %v, %s, %v", im, s, err)
		}
		tr.FileClosed(transferObj, 3)
		if st := tr.Transfers(); len(st) != 0 {
			t.Fatalf("after CloseAndCommit: %+v", st)
		}
	})
}

func TestTrackerCheck(t *testing.T) {
	img := testImage(100)
	m := sampleManifest(img)
	tr := newTracker(t, Config{})
	if _, _, _, err := tr.Check(&m); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("Check with nothing sent: %v", err)
	}
	tr.FileOpened("f", 1, 0x6)
	if _, _, _, err := tr.Check(&m); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("Check with an open handle and nothing written: %v", err)
	}
	tr.FileWrite("f", 1, img)
	if _, s, _, err := tr.Check(nil); !errors.Is(err, ErrNoManifest) || s != sum(img) {
		t.Fatalf("Check without a manifest: %s, %v", s, err)
	}
	late := newTracker(t, Config{Now: func() time.Time { return expires.Add(time.Second) }})
	late.FileOpened("f", 1, 0x6)
	late.FileWrite("f", 1, img)
	if _, _, _, err := late.Check(&m); !errors.Is(err, ErrExpired) {
		t.Fatalf("Check after the manifest expired: %v", err)
	}
	tr.Reset()
	if st := tr.Transfers(); len(st) != 0 {
		t.Fatalf("after Reset: %+v", st)
	}
}
