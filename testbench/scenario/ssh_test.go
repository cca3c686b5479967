package scenario

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// sshVendor is an OpenSSH client with its own key, talking to the gateway.
type sshVendor struct {
	t    *testing.T
	key  string
	pub  string
	addr string
}

func newSSHVendor(t *testing.T) *sshVendor {
	needTool(t, "ssh", "-V")
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "li.wei@vendor", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return &sshVendor{t: t, key: key, pub: strings.TrimSpace(string(pub))}
}

func (v *sshVendor) args(extra ...string) []string {
	host, port, _ := net.SplitHostPort(v.addr)
	return append([]string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
		"-i", v.key, "-p", port, "-l", "vendor"}, append(extra, host)...)
}

// exec runs a vocabulary command and returns its output.
func (v *sshVendor) exec(cmd ...string) (string, error) {
	c := exec.Command("ssh", append(v.args(), cmd...)...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// tunnel runs ssh -N -L to target's Modbus port and returns the local address.
func (v *sshVendor) tunnel(target string) string {
	v.t.Helper()
	return v.tunnelTo(target, 502)
}

// tunnelTo runs ssh -N -L to target:port and returns the local address.
func (v *sshVendor) tunnelTo(target string, port int) string {
	v.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		v.t.Fatal(err)
	}
	local := ln.Addr().String()
	ln.Close()
	c := exec.Command("ssh", v.args("-N", "-o", "ExitOnForwardFailure=yes", "-L", local+":"+target+":"+fmt.Sprint(port))...)
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if nc, err := net.Dial("tcp", local); err == nil {
			nc.Close()
			return local
		}
	}
	v.t.Fatalf("ssh -L to %s did not come up", target)
	return ""
}

// The [V1] done-when: a forwarded Modbus session through the real OpenSSH
// client with pymodbus on the local end reads registers; a write without a
// grant is refused with an exception; after approval the same write
// succeeds; the audit log names the SSH key.
func TestSSHVendorTunnel(t *testing.T) {
	needTool(t, "/usr/bin/python3", "-c", "import pymodbus")
	vendor := newSSHVendor(t)
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	dir := t.TempDir()
	var accts strings.Builder
	accts.WriteString("accounts:\n")
	for _, u := range []string{"alice", "bob"} {
		h, err := adminapi.HashPassword(u + "-password")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&accts, "  - {user: %s, name: %s, roles: [approver], hash: %q}\n", u, u, h)
	}
	os.WriteFile(filepath.Join(dir, "accounts.yaml"), []byte(accts.String()), 0o600)
	cfg := configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: feeder-plc
targets:
  - name: feeder-plc
    transport: tcp
    address: ` + plcAddr + `
ssh:
  listen: 127.0.0.1:0
admin:
  accounts: ` + filepath.Join(dir, "accounts.yaml") + `
parties:
  - id: vendor-prc
    name: "Li Wei, service engineer"
    organisation: "Shenzhen Example Automation Co., Ltd."
    kind: vendor
    ssh_keys: ["` + vendor.pub + `"]
    evidence:
      established_in: CN
      management_in: [CN]
      operates_from: [CN]
      data_to: [CN]
      reviewed_on: 2026-10-01
      review_by: 2099-01-01
rules:
  - name: vendor-setpoints
    parties: [vendor-prc]
    targets: [feeder-plc]
    classes: [read, write]
    ranges:
      holding: ["0-119"]
    values: {min: 0, max: 5000}
`
	gw := gwtest.Start(t, cfg)
	vendor.addr = gw.SSHAddr().String()
	api := newAdminClient(t, gw.AdminSocket())
	approveAll := func(id string) {
		t.Helper()
		for _, u := range []string{"alice", "bob"} {
			if code := api.do(u, "POST", "/v1/requests/"+id+"/approve", map[string]any{"note": "ok"}, nil); code != 200 {
				t.Fatalf("%s approving %s: HTTP %d", u, id, code)
			}
		}
	}

	// The vendor asks for read access with nothing but OpenSSH.
	out, err := vendor.exec("request", "feeder-plc", "--classes", "read", "--for", "1h", "--reason", "TKT-1234")
	if err != nil || !strings.Contains(out, "access request R-") {
		t.Fatalf("ssh request: %v\n%s", err, out)
	}
	id := "R-" + strings.Fields(strings.SplitN(out, "R-", 2)[1])[0]
	approveAll(id)
	if out, _ := vendor.exec("status"); !strings.Contains(out, id) || !strings.Contains(out, "approved") {
		t.Fatalf("ssh status does not show the grant:\n%s", out)
	}

	local := vendor.tunnel("feeder-plc")
	host, port, _ := net.SplitHostPort(local)
	script := `
import json, sys
from pymodbus.client import ModbusTcpClient
c = ModbusTcpClient(sys.argv[1], port=int(sys.argv[2]), timeout=3, retries=0)
c.connect()
r = c.read_holding_registers(0, 2, slave=1)
w = c.write_register(100, int(sys.argv[3]), slave=1)
print(json.dumps({"read": None if r.isError() else r.registers,
                  "write_exception": getattr(w, "exception_code", None) if w.isError() else 0}))
`
	run := func(value int) (read []int, exc int) {
		t.Helper()
		out, err := exec.Command("/usr/bin/python3", "-c", script, host, port, fmt.Sprint(value)).CombinedOutput()
		if err != nil {
			t.Fatalf("pymodbus: %v\n%s", err, out)
		}
		var res struct {
			Read           []int `json:"read"`
			WriteException int   `json:"write_exception"`
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("pymodbus output: %s", out)
		}
		return res.Read, res.WriteException
	}
	read, exc := run(777)
	if len(read) != 2 || read[0] != 400 {
		t.Fatalf("read through the tunnel: %v", read)
	}
	if exc != 6 || plc.Counters().Writes(1) != 0 {
		t.Fatalf("write without a write grant: exception %d, PLC writes %d; want 06 and none", exc, plc.Counters().Writes(1))
	}
	held := waitAudit(t, gw, "the held write", func(r *auditRec) bool {
		return r.Type == "command" && r.Decision == "held" && r.Class == "write"
	})
	writeID := "R-" + strings.Fields(strings.SplitN(held.Detail, "R-", 2)[1])[0]
	approveAll(writeID)
	if _, exc := run(778); exc != 0 || plc.Unit(1).HoldingRegister(100) != 778 {
		t.Fatalf("write after approval: exception %d, register %d", exc, plc.Unit(1).HoldingRegister(100))
	}
	var viaKey bool
	for _, r := range readAudit(t, gw.AuditPath()) {
		viaKey = viaKey || (r.Type == "session.open" && r.Party == "vendor-prc" && strings.Contains(r.Detail, "ssh key SHA256:"))
	}
	if !viaKey {
		t.Fatal("no session.open record names the vendor's SSH key fingerprint")
	}
}

// Forbidden forwardings are refused with an audit record and nothing reaches the PLC.
func TestSSHRefusals(t *testing.T) {
	vendor := newSSHVendor(t)
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	cfg := configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: feeder-plc
targets:
  - name: feeder-plc
    transport: tcp
    address: ` + plcAddr + `
ssh:
  listen: 127.0.0.1:0
parties:
  - id: vendor-de
    name: "Anna Schmidt"
    organisation: "Beispiel GmbH"
    kind: vendor
    ssh_keys: ["` + vendor.pub + `"]
    evidence: {established_in: DE, management_in: [DE], operates_from: [DE], data_to: [DE], reviewed_on: 2026-10-01, review_by: 2099-01-01}
rules:
  - name: vendor-read
    parties: [vendor-de]
    targets: [feeder-plc]
    classes: [read]
`
	gw := gwtest.Start(t, cfg)
	vendor.addr = gw.SSHAddr().String()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	ipLocal, nameLocal := free(), free()
	tests := []struct {
		name  string
		args  []string
		local string // a -L forward is only tried when something connects to it
	}{
		{"fail/ip-destination", []string{"-N", "-L", ipLocal + ":" + plcAddr}, ipLocal},
		{"fail/not-a-target", []string{"-N", "-L", nameLocal + ":historian:502"}, nameLocal},
		{"fail/remote-forward", []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22"}, ""},
		{"fail/shell", []string{"-T"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(readAudit(t, gw.AuditPath()))
			c := exec.Command("ssh", vendor.args(tt.args...)...)
			c.Stdin = strings.NewReader("")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			if tt.local != "" {
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if nc, err := net.Dial("tcp", tt.local); err == nil {
						nc.Write([]byte{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1})
						time.Sleep(200 * time.Millisecond)
						nc.Close()
						break
					}
				}
			}
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				c.Process.Kill()
				<-done
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				recs := readAudit(t, gw.AuditPath())
				found := false
				for _, r := range recs[before:] {
					found = found || (r.Type == "session.refused" && r.Source != "" && r.Reason != "")
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no session.refused record after %s", tt.name)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	if n := plc.Counters().Total(); n != 0 {
		t.Fatalf("PLC saw %d requests", n)
	}
}
