package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/brana-ot/brana/gateway/opcuatrust"
)

// OPC UA security policies a target may name, by their short names.
var opcuaPolicies = map[string]bool{"auto": true, "None": true, "Basic256Sha256": true,
	"Aes128_Sha256_RsaOaep": true, "Aes256_Sha256_RsaPss": true}

var opcuaModes = map[string]bool{"auto": true, "None": true, "Sign": true, "SignAndEncrypt": true}

// checkOPCUATarget validates and completes an OPC UA target.
func (c *Config) checkOPCUATarget(t *Target, f string, bad func(field, format string, args ...any)) {
	u, err := url.Parse(t.Endpoint)
	switch {
	case t.Endpoint == "":
		bad(f+".endpoint", "missing: the PLC's OPC UA endpoint, for example opc.tcp://10.0.0.7:4840")
	case err != nil || u.Scheme != "opc.tcp" || u.Host == "":
		bad(f+".endpoint", "%q is not an opc.tcp://host:port URL", t.Endpoint)
	}
	for _, k := range []struct {
		name string
		set  bool
	}{{"transport", t.Transport != ""}, {"address", t.Address != ""}, {"device", t.Device != ""},
		{"connections", t.Connections != 0}, {"pipeline", t.Pipeline != 0}, {"retry_reads", t.RetryReads != 0}} {
		if k.set {
			bad(f+"."+k.name, "only for modbus targets")
		}
	}
	if t.SecurityPolicy == "" {
		t.SecurityPolicy = "auto"
	}
	if !opcuaPolicies[t.SecurityPolicy] {
		bad(f+".security_policy", "%q is not one of auto, None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss", t.SecurityPolicy)
	}
	if t.SecurityMode == "" {
		t.SecurityMode = "auto"
	}
	if !opcuaModes[t.SecurityMode] {
		bad(f+".security_mode", "%q is not one of auto, None, Sign, SignAndEncrypt", t.SecurityMode)
	}
	if (t.SecurityPolicy == "None") != (t.SecurityMode == "None") && t.SecurityPolicy != "auto" && t.SecurityMode != "auto" {
		bad(f+".security_mode", "policy %s and mode %s do not go together (None goes with None)", t.SecurityPolicy, t.SecurityMode)
	}
	if (t.Username == "") != (t.PasswordFile == "") {
		bad(f+".password_file", "username and password_file go together")
	}
	c.checkServerCertificate(t, f, bad)
	if t.Timeout == 0 {
		t.Timeout = Duration(10 * time.Second)
	}
	if t.MaxSessions == 0 {
		t.MaxSessions = 4
	}
	if t.MaxSessions < 1 || t.MaxSessions > 256 {
		bad(f+".max_sessions", "%d is outside 1..256", t.MaxSessions)
	}
	if t.MaxPublish == 0 {
		t.MaxPublish = 3
	}
	if t.MaxPublish < 1 || t.MaxPublish > 100 {
		bad(f+".max_publish", "%d is outside 1..100", t.MaxPublish)
	}
}

// checkServerCertificate reads a target's pinned PLC certificate, a
// fingerprint or a file, into ServerCertificateSHA256.
func (c *Config) checkServerCertificate(t *Target, f string, bad func(field, format string, args ...any)) {
	if t.ServerCertificate == "" {
		return
	}
	f += ".server_certificate"
	if t.SecurityPolicy == "None" || t.SecurityMode == "None" {
		bad(f, "a pinned certificate protects nothing with security None (no secure channel is made with it): "+
			"pin only with security_policy and security_mode other than None")
	}
	if opcuatrust.IsFingerprint(t.ServerCertificate) {
		fp, err := opcuatrust.ParseFingerprint(t.ServerCertificate)
		if err != nil {
			bad(f, "%v, as `openssl x509 -noout -fingerprint -sha256` prints it", err)
			return
		}
		t.ServerCertificateSHA256 = fp
		return
	}
	t.ServerCertificate = c.Rel(t.ServerCertificate)
	b, err := os.ReadFile(t.ServerCertificate)
	if err != nil {
		bad(f, "the PLC's certificate: %v (a PEM or DER file, or sha256: and the certificate's fingerprint)", err)
		return
	}
	cert, err := opcuatrust.ParseCertificate(b)
	if err != nil {
		bad(f, "%s is not a certificate (PEM or DER): %v", t.ServerCertificate, strings.TrimPrefix(err.Error(), "opcuatrust: "))
		return
	}
	t.ServerCertificateSHA256 = opcuatrust.Fingerprint(cert.Raw)
}

// What brana's own OPC UA endpoints offer, by the short names the config
// uses.
var (
	listenerPolicies   = []string{"None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"}
	listenerModes      = []string{"Sign", "SignAndEncrypt"}
	listenerIdentities = []string{"anonymous", "username", "x509"}
)

// DefaultOPCUACertificate is brana's OPC UA server certificate and key
// unless a listener names another file.
func (c *Config) DefaultOPCUACertificate() string {
	return filepath.Join(c.Rel(c.Gateway.DataDir), "keys", "opcua-server.pem")
}

// DefaultOPCUATrustDir is the trust folder of brana's OPC UA endpoints
// unless a listener names another.
func (c *Config) DefaultOPCUATrustDir() string {
	return filepath.Join(c.Rel(c.Gateway.DataDir), "opcua-pki")
}

// OffersNone reports whether an OPC UA listener offers security None.
func (l *Listener) OffersNone() bool { return slices.Contains(l.Policies, "None") }

// checkOPCUAListener validates and completes an OPC UA listener: one OPC UA
// target; the policies, modes and identities it offers; its users file,
// certificate and trust folder; loopback only while it offers None, unless
// the risk is named.
func (c *Config) checkOPCUAListener(l *Listener, f string, targets map[string]int, bad func(field, format string, args ...any)) {
	if len(l.Routes) > 0 {
		bad(f+".routes", "an opcua listener names one target, not routes")
	}
	if ti, ok := targets[l.Target]; !ok {
		bad(f+".target", "%q is not a configured target", l.Target)
	} else if c.Targets[ti].Protocol != "opcua" {
		bad(f+".target", "%q is a %s target; an opcua listener serves an OPC UA target", l.Target, c.Targets[ti].Protocol)
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 16
	}
	if l.MaxConnections < 0 || l.MaxConnections > 10000 {
		bad(f+".max_connections", "%d is outside 1..10000", l.MaxConnections)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(10 * time.Minute)
	}

	// Absent policies mean None, as before secure endpoints existed: a
	// secure endpoint lists its policies.
	if len(l.Policies) == 0 {
		l.Policies = []string{"None"}
	}
	checkChoices(l.Policies, listenerPolicies, f+".policies", bad)
	secure := slices.ContainsFunc(l.Policies, func(p string) bool { return p != "None" })
	switch {
	case !secure && len(l.Modes) > 0:
		bad(f+".modes", "modes apply to the policies other than None, and this listener offers None only")
	case secure && len(l.Modes) == 0:
		l.Modes = slices.Clone(listenerModes)
	case secure:
		if slices.Contains(l.Modes, "None") {
			bad(f+".modes", `"None" is a policy, not a mode: list it in policies`)
		} else {
			checkChoices(l.Modes, listenerModes, f+".modes", bad)
		}
	}
	if len(l.Identities) == 0 {
		l.Identities = []string{"username", "x509"}
		if !secure {
			l.Identities = []string{"anonymous"}
		}
	}
	checkChoices(l.Identities, listenerIdentities, f+".identities", bad)
	l.Users = c.Rel(l.Users)
	switch {
	case slices.Contains(l.Identities, "username") && l.Users == "":
		bad(f+".users", "missing: identities lists username, so brana needs a users file (user names and hashes from brana opcua user-hash)")
	case !slices.Contains(l.Identities, "username") && l.Users != "":
		bad(f+".users", "only with the username identity (identities: [username, ...])")
	case l.Users != "":
		if _, err := opcuatrust.LoadUsers(l.Users); err != nil {
			bad(f+".users", "%s", strings.TrimPrefix(err.Error(), "opcua users: "))
		}
	}
	// Only paths written in the config are relative to it; the defaults
	// are resolved already.
	if l.Certificate == "" && c.Gateway.DataDir != "" {
		l.Certificate = c.DefaultOPCUACertificate()
	} else {
		l.Certificate = c.Rel(l.Certificate)
	}
	if l.Certificate != "" {
		// A missing file is made at first start; one that is there must load.
		if _, err := opcuatrust.LoadIdentity(l.Certificate); err != nil && !errors.Is(err, fs.ErrNotExist) {
			bad(f+".certificate", "%v", err)
		}
	}
	if l.TrustDir == "" && c.Gateway.DataDir != "" {
		l.TrustDir = c.DefaultOPCUATrustDir()
	} else {
		l.TrustDir = c.Rel(l.TrustDir)
	}

	if l.AcceptRisk != "" && l.AcceptRisk != OPCUARisk {
		bad(f+".accept_risk", "%q: the only accepted value is %q", l.AcceptRisk, OPCUARisk)
	}
	if l.AcceptRisk != "" && !l.OffersNone() {
		bad(f+".accept_risk", "only for a listener that offers security None; this one offers %s", strings.Join(l.Policies, ", "))
	}
	host, _, err := net.SplitHostPort(l.Address)
	if err != nil {
		return
	}
	if l.OffersNone() && !loopbackHost(host) && l.AcceptRisk != OPCUARisk {
		bad(f+".address", "%q is not a loopback address, and this endpoint offers security None: list only secure policies "+
			"(for example policies: [Basic256Sha256, Aes256_Sha256_RsaPss]) to bind it elsewhere, or set accept_risk: %q", l.Address, OPCUARisk)
	}
}

// checkChoices reports values of list that are not among allowed, and
// values listed twice.
func checkChoices(list, allowed []string, field string, bad func(field, format string, args ...any)) {
	for i, v := range list {
		switch {
		case !slices.Contains(allowed, v):
			bad(fmt.Sprintf("%s[%d]", field, i), "%q is not one of %s", v, strings.Join(allowed, ", "))
		case slices.Index(list, v) < i:
			bad(fmt.Sprintf("%s[%d]", field, i), "%q is listed twice", v)
		}
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
