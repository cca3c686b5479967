// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): readiness, stopping, status lines and watchdog keep-alives,
// sent as datagrams to the socket named by $NOTIFY_SOCKET. Outside systemd
// (no $NOTIFY_SOCKET) every call is a no-op, so callers need no checks.
package sdnotify

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager. The zero value and
// a nil *Notifier send nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, nil when it is unset.
// A path starting with '@' names an abstract socket; Go's net package maps
// the '@' to the leading NUL byte the kernel expects.
func FromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Send sends one notification: newline-separated VAR=value assignments.
// Each call dials anew: the datagram socket is cheap, and a service manager
// restarted in between is then found again.
func (n *Notifier) Send(state string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// Ready says start-up is complete: every listener is bound and serving.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1\nSTATUS=" + oneLine(status))
}

// Stopping says shutdown has begun.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Status sets the one-line status `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Send("STATUS=" + oneLine(s)) }

// Watchdog is one keep-alive for WatchdogSec=.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// WatchdogInterval is how often keep-alives must arrive, from
// $WATCHDOG_USEC; ok is false when no watchdog is configured for this
// process ($WATCHDOG_PID names another one).
func WatchdogInterval() (d time.Duration, ok bool) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, false
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us <= 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
