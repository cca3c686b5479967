package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Type names what a record is about. The set is part of the audit format:
// auditors filter on it, so names never change meaning.
type Type string

const (
	GatewayStart   Type = "gateway.start"
	GatewayStop    Type = "gateway.stop"
	ConfigLoad     Type = "config.load"
	SessionOpen    Type = "session.open"
	SessionClose   Type = "session.close"
	SessionRefused Type = "session.refused"
	Command        Type = "command"    // written before the command is forwarded
	Result         Type = "result"     // the command's outcome, linked by Cmd
	Checkpoint     Type = "checkpoint" // signs the sequence number and hash of the record before it
	Gap            Type = "gap"        // brana found and repaired a hole or torn tail in its own log
	Retention      Type = "retention"  // old, exported segments were deleted
)

// MaxValues bounds how many written values a record carries; the count is always exact.
const MaxValues = 32

// Record is one audit event. Empty fields are left out of the encoding.
// Records name people and organisations (PartyName, Org), not only ids.
type Record struct {
	Time    time.Time
	Type    Type
	Session string
	Cmd     uint64 // for Result: the Seq of its Command record

	Party     string // party id
	PartyName string
	Org       string
	Source    string // client address
	Listener  string
	Target    string

	Unit     int // -1 when not set
	Func     int // -1 when not set
	Sub      int // -1 when not set
	Class    string
	ReadTab  string
	ReadAt   int
	ReadN    int
	WriteTab string
	WriteAt  int
	WriteN   int
	Values   []uint16 // at most MaxValues are recorded
	NValues  int

	// OPC UA: the service, and one item per element of its request (at
	// most MaxValues are recorded; NItems is always exact).
	Service string
	Items   []Item
	NItems  int

	Decision  string // allow | deny | invalid | held
	Rule      string
	Grant     string // the approved access request a command ran under
	Reason    string
	Exception int // Modbus exception code sent upstream, 0 = none
	Status    string
	LatencyUS int64
	Retries   int
	Detail    string // the whole cause; vendors only ever see a short message
	Policy    string // sha256 of the policy in force (config.load)

	// Set by the log itself on checkpoint records.
	CkptSeq  uint64
	CkptHash string
	Key      string
	Sig      string
}

// Item is one element of an OPC UA request: what it names, what it writes,
// and how it was decided and answered.
type Item struct {
	Node     string // NodeId; for Call, object and method as "obj/method"
	Attr     string // attribute, for Read, Write and monitored items
	Range    string // IndexRange, when given
	Value    string // written value or call arguments, cut to MaxItemValue bytes
	Class    string
	Decision string // allow | deny | held
	Rule     string
	Reason   string
	Status   string // the OPC UA status code answered for this element
}

// MaxItemValue bounds a written value's text in an Item.
const MaxItemValue = 96

// Reset clears r for reuse without allocating.
func (r *Record) Reset() {
	vals := r.Values[:0]
	items := r.Items[:0]
	*r = Record{Unit: -1, Func: -1, Sub: -1, Values: vals, Items: items}
}

// appendJSON encodes r as one JSON object followed by a newline.
// Field order is fixed so that the bytes (and later their hashes) are stable.
func (r *Record) appendJSON(b []byte, seq uint64, prev *[32]byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = appendHex(b, prev[:])
	b = append(b, `","time":"`...)
	b = appendTime(b, r.Time)
	b = append(b, '"')
	b = appendStr(b, "type", string(r.Type))
	b = appendStr(b, "session", r.Session)
	if r.Cmd != 0 {
		b = append(b, `,"cmd":`...)
		b = strconv.AppendUint(b, r.Cmd, 10)
	}
	b = appendStr(b, "party", r.Party)
	b = appendStr(b, "party_name", r.PartyName)
	b = appendStr(b, "org", r.Org)
	b = appendStr(b, "source", r.Source)
	b = appendStr(b, "listener", r.Listener)
	b = appendStr(b, "target", r.Target)
	b = appendInt(b, "unit", r.Unit, r.Unit >= 0)
	b = appendInt(b, "fc", r.Func, r.Func >= 0)
	b = appendInt(b, "sub", r.Sub, r.Sub >= 0)
	b = appendStr(b, "class", r.Class)
	if r.ReadTab != "" {
		b = appendStr(b, "read_table", r.ReadTab)
		b = appendInt(b, "read_addr", r.ReadAt, true)
		b = appendInt(b, "read_count", r.ReadN, true)
	}
	if r.WriteTab != "" {
		b = appendStr(b, "write_table", r.WriteTab)
		b = appendInt(b, "write_addr", r.WriteAt, true)
		b = appendInt(b, "write_count", r.WriteN, true)
	}
	if r.NValues > 0 {
		b = append(b, `,"values":[`...)
		for i, v := range r.Values {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(v), 10)
		}
		b = append(b, ']')
		b = appendInt(b, "n_values", r.NValues, true)
	}
	b = appendStr(b, "service", r.Service)
	if r.NItems > 0 {
		b = append(b, `,"items":[`...)
		for i := range r.Items {
			it := &r.Items[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"i":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = appendStr(b, "node", it.Node)
			b = appendStr(b, "attr", it.Attr)
			b = appendStr(b, "range", it.Range)
			b = appendStr(b, "value", it.Value)
			b = appendStr(b, "class", it.Class)
			b = appendStr(b, "decision", it.Decision)
			b = appendStr(b, "rule", it.Rule)
			b = appendStr(b, "reason", it.Reason)
			b = appendStr(b, "status", it.Status)
			b = append(b, '}')
		}
		b = append(b, ']')
		b = appendInt(b, "n_items", r.NItems, true)
	}
	b = appendStr(b, "decision", r.Decision)
	b = appendStr(b, "rule", r.Rule)
	b = appendStr(b, "grant", r.Grant)
	b = appendStr(b, "reason", r.Reason)
	b = appendInt(b, "exception", r.Exception, r.Exception != 0)
	b = appendStr(b, "status", r.Status)
	if r.LatencyUS != 0 {
		b = append(b, `,"latency_us":`...)
		b = strconv.AppendInt(b, r.LatencyUS, 10)
	}
	b = appendInt(b, "retries", r.Retries, r.Retries != 0)
	b = appendStr(b, "detail", r.Detail)
	b = appendStr(b, "policy", r.Policy)
	if r.Type == Checkpoint {
		b = append(b, `,"ckpt_seq":`...)
		b = strconv.AppendUint(b, r.CkptSeq, 10)
		b = appendStr(b, "ckpt_hash", r.CkptHash)
		b = appendStr(b, "key", r.Key)
		b = appendStr(b, "sig", r.Sig)
	}
	return append(b, '}', '\n')
}

// appendTime writes t in UTC as 2006-01-02T15:04:05.000000Z, by hand
// because time.AppendFormat parses its layout on every call.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.')
	us := t.Nanosecond() / 1000
	b = append2(b, us/10000)
	b = append2(b, us/100%100)
	b = append2(b, us%100)
	return append(b, 'Z')
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte { return append2(append2(b, v/100%100), v%100) }

func appendHex(b, src []byte) []byte {
	for _, x := range src {
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

func appendInt(b []byte, key string, v int, ok bool) []byte {
	if !ok {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, int64(v), 10)
}

func appendStr(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendQuoted(b, v)
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string can carry as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendQuoted writes s as a JSON string. Invalid UTF-8 becomes U+FFFD so a
// hostile party name cannot break the line format.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	// Fast path: most strings (ids, names, addresses) need no escaping.
	i := 0
	for i < len(s) && plain[s[i]] {
		i++
	}
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
