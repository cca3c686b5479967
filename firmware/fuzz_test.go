package firmware

import (
	"bytes"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/protocols/modbus"
)

// FuzzParseManifest feeds ParseManifest both the raw input (the signature
// path) and the input signed as note text (the parser). Nothing may panic,
// and a manifest that parses signs again to the same text.
func FuzzParseManifest(f *testing.F) {
	s, v := newKey(f, "fuzz")
	vs := note.VerifierList(v)
	good, err := SignManifest(sampleManifest(testImage(10), testImage(20)), s)
	if err != nil {
		f.Fatal(err)
	}
	text := good[:bytes.Index(good, []byte("\n\n"))+1]
	f.Add(good)
	f.Add(text)
	f.Add(bytes.Replace(text, []byte("approved_by Petr Svoboda\n"), nil, 1))
	f.Add(bytes.Replace(good, []byte("serial 12"), []byte("serial 13"), 1))
	f.Add([]byte("brana-firmware 1\nserial 1\nissued 2026-01-01T00:00:00Z\nexpires 2027-01-01T00:00:00Z\n"))
	f.Add([]byte("brana-firmware 1\n\n— fuzz AAAAAAA=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseManifest(data, vs, now, 0); err == nil && m == nil {
			t.Fatal("no manifest and no error")
		}
		msg, err := note.Sign(&note.Note{Text: string(data)}, s)
		if err != nil {
			return
		}
		m, err := ParseManifest(msg, vs, now, 0)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		again, err := SignManifest(*m, s)
		if err != nil {
			t.Fatalf("a parsed manifest does not sign again: %v", err)
		}
		if !bytes.Equal(again, msg) {
			t.Fatalf("text changed on a round trip:\n%q\n%q", msg, again)
		}
		m2, err := ParseManifest(again, vs, now, 0)
		if err != nil || !reflect.DeepEqual(m.Images, m2.Images) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzHasher delivers an image in pieces cut and ordered by the input, with
// some pieces sent twice; the sum must be that of the whole image at once.
func FuzzHasher(f *testing.F) {
	f.Add(testImage(100), []byte{10, 3, 200, 7})
	f.Add([]byte{1}, []byte{})
	f.Add(testImage(3000), []byte{255, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, img, cuts []byte) {
		if len(img) == 0 {
			return
		}
		// Cut points from cuts, then deliver the pieces in an order that
		// cuts also chooses.
		var pieces [][2]int
		for off, i := 0, 0; off < len(img); i++ {
			n := len(img) - off
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			pieces = append(pieces, [2]int{off, off + n})
			off += n
		}
		for i := range pieces {
			if i < len(cuts) {
				j := int(cuts[len(cuts)-1-i]) % len(pieces)
				pieces[i], pieces[j] = pieces[j], pieces[i]
			}
		}
		h := NewHasher(int64(len(img)))
		for i, p := range pieces {
			if err := h.WriteAt(img[p[0]:p[1]], int64(p[0])); err != nil {
				t.Fatalf("piece %v: %v", p, err)
			}
			if i%3 == 0 { // a retransmission
				if err := h.WriteAt(img[p[0]:p[1]], int64(p[0])); err != nil {
					t.Fatalf("piece %v again: %v", p, err)
				}
			}
		}
		got, size, err := h.Commit()
		if err != nil || got != sum(img) || size != int64(len(img)) {
			t.Fatalf("Commit = %s, %d, %v; want %s", got, size, err, sum(img))
		}
	})
}

// FuzzFileRecords checks that every FC 21 request modbus.ParseRequest
// accepts splits into records that fill it exactly.
func FuzzFileRecords(f *testing.F) {
	f.Add(fc21(FileRecord{File: 4, Record: 7, Data: []byte{1, 2, 3, 4}}, FileRecord{File: 5, Record: 9999}))
	f.Add([]byte{0x15, 7, 6, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pdu []byte) {
		var req modbus.Request
		if modbus.ParseRequest(1, pdu, &req) != nil || req.Func != modbus.FuncWriteFileRecord {
			return
		}
		recs, err := AppendFileRecords(nil, &req)
		if err != nil {
			t.Fatalf("parsed FC 21 refused: %v", err)
		}
		n := 2
		for _, r := range recs {
			n += fileSubReqLen + len(r.Data)
		}
		if n != len(pdu) {
			t.Fatalf("records cover %d of %d bytes", n, len(pdu))
		}
		tr, _ := NewTracker(Config{MaxImage: 1 << 16})
		tr.WriteFileRecords(&req)
	})
}
