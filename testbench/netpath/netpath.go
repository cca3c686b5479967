// Package netpath is a TCP path between a client and a server that a test
// can cut, as a failing switch or cable would, and re-point to another
// server, as when a PLC is replaced behind the same address.
package netpath

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Path relays every connection accepted on its loopback address to the
// server it points to.
type Path struct {
	ln    net.Listener
	mu    sync.Mutex
	to    string
	conns []net.Conn
}

// New starts a path to the server at host:port to; the test's cleanup
// closes it and every connection on it.
func New(tb testing.TB, to string) *Path {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Path{ln: ln, to: to}
	tb.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

func (p *Path) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		to := p.to
		p.mu.Unlock()
		up, err := net.Dial("tcp", to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// Addr is where clients connect.
func (p *Path) Addr() string { return p.ln.Addr().String() }

// Point sends later connections to another server; open ones stay.
func (p *Path) Point(to string) {
	p.mu.Lock()
	p.to = to
	p.mu.Unlock()
}

// Cut closes every connection on the path and reports how many pairs.
func (p *Path) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	p.conns = nil
	return n
}
