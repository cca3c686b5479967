package modbussim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
)

const mbapLen = 7 // transaction id, protocol id, length, unit id

// ServeTCP serves Modbus TCP on ln until ctx is done, then closes ln and every
// connection and returns nil. Each connection handles its requests in the
// order they arrive, so pipelined requests are answered in order. Broken
// MBAP framing (protocol id not 0, length outside 2..254) closes the
// connection, as the stream can no longer be trusted.
func (p *PLC) ServeTCP(ctx context.Context, ln net.Listener) error {
	var (
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
		wg    sync.WaitGroup
	)
	closeAll := func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer func() {
		stop()
		closeAll()
		wg.Wait()
	}()

	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serveConn(ctx, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

func (p *PLC) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4*(mbapLen+maxPDU))
	var (
		req  [mbapLen + maxPDU]byte
		resp [mbapLen + maxPDU]byte
	)
	for {
		if _, err := io.ReadFull(r, req[:mbapLen]); err != nil {
			return
		}
		proto, length := binary.BigEndian.Uint16(req[2:]), int(binary.BigEndian.Uint16(req[4:]))
		if proto != 0 || length < 2 || length > maxPDU+1 {
			slog.Debug("modbussim: bad MBAP header, closing", "remote", c.RemoteAddr(), "protocol", proto, "length", length)
			return
		}
		if _, err := io.ReadFull(r, req[mbapLen:mbapLen+length-1]); err != nil {
			return
		}
		unit := req[6]
		out := p.request(ctx, unit, req[mbapLen:mbapLen+length-1], resp[mbapLen:], viaTCP)
		if out.disconnect || ctx.Err() != nil {
			return
		}
		if !out.reply {
			continue
		}
		n := mbapLen + out.n
		copy(resp[:2], req[:2]) // echo the transaction id
		binary.BigEndian.PutUint16(resp[2:], 0)
		binary.BigEndian.PutUint16(resp[4:], uint16(out.n+1))
		resp[6] = unit
		if out.garbage {
			n = garbleTCP(resp[:], req[:mbapLen])
		}
		if _, err := c.Write(resp[:n]); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Debug("modbussim: write failed", "remote", c.RemoteAddr(), "err", err)
			}
			return
		}
	}
}

// noise fills b with deterministic, random-looking bytes derived from seed.
func noise(b, seed []byte) {
	x := uint32(0x9E3779B9)
	for _, s := range seed {
		x = x*31 + uint32(s)
	}
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
}

// garbleTCP writes an answer that keeps the transaction id and a consistent
// length but has a protocol id no client may accept, so clients fail at once
// instead of waiting for bytes that never come. It returns the frame length.
func garbleTCP(b, hdr []byte) int {
	const n = mbapLen + 4
	noise(b[:n], hdr)
	copy(b[:2], hdr[:2])
	b[2] |= 0x80
	binary.BigEndian.PutUint16(b[4:], n-6)
	return n
}
