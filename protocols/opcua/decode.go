package opcua

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// gopcua v0.8.0's ua.Decode allocates every array before it reads a single
// element (a count of 2^31 costs gigabytes), panics on a Variant array
// length below -1, recurses without limit and builds a new Go type per
// Variant array dimension. DecodeRequest and DecodeResponse therefore walk
// the body first, mirroring the decoder, and hand it to ua.Decode only when
// every count is backed by input and every element is really there.

// maxDepth bounds the nesting the walker follows (structures, arrays,
// Variants, DataValues, ExtensionObject bodies, inner DiagnosticInfos).
// gopcua recurses once per level without limit, and Go cannot recover from
// a stack overflow; real messages stay far below this.
const maxDepth = 100

// maxArrayDimensions bounds a Variant's ArrayDimensions: gopcua builds a
// nested slice type per dimension, which reflect caches for good.
const maxArrayDimensions = 32

// bigCount separates the hazards from the merely malformed: a count beyond
// the remaining input up to this size costs gopcua a small allocation only.
// Both are refused; the distinction is for tests and audit.
const bigCount = 1 << 12

// CodecError is why DecodeRequest, DecodeResponse, EncodeRequest or
// EncodeResponse refused a message. It wraps Status and, if gopcua reported
// the problem itself, Err: errors.Is(err, ua.StatusBadDecodingError) works.
type CodecError struct {
	Op string // "decode" or "encode"
	// Status is ua.StatusBadDecodingError or ua.StatusBadEncodingError for a
	// malformed message, ua.StatusBadServiceUnsupported for a service gopcua
	// does not know (or a response where a request belongs), and
	// ua.StatusBadDataTypeIDUnknown for an ExtensionObject of a type gopcua
	// does not know (it would drop the body).
	Status ua.StatusCode
	TypeID string // the service's encoding id, e.g. "i=631"; "" if unknown
	Type   string // the gopcua type, e.g. "ReadRequest"; "" if unknown
	Field  string // where in the message, e.g. "NodesToRead[2].NodeID"
	Offset int    // byte offset in the body (type id included); -1 if none
	Reason string // what is wrong
	Err    error  // gopcua's own error, if it reported one

	hazard   bool // ua.Decode would have allocated far past the input or panicked
	panicked bool // gopcua panicked and was recovered: a gap in the guard
}

func (e *CodecError) Error() string {
	var b strings.Builder
	b.WriteString("opcua: " + e.Op + " ")
	switch {
	case e.Type != "" && e.TypeID != "":
		b.WriteString(e.Type + " (" + e.TypeID + ")")
	case e.Type != "":
		b.WriteString(e.Type)
	case e.TypeID != "":
		b.WriteString("service " + e.TypeID)
	default:
		b.WriteString("service")
	}
	if e.Field != "" {
		b.WriteString(" " + e.Field)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": " + e.Reason)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	name := fmt.Sprintf("0x%08X", uint32(e.Status))
	if d, ok := ua.StatusCodes[e.Status]; ok {
		name = d.Name
	}
	b.WriteString(" (" + name + ")")
	return b.String()
}

func (e *CodecError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Status, e.Err}
	}
	return []error{e.Status}
}

var (
	typRequest  = reflect.TypeOf((*ua.Request)(nil)).Elem()
	typResponse = reflect.TypeOf((*ua.Response)(nil)).Elem()
)

// DecodeRequest decodes one service request body as it follows the sequence
// header of a MSG (or OPN) chunk: the ExpandedNodeId of its encoding, then
// the request. Bytes after the request are ignored. It never panics and
// never lets gopcua allocate much beyond what the body holds; every error
// is a *CodecError: BadServiceUnsupported for an encoding id gopcua does not
// know or that is not a request's, BadDecodingError for a malformed, truncated
// or hostile body, BadDataTypeIdUnknown for an ExtensionObject gopcua cannot
// carry. A request it returns re-encodes (EncodeRequest) to the same bytes.
func DecodeRequest(body []byte) (ua.Request, error) {
	v, err := decodeService(body, typRequest, "request")
	if err != nil {
		return nil, err
	}
	return v.(ua.Request), nil
}

// DecodeResponse is DecodeRequest for a server's response body (a
// ServiceFault is a response too).
func DecodeResponse(body []byte) (ua.Response, error) {
	v, err := decodeService(body, typResponse, "response")
	if err != nil {
		return nil, err
	}
	return v.(ua.Response), nil
}

func decodeService(body []byte, want reflect.Type, what string) (any, error) {
	var typeID ua.ExpandedNodeID
	n, err := typeID.Decode(body)
	if err != nil {
		return nil, &CodecError{Op: "decode", Status: ua.StatusBadDecodingError, Reason: "no service encoding id", Err: err}
	}
	fail := func(status ua.StatusCode, typ string, reason string) *CodecError {
		return &CodecError{Op: "decode", Status: status, TypeID: expandedString(&typeID), Type: typ, Reason: reason}
	}
	// gopcua looks services up by the NodeId alone; a URI or server index
	// would name another server's type, so refuse rather than guess.
	if typeID.HasNamespaceURI() || typeID.HasServerIndex() {
		return nil, fail(ua.StatusBadServiceUnsupported, "", "a service encoding id with a namespace URI or server index")
	}
	t := services.lookup(typeID.NodeID, body[:n])
	if t == nil {
		return nil, fail(ua.StatusBadServiceUnsupported, "", "unknown service encoding id")
	}
	name := t.Elem().Name()
	if !t.Implements(want) {
		// gopcua registers CallMethodRequest and the MonitoredItem
		// create and modify requests as services too.
		return nil, fail(ua.StatusBadServiceUnsupported, name, "not a "+what)
	}
	rest := body[n:]
	if werr := checkBody(rest, t); werr != nil {
		e := werr.codecError("decode", name)
		e.TypeID = expandedString(&typeID)
		e.Offset += n
		return nil, e
	}
	v := reflect.New(t.Elem()).Interface()
	if err := safeDecode(rest, v); err != nil {
		e := fail(ua.StatusBadDecodingError, name, "gopcua")
		e.Offset, e.Err, e.panicked = -1, err, errors.As(err, new(panicError))
		return nil, e
	}
	return v, nil
}

// registry finds the types gopcua registered (services, ExtensionObjects)
// by probing: gopcua has no lookup by id. It caches the answers for numeric
// ids in namespace 0, what peers send; unknown ids are not cached, so the
// cache stays as small as gopcua's registry, which never re-registers an id
// as another type.
type registry struct {
	probe func(idBytes []byte) any // a new value of the type, or nil
	cache sync.Map                 // uint32 → reflect.Type
}

// lookup returns the type registered for nid (encoded as idBytes), or nil.
func (r *registry) lookup(nid *ua.NodeID, idBytes []byte) reflect.Type {
	numeric := nid.Namespace() == 0 &&
		(nid.Type() == ua.NodeIDTypeTwoByte || nid.Type() == ua.NodeIDTypeFourByte || nid.Type() == ua.NodeIDTypeNumeric)
	if numeric {
		if t, ok := r.cache.Load(nid.IntID()); ok {
			return t.(reflect.Type)
		}
	}
	v := r.probe(idBytes)
	if v == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if numeric {
		r.cache.Store(nid.IntID(), t)
	}
	return t
}

var (
	// services probes with ua.DecodeService and nothing after the id: it
	// allocates the registered type and fails at its first field, before
	// it could allocate anything else.
	services = registry{probe: func(idBytes []byte) any {
		_, v, _ := ua.DecodeService(idBytes)
		return v
	}}
	// extensionObjects probes with an ExtensionObject of that TypeId and a
	// one-byte body of zero, which cannot hold a count.
	extensionObjects = registry{probe: func(idBytes []byte) any {
		var e ua.ExtensionObject
		_, _ = e.Decode(append(append(make([]byte, 0, len(idBytes)+6), idBytes...), ua.ExtensionObjectBinary, 1, 0, 0, 0, 0))
		return e.Value
	}}
)

// panicError is a panic of gopcua, recovered: the walker should have
// refused whatever caused it, but a gap must not crash the gateway.
type panicError struct{ v any }

func (e panicError) Error() string { return fmt.Sprintf("panic: %v", e.v) }

func safeDecode(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError{r}
		}
	}()
	_, err = ua.Decode(b, v)
	return err
}

func safeEncode(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, panicError{r}
		}
	}()
	return ua.Encode(v)
}

// EncodeRequest appends the encoding id of req (as a four-byte NodeId) and
// the encoded request to dst, as the body of a MSG chunk after its sequence
// header. On error dst is returned unchanged and the error is a *CodecError:
// BadServiceUnsupported for a type gopcua did not register, BadEncodingError
// for a value gopcua v0.8.0 would encode wrongly (a nil NodeId, header or
// structure, which it writes as nothing or panics on; a Variant array of
// ByteStrings, whose elements it drops).
func EncodeRequest(dst []byte, req ua.Request) ([]byte, error) {
	return encodeService(dst, req, "request")
}

// EncodeResponse is EncodeRequest for a response. Note that a
// ResponseHeader needs a non-nil ServiceDiagnostics (an empty
// &ua.DiagnosticInfo{} will do).
func EncodeResponse(dst []byte, resp ua.Response) ([]byte, error) {
	return encodeService(dst, resp, "response")
}

func encodeService(dst []byte, v any, what string) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if v == nil || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return dst, &CodecError{Op: "encode", Status: ua.StatusBadEncodingError, Offset: -1, Reason: "nil " + what}
	}
	name := rv.Type().Elem().Name()
	id := ua.ServiceTypeID(v)
	if id == 0 {
		return dst, &CodecError{Op: "encode", Status: ua.StatusBadServiceUnsupported, Type: name, Offset: -1, Reason: "not a service gopcua knows"}
	}
	tid := ua.NewFourByteExpandedNodeID(0, id)
	if werr := encodable(rv, 0); werr != nil {
		e := werr.codecError("encode", name)
		e.TypeID = tid.String()
		return dst, e
	}
	head, err := tid.Encode()
	if err != nil {
		return dst, &CodecError{Op: "encode", Status: ua.StatusBadEncodingError, TypeID: tid.String(), Type: name, Offset: -1, Reason: "gopcua", Err: err}
	}
	b, err := safeEncode(v)
	if err != nil {
		return dst, &CodecError{Op: "encode", Status: ua.StatusBadEncodingError, TypeID: tid.String(), Type: name, Offset: -1,
			Reason: "gopcua", Err: err, panicked: errors.As(err, new(panicError))}
	}
	return append(append(dst, head...), b...), nil
}

// walkError is what the walker (or the encoder check) found. path is built
// while the error travels up, innermost segment first.
type walkError struct {
	off    int // offset in the walked bytes; -1 when checking a value
	status ua.StatusCode
	reason string
	err    error
	hazard bool
	path   []string
}

func (e *walkError) in(seg string) *walkError {
	e.path = append(e.path, seg)
	return e
}

func (e *walkError) field() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
	}
	return strings.TrimPrefix(b.String(), ".")
}

func (e *walkError) codecError(op, typ string) *CodecError {
	status := e.status
	if status == 0 {
		status = ua.StatusBadDecodingError
		if op == "encode" {
			status = ua.StatusBadEncodingError
		}
	}
	return &CodecError{Op: op, Status: status, Type: typ, Field: e.field(), Offset: e.off,
		Reason: e.reason, Err: e.err, hazard: e.hazard}
}

// checkBody walks b as ua.Decode of gopcua v0.8.0 would decode it into a
// value of t (a pointer type), and reports the first thing that is
// truncated, malformed, beyond what gopcua can carry, or hazardous: an array
// count beyond the remaining input (allocated before any element is read),
// a Variant array length below -1 (a panic), nesting beyond maxDepth. Once
// it returns nil, every array gopcua allocates is backed by elements that
// are present in b, so the decode costs memory in proportion to b.
func checkBody(b []byte, t reflect.Type) *walkError {
	w := walker{end: cap(b)}
	_, err := w.walk(b, t, 0)
	return err
}

type walker struct {
	// end is cap of the walked body: every slice walked shares its end, so
	// end-cap(b) is b's offset, without threading offsets through.
	end int
}

func (w *walker) off(b []byte) int { return w.end - cap(b) }

func (w *walker) bad(b []byte, format string, args ...any) *walkError {
	return &walkError{off: w.off(b), reason: fmt.Sprintf(format, args...)}
}

func (w *walker) hazard(b []byte, format string, args ...any) *walkError {
	e := w.bad(b, format, args...)
	e.hazard = true
	return e
}

func (w *walker) short(b []byte, need int, what string) *walkError {
	return w.bad(b, "truncated: %s needs %d bytes, %d left", what, need, len(b))
}

// gopcua wraps an error of one of gopcua's own Decode methods.
func (w *walker) gopcua(b []byte, what string, err error) *walkError {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return w.bad(b, "truncated %s", what)
	}
	e := w.bad(b, "invalid %s", what)
	e.err = err
	return e
}

var (
	binaryDecoder = reflect.TypeOf((*ua.BinaryDecoder)(nil)).Elem()
	binaryEncoder = reflect.TypeOf((*ua.BinaryEncoder)(nil)).Elem()
	typTime       = reflect.TypeOf(time.Time{})
	typNodeID     = reflect.TypeOf((*ua.NodeID)(nil))
	typExpanded   = reflect.TypeOf((*ua.ExpandedNodeID)(nil))
	typLT         = reflect.TypeOf((*ua.LocalizedText)(nil))
	typGUID       = reflect.TypeOf((*ua.GUID)(nil))
	typQN         = reflect.TypeOf((*ua.QualifiedName)(nil))
	typVariant    = reflect.TypeOf((*ua.Variant)(nil))
	typDV         = reflect.TypeOf((*ua.DataValue)(nil))
	typExt        = reflect.TypeOf((*ua.ExtensionObject)(nil))
	typDiag       = reflect.TypeOf((*ua.DiagnosticInfo)(nil))
)

// walk mirrors gopcua's decode: its own Decode methods first, then
// time.Time, then reflection by kind.
func (w *walker) walk(b []byte, t reflect.Type, depth int) (int, *walkError) {
	if depth > maxDepth {
		return 0, w.hazard(b, "nested deeper than %d levels", maxDepth)
	}
	info := infoOf(t)
	if info.decoder {
		return w.custom(b, t, depth)
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Uint8:
		return w.fixed(b, 1, t)
	case reflect.Int16, reflect.Uint16:
		return w.fixed(b, 2, t)
	case reflect.Int32, reflect.Uint32, reflect.Float32:
		return w.fixed(b, 4, t)
	case reflect.Int64, reflect.Uint64, reflect.Float64:
		return w.fixed(b, 8, t)
	case reflect.String:
		return w.bytes(b, "String")
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			// gopcua allocates the outer pointer only and then
			// dereferences a nil one.
			return 0, w.hazard(b, "gopcua cannot decode a %s", t)
		}
		return w.walk(b, t.Elem(), depth)
	case reflect.Struct:
		if t.ConvertibleTo(typTime) {
			return w.fixed(b, 8, t)
		}
		pos := 0
		for _, f := range info.fields {
			if !f.IsExported() {
				// reflect refuses to set it: gopcua panics.
				return pos, w.hazard(b[pos:], "gopcua cannot decode unexported field %s.%s", t.Name(), f.Name)
			}
			n, err := w.walk(b[pos:], f.Type, depth+1)
			if err != nil {
				return pos, err.in("." + f.Name)
			}
			pos += n
		}
		return pos, nil
	case reflect.Slice:
		return w.slice(b, t, depth)
	}
	// gopcua answers the other kinds with an error of its own.
	return 0, w.bad(b, "gopcua cannot decode a %s", t)
}

// typeInfo is what the walker asks of a type, cached: reflect's Implements
// and Field cost more than the rest of the walk.
type typeInfo struct {
	decoder bool                  // implements ua.BinaryDecoder
	fields  []reflect.StructField // of a struct
}

var typeInfos sync.Map // reflect.Type → *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if v, ok := typeInfos.Load(t); ok {
		return v.(*typeInfo)
	}
	info := &typeInfo{decoder: t.Implements(binaryDecoder)}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			info.fields = append(info.fields, t.Field(i))
		}
	}
	v, _ := typeInfos.LoadOrStore(t, info)
	return v.(*typeInfo)
}

func (w *walker) fixed(b []byte, n int, t reflect.Type) (int, *walkError) {
	if len(b) < n {
		return 0, w.short(b, n, t.String())
	}
	return n, nil
}

// bytes walks a String, ByteString or XmlElement: a length, -1 for null,
// and the bytes.
func (w *walker) bytes(b []byte, what string) (int, *walkError) {
	if len(b) < 4 {
		return 0, w.short(b, 4, what)
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n == math.MaxUint32 {
		return 4, nil
	}
	if int64(n) > int64(len(b)-4) {
		return 0, w.bad(b, "truncated: %s of %d bytes, %d left", what, n, len(b)-4)
	}
	return 4 + int(n), nil
}

func (w *walker) slice(b []byte, t reflect.Type, depth int) (int, *walkError) {
	if len(b) < 4 {
		return 0, w.short(b, 4, "array count")
	}
	n := binary.LittleEndian.Uint32(b)
	if n == math.MaxUint32 {
		return 4, nil
	}
	if t.Elem().Kind() == reflect.Uint8 {
		return w.bytes(b, "ByteString")
	}
	// Every element takes a byte at least, so a count beyond the input
	// cannot decode; gopcua would allocate it first all the same (up to
	// 2^31-1; above it refuses).
	if int64(n) > int64(len(b)-4) {
		e := w.bad(b, "array count %d exceeds the %d bytes left", n, len(b)-4)
		e.hazard = n > bigCount && n <= math.MaxInt32
		return 0, e
	}
	pos := 4
	for i := range int(n) {
		m, err := w.walk(b[pos:], t.Elem(), depth+1)
		if err != nil {
			return pos, err.in(fmt.Sprintf("[%d]", i))
		}
		pos += m
	}
	return pos, nil
}

// custom walks the types gopcua decodes with their own Decode methods.
// The flat ones are simply decoded: they allocate no more than their input.
func (w *walker) custom(b []byte, t reflect.Type, depth int) (int, *walkError) {
	var n int
	var err error
	switch t {
	case typNodeID:
		n, err = new(ua.NodeID).Decode(b)
	case typExpanded:
		n, err = new(ua.ExpandedNodeID).Decode(b)
	case typLT:
		n, err = new(ua.LocalizedText).Decode(b)
	case typGUID:
		return w.fixed(b, 16, t)
	case typVariant:
		return w.variant(b, depth)
	case typDV:
		return w.dataValue(b, depth)
	case typExt:
		return w.extension(b, depth)
	case typDiag:
		return w.diagnosticInfo(b, depth)
	default:
		return 0, w.hazard(b, "gopcua decodes %s with a method the guard does not know", t)
	}
	if err != nil {
		return 0, w.gopcua(b, t.Elem().Name(), err)
	}
	return n, nil
}

// variantSize is the encoded size of the fixed-size Variant built-in types.
var variantSize = [26]int{1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8, 14: 16, 19: 4}

// variantType is the type gopcua decodes the other built-in types into.
var variantType = [26]reflect.Type{17: typNodeID, 18: typExpanded, 20: typQN, 21: typLT, 22: typExt, 23: typDV, 24: typVariant, 25: typDiag}

const (
	variantByteString = 15
	variantMaxType    = 25
)

func (w *walker) variantValue(b []byte, typ byte, depth int) (int, *walkError) {
	if n := variantSize[typ]; n > 0 {
		if len(b) < n {
			return 0, w.short(b, n, fmt.Sprintf("Variant of type %d", typ))
		}
		return n, nil
	}
	if t := variantType[typ]; t != nil {
		return w.walk(b, t, depth)
	}
	return w.bytes(b, "String") // String, ByteString, XmlElement
}

func (w *walker) variant(b []byte, depth int) (int, *walkError) {
	if len(b) < 1 {
		return 0, w.short(b, 1, "Variant")
	}
	mask := b[0]
	typ := mask & 0x3f
	if typ == 0 {
		return 1, nil // null: gopcua ignores the array bits
	}
	if typ > variantMaxType {
		return 0, w.bad(b, "Variant of type %d, which is no built-in type", typ)
	}
	if mask&ua.VariantArrayValues == 0 {
		if mask&ua.VariantArrayDimensions != 0 {
			// gopcua ignores the flag decoding and writes dimensions
			// encoding: the re-encoded value would not read back.
			return 0, w.bad(b, "Variant with array dimensions but no array")
		}
		n, err := w.variantValue(b[1:], typ, depth+1)
		return 1 + n, err
	}
	if len(b) < 5 {
		return 0, w.short(b, 5, "Variant array")
	}
	n := int32(binary.LittleEndian.Uint32(b[1:]))
	pos := 5
	switch {
	case int64(n) > int64(ua.MaxVariantArrayLength):
		return 0, w.bad(b, "Variant array length %d exceeds gopcua's limit of %d", n, ua.MaxVariantArrayLength)
	case n < -1:
		return 0, w.hazard(b, "Variant array length %d is negative", n) // reflect.MakeSlice panics
	case int64(n) > int64(len(b)-pos):
		e := w.bad(b, "Variant array length %d exceeds the %d bytes left", n, len(b)-pos)
		e.hazard = n > bigCount
		return 0, e
	case typ == variantByteString && n > 0:
		// gopcua decodes it, but encodes the array without its elements:
		// forwarding it would corrupt the stream.
		return 0, w.bad(b, "a Variant array of %d ByteStrings, which gopcua v0.8.0 cannot re-encode", n)
	}
	for i := range int(max(n, 0)) {
		m, err := w.variantValue(b[pos:], typ, depth+1)
		if err != nil {
			return pos, err.in(fmt.Sprintf("[%d]", i))
		}
		pos += m
	}
	if mask&ua.VariantArrayDimensions == 0 {
		return pos, nil
	}
	if len(b) < pos+4 {
		return 0, w.short(b[pos:], 4, "Variant array dimension count")
	}
	dims := int32(binary.LittleEndian.Uint32(b[pos:]))
	switch {
	case dims < 0:
		return 0, w.bad(b[pos:], "Variant array dimension count %d is negative", dims)
	case dims > maxArrayDimensions:
		// gopcua allocates the dimensions before reading them, and
		// builds a Go type per dimension.
		return 0, w.hazard(b[pos:], "Variant array of %d dimensions; at most %d", dims, maxArrayDimensions)
	}
	pos += 4
	if len(b)-pos < 4*int(dims) {
		return 0, w.short(b[pos:], 4*int(dims), "Variant array dimensions")
	}
	// gopcua compares the product in int32; one that wraps around to the
	// length passes, and then splitting the values into dimensions of
	// billions costs billions of steps.
	prod, wrapped := int64(1), int32(1)
	for range dims {
		d := int32(binary.LittleEndian.Uint32(b[pos:]))
		if d < 1 {
			return 0, w.bad(b[pos:], "Variant array dimension %d is not positive", d)
		}
		wrapped *= d
		if prod <= math.MaxInt32 {
			prod *= int64(d)
		}
		pos += 4
	}
	if dims > 0 && prod != int64(n) {
		e := w.bad(b, "Variant array dimensions do not multiply to its length %d", n)
		e.hazard = wrapped == n
		return 0, e
	}
	return pos, nil
}

func (w *walker) dataValue(b []byte, depth int) (int, *walkError) {
	if len(b) < 1 {
		return 0, w.short(b, 1, "DataValue")
	}
	mask, pos := b[0], 1
	if mask&ua.DataValueValue != 0 {
		n, err := w.walk(b[pos:], typVariant, depth+1)
		if err != nil {
			return pos, err.in(".Value")
		}
		pos += n
	}
	for _, f := range [...]struct {
		bit  byte
		size int
	}{{ua.DataValueStatusCode, 4}, {ua.DataValueSourceTimestamp, 8}, {ua.DataValueSourcePicoseconds, 2},
		{ua.DataValueServerTimestamp, 8}, {ua.DataValueServerPicoseconds, 2}} {
		if mask&f.bit != 0 {
			if len(b) < pos+f.size {
				return 0, w.short(b[pos:], f.size, "DataValue field")
			}
			pos += f.size
		}
	}
	return pos, nil
}

func (w *walker) diagnosticInfo(b []byte, depth int) (int, *walkError) {
	if len(b) < 1 {
		return 0, w.short(b, 1, "DiagnosticInfo")
	}
	mask, pos := b[0], 1
	for _, bit := range [...]byte{ua.DiagnosticInfoSymbolicID, ua.DiagnosticInfoNamespaceURI,
		ua.DiagnosticInfoLocale, ua.DiagnosticInfoLocalizedText} {
		if mask&bit != 0 {
			if len(b) < pos+4 {
				return 0, w.short(b[pos:], 4, "DiagnosticInfo field")
			}
			pos += 4
		}
	}
	if mask&ua.DiagnosticInfoAdditionalInfo != 0 {
		n, err := w.bytes(b[pos:], "String")
		if err != nil {
			return pos, err.in(".AdditionalInfo")
		}
		pos += n
	}
	if mask&ua.DiagnosticInfoInnerStatusCode != 0 {
		if len(b) < pos+4 {
			return 0, w.short(b[pos:], 4, "DiagnosticInfo field")
		}
		pos += 4
	}
	if mask&ua.DiagnosticInfoInnerDiagnosticInfo != 0 {
		n, err := w.walk(b[pos:], typDiag, depth+1)
		if err != nil {
			return pos, err.in(".InnerDiagnosticInfo")
		}
		pos += n
	}
	return pos, nil
}

// extension walks an ExtensionObject: gopcua decodes its body as the type
// registered for its TypeId.
func (w *walker) extension(b []byte, depth int) (int, *walkError) {
	var typeID ua.ExpandedNodeID
	idLen, err := typeID.Decode(b)
	if err != nil {
		return 0, w.gopcua(b, "ExtensionObject TypeId", err)
	}
	pos := idLen
	if len(b) < pos+1 {
		return 0, w.short(b[pos:], 1, "ExtensionObject encoding")
	}
	mask := b[pos]
	pos++
	switch mask {
	case ua.ExtensionObjectEmpty:
		return pos, nil
	case ua.ExtensionObjectBinary, ua.ExtensionObjectXML:
	default:
		// Part 6 defines 0, 1 and 2 only; gopcua would keep the byte and
		// re-encode the object without its body.
		return 0, w.bad(b[pos-1:], "ExtensionObject %s with unknown encoding %d", expandedString(&typeID), mask)
	}
	if len(b) < pos+4 {
		return 0, w.short(b[pos:], 4, "ExtensionObject length")
	}
	n := binary.LittleEndian.Uint32(b[pos:])
	if n == 0 || n == math.MaxUint32 {
		// gopcua leaves the value nil and then panics re-encoding it.
		return 0, w.bad(b, "ExtensionObject %s with encoding %d but no body", expandedString(&typeID), mask)
	}
	pos += 4
	if int64(n) > int64(len(b)-pos) {
		return 0, w.bad(b[pos:], "truncated: ExtensionObject body of %d bytes, %d left", n, len(b)-pos)
	}
	body := b[pos : pos+int(n)]
	if mask == ua.ExtensionObjectXML {
		// gopcua reads an XmlElement, length and all, inside the body.
		if _, err := w.bytes(body, "XmlElement"); err != nil {
			return pos, err.in(".Value")
		}
		return pos + int(n), nil
	}
	t := extensionObjects.lookup(typeID.NodeID, b[:idLen])
	if t == nil {
		// gopcua would drop the body: the request could not be forwarded
		// as it was sent.
		we := w.bad(b, "ExtensionObject of type %s, which gopcua v0.8.0 does not know", expandedString(&typeID))
		we.status = ua.StatusBadDataTypeIDUnknown
		return 0, we
	}
	if _, err := w.walk(body, t, depth+1); err != nil {
		return pos, err.in(".(" + t.String() + ")")
	}
	return pos + int(n), nil
}

// expandedString is e as OPC UA writes it: gopcua's String leaves out the
// namespace URI and the server index.
func expandedString(e *ua.ExpandedNodeID) string {
	s := e.NodeID.String()
	if e.HasNamespaceURI() {
		s = "nsu=" + e.NamespaceURI + ";" + s
	}
	if e.HasServerIndex() {
		s = fmt.Sprintf("svr=%d;%s", e.ServerIndex, s)
	}
	return s
}

// encodable reports the first thing in v that gopcua v0.8.0 would encode
// wrongly: a nil pointer (written as nothing, or a panic) other than a nil
// ExtensionObject (written as an empty one), an ExtensionObject with an
// encoding but no value (a panic), a GUID without its 8 final bytes, and a
// Variant array of ByteStrings (written without its elements).
func encodable(v reflect.Value, depth int) *walkError {
	bad := func(format string, args ...any) *walkError {
		return &walkError{off: -1, reason: fmt.Sprintf(format, args...)}
	}
	if depth > maxDepth {
		return bad("nested deeper than %d levels", maxDepth)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			if v.Type() == typExt {
				return nil
			}
			return bad("is a nil %s", v.Type())
		}
		switch x := v.Interface().(type) {
		case *ua.ExtensionObject:
			switch {
			case x.TypeID == nil:
				return bad("ExtensionObject without a TypeId")
			case x.EncodingMask == ua.ExtensionObjectEmpty:
				return nil
			case x.Value == nil:
				return bad("ExtensionObject with encoding %d but no value", x.EncodingMask)
			}
			if err := encodable(reflect.ValueOf(x.Value), depth+1); err != nil {
				return err.in(".Value")
			}
			return nil
		case *ua.Variant:
			if x.Type() != 0 && x.Has(ua.VariantArrayDimensions) && !x.Has(ua.VariantArrayValues) {
				return bad("Variant with array dimensions but no array")
			}
			val := reflect.ValueOf(x.Value())
			if x.Type() == variantByteString && x.Has(ua.VariantArrayValues) && val.Kind() == reflect.Slice && val.Len() > 0 {
				return bad("a Variant array of ByteStrings, which gopcua v0.8.0 encodes without its elements")
			}
			if val.IsValid() {
				if err := encodable(val, depth+1); err != nil {
					return err.in(".Value()")
				}
			}
			return nil
		case *ua.DataValue:
			if x.EncodingMask&ua.DataValueValue != 0 {
				if err := encodable(reflect.ValueOf(x.Value), depth+1); err != nil {
					return err.in(".Value")
				}
			}
			return nil
		case *ua.DiagnosticInfo:
			if x.EncodingMask&ua.DiagnosticInfoInnerDiagnosticInfo != 0 {
				if err := encodable(reflect.ValueOf(x.InnerDiagnosticInfo), depth+1); err != nil {
					return err.in(".InnerDiagnosticInfo")
				}
			}
			return nil
		case *ua.GUID:
			if len(x.Data4) != 8 {
				return bad("GUID with %d final bytes; want 8", len(x.Data4))
			}
			return nil
		}
		if v.Type().Implements(binaryEncoder) {
			return nil // NodeId, ExpandedNodeId, LocalizedText
		}
		return encodable(v.Elem(), depth)
	case reflect.Struct:
		if v.Type().ConvertibleTo(typTime) {
			return nil
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if err := encodable(v.Field(i), depth+1); err != nil {
				return err.in("." + f.Name)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		for i := range v.Len() {
			if err := encodable(v.Index(i), depth+1); err != nil {
				return err.in(fmt.Sprintf("[%d]", i))
			}
		}
	}
	return nil
}
