package main

// The admin commands talk to a running gateway's local admin API
// (gateway/adminapi) on its Unix socket. main.go's switch in run() routes to them:
//
//	case "requests":
//		return cmdRequests(args[1:], stdout, stderr)
//	case "sessions":
//		return cmdSessions(args[1:], stdout, stderr)
//	case "account":
//		return cmdAccount(args[1:], stdout, stderr)
//
// and the usage text lists requestsUsage, sessionsUsage and accountUsage.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/sessions"
)

// The admin socket where the packaged config puts it (the systemd unit's
// runtime folder), and the gateway's default in the packaged data folder,
// used when only it exists.
const (
	defaultSocket = "/run/brana/admin.sock"
	dataSocket    = "/var/lib/brana/admin.sock"
)

const adminFlagsUsage = `common flags: --socket PATH (env BRANA_SOCKET, default ` + defaultSocket + `, or
              ` + dataSocket + ` when only that exists),
              --user NAME (env BRANA_USER), --json; the password comes from
              env BRANA_PASSWORD or is asked on the terminal (never a flag)
`

const requestsUsage = `usage:
  brana requests list [--all] [--party P]         pending requests and live grants (--all: every request)
  brana requests show ID                          one request with its evidence
  brana requests approve ID [--until RFC3339 | --for 1h] [--classes read,write] [--targets a,b] [--note TEXT]
  brana requests deny ID --note TEXT
  brana requests revoke ID --note TEXT            ends the grant and its sessions at once
  brana requests create --party P --targets T,T --classes C,C (--reason R | --ticket T) [--for 2h] [--start RFC3339]
` + adminFlagsUsage

const sessionsUsage = `usage:
  brana sessions list
  brana sessions kill ID [--reason TEXT]
` + adminFlagsUsage

const accountUsage = `usage:
  brana account hash      read a password (from the terminal without echo, or the first line of
                          standard input) and print its argon2id hash for the accounts file
`

// stdin is where `brana account hash` and `brana opcua user-hash` read a
// password; tests replace it.
var stdin = os.Stdin

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	socket, user string
	json         bool
}

func newAdminFlags(name string, stderr io.Writer) (*flag.FlagSet, *adminFlags) {
	fs := newFlags(name, stderr)
	af := &adminFlags{}
	socket := os.Getenv("BRANA_SOCKET")
	if socket == "" {
		socket = socketDefault(defaultSocket, dataSocket)
	}
	fs.StringVar(&af.socket, "socket", socket, "admin API socket (env BRANA_SOCKET)")
	fs.StringVar(&af.user, "user", os.Getenv("BRANA_USER"), "account name (env BRANA_USER)")
	fs.BoolVar(&af.json, "json", false, "print the API's JSON")
	return fs, af
}

// socketDefault is preferred, unless it does not exist and fallback does.
func socketDefault(preferred, fallback string) string {
	if _, err := os.Stat(preferred); err != nil {
		if _, err := os.Stat(fallback); err == nil {
			return fallback
		}
	}
	return preferred
}

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// apiError is an answer of the admin API with an error status.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.code) }

type adminClient struct {
	hc       *http.Client
	socket   string
	user, pw string
}

func (af *adminFlags) client() (*adminClient, error) {
	if af.user == "" {
		return nil, errors.New("no user: give --user or set BRANA_USER")
	}
	pw, ok := os.LookupEnv("BRANA_PASSWORD")
	if !ok {
		var err error
		if pw, err = promptPassword("Password for " + af.user + ": "); err != nil {
			return nil, fmt.Errorf("no password: set BRANA_PASSWORD or run on a terminal (%v)", err)
		}
	}
	socket := af.socket
	return &adminClient{socket: socket, user: af.user, pw: pw, hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}}, nil
}

// promptPassword reads a password from the controlling terminal without echo.
func promptPassword(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return string(b), err
}

// do calls the API; out receives the JSON answer, raw its bytes.
func (c *adminClient) do(method, path string, body, out any) (raw []byte, err error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://brana"+path, rd)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.user, c.pw)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the gateway on %s (is it running, and may you open the socket?): %w", c.socket, err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return raw, &apiError{resp.StatusCode, e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("reading the answer: %w", err)
		}
	}
	return raw, nil
}

func cmdRequests(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, requestsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs, af := newAdminFlags("requests "+sub, stderr)
	var (
		all                                bool
		party, until, forDur, classes      string
		targets, note, reason, ticket, due string
	)
	switch sub {
	case "list":
		fs.BoolVar(&all, "all", false, "every request, not only pending ones and live grants")
		fs.StringVar(&party, "party", "", "only this party's requests")
	case "show":
	case "approve":
		fs.StringVar(&until, "until", "", "the grant ends by then at the latest (RFC 3339)")
		fs.StringVar(&forDur, "for", "", "the grant ends this long from now at the latest (e.g. 1h)")
		fs.StringVar(&classes, "classes", "", "narrow to these classes (comma-separated)")
		fs.StringVar(&targets, "targets", "", "narrow to these targets (comma-separated)")
		fs.StringVar(&note, "note", "", "note for the record and the requester")
	case "deny", "revoke":
		fs.StringVar(&note, "note", "", "why (required; the requester reads it)")
	case "create":
		fs.StringVar(&party, "party", "", "party id")
		fs.StringVar(&targets, "targets", "", "targets (comma-separated)")
		fs.StringVar(&classes, "classes", "", "operation classes (comma-separated): read, write, diagnose, control, program")
		fs.StringVar(&reason, "reason", "", "why the work is needed")
		fs.StringVar(&ticket, "ticket", "", "work order or ticket")
		fs.StringVar(&forDur, "for", "", "wanted work window (default: the gateway's default window)")
		fs.StringVar(&due, "start", "", "wanted start (RFC 3339; default now)")
	default:
		fmt.Fprintf(stderr, "brana requests: unknown command %q\n%s", sub, requestsUsage)
		return exitUsage
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	needID := sub != "list" && sub != "create"
	if needID && len(pos) != 1 || !needID && len(pos) != 0 {
		fmt.Fprint(stderr, requestsUsage)
		return exitUsage
	}
	if (sub == "deny" || sub == "revoke") && strings.TrimSpace(note) == "" {
		fmt.Fprintf(stderr, "brana requests %s: --note is required (the requester reads it)\n", sub)
		return exitUsage
	}
	var body any
	path := "/v1/requests"
	method := http.MethodGet
	if needID {
		path += "/" + url.PathEscape(approvals.NormalizeID(pos[0]))
	}
	switch sub {
	case "list":
		q := url.Values{}
		if !all {
			q.Set("state", "pending,approved")
		}
		if party != "" {
			q.Set("party", party)
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	case "approve":
		b := adminapi.ApproveBody{Classes: splitList(classes), Targets: splitList(targets), Note: note}
		if until != "" && forDur != "" {
			fmt.Fprintln(stderr, "brana requests approve: give --until or --for, not both")
			return exitUsage
		}
		if until != "" {
			if b.Until, err = time.Parse(time.RFC3339, until); err != nil {
				fmt.Fprintf(stderr, "brana requests approve: --until %q is not an RFC 3339 time (2026-03-02T17:00:00+01:00)\n", until)
				return exitUsage
			}
		}
		if forDur != "" {
			d, err := time.ParseDuration(forDur)
			if err != nil || d <= 0 {
				fmt.Fprintf(stderr, "brana requests approve: --for %q is not a duration (examples: 45m, 2h)\n", forDur)
				return exitUsage
			}
			b.Until = time.Now().Add(d).Truncate(time.Second)
		}
		method, path, body = http.MethodPost, path+"/approve", b
	case "deny", "revoke":
		method, path, body = http.MethodPost, path+"/"+sub, adminapi.NoteBody{Note: note}
	case "create":
		b := adminapi.CreateBody{Party: party, Targets: splitList(targets), Classes: splitList(classes), Reason: reason, Ticket: ticket, Duration: forDur}
		if party == "" || len(b.Targets) == 0 || len(b.Classes) == 0 || (reason == "" && ticket == "") {
			fmt.Fprintln(stderr, "brana requests create: --party, --targets, --classes and --reason or --ticket are required")
			return exitUsage
		}
		if due != "" {
			if b.Start, err = time.Parse(time.RFC3339, due); err != nil {
				fmt.Fprintf(stderr, "brana requests create: --start %q is not an RFC 3339 time\n", due)
				return exitUsage
			}
		}
		method, body = http.MethodPost, b
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "brana requests %s: %v\n", sub, err)
		return exitUsage
	}
	if sub == "list" {
		var out struct {
			Requests []approvals.Request `json:"requests"`
		}
		raw, err := c.do(method, path, nil, &out)
		if err != nil {
			fmt.Fprintf(stderr, "brana requests list: %v\n", err)
			return exitFailed
		}
		if af.json {
			stdout.Write(raw)
			return exitOK
		}
		printRequests(stdout, out.Requests, all)
		return exitOK
	}
	var r approvals.Request
	raw, err := c.do(method, path, body, &r)
	if err != nil {
		fmt.Fprintf(stderr, "brana requests %s: %v\n", sub, err)
		return exitFailed
	}
	if af.json {
		stdout.Write(raw)
		return exitOK
	}
	switch sub {
	case "approve":
		if r.State == approvals.StateApproved {
			fmt.Fprintf(stdout, "%s granted: %s\n", r.ID, grantClock(&r))
		} else {
			fmt.Fprintf(stdout, "%s approved (%d of %d); it needs another approver\n", r.ID, len(r.Approvals), r.Required)
		}
	case "deny":
		fmt.Fprintf(stdout, "%s denied\n", r.ID)
	case "revoke":
		fmt.Fprintf(stdout, "%s revoked; its sessions are being ended\n", r.ID)
	case "create":
		fmt.Fprintf(stdout, "%s pending until %s; needs %d approval(s)\n", r.ID, when(r.PendingUntil), r.Required)
	default:
		printRequest(stdout, &r)
	}
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func classList(r *approvals.Request) string {
	names := make([]string, len(r.Classes))
	for i, c := range r.Classes {
		names[i] = c.String()
	}
	return strings.Join(names, ",")
}

func partyLabel(p approvals.PartyInfo) string {
	s := p.ID
	if p.Name != "" && p.Name != p.ID {
		s += " (" + p.Name + ")"
	}
	if p.HasPRC() {
		s += " [PRC]"
	}
	return s
}

func grantClock(r *approvals.Request) string {
	switch {
	case !r.WindowEnd.IsZero():
		return "window " + when(r.WindowStart) + " to " + when(r.WindowEnd)
	case !r.ClaimBy.IsZero():
		s := fmt.Sprintf("claim by %s; window %s from first use", when(r.ClaimBy), fmtDur(r.Duration))
		if !r.NotAfter.IsZero() {
			s += ", ending by " + when(r.NotAfter)
		}
		return s
	}
	return "-"
}

// fmtDur writes 1h30m rather than 1h30m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func clockOf(r *approvals.Request) string {
	switch r.State {
	case approvals.StatePending:
		return "pending until " + when(r.PendingUntil)
	case approvals.StateApproved:
		return grantClock(r)
	}
	return "ended " + when(r.Ended)
}

func printRequests(w io.Writer, rs []approvals.Request, all bool) {
	if len(rs) == 0 {
		if all {
			fmt.Fprintln(w, "no requests")
		} else {
			fmt.Fprintln(w, "no pending requests and no live grants")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPARTY\tTARGETS\tCLASSES\tAPPROVALS\tCLOCK\tREASON")
	for i := range rs {
		r := &rs[i]
		why := r.Reason
		if r.Ticket != "" {
			why = strings.TrimSpace(r.Ticket + " " + why)
		}
		if len(why) > 40 {
			why = why[:37] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID, r.State, partyLabel(r.Party), strings.Join(r.Targets, ","),
			classList(r), len(r.Approvals), r.Required, clockOf(r), oneLine(why))
	}
	tw.Flush()
}

// oneLine keeps text that came from others on one line of the terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func printRequest(w io.Writer, r *approvals.Request) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, oneLine(fmt.Sprintf(format, a...))) }
	state := string(r.State)
	if r.State == approvals.StatePending {
		state += fmt.Sprintf(" (%d of %d approvals)", len(r.Approvals), r.Required)
	}
	row("Request", "%s  %s", r.ID, state)
	p := r.Party
	row("Party", "%s", strings.Join(nonEmpty(partyLabel(p), p.Org, p.Kind), ", "))
	if p.PRC {
		row("", "[PRC] registered as PRC-managed")
	}
	if p.Verdict != "" {
		mark := ""
		if strings.EqualFold(p.Verdict, "prc") {
			mark = "[PRC] "
		}
		row("", "%sjurisdiction verdict: %s", mark, p.Verdict)
	}
	for i, f := range p.Findings {
		k := ""
		if i == 0 {
			k = "Evidence"
		}
		mark := "      "
		if approvals.IsPRCFinding(f) {
			mark = "[PRC] "
		}
		row(k, "%s%s", mark, f)
	}
	row("Targets", "%s", strings.Join(r.Targets, ", "))
	row("Classes", "%s", strings.ReplaceAll(classList(r), ",", ", "))
	if r.Reason != "" {
		row("Reason", "%s", r.Reason)
	}
	if r.Ticket != "" {
		row("Ticket", "%s", r.Ticket)
	}
	row("Asked by", "%s at %s", r.RequestedBy, when(r.Created))
	row("Wanted", "from %s for %s", when(r.WantStart), fmtDur(r.Duration))
	if r.Required > 1 {
		row("Two-person", "%s", r.RequiredBecause)
	}
	switch r.State {
	case approvals.StatePending:
		row("Pending", "until %s", when(r.PendingUntil))
	case approvals.StateApproved:
		row("Grant", "%s", grantClock(r))
	}
	if !r.FirstUse.IsZero() {
		row("First use", "%s", when(r.FirstUse))
	}
	for i, a := range r.Approvals {
		k := ""
		if i == 0 {
			k = "Approvals"
		}
		s := fmt.Sprintf("%s at %s", who(a.By, a.ByName), when(a.At))
		if a.Note != "" {
			s += fmt.Sprintf(": %q", a.Note)
		}
		var narrowed []string
		if len(a.Classes) > 0 {
			names := make([]string, len(a.Classes))
			for i, c := range a.Classes {
				names[i] = c.String()
			}
			narrowed = append(narrowed, "classes "+strings.Join(names, ","))
		}
		if len(a.Targets) > 0 {
			narrowed = append(narrowed, "targets "+strings.Join(a.Targets, ","))
		}
		if !a.Until.IsZero() {
			narrowed = append(narrowed, "until "+when(a.Until))
		}
		if len(narrowed) > 0 {
			s += " [narrowed to " + strings.Join(narrowed, "; ") + "]"
		}
		row(k, "%s", s)
	}
	if d := r.Denial; d != nil {
		row("Denied", "by %s at %s: %q", who(d.By, d.ByName), when(d.At), d.Note)
	}
	if d := r.Revocation; d != nil {
		row("Revoked", "by %s at %s: %q", who(d.By, d.ByName), when(d.At), d.Note)
	}
	if r.State.Terminal() && r.EndReason != "" && r.Denial == nil && r.Revocation == nil {
		row("Ended", "%s: %s", when(r.Ended), r.EndReason)
	}
	if len(r.Sessions) > 0 {
		row("Sessions", "%s", strings.Join(r.Sessions, ", "))
	}
	tw.Flush()
}

func who(user, name string) string {
	if name == "" || name == user {
		return user
	}
	return name + " (" + user + ")"
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func cmdSessions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, sessionsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs, af := newAdminFlags("sessions "+sub, stderr)
	var reason string
	switch sub {
	case "list":
	case "kill":
		fs.StringVar(&reason, "reason", "", "why (goes into the session's close record)")
	default:
		fmt.Fprintf(stderr, "brana sessions: unknown command %q\n%s", sub, sessionsUsage)
		return exitUsage
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if (sub == "kill") != (len(pos) == 1) || len(pos) > 1 {
		fmt.Fprint(stderr, sessionsUsage)
		return exitUsage
	}
	c, err := af.client()
	if err != nil {
		fmt.Fprintf(stderr, "brana sessions %s: %v\n", sub, err)
		return exitUsage
	}
	if sub == "kill" {
		raw, err := c.do(http.MethodPost, "/v1/sessions/"+url.PathEscape(pos[0])+"/kill", adminapi.KillBody{Reason: reason}, nil)
		if err != nil {
			fmt.Fprintf(stderr, "brana sessions kill: %v\n", err)
			return exitFailed
		}
		if af.json {
			stdout.Write(raw)
		} else {
			fmt.Fprintf(stdout, "session %s killed\n", pos[0])
		}
		return exitOK
	}
	var out struct {
		Sessions []sessions.Info `json:"sessions"`
	}
	raw, err := c.do(http.MethodGet, "/v1/sessions", nil, &out)
	if err != nil {
		fmt.Fprintf(stderr, "brana sessions list: %v\n", err)
		return exitFailed
	}
	if af.json {
		stdout.Write(raw)
		return exitOK
	}
	if len(out.Sessions) == 0 {
		fmt.Fprintln(stdout, "no live sessions")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROTOCOL\tPARTY\tORG\tSOURCE\tVIA\tGRANT\tSINCE\tREQUESTS\tREFUSED")
	for _, s := range out.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.Protocol, oneLine(who(s.Party, s.PartyName)), oneLine(orDash(s.Org)),
			s.Source, oneLine(orDash(s.Via)), orDash(s.Grant), when(s.Since), s.Requests, s.Refused)
	}
	tw.Flush()
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdAccount(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "hash" {
		fmt.Fprint(stderr, accountUsage)
		return exitUsage
	}
	pw, err := readNewPassword(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "brana account hash:", err)
		return exitFailed
	}
	h, err := adminapi.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "brana account hash:", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, h)
	return exitOK
}

// readNewPassword reads a password to be hashed from stdin: twice without
// echo on a terminal, else the first line.
func readNewPassword(stderr io.Writer) (string, error) {
	var pw string
	if fd := int(stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		pw = string(a)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}
