package opcua

import (
	"errors"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestNodeKeyEncodings(t *testing.T) {
	tests := []struct {
		name string
		a, b *ua.NodeID
		same bool
	}{
		{"ok/two-byte-equals-numeric", ua.NewTwoByteNodeID(85), num(0, 85), true},
		{"ok/four-byte-equals-numeric", ua.NewFourByteNodeID(2, 900), num(2, 900), true},
		{"ok/string", str(2, "a"), str(2, "a"), true},
		{"ok/guid-case-insensitive", ua.NewGUIDNodeID(1, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), ua.NewGUIDNodeID(1, "72962b91-fa75-4ae6-8d28-b404dc7daf63"), true},
		{"ok/opaque", ua.NewByteStringNodeID(1, []byte{1, 2}), ua.NewByteStringNodeID(1, []byte{1, 2}), true},
		{"fail/namespace-differs", num(1, 5), num(2, 5), false},
		{"fail/string-is-not-numeric", str(2, "900"), num(2, 900), false},
		{"fail/string-is-not-opaque", str(1, "AQI="), ua.NewByteStringNodeID(1, []byte{1, 2}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyOf(tt.a) == keyOf(tt.b); got != tt.same {
				t.Fatalf("keyOf(%v) == keyOf(%v) is %v; want %v", tt.a, tt.b, got, tt.same)
			}
		})
	}
}

func TestAliasMap(t *testing.T) {
	t.Run("ok/zero-value-and-nil", func(t *testing.T) {
		var a AliasMap
		if a.Resolve(tank) != tank || a.Len() != 0 {
			t.Fatal("empty map resolved something")
		}
		var nilMap *AliasMap
		if nilMap.Resolve(tank) != tank || nilMap.Resolve(nil) != nil {
			t.Fatal("nil map resolved something")
		}
	})
	t.Run("ok/register-resolve-unregister", func(t *testing.T) {
		var a AliasMap
		mustNil(t, a.Register(num(2, 900), tank))
		if got := a.Resolve(num(2, 900)); got != tank {
			t.Fatalf("Resolve = %v; want %v", got, tank)
		}
		a.Unregister(ua.NewFourByteNodeID(2, 900))
		if got := a.Resolve(num(2, 900)); got.String() != "ns=2;i=900" || a.Len() != 0 {
			t.Fatalf("Resolve after Unregister = %v, len %d", got, a.Len())
		}
	})
	t.Run("ok/chain-collapses", func(t *testing.T) {
		var a AliasMap
		mustNil(t, a.Register(num(2, 900), tank))
		mustNil(t, a.Register(num(2, 901), num(2, 900)))
		if got := a.Resolve(num(2, 901)); got != tank {
			t.Fatalf("Resolve(alias of alias) = %v; want %v", got, tank)
		}
	})
	t.Run("ok/identity-adds-nothing", func(t *testing.T) {
		var a AliasMap
		mustNil(t, a.Register(str(2, "Tank.Level"), tank))
		if a.Len() != 0 {
			t.Fatalf("identity alias stored: len %d", a.Len())
		}
	})
	t.Run("ok/re-register-replaces", func(t *testing.T) {
		var a AliasMap
		mustNil(t, a.Register(num(2, 900), tank))
		mustNil(t, a.Register(num(2, 900), num(2, 1)))
		if got := a.Resolve(num(2, 900)); got.String() != "ns=2;i=1" || a.Len() != 1 {
			t.Fatalf("Resolve = %v, len %d", got, a.Len())
		}
	})
	t.Run("fail/nil-node-id", func(t *testing.T) {
		var a AliasMap
		if err := a.Register(nil, tank); !errors.Is(err, ErrNilNodeID) {
			t.Fatalf("Register(nil, x) = %v", err)
		}
		if err := a.Register(tank, nil); !errors.Is(err, ErrNilNodeID) {
			t.Fatalf("Register(x, nil) = %v", err)
		}
	})
	t.Run("fail/full", func(t *testing.T) {
		var a AliasMap
		for i := range MaxRegistered {
			mustNil(t, a.Register(num(5, uint32(i)), tank))
		}
		if err := a.Register(num(5, MaxRegistered), tank); !errors.Is(err, ErrMapFull) {
			t.Fatalf("Register beyond MaxRegistered = %v; want ErrMapFull", err)
		}
		mustNil(t, a.Register(num(5, 1), num(2, 1))) // replacing is still allowed
	})
}

func TestMethodMap(t *testing.T) {
	var m MethodMap
	if m.TypeMethod(str(3, "x")) != nil || (*MethodMap)(nil).TypeMethod(str(3, "x")) != nil {
		t.Fatal("empty map knows a method")
	}
	mustNil(t, m.Learn(str(3, "Recipe.Write"), num(0, 11588)))
	if got := m.TypeMethod(str(3, "Recipe.Write")); got.String() != "i=11588" {
		t.Fatalf("TypeMethod = %v", got)
	}
	if err := m.Learn(nil, num(0, 1)); !errors.Is(err, ErrNilNodeID) {
		t.Fatalf("Learn(nil) = %v", err)
	}
}

func TestNamespaceMap(t *testing.T) {
	m := NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:brana:plc", DIURI, "urn:brana:plc"})
	tests := []struct {
		name string
		uri  string
		ns   uint16
		ok   bool
	}{
		{"ok/opc-ua", "http://opcfoundation.org/UA/", 0, true},
		{"ok/server", "urn:brana:plc", 1, true}, // the first of two wins
		{"ok/di", DIURI, 2, true},
		{"fail/absent", "urn:other", 0, false},
		{"fail/case-matters", "URN:BRANA:PLC", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, ok := m.Index(tt.uri)
			if ns != tt.ns || ok != tt.ok {
				t.Fatalf("Index(%q) = %d, %v; want %d, %v", tt.uri, ns, ok, tt.ns, tt.ok)
			}
			if ok {
				if uri, _ := m.URI(ns); uri != tt.uri {
					t.Fatalf("URI(%d) = %q; want %q", ns, uri, tt.uri)
				}
			}
		})
	}
	t.Run("fail/uri-out-of-range", func(t *testing.T) {
		if uri, ok := m.URI(4); ok || uri != "" {
			t.Fatalf("URI(4) = %q, %v", uri, ok)
		}
	})
	t.Run("ok/copies-its-input", func(t *testing.T) {
		in := []string{"a", "b"}
		m := NewNamespaceMap(in)
		in[1] = "c"
		if uri, _ := m.URI(1); uri != "b" {
			t.Fatalf("URI(1) = %q after the caller changed its slice", uri)
		}
	})
	t.Run("fail/nil-map", func(t *testing.T) {
		var m *NamespaceMap
		if _, ok := m.Index("a"); ok {
			t.Fatal("nil map has an index")
		}
		if _, ok := m.URI(0); ok {
			t.Fatal("nil map has a URI")
		}
	})
}

func TestWithNamespace(t *testing.T) {
	tests := []struct {
		name string
		in   *ua.NodeID
		want string
	}{
		{"ok/two-byte", ua.NewTwoByteNodeID(5), "ns=7;i=5"},
		{"ok/numeric", num(1, 70000), "ns=7;i=70000"},
		{"ok/string", str(1, "a"), "ns=7;s=a"},
		{"ok/guid", ua.NewGUIDNodeID(1, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), "ns=7;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63"},
		{"ok/opaque", ua.NewByteStringNodeID(1, []byte{1, 2}), "ns=7;b=AQI="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withNamespace(tt.in, 7).String(); got != tt.want {
				t.Fatalf("withNamespace = %q; want %q", got, tt.want)
			}
		})
	}
}
