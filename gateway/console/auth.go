package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
)

// login is one person's console login. It lives in memory only: a restart
// logs everybody out.
type login struct {
	user    string
	csrf    string
	created time.Time
	seen    time.Time
	flash   string // shown once on the next page
}

// principal is who makes a request: a logged-in person or an API token
// acting as its creator.
type principal struct {
	adminapi.Account
	key   [32]byte // the login's key; zero for a token
	login *login
	token *Token
}

func (p *principal) viaToken() bool { return p.token != nil }

// canApprove: approvers may decide and kill; a token only if its scope says so.
func (p *principal) canApprove() bool {
	return p.Has(adminapi.RoleApprover) && (p.token == nil || p.token.Scope == ScopeApprove)
}

func (p *principal) approver() approvals.Approver {
	return approvals.Approver{User: p.User, Name: p.Name, Party: p.Party}
}

// What a handler needs.
type perm int

const (
	permRead    perm = iota // any account, any token
	permApprove             // an approver, or an approve token of one
	permTokens              // an approver logged in to the console: tokens never make tokens
)

type ctxKey struct{}

func who(r *http.Request) *principal { p, _ := r.Context().Value(ctxKey{}).(*principal); return p }

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cookieKey(v string) [32]byte { return sha256.Sum256([]byte(v)) }

// account returns user's account as the accounts file has it now, so that
// a removed account or a lost role takes effect at once.
func (c *Console) account(user string) (adminapi.Account, bool) {
	if c.o.Accounts == nil {
		return adminapi.Account{}, false
	}
	for _, a := range c.o.Accounts.List() {
		if a.User == user {
			return a, true
		}
	}
	return adminapi.Account{}, false
}

// authenticate checks user, password and, for accounts that have one, the
// TOTP code. Five failures in a row, of either, lock the user name for
// fifteen minutes, whether or not such a user exists.
func (c *Console) authenticate(user, password, code string) (adminapi.Account, error) {
	if c.o.Accounts == nil {
		return adminapi.Account{}, errNoAccounts
	}
	now := c.now()
	c.mu.Lock()
	if f := c.fails[user]; f != nil && now.Before(f.until) {
		c.mu.Unlock()
		return adminapi.Account{}, &lockedError{f.until}
	}
	c.mu.Unlock()

	acc, err := c.o.Accounts.Authenticate(user, password)
	if err != nil && !errors.Is(err, adminapi.ErrBadCredentials) {
		// The admin API's own lock (failures on the socket count there too),
		// or an accounts file that cannot be read.
		return adminapi.Account{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && acc.TOTP != "" {
		key, kerr := adminapi.TOTPKey(acc.TOTP)
		step, ok := totpVerify(key, strings.TrimSpace(code), now, c.totpLast[user])
		if kerr != nil || !ok {
			err = errBadLogin
		} else {
			c.totpLast[user] = step
		}
	}
	if err == nil {
		delete(c.fails, user)
		return acc, nil
	}
	if len(c.fails) > maxLogins { // names tried at random must not grow the map without bound
		for u, f := range c.fails {
			if !now.Before(f.until) {
				delete(c.fails, u)
			}
		}
	}
	f := c.fails[user]
	if f == nil {
		f = &failures{}
		c.fails[user] = f
	}
	if f.n++; f.n >= maxFailures {
		f.n, f.until = 0, now.Add(lockFor)
		return adminapi.Account{}, &lockedError{f.until}
	}
	return adminapi.Account{}, errBadLogin
}

// startLogin makes a login for acc and sets its cookie. A fresh id at every
// login: an id planted before cannot be carried into it.
func (c *Console) startLogin(w http.ResponseWriter, acc adminapi.Account) {
	v := randomString(32)
	now := c.now()
	l := &login{user: acc.User, csrf: randomString(32), created: now, seen: now}
	c.mu.Lock()
	c.sweepLocked(now)
	if len(c.logins) >= maxLogins {
		var oldest [32]byte
		var at time.Time
		for k, l := range c.logins {
			if at.IsZero() || l.seen.Before(at) {
				oldest, at = k, l.seen
			}
		}
		delete(c.logins, oldest)
	}
	c.logins[cookieKey(v)] = l
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (c *Console) sweepLocked(now time.Time) {
	for k, l := range c.logins {
		if expired(l, now) {
			delete(c.logins, k)
		}
	}
}

func expired(l *login, now time.Time) bool {
	return now.Sub(l.seen) >= idleTimeout || now.Sub(l.created) >= maxLoginAge
}

// fromCookie returns the login the request's cookie names, if it is still
// valid, and counts the request as activity.
func (c *Console) fromCookie(r *http.Request) (*principal, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	key := cookieKey(ck.Value)
	now := c.now()
	c.mu.Lock()
	l := c.logins[key]
	if l != nil && expired(l, now) {
		delete(c.logins, key)
		l = nil
	}
	if l != nil {
		l.seen = now
	}
	var user string
	if l != nil {
		user = l.user
	}
	c.mu.Unlock()
	if l == nil {
		return nil, false
	}
	acc, ok := c.account(user)
	if !ok {
		c.endLogin(key)
		return nil, false
	}
	return &principal{Account: acc, key: key, login: l}, true
}

// alive reports whether the login is still valid, for long streams.
func (c *Console) alive(p *principal) bool {
	if p.login == nil {
		return true
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.logins[p.key]
	if l == nil || l != p.login || now.Sub(l.created) >= maxLoginAge {
		return false
	}
	// Watching a live session is activity.
	l.seen = now
	return true
}

func (c *Console) endLogin(key [32]byte) {
	c.mu.Lock()
	delete(c.logins, key)
	c.mu.Unlock()
}

func (c *Console) setFlash(p *principal, msg string) {
	if p.login == nil {
		return
	}
	c.mu.Lock()
	p.login.flash = msg
	c.mu.Unlock()
}

func (c *Console) takeFlash(p *principal) string {
	if p == nil || p.login == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := p.login.flash
	p.login.flash = ""
	return f
}

// fromToken returns the principal of an "Authorization: Bearer" token: its
// creator as the accounts file has them now, limited by the token's scope.
// With no Authorization header it returns nil and no error.
func (c *Console) fromToken(r *http.Request) (*principal, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, ""
	}
	scheme, secret, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, "send an API token as Authorization: Bearer, or log in to the console"
	}
	t, ok := c.tokens.lookup(strings.TrimSpace(secret), c.now())
	if !ok {
		return nil, "unknown or revoked API token"
	}
	acc, ok := c.account(t.User)
	if !ok {
		return nil, "the token's creator " + t.User + " no longer has an account"
	}
	return &principal{Account: acc, token: &t}, ""
}

// csrfError says why a state change was refused; empty if it was not.
func (c *Console) csrfError(r *http.Request, p *principal) string {
	if err := c.cop.Check(r); err != nil {
		return "This request came from another site and was refused (cross-origin request)."
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	switch {
	case got == "":
		return "This form has no security token (CSRF). Reload the page and try again."
	case subtle.ConstantTimeCompare([]byte(got), []byte(p.login.csrf)) != 1:
		return "This form's security token (CSRF) does not match your login. Reload the page and try again."
	}
	return ""
}

// permError says why p may not do what needs; empty if it may.
func permError(p *principal, need perm) string {
	switch need {
	case permApprove:
		if !p.Has(adminapi.RoleApprover) {
			return p.User + " has role " + strings.Join(p.Roles, ",") + ": auditors and viewers can read but not approve, deny, revoke or kill"
		}
		if !p.canApprove() {
			return "this token has scope " + p.token.Scope + ": it can read but not approve, deny, revoke or kill"
		}
	case permTokens:
		if p.viaToken() {
			return "tokens are managed in the console, not with a token"
		}
		if !p.Has(adminapi.RoleApprover) {
			return "only engineers (role approver) manage API tokens"
		}
	}
	return ""
}

// page wraps an HTML handler: it needs a console login; state changes need
// the login's CSRF token and a same-origin request.
func (c *Console) page(need perm, h func(w http.ResponseWriter, r *http.Request, p *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.fromCookie(r)
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, nil, http.StatusUnauthorized, "Your login has ended. Log in again and repeat what you were doing.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.errorPage(w, r, p, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			if msg := c.csrfError(r, p); msg != "" {
				c.o.Log.Warn("console: state change refused", "user", p.User, "path", r.URL.Path, "why", msg)
				c.errorPage(w, r, p, http.StatusForbidden, msg)
				return
			}
		}
		if msg := permError(p, need); msg != "" {
			c.errorPage(w, r, p, http.StatusForbidden, capitalize(msg)+".")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)), p)
	})
}

// api wraps a JSON handler: a console login (with CSRF for state changes)
// or a bearer token.
func (c *Console) api(need perm, h func(w http.ResponseWriter, r *http.Request, p *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, msg := c.fromToken(r)
		if msg != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="brana", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if p == nil {
			var ok bool
			if p, ok = c.fromCookie(r); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="brana"`)
				writeError(w, http.StatusUnauthorized, "authentication required: log in to the console or send an API token (Authorization: Bearer)")
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			// A bearer token is never sent by a browser on its own, so it needs no CSRF token.
			if p.login != nil {
				if msg := c.csrfError(r, p); msg != "" {
					c.o.Log.Warn("console: state change refused", "user", p.User, "path", r.URL.Path, "why", msg)
					writeError(w, http.StatusForbidden, msg)
					return
				}
			}
		}
		if msg := permError(p, need); msg != "" {
			writeError(w, http.StatusForbidden, msg)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)), p)
	})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.fromCookie(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusOK, "login", loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

type loginView struct {
	Next, User string
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := c.cop.Check(r); err != nil {
		c.errorPage(w, r, nil, http.StatusForbidden, "This login came from another site and was refused (cross-origin request).")
		return
	}
	user := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	v := loginView{Next: safeNext(r.PostFormValue("next")), User: user}
	acc, err := c.authenticate(user, r.PostFormValue("password"), r.PostFormValue("totp"))
	var locked *lockedError
	switch {
	case err == nil:
	case errors.As(err, &locked):
		c.o.Log.Warn("console: login refused: locked", "user", user, "until", locked.until)
		w.Header().Set("Retry-After", strconv.Itoa(int(locked.until.Sub(c.now())/time.Second)+1))
		c.renderError(w, r, http.StatusTooManyRequests, "login", v, capitalize(err.Error())+".")
		return
	case errors.Is(err, adminapi.ErrLocked):
		c.o.Log.Warn("console: login refused: locked by the admin API", "user", user)
		w.Header().Set("Retry-After", strconv.Itoa(int(adminapi.LockFor/time.Second)))
		c.renderError(w, r, http.StatusTooManyRequests, "login", v, capitalize(strings.TrimPrefix(err.Error(), "adminapi: "))+".")
		return
	case errors.Is(err, errBadLogin), errors.Is(err, adminapi.ErrBadCredentials):
		c.o.Log.Warn("console: login failed", "user", user, "from", r.RemoteAddr)
		c.renderError(w, r, http.StatusUnauthorized, "login", v, "Wrong user name, password or code.")
		return
	default:
		c.o.Log.Error("console: login impossible", "err", err)
		c.renderError(w, r, http.StatusInternalServerError, "login", v, "Login is not possible: "+err.Error())
		return
	}
	if ck, err := r.Cookie(cookieName); err == nil {
		c.endLogin(cookieKey(ck.Value)) // one login per browser
	}
	c.startLogin(w, acc)
	c.o.Log.Info("console: login", "user", acc.User, "roles", acc.Roles, "from", r.RemoteAddr)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	c.endLogin(p.key)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.o.Log.Info("console: logout", "user", p.User)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/login") {
		return "/requests"
	}
	return next
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// roleName is how the console names an account's role to people.
func roleName(a adminapi.Account) string {
	if slices.Contains(a.Roles, adminapi.RoleApprover) {
		return "engineer"
	}
	return "auditor (read only)"
}
