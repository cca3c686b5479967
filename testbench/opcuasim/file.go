package opcuasim

import (
	"slices"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// FileType open modes (OPC 10000-5 C.2.1).
const (
	FileModeRead          = 0x1
	FileModeWrite         = 0x2
	FileModeEraseExisting = 0x4
	FileModeAppend        = 0x8
)

// Limits of the Firmware file.
const (
	MaxFileSize    = 16 << 20 // bytes; a Write beyond it gets Bad_ResourceUnavailable
	MaxFileHandles = 16       // open handles; one more Open gets Bad_ResourceUnavailable
)

// fileTypeMethods maps the method ids of FileType itself (namespace 0) to the
// method names on an instance: clients may call the type's method on the
// instance object.
var fileTypeMethods = map[uint32]string{
	id.FileType_Open:        "Open",
	id.FileType_Close:       "Close",
	id.FileType_Read:        "Read",
	id.FileType_Write:       "Write",
	id.FileType_GetPosition: "GetPosition",
	id.FileType_SetPosition: "SetPosition",
}

// file is a FileType object that keeps its contents in memory. Handles are
// shared by all sessions. Like a PLC taking a program download, it stages
// what a write handle writes and makes it the contents only when that handle
// is closed, so a transfer that never reaches Close leaves the old program.
type file struct {
	data    []byte
	commits int // closes of write handles
	handles map[uint32]*fileHandle
	next    uint32
}

type fileHandle struct {
	mode  byte
	pos   uint64
	stage []byte // write handles: the contents as they will be on Close
}

func (f *file) writer() bool {
	for _, h := range f.handles {
		if h.mode&FileModeWrite != 0 {
			return true
		}
	}
	return false
}

// buildFile adds a FileType object named name under parent.
func buildFile(b *builder, parent *node, name, desc string, f *file) *node {
	f.handles = make(map[uint32]*fileHandle)
	o := b.object(parent, name, desc, typeFile)
	b.property(o, "Size", typeUInt64, -1, func() any { return uint64(len(f.data)) })
	b.property(o, "Writable", typeBoolean, -1, func() any { return true })
	b.property(o, "UserWritable", typeBoolean, -1, func() any { return true })
	b.property(o, "OpenCount", typeUInt16, -1, func() any { return uint16(len(f.handles)) })

	handle := argument("FileHandle", typeUInt32, "handle returned by Open")
	b.method(o, "Open", "open the file; Mode bits: 1 read, 2 write, 4 erase existing, 8 append",
		[]*ua.Argument{argument("Mode", typeByte, "open mode")}, []*ua.Argument{handle}, f.open)
	b.method(o, "Close", "close a handle", []*ua.Argument{handle}, nil, f.close)
	b.method(o, "Read", "read up to Length bytes at the position",
		[]*ua.Argument{handle, argument("Length", typeInt32, "bytes to read")},
		[]*ua.Argument{argument("Data", typeByteString, "bytes read")}, f.read)
	b.method(o, "Write", "write Data at the position",
		[]*ua.Argument{handle, argument("Data", typeByteString, "bytes to write")}, nil, f.write)
	b.method(o, "GetPosition", "position of a handle",
		[]*ua.Argument{handle}, []*ua.Argument{argument("Position", typeUInt64, "byte offset")}, f.getPosition)
	b.method(o, "SetPosition", "move a handle",
		[]*ua.Argument{handle, argument("Position", typeUInt64, "byte offset")}, nil, f.setPosition)
	return o
}

// Method arguments are type-checked by the Call handler before these run.

func (f *file) open(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	mode := in[0].Value().(byte)
	switch {
	case mode == 0, mode&^0xF != 0,
		mode&(FileModeEraseExisting|FileModeAppend) != 0 && mode&FileModeWrite == 0:
		return nil, ua.StatusBadInvalidArgument
	case mode&FileModeWrite != 0 && len(f.handles) > 0:
		return nil, ua.StatusBadNotWritable // opened elsewhere: no exclusive write
	case mode&FileModeRead != 0 && f.writer():
		return nil, ua.StatusBadNotReadable // being written
	case len(f.handles) >= MaxFileHandles:
		return nil, ua.StatusBadResourceUnavailable
	}
	h := &fileHandle{mode: mode}
	if mode&FileModeWrite != 0 {
		h.stage = []byte{}
		if mode&FileModeEraseExisting == 0 {
			h.stage = slices.Clone(f.data)
		}
	}
	if mode&FileModeAppend != 0 {
		h.pos = uint64(len(h.stage))
	}
	f.next++
	if f.next == 0 {
		f.next = 1
	}
	f.handles[f.next] = h
	return []*ua.Variant{ua.MustVariant(f.next)}, ua.StatusOK
}

func (f *file) handle(v *ua.Variant) (uint32, *fileHandle, ua.StatusCode) {
	hid := v.Value().(uint32)
	h, ok := f.handles[hid]
	if !ok {
		return 0, nil, ua.StatusBadInvalidArgument
	}
	return hid, h, ua.StatusOK
}

func (f *file) close(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	hid, h, st := f.handle(in[0])
	if st != ua.StatusOK {
		return nil, st
	}
	delete(f.handles, hid)
	if h.mode&FileModeWrite != 0 {
		f.data = h.stage
		f.commits++
	}
	return nil, ua.StatusOK
}

func (f *file) read(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	_, h, st := f.handle(in[0])
	if st != ua.StatusOK {
		return nil, st
	}
	n := in[1].Value().(int32)
	switch {
	case h.mode&FileModeRead == 0:
		return nil, ua.StatusBadInvalidState
	case n < 0:
		return nil, ua.StatusBadInvalidArgument
	}
	src := f.data
	if h.mode&FileModeWrite != 0 {
		src = h.stage // a read-write handle reads what it wrote
	}
	out := []byte{}
	if h.pos < uint64(len(src)) {
		end := min(uint64(len(src)), h.pos+uint64(n))
		out = append(out, src[h.pos:end]...)
		h.pos = end
	}
	return []*ua.Variant{ua.MustVariant(out)}, ua.StatusOK
}

func (f *file) write(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	_, h, st := f.handle(in[0])
	if st != ua.StatusOK {
		return nil, st
	}
	data, _ := in[1].Value().([]byte)
	switch {
	case h.mode&FileModeWrite == 0:
		return nil, ua.StatusBadInvalidState
	case h.pos+uint64(len(data)) > MaxFileSize:
		return nil, ua.StatusBadResourceUnavailable
	}
	end := int(h.pos) + len(data)
	if end > len(h.stage) {
		h.stage = append(h.stage, make([]byte, end-len(h.stage))...)
	}
	copy(h.stage[h.pos:], data)
	h.pos = uint64(end)
	return nil, ua.StatusOK
}

func (f *file) getPosition(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	_, h, st := f.handle(in[0])
	if st != ua.StatusOK {
		return nil, st
	}
	return []*ua.Variant{ua.MustVariant(h.pos)}, ua.StatusOK
}

func (f *file) setPosition(in []*ua.Variant) ([]*ua.Variant, ua.StatusCode) {
	_, h, st := f.handle(in[0])
	if st != ua.StatusOK {
		return nil, st
	}
	size := len(f.data)
	if h.mode&FileModeWrite != 0 {
		size = len(h.stage)
	}
	h.pos = min(in[1].Value().(uint64), uint64(size))
	return nil, ua.StatusOK
}
