package auditquery

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/protocols/modbus"
)

// Record is one stored audit line, decoded (gateway/audit/record.go writes
// them). The console shows the same fields.
type Record struct {
	Seq        uint64   `json:"seq"`
	Time       string   `json:"time"`
	Type       string   `json:"type"`
	Session    string   `json:"session"`
	Cmd        uint64   `json:"cmd"`
	Party      string   `json:"party"`
	PartyName  string   `json:"party_name"`
	Org        string   `json:"org"`
	Source     string   `json:"source"`
	Listener   string   `json:"listener"`
	Target     string   `json:"target"`
	Unit       *int     `json:"unit"`
	FC         *int     `json:"fc"`
	Sub        *int     `json:"sub"`
	Class      string   `json:"class"`
	ReadTable  string   `json:"read_table"`
	ReadAddr   int      `json:"read_addr"`
	ReadCount  int      `json:"read_count"`
	WriteTable string   `json:"write_table"`
	WriteAddr  int      `json:"write_addr"`
	WriteCount int      `json:"write_count"`
	Values     []uint16 `json:"values"`
	NValues    int      `json:"n_values"`
	Service    string   `json:"service"`
	Items      []Item   `json:"items"`
	NItems     int      `json:"n_items"`
	Decision   string   `json:"decision"`
	Rule       string   `json:"rule"`
	Grant      string   `json:"grant"`
	Reason     string   `json:"reason"`
	Exception  int      `json:"exception"`
	Status     string   `json:"status"`
	LatencyUS  int64    `json:"latency_us"`
	Retries    int      `json:"retries"`
	Detail     string   `json:"detail"`
	Policy     string   `json:"policy"`
	CkptSeq    uint64   `json:"ckpt_seq"`
	Key        string   `json:"key"`
}

// record is a Record with what filtering learns from earlier records.
type record struct {
	Record
	inherited   bool     // Decision was taken from the command record
	cmdDecision string   // a result's command's decision, when the result has its own
	cmdNodes    []string // the nodes a result's command named (its recorded items)
	cmdItems    int      // the command's n_items
}

// Item is one element of an OPC UA request, as audit.Item stores it.
type Item struct {
	Node     string `json:"node"`
	Attr     string `json:"attr"`
	Range    string `json:"range"`
	Value    string `json:"value"`
	Class    string `json:"class"`
	Decision string `json:"decision"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	Status   string `json:"status"`
}

// cmdInfo is what a result record inherits from its command.
type cmdInfo struct {
	class, decision string
	nodes           []string
	nItems          int
}

// maxPending bounds the commands remembered while their results are awaited;
// a log with more commands whose results never came just loses inheritance.
const maxPending = 1 << 16

// Show prints the records of the log in dir that f selects, in log order, and
// returns how many it printed.
//
// asJSON prints each record's stored bytes unchanged, one per line: the
// output can be piped to jq, and the hash of each line still matches the
// next record's prev. Otherwise it prints a header and one aligned line per
// record: local time with its UTC offset, seq, type, who (party name and
// organisation), target, the operation (unit, function code, class, addresses
// and written values), the decision with its rule and reason, the outcome
// (status, Modbus exception, latency) and the detail. A result line shows the
// command it answers ("for #41") and that command's class.
//
// An OPC UA operation is its service and class, then each recorded item:
// node (with @attribute unless Value, and [range]), the written value
// ("=7") or call arguments ("(1, 2)"), the item's class when it differs
// from the record's, its decision with the reason unless it is the record's
// without one, its rule when it differs from the record's, and its status
// unless Good; "… (40 items)" ends
// a list cut at audit.MaxValues. A result lists the item statuses, named by
// its command's nodes, when any is not Good. Control
// characters in names and details are escaped so that a hostile party name
// cannot drive the auditor's terminal.
func Show(w io.Writer, dir string, f Filter, asJSON bool) (int, error) {
	return show(w, dir, f, asJSON, time.Local)
}

func show(w io.Writer, dir string, f Filter, asJSON bool, loc *time.Location) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	m := newMatcher(f)
	cmds := make(map[uint64]cmdInfo)
	var r record
	var line []byte
	n := 0
	if !asJSON {
		bw.WriteString(header)
	}
	err := audit.Scan(dir, f.FromSeq, func(l audit.Line) error {
		if f.ToSeq != 0 && l.Seq > f.ToSeq {
			return errStop
		}
		r = record{}
		if err := json.Unmarshal(l.Bytes, &r); err != nil {
			return nil // Scan only hands out lines with a seq; verify reports the rest
		}
		switch audit.Type(r.Type) {
		case audit.Command:
			if len(cmds) >= maxPending {
				clear(cmds)
			}
			c := cmdInfo{class: r.Class, decision: r.Decision, nItems: r.NItems}
			// Only forwarded requests get a result; keeping the nodes of
			// refused ones would only hold memory until the map is cleared.
			if r.Decision == "allow" || r.Decision == "partial" {
				for i := range r.Items {
					c.nodes = append(c.nodes, r.Items[i].Node)
				}
			}
			cmds[r.Seq] = c
		case audit.Result:
			if c, ok := cmds[r.Cmd]; ok {
				delete(cmds, r.Cmd)
				if r.Class == "" {
					r.Class = c.class
				}
				if r.Decision == "" {
					r.Decision, r.inherited = c.decision, true
				} else {
					r.cmdDecision = c.decision
				}
				r.cmdNodes, r.cmdItems = c.nodes, c.nItems
			}
		}
		t, _ := time.Parse(time.RFC3339Nano, r.Time)
		if !m.match(&r, t) {
			return nil
		}
		n++
		if asJSON {
			bw.Write(l.Bytes)
			bw.WriteByte('\n')
		} else {
			line = appendHuman(line[:0], &r, t, loc)
			bw.Write(line)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// Column widths of the human form; longer values push the rest right.
const (
	wTime     = 33 // 2006-01-02 15:04:05.000000 -07:00
	wSeq      = 8
	wType     = 15
	wParty    = 30
	wTarget   = 14
	wOp       = 36
	wDecision = 28
	wOutcome  = 22
)

var header = func() string {
	b := []byte{}
	b = pad(b, "TIME", wTime)
	b = padLeft(b, "SEQ", wSeq)
	b = pad(b, "TYPE", wType)
	b = pad(b, "WHO", wParty)
	b = pad(b, "TARGET", wTarget)
	b = pad(b, "OPERATION", wOp)
	b = pad(b, "DECISION", wDecision)
	b = pad(b, "OUTCOME", wOutcome)
	b = append(b, "DETAIL"...)
	return string(b) + "\n"
}()

const timeLayout = "2006-01-02 15:04:05.000000 -07:00"

func appendHuman(b []byte, r *record, t time.Time, loc *time.Location) []byte {
	if t.IsZero() {
		b = pad(b, clean(r.Time), wTime)
	} else {
		b = pad(b, t.In(loc).Format(timeLayout), wTime)
	}
	b = padLeft(b, strconv.FormatUint(r.Seq, 10), wSeq)
	b = pad(b, clean(r.Type), wType)
	b = pad(b, who(r), wParty)
	b = pad(b, orDash(clean(r.Target)), wTarget)
	b = pad(b, operation(r), wOp)
	b = pad(b, decision(r), wDecision)
	out := outcome(r)
	if r.Detail == "" {
		b = append(b, out...)
	} else {
		b = pad(b, out, wOutcome)
		b = append(b, clean(r.Detail)...)
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return append(b, '\n')
}

// who is the party's display name and organisation, falling back to its id.
func who(r *record) string {
	name := r.PartyName
	if name == "" {
		name = r.Party
	}
	switch {
	case name == "" && r.Org == "":
		return "-"
	case r.Org == "":
		return clean(name)
	case name == "":
		return "(" + clean(r.Org) + ")"
	}
	return clean(name) + " (" + clean(r.Org) + ")"
}

func operation(r *record) string {
	var s []string
	switch audit.Type(r.Type) {
	case audit.SessionOpen, audit.SessionClose, audit.SessionRefused:
		if r.Source != "" {
			s = append(s, "from "+clean(r.Source))
		}
		if r.Listener != "" {
			s = append(s, "via "+clean(r.Listener))
		}
		return orDash(strings.Join(s, " "))
	case audit.ConfigLoad:
		if r.Policy != "" {
			p := r.Policy
			if len(p) > 16 {
				p = p[:16] + "…"
			}
			return "policy " + clean(p)
		}
		return "-"
	case audit.Checkpoint:
		return "signs #" + strconv.FormatUint(r.CkptSeq, 10) + " key " + clean(r.Key)
	case audit.Result:
		if r.Cmd != 0 {
			s = append(s, "for #"+strconv.FormatUint(r.Cmd, 10))
		}
	}
	if r.Service != "" {
		return opcuaOperation(s, r)
	}
	if r.Unit != nil {
		s = append(s, "unit "+strconv.Itoa(*r.Unit))
	}
	if r.FC != nil {
		fc := "fc " + strconv.Itoa(*r.FC)
		if r.Sub != nil {
			fc += "/" + strconv.Itoa(*r.Sub)
		}
		s = append(s, fc)
	}
	if r.Class != "" {
		s = append(s, clean(r.Class))
	}
	both := r.ReadTable != "" && r.WriteTable != "" // fc 23 reads and writes
	if r.ReadTable != "" {
		s = append(s, prefix(both, "read ")+span(r.ReadTable, r.ReadAddr, r.ReadCount))
	}
	if r.WriteTable != "" {
		s = append(s, prefix(both, "write ")+span(r.WriteTable, r.WriteAddr, r.WriteCount))
	}
	if len(r.Values) > 0 {
		v := make([]string, len(r.Values))
		for i, x := range r.Values {
			v[i] = strconv.Itoa(int(x))
		}
		vals := "= " + strings.Join(v, ",")
		if r.NValues > len(r.Values) {
			vals += ",… (" + strconv.Itoa(r.NValues) + " values)"
		}
		s = append(s, vals)
	}
	return orDash(strings.Join(s, " "))
}

// opcuaOperation is the service, class and items of an OPC UA record,
// after what s already holds.
func opcuaOperation(s []string, r *record) string {
	s = append(s, clean(r.Service))
	if r.Class != "" {
		s = append(s, clean(r.Class))
	}
	op := strings.Join(s, " ")
	var items []string
	if audit.Type(r.Type) == audit.Result {
		items = resultItems(r)
	} else {
		for i := range r.Items {
			items = append(items, commandItem(&r.Items[i], r))
		}
	}
	if len(items) == 0 {
		return op
	}
	if r.NItems > len(r.Items) {
		items = append(items, "… ("+strconv.Itoa(r.NItems)+" items)")
	}
	return op + ": " + strings.Join(items, "; ")
}

func commandItem(it *Item, r *record) string {
	var b strings.Builder
	b.WriteString(orDash(clean(it.Node)))
	if it.Attr != "" && it.Attr != "Value" {
		b.WriteString("@" + clean(it.Attr))
	}
	if it.Range != "" {
		b.WriteString("[" + clean(it.Range) + "]")
	}
	if it.Value != "" {
		if r.Service == "Call" {
			b.WriteString("(" + clean(it.Value) + ")")
		} else {
			b.WriteString("=" + clean(it.Value))
		}
	}
	if it.Class != "" && it.Class != r.Class {
		b.WriteString(" " + clean(it.Class))
	}
	// Every item of an allowed request is allowed: saying so 32 times hides
	// the items that matter in a partial or refused one.
	if it.Decision != "" && (it.Decision != r.Decision || it.Reason != "") {
		b.WriteString(" " + clean(it.Decision))
		if it.Reason != "" {
			b.WriteString("(" + clean(it.Reason) + ")")
		}
	}
	if it.Rule != "" && it.Rule != r.Rule {
		b.WriteString(" rule " + clean(it.Rule))
	}
	if it.Status != "" && it.Status != "Good" {
		b.WriteString(" " + clean(it.Status))
	}
	return b.String()
}

// resultItems names each element's status when any is not plain Good
// (GoodClamped is worth seeing too). A result item carries only its status;
// it is named by its command's node when both record the same number of
// items, which pairs them position by position, and by its index otherwise.
func resultItems(r *record) []string {
	bad := false
	for i := range r.Items {
		if r.Items[i].Status != "Good" {
			bad = true
			break
		}
	}
	if !bad {
		return nil
	}
	paired := r.cmdItems == r.NItems && len(r.cmdNodes) == len(r.Items)
	out := make([]string, len(r.Items))
	for i := range r.Items {
		it := &r.Items[i]
		name := it.Node
		if name == "" && paired {
			name = r.cmdNodes[i]
		}
		if name == "" {
			name = "#" + strconv.Itoa(i)
		}
		out[i] = clean(name) + " " + orDash(clean(it.Status))
	}
	return out
}

func prefix(ok bool, p string) string {
	if ok {
		return p
	}
	return ""
}

func span(table string, at, n int) string {
	if n <= 1 {
		return clean(table) + " " + strconv.Itoa(at)
	}
	return clean(table) + " " + strconv.Itoa(at) + "-" + strconv.Itoa(at+n-1)
}

func decision(r *record) string {
	if r.inherited || r.Decision == "" {
		return "-"
	}
	s := clean(r.Decision)
	if r.Rule != "" {
		s += " rule " + clean(r.Rule)
	}
	if r.Reason != "" {
		s += " (" + clean(r.Reason) + ")"
	}
	return s
}

func outcome(r *record) string {
	var s []string
	if r.Status != "" {
		s = append(s, clean(r.Status))
	}
	if r.Exception != 0 {
		ex := "exception " + strconv.Itoa(r.Exception)
		switch {
		case strings.Contains(r.Status, "exception"): // the status names it already
			ex = "(code " + strconv.Itoa(r.Exception) + ")"
		case r.Exception > 0 && r.Exception < 256:
			ex += " " + modbus.ExceptionName(byte(r.Exception))
		}
		s = append(s, ex)
	}
	if r.LatencyUS != 0 {
		s = append(s, latency(r.LatencyUS))
	}
	if r.Retries != 0 {
		s = append(s, strconv.Itoa(r.Retries)+" retries")
	}
	return orDash(strings.Join(s, " "))
}

func latency(us int64) string {
	if us < 10000 {
		return strconv.FormatInt(us, 10) + "µs"
	}
	return strconv.FormatFloat(float64(us)/1000, 'f', 1, 64) + "ms"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clean escapes what a terminal would act on (control characters, bidi
// overrides, invalid UTF-8) and leaves printable text, accents included.
func clean(s string) string {
	for _, c := range s {
		if c == utf8.RuneError || (!unicode.IsGraphic(c) && c != ' ') {
			q := strconv.QuoteToGraphic(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

func pad(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for n := utf8.RuneCountInString(s); n < w; n++ {
		b = append(b, ' ')
	}
	return append(b, ' ', ' ')
}

func padLeft(b []byte, s string, w int) []byte {
	for n := utf8.RuneCountInString(s); n < w; n++ {
		b = append(b, ' ')
	}
	b = append(b, s...)
	return append(b, ' ', ' ')
}
