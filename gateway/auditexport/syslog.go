package auditexport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
)

// SDID is the SD-ID of the structured data element every message carries.
// 32473 is the private enterprise number RFC 5612 sets aside for examples.
const SDID = "brana@32473"

// Severities (RFC 5424, 6.2.1).
const (
	sevNotice = 5
	sevInfo   = 6
)

// sdFields are what the structured data repeats from the record.
type sdFields struct {
	Time     string `json:"time"`
	Type     string `json:"type"`
	Session  string `json:"session"`
	Party    string `json:"party"`
	Target   string `json:"target"`
	Decision string `json:"decision"`
}

// severity is notice for what an auditor looks for first (denials, refused
// sessions, repairs of the log itself) and info for the rest.
func severity(r *sdFields) int {
	switch {
	case r.Decision == "deny" || r.Decision == "invalid",
		r.Type == string(audit.SessionRefused),
		r.Type == string(audit.Gap):
		return sevNotice
	}
	return sevInfo
}

// appendSyslog appends one RFC 5424 message for the record in line:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [brana@32473 seq="N" ...] LINE
//
// TIMESTAMP is the record's time (UTC, microseconds), MSGID its type, and the
// MSG the stored line unchanged (MSG-ANY, no BOM).
func appendSyslog(b []byte, c *Config, facility int, seq uint64, line []byte) []byte {
	var r sdFields
	json.Unmarshal(line, &r) // lines were checked to be JSON; missing fields stay empty
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(facility*8+severity(&r)), 10)
	b = append(b, ">1 "...)
	if validTimestamp(r.Time) {
		b = append(b, r.Time...)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = append(b, c.Hostname...)
	b = append(b, ' ')
	b = append(b, c.AppName...)
	b = append(b, " - "...)
	if printASCII(r.Type, 32) {
		b = append(b, r.Type...)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = append(b, SDID...)
	b = append(b, ` seq="`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '"')
	b = appendParam(b, "type", r.Type)
	b = appendParam(b, "session", r.Session)
	b = appendParam(b, "party", r.Party)
	b = appendParam(b, "target", r.Target)
	b = appendParam(b, "decision", r.Decision)
	b = append(b, "] "...)
	return append(b, line...)
}

// appendParam appends ` name="value"` with '"', '\' and ']' escaped (RFC 5424, 6.3.3);
// empty values are left out.
func appendParam(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// validTimestamp accepts the log's own time format, 2006-01-02T15:04:05.000000Z,
// which is an RFC 5424 TIMESTAMP as it is.
func validTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && len(s) <= 32 && s[len(s)-1] == 'Z'
}

// syslogSender writes octet-counted frames (RFC 6587, 3.4.1) to one TCP or
// TLS connection, reconnecting when it fails.
type syslogSender struct {
	cfg      *Config
	tls      *tls.Config // nil: plain TCP
	facility int
	timeout  time.Duration
	grace    time.Duration

	conn  net.Conn
	bw    *bufio.Writer
	gone  chan struct{} // closed when the receiver closed the connection
	msg   []byte
	frame []byte
}

func (s *syslogSender) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.cfg.Address)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", s.cfg.Address, err)
	}
	// A syslog receiver never sends; a read that returns means it closed
	// the connection, and frames written after that would be lost.
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(gone)
	}()
	s.conn, s.gone = c, gone
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(c, 64<<10)
	} else {
		s.bw.Reset(c)
	}
	return nil
}

func (s *syslogSender) send(ctx context.Context, b *batch) error {
	if s.conn != nil {
		select {
		case <-s.gone:
			s.close()
		default:
		}
	}
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	// A batch in flight finishes on shutdown unless the receiver stalls.
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	conn := s.conn
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now().Add(s.grace)) })
	defer stop()
	for i := 0; i < b.len(); i++ {
		s.msg = appendSyslog(s.msg[:0], s.cfg, s.facility, b.seqs[i], b.line(i))
		s.frame = strconv.AppendInt(s.frame[:0], int64(len(s.msg)), 10)
		s.frame = append(s.frame, ' ')
		s.frame = append(s.frame, s.msg...)
		if _, err := s.bw.Write(s.frame); err != nil {
			break // sticky: Flush reports it
		}
	}
	if err := s.bw.Flush(); err != nil {
		s.close()
		return fmt.Errorf("writing to %s: %w", s.cfg.Address, err)
	}
	return nil
}

func (s *syslogSender) close() {
	if s.conn != nil {
		s.conn.Close() // TLS: sends close_notify
		s.conn = nil
	}
}
