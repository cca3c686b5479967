package modbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// h decodes hex written with spaces, as frames appear in the specs.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// repeat returns n copies of b, for frames at the size limits.
func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// cat joins byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestSplitFrame(t *testing.T) {
	maxFrame := cat(h("00 07 00 00 00 FE 01"), []byte{0x41}, repeat(0xAA, 252)) // length 254
	tests := []struct {
		name    string
		buf     []byte
		wantN   int
		wantErr error
	}{
		{"ok/read-holding", h("00 01 00 00 00 06 11 03 00 6B 00 03"), 12, nil},
		{"ok/exact-then-next", h("00 01 00 00 00 06 11 03 00 6B 00 03 00 02"), 12, nil},
		{"ok/length-2", h("00 01 00 00 00 02 01 07"), 8, nil},
		{"ok/length-254", maxFrame, 260, nil},
		{"ok/empty-needs-more", nil, 0, nil},
		{"ok/3-bytes-needs-more", h("00 01 00"), 0, nil},
		{"ok/5-bytes-needs-more", h("00 01 00 00 00"), 0, nil},
		{"ok/header-needs-more", h("00 01 00 00 00 06"), 0, nil},
		{"ok/body-needs-more", h("00 01 00 00 00 06 11 03 00 6B 00"), 0, nil},
		{"fail/protocol-id", h("00 01 00 01 00 06 11 03 00 6B 00 03"), 0, ErrProtocolID},
		{"fail/protocol-id-high-byte", h("00 01 01 00 00 06 11 03 00 6B 00 03"), 0, ErrProtocolID},
		{"fail/protocol-id-before-length", h("00 01 00 01"), 0, ErrProtocolID},
		{"fail/protocol-id-and-length", h("00 01 00 01 00 00"), 0, ErrProtocolID},
		{"fail/length-0", h("00 01 00 00 00 00"), 0, ErrLength},
		{"fail/length-1", h("00 01 00 00 00 01 11"), 0, ErrLength},
		{"fail/length-255", h("00 01 00 00 00 FF"), 0, ErrLength},
		{"fail/length-high-byte", h("00 01 00 00 01 06"), 0, ErrLength},
		{"fail/length-65535", h("00 01 00 00 FF FF"), 0, ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, n, err := SplitFrame(tt.buf)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if n != tt.wantN || len(frame) != tt.wantN {
				t.Fatalf("n = %d, len(frame) = %d; want %d", n, len(frame), tt.wantN)
			}
			if err != nil {
				if !IsFraming(err) {
					t.Errorf("IsFraming(%v) = false; want true", err)
				}
				return
			}
			if n == 0 {
				if frame != nil {
					t.Errorf("frame = %x; want nil", frame)
				}
				return
			}
			if err := frame.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
			if cap(frame) != len(frame) {
				t.Errorf("cap(frame) = %d; want %d so appends cannot clobber the next frame", cap(frame), len(frame))
			}
		})
	}
}

// frames from the application protocol spec's examples, wrapped in MBAP.
var specFrames = [][]byte{
	AppendADU(nil, 0x0001, 0x11, h("03 00 6B 00 03")),
	AppendADU(nil, 0x0002, 0x11, h("10 00 01 00 02 04 00 0A 01 02")),
	AppendADU(nil, 0xFFFF, 0x00, h("0F 00 13 00 0A 02 CD 01")),
}

func TestSplitFrameByteByByte(t *testing.T) {
	stream := cat(specFrames...)
	var buf []byte
	var got [][]byte
	for i, b := range stream {
		buf = append(buf, b)
		frame, n, err := SplitFrame(buf)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if n == 0 {
			continue
		}
		got = append(got, append([]byte(nil), frame...))
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over", len(buf))
	}
	if len(got) != len(specFrames) {
		t.Fatalf("got %d frames; want %d", len(got), len(specFrames))
	}
	for i := range got {
		if !bytes.Equal(got[i], specFrames[i]) {
			t.Errorf("frame %d = %x; want %x", i, got[i], specFrames[i])
		}
	}
}

func TestSplitFrameConcatenated(t *testing.T) {
	buf := cat(specFrames...)
	for i, want := range specFrames {
		frame, n, err := SplitFrame(buf)
		if err != nil || n != len(want) || !bytes.Equal(frame, want) {
			t.Fatalf("frame %d = %x, %d, %v; want %x", i, frame, n, err, want)
		}
		buf = buf[n:]
	}
	if frame, n, err := SplitFrame(buf); frame != nil || n != 0 || err != nil {
		t.Fatalf("after last frame: %x, %d, %v; want nil, 0, nil", frame, n, err)
	}
}

// A bad header after good frames fails only once the good frames are taken,
// and never resyncs past the bad bytes.
func TestSplitFrameBadAfterGood(t *testing.T) {
	buf := cat(specFrames[0], h("00 09 00 07 00 06 11 03 00 6B 00 03"), specFrames[1])
	frame, n, err := SplitFrame(buf)
	if err != nil || !bytes.Equal(frame, specFrames[0]) {
		t.Fatalf("first frame = %x, %v", frame, err)
	}
	if _, _, err := SplitFrame(buf[n:]); !errors.Is(err, ErrProtocolID) {
		t.Fatalf("second frame err = %v; want ErrProtocolID", err)
	}
}

func TestADUValidate(t *testing.T) {
	tests := []struct {
		name string
		adu  ADU
		want error
	}{
		{"ok/read-holding", h("00 01 00 00 00 06 11 03 00 6B 00 03"), nil},
		{"fail/empty", nil, ErrShortFrame},
		{"fail/header-only", h("00 01 00 00 00"), ErrShortFrame},
		{"fail/protocol-id", h("00 01 00 02 00 06 11 03 00 6B 00 03"), ErrProtocolID},
		{"fail/length-1", h("00 01 00 00 00 01 11"), ErrLength},
		{"fail/length-255", cat(h("00 01 00 00 00 FF"), repeat(1, 255)), ErrLength},
		{"fail/shorter-than-length", h("00 01 00 00 00 06 11 03 00 6B 00"), ErrShortFrame},
		{"fail/longer-than-length", h("00 01 00 00 00 06 11 03 00 6B 00 03 00"), ErrLongFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.adu.Validate()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v; want %v", err, tt.want)
			}
			if err != nil && !IsFraming(err) {
				t.Errorf("IsFraming(%v) = false", err)
			}
		})
	}
}

func TestADUAccessors(t *testing.T) {
	a := ADU(h("12 34 00 00 00 06 11 03 00 6B 00 03"))
	if a.TxID() != 0x1234 || a.ProtocolID() != 0 || a.Length() != 6 || a.Unit() != 0x11 || a.Func() != 3 {
		t.Fatalf("accessors = %#x %#x %d %#x %#x", a.TxID(), a.ProtocolID(), a.Length(), a.Unit(), a.Func())
	}
	if !bytes.Equal(a.PDU(), h("03 00 6B 00 03")) {
		t.Fatalf("PDU() = %x", a.PDU())
	}
}

func TestAppendADU(t *testing.T) {
	got := AppendADU(h("EE"), 0xBEEF, 0xFF, h("03 00 6B 00 03"))
	if want := h("EE BE EF 00 00 00 06 FF 03 00 6B 00 03"); !bytes.Equal(got, want) {
		t.Fatalf("AppendADU = %x; want %x", got, want)
	}
	max := AppendADU(nil, 1, 1, repeat(0x41, MaxPDULen))
	if len(max) != MaxADULen || ADU(max).Validate() != nil {
		t.Fatalf("max ADU len %d, Validate %v", len(max), ADU(max).Validate())
	}
	for _, pdu := range [][]byte{nil, repeat(0x41, MaxPDULen+1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendADU with %d-byte PDU did not panic", len(pdu))
				}
			}()
			AppendADU(nil, 1, 1, pdu)
		}()
	}
}

func TestAppendException(t *testing.T) {
	got := AppendException(nil, 0x0102, 0x11, 0x03, ExIllegalDataAddress)
	if want := h("01 02 00 00 00 03 11 83 02"); !bytes.Equal(got, want) {
		t.Fatalf("AppendException = %x; want %x", got, want)
	}
	if code, ok := ExceptionOf(ADU(got).PDU()); !ok || code != ExIllegalDataAddress {
		t.Fatalf("ExceptionOf = %#x, %v", code, ok)
	}
}
