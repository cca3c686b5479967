package scenario

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/console"
	"github.com/brana-ot/brana/gateway/demo"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/testbench/nodeopcua"
)

// The README's promise: with `brana demo` running, mbpoll reads registers
// through the gateway; a write by the read-only party gets exception 01, the
// simulator's write counter stays 0, and both are in the audit file with
// party, rule and decision. Over OPC UA the endpoint offers Basic256Sha256
// SignAndEncrypt only; the demo user's client is refused until its
// certificate is trusted, then reads the feeder and writes its overcurrent
// pickup, and any other write is Bad_UserAccessDenied. The engineer console
// answers over HTTPS with the printed certificate, and the printed one-time
// password logs the engineer in.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	ready := make(chan struct{})
	var gw *gateway.Gateway
	var plant *demo.Plant
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{
			Dir: dir, Out: &out, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			GatewayAdr: "127.0.0.1:0", PLCAdr: "127.0.0.1:0", SSHAdr: "127.0.0.1:0",
			OPCUAAdr: "127.0.0.1:0", OPCUAPLCAdr: "127.0.0.1:0", ConsoleAdr: "127.0.0.1:0",
			Ready: func(g *gateway.Gateway, p *demo.Plant) { gw, plant = g, p; close(ready) },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("demo stopped with %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("demo did not start: %v", err)
	case <-time.After(90 * time.Second):
		// First start makes keys and certificates and hashes passwords,
		// which under -race on a loaded machine takes a while.
		t.Fatal("demo did not start in 90s")
	}
	t.Run("modbus", func(t *testing.T) { demoModbus(t, gw, plant, out.String()) })
	t.Run("opcua", func(t *testing.T) { demoOPCUA(t, gw, plant, dir, out.String()) })
	t.Run("console", func(t *testing.T) { demoConsole(t, gw, out.String()) })
}

// The console answers over HTTPS with the certificate whose fingerprint the
// demo printed, and the printed one-time password logs the engineer in.
func demoConsole(t *testing.T, gw *gateway.Gateway, help string) {
	url := "https://" + gw.ConsoleAddr().String() + "/"
	m := regexp.MustCompile(`The engineer console: (\S+)\n  log in as "engineer" with the password (\S+) .*\n.*\n\s+([0-9A-F:]{95})\n`).FindStringSubmatch(help)
	if m == nil {
		t.Fatalf("the demo's instructions give no console URL, password and fingerprint:\n%s", help)
	}
	if m[1] != url || m[3] != gw.ConsoleFingerprint() {
		t.Fatalf("printed %s and %s; the console is at %s with %s", m[1], m[3], url, gw.ConsoleFingerprint())
	}
	var seen string
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the self-signed certificate is checked by its printed fingerprint instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = console.Fingerprint(cs.PeerCertificates[0].Raw)
			return nil
		}}}}
	resp, err := client.Get(url + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || seen != m[3] {
		t.Fatalf("GET /login: %s with certificate %s; want 200 with the printed %s", resp.Status, seen, m[3])
	}

	login := func(pw string) *http.Response {
		resp, err := client.PostForm(url+"login", neturl.Values{"username": {"engineer"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login(m[2] + "x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %s, want 401", resp.Status)
	}
	if resp := login(m[2]); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/requests" {
		t.Fatalf("login with the printed password: %s at %s, want the requests page", resp.Status, resp.Request.URL)
	}
	resp, err = client.Get(url + "api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who struct {
		User  string   `json:"user"`
		Roles []string `json:"roles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || resp.StatusCode != http.StatusOK || who.User != "engineer" || !slices.Contains(who.Roles, "approver") {
		t.Fatalf("whoami after login: %s %+v %v", resp.Status, who, err)
	}
}

func demoModbus(t *testing.T, gw *gateway.Gateway, plant *demo.Plant, help string) {
	needTool(t, "mbpoll", "-V")
	host, port, _ := net.SplitHostPort(gw.Addr("scada").String())

	read, err := exec.Command("mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "1", "-c", "10", "-1", host).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll read: %v\n%s", err, read)
	}
	feeder := plant.Sims[0].PLC.Unit(1)
	for i := 0; i < 4; i++ {
		want := "[" + strconv.Itoa(i+1) + "]: \t" + strconv.Itoa(int(feeder.HoldingRegister(uint16(i))))
		if !strings.Contains(string(read), want) {
			t.Errorf("mbpoll output lacks %q:\n%s", want, read)
		}
	}

	write, _ := exec.Command("mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "101", host, "500").CombinedOutput()
	if !strings.Contains(string(write), "Illegal function") {
		t.Fatalf("mbpoll write was not refused with exception 01:\n%s", write)
	}
	if n := plant.Sims[0].PLC.Counters().Writes(1); n != 0 {
		t.Fatalf("the simulated feeder saw %d writes; want 0", n)
	}

	path := gw.AuditPath()
	var allowed, denied bool
	deadline := time.Now().Add(5 * time.Second)
	for !(allowed && denied) && time.Now().Before(deadline) {
		for _, r := range readAudit(t, path) {
			if r.Type != "command" || r.Party != "monitoring" || r.PartyName == "" || r.Rule != "monitoring-read" {
				continue
			}
			allowed = allowed || (r.fc() == 3 && r.Decision == "allow")
			denied = denied || (r.Class == "write" && r.Decision == "deny" && r.Exception == 1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !allowed || !denied {
		t.Fatalf("audit file lacks the allowed read (%v) or the denied write (%v)", allowed, denied)
	}
	for _, w := range []string{"mbpoll -m tcp -p " + port, "policy explain"} {
		if !strings.Contains(help, w) {
			t.Errorf("the demo's instructions lack %q", w)
		}
	}
}

func demoOPCUA(t *testing.T, gw *gateway.Gateway, plant *demo.Plant, dir, help string) {
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	for _, w := range []string{"client.js " + endpoint, "-L 4840:line-opc:4840", "Bad_UserAccessDenied",
		"brana opcua trust list rejected", "brana opcua trust PREFIX", "BRANA_OPCUA_SECURITY=Basic256Sha256:SignAndEncrypt"} {
		if !strings.Contains(help, w) {
			t.Errorf("the demo's instructions lack %q", w)
		}
	}
	pw := regexp.MustCompile(`BRANA_OPCUA_USER=anna BRANA_OPCUA_PASSWORD=(\S+)`).FindStringSubmatch(help)
	if pw == nil {
		t.Fatalf("the demo's instructions give no password for anna:\n%s", help)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := gopcua.GetEndpoints(ctx, endpoint)
	if err != nil || len(eps) == 0 {
		t.Fatalf("GetEndpoints on %s: %d endpoints, %v", endpoint, len(eps), err)
	}
	for _, ep := range eps {
		if ep.SecurityPolicyURI != ua.SecurityPolicyURIBasic256Sha256 || ep.SecurityMode != ua.MessageSecurityModeSignAndEncrypt {
			t.Errorf("the demo offers %s %s; want Basic256Sha256 SignAndEncrypt only", ep.SecurityPolicyURI, ep.SecurityMode)
		}
	}

	nodeopcua.Require(t)
	ns := plant.OPCUA.NamespaceURI()
	pickup := "nsu=" + ns + ";s=Feeder.Protection.OvercurrentPickup"
	read := []nodeopcua.Op{{"op": "read", "nodeId": pickup}}
	anna := nodeopcua.ClientOptions{Security: "Basic256Sha256:SignAndEncrypt", User: "anna", Password: pw[1], PKIDir: t.TempDir()}

	// The printed two steps: the first run is refused and leaves the
	// client's certificate in rejected/; trusting it by a prefix of its
	// thumbprint lets the same command through.
	if _, err := runSecure(t, endpoint, read, anna, 60*time.Second); err == nil {
		t.Fatal("an untrusted client certificate opened a session")
	}
	der, err := nodeopcua.ClientCertificate(anna.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := opcuatrust.Open(filepath.Join(dir, "data", "opcua-pki"))
	if err != nil {
		t.Fatal(err)
	}
	thumb := opcuatrust.Thumbprint(der)
	rejected, _ := store.List(opcuatrust.Rejected)
	if !slices.ContainsFunc(rejected, func(e opcuatrust.Entry) bool { return e.Thumbprint == thumb }) {
		t.Fatalf("the refused certificate %s is not in rejected/: %v", thumb, rejected)
	}
	if _, err := store.Trust(thumb[:10]); err != nil {
		t.Fatal(err)
	}

	res, err := runSecure(t, endpoint, []nodeopcua.Op{
		{"op": "read", "nodeId": pickup},
		{"op": "write", "nodeId": pickup, "dataType": "Double", "value": 450},
		{"op": "write", "nodeId": "nsu=" + ns + ";s=Feeder.Protection.TimeDelay", "dataType": "Double", "value": 7},
		{"op": "read", "nodeId": pickup},
	}, anna, 60*time.Second)
	if err != nil {
		t.Fatalf("anna, once her client is trusted: %v", err)
	}
	if res[0].StatusCode != "Good" || res[0].DataType != "Double" {
		t.Errorf("read of the overcurrent pickup: %+v", res[0])
	}
	if res[1].StatusCode != "Good" {
		t.Errorf("write of the overcurrent pickup: %+v", res[1])
	}
	if res[2].StatusCode != "BadUserAccessDenied" {
		t.Errorf("write of the time delay: %+v, want BadUserAccessDenied", res[2])
	}
	if v, _ := res[3].Value.(float64); v != 450 {
		t.Errorf("overcurrent pickup after the write: %+v, want 450", res[3])
	}
	if n := plant.OPCUA.WritesTo("Feeder.Protection.TimeDelay"); n != 0 {
		t.Errorf("the simulated feeder saw %d writes to TimeDelay; want 0", n)
	}
	if n := plant.OPCUA.WritesTo("Feeder.Protection.OvercurrentPickup"); n != 1 {
		t.Errorf("the simulated feeder saw %d writes to OvercurrentPickup; want 1", n)
	}

	// Anonymous: the party of the source address, 127.0.0.1's monitoring.
	anon := anna
	anon.User, anon.Password = "", ""
	if res, err := runSecure(t, endpoint, read, anon, 60*time.Second); err != nil || res[0].StatusCode != "Good" {
		t.Errorf("anonymous read: %v %+v", err, res)
	}

	var session, anonymous, readOK, allowed, denied bool
	deadline := time.Now().Add(5 * time.Second)
	for !(session && anonymous && readOK && allowed && denied) && time.Now().Before(deadline) {
		for _, r := range readAudit(t, gw.AuditPath()) {
			if r.Type == "session.open" && r.Listener == "opc-lab" {
				session = session || r.Party == "vendor-de" && strings.Contains(r.Detail, "opc ua user anna") &&
					strings.Contains(r.Detail, "Basic256Sha256/SignAndEncrypt")
				anonymous = anonymous || r.Party == "monitoring"
			}
			if r.Type != "command" || r.Party != "vendor-de" || r.Target != "line-opc" || len(r.Items) != 1 {
				continue
			}
			it := r.Items[0]
			switch {
			case r.Service == "Read" && strings.Contains(it.Node, "Feeder.Protection.OvercurrentPickup"):
				readOK = readOK || r.Decision == "allow" && it.Decision == "allow"
			case r.Service == "Write" && strings.Contains(it.Node, "Feeder.Protection.OvercurrentPickup"):
				allowed = allowed || r.Decision == "allow" && it.Decision == "allow" && it.Value == "450"
			case r.Service == "Write" && strings.Contains(it.Node, "Feeder.Protection.TimeDelay"):
				denied = denied || r.Decision == "deny" && it.Value == "7" && it.Status == "BadUserAccessDenied" &&
					strings.Contains(r.Detail, "opc-pickup")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !session || !anonymous || !readOK || !allowed || !denied {
		var b strings.Builder
		for _, r := range readAudit(t, gw.AuditPath()) {
			if r.Target == "line-opc" || r.Listener == "opc-lab" {
				b.WriteString(r.String() + "\n")
			}
		}
		t.Errorf("audit file lacks anna's session (%v), the anonymous one as monitoring (%v), the read (%v), "+
			"the allowed write (%v) or the denied write (%v); it has:\n%s", session, anonymous, readOK, allowed, denied, b.String())
	}
}
