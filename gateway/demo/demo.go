// Package demo runs `brana demo`: simulated PLCs and a gateway with a
// built-in config, all on loopback, and tells a newcomer what to try.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/passhash"
	"github.com/brana-ot/brana/testbench/lab"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// Ports of the demo (DESIGN.md contract).
const (
	GatewayModbus = "127.0.0.1:5020"
	GatewaySSH    = "127.0.0.1:2222"
	FirstPLC      = "127.0.0.1:15020"
	GatewayOPCUA  = "127.0.0.1:4841"  // 4840 is left to the vendor's end of the SSH tunnel
	OPCUAPLC      = "127.0.0.1:15022" // after the two Modbus PLCs
	Console       = "127.0.0.1:8443"
)

// Engineer is the demo's console account; its password is made at each start.
const Engineer = "engineer"

// Plant is what the demo simulates: the Modbus PLCs and the OPC UA feeder.
type Plant struct {
	*lab.Lab
	OPCUA *opcuasim.PLC
}

// Options for Run.
type Options struct {
	Dir         string // working directory for config and audit log
	Out         io.Writer
	Log         *slog.Logger
	GatewayAdr  string                         // default GatewayModbus; tests use 127.0.0.1:0
	PLCAdr      string                         // default FirstPLC
	SSHAdr      string                         // default GatewaySSH
	OPCUAAdr    string                         // default GatewayOPCUA
	OPCUAPLCAdr string                         // default OPCUAPLC
	ConsoleAdr  string                         // default Console
	Ready       func(*gateway.Gateway, *Plant) // called once the instructions are printed
}

// Config is the demo's config file: %[1]s and %[2]s are the PLC addresses,
// %[3]s the gateway's Modbus address, %[4]s its SSH address, %[5]s and %[6]s
// the public keys of the demo vendors (PRC-managed, German), %[7]s the OPC UA
// PLC's endpoint, %[8]s the gateway's OPC UA address and %[9]s its console's.
const Config = `# brana demo config: written by 'brana demo'; edit and run with 'brana run -c FILE'.
version: 1
gateway:
  name: "Demo substation Lhota 110/22 kV"
  data_dir: data
audit:
  durability: batch

listeners:
  - name: scada
    protocol: modbus
    address: %[3]s
    routes:
      - units: [1]
        target: feeder-plc
      - units: [2]
        target: pump-station
        target_unit: 1
  - name: opc-lab
    protocol: opcua               # brana's own secured endpoint; vendors also come through SSH (security None inside it)
    address: %[8]s
    target: line-opc
    policies: [Basic256Sha256]    # no None: a client certificate brana trusts, and an encrypted channel
    modes: [SignAndEncrypt]
    identities: [username, anonymous]   # anonymous: the party of the source address
    users: opcua-users.yaml       # the demo user anna (party vendor-de); her password is printed once at start

targets:
  - name: feeder-plc
    description: "22 kV feeder bay protection and control"
    transport: tcp
    address: %[1]s
    timeout: 1s
  - name: pump-station
    description: "Water pumping station PLC"
    transport: tcp
    address: %[2]s
    timeout: 1s
  - name: line-opc
    description: "22 kV feeder bay, OPC UA server"
    protocol: opcua
    endpoint: %[7]s

parties:
  - id: monitoring
    name: "Dispatch monitoring"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    networks: [127.0.0.1/32]
  - id: engineering
    name: "Protection engineer workstation"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    networks: [127.0.0.2/32]
  - id: vendor-prc
    name: "Li Wei, service engineer"
    organisation: "Shenzhen Example Automation Co., Ltd."
    legal_name: "Shenzhen Example Automation Co., Ltd."
    kind: vendor
    networks: [127.0.0.3/32]
    ssh_keys: ["%[5]s"]
    evidence:
      established_in: CN
      controlled_by: [example-holdings]
      management_in: [CN]
      operates_from: [CN]
      data_to: [CN]
      reviewed_on: 2026-11-01
      review_by: 2027-05-01
  - id: example-holdings
    name: "Example Holdings"
    legal_name: "Example Holdings Ltd."
    kind: owner
    evidence:
      established_in: HK
  - id: vendor-de
    name: "Anna Schmidt, service engineer"
    organisation: "Beispiel Schutztechnik GmbH"
    legal_name: "Beispiel Schutztechnik GmbH"
    kind: vendor
    networks: [127.0.0.4/32]
    ssh_keys: ["%[6]s"]
    opcua_users: [anna]
    evidence:
      established_in: DE
      management_in: [DE]
      operates_from: [DE, CZ]
      data_to: [DE]
      reviewed_on: 2026-11-01
      review_by: 2027-05-01

rules:
  - name: monitoring-read
    description: "Dispatch may read every Modbus PLC and change nothing on them."
    parties: [monitoring]
    targets: ["*"]
    classes: [read]
  - name: engineering-read
    parties: [engineering]
    targets: ["*"]
    classes: [read, diagnose]
  - name: feeder-setpoints
    description: "Setpoint window 100-119 of the feeder, values 0..5000."
    parties: [engineering]
    targets: [feeder-plc]
    classes: [write]
    units: [1]
    ranges:
      holding: ["100-119"]
    values: {min: 0, max: 5000}
  - name: vendor-maintenance
    description: "Vendors may read and tune the feeder's setpoints; PRC-managed ones only under a grant."
    parties: [vendor-prc, vendor-de]
    targets: [feeder-plc]
    classes: [read, write]
    ranges:
      holding: ["0-119"]
      input: ["0-31"]
      coils: ["0-15"]
      discrete: ["0-15"]
    values: {min: 0, max: 5000}
  # OPC UA rules name nodes, not registers; only rules with an opcua section
  # apply to an OPC UA target, so monitoring-read above does not reach line-opc.
  - name: opc-read
    description: "Browse, read and subscribe to the feeder's own nodes."
    parties: [monitoring, vendor-prc, vendor-de]
    targets: [line-opc]
    classes: [read]
    opcua: {namespace: "urn:brana:testbench:feeder"}
  - name: opc-read-ns0
    description: "Namespace 0: server status and namespace table, which every client reads on connect."
    parties: [monitoring, vendor-prc, vendor-de]
    targets: [line-opc]
    classes: [read]
    opcua: {namespace: "http://opcfoundation.org/UA/"}
  - name: opc-pickup
    description: "The one OPC UA write: the feeder's overcurrent pickup."
    parties: [monitoring, vendor-prc, vendor-de]
    targets: [line-opc]
    classes: [write]
    opcua:
      namespace: "urn:brana:testbench:feeder"
      nodes: ["s=Feeder.Protection.OvercurrentPickup"]

admin:
  accounts: accounts.yaml         # two demo approvers and the console's engineer; passwords are printed once at start

console:
  listen: %[9]s         # the engineer console (HTTPS); it logs in the accounts above
  # certificate: data/keys/console.pem   # the default: self-signed at first start, its fingerprint printed

ssh:
  listen: %[4]s            # vendors: ssh -N -L 1502:feeder-plc:502 -L 4840:line-opc:4840 vendor@127.0.0.1 -p 2222
  hold_for: 2m
`

// Run writes the demo config, starts the simulated PLCs and the gateway, prints
// how to connect, and runs until ctx is done.
func Run(ctx context.Context, o Options) error {
	if o.GatewayAdr == "" {
		o.GatewayAdr = GatewayModbus
	}
	if o.PLCAdr == "" {
		o.PLCAdr = FirstPLC
	}
	if o.SSHAdr == "" {
		o.SSHAdr = GatewaySSH
	}
	if o.OPCUAAdr == "" {
		o.OPCUAAdr = GatewayOPCUA
	}
	if o.OPCUAPLCAdr == "" {
		o.OPCUAPLCAdr = OPCUAPLC
	}
	if o.ConsoleAdr == "" {
		o.ConsoleAdr = Console
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	plant, err := lab.Start(ctx, o.PLCAdr, []string{"feeder", "pump"})
	if err != nil {
		return err
	}
	defer plant.Wait()
	defer cancel()
	opc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://" + o.OPCUAPLCAdr, Model: "feeder", Logger: o.Log})
	if err != nil {
		return err
	}
	defer opc.Close()
	if err := opc.Start(ctx); err != nil {
		return err
	}
	sim := &Plant{Lab: plant, OPCUA: opc}

	passwords, err := writeAccounts(filepath.Join(o.Dir, "accounts.yaml"))
	if err != nil {
		return err
	}
	if passwords["anna"], err = WriteOPCUAUsers(filepath.Join(o.Dir, "opcua-users.yaml")); err != nil {
		return err
	}
	prcKey, err := VendorKey(filepath.Join(o.Dir, "vendor-prc_ed25519"), "li.wei@shenzhen-example")
	if err != nil {
		return err
	}
	deKey, err := VendorKey(filepath.Join(o.Dir, "vendor-de_ed25519"), "anna.schmidt@beispiel")
	if err != nil {
		return err
	}
	file := filepath.Join(o.Dir, "brana.yaml")
	text := fmt.Sprintf(Config, plant.Sims[0].Addr, plant.Sims[1].Addr, o.GatewayAdr, o.SSHAdr, prcKey, deKey,
		opc.Endpoint(), o.OPCUAAdr, o.ConsoleAdr)
	if err := os.WriteFile(file, []byte(text), 0o640); err != nil {
		return err
	}
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	g, err := gateway.New(cfg, o.Log)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	printHelp(o.Out, g, sim, file, passwords)
	if o.Ready != nil {
		o.Ready(g, sim)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return <-done
	}
}

func printHelp(w io.Writer, g *gateway.Gateway, plant *Plant, file string, pw map[string]string) {
	sshHost, sshPort, _ := net.SplitHostPort(g.SSHAddr().String())
	addr := g.Addr("scada").String()
	host, port, _ := strings.Cut(addr, ":")
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	fmt.Fprintf(w, `brana demo is running (Ctrl-C stops everything).

  Modbus gateway        %[1]s   unit 1 = feeder bay, unit 2 = pumping station
  OPC UA gateway        %[15]s   the feeder bay's OPC UA server (target line-opc)
%[4]s  config                %[5]s
  audit log             %[6]s

The engineer console: %[19]s
  log in as "%[21]s" with the password %[20]s (made for this demo run only)
  the browser warns about the self-signed certificate: accept it only if its SHA-256 fingerprint is
    %[22]s

Connections from 127.0.0.1 are the party "monitoring" (reads Modbus, writes nothing there);
from 127.0.0.2 the party "engineering" (may write feeder setpoints 100-119).

Try, from another terminal (apt-get install mbpoll):
  read the feeder's protection setpoints:
    mbpoll -m tcp -p %[3]s -a 1 -r 1 -c 10 -1 %[2]s
  read the feeder's phase currents and voltages (input registers):
    mbpoll -m tcp -p %[3]s -a 1 -t 3 -r 1 -c 8 -1 %[2]s
  read the pumping station's tank level and flow:
    mbpoll -m tcp -p %[3]s -a 2 -t 3 -r 1 -c 4 -1 %[2]s
  try to change a setpoint as "monitoring" (refused with exception 01, never reaches the PLC):
    mbpoll -m tcp -p %[3]s -a 1 -r 101 %[2]s 500
  see both in the audit log:
    tail -n 5 %[6]s
  ask the policy why:
    go run ./cmd/brana policy explain -c %[5]s --party monitoring --target feeder-plc --op write:holding:100=500@1
    go run ./cmd/brana policy explain -c %[5]s --party engineering --target feeder-plc --op write:holding:100=500@1

Jurisdiction (NÚKIB 2025): 127.0.0.3 is "vendor-prc", a vendor established in CN and owned from HK;
127.0.0.4 is "vendor-de", established in Germany. Both may tune the feeder by the rules, but the
PRC-managed one only under a grant that two engineers approved:
  read as vendor-de (admitted by the rules at once):
    /usr/bin/python3 -c 'from pymodbus.client import ModbusTcpClient as C; c=C("%[2]s",port=%[3]s,source_address=("127.0.0.4",0)); c.connect(); print(c.read_holding_registers(0,4,slave=1))'
  the same as vendor-prc: held, answered "busy" (06), and an access request is made for it:
    /usr/bin/python3 -c 'from pymodbus.client import ModbusTcpClient as C; c=C("%[2]s",port=%[3]s,source_address=("127.0.0.3",0)); c.connect(); print(c.read_holding_registers(0,4,slave=1))'
  see the request and its evidence, then approve it as two different engineers:
    export BRANA_SOCKET=%[7]s
    BRANA_USER=alice BRANA_PASSWORD=%[8]s go run ./cmd/brana requests list
    BRANA_USER=alice BRANA_PASSWORD=%[8]s go run ./cmd/brana requests approve ID --for 30m
    BRANA_USER=bob BRANA_PASSWORD=%[9]s go run ./cmd/brana requests approve ID
  then the vendor-prc read above passes; revoke ends the session at once:
    BRANA_USER=bob BRANA_PASSWORD=%[9]s go run ./cmd/brana requests revoke ID --note "done"

Vendors with nothing but OpenSSH (keys written next to the config; the host key is %[10]s):
  the German vendor opens a tunnel and reads through it:
    ssh -i %[11]s -p %[12]s -N -L 1502:feeder-plc:502 vendor@%[13]s
    mbpoll -m tcp -p 1502 -a 1 -r 1 -c 4 -1 127.0.0.1
  the PRC-managed vendor asks for access and checks on it; its tunnel is held until approved:
    ssh -i %[14]s -p %[12]s vendor@%[13]s request feeder-plc --classes read,write --for 1h --reason TKT-1234
    ssh -i %[14]s -p %[12]s vendor@%[13]s status
    ssh -i %[14]s -p %[12]s -N -L 1503:feeder-plc:502 vendor@%[13]s

OPC UA on %[15]s is brana's own endpoint: Basic256Sha256 SignAndEncrypt, no None.
The user "anna" (password %[17]s) is the party "vendor-de"; anonymous sessions are
the party of their source address (127.0.0.1: "monitoring"). Both may read the feeder's namespace
%[16]s and namespace 0, and write Feeder.Protection.OvercurrentPickup and nothing else;
any other write is answered Bad_UserAccessDenied and never reaches the PLC.
The test client runs from the repository after 'make test-deps':
    export BRANA_OPCUA_SECURITY=Basic256Sha256:SignAndEncrypt BRANA_OPCUA_PKI=%[18]s
    export BRANA_OPCUA_USER=anna BRANA_OPCUA_PASSWORD=%[17]s   # leave these out for anonymous
    node testbench/nodeopcua/client.js %[15]s '[{"op":"read","nodeId":"nsu=%[16]s;s=Feeder.Protection.OvercurrentPickup"}]'
  the first run is refused: brana trusts client certificates one by one, and keeps an unknown one for review.
  Trust it (PREFIX: 8 or more digits of its thumbprint), then the same command reads:
    go run ./cmd/brana opcua trust list rejected -c %[5]s
    go run ./cmd/brana opcua trust PREFIX -c %[5]s
  the allowed write, then a denied one (Feeder.Protection.TimeDelay: Bad_UserAccessDenied):
    node testbench/nodeopcua/client.js %[15]s '[{"op":"write","nodeId":"nsu=%[16]s;s=Feeder.Protection.OvercurrentPickup","dataType":"Double","value":450}]'
    node testbench/nodeopcua/client.js %[15]s '[{"op":"write","nodeId":"nsu=%[16]s;s=Feeder.Protection.TimeDelay","dataType":"Double","value":7}]'
  the German vendor through its SSH tunnel (security None inside it), then any OPC UA client on opc.tcp://127.0.0.1:4840:
    ssh -i %[11]s -p %[12]s -N -L 4840:line-opc:4840 vendor@%[13]s
    BRANA_OPCUA_SECURITY=None BRANA_OPCUA_USER= node testbench/nodeopcua/client.js opc.tcp://127.0.0.1:4840 '[{"op":"browse","path":"Feeder","namespace":"%[16]s"}]'
  each request is in the audit log, per node with its decision (a denial names the rule that came closest):
    tail -n 5 %[6]s
(the approvers' and anna's passwords are for this demo run only)

`, addr, host, port, describe(plant), file, g.AuditPath(), g.AdminSocket(), pw["alice"], pw["bob"],
		g.SSHHostKey(), filepath.Join(filepath.Dir(file), "vendor-de_ed25519"), sshPort, sshHost,
		filepath.Join(filepath.Dir(file), "vendor-prc_ed25519"), "opc.tcp://"+g.Addr("opc-lab").String(),
		plant.OPCUA.NamespaceURI(), pw["anna"], filepath.Join(filepath.Dir(file), "opcua-client"),
		"https://"+g.ConsoleAddr().String()+"/", pw[Engineer], Engineer, g.ConsoleFingerprint())
}

// VendorKey writes a new ed25519 key pair (OpenSSH format, private key 0600)
// to path and path.pub, and returns the public key's authorized_keys line.
func VendorKey(path, comment string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))) + " " + comment
	return line, os.WriteFile(path+".pub", []byte(line+"\n"), 0o644)
}

// writeAccounts makes two demo approvers and the console's engineer with
// fresh random passwords, which live only as long as this demo run.
func writeAccounts(path string) (map[string]string, error) {
	pw := map[string]string{}
	var b strings.Builder
	b.WriteString("# demo approvers and the console's engineer, written by 'brana demo'\naccounts:\n")
	for _, u := range []struct{ user, name string }{{"alice", "Alice Nováková, engineer on duty"}, {"bob", "Bob Dvořák, protection engineer"},
		{Engineer, "Eva Horáková, engineer at the console"}} {
		var raw [9]byte
		rand.Read(raw[:])
		p := base64.RawURLEncoding.EncodeToString(raw[:])
		h, err := passhash.New(p)
		if err != nil {
			return nil, err
		}
		pw[u.user] = p
		fmt.Fprintf(&b, "  - {user: %s, name: %q, roles: [approver], hash: %q}\n", u.user, u.name, h)
	}
	return pw, os.WriteFile(path, []byte(b.String()), 0o600)
}

// WriteOPCUAUsers writes the users file of the demo's OPC UA endpoint: the
// user anna with a fresh random password, which it returns.
func WriteOPCUAUsers(path string) (string, error) {
	var raw [9]byte
	rand.Read(raw[:])
	p := base64.RawURLEncoding.EncodeToString(raw[:])
	h, err := passhash.New(p)
	if err != nil {
		return "", err
	}
	text := fmt.Sprintf("# the demo's OPC UA user, written by 'brana demo'; opcua_users binds anna to vendor-de\nusers:\n  - {user: anna, hash: %q}\n", h)
	return p, os.WriteFile(path, []byte(text), 0o600)
}

func describe(plant *Plant) string {
	var b strings.Builder
	plant.Describe(&b)
	fmt.Fprintf(&b, "  simulated %-8s PLC  opc ua     %s  namespace %s\n", plant.OPCUA.Model(), plant.OPCUA.Endpoint(), plant.OPCUA.NamespaceURI())
	return b.String()
}
