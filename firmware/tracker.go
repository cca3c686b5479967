package firmware

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/brana-ot/brana/protocols/modbus"
)

// DefaultMaxTransfers is how many images one session may have in flight
// at once unless configured otherwise.
const DefaultMaxTransfers = 4

// OPC UA FileType Open mode bits (OPC 10000-5, C.2.1).
const (
	FileModeRead          = 0x1
	FileModeWrite         = 0x2
	FileModeEraseExisting = 0x4
	FileModeAppend        = 0x8
)

// Kind says which way an image travels.
type Kind uint8

const (
	KindFileRecords Kind = iota + 1 // Modbus FC 21 write file record, one image per file number
	KindWindow                      // Modbus writes into a register window
	KindFile                        // OPC UA FileType Write on an open file handle
)

func (k Kind) String() string {
	switch k {
	case KindFileRecords:
		return "modbus-file"
	case KindWindow:
		return "modbus-window"
	case KindFile:
		return "opcua-file"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Key names one transfer within a session.
type Key struct {
	Kind   Kind
	Unit   byte   // Modbus unit id
	File   uint16 // KindFileRecords: the file number; KindWindow: the window's start address
	Object string // KindFile: NodeId of the FileType object, as text
	Handle uint32 // KindFile: the file handle from Open or GenerateFileForWrite
}

func (k Key) String() string {
	switch k.Kind {
	case KindFileRecords:
		return fmt.Sprintf("modbus unit %d file %d", k.Unit, k.File)
	case KindWindow:
		return fmt.Sprintf("modbus unit %d register window at %d", k.Unit, k.File)
	case KindFile:
		return fmt.Sprintf("opcua file %s handle %d", k.Object, k.Handle)
	}
	return k.Kind.String()
}

// Status is what a transfer holds so far.
type Status struct {
	Key      Key
	SHA256   string // "" until complete
	Size     int64
	Complete bool
}

// Config configures a Tracker.
type Config struct {
	MaxImage     int64            // bytes per image; 0: DefaultMaxImage
	MaxTransfers int              // images in flight per session; 0: DefaultMaxTransfers
	Windows      []Window         // Modbus register windows that take images
	Now          func() time.Time // clock for the manifest's expiry at commit; nil: time.Now
}

// Tracker follows the image transfers of one session and checks them at
// commit. The relay feeds it each allowed request that carries image data
// before forwarding it; an error leaves the tracker unchanged and means the
// request should be refused, because brana could no longer tell what the
// PLC holds. At the commit step the relay calls Check (or CheckFile) and
// forwards the commit only if it returns no error.
//
// A Tracker is safe for concurrent use.
type Tracker struct {
	cfg Config

	mu        sync.Mutex
	transfers map[Key]*transfer
	aliases   map[Key]Key // TemporaryFileTransferType object and handle → the file's key
	seq       uint64      // counts writes, to list the latest transfer first
	records   []FileRecord
	words     [2 * 125]byte
}

type transfer struct {
	h     *Hasher
	pos   uint64 // KindFile: the handle's position
	seq   uint64 // when last written, to report the latest first
	wrote bool
}

// NewTracker checks cfg and returns a Tracker with no transfers.
func NewTracker(cfg Config) (*Tracker, error) {
	if cfg.MaxImage <= 0 {
		cfg.MaxImage = DefaultMaxImage
	}
	if cfg.MaxTransfers <= 0 {
		cfg.MaxTransfers = DefaultMaxTransfers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Windows = slices.Clone(cfg.Windows)
	for i, w := range cfg.Windows {
		switch {
		case w.Table != modbus.HoldingRegisters:
			return nil, fmt.Errorf("firmware: window %d: table %s; an image is written into holding registers", i, w.Table)
		case w.Count == 0 || uint32(w.Start)+uint32(w.Count) > 0x10000:
			return nil, fmt.Errorf("firmware: window %d: start %d count %d: want 1 or more registers ending by 65535", i, w.Start, w.Count)
		}
		for j, o := range cfg.Windows[:i] {
			if w.rng().Overlaps(o.rng()) {
				return nil, fmt.Errorf("firmware: windows %d and %d overlap", j, i)
			}
		}
	}
	return &Tracker{cfg: cfg, transfers: make(map[Key]*transfer), aliases: make(map[Key]Key)}, nil
}

// piece is one write into one transfer.
type piece struct {
	key  Key
	off  int64
	data []byte
}

// apply checks every piece against the transfers and each other, then
// writes them all, or none.
func (t *Tracker) apply(pieces []piece) error {
	var fresh []Key
	for i, p := range pieces {
		x := t.transfers[p.key]
		if x == nil && !slices.Contains(fresh, p.key) {
			fresh = append(fresh, p.key)
			if len(t.transfers)+len(fresh) > t.cfg.MaxTransfers {
				return fmt.Errorf("%w: %s would be number %d; the limit is %d", ErrTooMany, p.key, len(t.transfers)+len(fresh), t.cfg.MaxTransfers)
			}
		}
		h := &Hasher{max: t.cfg.MaxImage} // a new transfer: only the limit applies
		if x != nil {
			h = x.h
		}
		if err := h.Check(p.data, p.off); err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		// Pieces of one request may overlap each other too.
		for _, q := range pieces[:i] {
			if q.key == p.key {
				if err := sameBytes(q, p); err != nil {
					return fmt.Errorf("%s: %w", p.key, err)
				}
			}
		}
	}
	for _, p := range pieces {
		x := t.transfers[p.key]
		if x == nil {
			x = &transfer{h: NewHasher(t.cfg.MaxImage)}
			t.transfers[p.key] = x
		}
		x.h.write(p.data, p.off)
		t.seq++
		x.seq = t.seq
		x.wrote = true
	}
	return nil
}

func sameBytes(a, b piece) error {
	lo, hi := max(a.off, b.off), min(a.off+int64(len(a.data)), b.off+int64(len(b.data)))
	for o := lo; o < hi; o++ {
		if x, y := a.data[o-a.off], b.data[o-b.off]; x != y {
			return fmt.Errorf("%w: byte %d is %#02x and %#02x in one request", ErrOverlap, o, x, y)
		}
	}
	return nil
}

// WriteFileRecords feeds an FC 21 (write file record) request: each record
// goes into the image of its file number at byte offset record × 2.
func (t *Tracker) WriteFileRecords(req *modbus.Request) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	t.records, err = AppendFileRecords(t.records[:0], req)
	if err != nil {
		return err
	}
	pieces := make([]piece, 0, len(t.records))
	for _, r := range t.records {
		if len(r.Data) > 0 {
			pieces = append(pieces, piece{Key{Kind: KindFileRecords, Unit: req.Unit, File: r.File}, r.Offset(), r.Data})
		}
	}
	return t.apply(pieces)
}

// WriteRegisters feeds a register write (FC 6, 16, 22, 23). It reports
// whether the write falls into a configured window; a write that lies
// partly outside a window (ErrWindowEdge) or masks bits in one (FC 22,
// ErrMasked, whose result depends on what the PLC holds) is refused.
// Writes elsewhere are not image data and are ignored.
func (t *Tracker) WriteRegisters(req *modbus.Request) (bool, error) {
	w := req.Write
	if w.Table != modbus.HoldingRegisters || w.Count == 0 {
		return false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, win := range t.cfg.Windows {
		r := win.rng()
		if !r.Overlaps(w) {
			continue
		}
		if !r.Contains(w) {
			return true, fmt.Errorf("%w: registers %d-%d, window %d-%d", ErrWindowEdge, w.Start, w.End(), r.Start, r.End())
		}
		if req.Masked || req.Values.Len() != int(w.Count) || req.Values.Coils() {
			return true, fmt.Errorf("%w: registers %d-%d", ErrMasked, w.Start, w.End())
		}
		n := req.Values.Len()
		if 2*n > len(t.words) {
			return true, fmt.Errorf("%w: %d registers in one write", ErrRequest, n)
		}
		for i := range n {
			v := req.Values.At(i)
			t.words[2*i], t.words[2*i+1] = byte(v>>8), byte(v)
		}
		data := t.words[:2*n]
		key := Key{Kind: KindWindow, Unit: req.Unit, File: win.Start}
		return true, t.apply([]piece{{key, int64(w.Start-win.Start) * 2, data}})
	}
	return false, nil
}

func fileKey(object string, handle uint32) Key {
	return Key{Kind: KindFile, Object: object, Handle: handle}
}

// FileOpened records the handle that a FileType Open (on object, with
// mode) returned. A read-only open is not tracked. An open for writing
// must erase the file and not append (mode Write|EraseExisting, 0x6):
// otherwise the file would be the old contents with the new bytes laid
// over them, and its hash would not be the hash of what passed through
// (ErrOpenMode; refuse the Open).
func (t *Tracker) FileOpened(object string, handle uint32, mode byte) error {
	if mode&FileModeWrite == 0 {
		return nil
	}
	if mode&FileModeEraseExisting == 0 || mode&FileModeAppend != 0 {
		return fmt.Errorf("%w: mode %#x on %s; open with Write|EraseExisting (0x6)", ErrOpenMode, mode, object)
	}
	return t.newFile(fileKey(object, handle))
}

// FileGenerated records a file from TemporaryFileTransferType
// GenerateFileForWrite, called on transferObject, which returned the new
// file's object and handle. The file is new, so nothing old remains in it.
// The handle then names the transfer both on the file (Write, SetPosition)
// and on the transfer object (CloseAndCommit).
func (t *Tracker) FileGenerated(transferObject, fileObject string, handle uint32) error {
	k := fileKey(fileObject, handle)
	if err := t.newFile(k); err != nil {
		return err
	}
	t.mu.Lock()
	t.aliases[fileKey(transferObject, handle)] = k
	t.mu.Unlock()
	return nil
}

func (t *Tracker) newFile(k Key) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.transfers[k]; !ok && len(t.transfers) >= t.cfg.MaxTransfers {
		return fmt.Errorf("%w: %s; the limit is %d", ErrTooMany, k, t.cfg.MaxTransfers)
	}
	// A handle number the server hands out again starts a new transfer.
	t.transfers[k] = &transfer{h: NewHasher(t.cfg.MaxImage)}
	return nil
}

// resolve maps a TemporaryFileTransferType object and handle to the file's
// key.
func (t *Tracker) resolve(k Key) Key {
	if a, ok := t.aliases[k]; ok {
		return a
	}
	return k
}

// FileSetPosition moves a tracked handle, as FileType SetPosition does.
func (t *Tracker) FileSetPosition(object string, handle uint32, pos uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.transfers[t.resolve(fileKey(object, handle))]
	if x == nil {
		return fmt.Errorf("%w: %s handle %d", ErrHandle, object, handle)
	}
	x.pos = pos
	return nil
}

// FileWrite feeds a FileType Write on a tracked handle: data goes at the
// handle's position, which then moves past it. A Write on a handle that
// was not recorded as open for writing is ErrHandle: brana cannot tell
// what it changes.
func (t *Tracker) FileWrite(object string, handle uint32, data []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.resolve(fileKey(object, handle))
	x := t.transfers[k]
	if x == nil {
		return fmt.Errorf("%w: %s handle %d", ErrHandle, object, handle)
	}
	if x.pos > uint64(t.cfg.MaxImage) {
		return fmt.Errorf("%s: %w: position %d is past the limit of %d bytes", k, ErrTooLarge, x.pos, t.cfg.MaxImage)
	}
	if err := t.apply([]piece{{k, int64(x.pos), data}}); err != nil {
		return err
	}
	x.pos += uint64(len(data))
	return nil
}

// FileClosed forgets a handle once its Close (or CloseAndCommit) has been
// answered.
func (t *Tracker) FileClosed(object string, handle uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.resolve(fileKey(object, handle))
	delete(t.transfers, k)
	for a, v := range t.aliases {
		if v == k {
			delete(t.aliases, a)
		}
	}
}

// Check is the commit check for a session that commits one image, as a
// Modbus device does with a write to its commit register: the one transfer
// that holds data must be a complete image listed in m, and m must not
// have expired. With no transfer it is ErrNoTransfer; with more than one,
// ErrSeveral, since the commit cannot say which image it means.
//
// It returns the approved image, the hash and the size. On an error the
// hash and size are still returned when known, for the audit record.
func (t *Tracker) Check(m *Manifest) (*Image, string, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []Key
	for k, x := range t.transfers {
		if x.wrote {
			keys = append(keys, k)
		}
	}
	switch len(keys) {
	case 0:
		return nil, "", 0, ErrNoTransfer
	case 1:
		return t.check(keys[0], m)
	}
	slices.SortFunc(keys, compareKeys)
	return nil, "", 0, fmt.Errorf("%w: %s and %d more", ErrSeveral, keys[0], len(keys)-1)
}

// CheckKey is Check for one transfer.
func (t *Tracker) CheckKey(k Key, m *Manifest) (*Image, string, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.check(t.resolve(k), m)
}

// CheckFile is Check for an OPC UA file handle, at FileType Close or at
// TemporaryFileTransferType CloseAndCommit; object is the file's or the
// transfer object's NodeId.
func (t *Tracker) CheckFile(object string, handle uint32, m *Manifest) (*Image, string, int64, error) {
	return t.CheckKey(fileKey(object, handle), m)
}

func (t *Tracker) check(k Key, m *Manifest) (*Image, string, int64, error) {
	x := t.transfers[k]
	if x == nil || !x.wrote {
		return nil, "", 0, fmt.Errorf("%w: %s", ErrNoTransfer, k)
	}
	sum, size, err := x.h.Commit()
	if err != nil {
		return nil, sum, size, fmt.Errorf("%s: %w", k, err)
	}
	switch {
	case m == nil:
		return nil, sum, size, ErrNoManifest
	case !t.cfg.Now().Before(m.Expires):
		return nil, sum, size, fmt.Errorf("%w: serial %d expired at %s", ErrExpired, m.Serial, m.Expires.UTC().Format(time.RFC3339))
	}
	im, ok := m.Lookup(sum, size)
	if !ok {
		return nil, sum, size, fmt.Errorf("%w: %s: sha256 %s, %d bytes (manifest serial %d)", ErrNotApproved, k, sum, size, m.Serial)
	}
	return im, sum, size, nil
}

// Transfers lists the transfers in flight, the latest written first.
func (t *Tracker) Transfers() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	type entry struct {
		s   Status
		seq uint64
	}
	var es []entry
	for k, x := range t.transfers {
		sum, size, ok := x.h.Sum()
		es = append(es, entry{Status{Key: k, SHA256: sum, Size: size, Complete: ok}, x.seq})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(b.seq, a.seq); c != 0 {
			return c
		}
		return compareKeys(a.s.Key, b.s.Key)
	})
	out := make([]Status, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

// Remove forgets one transfer, e.g. after its commit was answered.
func (t *Tracker) Remove(k Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k = t.resolve(k)
	delete(t.transfers, k)
	for a, v := range t.aliases {
		if v == k {
			delete(t.aliases, a)
		}
	}
}

// Reset forgets every transfer, e.g. after a Modbus commit was answered.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.transfers)
	clear(t.aliases)
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Unit, b.Unit),
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Object, b.Object),
		cmp.Compare(a.Handle, b.Handle),
	)
}
