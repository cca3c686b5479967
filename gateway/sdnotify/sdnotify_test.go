package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen stands in for systemd: a datagram socket whose path goes into
// $NOTIFY_SOCKET.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSendsToNotifySocket(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@brana-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t, tc.path)
			t.Setenv("NOTIFY_SOCKET", tc.path)
			n := FromEnv()
			if err := n.Ready("serving 3 listeners\nsecond line"); err != nil {
				t.Fatal(err)
			}
			if got, want := recv(t, c), "READY=1\nSTATUS=serving 3 listeners second line"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			n.Watchdog()
			if got := recv(t, c); got != "WATCHDOG=1" {
				t.Fatalf("got %q", got)
			}
			n.Stopping()
			if got := recv(t, c); got != "STOPPING=1" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestOutsideSystemdIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("notifier without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
}

func TestDeadManagerIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := FromEnv().Watchdog(); err == nil {
		t.Fatal("no error sending to a socket nobody listens on")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, ok := WatchdogInterval(); !ok || d != 30*time.Second {
		t.Fatalf("got %v %v", d, ok)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if _, ok := WatchdogInterval(); ok {
		t.Fatal("watchdog meant for another process")
	}
	t.Setenv("WATCHDOG_PID", "")
	for _, bad := range []string{"", "0", "-5", "soon"} {
		t.Setenv("WATCHDOG_USEC", bad)
		if _, ok := WatchdogInterval(); ok {
			t.Fatalf("WATCHDOG_USEC=%q accepted", bad)
		}
	}
}
