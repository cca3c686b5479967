package scenario

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/brana-ot/brana/testbench/freeport"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// Source addresses of the two standard parties.
const (
	monitoringIP  = "127.0.0.1" // party "monitoring": read only
	engineeringIP = "127.0.0.2" // party "engineering": may write holding 100-119 of unit 1
)

// configHead starts every config; the audit log flushes often so that result
// records (queued, not waited for) show up quickly.
const configHead = `version: 1
gateway:
  name: "scenario test gateway"
  data_dir: data
audit:
  durability: batch
  sync_interval: 10ms
`

// partiesYAML are the two standard parties, identified by source address.
const partiesYAML = `
parties:
  - id: monitoring
    name: "Dispatch monitoring"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    networks: [127.0.0.1/32]
  - id: engineering
    name: "Protection engineer"
    organisation: "Servis Morava s.r.o."
    kind: integrator
    legal_name: "Servis Morava s.r.o."
    networks: [127.0.0.2/32]
    evidence:
      established_in: CZ
      management_in: [CZ]
      operates_from: [CZ]
      data_to: [CZ]
      reviewed_on: 2026-10-01
      review_by: 2099-12-31
`

// rulesYAML are the standard rules for a target named plc: monitoring reads
// everything, engineering reads and writes holding 100-119 of unit 1 with
// values 0..5000, and writes to unit 2 are closest to a rule that resets the
// connection when it refuses.
const rulesYAML = `
rules:
  - name: monitoring-read
    parties: [monitoring]
    targets: ["*"]
    classes: [read]
  - name: engineering-read
    parties: [engineering]
    targets: ["*"]
    classes: [read, diagnose]
  - name: feeder-setpoints
    parties: [engineering]
    targets: [plc]
    classes: [write]
    units: [1]
    ranges:
      holding: ["100-119"]
    values: {min: 0, max: 5000}
  - name: unit2-coils-reset
    parties: [engineering]
    targets: [plc]
    classes: [write]
    units: [2]
    ranges:
      coils: ["0-1"]
    reset: true
`

// tcpConfig is a gateway with one listener "scada" routing every unit to the
// Modbus TCP target "plc" at addr, with extra target settings (YAML lines
// indented by four spaces), the standard parties and rules.
func tcpConfig(addr, targetExtra string) string {
	return configHead + `
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc

targets:
  - name: plc
    transport: tcp
    address: ` + addr + "\n" + targetExtra + partiesYAML + rulesYAML
}

// startPLC serves a simulated PLC over Modbus TCP on 127.0.0.1:0 until the
// test ends.
func startPLC(t testing.TB, units map[byte]string) (*modbussim.PLC, string) {
	t.Helper()
	plc, err := modbussim.New(units)
	if err != nil {
		t.Fatal(err)
	}
	return plc, servePLC(t, plc, "127.0.0.1:0").addr
}

// plcServer is a simulated PLC's Modbus TCP endpoint that a test can stop
// (a PLC restart drops every connection) and count connections on.
type plcServer struct {
	addr     string
	accepted atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}
}

// servePLC serves plc over Modbus TCP on addr (port 0: a free port) until
// stop is called or the test ends.
func servePLC(t testing.TB, plc *modbussim.PLC, addr string) *plcServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &plcServer{addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := plc.ServeTCP(ctx, countingListener{ln, &s.accepted}); err != nil {
			t.Errorf("simulated PLC: %v", err)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection and waits; safe to call twice.
func (s *plcServer) stop() {
	s.cancel()
	<-s.done
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// setHolding writes holding registers of a simulated unit from addr on, as a
// local operator would (no request is counted).
func setHolding(t testing.TB, plc *modbussim.PLC, unit byte, addr uint16, vals ...uint16) {
	t.Helper()
	for i, v := range vals {
		if err := plc.Unit(unit).SetHoldingRegister(addr+uint16(i), v); err != nil {
			t.Fatal(err)
		}
	}
}

// markUnits puts recognisable values in holding 100..119 of each unit:
// unit*1000 + offset, so a shifted or misrouted answer shows at once.
func markUnits(t testing.TB, plc *modbussim.PLC) {
	t.Helper()
	for _, u := range plc.Units() {
		for i := range uint16(20) {
			setHolding(t, plc, u, 100+i, mark(u, 100+i))
		}
	}
}

// mark is the value markUnits puts in holding register addr (100..119) of unit.
func mark(unit byte, addr uint16) uint16 { return uint16(unit)*1000 + addr - 100 }

func marks(unit byte, addr, n uint16) []uint16 {
	out := make([]uint16, n)
	for i := range n {
		out[i] = mark(unit, addr+i)
	}
	return out
}

// --- PDUs and frames, built by hand ---

func pduReadHolding(addr, n uint16) []byte { return pdu(3, addr, n) }
func pduReadInput(addr, n uint16) []byte   { return pdu(4, addr, n) }
func pduWriteSingle(addr, v uint16) []byte { return pdu(6, addr, v) }

// pduWriteMultiple is FC 16 with a correct byte count.
func pduWriteMultiple(addr uint16, vals ...uint16) []byte {
	b := pdu(16, addr, uint16(len(vals)))
	b = append(b, byte(2*len(vals)))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// pdu is a function code followed by big-endian 16-bit words.
func pdu(fc byte, words ...uint16) []byte {
	b := []byte{fc}
	for _, w := range words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	return b
}

// frame is a Modbus TCP ADU with protocol id 0 and a correct length.
func frame(tx uint16, unit byte, p []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tx)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(p)))
	b = append(b, unit)
	return append(b, p...)
}

// registers decodes an FC 3/4 response PDU.
func registers(t testing.TB, resp []byte) []uint16 {
	t.Helper()
	if len(resp) < 2 || resp[0]&0x80 != 0 || int(resp[1]) != len(resp)-2 || resp[1]%2 != 0 {
		t.Fatalf("not a register read response: % x", resp)
	}
	out := make([]uint16, resp[1]/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(resp[2+2*i:])
	}
	return out
}

// --- a hand-built Modbus TCP client over a plain net.Conn ---

// rawConn is a Modbus TCP connection whose frames the test builds itself, so
// it can bind a source address and send malformed or pipelined frames.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	r  *bufio.Reader
	tx uint16
}

// dialFrom connects to addr from the source IP src (a party's address).
func dialFrom(t testing.TB, addr, src string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c), tx: 0x1000}
}

// source is how the gateway's audit log names this connection's client.
func (rc *rawConn) source() string { return rc.c.LocalAddr().String() }

func (rc *rawConn) write(b []byte) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one Modbus TCP ADU.
func (rc *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	hdr := make([]byte, 7)
	if _, err := io.ReadFull(rc.r, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[4:]))
	if n < 2 || n > 254 {
		return hdr, fmt.Errorf("response MBAP length %d", n)
	}
	rest := make([]byte, n-1)
	if _, err := io.ReadFull(rc.r, rest); err != nil {
		return nil, err
	}
	return append(hdr, rest...), nil
}

// call sends one request with a fresh transaction id and returns the answer's
// PDU, after checking that the answer echoes the transaction and unit ids.
func (rc *rawConn) call(unit byte, p []byte) []byte {
	rc.t.Helper()
	rc.tx++
	rc.write(frame(rc.tx, unit, p))
	return rc.expect(rc.tx, unit, 5*time.Second)
}

// timedCall is call that also says how long the answer took.
func (rc *rawConn) timedCall(unit byte, p []byte) ([]byte, time.Duration) {
	rc.t.Helper()
	t0 := time.Now()
	resp := rc.call(unit, p)
	return resp, time.Since(t0)
}

// expect reads one answer and checks its MBAP header against tx and unit.
func (rc *rawConn) expect(tx uint16, unit byte, timeout time.Duration) []byte {
	rc.t.Helper()
	f, err := rc.readFrame(timeout)
	if err != nil {
		rc.t.Fatalf("reading the answer to transaction %#04x: %v", tx, err)
	}
	if got := binary.BigEndian.Uint16(f); got != tx {
		rc.t.Fatalf("answer has transaction id %#04x, want %#04x (frame % x)", got, tx, f)
	}
	if f[2] != 0 || f[3] != 0 {
		rc.t.Fatalf("answer has protocol id % x", f[2:4])
	}
	if f[6] != unit {
		rc.t.Fatalf("answer has unit %d, want %d", f[6], unit)
	}
	return f[7:]
}

// expectClosed checks that the peer closes the connection (EOF or reset)
// without sending anything more.
func (rc *rawConn) expectClosed(timeout time.Duration) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(rc.r)
	if len(b) > 0 {
		rc.t.Errorf("got % x before the close, want nothing", b)
	}
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		rc.t.Fatalf("connection still open after %v", timeout)
	default:
		rc.t.Fatalf("waiting for the close: %v", err)
	}
}

// expectException checks that resp is exception code for function fc.
func expectException(t testing.TB, resp []byte, fc, code byte) {
	t.Helper()
	if want := []byte{fc | 0x80, code}; !slices.Equal(resp, want) {
		t.Fatalf("answer % x, want exception % x", resp, want)
	}
}

// --- simonvetter/modbus, an independent client ---

var quiet = log.New(io.Discard, "", 0)

// svClient opens a simonvetter/modbus TCP client to addr (from 127.0.0.1).
func svClient(t testing.TB, addr string, unit byte) *mb.ModbusClient {
	t.Helper()
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatalf("simonvetter client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetUnitId(unit); err != nil {
		t.Fatal(err)
	}
	return c
}

// --- the audit log ---

// auditRec is one audit record as an auditor's tool would read it.
type auditRec struct {
	Seq        uint64   `json:"seq"`
	Time       string   `json:"time"`
	Type       string   `json:"type"`
	Session    string   `json:"session"`
	Cmd        uint64   `json:"cmd"`
	Party      string   `json:"party"`
	PartyName  string   `json:"party_name"`
	Org        string   `json:"org"`
	Source     string   `json:"source"`
	Listener   string   `json:"listener"`
	Target     string   `json:"target"`
	Unit       *int     `json:"unit"`
	FC         *int     `json:"fc"`
	Class      string   `json:"class"`
	ReadTable  string   `json:"read_table"`
	ReadAddr   *int     `json:"read_addr"`
	ReadCount  *int     `json:"read_count"`
	WriteTable string   `json:"write_table"`
	WriteAddr  *int     `json:"write_addr"`
	WriteCount *int     `json:"write_count"`
	Values     []uint16 `json:"values"`
	NValues    int      `json:"n_values"`
	Decision   string   `json:"decision"`
	Rule       string   `json:"rule"`
	Reason     string   `json:"reason"`
	Exception  int      `json:"exception"`
	Status     string   `json:"status"`
	LatencyUS  int64    `json:"latency_us"`
	Retries    int      `json:"retries"`
	Detail     string   `json:"detail"`
	Grant      string   `json:"grant"`
	Service    string   `json:"service"`
	Items      []struct {
		Node     string `json:"node"`
		Attr     string `json:"attr"`
		Range    string `json:"range"`
		Value    string `json:"value"`
		Class    string `json:"class"`
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
		Status   string `json:"status"`
	} `json:"items"`
	NItems int `json:"n_items"`

	line int // 0-based line in the file
}

func (r *auditRec) String() string {
	b, _ := json.Marshal(r)
	return fmt.Sprintf("line %d: %s", r.line, b)
}

func (r *auditRec) unit() int { return deref(r.Unit) }
func (r *auditRec) fc() int   { return deref(r.FC) }

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// readAudit parses every complete line of the audit file.
func readAudit(t testing.TB, path string) []auditRec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []auditRec
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasSuffix(line, "\n") {
			break // a batch being written
		}
		var r auditRec
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %d is not JSON: %v\n%s", i+1, err, line)
		}
		r.line = i
		out = append(out, r)
	}
	return out
}

// waitAudit waits until the audit log has a record that match accepts and
// returns the first such record.
func waitAudit(t testing.TB, gw *gwtest.Gateway, what string, match func(*auditRec) bool) auditRec {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := readAudit(t, gw.AuditPath())
		for i := range recs {
			if match(&recs[i]) {
				return recs[i]
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i := range recs {
				b.WriteString(recs[i].String())
				b.WriteByte('\n')
			}
			t.Fatalf("no audit record for %s; the log has:\n%s", what, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// commandFrom matches a command record of the client at source with function code fc.
func commandFrom(source string, fc int) func(*auditRec) bool {
	return func(r *auditRec) bool { return r.Type == "command" && r.Source == source && r.fc() == fc }
}

// resultOf matches the result record of command seq.
func resultOf(seq uint64) func(*auditRec) bool {
	return func(r *auditRec) bool { return r.Type == "result" && r.Cmd == seq }
}

// --- external tools ---

// needTool skips the test when an external tool is missing, or fails it when
// the environment variable CI is set.
func needTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s %s: %v %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") != "" {
		t.Fatalf("test dependency missing in CI: %s", msg)
	}
	t.Skipf("test dependency missing (%s); run `make test-deps`", msg)
}
