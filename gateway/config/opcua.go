package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// OPC UA security policies a target may name, by their short names.
var opcuaPolicies = map[string]bool{"auto": true, "None": true, "Basic256Sha256": true,
	"Aes128_Sha256_RsaOaep": true, "Aes256_Sha256_RsaPss": true}

var opcuaModes = map[string]bool{"auto": true, "None": true, "Sign": true, "SignAndEncrypt": true}

// checkOPCUATarget validates and completes an OPC UA target.
func checkOPCUATarget(t *Target, f string, bad func(field, format string, args ...any)) {
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

// checkOPCUAListener validates an OPC UA listener: one OPC UA target, and
// loopback only unless the risk is named.
func checkOPCUAListener(l *Listener, f string, all []Target, targets map[string]int, bad func(field, format string, args ...any)) {
	if len(l.Routes) > 0 {
		bad(f+".routes", "an opcua listener names one target, not routes")
	}
	if ti, ok := targets[l.Target]; !ok {
		bad(f+".target", "%q is not a configured target", l.Target)
	} else if all[ti].Protocol != "opcua" {
		bad(f+".target", "%q is a %s target; an opcua listener serves an OPC UA target", l.Target, all[ti].Protocol)
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
	if l.AcceptRisk != "" && l.AcceptRisk != OPCUARisk {
		bad(f+".accept_risk", "%q: the only accepted value is %q", l.AcceptRisk, OPCUARisk)
	}
	host, _, err := net.SplitHostPort(l.Address)
	if err != nil {
		return
	}
	if !loopbackHost(host) && l.AcceptRisk != OPCUARisk {
		bad(f+".address", "%q is not a loopback address: this endpoint has security None (vendors come through the SSH link); "+
			"to bind it elsewhere anyway set accept_risk: %q", l.Address, OPCUARisk)
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
