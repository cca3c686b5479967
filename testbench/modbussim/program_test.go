package modbussim

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fileWrite builds an FC 21 request PDU writing data into file at rec.
func fileWrite(file, rec uint16, data []byte) []byte {
	pdu := []byte{21, byte(7 + len(data)), 6}
	pdu = binary.BigEndian.AppendUint16(pdu, file)
	pdu = binary.BigEndian.AppendUint16(pdu, rec)
	pdu = binary.BigEndian.AppendUint16(pdu, uint16(len(data)/2))
	return append(pdu, data...)
}

func TestProgramCommit(t *testing.T) {
	p := newPLC(t, map[byte]string{1: "feeder", 2: "pump"})
	c := dial(t, serveTCP(t, p))
	factory := p.Unit(1).Program()
	if len(factory) == 0 {
		t.Fatal("no factory program")
	}
	// expect sends req to unit and checks the answer: want in hex, or an
	// echo of the request when want is empty.
	expect := func(unit byte, req []byte, want string) {
		t.Helper()
		w := req
		if want != "" {
			w = unhex(t, want)
		}
		if got := roundTrip(t, c, unit, req); !bytes.Equal(got, w) {
			t.Fatalf("% x: got % x, want % x", req, got, w)
		}
	}

	t.Run("fail/commit-with-nothing-staged", func(t *testing.T) {
		expect(1, unhex(t, "06 2328 c0de"), "86 03")
		if p.Unit(1).ProgramCommits() != 0 {
			t.Error("empty commit counted")
		}
	})

	image := []byte("PROGRAM-IMAGE-V1") // 8 records
	t.Run("ok/staged-then-committed", func(t *testing.T) {
		// Out of order, as a client may send them.
		expect(1, fileWrite(1, 4, image[8:]), "")
		if got := p.Unit(1).Program(); !bytes.Equal(got, factory) {
			t.Fatalf("program changed before the commit: %q", got)
		}
		expect(1, fileWrite(1, 0, image[:8]), "")
		expect(1, fileWrite(3, 0, []byte("xx")), "") // another file is no program
		expect(1, unhex(t, "06 2328 0001"), "86 03")
		if got := p.Unit(1).Program(); !bytes.Equal(got, factory) {
			t.Fatalf("program changed on a wrong commit value: %q", got)
		}
		expect(1, unhex(t, "06 2328 c0de"), "")
		if got, n := p.Unit(1).Program(), p.Unit(1).ProgramCommits(); !bytes.Equal(got, image) || n != 1 {
			t.Fatalf("after commit: %q, %d commits", got, n)
		}
		if p.FileRecords(1, 1) != nil {
			t.Error("file 1 still staged after the commit")
		}
		if got := p.Unit(2).Program(); !bytes.Equal(got, []byte(vendorName+" pump factory program\n")) {
			t.Errorf("unit 2 program: %q", got)
		}
	})

	t.Run("ok/commit-with-fc16", func(t *testing.T) {
		expect(2, fileWrite(1, 0, []byte("ab")), "")
		expect(2, unhex(t, "10 2328 0001 02 c0de"), "10 2328 0001")
		if got, n := p.Unit(2).Program(), p.Unit(2).ProgramCommits(); string(got) != "ab" || n != 1 {
			t.Fatalf("after commit: %q, %d commits", got, n)
		}
	})

	t.Run("ok/shorter-image-after-commit", func(t *testing.T) {
		expect(1, fileWrite(1, 0, []byte("v2")), "")
		expect(1, unhex(t, "06 2328 c0de"), "")
		if got := p.Unit(1).Program(); string(got) != "v2" {
			t.Fatalf("second image: %q", got)
		}
	})

	t.Run("fail/staged-but-not-committed", func(t *testing.T) {
		expect(1, fileWrite(1, 0, []byte("evil")), "")
		if got, n := p.Unit(1).Program(), p.Unit(1).ProgramCommits(); string(got) != "v2" || n != 2 {
			t.Fatalf("without commit: %q, %d commits", got, n)
		}
	})
}
