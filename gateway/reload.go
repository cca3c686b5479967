package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/policy"
)

// ErrNeedsRestart says a reload changed something only a restart applies.
var ErrNeedsRestart = errors.New("gateway: reload changes more than parties and rules")

// Reload applies a new config's parties and rules, and reads the firmware
// manifest again, all or nothing. A config that does not validate, a
// manifest that does not verify, or a config that changes listeners,
// targets, the audit log or the gateway section, is rejected with the
// reason and the old policy and manifest stay in force. Sessions whose party is no longer admitted from their
// source are ended; the reload is an audit record with both policy digests.
func (g *Gateway) Reload(ctx context.Context, next *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.policy.Load()
	err := g.reload(next)
	rec := &audit.Record{Type: audit.ConfigLoad, Unit: -1, Func: -1, Sub: -1, Policy: old.Digest()}
	if err != nil {
		rec.Status, rec.Detail = "rejected", "reload of "+next.File+" rejected, policy sha256:"+old.Digest()+" stays: "+err.Error()
		g.log.Error("reload rejected; the old policy stays in force", "err", err)
	} else {
		pol := g.policy.Load()
		rec.Status, rec.Policy = "reloaded", pol.Digest()
		rec.Detail = "reloaded " + next.File + "; policy sha256:" + old.Digest() + " -> sha256:" + pol.Digest()
		if next.Firmware.Enabled() {
			rec.Detail += "; " + g.fwNote
		}
		g.log.Info("policy reloaded", "old", old.Digest(), "new", pol.Digest())
	}
	if _, aerr := g.audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err == nil {
		g.recheckSessions()
	}
	return err
}

// ReloadFile reads and validates path, then reloads from it; a file that does
// not parse is rejected (and audited) like any other bad reload.
func (g *Gateway) ReloadFile(ctx context.Context, path string) error {
	next, err := config.Load(path)
	if err != nil {
		old := g.policy.Load()
		g.log.Error("reload rejected; the old policy stays in force", "err", err)
		rec := &audit.Record{Type: audit.ConfigLoad, Unit: -1, Func: -1, Sub: -1, Policy: old.Digest(), Status: "rejected",
			Detail: "reload of " + path + " rejected, policy sha256:" + old.Digest() + " stays: " + err.Error()}
		_, aerr := g.audit.Append(context.WithoutCancel(ctx), rec)
		return errors.Join(err, aerr)
	}
	return g.Reload(ctx, next)
}

func (g *Gateway) reload(next *config.Config) error {
	cur := g.cfg
	for _, part := range []struct {
		name     string
		old, new any
	}{
		{"gateway", cur.Gateway, next.Gateway},
		{"audit", cur.Audit, next.Audit},
		{"listeners", cur.Listeners, next.Listeners},
		{"targets", cur.Targets, next.Targets},
		{"approvals", cur.Approvals, next.Approvals},
		{"admin", cur.Admin, next.Admin},
		{"console", cur.Console, next.Console},
		{"metrics", cur.Metrics, next.Metrics},
	} {
		if !reflect.DeepEqual(part.old, part.new) {
			return fmt.Errorf("%w: the %s section changed; restart brana to apply it", ErrNeedsRestart, part.name)
		}
	}
	if !reflect.DeepEqual(cur.Spec.Jurisdiction, next.Spec.Jurisdiction) {
		return fmt.Errorf("%w: the jurisdiction section changed; restart brana to apply it", ErrNeedsRestart)
	}
	if cur.Firmware.Enabled() != next.Firmware.Enabled() || cur.Firmware.MaxImage != next.Firmware.MaxImage {
		return fmt.Errorf("%w: the firmware section was added, removed or its max_image changed; restart brana to apply it", ErrNeedsRestart)
	}
	pol, err := policy.Compile(next.Spec, next.TargetNames(), policy.WithListings(g.juris.listings))
	if err != nil {
		return err
	}
	// The manifest is read again, so that a newly signed one takes effect
	// with the reload; one that does not verify rejects the reload.
	m, err := loadManifest(next, time.Now())
	if err != nil {
		return fmt.Errorf("firmware manifest %s: %w", next.Firmware.Manifest, err)
	}
	g.policy.Store(pol)
	if m != nil {
		g.manifest.Store(m)
		g.fwNote = describeManifest(m)
	}
	g.cfg = next
	return nil
}

// recheckSessions ends sessions whose party the new policy no longer admits
// from their source address. Per-command decisions already use the new policy.
func (g *Gateway) recheckSessions() {
	pol := g.policy.Load()
	ended := g.sessions.KillWhere(func(s *sessions.Session) bool {
		p := pol.PartyByAddr(addrOf(s.Source()))
		return s.Via() == "source network" && (p == nil || p.ID != s.Party())
	}, "policy reload: the party is no longer admitted from this address")
	if len(ended) > 0 {
		g.log.Warn("sessions ended by a policy reload", "sessions", ended)
	}
	// Everyone else is admitted again under the new policy (listings,
	// evidence, strict mode): refused sessions end, held ones stay held.
	g.sessions.RecheckAll()
}
