package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/netpath"
	"github.com/brana-ot/brana/testbench/nodeopcua"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// startOPCUAPLC starts the simulated feeder PLC on loopback.
func startOPCUAPLC(t *testing.T) *opcuasim.PLC {
	t.Helper()
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plc.Close)
	return plc
}

// opcuaLab is the config of an OPC UA loopback listener opc-lab in front of
// target line-opc at endpoint; targetExtra adds lines to the target.
func opcuaLab(endpoint, targetExtra string) string {
	return `
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:0
    target: line-opc
targets:
  - name: line-opc
    protocol: opcua
    endpoint: ` + endpoint + "\n" + targetExtra
}

// opcuaRules lets party read everything (its own namespace and namespace 0,
// which every client browses and reads on connect) and write one setting.
func opcuaRules(party, target, ns string) string {
	return `
rules:
  - name: opc-read
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [read]
    opcua: {namespace: "` + ns + `"}
  - name: opc-read-ns0
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [read]
    opcua: {namespace: "http://opcfoundation.org/UA/"}
  - name: opc-pickup
    parties: [` + party + `]
    targets: [` + target + `]
    classes: [write]
    opcua:
      namespace: "` + ns + `"
      nodes: ["s=Feeder.Protection.OvercurrentPickup"]
`
}

// opcuaServiceOps are the [O1] service checks, run by node-opcua through
// brana: browse and read, an allowed and a denied write, a mixed array write
// and a program-class Call. check verifies their results and the PLC.
func opcuaServiceOps(ns string) []nodeopcua.Op {
	pickup := "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"
	delay := "nsu=" + ns + ";s=Feeder.Protection.TimeDelay"
	return []nodeopcua.Op{
		{"op": "browse", "path": "Feeder", "namespace": ns},
		{"op": "read", "path": "Feeder/Measurements/Voltage", "namespace": ns},
		{"op": "write", "nodeId": pickup, "dataType": "Double", "value": 450},
		{"op": "write", "nodeId": delay, "dataType": "Double", "value": 7},
		{"op": "writeMany", "items": []map[string]any{
			{"nodeId": delay, "dataType": "Double", "value": 8},
			{"nodeId": pickup, "dataType": "Double", "value": 460},
			{"nodeId": delay, "dataType": "Double", "value": 9},
		}},
		{"op": "call", "path": "Feeder/Firmware/Open", "namespace": ns, "inputs": []map[string]any{{"dataType": "Byte", "value": 2}}},
		{"op": "read", "nodeId": pickup},
	}
}

func checkOPCUAServices(t *testing.T, plc *opcuasim.PLC, res []nodeopcua.Result) {
	t.Helper()
	if len(res[0].References) == 0 || res[0].Error != "" {
		t.Errorf("browse Feeder: %+v", res[0])
	}
	if res[1].DataType != "Double" || res[1].StatusCode != "Good" {
		t.Errorf("read Voltage: %+v", res[1])
	}
	if res[2].StatusCode != "Good" {
		t.Errorf("allowed write: %+v", res[2])
	}
	if res[3].StatusCode != "BadUserAccessDenied" {
		t.Errorf("denied write: %+v, want BadUserAccessDenied", res[3])
	}
	if got := strings.Join(res[4].StatusCodes, ","); got != "BadUserAccessDenied,Good,BadUserAccessDenied" {
		t.Errorf("mixed array write: %s (%+v)", got, res[4])
	}
	if res[5].StatusCode != "BadUserAccessDenied" {
		t.Errorf("FileType Open for writing: %+v, want BadUserAccessDenied", res[5])
	}
	if v, _ := res[6].Value.(float64); v != 460 {
		t.Errorf("pickup after the writes: %+v, want 460", res[6])
	}
	if n := plc.WritesTo("Feeder.Protection.OvercurrentPickup"); n != 2 {
		t.Errorf("PLC saw %d writes to OvercurrentPickup, want 2", n)
	}
	if n := plc.WritesTo("Feeder.Protection.TimeDelay"); n != 0 {
		t.Errorf("PLC saw %d writes to TimeDelay, want none", n)
	}
	if n := plc.Calls("Firmware.Open"); n != 0 {
		t.Errorf("PLC saw %d Firmware.Open calls, want none", n)
	}
}

func runNode(t *testing.T, endpoint string, ops []nodeopcua.Op, timeout time.Duration) []nodeopcua.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, log, err := nodeopcua.Run(ctx, endpoint, ops)
	for _, r := range res {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Fatalf("node-opcua: %v\n%s", err, log)
	}
	return res
}

// The [O1] done-when over the loopback listener: node-opcua, a stack nobody
// here wrote, browses, reads and writes through brana; the denied write
// and the denied elements of an array write never reach the PLC; a
// FileType Open for writing is refused as program; the audit log has every
// element with its decision.
func TestOPCUALoopbackListener(t *testing.T) {
	nodeopcua.Require(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "")+partiesYAML+opcuaRules("monitoring", "line-opc", ns))
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	res := runNode(t, endpoint, opcuaServiceOps(ns), 60*time.Second)
	checkOPCUAServices(t, plc, res)

	mixed := waitAudit(t, gw, "the mixed array write", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Write" && r.Decision == "partial"
	})
	if mixed.NItems != 3 || mixed.Items[0].Decision != "deny" || mixed.Items[0].Status != "BadUserAccessDenied" || mixed.Items[1].Decision != "allow" ||
		mixed.Items[1].Value != "460" || !strings.Contains(mixed.Items[1].Node, "Feeder.Protection.OvercurrentPickup") {
		t.Errorf("audit record of the mixed write: %s", &mixed)
	}
	waitAudit(t, gw, "the refused FileType Open", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Call" && r.Class == "program" && r.Decision == "held" &&
			strings.Contains(r.Detail, "access request R-")
	})
	waitAudit(t, gw, "the session record", func(r *auditRec) bool {
		return r.Type == "session.open" && r.Party == "monitoring" && strings.Contains(r.Detail, "PLC session None/None")
	})
}

// A subscription through brana keeps delivering values for over a minute,
// over the loopback listener and over an OpenSSH tunnel at once: Publish
// long polls are not cut by the request timeout.
func TestOPCUASubscriptionLastsAMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for over a minute")
	}
	nodeopcua.Require(t)
	t.Parallel()
	vendor := newSSHVendor(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "    timeout: 2s\n")+`
ssh:
  listen: 127.0.0.1:0
`+strings.Replace(partiesYAML, "parties:\n", `parties:
  - id: vendor-de
    name: "Anna Schmidt"
    organisation: "Beispiel GmbH"
    kind: vendor
    ssh_keys: ["`+vendor.pub+`"]
    evidence: {established_in: DE, management_in: [DE], operates_from: [DE], data_to: [DE], reviewed_on: 2026-10-01, review_by: 2099-01-01}
`, 1)+strings.ReplaceAll(opcuaRules("monitoring", "line-opc", ns), "[monitoring]", "[monitoring, vendor-de]"))
	vendor.addr = gw.SSHAddr().String()
	for name, endpoint := range map[string]string{
		"loopback": "opc.tcp://" + gw.Addr("opc-lab").String(),
		"ssh":      "opc.tcp://" + vendor.tunnelTo("line-opc", 4840),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := runNode(t, endpoint, []nodeopcua.Op{
				{"op": "subscribe", "path": "Feeder/Heartbeat", "namespace": ns, "seconds": 65, "publishingInterval": 500, "samplingInterval": 250},
			}, 120*time.Second)
			r := res[0]
			if r.Error != "" || r.Terminated || r.Notifications < 60 || r.LastNotificationSeconds == nil || *r.LastNotificationSeconds < 60 {
				t.Fatalf("subscription over 65 s: %d notifications, the last at %v s, terminated %v (%s)",
					r.Notifications, r.LastNotificationSeconds, r.Terminated, r.Error)
			}
			if fmt.Sprint(r.Values[0]) == fmt.Sprint(r.Values[len(r.Values)-1]) {
				t.Fatalf("heartbeat did not move: %v", r.Values)
			}
		})
	}
}

// The [O1] done-when over a real OpenSSH -L tunnel: an allied vendor runs
// the service checks with node-opcua on its end of the tunnel; a
// PRC-managed vendor's session is held until two engineers approve it,
// then reads, and its write (not granted) is refused with the PLC untouched.
func TestOPCUAOverSSHTunnel(t *testing.T) {
	nodeopcua.Require(t)
	allied, prc := newSSHVendor(t), newSSHVendor(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	dir := t.TempDir()
	gw := gwtest.Start(t, configHead+`
targets:
  - name: line-opc
    protocol: opcua
    endpoint: `+plc.Endpoint()+`
ssh:
  listen: 127.0.0.1:0
admin:
  accounts: `+approverAccounts(t, dir)+`
parties:
  - id: vendor-de
    name: "Anna Schmidt"
    organisation: "Beispiel GmbH"
    kind: vendor
    ssh_keys: ["`+allied.pub+`"]
    evidence: {established_in: DE, management_in: [DE], operates_from: [DE], data_to: [DE], reviewed_on: 2026-10-01, review_by: 2099-01-01}
  - id: vendor-prc
    name: "Li Wei, service engineer"
    organisation: "Shenzhen Example Automation Co., Ltd."
    kind: vendor
    ssh_keys: ["`+prc.pub+`"]
    evidence: {established_in: CN, management_in: [CN], operates_from: [CN], data_to: [CN], reviewed_on: 2026-10-01, review_by: 2099-01-01}
`+strings.ReplaceAll(opcuaRules("monitoring", "line-opc", ns), "[monitoring]", "[vendor-de, vendor-prc]"))
	allied.addr, prc.addr = gw.SSHAddr().String(), gw.SSHAddr().String()

	res := runNode(t, "opc.tcp://"+allied.tunnelTo("line-opc", 4840), opcuaServiceOps(ns), 60*time.Second)
	checkOPCUAServices(t, plc, res)
	waitAudit(t, gw, "the allied vendor's session", func(r *auditRec) bool {
		return r.Type == "session.open" && r.Party == "vendor-de" && r.Listener == "ssh-line-opc" && strings.Contains(r.Detail, "ssh key SHA256:")
	})

	// The PRC-managed vendor: the tunnel's channel waits for approval.
	local := prc.tunnelTo("line-opc", 4840)
	type outcome struct {
		res []nodeopcua.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		res, _, err := nodeopcua.Run(ctx, "opc.tcp://"+local, []nodeopcua.Op{
			{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"},
			{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup", "dataType": "Double", "value": 999},
		})
		done <- outcome{res, err}
	}()
	api := newAdminClient(t, gw.AdminSocket())
	var pending struct {
		Requests []struct {
			ID    string `json:"id"`
			Party struct {
				ID string `json:"id"`
			} `json:"party"`
		} `json:"requests"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		api.do("alice", "GET", "/v1/requests?state=pending", nil, &pending)
		if len(pending.Requests) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the PRC vendor's tunnel filed no access request")
		}
	}
	select {
	case o := <-done:
		t.Fatalf("the PRC vendor's session ran before approval: %+v %v", o.res, o.err)
	default:
	}
	writesBefore := plc.WritesTo("Feeder.Protection.OvercurrentPickup")
	id := pending.Requests[0].ID
	for _, u := range []string{"alice", "bob"} {
		if code := api.do(u, "POST", "/v1/requests/"+id+"/approve", map[string]any{"note": "ok"}, nil); code != 200 {
			t.Fatalf("%s approving %s: HTTP %d", u, id, code)
		}
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("node-opcua after approval: %v", o.err)
	}
	if o.res[0].StatusCode != "Good" {
		t.Errorf("read after approval: %+v", o.res[0])
	}
	if o.res[1].StatusCode != "BadUserAccessDenied" || plc.WritesTo("Feeder.Protection.OvercurrentPickup") != writesBefore {
		t.Errorf("write without a write grant: %+v; PLC writes %d, before %d", o.res[1], plc.WritesTo("Feeder.Protection.OvercurrentPickup"), writesBefore)
	}
	waitAudit(t, gw, "the PRC vendor's held write", func(r *auditRec) bool {
		return r.Type == "command" && r.Party == "vendor-prc" && r.Service == "Write" && r.Decision == "held"
	})
	waitAudit(t, gw, "the PRC vendor's session under the grant", func(r *auditRec) bool {
		return r.Type == "command" && r.Party == "vendor-prc" && r.Service == "Read" && r.Grant == id
	})
}

// approverAccounts writes an accounts file with two approvers, alice and
// bob (password USER-password), and returns its path.
func approverAccounts(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("accounts:\n")
	for _, u := range []string{"alice", "bob"} {
		h, err := adminapi.HashPassword(u + "-password")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - {user: %s, name: %s, roles: [approver], hash: %q}\n", u, u, h)
	}
	path := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// node-opcua, a stack nobody here wrote, as the PLC: brana reaches it with
// Basic256Sha256 SignAndEncrypt and the target's own user, which the vendor
// never sees; the vendor's allowed write arrives, the denied one does not.
func TestOPCUADownstreamSignAndEncrypt(t *testing.T) {
	nodeopcua.Require(t)
	srv := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: "brana-gw", Password: "s3cret-plc-pw"})
	ns := srv.NamespaceURI()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plc.pw"), []byte(srv.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:0
    target: node-plc
targets:
  - name: node-plc
    protocol: opcua
    endpoint: `+srv.Endpoint()+`
    security_policy: Basic256Sha256
    security_mode: SignAndEncrypt
    username: `+srv.User()+`
    password_file: `+filepath.Join(dir, "plc.pw")+partiesYAML+`
rules:
  - name: opc-read
    parties: [monitoring]
    targets: [node-plc]
    classes: [read]
    opcua: {namespace: "`+ns+`"}
  - name: opc-read-ns0
    parties: [monitoring]
    targets: [node-plc]
    classes: [read]
    opcua: {namespace: "http://opcfoundation.org/UA/"}
  - name: opc-setpoint
    parties: [monitoring]
    targets: [node-plc]
    classes: [write]
    opcua: {namespace: "`+ns+`", nodes: ["s=Feeder.Setpoint"]}
`)
	res := runNode(t, "opc.tcp://"+gw.Addr("opc-lab").String(), []nodeopcua.Op{
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Voltage"},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Setpoint", "dataType": "Double", "value": 42.5},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Limits", "dataType": "Double", "value": []float64{1, 2, 3, 4}},
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Setpoint"},
	}, 90*time.Second)
	if res[0].StatusCode != "Good" || res[0].DataType != "Double" {
		t.Errorf("read Voltage: %+v", res[0])
	}
	if res[1].StatusCode != "Good" || srv.WritesTo("Feeder.Setpoint") != 1 {
		t.Errorf("allowed write: %+v; PLC saw %d", res[1], srv.WritesTo("Feeder.Setpoint"))
	}
	if res[2].StatusCode != "BadUserAccessDenied" || srv.WritesTo("Feeder.Limits") != 0 {
		t.Errorf("denied write: %+v; PLC saw %d", res[2], srv.WritesTo("Feeder.Limits"))
	}
	if v, _ := res[3].Value.(float64); v != 42.5 {
		t.Errorf("setpoint read back: %+v", res[3])
	}
	waitAudit(t, gw, "the session over SignAndEncrypt", func(r *auditRec) bool {
		return r.Type == "session.open" && strings.Contains(r.Detail, "PLC session Basic256Sha256/SignAndEncrypt")
	})
}

// The PLC's network drops every connection in the middle of a
// subscription: brana opens a new secure channel, re-activates the same PLC
// session on it, and the vendor's subscription keeps delivering without the
// vendor noticing. The PLC is node-opcua (SignAndEncrypt, a user), behind a
// TCP path the test can cut.
func TestOPCUAPLCReconnect(t *testing.T) {
	nodeopcua.Require(t)
	srv := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: "brana-gw", Password: "s3cret-plc-pw"})
	ns := srv.NamespaceURI()
	path := netpath.New(t, strings.TrimPrefix(srv.Endpoint(), "opc.tcp://"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plc.pw"), []byte(srv.Password()), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: opc-lab
    protocol: opcua
    address: 127.0.0.1:0
    target: node-plc
targets:
  - name: node-plc
    protocol: opcua
    endpoint: opc.tcp://`+path.Addr()+`
    username: `+srv.User()+`
    password_file: `+filepath.Join(dir, "plc.pw")+`
    timeout: 3s
`+partiesYAML+strings.ReplaceAll(opcuaRules("monitoring", "line-opc", ns), "line-opc", "node-plc"))
	go func() {
		time.Sleep(8 * time.Second)
		t.Logf("cut %d connections to the PLC", path.Cut())
	}()
	res := runNode(t, "opc.tcp://"+gw.Addr("opc-lab").String(), []nodeopcua.Op{
		{"op": "subscribe", "nodeId": "nsu=" + ns + ";s=Feeder.Voltage", "seconds": 20, "publishingInterval": 500, "samplingInterval": 250},
		{"op": "read", "nodeId": "nsu=" + ns + ";s=Feeder.Voltage"},
	}, 120*time.Second)
	sub := res[0]
	if sub.Terminated || sub.LastNotificationSeconds == nil || *sub.LastNotificationSeconds < 15 {
		for _, r := range readAudit(t, gw.AuditPath()) {
			t.Log(r.String())
		}
		t.Fatalf("subscription across the PLC reconnect: %d notifications, the last at %v s of 20, terminated %v, errors %v",
			sub.Notifications, sub.LastNotificationSeconds, sub.Terminated, sub.Errors)
	}
	if res[1].StatusCode != "Good" {
		t.Fatalf("read after the reconnect: %+v", res[1])
	}
	waitAudit(t, gw, "one session only", func(r *auditRec) bool { return r.Type == "session.close" })
	opens := 0
	for _, r := range readAudit(t, gw.AuditPath()) {
		if r.Type == "session.open" {
			opens++
		}
	}
	if opens != 1 {
		t.Fatalf("%d vendor sessions; the reconnect should be invisible to the vendor", opens)
	}
}

// A rule may name browse paths instead of NodeIds: brana resolves them on
// the PLC per session (TranslateBrowsePathsToNodeIds, then the subtree),
// and a write below Feeder/Protection passes while one elsewhere does not.
func TestOPCUABrowsePathRule(t *testing.T) {
	nodeopcua.Require(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	rules := strings.Replace(opcuaRules("monitoring", "line-opc", ns), `nodes: ["s=Feeder.Protection.OvercurrentPickup"]`,
		`paths: ["Feeder/Protection/*"]`, 1)
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "")+partiesYAML+rules)
	res := runNode(t, "opc.tcp://"+gw.Addr("opc-lab").String(), []nodeopcua.Op{
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.TimeDelay", "dataType": "Double", "value": 2},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Simulation.LoadCurrent", "dataType": "Double", "value": 100},
	}, 60*time.Second)
	if res[0].StatusCode != "Good" || plc.WritesTo("Feeder.Protection.TimeDelay") != 1 {
		t.Errorf("write below Feeder/Protection: %+v; PLC writes %d", res[0], plc.WritesTo("Feeder.Protection.TimeDelay"))
	}
	if res[1].StatusCode != "BadUserAccessDenied" || plc.WritesTo("Feeder.Simulation.LoadCurrent") != 0 {
		t.Errorf("write outside the path: %+v; PLC writes %d", res[1], plc.WritesTo("Feeder.Simulation.LoadCurrent"))
	}
}
