package freeport

import (
	"net"
	"testing"
)

func TestPortIsFreeAndOutsideEphemeralRange(t *testing.T) {
	for range 20 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < RangeStart || p >= RangeStart+RangeSize {
			t.Fatalf("port %d outside [%d, %d)", p, RangeStart, RangeStart+RangeSize)
		}
		addr, _ := Addr()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("Addr %s is not free: %v", addr, err)
		}
		ln.Close()
	}
}
