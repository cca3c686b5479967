package config

import (
	"net"
	"strconv"
)

// Metrics configures the operations endpoint: GET /metrics (Prometheus text
// format) and GET /healthz, over plain HTTP without authentication. It binds
// to loopback (a local Prometheus or node agent scrapes it) unless
// AcceptRisk says in so many words that anyone who reaches the address may
// read it.
type Metrics struct {
	Listen     string `yaml:"listen"`      // host:port, e.g. 127.0.0.1:9464; empty: off
	AcceptRisk string `yaml:"accept_risk"` // MetricsRisk, to listen on an address that is not loopback
}

// MetricsRisk is the only accepted value of metrics.accept_risk.
const MetricsRisk = "unauthenticated metrics on the network"

// Enabled reports whether the endpoint is to be served.
func (m *Metrics) Enabled() bool { return m.Listen != "" }

// checkMetrics validates the metrics section.
func (c *Config) checkMetrics(bad func(field, format string, a ...any)) {
	m := &c.Metrics
	if m.AcceptRisk != "" && m.AcceptRisk != MetricsRisk {
		bad("metrics.accept_risk", "%q: the only accepted value is %q", m.AcceptRisk, MetricsRisk)
	}
	if !m.Enabled() {
		if m.AcceptRisk != "" {
			bad("metrics.accept_risk", "only with metrics.listen")
		}
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		bad("metrics.listen", "%q is not host:port (for example 127.0.0.1:9464)", m.Listen)
		return
	}
	switch {
	case !loopbackHost(host) && m.AcceptRisk != MetricsRisk:
		bad("metrics.listen", "%q is not a loopback address: /metrics and /healthz are plain HTTP without authentication; "+
			"listen on 127.0.0.1 and let a local agent forward them, or set accept_risk: %q", m.Listen, MetricsRisk)
	case loopbackHost(host) && m.AcceptRisk != "":
		bad("metrics.accept_risk", "only for a listen address that is not loopback")
	}
}
