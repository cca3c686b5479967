package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
)

// SessionWarn is the audit record type of a warning to a live session, for
// example that its grant is about to end.
const SessionWarn audit.Type = "session.warn"

// openApprovals opens the access request store and the admin API's socket.
func (g *Gateway) openApprovals() error {
	cfg := g.cfg
	ac := cfg.Approvals
	if ac.Store == "" {
		ac.Store = filepath.Join(DataDir(cfg), "approvals.db")
	} else if !filepath.IsAbs(ac.Store) {
		ac.Store = filepath.Join(DataDir(cfg), ac.Store)
	}
	svc, err := approvals.Open(ac, approvals.Options{
		Audit: func(r *audit.Record) {
			if _, err := g.audit.Append(context.Background(), r); err != nil {
				g.log.Error("audit append failed for an approval step", "err", err)
			}
		},
		Log: g.log.With("part", "approvals"),
		Resolve: func(id string) (approvals.PartyInfo, bool) {
			p := g.policy.Load().Party(id)
			if p == nil {
				return approvals.PartyInfo{}, false
			}
			return partyInfo(p), true
		},
		KnownTarget: func(name string) bool { _, m := g.targets[name]; _, o := g.opcua[name]; return m || o },
	})
	if err != nil {
		return err
	}
	g.approvals = svc
	svc.Subscribe(approvals.EndSessions(g.sessions))
	svc.Subscribe(g.warnSessions)

	var accts *adminapi.Accounts
	if cfg.Admin.Accounts != "" {
		if accts, err = adminapi.LoadAccounts(cfg.Admin.Accounts); err != nil {
			return err
		}
	}
	g.accounts = accts
	sock := cfg.Admin.Socket
	if sock == "" {
		sock = filepath.Join(DataDir(cfg), "admin.sock")
	} else if !filepath.IsAbs(sock) {
		sock = filepath.Join(DataDir(cfg), sock)
	}
	if g.adminLn, err = adminapi.Listen(sock); err != nil {
		return fmt.Errorf("gateway: admin socket: %w", err)
	}
	g.admin = adminapi.New(adminapi.Options{Approvals: svc, Sessions: g.sessions, Accounts: accts, Health: g.Health,
		Log: g.log.With("part", "admin")})
	return nil
}

// warnSessions writes a warning record for every live session of a grant
// that is about to end. Subscribers run under the service's lock: no calls back.
func (g *Gateway) warnSessions(ev approvals.Event) {
	if ev.Kind != approvals.ExpiringSoon {
		return
	}
	for _, s := range g.sessions.List() {
		if s.Grant != ev.Request.ID {
			continue
		}
		g.audit.Enqueue(&audit.Record{Type: SessionWarn, Session: s.ID, Party: s.Party, PartyName: s.PartyName, Org: s.Org,
			Source: s.Source, Listener: s.Listener, Unit: -1, Func: -1, Sub: -1, Grant: ev.Request.ID,
			Status: "grant ending", Detail: "grant " + ev.Request.ID + " ends at " + ev.Request.WindowEnd.UTC().Format(time.RFC3339) + "; the session will be closed then"})
	}
}

// admit decides whether a session may start, and on what terms.
func (g *Gateway) admit(p *policy.Party, id sessions.Identity) policy.Admission {
	sig := g.juris.signals(id.Source)
	sig.CertCountry = id.CertCountry
	return g.policy.Load().Admit(p, sig)
}

// partyInfo is what an approver sees of a party.
func partyInfo(p *policy.Party) approvals.PartyInfo {
	pi := approvals.PartyInfo{ID: p.ID, Name: p.Name, Org: p.Organisation, Kind: p.Kind, PRC: p.Verdict == policy.PRC, Verdict: p.Verdict.String()}
	for _, f := range p.Findings {
		pi.Findings = append(pi.Findings, f.String())
	}
	return pi
}

// Approvals is the access request service.
func (g *Gateway) Approvals() *approvals.Service { return g.approvals }

// AdminSocket is the path of the admin API's Unix socket.
func (g *Gateway) AdminSocket() string { return g.adminLn.Addr().String() }

// Health is what GET /v1/health shows.
func (g *Gateway) Health() any {
	h := g.audit.Health()
	out := map[string]any{
		"version":  Version,
		"sessions": g.sessions.Len(),
		"policy":   g.policy.Load().Digest(),
		"audit":    h,
		"ok":       h.Err == "" && !h.SpaceLow && !h.Stalled,
	}
	if b := g.juris.bundle; b != nil {
		out["bundle"] = map[string]any{"serial": b.Serial, "expires": b.Expires, "expired": g.juris.expired(time.Now())}
	} else if g.juris.expired(time.Now()) {
		out["bundle"] = map[string]any{"expired": true, "detail": "configured, none verified"}
	}
	out["clock_trusted"] = g.juris.clockTrusted.Load()
	return out
}
