package opcuarelay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/brana-ot/brana/protocols/opcua"
)

// forward decides on every element of req, writes the decision to the audit
// log, forwards what is allowed and answers in the client's order.
func (s *session) forward(ctx context.Context, reqID uint32, req ua.Request) {
	c := s.c
	t0 := time.Now()
	if _, publish := req.(*ua.PublishRequest); !publish {
		// Every way out below has answered. A Publish is a long poll: its
		// wait is the PLC's keep-alive, not how long brana took.
		defer c.s.d.Metrics.Answered(t0)
	}
	h := req.Header()
	s.requests.Add(1)
	s.reg.Counted(false)

	if _, ok := req.(*ua.TransferSubscriptionsRequest); ok {
		// Every PLC session is brana's: moving subscriptions between them
		// would hand one vendor another's. Never forwarded, whatever the rules.
		rec := s.record(audit.Command, "TransferSubscriptions")
		rec.Decision, rec.Reason = "deny", "not-offered"
		rec.Detail = "TransferSubscriptions is never forwarded: the subscriptions of other sessions belong to other vendors"
		s.refuse(reqID, h, rec, t0, ua.StatusBadServiceUnsupported)
		return
	}
	if _, isCall := req.(*ua.CallRequest); isCall && s.files != nil {
		// File calls are checked, forwarded and answered one Call at a
		// time, so that the gate sees them in the order the PLC does: no
		// Write may slip in behind a Close that was checked already.
		s.fileSeq.Lock()
		defer s.fileSeq.Unlock()
	}
	learnErr := error(nil)
	var calls []*ua.CallMethodRequest // as the client sent them, before refused ones are cut out
	if call, ok := req.(*ua.CallRequest); ok {
		learnErr = s.learnMethods(ctx, call)
		calls = call.MethodsToCall
	}
	var regOrig []*ua.NodeID
	if r, ok := req.(*ua.RegisterNodesRequest); ok {
		regOrig = append(regOrig, r.NodesToRegister...)
	}

	s.mu.Lock()
	svc, elems, err := s.cl.Classify(req)
	s.mu.Unlock()
	if err != nil {
		c.fault(reqID, h, ua.StatusBadDecodingError)
		return
	}

	pol := c.s.d.Policy.Load()
	adm := s.adm.Load()
	party, target := s.who.Party, c.s.target.Name()
	if paths := pol.OPCUAPaths(party, target); len(paths) > 0 {
		s.resolvePaths(ctx, paths)
	}
	view := policy.OPCUAView{NS: s.ns, Paths: &s.paths}
	rec := s.record(audit.Command, svc)
	n := 0
	for i := range elems {
		if elems[i].Index >= 0 {
			n++
		}
	}
	d := make(opcua.Denials, n)
	whole, held := false, false
	var heldClass opclass.Class
	var fileSteps []fileStep
	grants := map[opclass.Class]string{}
	for i := range elems {
		e := &elems[i]
		gid := s.grant(grants, adm, e.Class)
		rule, derr := pol.DecideOPCUAAdmitted(adm, gid != "", party, target, &view, e)
		if derr == nil && learnErr != nil && e.Service == "Call" {
			derr = fmt.Errorf("the method's type could not be learned from the PLC: %w", learnErr)
		}
		unsupervised := derr == nil && adm.NeedsWatcher(e.Class) && !s.reg.Watched()
		if unsupervised {
			derr = errUnsupervised
		}
		imageDenied := false
		if derr == nil && s.files != nil && e.Index >= 0 && e.Index < len(calls) {
			// Image data is followed and a commit held until its image is
			// approved, only once everything else allows the call.
			step, note, ferr := s.files.check(calls[e.Index], e, c.s.d.Manifest.Load())
			switch {
			case ferr != nil:
				derr, imageDenied = ferr, true
				rec.Detail = joinDetail(rec.Detail, ferr.Error())
			case step.call != callNone:
				fileSteps = append(fileSteps, step)
				rec.Detail = joinDetail(rec.Detail, note)
			}
		}
		it := describe(req, e)
		it.Decision = "allow"
		if rule != nil {
			it.Rule = rule.Name
			if rec.Rule == "" {
				rec.Rule = rule.Name // the first allowing rule, for filtering; each item has its own
			}
		}
		if gid != "" {
			rec.Grant = gid
		}
		if derr != nil {
			it.Decision, it.Reason = "deny", "policy"
			var dn *policy.Denial
			if errors.As(derr, &dn) {
				it.Reason = dn.Reason.String()
				if dn.Rule != nil {
					it.Rule = dn.Rule.Name
				}
				if dn.Reason == policy.NeedsApproval {
					it.Decision, held, heldClass = "held", true, e.Class
				}
			}
			if unsupervised {
				it.Reason = reasonUnsupervised
				if rec.Reason == "" {
					rec.Reason = reasonUnsupervised
				}
			}
			if imageDenied {
				it.Reason = reasonImageNotApproved
				if rec.Reason == "" {
					rec.Reason = reasonImageNotApproved
				}
			}
			if rec.Detail == "" {
				rec.Detail = derr.Error()
			}
			it.Status = statusName(ua.StatusBadUserAccessDenied)
			if e.Index < 0 {
				whole = true
			} else {
				d[e.Index] = true
			}
		}
		rec.NItems++
		if len(rec.Items) < audit.MaxValues {
			rec.Items = append(rec.Items, it)
		}
	}
	rec.Class = classOf(elems)
	as := services[svc]
	if held {
		rec.Detail = s.askForGrant(heldClass)
	}

	switch {
	case whole || (d.Count() > 0 && as == nil):
		rec.Decision = "deny"
		if held {
			rec.Decision = "held"
		}
		s.fileAnswered(fileSteps, nil, "not forwarded: the request was refused")
		s.refuse(reqID, h, rec, t0, ua.StatusBadUserAccessDenied)
		return
	case n > 0 && d.All():
		rec.Decision = "deny"
		if held {
			rec.Decision = "held"
		}
		resp := as.refused(d)
		if regOrig != nil {
			resp.(*ua.RegisterNodesResponse).RegisteredNodeIDs = regOrig
		}
		resp.SetHeader(responseHeader(h, ua.StatusOK))
		s.answerRefused(reqID, resp, rec, t0)
		return
	}

	// Write-ahead: the request is in the log before it reaches the plant.
	rec.Decision = "allow"
	if d.Count() > 0 {
		rec.Decision = "partial"
	}
	c.s.d.Metrics.Decided(rec.Decision)
	seq, err := c.s.d.Audit.Append(context.WithoutCancel(ctx), rec)
	if err != nil {
		s.failed.Add(1)
		c.s.d.Log.Error("audit log refused a record; refusing the request", "session", s.id, "err", err)
		s.fileAnswered(fileSteps, nil, "not forwarded: the audit log refused its record")
		c.fault(reqID, h, ua.StatusBadInternalError)
		return
	}
	if d.Count() > 0 {
		if err := as.keep(req, d); err != nil {
			s.fileAnswered(fileSteps, nil, "not forwarded: "+err.Error())
			s.result(seq, svc, t0, nil, err)
			c.fault(reqID, h, ua.StatusBadInternalError)
			return
		}
	}
	resp, terr := s.plc.Do(ctx, req)
	if terr == nil && d.Count() > 0 {
		if err := as.merge(resp, d); err != nil {
			terr = fmt.Errorf("the PLC's answer does not match the forwarded request: %w", err)
		}
		if r, ok := resp.(*ua.RegisterNodesResponse); ok && terr == nil && len(r.RegisteredNodeIDs) == len(d) {
			for i, x := range d {
				if x {
					r.RegisteredNodeIDs[i] = regOrig[i]
				}
			}
		}
	}
	if terr != nil {
		s.failed.Add(1)
		s.fileAnswered(fileSteps, nil, "no answer from the PLC: "+terr.Error())
		s.result(seq, svc, t0, nil, terr)
		code := ua.StatusBadCommunicationError
		if errors.Is(terr, context.DeadlineExceeded) || errors.Is(terr, ua.StatusBadTimeout) {
			code = ua.StatusBadTimeout
		}
		c.fault(reqID, h, code)
		return
	}
	s.after(req, resp, regOrig)
	if r, ok := resp.(*ua.CallResponse); ok {
		why := ""
		if st := r.ResponseHeader.ServiceResult; st != ua.StatusOK {
			why = "the PLC answered " + statusName(st)
		}
		s.fileAnswered(fileSteps, r.Results, why)
	}
	rh := resp.Header()
	rh.RequestHandle = h.RequestHandle
	rh.ServiceDiagnostics = &ua.DiagnosticInfo{}
	rh.StringTable = nil
	s.result(seq, svc, t0, resp, nil)
	c.send(reqID, resp)
}

// fileAnswered passes the outcome of forwarded file calls to the file gate.
func (s *session) fileAnswered(steps []fileStep, res []*ua.CallMethodResult, why string) {
	if s.files != nil && len(steps) > 0 {
		s.files.answered(steps, res, why)
	}
}

// joinDetail adds to an audit detail.
func joinDetail(detail, more string) string {
	switch {
	case more == "":
		return detail
	case detail == "":
		return more
	}
	return detail + "; " + more
}

// A command above read in a supervised session that no engineer watches is
// refused per element; it passes once one watches.
const reasonUnsupervised = "unsupervised"

var errUnsupervised = errors.New("supervised session: no engineer watches it in the console; commands above read pass only while one does")

// after keeps what the session learns from an answer: RegisterNodes aliases.
func (s *session) after(req ua.Request, resp ua.Response, orig []*ua.NodeID) {
	switch r := resp.(type) {
	case *ua.RegisterNodesResponse:
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, alias := range r.RegisteredNodeIDs {
			if i < len(orig) && alias != nil && orig[i] != nil && alias.String() != orig[i].String() {
				if err := s.aliases.Register(alias, orig[i]); err != nil {
					s.c.s.d.Log.Warn("opc ua alias not kept", "session", s.id, "err", err)
				}
			}
		}
	case *ua.UnregisterNodesResponse:
		if u, ok := req.(*ua.UnregisterNodesRequest); ok && r.ResponseHeader.ServiceResult == ua.StatusOK {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, n := range u.NodesToUnregister {
				if n != nil {
					s.aliases.Unregister(n)
				}
			}
		}
	}
}

// grant finds an active grant when this element needs one (the session's
// admission asked for approval, or the class is program).
func (s *session) grant(cache map[opclass.Class]string, adm *policy.Admission, class opclass.Class) string {
	ap := s.c.s.d.Approvals
	if ap == nil || (adm.Verdict != policy.Approval && class != opclass.Program) {
		return ""
	}
	if g, ok := cache[class]; ok {
		return g
	}
	gr, ok := ap.Active(s.who.Party.ID, s.c.s.target.Name(), class)
	if !ok {
		cache[class] = ""
		return ""
	}
	cache[class] = gr.ID
	if s.reg.Grant() != gr.ID {
		s.reg.SetGrant(gr.ID)
		ap.Attach(gr.ID, s.id)
	}
	return gr.ID
}

// askForGrant files (or joins) an access request for what the session just
// tried: an OPC UA client has no way to ask.
func (s *session) askForGrant(class opclass.Class) string {
	ap := s.c.s.d.Approvals
	if ap == nil {
		return "needs an approved grant; no approvals are configured"
	}
	target := s.c.s.target.Name()
	s.mu.Lock()
	asked, at := s.asked, s.askedAt
	s.mu.Unlock()
	if asked != "" && time.Since(at) < 10*time.Second {
		if r, err := ap.Get(asked); err == nil && r.State == approvals.StatePending {
			return "held: awaiting approval of access request " + asked
		}
	}
	req, created, err := ap.RequestFor(s.c.s.d.PartyInfo(s.who.Party), target, class,
		"asked for by OPC UA session "+s.id+" from "+s.who.Source)
	if err != nil {
		return "needs an approved grant; the access request could not be made: " + err.Error()
	}
	s.mu.Lock()
	s.asked, s.askedAt = req.ID, time.Now()
	s.mu.Unlock()
	if created {
		s.c.s.d.Log.Info("access request created for a held opc ua session", "request", req.ID, "session", s.id)
	}
	return "held: awaiting approval of access request " + req.ID
}

// refuse records a request refused whole and answers it with a fault.
func (s *session) refuse(reqID uint32, h *ua.RequestHeader, rec *audit.Record, t0 time.Time, code ua.StatusCode) {
	s.denied.Add(1)
	s.reg.Counted(true)
	s.c.s.d.Metrics.Decided(rec.Decision)
	rec.Status = statusName(code)
	rec.LatencyUS = time.Since(t0).Microseconds()
	if _, err := s.c.s.d.Audit.Append(context.Background(), rec); err != nil {
		s.c.s.d.Log.Error("audit log refused a denial record", "session", s.id, "err", err)
	}
	s.c.fault(reqID, h, code)
}

// answerRefused records a request whose every element was refused and
// sends the answer built here.
func (s *session) answerRefused(reqID uint32, resp ua.Response, rec *audit.Record, t0 time.Time) {
	s.denied.Add(1)
	s.reg.Counted(true)
	s.c.s.d.Metrics.Decided(rec.Decision)
	rec.Status = "Good"
	rec.LatencyUS = time.Since(t0).Microseconds()
	if _, err := s.c.s.d.Audit.Append(context.Background(), rec); err != nil {
		s.c.s.d.Log.Error("audit log refused a denial record", "session", s.id, "err", err)
	}
	s.c.send(reqID, resp)
}

// result records the outcome of a forwarded request, linked to its command.
func (s *session) result(cmd uint64, svc string, t0 time.Time, resp ua.Response, err error) {
	rec := s.record(audit.Result, svc)
	rec.Cmd = cmd
	rec.LatencyUS = time.Since(t0).Microseconds()
	if err != nil {
		rec.Decision, rec.Status, rec.Detail = "error", "failed", err.Error()
	} else {
		rec.Status = statusName(resp.Header().ServiceResult)
		if as := services[svc]; as != nil {
			for i, st := range as.statuses(resp) {
				rec.NItems++
				if i < audit.MaxValues {
					rec.Items = append(rec.Items, audit.Item{Status: statusName(st)})
				}
			}
		}
	}
	s.c.s.d.Audit.Enqueue(rec)
}

func (s *session) record(t audit.Type, svc string) *audit.Record {
	c := s.c
	p := s.who.Party
	rec := &audit.Record{Type: t, Session: s.id, Party: p.ID, PartyName: p.Name, Org: p.Organisation,
		Source: s.who.Source, Listener: c.s.opt.Name, Target: c.s.target.Name(), Unit: -1, Func: -1, Sub: -1, Service: svc}
	return rec
}

// classOf is the highest class among the elements, for filtering the log.
func classOf(elems []opcua.Element) string {
	var top opclass.Class
	for i := range elems {
		if elems[i].Class > top {
			top = elems[i].Class
		}
	}
	return top.String()
}

// describe is the audit item of one element: what it names and writes.
func describe(req ua.Request, e *opcua.Element) audit.Item {
	it := audit.Item{Class: e.Class.String(), Range: e.IndexRange}
	switch {
	case e.ObjectID != nil || e.MethodID != nil:
		it.Node = idString(e.ObjectID) + "/" + idString(e.MethodID)
	case e.NodeID != nil:
		it.Node = e.NodeID.String()
	}
	if e.Attribute != 0 {
		it.Attr = attrName(e.Attribute)
	}
	if e.Detail != "" && it.Node == "" {
		it.Node = e.Detail
	}
	if e.Index < 0 {
		return it
	}
	switch r := req.(type) {
	case *ua.WriteRequest:
		if w := r.NodesToWrite[e.Index]; w != nil && w.Value != nil && w.Value.Value != nil {
			it.Value = cut(fmt.Sprint(w.Value.Value.Value()))
		}
	case *ua.CallRequest:
		if m := r.MethodsToCall[e.Index]; m != nil && len(m.InputArguments) > 0 {
			var b strings.Builder
			for i, a := range m.InputArguments {
				if i > 0 {
					b.WriteString(", ")
				}
				if a != nil {
					fmt.Fprint(&b, a.Value())
				}
				if b.Len() > audit.MaxItemValue {
					break
				}
			}
			it.Value = cut(b.String())
		}
	}
	return it
}

func idString(n *ua.NodeID) string {
	if n == nil {
		return "?"
	}
	return n.String()
}

func cut(s string) string {
	if len(s) <= audit.MaxItemValue {
		return s
	}
	return s[:audit.MaxItemValue] + "…"
}

func attrName(a ua.AttributeID) string {
	s := a.String()
	return strings.TrimPrefix(s, "AttributeID")
}
