package gateway

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/modbusrelay"
	"github.com/brana-ot/brana/gateway/opcuarelay"
	"github.com/brana-ot/brana/gateway/sessions"
	"github.com/brana-ot/brana/gateway/sshlink"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/opclass"
)

// The ports a vendor names in `ssh -L …:TARGET:PORT`: 502 for a Modbus
// target, 4840 for an OPC UA target.
const (
	modbusPort = 502
	opcuaPort  = 4840
)

// vendorSSH connects the SSH endpoint to the policy, the approvals and the
// in-process Modbus terminator of each target: a forwarded channel is
// served like any Modbus session, never dialled anywhere.
type vendorSSH struct {
	g      *Gateway
	relays map[string]*modbusrelay.Server // one per Modbus target
	opcua  map[string]*opcuarelay.Server  // one per OPC UA target
}

func newVendorSSH(g *Gateway, deps modbusrelay.Deps) (*vendorSSH, error) {
	v := &vendorSSH{g: g, relays: make(map[string]*modbusrelay.Server), opcua: make(map[string]*opcuarelay.Server)}
	for name, t := range g.opcua {
		v.opcua[name] = opcuarelay.New(opcuarelay.Options{Name: "ssh-" + name, MaxConnections: 64}, t, g.opcuaDeps())
	}
	for name := range g.targets {
		s, err := modbusrelay.New(config.Listener{Name: "ssh-" + name, Protocol: "modbus", MaxConnections: 1 << 16,
			Routes: []config.Route{{Target: name}}}, deps)
		if err != nil {
			return nil, err
		}
		v.relays[name] = s
	}
	return v, nil
}

// Identify binds a key, or a certificate's principal, to an enrolled party.
func (v *vendorSSH) Identify(user string, key ssh.PublicKey, cert *ssh.Certificate) (string, bool) {
	pol := v.g.policy.Load()
	var p *policy.Party
	if cert != nil {
		p = pol.PartyBySSHPrincipal(user)
	} else {
		p = pol.PartyBySSHKey(ssh.FingerprintSHA256(key))
	}
	if p == nil {
		return "", false
	}
	return p.ID, true
}

func (v *vendorSSH) TargetPort(name string) (uint32, bool) {
	if _, ok := v.g.targets[name]; ok {
		return modbusPort, true
	}
	if _, ok := v.g.opcua[name]; ok {
		return opcuaPort, true
	}
	return 0, false
}

// Admit decides on a channel: the session admission of the policy, and for
// a party that needs approval, a grant for the target (or a request held open).
func (v *vendorSSH) Admit(ctx context.Context, id sshlink.Identity, target string) sshlink.Admission {
	p := v.g.policy.Load().Party(id.Party)
	if p == nil {
		return sshlink.Admission{Verdict: sshlink.Deny, Reason: "not enrolled"}
	}
	adm := v.g.admit(p, sessions.Identity{Party: p, Source: id.Source.String(), Via: id.Via()})
	switch adm.Verdict {
	case policy.Deny:
		return sshlink.Admission{Verdict: sshlink.Deny, Reason: "refused by policy (" + adm.Reason + ")"}
	case policy.Allow:
		return sshlink.Admission{Verdict: sshlink.Allow}
	}
	ap := v.g.approvals
	if granted(ap, p.ID, target) {
		return sshlink.Admission{Verdict: sshlink.Allow}
	}
	req, _, err := ap.RequestFor(partyInfo(p), target, opclass.Read,
		"asked for by an SSH tunnel from "+id.Source.String()+" ("+id.Via()+")")
	if err != nil {
		return sshlink.Admission{Verdict: sshlink.Deny, Reason: "needs approval; the request could not be filed: " + err.Error()}
	}
	return sshlink.Admission{Verdict: sshlink.Hold, RequestID: req.ID, Reason: "held for approval",
		Wait: func(ctx context.Context) bool {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				if granted(ap, p.ID, target) {
					return true
				}
				if r, err := ap.Get(req.ID); err == nil && r.State.Terminal() {
					return false
				}
				select {
				case <-ctx.Done():
					return false
				case <-t.C:
				}
			}
		}}
}

// granted reports a grant for party on target, whatever its classes: each
// command is still checked against the grant's classes.
func granted(ap *approvals.Service, party, target string) bool {
	for _, c := range opclass.All() {
		if _, ok := ap.Active(party, target, c); ok {
			return true
		}
	}
	return false
}

func (v *vendorSSH) Serve(ctx context.Context, id sshlink.Identity, target string, ch io.ReadWriteCloser) {
	p := v.g.policy.Load().Party(id.Party)
	if p == nil {
		ch.Close()
		return
	}
	who := sessions.Identity{Party: p, Source: id.Source.String(), Via: id.Via()}
	if o, ok := v.opcua[target]; ok {
		o.ServeStream(ctx, ch, who)
		return
	}
	v.relays[target].ServeStream(ctx, ch, who)
}

const sshUsage = `commands:
  request TARGET --classes read,write --for 2h --reason "TICKET or why"
  status
`

// Exec runs the vendor's small command vocabulary.
func (v *vendorSSH) Exec(ctx context.Context, id sshlink.Identity, argv []string, out io.Writer) int {
	if len(argv) == 0 {
		fmt.Fprint(out, sshUsage)
		return 1
	}
	ap := v.g.approvals
	switch argv[0] {
	case "status":
		reqs := ap.List(approvals.ListFilter{Party: id.Party})
		if len(reqs) == 0 {
			fmt.Fprintln(out, "no access requests")
		}
		for _, r := range reqs {
			fmt.Fprintf(out, "%s  %-8s  %s  %s  %d/%d approvals", r.ID, r.State, strings.Join(r.Targets, ","), classList(r.Classes), len(r.Approvals), r.Required)
			if r.State == approvals.StateApproved && !r.WindowEnd.IsZero() {
				fmt.Fprintf(out, "  until %s", r.WindowEnd.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(out)
		}
		return 0
	case "request":
		fs := flag.NewFlagSet("request", flag.ContinueOnError)
		fs.SetOutput(out)
		classes := fs.String("classes", "read", "operation classes, comma-separated")
		dur := fs.Duration("for", 0, "how long the work takes (e.g. 2h)")
		reason := fs.String("reason", "", "ticket number or why")
		if len(argv) < 2 || strings.HasPrefix(argv[1], "-") || fs.Parse(argv[2:]) != nil {
			fmt.Fprint(out, sshUsage)
			return 1
		}
		cs, err := approvals.ParseClasses(strings.Split(*classes, ","))
		if err != nil {
			fmt.Fprintln(out, err)
			return 1
		}
		r, err := ap.Create(approvals.Request{Party: approvals.PartyInfo{ID: id.Party}, Targets: []string{argv[1]}, Classes: cs,
			Reason: *reason, Duration: *dur, RequestedBy: id.Party + " (ssh " + id.KeyFingerprint + ")"})
		if err != nil {
			fmt.Fprintln(out, "request refused:", err)
			return 1
		}
		fmt.Fprintf(out, "access request %s filed: %s on %s, needs %d approval(s).\n", r.ID, classList(r.Classes), argv[1], r.Required)
		fmt.Fprintf(out, "An engineer on duty will decide. Check with: status. Once approved, open your tunnel (ssh -N -L ...).\n")
		return 0
	}
	fmt.Fprintf(out, "unknown command %q\n%s", argv[0], sshUsage)
	return 1
}

func classList(cs []opclass.Class) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.String()
	}
	return strings.Join(names, ",")
}

// Refused writes a session.refused record.
func (v *vendorSSH) Refused(src netip.AddrPort, id *sshlink.Identity, what, reason string) {
	rec := &audit.Record{Type: audit.SessionRefused, Source: src.String(), Listener: "ssh", Unit: -1, Func: -1, Sub: -1,
		Decision: "deny", Reason: what, Detail: reason}
	if id != nil {
		v.party(rec, id)
		rec.Detail = reason + " (" + id.Via() + ")"
	}
	v.g.audit.Append(context.Background(), rec)
	v.g.metrics.SessionsRefused("ssh").Inc()
}

// Event writes ssh.open, ssh.close, channel.* records.
func (v *vendorSSH) Event(kind string, id sshlink.Identity, detail string) {
	rec := &audit.Record{Type: audit.Type(kind), Source: id.Source.String(), Listener: "ssh", Unit: -1, Func: -1, Sub: -1,
		Detail: detail + " (" + id.Via() + ")"}
	v.party(rec, &id)
	v.g.audit.Enqueue(rec)
}

func (v *vendorSSH) party(rec *audit.Record, id *sshlink.Identity) {
	rec.Party = id.Party
	if p := v.g.policy.Load().Party(id.Party); p != nil {
		rec.PartyName, rec.Org = p.Name, p.Organisation
	}
}
