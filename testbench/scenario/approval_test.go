package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/testbench/gwtest"
)

const vendorIP = "127.0.0.3"

// prcVendorParties is a PRC-managed vendor at 127.0.0.3: established in CN and
// controlled by a group in HK.
const prcVendorParties = `parties:
  - id: vendor-prc
    name: "Li Wei (service engineer)"
    organisation: "Shenzhen Example Automation Co., Ltd."
    legal_name: "Shenzhen Example Automation Co., Ltd."
    kind: vendor
    networks: [127.0.0.3/32]
    evidence:
      established_in: CN
      controlled_by: [example-group]
      management_in: [CN]
      operates_from: [CN]
      data_to: [CN]
      reviewed_on: 2026-10-01
      review_by: 2099-01-01
  - id: example-group
    name: "Example Holdings"
    legal_name: "Example Holdings Ltd."
    kind: owner
    evidence:
      established_in: HK
`

// approvalConfig has a PRC-managed vendor (established in CN, controlled by
// a group in HK) allowed by the rules to read, write and program plc and
// plc2 — but every command it sends needs a grant.
func approvalConfig(plc1, plc2, accounts string) string {
	return configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - units: [1]
        target: plc
      - units: [2]
        target: plc2
        target_unit: 1
targets:
  - name: plc
    transport: tcp
    address: ` + plc1 + `
  - name: plc2
    transport: tcp
    address: ` + plc2 + `
admin:
  accounts: ` + accounts + `
` + prcVendorParties + `rules:
  - name: vendor-maintenance
    parties: [vendor-prc]
    targets: [plc, plc2]
    classes: [read, write, program]
`
}

type adminClient struct {
	t    *testing.T
	http *http.Client
}

func newAdminClient(t *testing.T, socket string) *adminClient {
	return &adminClient{t: t, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}}
}

func (a *adminClient) do(user, method, path string, body any, out any) int {
	a.t.Helper()
	var rd bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = *bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://brana"+path, &rd)
	req.SetBasicAuth(user, user+"-password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type apiRequest struct {
	ID       string   `json:"id"`
	State    string   `json:"state"`
	Required int      `json:"required"`
	Targets  []string `json:"targets"`
	Classes  []string `json:"classes"`
}

// The end-to-end test of [P1]: a PRC-managed party's Modbus session is held
// for approval; a program request stays pending with one approver and is
// granted by two; the grant covers only what was approved; revoking it closes
// the live connection within a second; every step is in the audit log and
// the log verifies.
func TestApprovalEndToEnd(t *testing.T) {
	plc1, addr1 := startPLC(t, map[byte]string{1: "feeder"})
	plc2, addr2 := startPLC(t, map[byte]string{1: "feeder"})
	dir := t.TempDir()
	var accts strings.Builder
	accts.WriteString("accounts:\n")
	for _, u := range []struct{ user, role string }{{"alice", "approver"}, {"bob", "approver"}, {"dispatch", "requester"}} {
		h, err := adminapi.HashPassword(u.user + "-password")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&accts, "  - {user: %s, name: %q, roles: [%s], hash: %q}\n", u.user, strings.ToUpper(u.user[:1])+u.user[1:], u.role, h)
	}
	acctFile := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(acctFile, []byte(accts.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := gwtest.Start(t, approvalConfig(addr1, addr2, acctFile))
	api := newAdminClient(t, gw.AdminSocket())

	// Held: the session is admitted, but no command passes without a grant.
	vc := dialFrom(t, gw.ModbusAddr("scada"), vendorIP)
	expectException(t, vc.call(1, pduReadHolding(0, 2)), 3, 0x06)
	if n := plc1.Counters().Total(); n != 0 {
		t.Fatalf("PLC saw %d requests from a held session", n)
	}
	held := waitAudit(t, gw, "the held command", func(r *auditRec) bool {
		return r.Type == "command" && r.Party == "vendor-prc" && r.Decision == "held"
	})
	if !strings.Contains(held.Detail, "access request R-") {
		t.Fatalf("held record does not name the access request: %s", held.String())
	}

	// A program request needs two approvers for a PRC-managed party.
	var req apiRequest
	if code := api.do("dispatch", "POST", "/v1/requests", map[string]any{
		"party": "vendor-prc", "targets": []string{"plc"}, "classes": []string{"read", "program"},
		"reason": "firmware check TKT-4711", "duration": "1h"}, &req); code != http.StatusCreated {
		t.Fatalf("create request: HTTP %d", code)
	}
	if req.Required != 2 {
		t.Fatalf("request needs %d approvals; want 2 (PRC-managed, program)", req.Required)
	}
	if code := api.do("alice", "POST", "/v1/requests/"+req.ID+"/approve", map[string]any{"note": "ok from me"}, &req); code != http.StatusOK || req.State != "pending" {
		t.Fatalf("first approval: HTTP %d, state %q; want 200 and still pending", code, req.State)
	}
	if code := api.do("alice", "POST", "/v1/requests/"+req.ID+"/approve", map[string]any{}, nil); code == http.StatusOK {
		t.Fatal("the same approver counted twice")
	}
	expectException(t, vc.call(1, pduReadHolding(0, 2)), 3, 0x06)
	if code := api.do("bob", "POST", "/v1/requests/"+req.ID+"/approve", map[string]any{"note": "second pair of eyes"}, &req); code != http.StatusOK || req.State != "approved" {
		t.Fatalf("second approval: HTTP %d, state %q; want approved", code, req.State)
	}

	// The grant covers read (and program) on plc only.
	if got := registers(t, vc.call(1, pduReadHolding(0, 2))); len(got) != 2 || got[0] != 400 {
		t.Fatalf("granted read: %v", got)
	}
	expectException(t, vc.call(1, pduWriteSingle(100, 5)), 6, 0x06) // write was not approved
	expectException(t, vc.call(2, pduReadHolding(0, 2)), 3, 0x06)   // plc2 was not approved
	if plc1.Counters().Writes(1) != 0 || plc2.Counters().Total() != 0 {
		t.Fatal("a command outside the grant reached a PLC")
	}
	granted := waitAudit(t, gw, "a command under the grant", func(r *auditRec) bool {
		return r.Type == "command" && r.Party == "vendor-prc" && r.Decision == "allow"
	})
	grantRec := findRaw(t, gw.AuditPath(), granted.Seq)
	if grantRec["grant"] != req.ID {
		t.Fatalf("allowed command record names grant %v; want %s", grantRec["grant"], req.ID)
	}

	// Revoking ends the live connection at once.
	start := time.Now()
	if code := api.do("alice", "POST", "/v1/requests/"+req.ID+"/revoke", map[string]any{"note": "work finished"}, nil); code != http.StatusOK {
		t.Fatalf("revoke: HTTP %d", code)
	}
	vc.expectClosed(time.Second)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("connection closed %v after the revocation; want within 1s", el)
	}

	gw.Stop(t)
	kinds := map[string]int{}
	for _, r := range readAudit(t, gw.AuditPath()) {
		kinds[r.Type]++
	}
	for _, k := range []string{"approval.request", "approval.approve", "approval.grant", "approval.revoke", "session.close"} {
		if kinds[k] == 0 {
			t.Errorf("no %s record in the audit log (have %v)", k, kinds)
		}
	}
	if _, err := audit.Verify(filepath.Dir(gw.AuditPath()), nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
}

func findRaw(t *testing.T, path string, seq uint64) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && uint64(m["seq"].(float64)) == seq {
			return m
		}
	}
	t.Fatalf("no record with seq %d", seq)
	return nil
}
