package netpath

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo serves lines back with a prefix naming the server.
func echo(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(name + ":" + line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, msg string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestRelayCutAndPoint(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	p := New(t, a)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(t, c, "x"); err != nil || got != "a:x\n" {
		t.Fatalf("through the path: %q, %v", got, err)
	}
	p.Point(b)
	if got, err := roundTrip(t, c, "y"); err != nil || got != "a:y\n" {
		t.Fatalf("an open connection moved with Point: %q, %v", got, err)
	}
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut = %d pairs, want 1", n)
	}
	if got, err := roundTrip(t, c, "z"); err == nil {
		t.Fatalf("a cut connection still answers: %q", got)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, "w"); err != nil || got != "b:w\n" {
		t.Fatalf("a new connection after Point: %q, %v", got, err)
	}
}
