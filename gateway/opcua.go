package gateway

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuarelay"
	"github.com/brana-ot/brana/gateway/opcuatarget"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/protocols/opcua/secconv"
	"github.com/gopcua/opcua/ua"
)

// OPCUAClientCertPath is brana's OPC UA application certificate and key
// towards PLCs, generated at first start.
func OPCUAClientCertPath(cfg *config.Config) string {
	return filepath.Join(DataDir(cfg), "keys", "opcua-client.pem")
}

// OPCUAServerIdentity loads brana's OPC UA server certificate from path (a
// listener's certificate), or makes it at first start: application URI
// urn:brana:HOST:server, and the host name and the addresses of the
// listeners that present it as SubjectAltNames, which clients compare with
// the endpoint URL they dialled.
func OPCUAServerIdentity(cfg *config.Config, path string) (id opcuatrust.Identity, created bool, err error) {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	dns := []string{host}
	var ips []net.IP
	for _, lc := range cfg.Listeners {
		if lc.Protocol != "opcua" || lc.Certificate != path {
			continue
		}
		h, _, err := net.SplitHostPort(lc.Address)
		if err != nil || h == "" {
			continue
		}
		ip := net.ParseIP(h)
		switch {
		case ip == nil:
			if !slices.Contains(dns, h) {
				dns = append(dns, h)
			}
		case ip.IsUnspecified():
			// Any address: the host name is the one to dial.
		case !slices.ContainsFunc(ips, ip.Equal):
			ips = append(ips, ip)
			if ip.IsLoopback() && !slices.Contains(dns, "localhost") {
				dns = append(dns, "localhost")
			}
		}
	}
	return opcuatrust.LoadOrCreateIdentity(path, "urn:brana:"+host+":server", dns, ips)
}

// OPCUAClientIdentity loads brana's application certificate and key
// towards OPC UA PLCs, or makes it at first start (the first OPC UA target,
// `brana init`): application URI urn:brana:HOST:client.
func OPCUAClientIdentity(cfg *config.Config) (id opcuatarget.Identity, created bool, err error) {
	host, _ := os.Hostname()
	return opcuatrust.LoadOrCreateIdentity(OPCUAClientCertPath(cfg), "urn:brana:"+host+":client", []string{host}, nil)
}

// OPCUASecured reports whether an OPC UA listener offers a policy other
// than None, and so presents brana's server certificate.
func OPCUASecured(lc config.Listener) bool { return !(len(lc.Policies) == 1 && lc.OffersNone()) }

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
			id, created, err := OPCUAClientIdentity(cfg)
			if err != nil {
				return err
			}
			if created {
				g.log.Info("generated brana's OPC UA client certificate; PLCs must trust it", "path", OPCUAClientCertPath(cfg),
					"thumbprint", opcuatrust.Thumbprint(id.Cert), "application_uri", id.AppURI)
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
	d := opcuarelay.Deps{Policy: &g.policy, Audit: g.audit, Log: g.log, BootID: g.bootID, Sessions: g.sessions,
		Admit: g.admit, Approvals: g.approvals, PartyInfo: partyInfo, Metrics: g.opcuaMetrics()}
	if g.cfg.Firmware.Enabled() {
		// FileType transfers are checked against the manifest only when one
		// is configured; without, program-class grants alone decide.
		d.Manifest, d.MaxImage = &g.manifest, int64(g.cfg.Firmware.MaxImage)
	}
	return d
}

// listenOPCUA binds an OPC UA listener in front of its target: security
// None on loopback (unless the config accepts the risk), or brana's own
// secured endpoint with its certificate, trust list and users.
func (g *Gateway) listenOPCUA(lc config.Listener) error {
	opt := opcuarelay.Options{Name: lc.Name, MaxConnections: lc.MaxConnections, IdleTimeout: lc.IdleTimeout.D()}
	if OPCUASecured(lc) {
		sec, err := g.opcuaSecurity(lc)
		if err != nil {
			return err
		}
		opt.Security = sec
	}
	s := opcuarelay.New(opt, g.opcua[lc.Target], g.opcuaDeps())
	ln, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
	}
	g.opcServers = append(g.opcServers, s)
	g.opcLns = append(g.opcLns, ln)
	return nil
}

// opcuaSecurity loads what a secured listener needs.
func (g *Gateway) opcuaSecurity(lc config.Listener) (*opcuarelay.Security, error) {
	id, created, err := OPCUAServerIdentity(g.cfg, lc.Certificate)
	if err != nil {
		return nil, fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
	}
	if created {
		g.log.Info("generated brana's OPC UA server certificate; clients should trust it", "listener", lc.Name,
			"path", lc.Certificate, "thumbprint", opcuatrust.Thumbprint(id.Cert), "application_uri", id.AppURI)
	}
	store, err := opcuatrust.Open(lc.TrustDir)
	if err != nil {
		return nil, fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
	}
	sec := &opcuarelay.Security{Server: secconv.NewServer(id.Cert, id.Key), AppURI: id.AppURI, Identities: lc.Identities,
		Trust: func(der []byte) error { return store.Check(der, time.Now()) }}
	for _, p := range lc.Policies {
		sec.Policies = append(sec.Policies, ua.FormatSecurityPolicyURI(p))
	}
	for _, m := range lc.Modes {
		sec.Modes = append(sec.Modes, ua.MessageSecurityModeFromString(m))
	}
	if lc.Users != "" {
		users, err := opcuatrust.LoadUsers(lc.Users)
		if err != nil {
			return nil, fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
		}
		sec.Users = users
	}
	g.log.Info("opc ua secured endpoint", "listener", lc.Name, "policies", lc.Policies, "modes", lc.Modes,
		"identities", lc.Identities, "trust_dir", lc.TrustDir)
	return sec, nil
}
