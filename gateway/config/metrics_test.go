package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "brana.yaml")
	// The line of the first key under metrics: (good ends with a newline).
	line := strings.Count(good, "\n") + 2

	ok := []struct {
		name, yaml string
		want       Metrics
	}{
		{"ok/off", "", Metrics{}},
		{"ok/loopback", "metrics:\n  listen: 127.0.0.1:9464\n", Metrics{Listen: "127.0.0.1:9464"}},
		{"ok/loopback-v6", "metrics:\n  listen: \"[::1]:9464\"\n", Metrics{Listen: "[::1]:9464"}},
		{"ok/localhost-port-0", "metrics:\n  listen: localhost:0\n", Metrics{Listen: "localhost:0"}},
		{"ok/network-with-risk", "metrics:\n  listen: 10.1.2.3:9464\n  accept_risk: " + MetricsRisk + "\n",
			Metrics{Listen: "10.1.2.3:9464", AcceptRisk: MetricsRisk}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(file, []byte(good+tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Metrics != tt.want {
				t.Fatalf("metrics = %+v, want %+v", c.Metrics, tt.want)
			}
			if c.Metrics.Enabled() != (tt.want.Listen != "") {
				t.Fatalf("Enabled() = %v", c.Metrics.Enabled())
			}
		})
	}

	fail := []struct {
		name, yaml string
		want       []string
	}{
		{"fail/not-host-port", "metrics:\n  listen: 9464\n", []string{fmt.Sprintf("brana.yaml:%d: metrics.listen: ", line), "not host:port"}},
		{"fail/port-name", "metrics:\n  listen: 127.0.0.1:prometheus\n", []string{"metrics.listen", "not host:port"}},
		{"fail/all-interfaces", "metrics:\n  listen: 0.0.0.0:9464\n",
			[]string{fmt.Sprintf("brana.yaml:%d: metrics.listen: ", line), "not a loopback address", MetricsRisk}},
		{"fail/empty-host", "metrics:\n  listen: \":9464\"\n", []string{"metrics.listen", "not a loopback address"}},
		{"fail/host-name", "metrics:\n  listen: gw.example:9464\n", []string{"metrics.listen", "not a loopback address"}},
		{"fail/wrong-risk", "metrics:\n  listen: 10.1.2.3:9464\n  accept_risk: \"yes\"\n",
			[]string{fmt.Sprintf("brana.yaml:%d: metrics.accept_risk: ", line+1), "the only accepted value", "metrics.listen"}},
		{"fail/risk-on-loopback", "metrics:\n  listen: 127.0.0.1:9464\n  accept_risk: " + MetricsRisk + "\n",
			[]string{"metrics.accept_risk", "only for a listen address that is not loopback"}},
		{"fail/risk-without-listen", "metrics:\n  accept_risk: " + MetricsRisk + "\n", []string{"metrics.accept_risk", "only with metrics.listen"}},
		{"fail/unknown-key", "metrics:\n  listen: 127.0.0.1:9464\n  path: /metrics\n",
			[]string{fmt.Sprintf("brana.yaml:%d: ", line+1), `unknown key "path"`}},
		{"fail/not-a-section", "metrics: 127.0.0.1:9464\n", []string{fmt.Sprintf("brana.yaml:%d: ", line-1), "expected a section"}},
	}
	for _, tt := range fail {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(file, []byte(good+tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
