package opcuarelay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/protocols/opcua"
)

// fileTest drives a fileGate the way forward does: check before the call
// is forwarded, answered with the PLC's result.
type fileTest struct {
	t *testing.T
	g *fileGate
	m *firmware.Manifest
}

func newFileTest(t *testing.T, approved []byte) *fileTest {
	g, err := newFileGate(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(approved)
	m := &firmware.Manifest{Serial: 7, Expires: time.Now().Add(time.Hour), Images: []firmware.Image{{
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(approved)), Vendor: "V", Product: "P", Version: "1.0", Origin: "o", ApprovedBy: []string{"A"}}}}
	return &fileTest{t: t, g: g, m: m}
}

// call checks one call of method (a FileType symbolic name) on obj; res,
// when not nil, is the PLC's answer. It returns the note and the refusal.
func (f *fileTest) call(obj, method string, res *ua.CallMethodResult, args ...any) (string, error) {
	f.t.Helper()
	in := make([]*ua.Variant, len(args))
	for i, a := range args {
		in[i] = ua.MustVariant(a)
	}
	e := &opcua.Element{Service: "Call", Index: 0, ObjectID: ua.MustParseNodeID(obj), Detail: method}
	step, note, err := f.g.check(&ua.CallMethodRequest{InputArguments: in}, e, f.m)
	if err == nil && step.call != callNone && res != nil {
		f.g.answered([]fileStep{step}, []*ua.CallMethodResult{res}, "")
	}
	return note, err
}

func good(out ...any) *ua.CallMethodResult {
	r := &ua.CallMethodResult{StatusCode: ua.StatusOK}
	for _, o := range out {
		r.OutputArguments = append(r.OutputArguments, ua.MustVariant(o))
	}
	return r
}

func TestFileGate(t *testing.T) {
	const obj = "ns=2;s=Feeder.Firmware"
	img := []byte("approved program image")
	mustDeny := func(t *testing.T, err error, want string) {
		t.Helper()
		var d *imageDenial
		if !errors.As(err, &d) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v; want an image denial naming %q", err, want)
		}
	}

	t.Run("ok/open-write-close-approved", func(t *testing.T) {
		f := newFileTest(t, img)
		f.call(obj, "FileType_Open", good(uint32(7)), byte(6))
		if _, err := f.call(obj, "FileType_Write", good(), uint32(7), img[:8]); err != nil {
			t.Fatal(err)
		}
		f.call(obj, "FileType_Write", good(), uint32(7), img[8:])
		note, err := f.call(obj, "FileType_Close", good(), uint32(7))
		if err != nil || !strings.Contains(note, "approved: V P 1.0") || !strings.Contains(note, "manifest serial 7") {
			t.Fatalf("Close: %q, %v", note, err)
		}
		// The handle is forgotten once its Close was answered.
		_, err = f.call(obj, "FileType_Close", nil, uint32(7))
		mustDeny(t, err, "not opened in this session")
	})
	t.Run("fail/one-byte-changed", func(t *testing.T) {
		f := newFileTest(t, img)
		bad := []byte(strings.Replace(string(img), "program", "progrAm", 1))
		sum := sha256.Sum256(bad)
		f.call(obj, "FileType_Open", good(uint32(1)), byte(6))
		f.call(obj, "FileType_Write", good(), uint32(1), bad)
		_, err := f.call(obj, "FileType_Close", good(), uint32(1))
		mustDeny(t, err, "sha256:"+hex.EncodeToString(sum[:]))
		mustDeny(t, err, "not in the approved manifest")
	})
	t.Run("fail/open-without-erase", func(t *testing.T) {
		f := newFileTest(t, img)
		_, err := f.call(obj, "FileType_Open", nil, byte(2))
		mustDeny(t, err, "Write|EraseExisting")
		_, err = f.call(obj, "FileType_Open", nil, byte(2|4|8))
		mustDeny(t, err, "Write|EraseExisting")
	})
	t.Run("fail/handle-from-elsewhere", func(t *testing.T) {
		f := newFileTest(t, img)
		_, err := f.call(obj, "FileType_Write", nil, uint32(3), img)
		mustDeny(t, err, "unknown file handle")
		_, err = f.call(obj, "FileType_Close", nil, uint32(3))
		mustDeny(t, err, "not opened in this session")
	})
	t.Run("fail/write-not-confirmed", func(t *testing.T) {
		f := newFileTest(t, img)
		f.call(obj, "FileType_Open", good(uint32(4)), byte(6))
		f.call(obj, "FileType_Write", &ua.CallMethodResult{StatusCode: ua.StatusBadResourceUnavailable}, uint32(4), img)
		_, err := f.call(obj, "FileType_Close", nil, uint32(4))
		mustDeny(t, err, "not confirmed")
	})
	t.Run("ok/read-handle", func(t *testing.T) {
		f := newFileTest(t, img)
		f.call(obj, "FileType_Open", good(uint32(9)), byte(1))
		if _, err := f.call(obj, "FileType_SetPosition", good(), uint32(9), uint64(4)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.call(obj, "FileType_Close", good(), uint32(9)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok/temporary-file-transfer", func(t *testing.T) {
		f := newFileTest(t, img)
		const tft, file = "ns=3;s=Transfer", "ns=3;s=Transfer.Tmp1"
		f.call(tft, "TemporaryFileTransferType_GenerateFileForWrite",
			good(ua.MustParseNodeID(file), uint32(11), ua.MustParseNodeID("ns=3;s=Transfer.SM")))
		if _, err := f.call(file, "FileType_Write", good(), uint32(11), img); err != nil {
			t.Fatal(err)
		}
		note, err := f.call(tft, "TemporaryFileTransferType_CloseAndCommit", good(), uint32(11))
		if err != nil || !strings.Contains(note, "CloseAndCommit") {
			t.Fatalf("CloseAndCommit: %q, %v", note, err)
		}
		_, err = f.call(tft, "TemporaryFileTransferType_CloseAndCommit", nil, uint32(11))
		mustDeny(t, err, "not opened in this session")
	})
	t.Run("ok/not-a-file-call", func(t *testing.T) {
		f := newFileTest(t, img)
		if _, err := f.call(obj, "FileType_Read", nil, uint32(1), int32(5)); err != nil {
			t.Fatal(err)
		}
	})
}
