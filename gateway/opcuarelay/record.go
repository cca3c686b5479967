package opcuarelay

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/policy"
)

func (s *session) openRecord(security string) {
	rec := s.record(audit.SessionOpen, "")
	rec.Decision = "allow"
	adm := s.adm.Load()
	if adm.Verdict == policy.Approval {
		rec.Decision = "held"
	}
	rec.Reason = "step " + strconv.Itoa(adm.Step)
	rec.Detail = "identified by " + s.who.Via + "; channel " + channelSecurity(s.c) + "; admission: " + adm.String() + "; PLC session " + security
	if _, err := s.c.s.d.Audit.Append(context.Background(), rec); err != nil {
		s.c.s.d.Log.Error("audit log refused a session record", "session", s.id, "err", err)
	}
	s.c.s.d.Log.Info("opc ua session opened", "session", s.id, "party", s.who.Party.ID, "source", s.who.Source)
}

func (s *session) closeRecord(reason string) {
	rec := s.record(audit.SessionClose, "")
	rec.Status = reason
	rec.Detail = "requests=" + strconv.FormatUint(s.requests.Load(), 10) + " refused=" + strconv.FormatUint(s.denied.Load(), 10) +
		" failed=" + strconv.FormatUint(s.failed.Load(), 10)
	if _, err := s.c.s.d.Audit.Append(context.Background(), rec); err != nil {
		s.c.s.d.Log.Error("audit log refused a session record", "session", s.id, "err", err)
	}
	s.c.s.d.Log.Info("opc ua session closed", "session", s.id, "reason", reason)
}

// invalid records a request brana could not decode, and answers it with
// Bad_DecodingError: nothing undecoded reaches the PLC.
func (c *channel) invalid(reqID uint32, body []byte, err error) {
	rec := audit.Record{Type: audit.Command, Source: c.id.Source,
		Listener: c.s.opt.Name, Target: c.s.target.Name(), Unit: -1, Func: -1, Sub: -1,
		Decision: "invalid", Reason: "malformed", Status: "BadDecodingError", Detail: err.Error() + "; first bytes " + hex.EncodeToString(body[:min(len(body), 32)])}
	if p := c.id.Party; p != nil {
		rec.Party, rec.PartyName, rec.Org = p.ID, p.Name, p.Organisation
	}
	if _, aerr := c.s.d.Audit.Append(context.Background(), &rec); aerr != nil {
		c.s.d.Log.Error("audit log refused a record", "err", aerr)
	}
	c.s.d.Metrics.Decided(rec.Decision)
	c.fault(reqID, nil, ua.StatusBadDecodingError)
}

// statusName is the short name of an OPC UA status code, as tools show it
// (Good, BadUserAccessDenied), or its hex value.
func statusName(s ua.StatusCode) string {
	if s == ua.StatusOK {
		return "Good"
	}
	if d, ok := ua.StatusCodes[s]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// refuseChannel records why a secure channel was refused (an untrusted
// certificate, a failed signature, a replayed chunk), once per channel.
func (c *channel) refuseChannel(reason, detail string) {
	if !c.refused.CompareAndSwap(false, true) {
		return
	}
	p := c.id.Party
	rec := audit.Record{Type: audit.SessionRefused, Source: c.id.Source, Listener: c.s.opt.Name, Target: c.s.target.Name(),
		Unit: -1, Func: -1, Sub: -1, Decision: "deny", Reason: reason, Detail: detail}
	if p != nil {
		rec.Party, rec.PartyName, rec.Org = p.ID, p.Name, p.Organisation
	}
	if _, err := c.s.d.Audit.Append(context.Background(), &rec); err != nil {
		c.s.d.Log.Error("audit append failed for a refused channel", "err", err)
	}
	c.s.d.Metrics.SessionRefused()
	c.s.d.Log.Info("opc ua channel refused", "listener", c.s.opt.Name, "source", c.id.Source, "reason", reason, "detail", detail)
}

// channelSecurity names the channel's policy and mode for the audit log.
func channelSecurity(c *channel) string {
	return strings.TrimPrefix(c.policy, "http://opcfoundation.org/UA/SecurityPolicy#") + "/" +
		strings.TrimPrefix(c.mode.String(), "MessageSecurityMode")
}
