package opcuarelay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/protocols/opcua"
)

// reasonImageNotApproved is the audit reason of a FileType Close or
// CloseAndCommit refused because the image written is not on the manifest,
// or of a file call brana could not follow. The element is answered
// Bad_UserAccessDenied and the call never reaches the PLC.
const reasonImageNotApproved = "image-not-approved"

var errUnfollowed = errors.New("the file handle was not opened in this session through brana")

// fileCall is what a Call element does to a file transfer, by the type
// method it instantiates.
type fileCall uint8

const (
	callNone fileCall = iota
	callOpen
	callWrite
	callSetPosition
	callClose
	callGenerate // TemporaryFileTransferType GenerateFileForWrite
	callCommit   // TemporaryFileTransferType CloseAndCommit
)

// fileCallOf recognises a FileType or temporary file transfer method by
// the last part of its symbolic name ("FileType_Write",
// "DI:..._FileTransfer_CloseAndCommit").
func fileCallOf(e *opcua.Element) fileCall {
	if e.Service != "Call" || e.Index < 0 {
		return callNone
	}
	i := strings.LastIndexByte(e.Detail, '_')
	if i < 0 {
		return callNone
	}
	switch e.Detail[i+1:] {
	case "Open":
		return callOpen
	case "Write":
		return callWrite
	case "SetPosition":
		return callSetPosition
	case "Close":
		return callClose
	case "GenerateFileForWrite":
		return callGenerate
	case "CloseAndCommit":
		return callCommit
	}
	return callNone
}

// fileRef names an open file: the object a method was called on and the
// handle.
type fileRef struct {
	obj    string
	handle uint32
}

// fileGate follows the program files one session writes through the
// FileType methods and holds their commit (Close, CloseAndCommit) until
// the image is checked against the manifest.
type fileGate struct {
	tr *firmware.Tracker

	mu      sync.Mutex
	read    map[fileRef]bool    // handles opened for reading only
	write   map[fileRef]fileRef // write handles, and transfer objects' handles, to the file's own ref
	tainted map[fileRef]string  // file → why brana no longer knows its contents
}

func newFileGate(maxImage int64) (*fileGate, error) {
	tr, err := firmware.NewTracker(firmware.Config{MaxImage: maxImage})
	if err != nil {
		return nil, err
	}
	return &fileGate{tr: tr, read: map[fileRef]bool{}, write: map[fileRef]fileRef{}, tainted: map[fileRef]string{}}, nil
}

// fileStep is what to do once the PLC has answered an allowed file call.
type fileStep struct {
	index int // the element's index in the client's request
	call  fileCall
	ref   fileRef
	mode  byte
}

// imageDenial is a refusal by the file gate, with the detail for the audit
// record (the image's hash when known).
type imageDenial struct{ detail string }

func (d *imageDenial) Error() string { return d.detail }

func denyImage(format string, a ...any) error { return &imageDenial{detail: fmt.Sprintf(format, a...)} }

// check decides on one allowed Call element before it is forwarded. Image
// data goes into the tracker here, so that the commit can be checked when
// it comes; note is set for an approved commit.
func (g *fileGate) check(m *ua.CallMethodRequest, e *opcua.Element, manifest *firmware.Manifest) (step fileStep, note string, err error) {
	call := fileCallOf(e)
	if call == callNone || m == nil {
		return fileStep{}, "", nil
	}
	if e.ObjectID == nil {
		return fileStep{}, "", denyImage("file call without an object")
	}
	step = fileStep{index: e.Index, call: call, ref: fileRef{obj: e.ObjectID.String()}}
	args := m.InputArguments
	if call == callOpen {
		mode, ok := argAt[byte](args, 0)
		if !ok {
			return fileStep{}, "", denyImage("FileType Open without a Byte mode")
		}
		if mode&firmware.FileModeWrite != 0 && (mode&firmware.FileModeEraseExisting == 0 || mode&firmware.FileModeAppend != 0) {
			return fileStep{}, "", denyImage("%v: mode %#x on %s; open with Write|EraseExisting (0x6)", firmware.ErrOpenMode, mode, step.ref.obj)
		}
		step.mode = mode
		return step, "", nil
	}
	if call == callGenerate {
		return step, "", nil
	}
	h, ok := argAt[uint32](args, 0)
	if !ok {
		return fileStep{}, "", denyImage("%s without a UInt32 file handle", e.Detail)
	}
	step.ref.handle = h

	g.mu.Lock()
	defer g.mu.Unlock()
	file, writing := g.write[step.ref]
	switch call {
	case callWrite:
		data, ok := argAt[[]byte](args, 1)
		if !ok && len(args) > 1 && args[1] != nil && args[1].Value() == nil {
			ok = true // a null ByteString writes nothing
		}
		if !ok {
			return fileStep{}, "", denyImage("FileType Write without ByteString data")
		}
		if err := g.tr.FileWrite(step.ref.obj, h, data); err != nil {
			return fileStep{}, "", denyImage("image data refused: %v", err)
		}
	case callSetPosition:
		pos, ok := argAt[uint64](args, 1)
		if !ok {
			return fileStep{}, "", denyImage("FileType SetPosition without a UInt64 position")
		}
		if g.read[step.ref] {
			return step, "", nil
		}
		if err := g.tr.FileSetPosition(step.ref.obj, h, pos); err != nil {
			return fileStep{}, "", denyImage("%v", err)
		}
	case callClose, callCommit:
		if call == callClose && g.read[step.ref] {
			return step, "", nil
		}
		if !writing {
			return fileStep{}, "", denyImage("%s of %s handle %d refused: %v", e.Detail, step.ref.obj, h, errUnfollowed)
		}
		if why := g.tainted[file]; why != "" {
			return fileStep{}, "", denyImage("%s of %s handle %d refused: %s", e.Detail, step.ref.obj, h, why)
		}
		im, sum, size, err := g.tr.CheckFile(step.ref.obj, h, manifest)
		if err != nil {
			return fileStep{}, "", denyImage("%s of %s handle %d refused%s: %v", e.Detail, step.ref.obj, h, imageSum(sum, size), err)
		}
		note = "commit of image sha256:" + sum + " (" + strconv.FormatInt(size, 10) + " bytes) by " + e.Detail + " on " + step.ref.obj +
			", approved: " + im.Vendor + " " + im.Product + " " + im.Version + "; origin " + im.Origin +
			"; approved by " + strings.Join(im.ApprovedBy, ", ") + "; manifest serial " + strconv.FormatUint(manifest.Serial, 10)
	}
	return step, note, nil
}

// imageSum names an image's hash for a refusal, when it is known.
func imageSum(sum string, size int64) string {
	if sum == "" {
		return ""
	}
	return ": image sha256:" + sum + " (" + strconv.FormatInt(size, 10) + " bytes)"
}

// answered updates the transfers from the PLC's answer to forwarded file
// calls; res is nil when the request got no answer.
func (g *fileGate) answered(steps []fileStep, res []*ua.CallMethodResult, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range steps {
		var r *ua.CallMethodResult
		if res != nil && st.index < len(res) {
			r = res[st.index]
		}
		good := r != nil && r.StatusCode == ua.StatusOK
		why := why
		if !good && why == "" && r != nil {
			why = "the PLC answered " + statusName(r.StatusCode)
		}
		switch st.call {
		case callOpen:
			h, ok := outAt[uint32](r, 0)
			if !good || !ok {
				continue
			}
			ref := fileRef{st.ref.obj, h}
			delete(g.read, ref)
			delete(g.write, ref)
			delete(g.tainted, ref)
			if st.mode&firmware.FileModeWrite == 0 {
				g.read[ref] = true
			} else if err := g.tr.FileOpened(ref.obj, h, st.mode); err == nil {
				g.write[ref] = ref
			}
		case callGenerate:
			fileID, ok1 := outAt[*ua.NodeID](r, 0)
			h, ok2 := outAt[uint32](r, 1)
			if !good || !ok1 || !ok2 || fileID == nil {
				continue
			}
			file := fileRef{fileID.String(), h}
			if err := g.tr.FileGenerated(st.ref.obj, file.obj, h); err == nil {
				delete(g.tainted, file)
				g.write[file] = file
				g.write[fileRef{st.ref.obj, h}] = file
			}
		case callWrite, callSetPosition:
			if file, ok := g.write[st.ref]; ok && !good {
				g.tainted[file] = "an earlier " + callName(st.call) + " was not confirmed (" + why + "); what the file holds is unknown"
			}
		case callClose, callCommit:
			if !good {
				continue
			}
			if g.read[st.ref] {
				delete(g.read, st.ref)
				continue
			}
			file := g.write[st.ref]
			g.tr.FileClosed(st.ref.obj, st.ref.handle)
			for k, v := range g.write {
				if v == file {
					delete(g.write, k)
				}
			}
			delete(g.tainted, file)
		}
	}
}

func callName(c fileCall) string {
	if c == callSetPosition {
		return "SetPosition"
	}
	return "Write"
}

// argAt returns input argument i as a T.
func argAt[T any](args []*ua.Variant, i int) (T, bool) {
	var zero T
	if i >= len(args) || args[i] == nil {
		return zero, false
	}
	v, ok := args[i].Value().(T)
	return v, ok
}

// outAt returns output argument i of r as a T.
func outAt[T any](r *ua.CallMethodResult, i int) (T, bool) {
	var zero T
	if r == nil || i >= len(r.OutputArguments) || r.OutputArguments[i] == nil {
		return zero, false
	}
	v, ok := r.OutputArguments[i].Value().(T)
	return v, ok
}
