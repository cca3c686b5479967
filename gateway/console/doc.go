// Package console is the engineer console that the gateway serves itself,
// over HTTPS only: the approvals inbox, live sessions with a kill switch and
// a live stream of their commands, the audit log (search, one session's
// story, export as JSON Lines or CSV), parties with their jurisdiction
// evidence, targets with their health and the policy in force with its
// digest; and the same as a JSON API under /api/v1 (docs/API.md).
//
// Pages are html/template with embedded static files and no inline script
// (the content security policy forbids it); they work without JavaScript,
// on a phone-sized screen and with the keyboard alone. The one script,
// static/console.js, shows a session's commands as they arrive by
// server-sent events.
//
// People log in with the admin accounts (adminapi.Accounts): role approver
// is an engineer, viewer (and requester) an auditor who reads only. An
// account with a totp secret also needs a TOTP code (RFC 6238: SHA-1, six
// digits, 30 s steps, one step of drift either way; a code works once).
// Five failed logins in a row lock a user name for fifteen minutes, whether
// or not it exists. A login lives in memory, named by a random 32-byte id in
// the cookie brana_session (Secure, HttpOnly, SameSite=Strict, Path=/), and
// ends after 30 minutes without a request or 12 hours in any case, or at
// logout. Every state change (POST, DELETE) made with the cookie needs the
// login's CSRF token, in the form field csrf or the X-CSRF-Token header, and
// must not come from another site (Sec-Fetch-Site, Origin). GET never
// changes anything: there are no approval links, approving needs the form.
//
// API tokens (Authorization: Bearer) act as the engineer who made them,
// with scope read or approve; only their SHA-256 is stored. They need no
// CSRF token, never make tokens, and a supervised session does not count a
// token's stream as someone watching.
//
// Routes (pages):
//
//	GET  /login, POST /login           form #login: username, password, totp
//	POST /logout
//	GET  /requests?state=open|pending|approved|denied|expired|revoked|closed|all
//	GET  /requests/{id}
//	POST /requests/{id}/approve        csrf, classes, targets, for (duration), until (datetime-local), note
//	POST /requests/{id}/deny           csrf, note (required)
//	POST /requests/{id}/revoke         csrf, note (required)
//	GET  /sessions, GET /sessions/{id}
//	POST /sessions/{id}/kill           csrf, reason
//	GET  /audit?q&party&session&target&decision&class&service&type&since&until&limit
//	GET  /audit/sessions/{id}          the session's story
//	GET  /parties, /targets, /policy
//	GET  /tokens, POST /tokens, POST /tokens/{id}/revoke   engineers only
//	GET  /static/...
//
// Element ids and names a browser test can rely on:
//
//   - login: form#login with inputs #username, #password, #totp (names
//     the same) and button #login-submit "Log in"; #error (role=alert)
//     holds a refusal. Every page: #flash (role=status) after an action,
//     #error on a refusal, #whoami, button #logout "Log out", the skip link
//     to main#main.
//   - requests: select #state; each request is article#req-{ID} with
//     data-request-id; a pending one has form.decide[data-request-id] with
//     checkboxes name=classes and name=targets (all checked), select
//     #for-{ID} name=for (durations such as "30m", "1h"), input #until-{ID}
//     name=until (datetime-local), textarea #note-{ID} name=note, and the
//     buttons "Approve" (button.approve) and "Deny" (button.deny); an
//     approved one has form.revoke with the button "Revoke". Approvals so
//     far are ul.steps li.approval, the first with class first.
//   - sessions: table#sessions, a row per session with data-session-id,
//     its id linking to /sessions/{id}, and a button "Kill" (aria-label
//     "Kill session {ID}"). A session page has form#kill with input #reason
//     and the "Kill" button, and ul#stream getting one li per record
//     (data-seq, data-decision, class = the decision; li.end when the
//     session ends); #stream-status says whether the stream is live.
//   - audit: form#audit-search with inputs #q, #party, #session, #target,
//     #service, #type, #since, #until and selects #decision, #class (names
//     the same), button #search-submit; #result-count; table#results with
//     one tr[data-seq] per record; links #export-json and #export-csv.
//   - policy: code#policy-digest; targets: table#targets; tokens:
//     form#token-create (#token-name, #token-scope), code#new-token,
//     table#tokens.
package console
