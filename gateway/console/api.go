package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
)

// readJSON decodes a small JSON body strictly; an empty body is {}.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

type whoamiAnswer struct {
	User  string   `json:"user"`
	Name  string   `json:"name"`
	Party string   `json:"party,omitempty"`
	Roles []string `json:"roles"`
	Via   string   `json:"via"`             // console | token
	Token string   `json:"token,omitempty"` // the token's id
	Scope string   `json:"scope,omitempty"` // the token's scope
}

func (c *Console) apiWhoami(w http.ResponseWriter, r *http.Request, p *principal) {
	a := whoamiAnswer{User: p.User, Name: p.Name, Party: p.Party, Roles: p.Roles, Via: "console"}
	if p.viaToken() {
		a.Via, a.Token, a.Scope = "token", p.token.ID, p.token.Scope
	}
	writeJSON(w, http.StatusOK, a)
}

func (c *Console) apiHealth(w http.ResponseWriter, r *http.Request, p *principal) {
	out := map[string]any{"status": "ok"}
	if c.o.Health != nil {
		out["gateway"] = c.o.Health()
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Console) service(w http.ResponseWriter) *approvals.Service {
	if c.o.Approvals == nil {
		writeError(w, http.StatusServiceUnavailable, "approvals are not configured on this gateway")
	}
	return c.o.Approvals
}

func (c *Console) apiRequests(w http.ResponseWriter, r *http.Request, p *principal) {
	s := c.service(w)
	if s == nil {
		return
	}
	states, err := parseStates(r.URL.Query().Get("state"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list := s.List(approvals.ListFilter{States: states, Party: r.URL.Query().Get("party")})
	if list == nil {
		list = []approvals.Request{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": list})
}

func (c *Console) apiRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	s := c.service(w)
	if s == nil {
		return
	}
	req, err := s.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, serviceStatus(err), strings.TrimPrefix(err.Error(), "approvals: "))
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// approveBody is the body of POST /api/v1/requests/{id}/approve: until (an
// end time) and for (a duration from the start) shorten the window; when
// both are given the earlier end wins.
type approveBody struct {
	Until   time.Time `json:"until,omitzero"`
	For     string    `json:"for,omitempty"`
	Classes []string  `json:"classes,omitempty"`
	Targets []string  `json:"targets,omitempty"`
	Note    string    `json:"note,omitempty"`
}

func (c *Console) apiApprove(w http.ResponseWriter, r *http.Request, p *principal) {
	s := c.service(w)
	if s == nil {
		return
	}
	var b approveBody
	if !readJSON(w, r, &b) {
		return
	}
	id := r.PathValue("id")
	req, err := s.Get(id)
	if err != nil {
		writeError(w, serviceStatus(err), strings.TrimPrefix(err.Error(), "approvals: "))
		return
	}
	classes, err := approvals.ParseClasses(b.Classes)
	if err != nil {
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "approvals: "))
		return
	}
	o := approvals.ApproveOpts{Until: b.Until, Classes: classes, Targets: b.Targets, Note: b.Note}
	if b.For != "" {
		d, err := parseShortDuration(b.For)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "for: "+b.For+" is not a duration (30m, 1h)")
			return
		}
		start := req.WantStart
		if now := c.now(); start.Before(now) {
			start = now
		}
		if t := start.Add(d); o.Until.IsZero() || t.Before(o.Until) {
			o.Until = t
		}
	}
	res, err := s.Approve(id, p.approver(), o)
	c.decided(w, p, "approve", id, res, err)
}

type noteBody struct {
	Note string `json:"note"`
}

func (c *Console) apiNoted(what string) func(w http.ResponseWriter, r *http.Request, p *principal) {
	return func(w http.ResponseWriter, r *http.Request, p *principal) {
		if c.service(w) == nil {
			return
		}
		var b noteBody
		if !readJSON(w, r, &b) {
			return
		}
		id := r.PathValue("id")
		res, err := c.decideNoted(what, id, p, b.Note)
		c.decided(w, p, what, id, res, err)
	}
}

func (c *Console) decided(w http.ResponseWriter, p *principal, what, id string, req approvals.Request, err error) {
	via := "console"
	if p.viaToken() {
		via = "token " + p.token.ID
	}
	if err != nil {
		c.o.Log.Info("console: decision refused", "action", what, "request", id, "by", p.User, "via", via, "err", err)
		writeError(w, serviceStatus(err), strings.TrimPrefix(err.Error(), "approvals: "))
		return
	}
	c.o.Log.Info("console: decision", "action", what, "request", req.ID, "by", p.User, "via", via, "state", req.State)
	writeJSON(w, http.StatusOK, req)
}

func (c *Console) apiSessions(w http.ResponseWriter, r *http.Request, p *principal) {
	if c.o.Sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "this gateway has no session registry")
		return
	}
	list := c.o.Sessions.List()
	if list == nil {
		list = []sessions.Info{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

type killBody struct {
	Reason string `json:"reason"`
}

func (c *Console) apiKill(w http.ResponseWriter, r *http.Request, p *principal) {
	var b killBody
	if !readJSON(w, r, &b) {
		return
	}
	id := r.PathValue("id")
	why, ok := c.kill(id, p, b.Reason)
	if !ok {
		writeError(w, http.StatusNotFound, "no live session "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"killed": id, "reason": why})
}

type auditAnswer struct {
	Matched   int               `json:"matched"`
	Truncated bool              `json:"truncated"`
	Records   []json.RawMessage `json:"records"`
}

func (c *Console) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	res, err := c.search(r.Context(), searchFrom(r.URL.Query()))
	if err != nil {
		writeError(w, searchStatus(err), err.Error())
		return
	}
	a := auditAnswer{Matched: res.Matched, Truncated: res.Truncated, Records: make([]json.RawMessage, len(res.Lines))}
	for i, l := range res.Lines {
		a.Records[i] = l
	}
	writeJSON(w, http.StatusOK, a)
}

func (c *Console) apiExport(w http.ResponseWriter, r *http.Request, p *principal) { c.export(w, r, p) }

type storyAnswer struct {
	Session   string            `json:"session"`
	Requests  []string          `json:"requests"`
	Truncated bool              `json:"truncated"`
	Records   []json.RawMessage `json:"records"`
}

func (c *Console) apiStory(w http.ResponseWriter, r *http.Request, p *principal) {
	st, err := c.story(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, searchStatus(err), err.Error())
		return
	}
	a := storyAnswer{Session: st.Session, Requests: st.Requests, Truncated: st.Truncated, Records: make([]json.RawMessage, len(st.Lines))}
	if a.Requests == nil {
		a.Requests = []string{}
	}
	for i, l := range st.Lines {
		a.Records[i] = l
	}
	writeJSON(w, http.StatusOK, a)
}

func (c *Console) apiParties(w http.ResponseWriter, r *http.Request, p *principal) {
	if c.policy() == nil {
		writeError(w, http.StatusServiceUnavailable, "no policy is loaded")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"parties": c.parties()})
}

func (c *Console) apiTargets(w http.ResponseWriter, r *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, map[string]any{"targets": c.targets()})
}

func (c *Console) apiPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	v, ok := c.policyView()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "no policy is loaded")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (c *Console) apiTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, map[string]any{"tokens": c.tokens.all()})
}

type tokenBody struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// tokenAnswer is a new token: the secret is shown this once.
type tokenAnswer struct {
	Token
	Secret string `json:"token"`
}

func (c *Console) apiTokenCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	var b tokenBody
	if !readJSON(w, r, &b) {
		return
	}
	t, secret, status, err := c.createToken(p, b.Name, b.Scope)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, status, tokenAnswer{Token: t, Secret: secret})
}

func (c *Console) apiTokenRevoke(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	if status, err := c.revokeToken(p, id); err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
}
