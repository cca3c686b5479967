package gateway

import (
	"context"
	"crypto/x509"
	"net"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/mbtls"
	"github.com/brana-ot/brana/gateway/modbusrelay"
	"github.com/brana-ot/brana/policy"
)

// modbusTLS connects a Modbus/TCP Security listener to the policy and the
// in-process terminator of its target.
type modbusTLS struct {
	g     *Gateway
	name  string
	relay *modbusrelay.Server
}

func newModbusTLS(g *Gateway, i int, cfg mbtls.Config, deps modbusrelay.Deps) (*modbusTLS, error) {
	name := "modbus-tls-" + cfg.Target
	relay, err := modbusrelay.New(config.Listener{Name: name, Protocol: "modbus", MaxConnections: 1 << 16,
		Routes: []config.Route{{Target: cfg.Target}}}, deps)
	if err != nil {
		return nil, err
	}
	return &modbusTLS{g: g, name: name, relay: relay}, nil
}

func (m *modbusTLS) Identify(cert *x509.Certificate, role string) (*policy.Party, bool) {
	p := mbtls.PartyOf(m.g.policy.Load(), cert, role)
	return p, p != nil
}

func (m *modbusTLS) Refused(src, what, reason string) {
	m.g.audit.Append(context.Background(), &audit.Record{Type: audit.SessionRefused, Source: src, Listener: m.name,
		Unit: -1, Func: -1, Sub: -1, Decision: "deny", Reason: what, Detail: reason})
	m.g.modbusMetrics().SessionRefused()
}

func (m *modbusTLS) Serve(ctx context.Context, conn net.Conn, id mbtls.Identity) {
	m.relay.ServeStream(ctx, conn, modbusrelay.Identity{Party: id.Party, Source: id.Source, Via: id.Via, CertCountry: id.CertCountry})
}
