package opcua

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// typeIDBytes is the encoding id of service id as clients send it.
func typeIDBytes(tb testing.TB, service uint16) []byte {
	b, err := ua.NewFourByteExpandedNodeID(0, service).Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func hdrBytes(tb testing.TB) []byte {
	b, err := ua.Encode(hdr())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeBody is a WriteRequest of one WriteValue (ns=0;i=0, Value, no
// IndexRange) whose DataValue is dv, as raw bytes.
func writeBody(tb testing.TB, dv []byte) []byte {
	return cat(typeIDBytes(tb, id.WriteRequest_Encoding_DefaultBinary), hdrBytes(tb), le32(1),
		[]byte{0, 0}, le32(13), le32(0xffffffff), dv)
}

// forgedBodies are hostile request bodies, each refused as a hazard: what
// gopcua v0.8.0 alone would turn into a huge allocation, a panic, a stack
// overflow or billions of steps.
func forgedBodies(tb testing.TB) map[string][]byte {
	nested := func(n int, unit []byte, last byte) []byte {
		return append(bytes.Repeat(unit, n), last)
	}
	ones := bytes.Repeat(le32(1), 1000)
	return map[string][]byte{
		// MaxAge, TimestampsToReturn, then a NodesToRead count of 2^31-1.
		"huge-array-count": cat(typeIDBytes(tb, id.ReadRequest_Encoding_DefaultBinary), hdrBytes(tb),
			make([]byte, 12), le32(0x7fffffff)),
		// One method with null ObjectId and MethodId and one argument: an
		// Int32 array of length -2.
		"negative-variant-array": cat(typeIDBytes(tb, id.CallRequest_Encoding_DefaultBinary), hdrBytes(tb),
			le32(1), []byte{0, 0, 0, 0}, le32(1), []byte{0x86}, le32(0xfffffffe)),
		// An empty Int32 array of 65536 x 65536, which multiplies to 0 in int32.
		"variant-dimensions-wrap": writeBody(tb, cat([]byte{ua.DataValueValue, 0xc6}, le32(0), le32(2), le32(65536), le32(65536))),
		// A dimension count gopcua allocates before reading it.
		"variant-dimension-count": writeBody(tb, cat([]byte{ua.DataValueValue, 0xc6}, le32(1), le32(7), le32(0x7fffffff))),
		// One Int32 in 1000 dimensions of 1: 1000 nested slice types.
		"variant-many-dimensions": writeBody(tb, cat([]byte{ua.DataValueValue, 0xc6}, le32(1), le32(7), le32(1000), ones)),
		// A Variant in a Variant in ... 5000 deep.
		"deep-variants": writeBody(tb, cat([]byte{ua.DataValueValue}, nested(5000, []byte{24}, 0))),
		// A DiagnosticInfo with an inner one, 5000 deep.
		"deep-diagnostics": writeBody(tb, cat([]byte{ua.DataValueValue, 25}, nested(5000, []byte{ua.DiagnosticInfoInnerDiagnosticInfo}, 0))),
		// Nested Variant arrays of Variants, each as long as the input
		// allows and failing at its first element: gopcua allocates every
		// level before it fails.
		"nested-variant-arrays": writeBody(tb, cat([]byte{ua.DataValueValue}, bytes.Repeat(cat([]byte{0x80 | 24}, le32(0xffff)), 50))),
	}
}

func codecError(t *testing.T, err error) *CodecError {
	t.Helper()
	var ce *CodecError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CodecError", err, err)
	}
	return ce
}

// allocated runs f and returns the bytes it allocated on the heap.
func allocated(f func()) uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.TotalAlloc
	f()
	runtime.ReadMemStats(&m)
	return m.TotalAlloc - before
}

// hotSeeds are the requests of the hot services as a client encodes them.
func hotSeeds() []ua.Request {
	var out []ua.Request
	for _, r := range richSeeds() {
		switch r.(type) {
		case *ua.ReadRequest, *ua.WriteRequest, *ua.CallRequest, *ua.BrowseRequest,
			*ua.CreateMonitoredItemsRequest, *ua.PublishRequest:
			out = append(out, r)
		}
	}
	matrix, err := ua.NewVariant([][]int32{{1, 2, 3}, {4, 5, 6}})
	if err != nil {
		panic(err)
	}
	return append(out,
		&ua.WriteRequest{RequestHeader: hdr(), NodesToWrite: []*ua.WriteValue{
			{NodeID: ua.NewGUIDNodeID(2, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), AttributeID: 13,
				Value: &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp,
					Value: matrix, SourceTimestamp: time.Date(2026, 5, 6, 7, 8, 9, 100, time.UTC)}},
			{NodeID: ua.NewByteStringNodeID(2, []byte{1, 2}), AttributeID: 13, Value: dv([]string{"a", "", "c"})},
			{NodeID: num(2, 9), AttributeID: 13, Value: dv(ua.NewExtensionObject(&ua.Range{Low: 1, High: 2}))},
		}},
		&ua.PublishRequest{RequestHeader: hdr()},
	)
}

func TestDecodeRequestRoundTrip(t *testing.T) {
	for _, req := range hotSeeds() {
		name := reflect.TypeOf(req).Elem().Name()
		t.Run(name, func(t *testing.T) {
			prefix := []byte("seq-header")
			b, err := EncodeRequest(prefix, req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("EncodeRequest did not append to dst")
			}
			b = b[len(prefix):]
			// Trailing bytes (padding, a signature) are not the request's.
			got, err := DecodeRequest(append(b[:len(b):len(b)], 0xde, 0xad, 0xbe, 0xef))
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(req) {
				t.Fatalf("decoded a %T; want %T", got, req)
			}
			if got.Header().RequestHandle != req.Header().RequestHandle || entries(got) != entries(req) {
				t.Fatalf("decoded %+v; want %+v", got, req)
			}
			again, err := EncodeRequest(nil, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoded\n% x\nwant\n% x", again, b)
			}
		})
	}
}

func respHdr() *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		RequestHandle:      42,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

func TestDecodeResponseRoundTrip(t *testing.T) {
	for _, resp := range []ua.Response{
		&ua.ReadResponse{ResponseHeader: respHdr(), Results: []*ua.DataValue{dv(int32(5)), {EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadUserAccessDenied}}},
		&ua.WriteResponse{ResponseHeader: respHdr(), Results: []ua.StatusCode{ua.StatusOK, ua.StatusBadUserAccessDenied}},
		&ua.CallResponse{ResponseHeader: respHdr(), Results: []*ua.CallMethodResult{{StatusCode: ua.StatusOK, OutputArguments: []*ua.Variant{ua.MustVariant(uint32(3))}}}},
		&ua.ServiceFault{ResponseHeader: &ua.ResponseHeader{ServiceResult: ua.StatusBadUserAccessDenied, ServiceDiagnostics: &ua.DiagnosticInfo{}}},
	} {
		t.Run(reflect.TypeOf(resp).Elem().Name(), func(t *testing.T) {
			b, err := EncodeResponse(nil, resp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeResponse(b)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(resp) || got.Header().ServiceResult != resp.Header().ServiceResult {
				t.Fatalf("decoded %+v; want %+v", got, resp)
			}
			again, err := EncodeResponse(nil, got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoded % x, %v; want % x", again, err, b)
			}
		})
	}
}

func TestDecodeForgedArrayCount(t *testing.T) {
	body := forgedBodies(t)["huge-array-count"]
	var err error
	if n := allocated(func() { _, err = DecodeRequest(body) }); n > 1<<20 {
		t.Errorf("refusing a forged count allocated %d bytes", n)
	}
	ce := codecError(t, err)
	if !errors.Is(err, ua.StatusBadDecodingError) || !ce.hazard {
		t.Fatalf("error %v: want a BadDecodingError hazard", err)
	}
	if !strings.Contains(err.Error(), "array count 2147483647 exceeds the 0 bytes left") || ce.Field != "NodesToRead" || ce.Type != "ReadRequest" {
		t.Fatalf("error %q (field %q) does not say what is wrong", err, ce.Field)
	}
	if ce.Offset != len(body)-4 {
		t.Fatalf("offset %d; want %d", ce.Offset, len(body)-4)
	}
}

func TestDecodeNegativeVariantLength(t *testing.T) {
	_, err := DecodeRequest(forgedBodies(t)["negative-variant-array"])
	ce := codecError(t, err)
	if !errors.Is(err, ua.StatusBadDecodingError) || !ce.hazard || ce.panicked {
		t.Fatalf("error %v: want a BadDecodingError hazard found before gopcua", err)
	}
	if ce.Field != "MethodsToCall[0].InputArguments[0]" || !strings.Contains(ce.Reason, "-2") {
		t.Fatalf("error %v names the wrong place", err)
	}
}

// Every forged body is refused as a hazard, cheaply.
func TestDecodeForgedBodies(t *testing.T) {
	for name, body := range forgedBodies(t) {
		t.Run(name, func(t *testing.T) {
			var err error
			if n := allocated(func() { _, err = DecodeRequest(body) }); n > 1<<20 {
				t.Errorf("refusing it allocated %d bytes", n)
			}
			ce := codecError(t, err)
			if !errors.Is(err, ua.StatusBadDecodingError) || !ce.hazard {
				t.Fatalf("error %v: want a BadDecodingError hazard", err)
			}
		})
	}
}

func TestDecodeUnknownService(t *testing.T) {
	read := cat(hdrBytes(t), make([]byte, 12), le32(0))
	// The four-byte ReadRequest id with the NamespaceURI flag and a URI.
	uri := cat(typeIDBytes(t, id.ReadRequest_Encoding_DefaultBinary), le32(5), []byte("urn:x"))
	uri[0] |= 0x80
	resp, err := EncodeResponse(nil, &ua.ReadResponse{ResponseHeader: respHdr()})
	if err != nil {
		t.Fatal(err)
	}
	req, err := EncodeRequest(nil, &ua.ReadRequest{RequestHeader: hdr()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, want string
		decode     func([]byte) error
		body       []byte
	}{
		{"boolean", "i=1", decodeReq, cat(typeIDBytes(t, id.Boolean), read)},
		{"string-id", `s=ReadRequest`, decodeReq, cat([]byte{3, 0, 0}, le32(11), []byte("ReadRequest"), read)},
		{"namespace-uri", "nsu=urn:x;i=631", decodeReq, cat(uri, read)},
		{"response-as-request", "not a request", decodeReq, resp},
		{"request-as-response", "not a response", decodeResp, req},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.body)
			codecError(t, err)
			if !errors.Is(err, ua.StatusBadServiceUnsupported) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v: want BadServiceUnsupported naming %q", err, tt.want)
			}
		})
	}
}

func decodeReq(b []byte) error  { _, err := DecodeRequest(b); return err }
func decodeResp(b []byte) error { _, err := DecodeResponse(b); return err }

// Every cut of a request is refused, by the guard (gopcua would tell
// truncation too, but only after its allocations).
func TestDecodeTruncated(t *testing.T) {
	for _, req := range hotSeeds() {
		b, err := EncodeRequest(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			_, err := DecodeRequest(b[:n])
			ce := codecError(t, err)
			if !errors.Is(err, ua.StatusBadDecodingError) || ce.Err != nil && n >= 4 {
				t.Fatalf("%T cut to %d of %d bytes: %v; want BadDecodingError from the guard", req, n, len(b), err)
			}
		}
	}
}

func TestDecodeVariantArrays(t *testing.T) {
	for _, tt := range []struct {
		name string
		dv   []byte
		want string // "" for success
	}{
		{"ok/matrix", cat([]byte{ua.DataValueValue, 0xc6}, le32(2), le32(1), le32(2), le32(2), le32(1), le32(2)), ""},
		{"ok/null-array", cat([]byte{ua.DataValueValue, 0x86}, le32(0xffffffff)), ""},
		{"ok/null-variant-with-array-bits", []byte{ua.DataValueValue, 0xc0}, ""},
		{"fail/unbalanced", cat([]byte{ua.DataValueValue, 0xc6}, le32(2), le32(1), le32(2), le32(2), le32(2), le32(2)), "do not multiply"},
		{"fail/zero-dimension", cat([]byte{ua.DataValueValue, 0xc6}, le32(0), le32(1), le32(0)), "not positive"},
		{"fail/over-gopcua-limit", cat([]byte{ua.DataValueValue, 0x86}, le32(0x10000)), "gopcua's limit"},
		{"fail/bytestring-array", cat([]byte{ua.DataValueValue, 0x8f}, le32(1), le32(1), []byte{7}), "cannot re-encode"},
		{"fail/not-a-type", []byte{ua.DataValueValue, 26}, "no built-in type"},
		// gopcua would write a dimension count it never read.
		{"fail/dimensions-without-array", cat([]byte{ua.DataValueValue, 0x46}, le32(7)), "no array"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := writeBody(t, tt.dv)
			req, err := DecodeRequest(body)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := EncodeRequest(nil, req); err != nil {
					t.Fatal(err)
				}
				return
			}
			codecError(t, err)
			if !errors.Is(err, ua.StatusBadDecodingError) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want BadDecodingError saying %q", err, tt.want)
			}
		})
	}
}

func TestDecodeExtensionObjects(t *testing.T) {
	eo := func(typeID []byte, mask byte, body []byte) []byte {
		return cat([]byte{ua.DataValueValue, 22}, typeID, []byte{mask}, body)
	}
	rng := []byte{0x01, 0x00, 0x00, 0x00} // ns=0;i=0 as four-byte, patched below
	binary.LittleEndian.PutUint16(rng[2:], id.Range_Encoding_DefaultBinary)
	for _, tt := range []struct {
		name   string
		dv     []byte
		status ua.StatusCode // 0 for success
	}{
		{"ok/range", eo(rng, 1, cat(le32(16), make([]byte, 16))), 0},
		{"ok/xml", eo([]byte{0, 0}, 2, cat(le32(8), le32(4), []byte("<a/>"))), 0},
		{"fail/range-too-short", eo(rng, 1, cat(le32(8), make([]byte, 8))), ua.StatusBadDecodingError},
		{"fail/unknown-type", eo([]byte{1, 3, 0x88, 0x13}, 1, cat(le32(2), []byte{1, 2})), ua.StatusBadDataTypeIDUnknown},
		{"fail/no-body", eo(rng, 1, le32(0)), ua.StatusBadDecodingError},
		{"fail/body-beyond-input", eo(rng, 1, le32(1000)), ua.StatusBadDecodingError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeRequest(writeBody(t, tt.dv))
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := EncodeRequest(nil, req); err != nil {
					t.Fatal(err)
				}
				return
			}
			codecError(t, err)
			if !errors.Is(err, tt.status) {
				t.Fatalf("error %v; want %v", err, tt.status)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	type fake struct{ ua.ReadResponse }
	dst := []byte("keep")
	for _, tt := range []struct {
		name   string
		resp   ua.Response
		status ua.StatusCode
		field  string
	}{
		{"nil", nil, ua.StatusBadEncodingError, ""},
		{"nil-pointer", (*ua.ReadResponse)(nil), ua.StatusBadEncodingError, ""},
		{"unregistered", &fake{}, ua.StatusBadServiceUnsupported, ""},
		{"nil-header", &ua.ReadResponse{}, ua.StatusBadEncodingError, "ResponseHeader"},
		{"nil-diagnostics", &ua.ReadResponse{ResponseHeader: &ua.ResponseHeader{}}, ua.StatusBadEncodingError, "ResponseHeader.ServiceDiagnostics"},
		{"nil-result", &ua.ReadResponse{ResponseHeader: respHdr(), Results: []*ua.DataValue{nil}}, ua.StatusBadEncodingError, "Results[0]"},
		{"extension-object-without-value", &ua.ReadResponse{ResponseHeader: &ua.ResponseHeader{ServiceDiagnostics: &ua.DiagnosticInfo{},
			AdditionalHeader: &ua.ExtensionObject{EncodingMask: 1, TypeID: ua.NewTwoByteExpandedNodeID(0)}}}, ua.StatusBadEncodingError, "ResponseHeader.AdditionalHeader"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeResponse(dst, tt.resp)
			ce := codecError(t, err)
			if !errors.Is(err, tt.status) || ce.Field != tt.field || ce.panicked {
				t.Fatalf("error %v (field %q); want %v at %q, found before gopcua", err, ce.Field, tt.status, tt.field)
			}
			if string(got) != "keep" {
				t.Fatalf("dst became %q", got)
			}
		})
	}
}

// fill sets every field of v to something encodable: pointers allocated,
// arrays of one element, numbers 1.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		switch v.Type() {
		case typGUID:
			v.Set(reflect.ValueOf(&ua.GUID{Data1: 1, Data4: make([]byte, 8)}))
		case typExt:
			v.Set(reflect.ValueOf(ua.NewExtensionObject(nil)))
		case typNodeID:
			v.Set(reflect.ValueOf(ua.NewStringNodeID(2, "n")))
		case typExpanded:
			v.Set(reflect.ValueOf(ua.NewNumericExpandedNodeID(3, 7)))
		case typVariant:
			v.Set(reflect.ValueOf(ua.MustVariant(int32(5))))
		case typDV:
			v.Set(reflect.ValueOf(dv("x")))
		case typLT:
			v.Set(reflect.ValueOf(ua.NewLocalizedTextWithLocale("x", "de")))
		case typDiag:
			v.Set(reflect.ValueOf(&ua.DiagnosticInfo{EncodingMask: ua.DiagnosticInfoSymbolicID, SymbolicID: 3}))
		default:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), depth)
		}
	case reflect.Struct:
		if v.Type() == typTime {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{1, 2})
			return
		}
		if depth < 12 {
			s := reflect.MakeSlice(v.Type(), 1, 1)
			fill(s.Index(0), depth+1)
			v.Set(s)
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	}
}

// registered returns a new value of every type gopcua registered under a
// four-byte id, as lookup finds it.
func registered(lookup func(typeID []byte) any) []any {
	var out []any
	for i := range 1 << 16 {
		b := binary.LittleEndian.AppendUint16([]byte{1, 0}, uint16(i))
		if v := lookup(b); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// Every service gopcua knows decodes and re-encodes as it was encoded: the
// walker knows every type a service contains.
func TestEveryService(t *testing.T) {
	services := registered(func(b []byte) any { _, v, _ := ua.DecodeService(b); return v })
	if len(services) < 80 {
		t.Fatalf("found %d services", len(services))
	}
	for _, v := range services {
		fill(reflect.ValueOf(v).Elem(), 0)
		var enc func() ([]byte, error)
		var dec func([]byte) (any, error)
		switch x := v.(type) {
		case ua.Request:
			enc = func() ([]byte, error) { return EncodeRequest(nil, x) }
			dec = func(b []byte) (any, error) { return DecodeRequest(b) }
		case ua.Response:
			enc = func() ([]byte, error) { return EncodeResponse(nil, x) }
			dec = func(b []byte) (any, error) { return DecodeResponse(b) }
		default:
			// gopcua registers three structures of requests as services
			// (CallMethodRequest, MonitoredItemCreateRequest,
			// MonitoredItemModifyRequest): not a message of either side.
			b := cat(typeIDBytes(t, ua.ServiceTypeID(v)), []byte{0})
			if errReq, errResp := decodeReq(b), decodeResp(b); !errors.Is(errReq, ua.StatusBadServiceUnsupported) ||
				!errors.Is(errResp, ua.StatusBadServiceUnsupported) {
				t.Errorf("%T decodes as a request (%v) or response (%v)", v, errReq, errResp)
			}
			continue
		}
		b, err := enc()
		if err != nil {
			t.Errorf("%T: %v", v, err)
			continue
		}
		got, err := dec(b)
		if err != nil {
			t.Errorf("%T: %v", v, err)
			continue
		}
		if again, err := ua.Encode(got); err != nil || !bytes.Equal(again, b[4:]) {
			t.Errorf("%T re-encodes to\n% x, %v; want\n% x", v, again, err, b[4:])
		}
	}
}

// Every ExtensionObject type gopcua knows travels in a Write and comes back
// as it was sent.
func TestEveryExtensionObject(t *testing.T) {
	types := registered(func(b []byte) any {
		var e ua.ExtensionObject
		_, _ = e.Decode(cat(b, []byte{1}, le32(1), []byte{0}))
		return e.Value
	})
	if len(types) < 100 {
		t.Fatalf("found %d extension object types", len(types))
	}
	for _, v := range types {
		fill(reflect.ValueOf(v).Elem(), 0)
		req := &ua.WriteRequest{RequestHeader: hdr(), NodesToWrite: []*ua.WriteValue{
			{NodeID: tank, AttributeID: 13, Value: dv(ua.NewExtensionObject(v))},
		}}
		b, err := EncodeRequest(nil, req)
		if err != nil {
			t.Errorf("%T: %v", v, err)
			continue
		}
		got, err := DecodeRequest(b)
		if reflect.TypeOf(v).Elem().NumField() == 0 {
			// The abstract types (HistoryReadDetails, FilterOperand, ...)
			// have an empty body, which gopcua decodes as no value at
			// all and then cannot re-encode.
			if !errors.Is(err, ua.StatusBadDecodingError) {
				t.Errorf("%T with an empty body: %v; want BadDecodingError", v, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%T: %v", v, err)
			continue
		}
		w := got.(*ua.WriteRequest).NodesToWrite[0].Value.Value.Value().(*ua.ExtensionObject).Value
		if !reflect.DeepEqual(w, v) {
			t.Errorf("%T came back as %+v; want %+v", v, w, v)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	var bodies [][]byte
	for _, req := range hotSeeds() {
		enc, err := EncodeRequest(nil, req)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, enc)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if _, err := DecodeRequest(body); err != nil {
				b.Fatal(err)
			}
		}
	}
}
