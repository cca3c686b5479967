package sshlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Vendor-facing messages, kept in one place so docs/VENDOR.md can quote them.
const (
	msgAddress   = "brana forwards only to target names, not addresses"
	msgRemote    = "remote forwarding (-R) is not allowed"
	msgAgent     = "agent forwarding is not allowed; connect without -A (ForwardAgent no)"
	msgX11       = "X11 forwarding is not allowed; connect without -X/-Y"
	msgShell     = "there is no shell here; brana forwards to named targets and answers request, status and help"
	msgPTY       = "terminals (PTY) are not available; connect without -t"
	msgSubsystem = "subsystems (sftp, scp) are not available"
)

// globalRequests answers connection-level requests: keepalives yes,
// everything else no; remote forwarding is refused on the record.
func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for r := range reqs {
		switch r.Type {
		case "keepalive@openssh.com":
			r.Reply(true, nil)
		case "tcpip-forward", "streamlocal-forward@openssh.com":
			var p struct {
				Addr string
				Port uint32
			}
			what := r.Type
			if r.Type == "tcpip-forward" && ssh.Unmarshal(r.Payload, &p) == nil {
				what = fmt.Sprintf("-R %.64q port %d", p.Addr, p.Port)
			}
			c.s.b.Refused(c.src, &c.ident, "global "+r.Type, fmt.Sprintf("remote forwarding (%s) is not allowed", what))
			r.Reply(false, nil)
		default:
			r.Reply(false, nil)
		}
	}
}

// channel dispatches one channel open request.
func (c *conn) channel(nch ssh.NewChannel) {
	typ := nch.ChannelType()
	if n := c.channels.Add(1); int(n) > c.s.cfg.MaxChannels {
		c.channels.Add(-1)
		c.rejectChannel(nch, ssh.ResourceShortage,
			fmt.Sprintf("too many channels on this connection (max %d)", c.s.cfg.MaxChannels),
			fmt.Sprintf("channel %.64q refused: %d channels open (max %d)", typ, n-1, c.s.cfg.MaxChannels))
		return
	}
	defer c.channels.Add(-1)
	switch typ {
	case "direct-tcpip":
		c.directTCPIP(nch)
	case "session":
		c.session(nch)
	case "x11":
		c.rejectChannel(nch, ssh.Prohibited, msgX11, "X11 channel refused")
	case "auth-agent@openssh.com":
		c.rejectChannel(nch, ssh.Prohibited, msgAgent, "agent channel refused")
	case "forwarded-tcpip", "forwarded-streamlocal@openssh.com":
		c.rejectChannel(nch, ssh.Prohibited, msgRemote, typ+" channel refused")
	case "direct-streamlocal@openssh.com":
		c.rejectChannel(nch, ssh.Prohibited, msgAddress, "forwarding to a socket path refused")
	default:
		c.rejectChannel(nch, ssh.UnknownChannelType, "channel type not supported", fmt.Sprintf("unknown channel type %.64q refused", typ))
	}
}

func (c *conn) rejectChannel(nch ssh.NewChannel, why ssh.RejectionReason, vendor, audit string) {
	typ := nch.ChannelType()
	switch typ {
	case "direct-tcpip", "session", "x11", "auth-agent@openssh.com", "forwarded-tcpip",
		"forwarded-streamlocal@openssh.com", "direct-streamlocal@openssh.com":
	default:
		typ = "other"
	}
	c.s.b.Refused(c.src, &c.ident, "channel "+typ, audit)
	nch.Reject(why, "brana: "+vendor)
}

// directTCPIP admits an ssh -L channel to a named target and hands it to the
// target's terminator. Nothing is ever dialled.
func (c *conn) directTCPIP(nch ssh.NewChannel) {
	s := c.s
	var p struct {
		Host     string
		Port     uint32
		OrigAddr string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		c.rejectChannel(nch, ssh.ConnectionFailed, "malformed forwarding request", "malformed direct-tcpip payload: "+err.Error())
		return
	}
	dest := fmt.Sprintf("%.100q port %d", p.Host, p.Port)
	if isAddress(p.Host) {
		c.rejectChannel(nch, ssh.Prohibited, msgAddress, "destination "+dest+" is an address, not a target name")
		return
	}
	if !c.portForwarding {
		c.rejectChannel(nch, ssh.Prohibited, "your certificate does not permit port forwarding",
			"destination "+dest+": certificate lacks permit-port-forwarding")
		return
	}
	target := p.Host
	port, ok := s.b.TargetPort(target)
	if !ok {
		c.rejectChannel(nch, ssh.Prohibited, fmt.Sprintf("%.100q is not a target on this gateway", target),
			"destination "+dest+" is not a target")
		return
	}
	if p.Port != port {
		c.rejectChannel(nch, ssh.Prohibited, fmt.Sprintf("%s takes port %d only", target, port),
			fmt.Sprintf("destination %s: target %s takes port %d only", dest, target, port))
		return
	}

	adm := s.b.Admit(c.ctx, c.ident, target)
	switch adm.Verdict {
	case Allow:
	case Hold:
		if adm.Wait == nil {
			c.rejectChannel(nch, ssh.Prohibited, withRequest("access to "+target+" needs approval", adm.RequestID),
				withRequest("channel to "+target+" held without a way to wait", adm.RequestID))
			return
		}
		s.b.Event("channel.held", c.ident, fmt.Sprintf("%s: waiting up to %s for approval of request %s", target, s.cfg.HoldFor, adm.RequestID))
		c.holding.Add(1)
		hctx, cancel := context.WithTimeout(c.ctx, s.cfg.holdFor)
		approved := adm.Wait(hctx)
		timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
		cancel()
		c.holding.Add(-1)
		c.touch()
		if !approved {
			switch {
			case c.ctx.Err() != nil:
				c.rejectChannel(nch, ssh.Prohibited, "connection closed", withRequest("channel to "+target+" held: connection ended before approval", adm.RequestID))
			case timedOut:
				c.rejectChannel(nch, ssh.Prohibited,
					withRequest(fmt.Sprintf("access to %s is waiting for approval, not given within %s; connect again once it is approved", target, s.cfg.HoldFor), adm.RequestID),
					withRequest(fmt.Sprintf("channel to %s held %s without approval", target, s.cfg.HoldFor), adm.RequestID))
			default:
				c.rejectChannel(nch, ssh.Prohibited, withRequest("access to "+target+" was not approved", adm.RequestID),
					withRequest("channel to "+target+" held: request not approved", adm.RequestID))
			}
			return
		}
	default:
		reason := adm.Reason
		if reason == "" {
			reason = "access to " + target + " denied"
		}
		c.rejectChannel(nch, ssh.Prohibited, withRequest(reason, adm.RequestID),
			withRequest(fmt.Sprintf("channel to %s denied: %s", target, reason), adm.RequestID))
		return
	}

	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	s.b.Event("channel.open", c.ident, fmt.Sprintf("%s port %d (client side %.64s port %d)", target, port, p.OrigAddr, p.OrigPort))
	s.b.Serve(c.ctx, c.ident, target, &activeChannel{Channel: ch, c: c})
	ch.Close()
	s.b.Event("channel.close", c.ident, target)
}

func withRequest(msg, id string) string {
	if id == "" {
		return msg
	}
	return msg + " (request " + id + ")"
}

// isAddress reports whether a forwarding destination is an IP address in any
// spelling a resolver would take (including "10.1" and "0x7f.1"), as opposed
// to a name.
func isAddress(h string) bool {
	if h == "" {
		return true
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return true
	}
	if strings.Contains(h, ":") {
		return true // IPv6 in some other spelling
	}
	digits := true
	for _, part := range strings.Split(h, ".") {
		if part == "" {
			continue
		}
		p := strings.ToLower(part)
		if strings.HasPrefix(p, "0x") {
			p = p[2:]
			if strings.Trim(p, "0123456789abcdef") != "" {
				digits = false
			}
			continue
		}
		if strings.Trim(p, "0123456789") != "" {
			digits = false
		}
	}
	return digits
}

// activeChannel marks the connection active whenever bytes move.
type activeChannel struct {
	ssh.Channel
	c *conn
}

func (a *activeChannel) Read(p []byte) (int, error) {
	n, err := a.Channel.Read(p)
	if n > 0 {
		a.c.touch()
	}
	return n, err
}

func (a *activeChannel) Write(p []byte) (int, error) {
	n, err := a.Channel.Write(p)
	if n > 0 {
		a.c.touch()
	}
	return n, err
}

// session serves a "session" channel: one exec command from the vocabulary,
// everything else refused with a message on stderr and exit status 1.
func (c *conn) session(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	stop := context.AfterFunc(c.ctx, func() { ch.Close() })
	defer stop()
	for r := range reqs {
		switch r.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				r.Reply(false, nil)
				return
			}
			r.Reply(true, nil)
			c.touch()
			status := c.exec(ch, p.Command)
			c.touch()
			exit(ch, status)
			return
		case "shell":
			r.Reply(true, nil)
			c.refuseSession(ch, "request shell", msgShell, "shell refused", true)
			return
		case "subsystem":
			var p struct{ Name string }
			ssh.Unmarshal(r.Payload, &p)
			r.Reply(true, nil)
			c.refuseSession(ch, "request subsystem", msgSubsystem, fmt.Sprintf("subsystem %.64q refused", p.Name), false)
			return
		// The channel's end answers these three: OpenSSH drops pending
		// stderr when a forced PTY is refused, so no failure reply is sent.
		case "pty-req":
			c.refuseSession(ch, "request pty-req", msgPTY, "terminal (pty-req) refused", false)
			return
		case "x11-req":
			c.refuseSession(ch, "request x11-req", msgX11, "X11 forwarding (x11-req) refused", false)
			return
		case "auth-agent-req@openssh.com":
			c.refuseSession(ch, "request auth-agent-req@openssh.com", msgAgent, "agent forwarding (auth-agent-req@openssh.com) refused", false)
			return
		default: // env, signal, window-change, keepalives: no, quietly
			r.Reply(false, nil)
		}
	}
}

// refuseSession records the refusal, tells the vendor on stderr and ends the
// channel with exit status 1.
func (c *conn) refuseSession(ch ssh.Channel, what, vendor, audit string, usage bool) {
	c.s.b.Refused(c.src, &c.ident, what, audit)
	msg := "brana: " + vendor + "\n"
	if usage {
		msg += c.s.usageText()
	}
	io.WriteString(ch.Stderr(), msg)
	exit(ch, 1)
}

func exit(ch ssh.Channel, status int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
	ch.CloseWrite()
}

// exec runs one command of the vocabulary and returns its exit status.
func (c *conn) exec(ch ssh.Channel, command string) int {
	argv, err := splitWords(command)
	if err == nil && len(argv) == 0 {
		err = errors.New("empty command")
	}
	if err != nil {
		c.s.b.Refused(c.src, &c.ident, "exec", fmt.Sprintf("command %.200q: %v", command, err))
		io.WriteString(ch.Stderr(), "brana: cannot read that command\n"+c.s.usageText())
		return 1
	}
	switch argv[0] {
	case "help":
		io.WriteString(ch, c.s.usageText())
		return 0
	case "request", "status":
		return c.s.b.Exec(c.ctx, c.ident, argv, &activeChannel{Channel: ch, c: c})
	}
	c.s.b.Refused(c.src, &c.ident, "exec", fmt.Sprintf("unknown command %.64q (full command %.200q)", argv[0], command))
	fmt.Fprintf(ch.Stderr(), "brana: unknown command %.64q\n%s", argv[0], c.s.usageText())
	return 1
}
