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
	Command        Type = "command" // written before the command is forwarded
	Result         Type = "result"  // the command's outcome, linked by Cmd
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

	Decision  string // allow | deny | invalid
	Rule      string
	Reason    string
	Exception int // Modbus exception code sent upstream, 0 = none
	Status    string
	LatencyUS int64
	Retries   int
	Detail    string // the whole cause; vendors only ever see a short message
}

// Reset clears r for reuse without allocating.
func (r *Record) Reset() {
	vals := r.Values[:0]
	*r = Record{Unit: -1, Func: -1, Sub: -1, Values: vals}
}

// appendJSON encodes r as one JSON object followed by a newline.
// Field order is fixed so that the bytes (and later their hashes) are stable.
func (r *Record) appendJSON(b []byte, seq uint64) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
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
	b = appendStr(b, "decision", r.Decision)
	b = appendStr(b, "rule", r.Rule)
	b = appendStr(b, "reason", r.Reason)
	b = appendInt(b, "exception", r.Exception, r.Exception != 0)
	b = appendStr(b, "status", r.Status)
	if r.LatencyUS != 0 {
		b = append(b, `,"latency_us":`...)
		b = strconv.AppendInt(b, r.LatencyUS, 10)
	}
	b = appendInt(b, "retries", r.Retries, r.Retries != 0)
	b = appendStr(b, "detail", r.Detail)
	return append(b, '}', '\n')
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

const hex = "0123456789abcdef"

// appendQuoted writes s as a JSON string. Invalid UTF-8 becomes U+FFFD so a
// hostile party name cannot break the line format.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
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
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
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
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
