package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/nodeopcua"
)

// server_certificate pins the PLC's certificate. node-opcua is the PLC
// (Basic256Sha256 SignAndEncrypt, a user) behind three targets: pinned by
// its certificate file, pinned by its fingerprint as openssl prints it
// (upper case, colons), and pinned to another certificate. Through the
// first two the vendor reads; through the third the vendor's session is
// refused with Bad_NoCommunication as for a dead PLC, the audit log says
// target-certificate-mismatch with both fingerprints, and the PLC
// activates no session for it. gopcua is the vendor's client.
func TestOPCUAPinnedPLCCertificate(t *testing.T) {
	nodeopcua.Require(t)
	srv := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: "brana-gw", Password: "s3cret-plc-pw"})
	ns := srv.NamespaceURI()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plc.pw"), []byte(srv.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, err := srv.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "plc.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("the PLC's certificate is not PEM")
	}
	sum := sha256.Sum256(blk.Bytes)
	fp := hex.EncodeToString(sum[:])
	var openssl []string
	for _, b := range sum {
		openssl = append(openssl, fmt.Sprintf("%02X", b))
	}
	wrong := strings.Repeat("0f", 32)

	var listeners, targets strings.Builder
	for _, tg := range []struct{ name, pin string }{
		{"pin-file", certFile},
		{"pin-hex", "SHA256:" + strings.Join(openssl, ":")},
		{"pin-wrong", "sha256:" + wrong},
	} {
		fmt.Fprintf(&listeners, "  - name: %s\n    protocol: opcua\n    address: 127.0.0.1:0\n    target: %s\n", tg.name, tg.name)
		fmt.Fprintf(&targets, "  - name: %s\n    protocol: opcua\n    endpoint: %s\n    username: %s\n    password_file: %s\n"+
			"    server_certificate: %q\n    timeout: 5s\n", tg.name, srv.Endpoint(), srv.User(), filepath.Join(dir, "plc.pw"), tg.pin)
	}
	gw := gwtest.Start(t, configHead+"listeners:\n"+listeners.String()+"targets:\n"+targets.String()+partiesYAML+
		opcuaRules("monitoring", "pin-file, pin-hex, pin-wrong", ns))

	voltage := ua.MustParseNodeID(srv.NodeID("Feeder.Voltage"))
	read := func(listener string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := gopcua.NewClient("opc.tcp://"+gw.Addr(listener).String(), gopcua.SecurityMode(ua.MessageSecurityModeNone), gopcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if err := c.Connect(ctx); err != nil {
			return err
		}
		resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: voltage, AttributeID: ua.AttributeIDValue}}})
		if err != nil {
			return err
		}
		if len(resp.Results) != 1 || resp.Results[0].Status != ua.StatusOK {
			return fmt.Errorf("read Voltage: %+v", resp.Results)
		}
		return nil
	}
	sessions := func() int {
		n := 0
		for _, e := range srv.Events() {
			if e.Event == "session" {
				n++
			}
		}
		return n
	}

	if err := read("pin-wrong"); !errors.Is(err, ua.StatusBadNoCommunication) {
		t.Fatalf("session through the wrong pin: %v, want Bad_NoCommunication", err)
	}
	rec := waitAudit(t, gw, "the refusal for the certificate", func(r *auditRec) bool {
		return r.Type == "session.refused" && r.Target == "pin-wrong" && r.Reason == "target-certificate-mismatch"
	})
	for _, w := range []string{"sha256:" + wrong, "sha256:" + fp} {
		if !strings.Contains(rec.Detail, w) {
			t.Errorf("refusal detail %q does not name %s", rec.Detail, w)
		}
	}
	if n := sessions(); n != 0 {
		t.Fatalf("the PLC activated %d sessions for a target whose pin it does not match", n)
	}
	for _, l := range []string{"pin-file", "pin-hex"} {
		if err := read(l); err != nil {
			t.Fatalf("read through %s: %v", l, err)
		}
	}
	// server.js reports an activation on its own output, which may trail the answer.
	for deadline := time.Now().Add(5 * time.Second); sessions() < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := sessions(); n != 2 {
		t.Fatalf("the PLC activated %d sessions, want one per rightly pinned target", n)
	}
}
