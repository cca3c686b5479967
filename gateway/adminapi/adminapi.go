// Package adminapi is the gateway's local admin API: HTTP/1.1 with JSON
// bodies on a Unix socket (mode 0660), for the `brana requests` and
// `brana sessions` commands and local tools. People authenticate with HTTP
// Basic against local accounts whose passwords are argon2id hashes in PHC
// form; a user who fails five times in a row is locked for five minutes.
// Approving, denying, revoking and killing sessions need the approver role;
// reading needs any role.
//
// Endpoints, all under /v1:
//
//	GET  /v1/health                   no authentication
//	GET  /v1/whoami
//	GET  /v1/requests?state=pending,approved&party=P
//	POST /v1/requests                 {party, targets, classes, reason, ticket, duration, start}
//	GET  /v1/requests/{id}
//	POST /v1/requests/{id}/approve    {until, classes, targets, note}
//	POST /v1/requests/{id}/deny       {note}
//	POST /v1/requests/{id}/revoke     {note}
//	GET  /v1/sessions
//	POST /v1/sessions/{id}/kill       {reason}
//
// Errors are {"error": "..."} with a fitting status code.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
)

// Config is the admin API section of the gateway config.
type Config struct {
	Socket   string `yaml:"socket"`   // Unix socket; the gateway passes DATA_DIR/admin.sock when empty
	Accounts string `yaml:"accounts"` // YAML file of local accounts (see LoadAccounts); without it nobody can log in
}

// Check reads the accounts file, so that `brana check` finds a bad one.
// Messages start with the yaml key they are about.
func (c *Config) Check() []string {
	if c.Accounts == "" {
		return nil
	}
	if _, err := LoadAccounts(c.Accounts); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return []string{"accounts: " + c.Accounts + " does not exist yet: `brana init` makes it, with a first engineer account"}
		}
		return []string{"accounts: " + strings.TrimPrefix(err.Error(), "accounts: ")}
	}
	return nil
}

// Options are what the API serves.
type Options struct {
	Approvals *approvals.Service
	Sessions  *sessions.Registry
	Accounts  *Accounts    // nil: every authenticated endpoint answers 401
	Health    func() any   // the gateway's health, shown by GET /v1/health
	Log       *slog.Logger // diagnostics: failed logins, decisions
}

const maxBody = 64 << 10

type api struct {
	Options
}

// New returns the API handler.
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &api{o}
	all := []string{RoleApprover, RoleRequester, RoleViewer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", a.health)
	mux.Handle("GET /v1/whoami", a.auth(all, a.whoami))
	mux.Handle("GET /v1/requests", a.auth(all, a.listRequests))
	mux.Handle("POST /v1/requests", a.auth([]string{RoleApprover, RoleRequester}, a.createRequest))
	mux.Handle("GET /v1/requests/{id}", a.auth(all, a.getRequest))
	mux.Handle("POST /v1/requests/{id}/approve", a.auth([]string{RoleApprover}, a.approve))
	mux.Handle("POST /v1/requests/{id}/deny", a.auth([]string{RoleApprover}, a.noted("deny", (*approvals.Service).Deny)))
	mux.Handle("POST /v1/requests/{id}/revoke", a.auth([]string{RoleApprover}, a.noted("revoke", (*approvals.Service).Revoke)))
	mux.Handle("GET /v1/sessions", a.auth(all, a.listSessions))
	mux.Handle("POST /v1/sessions/{id}/kill", a.auth([]string{RoleApprover}, a.kill))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

type ctxKey struct{}

func caller(r *http.Request) Account { acc, _ := r.Context().Value(ctxKey{}).(Account); return acc }

func approver(r *http.Request) approvals.Approver {
	acc := caller(r)
	return approvals.Approver{User: acc.User, Name: acc.Name, Party: acc.Party}
}

// auth checks HTTP Basic credentials and that the account has one of roles.
func (a *api) auth(roles []string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="brana", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "authentication required (HTTP Basic)")
			return
		}
		if a.Accounts == nil {
			writeError(w, http.StatusUnauthorized, "no accounts are configured on this gateway")
			return
		}
		acc, err := a.Accounts.Authenticate(user, pw)
		switch {
		case errors.Is(err, ErrLocked):
			a.Log.Warn("admin login refused: account locked", "user", user)
			w.Header().Set("Retry-After", strconv.Itoa(int(LockFor/time.Second)))
			writeError(w, http.StatusTooManyRequests, strings.TrimPrefix(err.Error(), "adminapi: "))
			return
		case errors.Is(err, ErrBadCredentials):
			a.Log.Warn("admin login failed", "user", user)
			w.Header().Set("WWW-Authenticate", `Basic realm="brana", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "wrong user or password")
			return
		case err != nil:
			a.Log.Error("admin login impossible", "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if !acc.Has(roles...) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s has role %s; this needs %s", acc.User,
				strings.Join(acc.Roles, ","), strings.Join(roles, " or ")))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, acc)))
	})
}

func (a *api) health(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"status": "ok"}
	if a.Health != nil {
		out["gateway"] = a.Health()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, caller(r))
}

func (a *api) service(w http.ResponseWriter) *approvals.Service {
	if a.Approvals == nil {
		writeError(w, http.StatusServiceUnavailable, "approvals are not configured on this gateway")
	}
	return a.Approvals
}

func (a *api) listRequests(w http.ResponseWriter, r *http.Request) {
	s := a.service(w)
	if s == nil {
		return
	}
	var f approvals.ListFilter
	for _, v := range r.URL.Query()["state"] {
		for _, st := range strings.Split(v, ",") {
			switch st := approvals.State(strings.TrimSpace(st)); st {
			case "", "all":
			case approvals.StatePending, approvals.StateApproved, approvals.StateDenied, approvals.StateExpired, approvals.StateRevoked, approvals.StateClosed:
				f.States = append(f.States, st)
			default:
				writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q is not pending, approved, denied, expired, revoked, closed or all", st))
				return
			}
		}
	}
	f.Party = r.URL.Query().Get("party")
	writeJSON(w, http.StatusOK, map[string]any{"requests": s.List(f)})
}

// CreateBody is the body of POST /v1/requests.
type CreateBody struct {
	Party    string    `json:"party"`
	Targets  []string  `json:"targets"`
	Classes  []string  `json:"classes"`
	Reason   string    `json:"reason"`
	Ticket   string    `json:"ticket"`
	Duration string    `json:"duration"` // "2h"; empty: the default window
	Start    time.Time `json:"start,omitzero"`
}

func (a *api) createRequest(w http.ResponseWriter, r *http.Request) {
	s := a.service(w)
	if s == nil {
		return
	}
	var b CreateBody
	if !readJSON(w, r, &b) {
		return
	}
	classes, err := approvals.ParseClasses(b.Classes)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var d time.Duration
	if b.Duration != "" {
		if d, err = time.ParseDuration(b.Duration); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q is not a duration (examples: 90m, 2h)", b.Duration))
			return
		}
	}
	req, err := s.Create(approvals.Request{Party: approvals.PartyInfo{ID: b.Party}, Targets: b.Targets, Classes: classes,
		Reason: b.Reason, Ticket: b.Ticket, Duration: d, WantStart: b.Start, RequestedBy: caller(r).User})
	if err != nil {
		writeServiceError(w, err)
		return
	}
	a.Log.Info("access request filed", "request", req.ID, "party", req.Party.ID, "by", caller(r).User)
	writeJSON(w, http.StatusCreated, req)
}

func (a *api) getRequest(w http.ResponseWriter, r *http.Request) {
	s := a.service(w)
	if s == nil {
		return
	}
	req, err := s.Get(r.PathValue("id"))
	if err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// ApproveBody is the body of POST /v1/requests/{id}/approve.
type ApproveBody struct {
	Until   time.Time `json:"until,omitzero"`
	Classes []string  `json:"classes,omitempty"`
	Targets []string  `json:"targets,omitempty"`
	Note    string    `json:"note,omitempty"`
}

func (a *api) approve(w http.ResponseWriter, r *http.Request) {
	s := a.service(w)
	if s == nil {
		return
	}
	var b ApproveBody
	if !readJSON(w, r, &b) {
		return
	}
	classes, err := approvals.ParseClasses(b.Classes)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := s.Approve(r.PathValue("id"), approver(r), approvals.ApproveOpts{Until: b.Until, Classes: classes, Targets: b.Targets, Note: b.Note})
	a.decided(w, r, "approve", req, err)
}

// NoteBody is the body of deny and revoke.
type NoteBody struct {
	Note string `json:"note"`
}

// noted serves the decisions that take only a note: deny and revoke.
func (a *api) noted(what string, do func(s *approvals.Service, id string, by approvals.Approver, note string) (approvals.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := a.service(w)
		if s == nil {
			return
		}
		var b NoteBody
		if !readJSON(w, r, &b) {
			return
		}
		req, err := do(s, r.PathValue("id"), approver(r), b.Note)
		a.decided(w, r, what, req, err)
	}
}

func (a *api) decided(w http.ResponseWriter, r *http.Request, what string, req approvals.Request, err error) {
	if err != nil {
		a.Log.Info("admin decision refused", "action", what, "request", r.PathValue("id"), "by", caller(r).User, "err", err)
		writeServiceError(w, err)
		return
	}
	a.Log.Info("admin decision", "action", what, "request", req.ID, "by", caller(r).User, "state", req.State)
	writeJSON(w, http.StatusOK, req)
}

func (a *api) listSessions(w http.ResponseWriter, r *http.Request) {
	if a.Sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "no session registry")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": a.Sessions.List()})
}

// KillBody is the body of POST /v1/sessions/{id}/kill.
type KillBody struct {
	Reason string `json:"reason"`
}

func (a *api) kill(w http.ResponseWriter, r *http.Request) {
	if a.Sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "no session registry")
		return
	}
	var b KillBody
	if !readJSON(w, r, &b) {
		return
	}
	id := r.PathValue("id")
	reason := "killed by " + approver(r).String()
	if b.Reason = strings.TrimSpace(b.Reason); b.Reason != "" {
		reason += ": " + b.Reason
	}
	if !a.Sessions.Kill(id, reason) {
		writeError(w, http.StatusNotFound, "no live session "+id)
		return
	}
	a.Log.Info("session killed", "session", id, "by", caller(r).User, "reason", b.Reason)
	writeJSON(w, http.StatusOK, map[string]string{"killed": id, "reason": reason})
}

// readJSON decodes a small JSON body strictly; an empty body is {}.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func writeServiceError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, approvals.ErrInvalid), errors.Is(err, approvals.ErrWidens):
		code = http.StatusBadRequest
	case errors.Is(err, approvals.ErrSelfApproval):
		code = http.StatusForbidden
	case errors.Is(err, approvals.ErrState), errors.Is(err, approvals.ErrTwice):
		code = http.StatusConflict
	case errors.Is(err, approvals.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, strings.TrimPrefix(err.Error(), "approvals: "))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Listen makes the Unix socket at path (mode 0660), creating its folder. A
// stale socket left by a crash is replaced; one that answers, or a file that
// is not a socket, is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("adminapi: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("adminapi: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("adminapi: %s is in use by another process", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("adminapi: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("adminapi: %w", err)
	}
	return ln, nil
}

// Serve listens on the Unix socket at path and serves h until ctx is done.
func Serve(ctx context.Context, socketPath string, h http.Handler) error {
	ln, err := Listen(socketPath)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on ln until ctx is done, then shuts down within
// five seconds and removes the socket.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
		<-stopped
	}
	return err
}
