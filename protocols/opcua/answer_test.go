package opcua

import (
	"errors"
	"slices"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestDenials(t *testing.T) {
	denied := ua.StatusBadUserAccessDenied
	tests := []struct {
		name      string
		d         Denials
		count     int
		none, all bool
		statuses  []ua.StatusCode
	}{
		{"ok/empty", Denials{}, 0, true, false, []ua.StatusCode{}},
		{"ok/none", Denials{false, false}, 0, true, false, []ua.StatusCode{ua.StatusOK, ua.StatusOK}},
		{"ok/some", Denials{false, true, false}, 1, false, false, []ua.StatusCode{ua.StatusOK, denied, ua.StatusOK}},
		{"ok/all", Denials{true, true}, 2, false, true, []ua.StatusCode{denied, denied}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.d.Count() != tt.count || tt.d.None() != tt.none || tt.d.All() != tt.all {
				t.Fatalf("Count/None/All = %d %v %v; want %d %v %v", tt.d.Count(), tt.d.None(), tt.d.All(), tt.count, tt.none, tt.all)
			}
			if got := tt.d.Statuses(); !slices.Equal(got, tt.statuses) {
				t.Fatalf("Statuses = %v; want %v", got, tt.statuses)
			}
		})
	}
}

// A Write of four values of which policy refuses the second and fourth: the
// server sees two, the client gets four results in its own order.
func TestKeepMerge(t *testing.T) {
	req := &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		{NodeID: num(2, 1), AttributeID: 13},
		{NodeID: num(2, 2), AttributeID: 4},
		{NodeID: num(2, 3), AttributeID: 13},
		{NodeID: num(2, 4), AttributeID: 13, IndexRange: "1"},
	}}
	_, elems, _ := Classify(req)
	d := make(Denials, len(elems))
	for i, e := range elems {
		d[i] = e.Attribute != ua.AttributeIDValue || e.IndexRange != ""
	}

	t.Run("ok/keep", func(t *testing.T) {
		kept, err := Keep(d, req.NodesToWrite)
		if err != nil || len(kept) != 2 || kept[0] != req.NodesToWrite[0] || kept[1] != req.NodesToWrite[2] {
			t.Fatalf("Keep = %v, %v", kept, err)
		}
	})
	t.Run("ok/merge", func(t *testing.T) {
		server := []ua.StatusCode{ua.StatusOK, ua.StatusBadTypeMismatch}
		got, err := Merge(d, server, DeniedStatus)
		want := []ua.StatusCode{ua.StatusOK, ua.StatusBadUserAccessDenied, ua.StatusBadTypeMismatch, ua.StatusBadUserAccessDenied}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Merge = %v, %v; want %v", got, err, want)
		}
	})
	t.Run("ok/merge-all-denied-read", func(t *testing.T) {
		got, err := Merge(Denials{true, true}, nil, func(int) *ua.DataValue { return DeniedDataValue() })
		if err != nil || len(got) != 2 || got[0] == got[1] || got[1].Status != ua.StatusBadUserAccessDenied {
			t.Fatalf("Merge = %v, %v", got, err)
		}
	})
	t.Run("fail/keep-length", func(t *testing.T) {
		if _, err := Keep(d, req.NodesToWrite[:3]); !errors.Is(err, ErrDenials) {
			t.Fatalf("Keep with a short array = %v; want ErrDenials", err)
		}
	})
	t.Run("fail/merge-too-few-results", func(t *testing.T) {
		if _, err := Merge(d, []ua.StatusCode{ua.StatusOK}, DeniedStatus); !errors.Is(err, ErrResultCount) {
			t.Fatalf("Merge with one result = %v; want ErrResultCount", err)
		}
	})
	t.Run("fail/merge-too-many-results", func(t *testing.T) {
		if _, err := Merge(d, make([]ua.StatusCode, 3), DeniedStatus); !errors.Is(err, ErrResultCount) {
			t.Fatalf("Merge with three results = %v; want ErrResultCount", err)
		}
	})
}

func TestDeniedDataValueEncodes(t *testing.T) {
	b, err := ua.Encode(DeniedDataValue())
	if err != nil {
		t.Fatal(err)
	}
	// Encoding mask "status only", then the status code, little-endian.
	if want := []byte{0x02, 0x00, 0x00, 0x1f, 0x80}; !slices.Equal(b, want) {
		t.Fatalf("encoded % x; want % x", b, want)
	}
}
