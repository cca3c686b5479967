package scenario

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// A gateway killed with SIGKILL under write load, three times in a row, and
// restarted on the same data directory keeps an audit log that verifies, and
// every write that reached the PLC, in particular every write a client got a
// positive answer for, has its allowed command record: the write-ahead
// promise of batch durability (the record is in the file before the command
// is forwarded) survives a process crash.
//
// Each client owns one holding register and writes it with increasing values,
// alternating FC 6 and FC 16, so every write is identified by (register,
// value); a tap on the simulated PLC's connections records every write frame
// the PLC read, so what reached the plant is known exactly.
func TestCrashKillRestartAuditIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the real binary")
	}
	t0 := time.Now()
	bin := buildBrana(t)
	t.Logf("built brana in %v", time.Since(t0).Round(time.Millisecond))

	plc, err := modbussim.New(map[byte]string{1: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	plcAddr, tap := serveTappedPLC(t, plc)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "brana.yaml")
	if err := os.WriteFile(cfgFile, []byte(crashConfig(plcAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	auditDir := filepath.Join(dir, "data", "audit")
	pubFile := filepath.Join(dir, "data", "keys", "audit-signing.pub.pem")

	const (
		kills   = 3
		clients = 6
		minOK   = 300 // positive answers in a round before the kill may come
	)
	writers := make([]*crashWriter, clients)
	for i := range writers {
		writers[i] = &crashWriter{reg: 100 + uint16(i), next: 1, res: make(map[uint16]writeOutcome)}
	}
	runLoad := func(addr string, stop <-chan struct{}, oks *atomic.Int64) *sync.WaitGroup {
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() { w.round(addr, stop, oks) })
		}
		return &wg
	}

	for round := 0; round < kills; round++ {
		rs := time.Now()
		p := startBrana(t, bin, cfgFile)
		var oks atomic.Int64
		stop := make(chan struct{})
		wg := runLoad(p.addr, stop, &oks)
		deadline := time.Now().Add(8 * time.Second)
		for oks.Load() < minOK && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		// Kill in the middle of the load, at a random point of a batch.
		time.Sleep(100*time.Millisecond + time.Duration(rand.IntN(400_000))*time.Microsecond)
		p.kill(t)
		close(stop)
		wg.Wait()
		if n := oks.Load(); n < minOK {
			t.Fatalf("round %d: only %d positive answers before the kill; gateway log:\n%s", round, n, p.log.String())
		}
		t.Logf("round %d: killed after %d positive answers, %v", round, oks.Load(), time.Since(rs).Round(time.Millisecond))
		if round == 1 {
			// A crash of the machine (not just the process) can leave a
			// partial line; make sure the restart meets one at least once.
			tearTail(t, auditDir)
		}
	}

	// Restart: the gateway repairs the tail, serves, and stops cleanly.
	p := startBrana(t, bin, cfgFile)
	var oks atomic.Int64
	stop := make(chan struct{})
	wg := runLoad(p.addr, stop, &oks)
	deadline := time.Now().Add(5 * time.Second)
	for oks.Load() < 60 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if oks.Load() < 60 {
		t.Errorf("after the last restart only %d writes were answered", oks.Load())
	}
	p.terminate(t)

	// (a) The real `brana audit verify` accepts the log.
	out, err := exec.Command(bin, "audit", "verify", auditDir, "--pubkey", pubFile).CombinedOutput()
	t.Logf("brana audit verify: %s", bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("brana audit verify failed (%v):\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("signatures verified")) {
		t.Errorf("verify did not check signatures: %s", out)
	}

	recs := scanAudit(t, auditDir)
	allowed := make(map[writeKey]int) // allowed command records per write
	gaps := 0
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Type == "gap":
			gaps++
			t.Logf("gap record: %s", r.Detail)
		case r.Type == "command" && r.Decision == "allow" && r.unit() == 1 && r.WriteAddr != nil && len(r.Values) == 1:
			allowed[writeKey{fc: byte(r.fc()), reg: uint16(*r.WriteAddr), val: r.Values[0]}]++
		}
	}
	if gaps < 1 {
		t.Errorf("no gap record after restarting on a torn tail")
	}
	torn, _ := filepath.Glob(filepath.Join(auditDir, "torn-*.bin"))
	t.Logf("%d records, %d gap records, %d torn tails saved, %d allowed write commands", len(recs), gaps, len(torn), len(allowed))

	// (b) Every write that reached the PLC has its allowed command record,
	// and reached it once only.
	reached := make(map[writeKey]int)
	for _, w := range tap.snapshot() {
		if w.unit != 1 || len(w.vals) != 1 {
			t.Errorf("unexpected write at the PLC: %+v", w)
			continue
		}
		k := writeKey{fc: w.fc, reg: w.addr, val: w.vals[0]}
		reached[k]++
		if reached[k] == 2 {
			t.Errorf("write %v reached the PLC twice", k)
		}
		if allowed[k] == 0 {
			t.Errorf("write %v reached the PLC but has no allowed command record in the audit log", k)
		}
	}
	if n, m := uint64(len(tap.snapshot())), plc.Counters().Writes(1); n != m {
		t.Errorf("the tap saw %d writes, the PLC counted %d", n, m)
	}

	// (c) No record is lost for a write a client got a positive answer for;
	// such a write reached the PLC. Writes refused with exception 04 (the
	// audit log refused them) did not.
	var ok, unknown, refused int
	for _, w := range writers {
		for v, o := range w.res {
			k := writeKey{fc: fcFor(v), reg: w.reg, val: v}
			switch o.kind {
			case answeredOK:
				ok++
				if allowed[k] == 0 {
					t.Errorf("write %v was answered positively but its command record is lost", k)
				}
				if reached[k] == 0 {
					t.Errorf("write %v was answered positively but never reached the PLC", k)
				}
			case answeredException:
				refused++
				if o.code == 4 && reached[k] != 0 {
					t.Errorf("write %v was refused with exception 04 but reached the PLC", k)
				}
			case answeredOdd:
				t.Errorf("write %v: unexpected answer % x", k, o.pdu)
			default:
				unknown++
			}
		}
	}
	t.Logf("client writes: %d answered positively, %d with an exception, %d cut by a kill; %d reached the PLC; total %v",
		ok, refused, unknown, len(reached), time.Since(t0).Round(time.Millisecond))
}

// crashConfig is one listener routing to the PLC at plcAddr, with small
// segments (rotation and compression happen under the load) and frequent
// checkpoints, so kills land in all of those.
func crashConfig(plcAddr string) string {
	return `version: 1
gateway:
  name: "crash test gateway"
  data_dir: data
audit:
  durability: batch
  sync_interval: 20ms
  checkpoint_every: 200
  segment_max_size: 64KiB

listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc

targets:
  - name: plc
    transport: tcp
    address: ` + plcAddr + `
    connections: 4
    timeout: 2s
` + partiesYAML + `
rules:
  - name: setpoints
    parties: [engineering]
    targets: [plc]
    classes: [write]
    units: [1]
    ranges:
      holding: ["100-119"]
`
}

// --- what reached the PLC ---

// plcWrite is one write request frame the simulated PLC read.
type plcWrite struct {
	unit, fc byte
	addr     uint16
	vals     []uint16
}

// writeKey names one client write: function code, register and value.
type writeKey struct {
	fc  byte
	reg uint16
	val uint16
}

func (k writeKey) String() string { return fmt.Sprintf("FC %d holding %d = %d", k.fc, k.reg, k.val) }

// writeTap records every FC 6 and FC 16 frame a PLC reads.
type writeTap struct {
	mu     sync.Mutex
	writes []plcWrite
}

func (w *writeTap) snapshot() []plcWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]plcWrite(nil), w.writes...)
}

type tapListener struct {
	net.Listener
	tap *writeTap
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, tap: l.tap}, nil
}

// tapConn parses the Modbus TCP stream the PLC reads (one reader per
// connection) and records each write frame once it is complete.
type tapConn struct {
	net.Conn
	tap *writeTap
	buf []byte
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.buf = append(c.buf, b[:n]...)
		c.parse()
	}
	return n, err
}

func (c *tapConn) parse() {
	for len(c.buf) >= 7 {
		n := int(binary.BigEndian.Uint16(c.buf[4:]))
		if n < 2 || n > 254 {
			c.buf = nil // the PLC drops a connection it cannot frame
			return
		}
		if len(c.buf) < 6+n {
			return
		}
		unit, p := c.buf[6], c.buf[7:6+n]
		w := plcWrite{unit: unit, fc: p[0]}
		switch {
		case p[0] == 6 && len(p) == 5:
			w.addr = binary.BigEndian.Uint16(p[1:])
			w.vals = []uint16{binary.BigEndian.Uint16(p[3:])}
		case p[0] == 16 && len(p) >= 6:
			w.addr = binary.BigEndian.Uint16(p[1:])
			for i := 6; i+1 < len(p); i += 2 {
				w.vals = append(w.vals, binary.BigEndian.Uint16(p[i:]))
			}
		default:
			w.fc = 0
		}
		if w.fc != 0 {
			c.tap.mu.Lock()
			c.tap.writes = append(c.tap.writes, w)
			c.tap.mu.Unlock()
		}
		c.buf = c.buf[6+n:]
	}
}

// serveTappedPLC serves plc over Modbus TCP on a free loopback port until
// the test ends, recording every write frame it reads.
func serveTappedPLC(t testing.TB, plc *modbussim.PLC) (string, *writeTap) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &writeTap{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := plc.ServeTCP(ctx, tapListener{ln, tap}); err != nil {
			t.Errorf("simulated PLC: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), tap
}

// --- writer clients ---

type outcomeKind uint8

const (
	cutOff            outcomeKind = iota // no answer: the connection died
	answeredOK                           // the normal response
	answeredException                    // an exception response
	answeredOdd                          // anything else
)

type writeOutcome struct {
	kind outcomeKind
	code byte
	pdu  []byte
}

// fcFor is the function code a crashWriter uses for value v.
func fcFor(v uint16) byte {
	if v%2 == 0 {
		return 16
	}
	return 6
}

// crashWriter writes its own holding register of unit 1 with increasing
// values, one request at a time, as the party engineering. Its fields are
// used by one goroutine at a time (a round, then the test).
type crashWriter struct {
	reg  uint16
	next uint16
	res  map[uint16]writeOutcome
}

// round writes until stop is closed or the connection fails, counting
// positive answers in oks.
func (w *crashWriter) round(addr string, stop <-chan struct{}, oks *atomic.Int64) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(engineeringIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for w.next < 65000 {
		select {
		case <-stop:
			return
		default:
		}
		v := w.next
		w.next++
		var req, want []byte
		if fcFor(v) == 6 {
			req = pduWriteSingle(w.reg, v)
			want = req
		} else {
			req = pduWriteMultiple(w.reg, v)
			want = pdu(16, w.reg, 1)
		}
		w.res[v] = writeOutcome{kind: cutOff}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame(v, 1, req)); err != nil {
			return
		}
		resp, err := readADU(r, v)
		if err != nil {
			return
		}
		switch {
		case bytes.Equal(resp, want):
			w.res[v] = writeOutcome{kind: answeredOK}
			oks.Add(1)
		case len(resp) == 2 && resp[0] == req[0]|0x80:
			w.res[v] = writeOutcome{kind: answeredException, code: resp[1]}
		default:
			w.res[v] = writeOutcome{kind: answeredOdd, pdu: resp}
			return
		}
	}
}

// readADU reads one Modbus TCP answer and returns its PDU, checking the
// transaction id and unit.
func readADU(r io.Reader, tx uint16) ([]byte, error) {
	hdr := make([]byte, 7)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[4:]))
	if n < 2 || n > 254 {
		return nil, fmt.Errorf("MBAP length %d", n)
	}
	p := make([]byte, n-1)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	if got := binary.BigEndian.Uint16(hdr); got != tx || hdr[6] != 1 {
		return p, fmt.Errorf("answer for transaction %#x unit %d, want %#x unit 1", got, hdr[6], tx)
	}
	return p, nil
}

// --- the real binary ---

// buildBrana builds cmd/brana into a temporary directory, with the race
// detector when the test binary has it.
func buildBrana(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go tool to build brana: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "brana")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "github.com/brana-ot/brana/cmd/brana")
	if out, err := exec.Command(gobin, args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// branaProc is a `brana run` subprocess.
type branaProc struct {
	cmd  *exec.Cmd
	addr string // the scada listener
	log  *procLog
	done chan struct{}
	err  error // from Wait, once done is closed
}

// procLog keeps the subprocess's stderr and reports the listener address
// from its "listening" log line.
type procLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addrs chan string
	seen  bool
}

var listeningLine = regexp.MustCompile(`msg=listening .*address=(\S+)`)

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	if !l.seen {
		if m := listeningLine.FindSubmatch(l.buf.Bytes()); m != nil {
			l.seen = true
			l.addrs <- string(m[1])
		}
	}
	return len(b), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startBrana runs `brana run -c cfgFile` and waits until it listens.
func startBrana(t *testing.T, bin, cfgFile string) *branaProc {
	t.Helper()
	p := &branaProc{log: &procLog{addrs: make(chan string, 1)}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-c", cfgFile)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-p.log.addrs:
		return p
	case <-p.done:
		t.Fatalf("brana exited at start (%v):\n%s", p.err, p.log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("brana did not listen within 10s:\n%s", p.log.String())
	}
	return nil
}

// kill sends SIGKILL and waits for the process to die.
func (p *branaProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-p.done
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("brana ended with %v before the kill:\n%s", p.err, p.log.String())
	}
	p.checkLog(t)
}

// checkLog fails the test on a data race (the binary is built with -race
// when the test is) or an error the gateway logged.
func (p *branaProc) checkLog(t *testing.T) {
	t.Helper()
	if log := p.log.String(); strings.Contains(log, "DATA RACE") || strings.Contains(log, "level=ERROR") {
		t.Errorf("brana logged a race or an error:\n%s", log)
	}
}

// terminate sends SIGTERM and checks a clean exit.
func (p *branaProc) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("brana did not stop within 10s of SIGTERM:\n%s", p.log.String())
	}
	if p.err != nil {
		t.Fatalf("brana exited with %v after SIGTERM:\n%s", p.err, p.log.String())
	}
	p.checkLog(t)
}

// tearTail appends a partial record to the newest segment, as a power cut in
// the middle of a write can leave one.
func tearTail(t *testing.T, dir string) {
	t.Helper()
	segs, err := audit.Segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("audit segments in %s: %v", dir, err)
	}
	last := segs[len(segs)-1]
	if last.Compressed {
		t.Fatalf("newest segment %s is compressed", last.Path)
	}
	f, err := os.OpenFile(last.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`{"seq":999999,"prev":"00ff","time":"2026-`); err != nil {
		t.Fatal(err)
	}
}

// scanAudit reads every record of the log in dir, across segments.
func scanAudit(t *testing.T, dir string) []auditRec {
	t.Helper()
	var out []auditRec
	err := audit.Scan(dir, 0, func(l audit.Line) error {
		var r auditRec
		if err := json.Unmarshal(l.Bytes, &r); err != nil {
			return fmt.Errorf("%s:%d: %v", l.Segment, l.LineNo, err)
		}
		r.line = l.LineNo - 1
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	return out
}
