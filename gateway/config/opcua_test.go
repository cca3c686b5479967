package config

import (
	"strings"
	"testing"
)

const goodOPCUA = `version: 1
gateway:
  name: test
  data_dir: data
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:4841
    target: line-opc
targets:
  - name: line-opc
    protocol: opcua
    endpoint: opc.tcp://10.0.0.7:4840
    username: brana
    password_file: plc.pw
  - name: plc
    transport: tcp
    address: 127.0.0.1:15020
parties:
  - id: scada
    name: SCADA
    organisation: Utility
    kind: scada
    networks: [127.0.0.1/32]
`

func TestOPCUAConfig(t *testing.T) {
	c, err := Parse("brana.yaml", []byte(goodOPCUA))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tg := c.Targets[0]
	if tg.SecurityPolicy != "auto" || tg.SecurityMode != "auto" || tg.MaxSessions != 4 || tg.MaxPublish != 3 || tg.Timeout.D().Seconds() != 10 {
		t.Errorf("opcua target defaults: %+v", tg)
	}
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{"fail/listener-off-loopback", "    address: 127.0.0.1:4841\n", "    address: 0.0.0.0:4841\n",
			[]string{"listeners[0].address", "not a loopback address", "accept_risk"}},
		{"ok/listener-off-loopback-risk-named", "    address: 127.0.0.1:4841\n",
			"    address: 0.0.0.0:4841\n    accept_risk: unencrypted OPC UA on the network\n", nil},
		{"fail/risk-misspelt", "    target: line-opc\n", "    target: line-opc\n    accept_risk: yes\n",
			[]string{"listeners[0].accept_risk", "the only accepted value"}},
		{"fail/listener-to-modbus-target", "    target: line-opc\n", "    target: plc\n",
			[]string{"listeners[0].target", `"plc" is a modbus target`}},
		{"fail/listener-routes", "    target: line-opc\n", "    target: line-opc\n    routes: [{target: line-opc}]\n",
			[]string{"listeners[0].routes", "names one target"}},
		{"fail/endpoint-scheme", "    endpoint: opc.tcp://10.0.0.7:4840\n", "    endpoint: http://10.0.0.7:4840\n",
			[]string{"targets[0].endpoint", "not an opc.tcp://host:port URL"}},
		{"fail/endpoint-missing", "    endpoint: opc.tcp://10.0.0.7:4840\n", "",
			[]string{"targets[0].endpoint", "missing"}},
		{"fail/policy", "    username: brana\n", "    username: brana\n    security_policy: Basic128Rsa15\n",
			[]string{"targets[0].security_policy", `"Basic128Rsa15"`}},
		{"fail/none-with-sign", "    username: brana\n", "    username: brana\n    security_policy: None\n    security_mode: Sign\n",
			[]string{"targets[0].security_mode", "do not go together"}},
		{"fail/user-without-password", "    password_file: plc.pw\n", "",
			[]string{"targets[0].password_file", "go together"}},
		{"fail/modbus-field-on-opcua", "    password_file: plc.pw\n", "    password_file: plc.pw\n    transport: tcp\n",
			[]string{"targets[0].transport", "only for modbus targets"}},
		{"fail/opcua-field-on-modbus", "    address: 127.0.0.1:15020\n", "    address: 127.0.0.1:15020\n    endpoint: opc.tcp://x:4840\n",
			[]string{"targets[1].endpoint", "only for opcua targets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodOPCUA, tt.from) {
				t.Fatalf("test bug: %q not in config", tt.from)
			}
			_, err := Parse("brana.yaml", []byte(strings.Replace(goodOPCUA, tt.from, tt.to, 1)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
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
