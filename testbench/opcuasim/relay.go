package opcuasim

import (
	"io"
	"net"
	"sync"
)

// relay owns the PLC's public port and pipes each connection to gopcua's
// server on an internal loopback port. gopcua's Server.Close leaves client
// connections open (it waits up to 10 s for clients to hang up), so the relay
// is what lets Close and DropConnections cut them at once.
type relay struct {
	ln     net.Listener
	target string // internal host:port

	mu     sync.Mutex
	conns  map[net.Conn]bool // true for the client side
	closed bool
	wg     sync.WaitGroup
}

func newRelay(ln net.Listener, target string) *relay {
	return &relay{ln: ln, target: target, conns: make(map[net.Conn]bool)}
}

// serve accepts until the listener is closed.
func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c, true) {
			c.Close()
			return
		}
		r.wg.Add(1)
		go r.pipe(c)
	}
}

func (r *relay) track(c net.Conn, client bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = client
	return true
}

func (r *relay) forget(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
		c.Close()
	}
}

func (r *relay) pipe(client net.Conn) {
	defer r.wg.Done()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		r.forget(client)
		return
	}
	if !r.track(server, false) {
		r.forget(client, server)
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(server, client)
		r.forget(client, server)
		close(done)
	}()
	io.Copy(client, server)
	r.forget(client, server)
	<-done
}

// drop closes every relayed connection and returns how many clients it cut.
func (r *relay) drop() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for c, client := range r.conns {
		if client {
			n++
		}
		c.Close()
	}
	return n
}

// close stops accepting, cuts every connection and waits for the pipes.
func (r *relay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.ln.Close()
	r.drop()
	r.wg.Wait()
}
