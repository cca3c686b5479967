package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opclass"
)

// requestStates are the inbox's state filter values; the first is the default.
var requestStates = []string{"open", "pending", "approved", "denied", "expired", "revoked", "closed", "all"}

// parseStates turns a state filter into states: "open" is pending and
// approved, "all" (or nothing) is every state.
func parseStates(v string) ([]approvals.State, error) {
	var out []approvals.State
	for _, s := range strings.Split(v, ",") {
		switch st := approvals.State(strings.TrimSpace(s)); st {
		case "", "all":
		case "open":
			out = append(out, approvals.StatePending, approvals.StateApproved)
		case approvals.StatePending, approvals.StateApproved, approvals.StateDenied, approvals.StateExpired,
			approvals.StateRevoked, approvals.StateClosed:
			out = append(out, st)
		default:
			return nil, fmt.Errorf("state %q is not one of %s", st, strings.Join(requestStates, ", "))
		}
	}
	return out, nil
}

// requestView is a request as one person sees it in the inbox.
type requestView struct {
	approvals.Request
	HasPRC    bool
	ClassList []string
	CanAct    bool   // the viewer may decide
	CSRF      string // for the forms
	Mine      string // why this person cannot approve it, if they cannot
	Start     time.Time
	UntilMin  string // datetime-local bounds of a shorter window
	UntilMax  string
	Shorter   []string // durations shorter than the requested window, for the select
}

func (c *Console) viewRequest(r approvals.Request, p *principal) requestView {
	v := requestView{Request: r, HasPRC: r.Party.HasPRC(), ClassList: classNames(r.Classes), CanAct: p.canApprove()}
	if p.login != nil {
		v.CSRF = p.login.csrf
	}
	switch {
	case p.Party != "" && p.Party == r.Party.ID:
		v.Mine = "You belong to party " + r.Party.ID + ", which asks: another engineer must decide."
	case p.User == r.RequestedBy:
		v.Mine = "You asked for this: another engineer must approve it."
	default:
		for _, a := range r.Approvals {
			if a.By == p.User {
				v.Mine = "You approved this at " + fmtTime(a.At) + ": a second engineer must approve it."
			}
		}
	}
	now := c.now()
	v.Start = r.WantStart
	if v.Start.Before(now) {
		v.Start = now
	}
	const local = "2006-01-02T15:04"
	v.UntilMin = v.Start.Add(time.Minute).Local().Format(local)
	v.UntilMax = v.Start.Add(r.Duration).Local().Format(local)
	for _, d := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour} {
		if d < r.Duration {
			v.Shorter = append(v.Shorter, fmtDuration(d))
		}
	}
	return v
}

type requestsView struct {
	State    string
	States   []string
	Requests []requestView
	Pending  int
	Missing  string // why there are none to show
}

func (c *Console) requestsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = requestStates[0]
	}
	v := requestsView{State: state, States: requestStates}
	if c.o.Approvals == nil {
		v.Missing = "Approvals are not configured on this gateway."
		c.render(w, r, p, http.StatusOK, "requests", v)
		return
	}
	states, err := parseStates(state)
	if err != nil {
		c.renderError(w, r, http.StatusBadRequest, "requests", v, capitalize(err.Error())+".")
		return
	}
	for _, req := range c.o.Approvals.List(approvals.ListFilter{States: states}) {
		v.Requests = append(v.Requests, c.viewRequest(req, p))
	}
	v.Pending = len(c.o.Approvals.List(approvals.ListFilter{States: []approvals.State{approvals.StatePending}}))
	c.render(w, r, p, http.StatusOK, "requests", v)
}

func (c *Console) requestPage(w http.ResponseWriter, r *http.Request, p *principal) {
	c.showRequest(w, r, p, http.StatusOK, "")
}

// showRequest renders one request, with msg as an error if set.
func (c *Console) showRequest(w http.ResponseWriter, r *http.Request, p *principal, status int, msg string) {
	if c.o.Approvals == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "Approvals are not configured on this gateway.")
		return
	}
	req, err := c.o.Approvals.Get(r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, p, serviceStatus(err), serviceMessage(err))
		return
	}
	c.renderError(w, r, status, "request", c.viewRequest(req, p), msg)
}

// approveForm reads the approval form: classes and targets to keep, and a
// shorter window as an end time (datetime-local, gateway time) or a
// duration from the start; when both are given the earlier end wins.
func (c *Console) approveForm(form url.Values, req approvals.Request) (approvals.ApproveOpts, error) {
	o := approvals.ApproveOpts{Note: form.Get("note")}
	if _, shown := form["narrow"]; shown {
		if len(form["classes"]) == 0 {
			return o, errors.New("keep at least one class to approve, or deny the request")
		}
		if len(form["targets"]) == 0 {
			return o, errors.New("keep at least one target to approve, or deny the request")
		}
	}
	var err error
	if o.Classes, err = approvals.ParseClasses(form["classes"]); err != nil {
		return o, err
	}
	o.Targets = form["targets"]
	start := req.WantStart
	if now := c.now(); start.Before(now) {
		start = now
	}
	if s := strings.TrimSpace(form.Get("until")); s != "" {
		t, err := parseLocal(s)
		if err != nil {
			return o, fmt.Errorf("end %q is not a date and time (2026-11-26T14:30)", s)
		}
		o.Until = t
	}
	if s := strings.TrimSpace(form.Get("for")); s != "" {
		d, err := parseShortDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%q is not a duration (30m, 1h, 2h 30m)", s)
		}
		if t := start.Add(d); o.Until.IsZero() || t.Before(o.Until) {
			o.Until = t
		}
	}
	return o, nil
}

// parseLocal reads a datetime-local value in the gateway's zone, or an RFC 3339 time.
func parseLocal(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

// parseShortDuration reads "90m", "1h30m" and "2h 30m", as fmtDuration writes them.
func parseShortDuration(s string) (time.Duration, error) {
	return time.ParseDuration(strings.ReplaceAll(s, " ", ""))
}

func (c *Console) approvePost(w http.ResponseWriter, r *http.Request, p *principal) {
	if c.o.Approvals == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "Approvals are not configured on this gateway.")
		return
	}
	id := r.PathValue("id")
	req, err := c.o.Approvals.Get(id)
	if err != nil {
		c.errorPage(w, r, p, serviceStatus(err), serviceMessage(err))
		return
	}
	opts, err := c.approveForm(r.PostForm, req)
	if err != nil {
		c.showRequest(w, r, p, http.StatusBadRequest, capitalize(err.Error())+".")
		return
	}
	res, err := c.o.Approvals.Approve(id, p.approver(), opts)
	if err != nil {
		c.o.Log.Info("console: approval refused", "request", id, "by", p.User, "err", err)
		c.showRequest(w, r, p, serviceStatus(err), serviceMessage(err))
		return
	}
	c.o.Log.Info("console: approved", "request", res.ID, "by", p.User, "state", res.State)
	msg := fmt.Sprintf("%s approved: it is now a grant.", res.ID)
	if res.State == approvals.StatePending {
		msg = fmt.Sprintf("%s approved (%d of %d): it needs another engineer.", res.ID, len(res.Approvals), res.Required)
	}
	c.setFlash(p, msg)
	http.Redirect(w, r, "/requests", http.StatusSeeOther)
}

// notedPost serves deny and revoke, which take a note.
func (c *Console) notedPost(what string) func(w http.ResponseWriter, r *http.Request, p *principal) {
	return func(w http.ResponseWriter, r *http.Request, p *principal) {
		if c.o.Approvals == nil {
			c.errorPage(w, r, p, http.StatusServiceUnavailable, "Approvals are not configured on this gateway.")
			return
		}
		id := r.PathValue("id")
		note := strings.TrimSpace(r.PostFormValue("note"))
		if note == "" {
			c.showRequest(w, r, p, http.StatusBadRequest, "Give a reason in the note: the requester reads it.")
			return
		}
		res, err := c.decideNoted(what, id, p, note)
		if err != nil {
			c.o.Log.Info("console: decision refused", "action", what, "request", id, "by", p.User, "err", err)
			c.showRequest(w, r, p, serviceStatus(err), serviceMessage(err))
			return
		}
		c.o.Log.Info("console: decision", "action", what, "request", res.ID, "by", p.User)
		if what == "deny" {
			c.setFlash(p, res.ID+" denied.")
		} else {
			c.setFlash(p, res.ID+" revoked: its sessions are being ended.")
		}
		http.Redirect(w, r, "/requests", http.StatusSeeOther)
	}
}

func (c *Console) decideNoted(what, id string, p *principal, note string) (approvals.Request, error) {
	if what == "deny" {
		return c.o.Approvals.Deny(id, p.approver(), note)
	}
	return c.o.Approvals.Revoke(id, p.approver(), note)
}

// serviceStatus maps an approvals error to an HTTP status.
func serviceStatus(err error) int {
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, approvals.ErrInvalid), errors.Is(err, approvals.ErrWidens):
		return http.StatusBadRequest
	case errors.Is(err, approvals.ErrSelfApproval):
		return http.StatusForbidden
	case errors.Is(err, approvals.ErrState), errors.Is(err, approvals.ErrTwice):
		return http.StatusConflict
	case errors.Is(err, approvals.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func serviceMessage(err error) string {
	return capitalize(strings.TrimPrefix(err.Error(), "approvals: ")) + "."
}

type sessionsView struct {
	Sessions []sessions.Info
	Missing  string
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	v := sessionsView{}
	if c.o.Sessions == nil {
		v.Missing = "This gateway has no session registry."
	} else {
		v.Sessions = c.o.Sessions.List()
	}
	c.render(w, r, p, http.StatusOK, "sessions", v)
}

// liveSession finds a live session by id.
func (c *Console) liveSession(id string) (sessions.Info, bool) {
	if c.o.Sessions == nil {
		return sessions.Info{}, false
	}
	for _, s := range c.o.Sessions.List() {
		if s.ID == id {
			return s, true
		}
	}
	return sessions.Info{}, false
}

type sessionView struct {
	sessions.Info
	Events string // the SSE URL
	Live   bool   // a live feed is configured
}

func (c *Console) sessionPage(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	info, ok := c.liveSession(id)
	if !ok {
		c.errorPage(w, r, p, http.StatusNotFound, "There is no live session "+id+". It may have ended: its story is in the audit log at /audit/sessions/"+id+".")
		return
	}
	c.render(w, r, p, http.StatusOK, "session", sessionView{Info: info, Live: c.o.Live != nil,
		Events: "/api/v1/sessions/" + url.PathEscape(id) + "/events"})
}

// kill ends session id at once; the reason names who did it.
func (c *Console) kill(id string, p *principal, reason string) (string, bool) {
	if c.o.Sessions == nil {
		return "", false
	}
	why := "killed by " + p.approver().String() + " in the console"
	if p.viaToken() {
		why = "killed by " + p.approver().String() + " with API token " + p.token.ID
	}
	if reason = strings.TrimSpace(reason); reason != "" {
		why += ": " + reason
	}
	if !c.o.Sessions.Kill(id, why) {
		return "", false
	}
	c.o.Log.Info("console: session killed", "session", id, "by", p.User, "reason", reason)
	return why, true
}

func (c *Console) killPost(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	if _, ok := c.kill(id, p, r.PostFormValue("reason")); !ok {
		c.errorPage(w, r, p, http.StatusNotFound, "There is no live session "+id+": it has already ended.")
		return
	}
	c.setFlash(p, "Session "+id+" killed.")
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

// partyView is a party with its evidence, for the parties page and the API.
type partyView struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Organisation  string        `json:"organisation,omitempty"`
	Kind          string        `json:"kind"`
	LegalName     string        `json:"legal_name,omitempty"`
	Local         bool          `json:"local,omitempty"`
	Verdict       string        `json:"verdict"`
	Findings      []findingView `json:"findings"`
	Networks      []string      `json:"networks,omitempty"`
	SSHKeys       []string      `json:"ssh_keys,omitempty"`
	SSHPrincipals []string      `json:"ssh_principals,omitempty"`
	TLSClients    []string      `json:"tls_clients,omitempty"`
	OPCUAUsers    []string      `json:"opcua_users,omitempty"`
}

type findingView struct {
	Text    string `json:"text"`
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
	Value   string `json:"value"`
	Verdict string `json:"verdict"`
	Source  string `json:"source,omitempty"`
	PRC     bool   `json:"prc"`
}

func viewParty(pt *policy.Party) partyView {
	v := partyView{ID: pt.ID, Name: pt.Name, Organisation: pt.Organisation, Kind: pt.Kind, LegalName: pt.LegalName,
		Local: pt.Local, Verdict: pt.Verdict.String(), Findings: []findingView{},
		SSHKeys: pt.SSHKeys, SSHPrincipals: pt.SSHPrincipals, OPCUAUsers: pt.OPCUAUsers}
	for _, f := range pt.Findings {
		v.Findings = append(v.Findings, findingView{Text: f.String(), Kind: f.Kind, Subject: f.Subject, Value: f.Value,
			Verdict: f.Verdict.String(), Source: f.Source, PRC: f.Verdict == policy.PRC})
	}
	for _, n := range pt.Networks {
		v.Networks = append(v.Networks, n.String())
	}
	for _, b := range pt.TLSClients {
		var s []string
		if b.Fingerprint != "" {
			s = append(s, "fingerprint "+b.Fingerprint)
		}
		if b.CommonName != "" {
			s = append(s, "CN "+b.CommonName)
		}
		if b.Role != "" {
			s = append(s, "role "+b.Role)
		}
		v.TLSClients = append(v.TLSClients, strings.Join(s, ", "))
	}
	return v
}

func (c *Console) policy() *policy.Policy {
	if c.o.Policy == nil {
		return nil
	}
	return c.o.Policy()
}

func (c *Console) parties() []partyView {
	pol := c.policy()
	if pol == nil {
		return nil
	}
	out := []partyView{}
	for _, pt := range pol.Parties() {
		out = append(out, viewParty(pt))
	}
	return out
}

type partiesView struct {
	Parties []partyView
	Missing string
}

func (c *Console) partiesPage(w http.ResponseWriter, r *http.Request, p *principal) {
	v := partiesView{Parties: c.parties()}
	if c.policy() == nil {
		v.Missing = "No policy is loaded."
	}
	c.render(w, r, p, http.StatusOK, "parties", v)
}

type targetsView struct {
	Targets []TargetStatus
	Health  string
	Missing string
}

func (c *Console) targets() []TargetStatus {
	if c.o.Targets == nil {
		return []TargetStatus{}
	}
	ts := slices.Clone(c.o.Targets())
	slices.SortFunc(ts, func(a, b TargetStatus) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

func (c *Console) targetsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	v := targetsView{Targets: c.targets()}
	if c.o.Targets == nil {
		v.Missing = "This gateway reports no target health."
	}
	if c.o.Health != nil {
		b, _ := json.MarshalIndent(c.o.Health(), "", "  ")
		v.Health = string(b)
	}
	c.render(w, r, p, http.StatusOK, "targets", v)
}

// policyView is the policy in force, for the policy page and the API.
type policyView struct {
	Digest   string     `json:"digest"`
	HighRisk []string   `json:"high_risk"`
	Strict   bool       `json:"strict"`
	Parties  int        `json:"parties"`
	Rules    []ruleView `json:"rules"`
}

type ruleView struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Protocol    string   `json:"protocol"`
	Parties     []string `json:"parties"`
	Targets     []string `json:"targets"`
	Classes     []string `json:"classes"`
	Functions   []int    `json:"functions,omitempty"`
	Units       []int    `json:"units,omitempty"`
	Ranges      []string `json:"ranges,omitempty"`
	Values      string   `json:"values,omitempty"`
	Namespace   string   `json:"namespace,omitempty"`
	Nodes       []string `json:"nodes,omitempty"`
	Reset       bool     `json:"reset,omitempty"`
}

func (c *Console) policyView() (policyView, bool) {
	pol := c.policy()
	if pol == nil {
		return policyView{}, false
	}
	v := policyView{Digest: pol.Digest(), HighRisk: pol.HighRisk(), Strict: pol.Strict(), Parties: len(pol.Parties()), Rules: []ruleView{}}
	for _, rule := range pol.Rules() {
		s := rule.Spec()
		rv := ruleView{Name: rule.Name, Description: rule.Description, Protocol: "modbus", Parties: s.Parties,
			Targets: s.Targets, Classes: s.Classes, Functions: s.Functions, Units: s.Units, Reset: rule.Reset}
		for _, table := range sortedKeys(s.Ranges) {
			rv.Ranges = append(rv.Ranges, table+" "+strings.Join(s.Ranges[table], ", "))
		}
		if s.Values != nil {
			rv.Values = fmt.Sprintf("%d..%d", s.Values.Min, s.Values.Max)
		}
		if s.OPCUA != nil {
			rv.Protocol, rv.Namespace = "opcua", s.OPCUA.Namespace
			rv.Nodes = append(slices.Clone(s.OPCUA.Nodes), s.OPCUA.Paths...)
		}
		v.Rules = append(v.Rules, rv)
	}
	return v, true
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, p *principal) {
	v, ok := c.policyView()
	if !ok {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "No policy is loaded.")
		return
	}
	c.render(w, r, p, http.StatusOK, "policy", v)
}

type tokensView struct {
	Tokens    []Token
	NewSecret string
	New       Token
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, p *principal) {
	c.render(w, r, p, http.StatusOK, "tokens", tokensView{Tokens: c.tokens.all()})
}

// createToken checks a token request and makes the token.
func (c *Console) createToken(p *principal, name, scope string) (Token, string, int, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return Token{}, "", http.StatusBadRequest, errors.New("name the token after what will use it")
	case len(name) > 200:
		return Token{}, "", http.StatusBadRequest, errors.New("the name is longer than 200 bytes")
	case scope != ScopeRead && scope != ScopeApprove:
		return Token{}, "", http.StatusBadRequest, fmt.Errorf("scope %q is not %s or %s", scope, ScopeRead, ScopeApprove)
	}
	t, secret, err := c.tokens.create(p.User, name, scope, c.now())
	if err != nil {
		return Token{}, "", http.StatusInternalServerError, err
	}
	c.o.Log.Info("console: API token created", "token", t.ID, "user", p.User, "scope", scope, "name", name)
	return t, secret, http.StatusCreated, nil
}

func (c *Console) tokenCreatePost(w http.ResponseWriter, r *http.Request, p *principal) {
	t, secret, status, err := c.createToken(p, r.PostFormValue("name"), r.PostFormValue("scope"))
	if err != nil {
		c.renderError(w, r, status, "tokens", tokensView{Tokens: c.tokens.all()}, capitalize(err.Error())+".")
		return
	}
	c.render(w, r, p, http.StatusOK, "tokens", tokensView{Tokens: c.tokens.all(), NewSecret: secret, New: t})
}

func (c *Console) revokeToken(p *principal, id string) (int, error) {
	t, ok, err := c.tokens.revoke(id)
	if !ok {
		return http.StatusNotFound, fmt.Errorf("no token %s", id)
	}
	c.o.Log.Info("console: API token revoked", "token", t.ID, "owner", t.User, "by", p.User)
	if err != nil {
		c.o.Log.Error("console: token revocation not stored", "token", t.ID, "err", err)
		return http.StatusInternalServerError, fmt.Errorf("token %s no longer works, but storing that failed and it may work again after a restart: %v", id, err)
	}
	return http.StatusOK, nil
}

func (c *Console) tokenRevokePost(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	if status, err := c.revokeToken(p, id); err != nil {
		c.renderError(w, r, status, "tokens", tokensView{Tokens: c.tokens.all()}, capitalize(err.Error())+".")
		return
	}
	c.setFlash(p, "Token "+id+" revoked.")
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

// classOptions are every operation class, for forms.
func classOptions() []string { return classNames(opclass.All()) }
