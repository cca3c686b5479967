package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
)

// Options are the console's connections to the rest of the gateway. Every
// field but Accounts may be nil or empty; the pages then say what is
// missing.
type Options struct {
	Approvals *approvals.Service
	Sessions  *sessions.Registry
	AuditDir  string // the audit log directory, searched with auditquery
	Live      Live   // audit records as they are appended, for live sessions
	// Watch marks an engineer watching a session live (supervised
	// sessions); stop ends the watch. ok is false if there is no such
	// session. nil: watching changes nothing.
	Watch     func(sessionID string) (stop func(), ok bool)
	Policy    func() *policy.Policy // the policy in force
	Targets   func() []TargetStatus
	Health    func() any
	Accounts  *adminapi.Accounts // role approver: engineer; viewer (and requester): read only
	TokenFile string             // API tokens (JSON, 0600), created when missing; empty: tokens live in memory only
	Log       *slog.Logger
}

// Live gives the audit records as they are appended: each []byte is one
// stored JSON line. cancel ends the subscription and may close records.
type Live interface {
	Subscribe() (records <-chan []byte, cancel func())
}

// TargetStatus is one target with its health, for the targets page.
type TargetStatus struct {
	Name         string        `json:"name"`
	Protocol     string        `json:"protocol"`
	Address      string        `json:"address"`
	Reachable    bool          `json:"reachable"`
	LastResponse time.Time     `json:"last_response,omitzero"`
	LastError    string        `json:"last_error,omitempty"`
	Latency      time.Duration `json:"latency"`
}

// Limits and clocks of logins.
const (
	maxFailures = 5                // failed logins in a row before a user is locked
	lockFor     = 15 * time.Minute // how long
	idleTimeout = 30 * time.Minute // a login ends after this long without a request
	maxLoginAge = 12 * time.Hour   // and after this long in any case
	maxLogins   = 10000            // logins held at once; the oldest go first
	maxForm     = 64 << 10
	maxScans    = 2 // a Pi-class gateway keeps its CPU for the inline path
	cookieName  = "brana_session"
)

// contentSecurityPolicy allows nothing inline and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the engineer console of one gateway.
type Console struct {
	o      Options
	now    func() time.Time
	pages  map[string]*template.Template
	tokens *tokenStore
	cop    *http.CrossOriginProtection
	h      http.Handler
	scans  chan struct{} // audit scans running at once: each reads the whole log

	mu       sync.Mutex
	logins   map[[32]byte]*login
	fails    map[string]*failures
	totpLast map[string]uint64 // user → last TOTP step accepted
}

type failures struct {
	n     int
	until time.Time
}

// New builds the console. It opens (or creates) the token file.
func New(o Options) (*Console, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ts, err := openTokens(o.TokenFile)
	if err != nil {
		return nil, err
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	c := &Console{o: o, now: time.Now, pages: pages, tokens: ts, cop: http.NewCrossOriginProtection(), scans: make(chan struct{}, maxScans),
		logins: map[[32]byte]*login{}, fails: map[string]*failures{}, totpLast: map[string]uint64{}}
	c.h = c.routes()
	return c, nil
}

// Handler serves the pages, the static files and the JSON API.
func (c *Console) Handler() http.Handler { return c.h }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/requests", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.loginPost)
	post(mux, "/logout", c.page(permRead, c.logout))
	mux.Handle("GET /requests", c.page(permRead, c.requestsPage))
	mux.Handle("GET /requests/{id}", c.page(permRead, c.requestPage))
	post(mux, "/requests/{id}/approve", c.page(permApprove, c.approvePost))
	post(mux, "/requests/{id}/deny", c.page(permApprove, c.notedPost("deny")))
	post(mux, "/requests/{id}/revoke", c.page(permApprove, c.notedPost("revoke")))
	mux.Handle("GET /sessions", c.page(permRead, c.sessionsPage))
	mux.Handle("GET /sessions/{id}", c.page(permRead, c.sessionPage))
	post(mux, "/sessions/{id}/kill", c.page(permApprove, c.killPost))
	mux.Handle("GET /audit", c.page(permRead, c.auditPage))
	mux.Handle("GET /audit/sessions/{id}", c.page(permRead, c.storyPage))
	mux.Handle("GET /parties", c.page(permRead, c.partiesPage))
	mux.Handle("GET /targets", c.page(permRead, c.targetsPage))
	mux.Handle("GET /policy", c.page(permRead, c.policyPage))
	mux.Handle("GET /tokens", c.page(permTokens, c.tokensPage))
	mux.Handle("POST /tokens", c.page(permTokens, c.tokenCreatePost))
	post(mux, "/tokens/{id}/revoke", c.page(permTokens, c.tokenRevokePost))

	mux.Handle("GET /api/v1/whoami", c.api(permRead, c.apiWhoami))
	mux.Handle("GET /api/v1/health", c.api(permRead, c.apiHealth))
	mux.Handle("GET /api/v1/requests", c.api(permRead, c.apiRequests))
	mux.Handle("GET /api/v1/requests/{id}", c.api(permRead, c.apiRequest))
	post(mux, "/api/v1/requests/{id}/approve", c.api(permApprove, c.apiApprove))
	post(mux, "/api/v1/requests/{id}/deny", c.api(permApprove, c.apiNoted("deny")))
	post(mux, "/api/v1/requests/{id}/revoke", c.api(permApprove, c.apiNoted("revoke")))
	mux.Handle("GET /api/v1/sessions", c.api(permRead, c.apiSessions))
	mux.Handle("GET /api/v1/sessions/{id}/events", c.api(permRead, c.events))
	post(mux, "/api/v1/sessions/{id}/kill", c.api(permApprove, c.apiKill))
	mux.Handle("GET /api/v1/audit", c.api(permRead, c.apiAudit))
	mux.Handle("GET /api/v1/audit/export", c.api(permRead, c.apiExport))
	mux.Handle("GET /api/v1/audit/sessions/{id}", c.api(permRead, c.apiStory))
	mux.Handle("GET /api/v1/parties", c.api(permRead, c.apiParties))
	mux.Handle("GET /api/v1/targets", c.api(permRead, c.apiTargets))
	mux.Handle("GET /api/v1/policy", c.api(permRead, c.apiPolicy))
	mux.Handle("GET /api/v1/tokens", c.api(permTokens, c.apiTokens))
	mux.Handle("POST /api/v1/tokens", c.api(permTokens, c.apiTokenCreate))
	mux.Handle("DELETE /api/v1/tokens/{id}", c.api(permTokens, c.apiTokenRevoke))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "There is no page "+r.URL.Path+".")
	})
	return securityHeaders(mux)
}

// post registers a state change, and an answer for GET on its path: there
// are no links that approve, deny, revoke or kill, only forms and the API.
func post(mux *http.ServeMux, path string, h http.Handler) {
	mux.Handle("POST "+path, h)
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, r.URL.Path+" changes state: it takes POST from the console's forms or the API, never a link")
	})
}

// securityHeaders sets what every answer carries. Only the embedded static
// files may be cached: everything else shows the state of the gateway or a
// person's data.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// Errors shown to people; the log gets the details.
var (
	errBadLogin   = errors.New("wrong user name, password or code")
	errNoAccounts = errors.New("no accounts are configured on this gateway")
)

// lockedError says until when a user is locked.
type lockedError struct{ until time.Time }

func (e *lockedError) Error() string {
	return fmt.Sprintf("too many failed logins in a row: locked until %s", e.until.Local().Format("15:04:05 MST"))
}
