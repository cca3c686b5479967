// Package journal writes brana's log/slog records the way systemd's journal
// reads a service's standard error: one line per record, prefixed with its
// syslog priority ("<3>" for errors, sd-daemon(3)) so that `journalctl -p
// warning` filters them, and without a time stamp, which the journal adds.
package journal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
)

// Attached reports whether f is the stream systemd connected to the journal
// for this service ($JOURNAL_STREAM names its device and inode), so that a
// shell started from the service, or a redirect, still gets plain lines.
func Attached(f *os.File) bool {
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino) == want
}

// Syslog priorities of sd-daemon(3).
const (
	prioErr     = "<3>"
	prioWarning = "<4>"
	prioInfo    = "<6>"
	prioDebug   = "<7>"
)

// Handler is a text handler per priority, all writing to one stream.
type Handler struct {
	level                    slog.Leveler
	debug, info, warn, error slog.Handler
}

// New returns a handler writing records at or above level to w.
func New(w io.Writer, level slog.Leveler) *Handler {
	mk := func(prio string) slog.Handler {
		return slog.NewTextHandler(prefixed{w, []byte(prio)}, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime})
	}
	return &Handler{level: level, debug: mk(prioDebug), info: mk(prioInfo), warn: mk(prioWarning), error: mk(prioErr)}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func (h *Handler) pick(l slog.Level) slog.Handler {
	switch {
	case l >= slog.LevelError:
		return h.error
	case l >= slog.LevelWarn:
		return h.warn
	case l >= slog.LevelInfo:
		return h.info
	}
	return h.debug
}

// Enabled reports whether records at l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle writes one record with its priority.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{level: h.level, debug: h.debug.WithAttrs(attrs), info: h.info.WithAttrs(attrs),
		warn: h.warn.WithAttrs(attrs), error: h.error.WithAttrs(attrs)}
}

// WithGroup returns a handler that qualifies later attributes with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{level: h.level, debug: h.debug.WithGroup(name), info: h.info.WithGroup(name),
		warn: h.warn.WithGroup(name), error: h.error.WithGroup(name)}
}

// prefixed puts the priority in front of each record. slog's text handler
// writes a whole record in one Write, so the prefix lands at line start.
type prefixed struct {
	w    io.Writer
	prio []byte
}

func (p prefixed) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(p.prio)+len(b))
	line = append(append(line, p.prio...), b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}
