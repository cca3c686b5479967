package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/signkey"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
	"github.com/brana-ot/brana/testbench/nodeopcua"
)

// testImage is a program image of n bytes (n even, as Modbus file records
// carry words) that differs with seed.
func testImage(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	copy(b, "PLC PROGRAM ")
	return b
}

// tampered is img with one byte changed.
func tampered(img []byte) []byte {
	b := append([]byte(nil), img...)
	b[len(b)/2] ^= 0x01
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// manifestKey is a firmware signing key made for one test.
type manifestKey struct {
	signer   note.Signer
	verifier string // path of the verifier key file
}

func newManifestKey(t *testing.T, dir string) manifestKey {
	t.Helper()
	skey, vkey, err := signkey.Generate("scenario-firmware")
	if err != nil {
		t.Fatal(err)
	}
	skeyPath, vkeyPath, err := signkey.WritePair(filepath.Join(dir, "firmware-signing"), skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signkey.LoadSigner(skeyPath)
	if err != nil {
		t.Fatal(err)
	}
	return manifestKey{signer, vkeyPath}
}

// sign writes a manifest with serial that approves imgs to path.
func (k manifestKey) sign(t *testing.T, path string, serial uint64, imgs ...[]byte) {
	t.Helper()
	now := time.Now()
	m := firmware.Manifest{Serial: serial, Issued: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)}
	for _, img := range imgs {
		m.Images = append(m.Images, firmware.Image{
			SHA256: sha(img), Size: int64(len(img)),
			Vendor: "Example Automation", Product: "Feeder Bay Controller", Version: "2.4.1",
			Origin:     "vendor portal download, ticket CHG-4711",
			ApprovedBy: []string{"Jana Novak", "Petr Svoboda"},
		})
	}
	signed, err := firmware.SignManifest(m, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeManifest signs a manifest that approves img with a key made for
// the test and writes it and the verifier key into dir. It returns the
// config lines of the firmware section.
func writeManifest(t *testing.T, dir string, img []byte) string {
	t.Helper()
	k := newManifestKey(t, dir)
	manifest := filepath.Join(dir, "firmware.manifest")
	k.sign(t, manifest, 3, img)
	return firmwareSection(manifest, k)
}

func firmwareSection(manifest string, k manifestKey) string {
	return "firmware:\n  manifest: " + manifest + "\n  keys: [" + k.verifier + "]\n"
}

// approvePending has alice and bob approve the one pending access request
// that brana filed for a held session, and returns its id.
func approvePending(t *testing.T, gw *gwtest.Gateway) string {
	t.Helper()
	api := newAdminClient(t, gw.AdminSocket())
	var pending struct {
		Requests []struct {
			ID      string   `json:"id"`
			Classes []string `json:"classes"`
		} `json:"requests"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		api.do("alice", "GET", "/v1/requests?state=pending", nil, &pending)
		if len(pending.Requests) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held program transfer filed no access request")
		}
	}
	req := pending.Requests[0]
	if strings.Join(req.Classes, ",") != "program" {
		t.Fatalf("access request %s asks for %v; want program", req.ID, req.Classes)
	}
	var got apiRequest
	for _, u := range []string{"alice", "bob"} {
		if code := api.do(u, "POST", "/v1/requests/"+req.ID+"/approve", map[string]any{"note": "firmware update CHG-4711"}, &got); code != 200 {
			t.Fatalf("%s approving %s: HTTP %d", u, req.ID, code)
		}
	}
	if got.State != "approved" || got.Required != 2 {
		t.Fatalf("request %s after two approvals: state %s, %d required; want approved by two", req.ID, got.State, got.Required)
	}
	return req.ID
}

// pduFileRecords is FC 21 writing data into one file from record rec on.
func pduFileRecords(file, rec uint16, data []byte) []byte {
	p := []byte{21, byte(7 + len(data)), 6}
	p = binary.BigEndian.AppendUint16(p, file)
	p = binary.BigEndian.AppendUint16(p, rec)
	p = binary.BigEndian.AppendUint16(p, uint16(len(data)/2))
	return append(p, data...)
}

// sendImage writes img into file 1 of unit 1 with FC 21, 100 records per
// request, each answered as the echo of the request.
func sendImage(t *testing.T, vc *rawConn, img []byte) {
	t.Helper()
	for off := 0; off < len(img); off += 200 {
		req := pduFileRecords(modbussim.ProgramFile, uint16(off/2), img[off:min(off+200, len(img))])
		if resp := vc.call(1, req); string(resp) != string(req) {
			t.Fatalf("FC 21 at record %d: answer % x", off/2, resp)
		}
	}
}

var commitPDU = pduWriteSingle(modbussim.ProgramCommitRegister, modbussim.ProgramCommitValue)

// The [F1] done-when over Modbus: a program transfer without a program
// grant is held at its first request and never reaches the PLC; with the
// grant, an approved image passes in FC 21 records and its commit is
// forwarded with the hash, vendor, product and version in the audit log;
// the same image with one byte changed is refused at the commit
// (exception 04, image-not-approved, its hash in the record) and the PLC
// keeps the program it had.
func TestFirmwareModbusTransfer(t *testing.T) {
	plc, addr := startPLC(t, map[byte]string{1: "feeder"})
	factory := plc.Unit(1).Program()
	dir := t.TempDir()
	img := testImage(1000, 0x5a)
	bad := tampered(img)
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: `+addr+`
    program:
      file: 1
      commit: {table: holding, address: 9000}
admin:
  accounts: `+approverAccounts(t, dir)+"\n"+writeManifest(t, dir, img)+partiesYAML+`
rules:
  - name: vendor-program
    parties: [engineering]
    targets: [plc]
    classes: [read, program]
`)

	// No grant: the first request of the transfer is held and goes nowhere.
	vc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	expectException(t, vc.call(1, pduFileRecords(1, 0, img[:200])), 21, 0x06)
	expectException(t, vc.call(1, commitPDU), 6, 0x06) // the commit register is program too
	if n := plc.Counters().Total(); n != 0 {
		t.Fatalf("the PLC saw %d requests of a transfer without a program grant", n)
	}
	waitAudit(t, gw, "the held transfer", func(r *auditRec) bool {
		return r.Type == "command" && r.fc() == 21 && r.Class == "program" && r.Decision == "held" && strings.Contains(r.Detail, "access request R-")
	})
	grant := approvePending(t, gw)

	// The approved image is loaded and committed.
	sendImage(t, vc, img)
	if got := plc.Unit(1).Program(); string(got) != string(factory) {
		t.Fatal("the program changed before the commit")
	}
	if resp := vc.call(1, commitPDU); string(resp) != string(commitPDU) {
		t.Fatalf("commit of the approved image: answer % x", resp)
	}
	if got, n := plc.Unit(1).Program(), plc.Unit(1).ProgramCommits(); string(got) != string(img) || n != 1 {
		t.Fatalf("PLC after the approved commit: %d bytes, %d commits; want the image (%d bytes), 1 commit", len(got), n, len(img))
	}
	ok := waitAudit(t, gw, "the approved commit", func(r *auditRec) bool {
		return r.Type == "command" && r.fc() == 6 && r.Decision == "allow" && r.Class == "program"
	})
	for _, want := range []string{"sha256:" + sha(img), "Example Automation", "Feeder Bay Controller", "2.4.1", "Jana Novak"} {
		if !strings.Contains(ok.Detail, want) {
			t.Errorf("approved commit record does not name %q: %s", want, ok.String())
		}
	}
	if ok.Grant != grant {
		t.Errorf("approved commit ran under grant %q; want %s", ok.Grant, grant)
	}
	waitAudit(t, gw, "the commit's result", func(r *auditRec) bool {
		return r.Type == "result" && r.Cmd == ok.Seq && strings.Contains(r.Status, "sha256:"+sha(img))
	})

	// One byte changed: the records pass, the commit does not.
	vc2 := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	sendImage(t, vc2, bad)
	expectException(t, vc2.call(1, commitPDU), 6, 0x04)
	if got, n := plc.Unit(1).Program(), plc.Unit(1).ProgramCommits(); string(got) != string(img) || n != 1 {
		t.Fatalf("PLC after the refused commit: %d commits, program changed: %v", n, string(got) != string(img))
	}
	refused := waitAudit(t, gw, "the refused commit", func(r *auditRec) bool {
		return r.Type == "command" && r.fc() == 6 && r.Decision == "deny" && r.Reason == "image-not-approved"
	})
	if !strings.Contains(refused.Detail, sha(bad)) || refused.Exception != 4 {
		t.Errorf("refused commit record: want the tampered image's sha256 %s and exception 4: %s", sha(bad), refused.String())
	}
}

// The [F1] done-when over OPC UA, with node-opcua as the client: FileType
// Open(write) without a program grant is held and never reaches the PLC;
// with the grant an approved image is written and its Close forwarded, the
// hash in the audit log; the image with one byte changed has its Close
// refused (Bad_UserAccessDenied, image-not-approved) and the PLC keeps the
// program it had.
func TestFirmwareOPCUATransfer(t *testing.T) {
	nodeopcua.Require(t)
	plc := startOPCUAPLC(t)
	ns := plc.NamespaceURI()
	dir := t.TempDir()
	img := testImage(3000, 0xa5)
	bad := tampered(img)
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "")+`
admin:
  accounts: `+approverAccounts(t, dir)+"\n"+writeManifest(t, dir, img)+partiesYAML+opcuaRules("monitoring", "line-opc", ns)+`
  - name: opc-firmware
    parties: [monitoring]
    targets: [line-opc]
    classes: [control, program]
    opcua:
      namespace: "`+ns+`"
      methods:
        - {object: "s=Feeder.Firmware", method: "s=Feeder.Firmware.Open"}
        - {object: "s=Feeder.Firmware", method: "s=Feeder.Firmware.Write"}
        - {object: "s=Feeder.Firmware", method: "s=Feeder.Firmware.Close"}
`)
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	call := func(method string, inputs ...any) nodeopcua.Op {
		return nodeopcua.Op{"op": "call", "path": "Feeder/Firmware/" + method, "namespace": ns, "inputs": inputs}
	}
	handle := map[string]any{"output": map[string]any{"op": 0, "index": 0}}
	data := func(b []byte) map[string]any {
		return map[string]any{"dataType": "ByteString", "value": base64.StdEncoding.EncodeToString(b)}
	}
	transfer := func(b []byte) []nodeopcua.Op {
		return []nodeopcua.Op{
			call("Open", map[string]any{"dataType": "Byte", "value": 6}), // Write|EraseExisting
			call("Write", handle, data(b[:2000])),
			call("Write", handle, data(b[2000:])),
			call("Close", handle),
		}
	}

	// No grant: Open for writing is held and never reaches the PLC.
	res := runNode(t, endpoint, transfer(img)[:1], 60*time.Second)
	if res[0].StatusCode != "BadUserAccessDenied" || plc.Calls("Firmware.Open") != 0 {
		t.Fatalf("Open(write) without a grant: %+v; the PLC saw %d Opens", res[0], plc.Calls("Firmware.Open"))
	}
	waitAudit(t, gw, "the held Open", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Call" && r.Class == "program" && r.Decision == "held"
	})
	grant := approvePending(t, gw)

	// The approved image is written and committed by its Close.
	res = runNode(t, endpoint, transfer(img), 60*time.Second)
	for i, r := range res {
		if r.StatusCode != "Good" {
			t.Fatalf("approved transfer, op %d: %+v", i, r)
		}
	}
	if got, n := plc.FileContents(), plc.FileCommits(); string(got) != string(img) || n != 1 {
		t.Fatalf("PLC after the approved Close: %d bytes, %d commits; want the image (%d bytes), 1 commit", len(got), n, len(img))
	}
	ok := waitAudit(t, gw, "the approved Close", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Call" && r.Decision == "allow" && strings.Contains(r.Detail, "commit of image")
	})
	for _, want := range []string{"sha256:" + sha(img), "Example Automation", "Feeder Bay Controller", "2.4.1"} {
		if !strings.Contains(ok.Detail, want) {
			t.Errorf("approved Close record does not name %q: %s", want, ok.String())
		}
	}
	if ok.Grant != grant {
		t.Errorf("approved Close ran under grant %q; want %s", ok.Grant, grant)
	}

	// One byte changed: the writes pass, the Close does not.
	res = runNode(t, endpoint, transfer(bad), 60*time.Second)
	for i := range 3 {
		if res[i].StatusCode != "Good" {
			t.Fatalf("tampered transfer, op %d: %+v", i, res[i])
		}
	}
	if res[3].StatusCode != "BadUserAccessDenied" {
		t.Fatalf("Close of the tampered image: %+v; want BadUserAccessDenied", res[3])
	}
	if got, n := plc.FileContents(), plc.FileCommits(); string(got) != string(img) || n != 1 || plc.Calls("Firmware.Close") != 1 {
		t.Fatalf("PLC after the refused Close: %d commits, %d Closes, program changed: %v", n, plc.Calls("Firmware.Close"), string(got) != string(img))
	}
	refused := waitAudit(t, gw, "the refused Close", func(r *auditRec) bool {
		return r.Type == "command" && r.Service == "Call" && r.Reason == "image-not-approved"
	})
	if !strings.Contains(refused.Detail, sha(bad)) || len(refused.Items) != 1 || refused.Items[0].Reason != "image-not-approved" ||
		refused.Items[0].Status != "BadUserAccessDenied" {
		t.Errorf("refused Close record: want the tampered image's sha256 %s and the item refused: %s", sha(bad), refused.String())
	}
}

// A newly signed manifest takes effect with a reload (SIGHUP), in the
// middle of a session; one with a lower serial rejects the reload and the
// manifest in force stays, its serial remembered in the data directory.
func TestFirmwareManifestReload(t *testing.T) {
	plc, addr := startPLC(t, map[byte]string{1: "feeder"})
	dir := t.TempDir()
	a, b := testImage(400, 0x11), testImage(400, 0x22)
	k := newManifestKey(t, dir)
	manifest := filepath.Join(dir, "firmware.manifest")
	k.sign(t, manifest, 3, a)
	gw := gwtest.Start(t, configHead+`
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: `+addr+`
    program:
      file: 1
      commit: {table: holding, address: 9000}
admin:
  accounts: `+approverAccounts(t, dir)+`
`+firmwareSection(manifest, k)+partiesYAML+`
rules:
  - name: vendor-program
    parties: [engineering]
    targets: [plc]
    classes: [read, program]
`)
	file := filepath.Join(gw.Dir, "brana.yaml")
	waitAudit(t, gw, "the start record naming the manifest", func(r *auditRec) bool {
		return r.Type == "gateway.start" && strings.Contains(r.Detail, "firmware manifest serial 3, 1 approved images")
	})
	vc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	expectException(t, vc.call(1, pduFileRecords(1, 0, b[:2])), 21, 0x06)
	approvePending(t, gw)

	sendImage(t, vc, b)
	expectException(t, vc.call(1, commitPDU), 6, 0x04) // b is not on serial 3

	k.sign(t, manifest, 4, a, b)
	if err := gw.ReloadFile(context.Background(), file); err != nil {
		t.Fatalf("reload with manifest serial 4: %v", err)
	}
	if resp := vc.call(1, commitPDU); string(resp) != string(commitPDU) {
		t.Fatalf("commit of b after the reload: answer % x", resp)
	}
	if got := plc.Unit(1).Program(); string(got) != string(b) {
		t.Fatal("the PLC did not load b")
	}

	k.sign(t, manifest, 2, a)
	if err := gw.ReloadFile(context.Background(), file); !errors.Is(err, firmware.ErrRollback) {
		t.Fatalf("reload with manifest serial 2 = %v; want ErrRollback", err)
	}
	sendImage(t, vc, b)
	if resp := vc.call(1, commitPDU); string(resp) != string(commitPDU) {
		t.Fatalf("commit of b under the manifest kept in force: answer % x", resp)
	}
	if n := plc.Unit(1).ProgramCommits(); n != 2 {
		t.Fatalf("PLC has %d commits; want 2", n)
	}
	state, err := os.ReadFile(filepath.Join(gw.Dir, "data", "firmware.state"))
	if err != nil || !strings.Contains(string(state), `"serial": 4`) {
		t.Fatalf("firmware state: %s %v; want serial 4", state, err)
	}
	waitAudit(t, gw, "the reload record naming the new manifest", func(r *auditRec) bool {
		return r.Type == "config.load" && r.Status == "reloaded" && strings.Contains(r.Detail, "firmware manifest serial 4, 2 approved images")
	})
	waitAudit(t, gw, "the rejected reload", func(r *auditRec) bool {
		return r.Type == "config.load" && r.Status == "rejected" && strings.Contains(r.Detail, "serial goes back")
	})
}
