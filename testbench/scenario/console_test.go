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
	"github.com/brana-ot/brana/gateway/approvals"
	"github.com/brana-ot/brana/testbench/browser"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// consoleConfig is a gateway with the engineer console on a free port, two
// feeder PLCs, dispatch monitoring at 127.0.0.1 and a PRC-managed vendor at
// 127.0.0.3 whose every command needs a grant.
func consoleConfig(feeder, transformer, accounts string) string {
	return configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - units: [1]
        target: feeder-bay-1
      - units: [2]
        target: transformer-t1
        target_unit: 1
targets:
  - name: feeder-bay-1
    transport: tcp
    address: ` + feeder + `
  - name: transformer-t1
    transport: tcp
    address: ` + transformer + `
admin:
  accounts: ` + accounts + `
console:
  listen: 127.0.0.1:0
` + prcVendorParties + `  - id: dispatch
    name: "Dispatch monitoring"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    networks: [127.0.0.1/32]
rules:
  - name: dispatch-read
    parties: [dispatch]
    targets: ["*"]
    classes: [read]
  - name: vendor-maintenance
    parties: [vendor-prc]
    targets: [feeder-bay-1]
    classes: [read, write]
`
}

// The [C1] done-when, in Debian's chromium: an engineer logs in and sees the
// access request that a PRC-managed vendor's held Modbus commands filed,
// with the PRC findings highlighted (also on a phone); approves it for 30
// minutes instead of two hours, a second engineer approves too; the
// vendor's commands appear live on the session page; killing the session
// drops the vendor's connection; the session's story is found in the audit
// search. Screenshots of the pages go to BRANA_SCREENSHOTS when it is set
// (make screenshots: docs/screenshots), else to a temporary directory.
func TestConsoleEndToEnd(t *testing.T) {
	browser.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t.Log(browser.Versions(ctx))

	feeder, feederAddr := startPLC(t, map[byte]string{1: "feeder"})
	_, trafoAddr := startPLC(t, map[byte]string{1: "feeder"})
	dir := t.TempDir()
	var accts strings.Builder
	accts.WriteString("accounts:\n")
	for _, u := range []struct{ user, name, role string }{
		{"alice", "Alice Dvořáková", "approver"}, {"bob", "Bob Novák", "approver"}, {"audrey", "Audrey Auditor", "viewer"},
	} {
		h, err := adminapi.HashPassword(u.user + "-password")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&accts, "  - {user: %s, name: %q, roles: [%s], hash: %q}\n", u.user, u.name, u.role, h)
	}
	acctFile := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(acctFile, []byte(accts.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := gwtest.Start(t, consoleConfig(feederAddr, trafoAddr, acctFile))
	if gw.ConsoleAddr() == nil {
		t.Fatal("the console is not served")
	}
	consoleURL := "https://" + gw.ConsoleAddr().String()

	// Dispatch reads both targets, so that the targets page has health.
	dispatch := dialFrom(t, gw.ModbusAddr("scada"), monitoringIP)
	for _, unit := range []byte{1, 2} {
		registers(t, dispatch.call(unit, pduReadHolding(0, 2)))
	}

	// The vendor's read and write are held; one access request covers both.
	vc := dialFrom(t, gw.ModbusAddr("scada"), vendorIP)
	expectException(t, vc.call(1, pduReadHolding(0, 2)), 3, 0x06)
	expectException(t, vc.call(1, pduWriteSingle(100, 1200)), 6, 0x06)
	held := waitAudit(t, gw, "the held write", func(r *auditRec) bool {
		return r.Type == "command" && r.Source == vc.source() && r.Decision == "held" && r.fc() == 6
	})
	_, after, ok := strings.Cut(held.Detail, "access request R-")
	if !ok {
		t.Fatalf("held record does not name the access request: %s", held.String())
	}
	reqID := "R-" + strings.Fields(after)[0]
	req, err := gw.Approvals().Get(reqID)
	if err != nil {
		t.Fatal(err)
	}
	if req.State != approvals.StatePending || req.Required != 2 || len(req.Classes) != 2 {
		t.Fatalf("request %s: state %s, %d approvals needed, classes %v; want pending, 2, read and write", reqID, req.State, req.Required, req.Classes)
	}
	sessionID := waitAudit(t, gw, "the vendor's session", func(r *auditRec) bool {
		return r.Type == "session.open" && r.Source == vc.source()
	}).Session

	shots := os.Getenv(browser.EnvScreenshots)
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := browser.Start(ctx, "testdata/console.js", map[string]string{
		"URL": consoleURL, "REQUEST": reqID, "PASSWORD_SUFFIX": "-password", browser.EnvScreenshots: shots,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Wait()
	await := func(name string) browser.Signal {
		t.Helper()
		sig, err := s.Await(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	send := func(line string) {
		t.Helper()
		if err := s.Send(line); err != nil {
			t.Fatal(err)
		}
	}
	contains := func(step, text string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: no %q in\n%s", step, w, text)
			}
		}
	}

	// The inbox, with the certificate the gateway printed.
	inbox := await("inbox")
	contains("inbox", inbox.String("whoami"), "Alice Dvořáková")
	contains("inbox", inbox.String("card"), reqID, "Li Wei", "Shenzhen Example Automation", "feeder-bay-1", "read, write", "0 of 2")
	if inbox["prcBadge"] != 1.0 || inbox["prcFindings"].(float64) < 1 {
		t.Errorf("inbox: PRC badge %v, PRC findings highlighted %v; want both", inbox["prcBadge"], inbox["prcFindings"])
	}
	fp := strings.ToLower(strings.ReplaceAll(gw.ConsoleFingerprint(), ":", ""))
	if fps, _ := inbox["fingerprints"].([]any); len(fps) == 0 || fps[0] != fp {
		t.Errorf("the browser saw certificate %v; the gateway printed %s", inbox["fingerprints"], gw.ConsoleFingerprint())
	}
	if phone := await("phone"); phone["scrollWidth"].(float64) > phone["width"].(float64) {
		t.Errorf("the inbox is %v px wide on a %v px phone", phone["scrollWidth"], phone["width"])
	}

	// Alice approves with a shorter window; Bob's approval makes the grant.
	approved := await("approved")
	contains("first approval", approved.String("flash"), reqID, "1 of 2")
	contains("first approval", approved.String("first"), "Alice Dvořáková", "ok for the relay settings", "until")
	await("granted")
	req, _ = gw.Approvals().Get(reqID)
	if req.State != approvals.StateApproved || len(req.Approvals) != 2 || req.Approvals[1].By != "bob" {
		t.Fatalf("after both approvals: state %s, approvals %+v", req.State, req.Approvals)
	}
	if req.Duration != 2*time.Hour || req.NotAfter.IsZero() || time.Until(req.NotAfter) > 30*time.Minute {
		t.Fatalf("grant asked for %v ends %v from now; want 30 minutes at most", req.Duration, time.Until(req.NotAfter).Round(time.Second))
	}

	// The vendor works while Alice watches.
	if got := registers(t, vc.call(1, pduReadHolding(0, 2))); got[0] != 400 {
		t.Fatalf("granted read: %v", got)
	}
	send("session " + sessionID)
	contains("sessions page", await("sessions").String("row"), sessionID, "Li Wei", reqID)
	await("watching")
	values := []uint16{1201, 1202, 1203}
	registers(t, vc.call(1, pduReadHolding(100, 2)))
	for _, v := range values {
		if resp := vc.call(1, pduWriteSingle(100, v)); resp[0] != 6 {
			t.Fatalf("granted write %d: answer % x", v, resp)
		}
	}
	if got := feeder.Unit(1).HoldingRegister(100); got != values[len(values)-1] {
		t.Fatalf("feeder holding 100 = %d after the granted writes", got)
	}
	expectException(t, vc.call(2, pduReadHolding(0, 2)), 3, 0x06) // transformer-t1 was not asked for
	send("sent transformer-t1")
	stream := await("stream")
	items := fmt.Sprint(stream["items"])
	t.Logf("live stream: %s", items)
	for _, v := range values {
		contains("live stream", items, fmt.Sprint(v))
	}
	contains("live stream", fmt.Sprint(stream["decisions"]), "allow")

	// Kill: the vendor's connection drops at once.
	killed := await("killed")
	contains("kill", killed.String("flash"), sessionID, "killed")
	vc.expectClosed(2 * time.Second)

	// The audit search finds the session, and its story runs from the
	// request to the kill.
	send("audit")
	audit := await("audit")
	rows := fmt.Sprint(audit["rows"])
	contains("audit search", rows, sessionID, "session.close", "killed by Alice Dvořáková")
	story := await("story").String("text")
	contains("session story", story, sessionID, reqID, "approval.grant", "session.open", "session.close")

	contains("parties page", await("parties").String("text"), "Li Wei", "Example Holdings", "Dispatch monitoring", "PRC")
	contains("targets page", await("targets").String("text"), "feeder-bay-1", "transformer-t1")
	contains("policy page", await("policy").String("text"), "vendor-maintenance", gw.Policy().Digest())
	if _, err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser flows took %v", time.Since(start).Round(100*time.Millisecond))
	for _, name := range []string{"inbox", "inbox-phone", "request", "sessions", "session", "audit", "story", "parties", "targets", "policy"} {
		if fi, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
