package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/brana-ot/brana/gateway/sdnotify"
)

// notifySystemd tells the service manager that every listener serves, then
// feeds its watchdog for as long as the audit log answers: a gateway whose
// appender is wedged can no longer log commands, and systemd should restart
// it rather than let it sit there refusing everything. Outside systemd it
// does nothing. STOPPING=1 goes out when ctx ends, which is when shutdown
// begins; the returned stop waits for the notifier to finish.
func (g *Gateway) notifySystemd(ctx context.Context, n *sdnotify.Notifier) (stop func()) {
	if n == nil {
		return func() {}
	}
	if err := n.Ready(g.statusLine()); err != nil {
		g.log.Warn("systemd readiness notification failed", "err", err)
	}
	every, watchdog := sdnotify.WatchdogInterval()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var tick <-chan time.Time
		if watchdog {
			// Half the interval, as sd_watchdog_enabled(3) advises.
			t := time.NewTicker(every / 2)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				n.Stopping()
				return
			case <-tick:
				// statusLine takes the audit log's lock: a wedged
				// appender stops the keep-alives here.
				if err := n.Send("WATCHDOG=1\nSTATUS=" + g.statusLine()); err != nil {
					g.log.Debug("systemd watchdog notification failed", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// statusLine is what `systemctl status brana` shows.
func (g *Gateway) statusLine() string {
	h := g.audit.Health()
	s := fmt.Sprintf("serving; %d sessions; audit record %d", g.sessions.Len(), h.Seq)
	switch {
	case h.Err != "":
		s += "; AUDIT LOG FAILING, commands refused: " + h.Err
	case h.SpaceLow:
		s += "; audit disk space low, new sessions refused"
	}
	return s
}
