// Package freeport finds a loopback TCP port for servers that cannot be
// handed a listener and bind their own port later (gopcua's server,
// node-opcua's, a gateway in a child process). It picks ports below Linux's
// ephemeral range: a port the kernel hands out for 127.0.0.1:0 may go to a
// parallel test's listener in the moment between the check and the bind,
// a random port from here hardly ever does.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Range is where ports are picked: below 32768, where Linux's ephemeral
// ports (net.ipv4.ip_local_port_range) start by default.
const (
	RangeStart = 20000
	RangeSize  = 12000
)

// Port returns a loopback port that was free a moment ago.
func Port() (int, error) {
	for range 50 {
		port := RangeStart + rand.IntN(RangeSize)
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			return port, nil
		}
	}
	// A crowded range: fall back to the kernel's choice.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns Port as a 127.0.0.1:PORT address.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}
