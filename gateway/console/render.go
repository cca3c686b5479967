package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/protocols/opclass"
)

// pageTitles are the pages, by template name, with their titles.
var pageTitles = map[string]string{
	"login":    "Log in",
	"error":    "Refused",
	"requests": "Access requests",
	"request":  "Access request",
	"sessions": "Live sessions",
	"session":  "Live session",
	"audit":    "Audit log",
	"story":    "Session story",
	"parties":  "Parties and evidence",
	"targets":  "Targets",
	"policy":   "Policy in force",
	"tokens":   "API tokens",
}

// pageNav says which menu entry a page belongs to.
var pageNav = map[string]string{"request": "requests", "session": "sessions", "story": "audit"}

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"time":       fmtTime,
		"ago":        ago,
		"dur":        fmtDuration,
		"prc":        approvals.IsPRCFinding,
		"join":       strings.Join,
		"classNames": classNames,
		"inc":        func(i int) int { return i + 1 },
	}
	out := make(map[string]*template.Template, len(pageTitles))
	for name := range pageTitles {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

// pageData is what every page template gets; Data is the page's own.
type pageData struct {
	Title string
	Nav   string
	User  *principal
	Role  string
	CSRF  string
	Flash string
	Error string
	Data  any
}

// CanApprove is for templates: show the forms that change state.
func (d *pageData) CanApprove() bool { return d.User != nil && d.User.canApprove() }

// CanTokens is for templates: show the tokens menu entry.
func (d *pageData) CanTokens() bool { return d.User != nil && permError(d.User, permTokens) == "" }

func (c *Console) render(w http.ResponseWriter, r *http.Request, p *principal, status int, name string, data any) {
	c.renderPage(w, r, p, status, name, data, "")
}

// renderError shows page name with an error message.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, name string, data any, msg string) {
	c.renderPage(w, r, who(r), status, name, data, msg)
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, p *principal, status int, msg string) {
	c.renderPage(w, r, p, status, "error", nil, msg)
}

func (c *Console) renderPage(w http.ResponseWriter, r *http.Request, p *principal, status int, name string, data any, msg string) {
	d := &pageData{Title: pageTitles[name], Nav: name, User: p, Error: msg, Data: data}
	if name == "error" {
		d.Title = errorTitle(status)
	}
	if n, ok := pageNav[name]; ok {
		d.Nav = n
	}
	if p != nil && p.login != nil {
		d.CSRF = p.login.csrf
		d.Role = roleName(p.Account)
		d.Flash = c.takeFlash(p)
	}
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, "layout", d); err != nil {
		c.o.Log.Error("console: rendering", "page", name, "err", err)
		http.Error(w, "the page could not be shown: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}

func errorTitle(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Log in again"
	case http.StatusForbidden:
		return "Refused"
	case http.StatusNotFound:
		return "Not found"
	}
	return "Not possible"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// fmtTime shows a time in the gateway's zone, with the zone: an engineer
// in the control room and the gateway agree on it.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	if d < 0 {
		return "in " + fmtDuration(-d)
	}
	return fmtDuration(d) + " ago"
}

// fmtDuration rounds to what a person reads: "2h 5m", "45s".
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		m, s := d/time.Minute, (d%time.Minute)/time.Second
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm %ds", m, s)
	default:
		d = d.Round(time.Minute)
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
}

func classNames(cs []opclass.Class) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
