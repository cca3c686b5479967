package modbusrelay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/modbustarget"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// conn is one upstream client connection. Requests are handled in order, one
// at a time; its buffers are fixed so the per-request path does not allocate.
type conn struct {
	s     *Server
	nc    Stream
	dl    deadliner // nil when the stream has no deadlines (an SSH channel)
	party *policy.Party
	adm   atomic.Pointer[policy.Admission] // replaced when a reload re-admits the session
	via   string

	certCountry string

	// The last access request this session asked for, so that a client
	// polling while it waits does not ask again for every command.
	asked       string
	askedTarget string
	askedClass  opclass.Class
	askedAt     time.Time
	id          string
	src         string
	sess        *sessions.Session

	killed atomic.Pointer[string] // why the session was stopped from outside

	images     map[string]*image // program transfers, per target with a program profile
	resultNote string            // added to the next result record's status

	rbuf [8 * modbus.MaxADULen]byte
	wbuf [modbus.MaxADULen]byte
	resp [modbus.MaxPDULen]byte
	req  modbus.Request
	rec  audit.Record

	requests, denied, failed uint64
	closeReason              string
	deadlineSet              time.Time
	received                 time.Time // of the request being handled, for the answer latency
}

func (c *conn) serve(ctx context.Context) {
	c.openRecord()
	defer c.closeRecord()
	defer c.nc.Close()
	start, end := 0, 0
	for {
		frame, n, err := modbus.SplitFrame(c.rbuf[start:end])
		if err != nil {
			// The stream can no longer be framed: never resync, close.
			c.invalidFrame(c.rbuf[start:end], err)
			c.closeReason = "malformed frame"
			return
		}
		if frame != nil {
			keep, herr := c.handle(ctx, frame)
			if herr != nil || !keep {
				return
			}
			start += n
			continue
		}
		if start > 0 {
			end = copy(c.rbuf[:], c.rbuf[start:end])
			start = 0
		}
		// Move the idle deadline only when it has aged a little: a deadline
		// per read is a timer update per request for no gain.
		if idle := c.s.cfg.IdleTimeout.D(); idle > 0 && c.dl != nil {
			if now := time.Now(); now.Sub(c.deadlineSet) > idle/64 {
				c.dl.SetReadDeadline(now.Add(idle))
				c.deadlineSet = now
			}
		}
		m, err := c.nc.Read(c.rbuf[end:])
		end += m
		if err != nil {
			switch {
			case c.killed.Load() != nil:
				c.closeReason = *c.killed.Load()
			case errors.Is(err, io.EOF):
				c.closeReason = "client closed"
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.closeReason = "idle timeout"
			case ctx.Err() != nil:
				c.closeReason = "gateway stopping"
			default:
				c.closeReason = "read error: " + err.Error()
			}
			if end > start && m == 0 {
				c.closeReason += " mid-frame"
			}
			return
		}
	}
}

// readmit decides on the session again under the policy now in force (after
// a reload): a party that is gone or now refused loses the session at once;
// otherwise the new admission applies from the next command.
func (c *conn) readmit() {
	p := c.s.d.Policy.Load().Party(c.party.ID)
	if p == nil {
		c.sess.Stop("policy reload: party " + c.party.ID + " is no longer enrolled")
		return
	}
	adm := c.s.d.Admit(p, Identity{Party: p, Source: c.src, Via: c.via, CertCountry: c.certCountry})
	if adm.Verdict == policy.Deny {
		c.sess.Stop("policy reload: session no longer admitted: " + adm.String())
		return
	}
	c.sess.SetSupervised(adm.Supervised)
	c.adm.Store(&adm)
}

// kill ends the session from another goroutine (an engineer, a revoked
// grant, a policy reload); the serving goroutine records why.
func (c *conn) kill(reason string) {
	c.killed.Store(&reason)
	c.nc.Close()
}

// handle decides on and forwards one request. It reports whether to keep the
// connection open.
func (c *conn) handle(ctx context.Context, frame modbus.ADU) (bool, error) {
	t0 := time.Now()
	c.received = t0
	c.requests++
	if c.killed.Load() != nil {
		return false, nil
	}
	txid, unit, fc := frame.TxID(), frame.Unit(), frame.Func()
	r := &c.rec
	c.beginRecord(unit, fc)

	rt := &c.s.routes[unit]
	if !rt.ok {
		r.Decision, r.Reason = "deny", "no-route"
		r.Detail = "no route for unit " + strconv.Itoa(int(unit)) + " on listener " + c.s.cfg.Name
		return c.refuseRequest(txid, unit, fc, modbus.ExGatewayPath, t0, false)
	}
	r.Target = rt.name
	dunit := unit
	if rt.unit >= 0 {
		dunit = byte(rt.unit)
	}
	r.Unit = int(dunit)

	if err := modbus.ParseRequest(dunit, frame.PDU(), &c.req); err != nil {
		r.Decision, r.Reason, r.Detail = "invalid", "malformed", err.Error()
		return c.refuseRequest(txid, unit, fc, modbus.ExceptionFor(err), t0, false)
	}
	commit := false
	if rt.prog != nil {
		commit = rt.prog.classify(&c.req)
	}
	c.describe()

	approved := c.grant(rt.name)
	adm := c.adm.Load()
	rule, derr := c.s.d.Policy.Load().DecideAdmitted(adm, approved, c.party, rt.name, &c.req)
	if rule != nil {
		r.Rule = rule.Name
	}
	if derr != nil {
		var d *policy.Denial
		reset := false
		r.Decision, r.Reason = "deny", "policy"
		r.Detail = derr.Error()
		if errors.As(derr, &d) {
			r.Reason = d.Reason.String()
			if d.Rule != nil {
				r.Rule = d.Rule.Name
				reset = d.Rule.Reset
			}
			if d.Reason == policy.NeedsApproval {
				r.Decision = "held"
				r.Detail = c.askForGrant(rt.name)
			}
		}
		return c.refuseRequest(txid, unit, fc, exceptionFor(derr), t0, reset)
	}
	if adm.NeedsWatcher(c.req.Class) && !c.sess.Watched() {
		// "Busy, try later", as for a held command: it passes once an
		// engineer watches the session.
		r.Decision, r.Reason, r.Detail = "deny", reasonUnsupervised, detailUnsupervised
		return c.refuseRequest(txid, unit, fc, modbus.ExServerBusy, t0, false)
	}
	var img *image
	if rt.prog != nil && c.req.Class == opclass.Program {
		// Image data and the commit, checked before anything is forwarded.
		var code byte
		if img, code = c.gateImage(rt, commit); code != 0 {
			return c.refuseRequest(txid, unit, fc, code, t0, false)
		}
	}

	// Write-ahead: the command is in the log before it reaches the plant.
	r.Decision = "allow"
	c.s.d.Metrics.Decided(r.Decision)
	seq, err := c.s.d.Audit.Append(context.WithoutCancel(ctx), r)
	if err != nil {
		c.failed++
		c.s.d.Log.Error("audit log refused a record; refusing the command", "session", c.id, "err", err)
		if seq != 0 {
			// The allow record may still reach the file late: say that the
			// command was refused after all.
			c.auditRefusal(seq, t0, err)
		}
		if img != nil {
			img.done(commit, false, "not forwarded: the audit log refused its record")
		}
		c.resultNote = ""
		return c.reply(modbus.AppendException(c.wbuf[:0], txid, unit, fc, modbus.ExServerFailure))
	}

	c.sess.Counted(false)
	n, out, terr := rt.target.Do(ctx, &c.req, c.resp[:])
	if img != nil {
		exc := n > 0 && c.resp[0]&0x80 != 0
		why := "no answer"
		switch {
		case terr != nil:
			why = terr.Error()
		case exc:
			why = "exception " + strconv.Itoa(int(c.resp[min(1, n-1)]))
		}
		ok := terr == nil && n > 0 && !exc
		img.done(commit, ok, why)
		if !ok {
			c.resultNote = ""
		}
	}
	c.resultRecord(seq, t0, out, n, terr)
	if terr != nil {
		c.failed++
		return c.reply(modbus.AppendException(c.wbuf[:0], txid, unit, fc, modbustarget.Exception(terr)))
	}
	if n == 0 {
		return true, nil // serial broadcast: nobody answers
	}
	return c.reply(modbus.AppendADU(c.wbuf[:0], txid, unit, c.resp[:n]))
}

// grant looks for an active grant when the session needs one for this
// command (its admission asked for approval, or the command is program-class)
// and records it. The lookup is in memory and does not allocate.
func (c *conn) grant(target string) bool {
	ap := c.s.d.Approvals
	if ap == nil || (c.adm.Load().Verdict != policy.Approval && c.req.Class != opclass.Program) {
		return false
	}
	gr, ok := ap.Active(c.party.ID, target, c.req.Class)
	if !ok {
		return false
	}
	c.rec.Grant = gr.ID
	if c.sess.Grant() != gr.ID {
		c.sess.SetGrant(gr.ID)
		ap.Attach(gr.ID, c.id)
	}
	return true
}

// askForGrant creates or joins a pending access request for what this
// session just tried, since a Modbus client has no way to ask, and says so.
func (c *conn) askForGrant(target string) string {
	ap := c.s.d.Approvals
	if ap == nil {
		return "needs an approved grant; no approvals are configured"
	}
	now := time.Now()
	if c.asked != "" && c.askedTarget == target && c.askedClass == c.req.Class && now.Sub(c.askedAt) < 10*time.Second {
		if r, err := ap.Get(c.asked); err == nil && r.State == approvals.StatePending {
			return "held: awaiting approval of access request " + c.asked
		}
	}
	req, created, err := ap.RequestFor(c.s.d.PartyInfo(c.party), target, c.req.Class,
		"asked for by Modbus session "+c.id+" from "+c.src+" ("+modbus.FuncName(c.req.Func)+")")
	if err != nil {
		return "needs an approved grant; the access request could not be made: " + err.Error()
	}
	c.asked, c.askedTarget, c.askedClass, c.askedAt = req.ID, target, c.req.Class, now
	if created {
		c.s.d.Log.Info("access request created for a held session", "request", req.ID, "session", c.id, "party", c.party.ID)
	}
	return "held: awaiting approval of access request " + req.ID
}

// The audit reason and detail of a command refused because its supervised
// session has no engineer watching.
const (
	reasonUnsupervised = "unsupervised"
	detailUnsupervised = "supervised session: no engineer watches it in the console; commands above read pass only while one does"
)

// exceptionFor translates a policy denial at this protocol's edge.
func exceptionFor(err error) byte {
	var d *policy.Denial
	if !errors.As(err, &d) {
		return modbus.ExIllegalFunction
	}
	switch d.Reason {
	case policy.AddressDenied:
		return modbus.ExIllegalDataAddress
	case policy.ValueDenied, policy.MaskedWrite:
		return modbus.ExIllegalDataValue
	case policy.UnitDenied:
		return modbus.ExGatewayPath
	case policy.NeedsApproval:
		// "Busy, try later": the client may retry once an engineer approves.
		return modbus.ExServerBusy
	default:
		return modbus.ExIllegalFunction
	}
}

// refuseRequest records a request that is not forwarded and answers it with
// an exception. The record is complete (no result record follows).
func (c *conn) refuseRequest(txid uint16, unit, fc, code byte, t0 time.Time, reset bool) (bool, error) {
	c.denied++
	c.sess.Counted(true)
	r := &c.rec
	c.s.d.Metrics.Decided(r.Decision)
	r.Exception = int(code)
	r.Status = "exception " + modbus.ExceptionName(code)
	r.LatencyUS = time.Since(t0).Microseconds()
	if _, err := c.s.d.Audit.Append(context.Background(), r); err != nil {
		c.s.d.Log.Error("audit log refused a denial record", "session", c.id, "err", err)
		code = modbus.ExServerFailure
	}
	keep, err := c.reply(modbus.AppendException(c.wbuf[:0], txid, unit, fc, code))
	if reset && err == nil {
		c.closeReason = "reset by rule " + r.Rule
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as the rule asks
		}
		return false, nil
	}
	return keep, err
}

func (c *conn) reply(b []byte) (bool, error) {
	if c.dl != nil {
		c.dl.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := c.nc.Write(b); err != nil {
		c.closeReason = "write error: " + err.Error()
		return false, err
	}
	c.s.d.Metrics.Answered(c.received)
	return true, nil
}

func (c *conn) base(t audit.Type) {
	r := &c.rec
	r.Reset()
	r.Type = t
	r.Session = c.id
	r.Party, r.PartyName, r.Org = c.party.ID, c.party.Name, c.party.Organisation
	r.Source = c.src
	r.Listener = c.s.cfg.Name
}

func (c *conn) beginRecord(unit, fc byte) {
	c.base(audit.Command)
	c.rec.Unit = int(unit)
	c.rec.Func = int(fc)
}

// describe copies the decoded request into the record.
func (c *conn) describe() {
	r, q := &c.rec, &c.req
	r.Class = q.Class.String()
	switch q.Func {
	case 8, 43, 90:
		r.Sub = int(q.Sub)
	}
	if q.Read.Count > 0 {
		r.ReadTab, r.ReadAt, r.ReadN = q.Read.Table.String(), int(q.Read.Start), int(q.Read.Count)
	}
	if q.Write.Count > 0 {
		r.WriteTab, r.WriteAt, r.WriteN = q.Write.Table.String(), int(q.Write.Start), int(q.Write.Count)
	}
	if n := q.Values.Len(); n > 0 {
		r.NValues = n
		for i := 0; i < n && i < audit.MaxValues; i++ {
			r.Values = append(r.Values, q.Values.At(i))
		}
	}
}

func (c *conn) resultRecord(cmd uint64, t0 time.Time, out modbustarget.Outcome, n int, terr error) {
	r := &c.rec
	target, unit, fc, grant := r.Target, r.Unit, r.Func, r.Grant
	c.base(audit.Result)
	r.Cmd, r.Target, r.Unit, r.Func, r.Grant = cmd, target, unit, fc, grant
	r.LatencyUS = time.Since(t0).Microseconds()
	r.Retries = out.Retries
	switch {
	case terr != nil:
		code := modbustarget.Exception(terr)
		r.Exception = int(code)
		r.Status = "failed"
		r.Detail = terr.Error()
	case n == 0:
		r.Status = "broadcast sent"
	default:
		if code, ok := modbus.ExceptionOf(c.resp[:n]); ok {
			r.Exception = int(code)
			r.Status = "exception from target: " + modbus.ExceptionName(code)
		} else {
			r.Status = "ok"
			if c.resultNote != "" {
				r.Status += "; " + c.resultNote
			}
		}
	}
	c.resultNote = ""
	if _, err := c.s.d.Audit.Enqueue(r); err != nil {
		c.s.d.Log.Error("audit log refused a result record", "session", c.id, "err", err)
	}
}

// auditRefusal follows a command record that was not accepted in time with
// the fact that the command was refused and never forwarded.
func (c *conn) auditRefusal(cmd uint64, t0 time.Time, cause error) {
	r := &c.rec
	target, unit, fc := r.Target, r.Unit, r.Func
	c.base(audit.Result)
	r.Cmd, r.Target, r.Unit, r.Func = cmd, target, unit, fc
	r.Exception = int(modbus.ExServerFailure)
	r.Status = "refused: not forwarded"
	r.Detail = "the audit log did not accept the command record in time: " + cause.Error()
	r.LatencyUS = time.Since(t0).Microseconds()
	c.s.d.Audit.Enqueue(r)
}

func (c *conn) invalidFrame(b []byte, ferr error) {
	c.base(audit.Command)
	r := &c.rec
	r.Decision, r.Reason = "invalid", "framing"
	c.s.d.Metrics.Decided(r.Decision)
	r.Detail = ferr.Error() + "; header " + hexPrefix(b, 8) + "; connection closed"
	if _, err := c.s.d.Audit.Append(context.Background(), r); err != nil {
		c.s.d.Log.Error("audit log refused a record", "session", c.id, "err", err)
	}
}

func hexPrefix(b []byte, n int) string {
	const digits = "0123456789abcdef"
	if len(b) > n {
		b = b[:n]
	}
	out := make([]byte, 0, 3*len(b))
	for i, x := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[x>>4], digits[x&0xf])
	}
	return string(out)
}

func (c *conn) openRecord() {
	c.base(audit.SessionOpen)
	c.rec.Decision = "allow"
	adm := c.adm.Load()
	if adm.Verdict == policy.Approval {
		c.rec.Decision = "held"
	}
	c.rec.Reason = "step " + strconv.Itoa(adm.Step)
	c.rec.Detail = "identified by " + c.via + "; admission: " + adm.String()
	if _, err := c.s.d.Audit.Append(context.Background(), &c.rec); err != nil {
		c.s.d.Log.Error("audit log refused a session record", "session", c.id, "err", err)
	}
	c.s.d.Log.Info("session opened", "session", c.id, "party", c.party.ID, "source", c.src)
}

func (c *conn) closeRecord() {
	c.base(audit.SessionClose)
	if c.closeReason == "" {
		c.closeReason = "closed"
	}
	c.rec.Status = c.closeReason
	c.rec.Detail = "requests=" + strconv.FormatUint(c.requests, 10) + " refused=" + strconv.FormatUint(c.denied, 10) +
		" failed=" + strconv.FormatUint(c.failed, 10)
	if _, err := c.s.d.Audit.Append(context.Background(), &c.rec); err != nil {
		c.s.d.Log.Error("audit log refused a session record", "session", c.id, "err", err)
	}
	c.s.d.Log.Info("session closed", "session", c.id, "reason", c.closeReason, "requests", c.requests)
}
