package modbussim

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newPLC builds a PLC or fails the test.
func newPLC(t testing.TB, units map[byte]string) *PLC {
	t.Helper()
	p, err := New(units)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveTCP serves p on a loopback port for the duration of the test.
func serveTCP(t testing.TB, p *PLC) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// unhex decodes hex with optional spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mbap(tx uint16, unit byte, pdu []byte) []byte {
	b := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(b, tx)
	binary.BigEndian.PutUint16(b[4:], uint16(len(pdu)+1))
	b[6] = unit
	return append(b, pdu...)
}

// readADU reads one MBAP frame and returns transaction id, unit and PDU.
func readADU(t testing.TB, c net.Conn, timeout time.Duration) (uint16, byte, []byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	var h [7]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return 0, 0, nil, err
	}
	if p := binary.BigEndian.Uint16(h[2:]); p != 0 {
		t.Fatalf("response protocol id %#x", p)
	}
	n := int(binary.BigEndian.Uint16(h[4:]))
	pdu := make([]byte, n-1)
	if _, err := io.ReadFull(c, pdu); err != nil {
		return 0, 0, nil, err
	}
	return binary.BigEndian.Uint16(h[:]), h[6], pdu, nil
}

// roundTrip sends one request PDU over Modbus TCP and returns the response PDU.
func roundTrip(t testing.TB, c net.Conn, unit byte, pdu []byte) []byte {
	t.Helper()
	if _, err := c.Write(mbap(0x1234, unit, pdu)); err != nil {
		t.Fatal(err)
	}
	tx, u, resp, err := readADU(t, c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tx != 0x1234 || u != unit {
		t.Fatalf("response tx %#x unit %d, want 0x1234 unit %d", tx, u, unit)
	}
	return resp
}

// rtuADU frames a PDU for the serial line.
func rtuADU(unit byte, pdu []byte) []byte {
	b := append([]byte{unit}, pdu...)
	crc := crc16(b)
	return append(b, byte(crc), byte(crc>>8))
}

const socatPath = "/usr/bin/socat"

// ptyPair starts socat with two linked ptys and returns their paths.
func ptyPair(t testing.TB) (string, string) {
	t.Helper()
	if _, err := os.Stat(socatPath); err != nil {
		t.Skip("socat not installed")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(socatPath, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errA := os.Stat(a)
		_, errB := os.Stat(b)
		if errA == nil && errB == nil {
			return a, b
		}
		if time.Now().After(deadline) {
			t.Fatal("socat did not create the pty links")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveRTU serves p on the pty at path for the duration of the test.
func serveRTU(t testing.TB, p *PLC, path string) {
	t.Helper()
	f, err := OpenSerial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ServeRTU(ctx, f, RTUOptions{Baud: 19200}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRTU: %v", err)
		}
		f.Close()
	})
}

// readFor reads whatever arrives on f within d.
func readFor(t testing.TB, f *os.File, d time.Duration) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 512)
	deadline := time.Now().Add(d)
	for {
		f.SetReadDeadline(deadline)
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

// readRTU reads one response frame of length want, or what came before d.
func readRTU(t testing.TB, f *os.File, want int, d time.Duration) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 512)
	deadline := time.Now().Add(d)
	for len(out) < want {
		f.SetReadDeadline(deadline)
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out
}
