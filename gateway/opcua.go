package gateway

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuarelay"
	"github.com/brana-ot/brana/gateway/opcuatarget"
)

// OPCUAClientCertPath is brana's OPC UA application certificate and key
// towards PLCs, generated at first start.
func OPCUAClientCertPath(cfg *config.Config) string {
	return filepath.Join(DataDir(cfg), "keys", "opcua-client.pem")
}

// openOPCUATargets loads brana's OPC UA identity and builds the OPC UA
// targets. Nothing is dialled until a vendor session needs it.
func (g *Gateway) openOPCUATargets() error {
	g.opcua = make(map[string]*opcuatarget.Target)
	cfg := g.cfg
	for _, tc := range cfg.Targets {
		if tc.Protocol != "opcua" {
			continue
		}
		if g.opcuaID.Key == nil {
			host, _ := os.Hostname()
			id, created, err := opcuatarget.LoadOrCreateIdentity(OPCUAClientCertPath(cfg), "urn:brana:"+host+":client", host)
			if err != nil {
				return err
			}
			if created {
				g.log.Info("generated brana's OPC UA client certificate; PLCs must trust it", "path", OPCUAClientCertPath(cfg),
					"thumbprint", opcuatarget.Thumbprint(id.Cert), "application_uri", id.AppURI)
			}
			g.opcuaID = id
		}
		password := ""
		if tc.PasswordFile != "" {
			p := tc.PasswordFile
			if !filepath.IsAbs(p) && cfg.File != "" {
				p = filepath.Join(filepath.Dir(cfg.File), p)
			}
			var err error
			if password, err = opcuatarget.ReadPassword(p); err != nil {
				return fmt.Errorf("gateway: target %s: %w", tc.Name, err)
			}
		}
		g.opcua[tc.Name] = opcuatarget.New(tc, g.opcuaID, password, g.log)
	}
	return nil
}

func (g *Gateway) opcuaDeps() opcuarelay.Deps {
	return opcuarelay.Deps{Policy: &g.policy, Audit: g.audit, Log: g.log, BootID: g.bootID, Sessions: g.sessions,
		Admit: g.admit, Approvals: g.approvals, PartyInfo: partyInfo}
}

// listenOPCUA binds an OPC UA listener (loopback unless the config accepts
// the risk) in front of its target.
func (g *Gateway) listenOPCUA(lc config.Listener) error {
	s := opcuarelay.New(opcuarelay.Options{Name: lc.Name, MaxConnections: lc.MaxConnections, IdleTimeout: lc.IdleTimeout.D()},
		g.opcua[lc.Target], g.opcuaDeps())
	ln, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
	}
	g.opcServers = append(g.opcServers, s)
	g.opcLns = append(g.opcLns, ln)
	return nil
}
