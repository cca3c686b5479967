package console

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/auditquery"
)

// Search limits: a page shows the newest matches; an export has them all.
const (
	defaultLimit  = 200
	maxLimit      = 5000
	storyMax      = 5000  // records of one session in its story
	storyRequests = 10000 // approval records remembered while the story is gathered
)

// auditRecord is one stored audit line decoded for display, CSV and the
// live stream: auditquery's Record, with the console's own methods.
type auditRecord struct {
	auditquery.Record
}

func decodeRecord(line []byte) (auditRecord, error) {
	var r auditRecord
	err := json.Unmarshal(line, &r)
	return r, err
}

// When is the record's time.
func (r auditRecord) When() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.Time)
	return t
}

// Who names the party as people know it.
func (r auditRecord) Who() string {
	switch {
	case r.PartyName != "" && r.Org != "":
		return r.PartyName + ", " + r.Org
	case r.PartyName != "":
		return r.PartyName
	}
	return r.Party
}

// Operation says in one line what the record is about.
func (r auditRecord) Operation() string {
	switch {
	case strings.HasPrefix(r.Type, "session."):
		var s []string
		if r.Listener != "" {
			s = append(s, "listener "+r.Listener)
		}
		if r.Source != "" {
			s = append(s, "from "+r.Source)
		}
		return strings.Join(s, " ")
	case r.Type == "config.load":
		return "policy " + shorten(r.Policy, 16)
	case r.Service != "":
		return r.opcua()
	case r.FC != nil:
		return r.modbus()
	}
	return ""
}

func (r auditRecord) modbus() string {
	var b strings.Builder
	if r.Type == "result" && r.Cmd != 0 {
		fmt.Fprintf(&b, "result of #%d: ", r.Cmd)
	}
	fmt.Fprintf(&b, "fc %d", *r.FC)
	if r.Sub != nil {
		fmt.Fprintf(&b, "/%d", *r.Sub)
	}
	if r.Unit != nil {
		fmt.Fprintf(&b, " unit %d", *r.Unit)
	}
	if r.Class != "" {
		b.WriteString(" " + r.Class)
	}
	if r.ReadTable != "" {
		b.WriteString(" read " + span(r.ReadTable, r.ReadAddr, r.ReadCount))
	}
	if r.WriteTable != "" {
		b.WriteString(" write " + span(r.WriteTable, r.WriteAddr, r.WriteCount))
	}
	if len(r.Values) > 0 {
		const show = 8
		var vs []string
		for i, v := range r.Values {
			if i == show {
				break
			}
			vs = append(vs, strconv.Itoa(int(v)))
		}
		b.WriteString(" = " + strings.Join(vs, ", "))
		if r.NValues > len(vs) {
			fmt.Fprintf(&b, " … (%d values)", r.NValues)
		}
	}
	return b.String()
}

func (r auditRecord) opcua() string {
	var b strings.Builder
	if r.Type == "result" && r.Cmd != 0 {
		fmt.Fprintf(&b, "result of #%d: ", r.Cmd)
	}
	b.WriteString(r.Service)
	if r.Class != "" {
		b.WriteString(" " + r.Class)
	}
	const show = 3
	for i, it := range r.Items {
		if i == show {
			break
		}
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(it.Node)
		if it.Attr != "" && it.Attr != "Value" {
			b.WriteString("@" + it.Attr)
		}
		if it.Value != "" {
			b.WriteString("=" + it.Value)
		}
		if it.Status != "" && it.Status != "Good" {
			b.WriteString(" " + it.Status)
		}
	}
	if r.NItems > show {
		fmt.Fprintf(&b, " … (%d items)", r.NItems)
	}
	return b.String()
}

func span(table string, at, n int) string {
	if n <= 1 {
		return fmt.Sprintf("%s %d", table, at)
	}
	return fmt.Sprintf("%s %d..%d", table, at, at+n-1)
}

// DecisionText is the decision with its rule or reason.
func (r auditRecord) DecisionText() string {
	s := r.Decision
	if r.Rule != "" {
		s += " by " + r.Rule
	}
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	if r.Grant != "" {
		s += " under " + r.Grant
	}
	return strings.TrimSpace(s)
}

// Outcome is what the target answered.
func (r auditRecord) Outcome() string {
	var s []string
	if r.Status != "" {
		s = append(s, r.Status)
	}
	if r.Exception != 0 {
		s = append(s, fmt.Sprintf("exception %d", r.Exception))
	}
	if r.LatencyUS != 0 {
		s = append(s, (time.Duration(r.LatencyUS) * time.Microsecond).String())
	}
	return strings.Join(s, ", ")
}

// text is what a free-text search looks at: the values people read, not
// the keys, hashes and signatures.
func (r auditRecord) text() string {
	parts := []string{r.Type, r.Session, r.Party, r.PartyName, r.Org, r.Source, r.Listener, r.Target, r.Class,
		r.Service, r.Decision, r.Rule, r.Grant, r.Reason, r.Status, r.Detail, r.Policy, r.Operation()}
	for _, it := range r.Items {
		parts = append(parts, it.Node, it.Value, it.Reason, it.Status)
	}
	return strings.ToLower(strings.Join(parts, "\x00"))
}

// auditSearch is a search of the audit log: auditquery's filters plus text.
type auditSearch struct {
	Flags auditquery.Flags
	Q     string
	Limit int
}

func searchFrom(v url.Values) auditSearch {
	s := auditSearch{Q: strings.TrimSpace(v.Get("q")), Limit: defaultLimit, Flags: auditquery.Flags{
		Since: v.Get("since"), Until: v.Get("until"), Party: v.Get("party"), Target: v.Get("target"),
		Session: v.Get("session"), Class: v.Get("class"), Decision: v.Get("decision"), Type: v.Get("type"),
		Service: v.Get("service"), Node: v.Get("node")}}
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 {
		s.Limit = min(n, maxLimit)
	}
	return s
}

// Query is the search as URL parameters, for links (export, next page).
func (s auditSearch) Query() string {
	v := url.Values{}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	f := s.Flags
	set("q", s.Q)
	set("since", f.Since)
	set("until", f.Until)
	set("party", f.Party)
	set("target", f.Target)
	set("session", f.Session)
	set("class", f.Class)
	set("decision", f.Decision)
	set("type", f.Type)
	set("service", f.Service)
	set("node", f.Node)
	return v.Encode()
}

var errNoAuditDir = errors.New("this gateway has no audit log directory configured")

// scan runs the search over the log and calls fn, in log order, with each
// matching stored line. fn must copy a line it keeps.
func (c *Console) scan(ctx context.Context, s auditSearch, fn func(line []byte, r *auditRecord) error) error {
	if c.o.AuditDir == "" {
		return errNoAuditDir
	}
	f, err := auditquery.ParseFilter(s.Flags, c.now())
	if err != nil {
		return &badSearch{err}
	}
	select {
	case c.scans <- struct{}{}:
		defer func() { <-c.scans }()
	case <-ctx.Done():
		return ctx.Err()
	}
	q := strings.ToLower(s.Q)
	lw := &lineWriter{fn: func(line []byte) error {
		if ctx.Err() != nil {
			return ctx.Err() // the client left: skip the rest
		}
		r, err := decodeRecord(line)
		if err != nil {
			return nil
		}
		if q != "" && !strings.Contains(r.text(), q) {
			return nil
		}
		return fn(line, &r)
	}}
	_, err = auditquery.Show(lw, c.o.AuditDir, f, true)
	if lw.err != nil {
		return lw.err
	}
	return err
}

// badSearch is a search the user must fix.
type badSearch struct{ err error }

func (e *badSearch) Error() string {
	return strings.TrimPrefix(strings.TrimPrefix(e.err.Error(), "auditquery: "), "--")
}

func searchStatus(err error) int {
	var bad *badSearch
	switch {
	case errors.As(err, &bad):
		return http.StatusBadRequest
	case errors.Is(err, errNoAuditDir):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// lineWriter splits what auditquery.Show writes into lines.
type lineWriter struct {
	buf []byte
	fn  func(line []byte) error
	err error // sticky: Show keeps writing after an error, to no effect
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if err := w.fn(rest[:i]); err != nil {
			w.err = err
			return 0, err
		}
		rest = rest[i+1:]
	}
	w.buf = w.buf[:copy(w.buf, rest)]
	return len(p), nil
}

// searchResult holds the newest matches of a search, in log order.
type searchResult struct {
	Matched   int
	Lines     [][]byte
	Records   []auditRecord
	Truncated bool
}

func (c *Console) search(ctx context.Context, s auditSearch) (searchResult, error) {
	var res searchResult
	err := c.scan(ctx, s, func(line []byte, r *auditRecord) error {
		res.Matched++
		if len(res.Lines) == s.Limit {
			// Keep the newest: drop the oldest (amortised by shifting in halves).
			half := max(s.Limit/2, 1)
			res.Lines = append(res.Lines[:0], res.Lines[half:]...)
			res.Records = append(res.Records[:0], res.Records[half:]...)
		}
		res.Lines = append(res.Lines, bytes.Clone(line))
		res.Records = append(res.Records, *r)
		return nil
	})
	if n := len(res.Lines); n > s.Limit {
		res.Lines, res.Records = res.Lines[n-s.Limit:], res.Records[n-s.Limit:]
	}
	res.Truncated = res.Matched > len(res.Lines)
	return res, err
}

type auditView struct {
	Search    auditSearch
	Searched  bool
	Result    searchResult
	Newest    []auditRecord // newest first
	Classes   []string
	Decisions []string
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, p *principal) {
	s := searchFrom(r.URL.Query())
	v := auditView{Search: s, Classes: classOptions(), Decisions: auditquery.Decisions}
	if len(r.URL.Query()) == 0 {
		// Every search reads the whole log: only search when asked to.
		c.render(w, r, p, http.StatusOK, "audit", v)
		return
	}
	res, err := c.search(r.Context(), s)
	if err != nil {
		c.renderError(w, r, searchStatus(err), "audit", v, capitalize(err.Error())+".")
		return
	}
	v.Searched, v.Result = true, res
	v.Newest = slices.Clone(res.Records)
	slices.Reverse(v.Newest)
	c.render(w, r, p, http.StatusOK, "audit", v)
}

// csvHeader are the CSV export's columns, one per audit field.
var csvHeader = []string{"seq", "time", "type", "session", "cmd", "party", "party_name", "org", "source", "listener",
	"target", "unit", "fc", "sub", "class", "read_table", "read_addr", "read_count", "write_table", "write_addr",
	"write_count", "values", "n_values", "service", "items", "n_items", "decision", "rule", "grant", "reason",
	"exception", "status", "latency_us", "retries", "detail", "policy"}

func (r auditRecord) csvRow() []string {
	opt := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	num := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	var vals, items []string
	for _, v := range r.Values {
		vals = append(vals, strconv.Itoa(int(v)))
	}
	for _, it := range r.Items {
		s := it.Node
		if it.Attr != "" {
			s += "@" + it.Attr
		}
		if it.Value != "" {
			s += "=" + it.Value
		}
		if it.Decision != "" {
			s += " " + it.Decision
		}
		if it.Status != "" {
			s += " " + it.Status
		}
		items = append(items, s)
	}
	row := []string{strconv.FormatUint(r.Seq, 10), r.Time, r.Type, r.Session, num(int(r.Cmd)), r.Party, r.PartyName,
		r.Org, r.Source, r.Listener, r.Target, opt(r.Unit), opt(r.FC), opt(r.Sub), r.Class, r.ReadTable,
		num(r.ReadAddr), num(r.ReadCount), r.WriteTable, num(r.WriteAddr), num(r.WriteCount), strings.Join(vals, " "),
		num(r.NValues), r.Service, strings.Join(items, "; "), num(r.NItems), r.Decision, r.Rule, r.Grant, r.Reason,
		num(r.Exception), r.Status, strconv.FormatInt(r.LatencyUS, 10), num(r.Retries), r.Detail, r.Policy}
	if r.ReadTable != "" {
		row[16], row[17] = strconv.Itoa(r.ReadAddr), strconv.Itoa(r.ReadCount)
	}
	if r.WriteTable != "" {
		row[19], row[20] = strconv.Itoa(r.WriteAddr), strconv.Itoa(r.WriteCount)
	}
	if r.LatencyUS == 0 {
		row[32] = ""
	}
	for i, s := range row {
		row[i] = csvSafe(s)
	}
	return row
}

// csvSafe keeps a spreadsheet from running a cell as a formula: a party
// name is chosen by whoever registered it.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// export writes every match of s as JSON Lines (the stored bytes, so that
// hashes still chain) or CSV.
func (c *Console) export(w http.ResponseWriter, r *http.Request, p *principal) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q is not json or csv", format))
		return
	}
	s := searchFrom(r.URL.Query())
	if c.o.AuditDir == "" {
		writeError(w, http.StatusServiceUnavailable, errNoAuditDir.Error())
		return
	}
	if _, err := auditquery.ParseFilter(s.Flags, c.now()); err != nil {
		writeError(w, http.StatusBadRequest, (&badSearch{err}).Error())
		return
	}
	name := "brana-audit-" + c.now().UTC().Format("20060102-150405")
	var cw *csv.Writer
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw = csv.NewWriter(w)
		cw.Write(csvHeader)
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
	}
	n := 0
	err := c.scan(r.Context(), s, func(line []byte, rec *auditRecord) error {
		n++
		if cw != nil {
			cw.Write(rec.csvRow())
			return cw.Error()
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	})
	if cw != nil {
		cw.Flush()
	}
	if err != nil {
		c.o.Log.Warn("console: audit export ended early", "user", p.User, "records", n, "err", err)
		return
	}
	c.o.Log.Info("console: audit export", "user", p.User, "format", format, "records", n, "query", s.Query())
}

// story is one session's full story: its records, and the approval records
// of the requests it raised or the grants it worked under.
type story struct {
	Session   string
	Requests  []string
	Lines     [][]byte
	Records   []auditRecord
	Truncated bool // more session records than storyMax; the first ones and the last are shown
}

var requestID = regexp.MustCompile(`\brequest (R-[0-9A-Z]{6})\b`)

func (c *Console) story(ctx context.Context, id string) (story, error) {
	st := story{Session: id}
	type held struct {
		line []byte
		rec  auditRecord
		req  string
	}
	var sess, appr []held
	var last *held
	related := map[string]bool{}
	if info, ok := c.liveSession(id); ok && info.Grant != "" {
		related[info.Grant] = true
	}
	err := c.scan(ctx, auditSearch{}, func(line []byte, r *auditRecord) error {
		switch {
		case r.Session == id:
			if r.Grant != "" {
				related[r.Grant] = true
			}
			h := held{line: bytes.Clone(line), rec: *r}
			if len(sess) < storyMax {
				sess = append(sess, h)
			} else {
				st.Truncated, last = true, &h
			}
		case strings.HasPrefix(r.Type, "approval."):
			m := requestID.FindStringSubmatch(r.Detail)
			if m == nil {
				return nil
			}
			if mentions(r.Detail, id) {
				related[m[1]] = true
			}
			if len(appr) == storyRequests {
				appr = append(appr[:0], appr[storyRequests/2:]...)
			}
			appr = append(appr, held{line: bytes.Clone(line), rec: *r, req: m[1]})
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if last != nil {
		sess = append(sess, *last)
	}
	all := sess
	for _, a := range appr {
		if related[a.req] {
			all = append(all, a)
		}
	}
	slices.SortFunc(all, func(a, b held) int {
		switch {
		case a.rec.Seq < b.rec.Seq:
			return -1
		case a.rec.Seq > b.rec.Seq:
			return 1
		}
		return 0
	})
	for _, h := range all {
		st.Lines = append(st.Lines, h.line)
		st.Records = append(st.Records, h.rec)
	}
	for req := range related {
		st.Requests = append(st.Requests, req)
	}
	slices.Sort(st.Requests)
	return st, nil
}

// mentions reports whether text names id as a whole word: session
// "gw-scada-1" is not mentioned by "gw-scada-12".
func mentions(text, id string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], id)
		if j < 0 {
			return false
		}
		end := i + j + len(id)
		if end == len(text) || !isIDByte(text[end]) {
			if start := i + j; start == 0 || !isIDByte(text[start-1]) {
				return true
			}
		}
		i += j + 1
	}
}

func isIDByte(b byte) bool {
	return b == '-' || b == '_' || b == '.' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

type storyView struct {
	story
	Live bool
}

func (c *Console) storyPage(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	st, err := c.story(r.Context(), id)
	if err != nil {
		c.errorPage(w, r, p, searchStatus(err), capitalize(err.Error())+".")
		return
	}
	_, live := c.liveSession(id)
	c.render(w, r, p, http.StatusOK, "story", storyView{story: st, Live: live})
}

// Advanced reports whether a filter behind "more filters" is set, so that
// the page shows them open.
func (s auditSearch) Advanced() bool {
	f := s.Flags
	return f.Target != "" || f.Decision != "" || f.Class != "" || f.Service != "" || f.Type != "" || f.Since != "" || f.Until != ""
}
