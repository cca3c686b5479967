//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// -footprint.env runs the gateway child with extra environment, to see what
// the Go runtime's knobs do: -args -footprint.env='GOGC=50 GOMEMLIMIT=24MiB'
var footprintEnv = flag.String("footprint.env", "", "space-separated NAME=value pairs added to the environment of the gateway BenchmarkFootprint starts")

// -footprint.rate sends the 1,000 commands from one client at this many per
// second, as a SCADA poll would, instead of as fast as 4 clients go: with
// fdatasync every sync_interval, the bytes that reach the disk per command
// depend on the pace.
var footprintRate = flag.Float64("footprint.rate", 0, "commands per second for BenchmarkFootprint's 1,000 audited commands (one client); 0: as fast as 4 clients go")

// -footprint.durability and -footprint.sync set the audit log's durability
// and sync_interval, to compare what reaches the disk.
var (
	footprintDurability = flag.String("footprint.durability", "batch", "audit.durability of the gateway BenchmarkFootprint starts")
	footprintSync       = flag.String("footprint.sync", "1s", "audit.sync_interval of the gateway BenchmarkFootprint starts")
)

// footprintConfig is the gateway BenchmarkFootprint runs as a child process
// (brana run -c FILE); %[1]s is the simulated PLC, %[2]s the audit
// sync_interval, %[3]s its durability. The benchmark's audit settings are the
// starter config's (gateway/config/starter.yaml, what `brana init` and the
// .deb install for a gateway on an SD card): durability batch with fdatasync
// at most once a second; the smoke test syncs more often, to be quick. The
// metrics endpoint is on, on loopback, for its count of fdatasyncs. The
// target keeps the defaults of a strict PLC (one downstream connection, one
// transaction at a time) with a queue long enough for 200 clients with one
// request each in flight; max_connections is raised above the default of 64
// for the 200 sessions.
const footprintConfig = `version: 1
gateway:
  name: footprint
  data_dir: data
audit:
  durability: %[3]s
  sync_interval: %[2]s
metrics:
  listen: 127.0.0.1:0

listeners:
  - name: scada
    address: 127.0.0.1:0
    max_connections: 256
    routes:
      - units: [1]
        target: feeder

targets:
  - name: feeder
    transport: tcp
    address: %[1]s
    timeout: 2s
    queue: 256

parties:
  - id: scada
    name: "Footprint load generator"
    organisation: "brana testbench"
    kind: scada
    networks: [127.0.0.0/8]

rules:
  - name: read-all
    description: "Every read of the feeder."
    parties: [scada]
    targets: [feeder]
    classes: [read]
    units: [1]
  - name: setpoints
    description: "Setpoint window 100-119, values 0..5000."
    parties: [scada]
    targets: [feeder]
    classes: [write]
    functions: [6]
    units: [1]
    ranges:
      holding: ["100-119"]
    values: {min: 0, max: 5000}
`

// footprintPlan is what one measurement cycle does.
type footprintPlan struct {
	sessions     int           // live sessions held open at once
	sessionReqs  int           // requests of the mix each of them sends before RSS is read
	commands     int           // commands whose audit records are measured
	auditClients int           // of the sessions, how many send them (commands/auditClients each)
	rate         float64       // commands per second from one client; 0: auditClients as fast as they go
	durability   string        // audit.durability
	syncInterval string        // audit.sync_interval
	idle, settle time.Duration // waits before reading RSS idle and with the sessions open
}

// fullPlan is BenchmarkFootprint's cycle.
var fullPlan = footprintPlan{sessions: 200, sessionReqs: 5, commands: 1000, auditClients: 4,
	durability: "batch", syncInterval: "1s", idle: 2 * time.Second, settle: time.Second}

const fpTimeout = 15 * time.Second // for every step that waits on the gateway

// BenchmarkFootprint measures the real binary as it runs on a gateway:
// built like scripts/build-all (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"),
// started as a child process (brana run -c FILE) with a config in a
// temporary directory, one Modbus listener on 127.0.0.1, a simulated PLC in
// this process, and the audit log as the starter config sets it (durability
// batch, sync_interval 1s; -footprint.durability and -footprint.sync change
// them, -footprint.rate paces the 1,000 commands, -footprint.env adds
// environment such as GOGC to the child).
//
// One iteration (b.N) is one whole cycle with a fresh data directory:
//
//   - startup-ms: from exec to READY=1 on $NOTIFY_SOCKET (sd_notify, sent
//     once every listener serves);
//   - first-read-ms: from exec to the first correct answer to an FC 3 read
//     sent through the gateway as soon as it logs its listening address;
//   - idle-rss-MB: VmRSS of the child 2 s after that first read (so the lazy
//     downstream connection exists);
//   - rss-200-MB, hwm-MB: VmRSS with 200 sessions open, each having sent 5
//     requests of the mix (every answer checked), and VmHWM, the peak so far;
//   - audit-bytes/1000cmd: growth of the audit directory (segments,
//     checkpoint file) for exactly 1,000 commands of the mix from 4 of the
//     sessions, measured once the gateway's health (admin socket) says every
//     record is written and fdatasync'd; audit-writes/1000cmd is the write(2)
//     batches of the log in that time, disk-write-bytes/1000cmd what
//     /proc/PID/io counts as sent to the block device (page-granular, without
//     the file system's journal), fsyncs/1000cmd the fdatasyncs of the audit
//     log (brana_audit_fsync_duration_seconds_count on /metrics).
//
// MB here is MiB (2^20 bytes). With -benchtime Nx each metric is the median
// of N cycles. The benchmark fails if any answer is wrong, the PLC or the
// audit log does not show exactly the commands sent, or the gateway dies or
// does not stop cleanly on SIGTERM.
func BenchmarkFootprint(b *testing.B) {
	bin := buildBrana(b)
	st, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	sim, plc := startSim(b)
	var extraEnv []string
	if *footprintEnv != "" {
		extraEnv = strings.Fields(*footprintEnv)
	}

	plan := fullPlan
	plan.rate = *footprintRate
	plan.durability, plan.syncInterval = *footprintDurability, *footprintSync
	var runs []footprint
	b.ResetTimer()
	for range b.N {
		fp, err := footprintCycle(b, plan, bin, sim, plc, extraEnv)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s", fp)
		runs = append(runs, fp)
	}
	b.StopTimer()

	med := func(f func(footprint) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(med(func(r footprint) float64 { return ms(r.startup) }), "startup-ms")
	b.ReportMetric(med(func(r footprint) float64 { return ms(r.firstRead) }), "first-read-ms")
	b.ReportMetric(med(func(r footprint) float64 { return mib(r.idle.rss) }), "idle-rss-MB")
	b.ReportMetric(med(func(r footprint) float64 { return mib(r.busy.rss) }), "rss-200-MB")
	b.ReportMetric(med(func(r footprint) float64 { return mib(r.busy.hwm) }), "hwm-MB")
	per1000 := func(n int64) float64 { return float64(n) * 1000 / float64(plan.commands) }
	b.ReportMetric(med(func(r footprint) float64 { return per1000(r.auditBytes) }), "audit-bytes/1000cmd")
	b.ReportMetric(med(func(r footprint) float64 { return per1000(int64(r.auditWrites)) }), "audit-writes/1000cmd")
	b.ReportMetric(med(func(r footprint) float64 { return per1000(r.diskWrite) }), "disk-write-bytes/1000cmd")
	b.ReportMetric(med(func(r footprint) float64 { return per1000(int64(r.fsyncs)) }), "fsyncs/1000cmd")
	b.ReportMetric(mib(st.Size()), "bin-MB")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// footprint is what one cycle measured.
type footprint struct {
	plan               footprintPlan
	startup, firstRead time.Duration
	idle, busy         procMem
	idleGo, busyGo     string // what the Go runtime says about them
	auditBytes         int64
	auditRecords       uint64
	auditWrites        uint64
	fsyncs             uint64
	diskWrite          int64
}

func (f footprint) String() string {
	pace := "as fast as they go"
	if f.plan.rate > 0 {
		pace = fmt.Sprintf("at %g/s", f.plan.rate)
	}
	pace += fmt.Sprintf(" (durability %s, sync_interval %s)", f.plan.durability, f.plan.syncInterval)
	return fmt.Sprintf("ready %v, first read %v; idle %s (%s); %d sessions %s (%s); %d commands %s: %d audit records, %d bytes, %d writes, %d fdatasyncs, %d bytes to disk",
		f.startup.Round(time.Millisecond/10), f.firstRead.Round(time.Millisecond/10), f.idle, f.idleGo, f.plan.sessions, f.busy, f.busyGo,
		f.plan.commands, pace, f.auditRecords, f.auditBytes, f.auditWrites, f.fsyncs, f.diskWrite)
}

// buildBrana builds cmd/brana the way scripts/build-all does (without the
// version stamp) into a temporary directory.
func buildBrana(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "brana")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/brana-ot/brana/cmd/brana")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSim serves a simulated PLC (unit 1, feeder model) on 127.0.0.1:0
// until the benchmark ends.
func startSim(tb testing.TB) (string, *modbussim.PLC) {
	tb.Helper()
	plc, err := modbussim.New(map[byte]string{unitID: "feeder"})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); plc.ServeTCP(ctx, ln) }()
	tb.Cleanup(func() { cancel(); <-served })
	return ln.Addr().String(), plc
}

// footprintCycle starts a gateway child (bin run -c FILE, with env added to
// this process's environment) with a fresh data directory, takes every
// measurement of plan and stops it.
func footprintCycle(tb testing.TB, plan footprintPlan, bin, sim string, plc *modbussim.PLC, env []string) (fp footprint, err error) {
	fp.plan = plan
	file, cfg := gwtest.WriteConfig(tb, fmt.Sprintf(footprintConfig, sim, plan.syncInterval, plan.durability))
	dir := filepath.Dir(file)
	dataDir := filepath.Join(dir, cfg.Gateway.DataDir)
	auditDir := filepath.Join(dataDir, "audit")

	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		return fp, err
	}
	defer notify.Close()
	ready := make(chan time.Time, 1)
	go waitReady(notify, ready)

	gw, err := startChild(bin, []string{"run", "-c", file}, append(slices.Clip(env), "NOTIFY_SOCKET="+notify.LocalAddr().String()))
	if err != nil {
		return fp, err
	}
	defer func() {
		if serr := gw.stop(); err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%w\ngateway log (last lines):\n%s", err, gw.log.String())
		}
	}()

	// Start-up. The first read goes out as soon as the listener is known: it
	// is bound before the gateway logs it, so the request waits in the
	// accept queue, not refused, and is answered once the listener serves.
	addr, err := gw.listening("modbus/scada")
	if err != nil {
		return fp, err
	}
	first, err := dialClientsCap(addr, 1, 16)
	if err != nil {
		return fp, err
	}
	defer closeClients(first)
	first[0].nc.SetDeadline(time.Now().Add(fpTimeout))
	if k, err := first[0].do(); err != nil || k != readHolding {
		return fp, fmt.Errorf("first read (kind %d): %v", k, err)
	}
	fp.firstRead = time.Since(gw.start)
	select {
	case t := <-ready:
		fp.startup = t.Sub(gw.start)
	case <-time.After(fpTimeout):
		return fp, fmt.Errorf("no READY=1 on NOTIFY_SOCKET within %v of starting", fpTimeout)
	case <-gw.exited:
		return fp, gw.died()
	}

	// Idle, with the downstream connection the first read opened.
	if err := gw.sleep(plan.idle); err != nil {
		return fp, err
	}
	if fp.idle, err = readProcMem(gw.pid()); err != nil {
		return fp, err
	}
	metricsURL, err := gw.listening("metrics")
	if err != nil {
		return fp, err
	}
	// A scrape of /metrics allocates in the gateway and raises the RSS
	// read after it: the Go runtime's breakdown of the idle gateway only
	// with -test.v. The one with the sessions open is taken after RSS.
	fp.idleGo = "-v for the Go runtime's figures"
	if testing.Verbose() {
		if fp.idleGo, err = goMem(metricsURL); err != nil {
			return fp, err
		}
	}

	// Live sessions, each with a few requests of the mix answered and checked.
	cs, err := dialClientsCap(addr, plan.sessions, plan.commands)
	if err != nil {
		return fp, err
	}
	defer closeClients(cs)
	if _, err := load(cs, fpTimeout, plan.sessionReqs); err != nil {
		return fp, fmt.Errorf("%d sessions: %w", plan.sessions, err)
	}
	if err := gw.sleep(plan.settle); err != nil {
		return fp, err
	}
	if fp.busy, err = readProcMem(gw.pid()); err != nil {
		return fp, err
	}
	if fp.busyGo, err = goMem(metricsURL); err != nil {
		return fp, err
	}
	hc := adminClient(filepath.Join(dataDir, "admin.sock"))
	h, err := waitAuditDurable(hc, 0)
	if err != nil {
		return fp, err
	}
	if h.Gateway.Sessions != plan.sessions+1 {
		return fp, fmt.Errorf("gateway has %d live sessions, want %d", h.Gateway.Sessions, plan.sessions+1)
	}

	// Exactly plan.commands commands of the mix, and what the audit log grows by.
	plc.ResetCounters()
	size0, err := dirSize(auditDir)
	if err != nil {
		return fp, err
	}
	seg := filepath.Join(auditDir, h.Gateway.Audit.Segment)
	segSize0, err := fileSize(seg)
	if err != nil {
		return fp, err
	}
	io0, err := readWriteBytes(gw.pid())
	if err != nil {
		return fp, err
	}
	syncs0, err := scrapeMetrics(metricsURL, fsyncMetric)
	if err != nil {
		return fp, err
	}
	senders := cs[:min(plan.auditClients, len(cs))]
	if plan.rate > 0 {
		senders = cs[:1]
	}
	sent0 := totalCounts(senders)
	if plan.rate > 0 {
		err = paced(senders[0], plan.commands, plan.rate)
	} else {
		_, err = load(senders, fpTimeout, plan.commands/len(senders))
	}
	if err != nil {
		return fp, fmt.Errorf("%d commands: %w", plan.commands, err)
	}
	h1, err := waitAuditDurable(hc, h.Gateway.Audit.Seq+uint64(2*plan.commands))
	if err != nil {
		return fp, err
	}
	size1, err := dirSize(auditDir)
	if err != nil {
		return fp, err
	}
	io1, err := readWriteBytes(gw.pid())
	if err != nil {
		return fp, err
	}
	syncs1, err := scrapeMetrics(metricsURL, fsyncMetric)
	if err != nil {
		return fp, err
	}
	fp.auditBytes = size1 - size0
	fp.auditRecords = h1.Gateway.Audit.Seq - h.Gateway.Audit.Seq
	fp.auditWrites = h1.Gateway.Audit.Batches - h.Gateway.Audit.Batches
	fp.diskWrite = io1 - io0
	fp.fsyncs = uint64(syncs1[fsyncMetric] - syncs0[fsyncMetric])

	// The commands really happened: at the PLC, and in the audit log.
	sent := totalCounts(senders)
	total := 0
	for k := range sent {
		sent[k] -= sent0[k]
		total += sent[k]
	}
	c := plc.Counters()
	for k, n := range sent {
		if got := c.Requests(unitID, fcOf[k]); got != uint64(n) {
			return fp, fmt.Errorf("PLC got %d FC %d requests, want %d", got, fcOf[k], n)
		}
	}
	if total != plan.commands || c.Total() != uint64(total) || c.Exceptions(unitID) != 0 {
		return fp, fmt.Errorf("%d commands answered, PLC got %d (%d exceptions), want %d and none", total, c.Total(), c.Exceptions(unitID), plan.commands)
	}
	if h1.Gateway.Audit.Segment != h.Gateway.Audit.Segment {
		return fp, fmt.Errorf("audit segment rotated during the measurement (%s to %s)", h.Gateway.Audit.Segment, h1.Gateway.Audit.Segment)
	}
	if n, err := commandsSince(seg, segSize0); err != nil || n != plan.commands {
		return fp, fmt.Errorf("audit log has %d allowed command records for the %d commands (%v)", n, plan.commands, err)
	}
	return fp, nil
}

// paced sends n requests of the mix on c at rate per second, checking each answer.
func paced(c *client, n int, rate float64) error {
	every := time.Duration(float64(time.Second) / rate)
	c.nc.SetDeadline(time.Now().Add(time.Duration(n)*every + fpTimeout))
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range n {
		k, err := c.do()
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		c.counts[k]++
		<-t.C
	}
	return nil
}

// gatewayChild is brana run as a child process.
type gatewayChild struct {
	cmd     *exec.Cmd
	start   time.Time
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
	log     *logTail
	addrs   chan [2]string // what listeningLine found in the log
	seen    [][2]string    // what listening took from addrs for another key
}

func startChild(bin string, args, env []string) (*gatewayChild, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// Dies with the benchmark if the benchmark dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	g := &gatewayChild{cmd: cmd, exited: make(chan struct{}), log: &logTail{}, addrs: make(chan [2]string, 8)}
	g.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			g.log.add(line)
			if name, addr, ok := listeningLine(line); ok {
				select {
				case g.addrs <- [2]string{name, addr}:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-logDone // Wait closes the pipe: read it to the end first
		g.waitErr = cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// listeningLine parses the gateway's log lines for the endpoints the
// benchmark needs: a Modbus listener bound to an address
// (msg=listening listener=NAME address=HOST:PORT) as "modbus/NAME", and the
// metrics endpoint (msg="metrics endpoint" url=URL) as "metrics".
func listeningLine(line string) (key, addr string, ok bool) {
	var name, url string
	for _, f := range strings.Fields(line) {
		if v, found := strings.CutPrefix(f, "listener="); found {
			name = v
		} else if v, found := strings.CutPrefix(f, "address="); found {
			addr = v
		} else if v, found := strings.CutPrefix(f, "url="); found {
			url = v
		}
	}
	switch {
	case strings.Contains(line, " msg=listening ") && !strings.Contains(line, " protocol=") && name != "" && addr != "":
		return "modbus/" + name, addr, true
	case strings.Contains(line, ` msg="metrics endpoint" `) && url != "":
		return "metrics", url, true
	}
	return "", "", false
}

// listening waits for the address of an endpoint (see listeningLine).
func (g *gatewayChild) listening(key string) (string, error) {
	if i := slices.IndexFunc(g.seen, func(a [2]string) bool { return a[0] == key }); i >= 0 {
		return g.seen[i][1], nil
	}
	t := time.NewTimer(fpTimeout)
	defer t.Stop()
	for {
		select {
		case a := <-g.addrs:
			if a[0] == key {
				return a[1], nil
			}
			g.seen = append(g.seen, a)
		case <-g.exited:
			return "", g.died()
		case <-t.C:
			return "", fmt.Errorf("gateway did not log endpoint %s within %v", key, fpTimeout)
		}
	}
}

func (g *gatewayChild) pid() int { return g.cmd.Process.Pid }

// sleep waits for d, or fails if the gateway exits meanwhile.
func (g *gatewayChild) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-g.exited:
		return g.died()
	}
}

func (g *gatewayChild) died() error {
	return fmt.Errorf("gateway exited during the measurement: %v", g.waitErr)
}

// stop sends SIGTERM and waits for a clean exit; a gateway that does not stop
// within fpTimeout is killed. It is an error if the gateway had already
// exited, did not stop in time, or exited with a failure.
func (g *gatewayChild) stop() error {
	select {
	case <-g.exited:
		return g.died()
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		if g.waitErr != nil {
			return fmt.Errorf("gateway stopped with: %v", g.waitErr)
		}
		return nil
	case <-time.After(fpTimeout):
		g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("gateway did not stop within %v of SIGTERM; killed", fpTimeout)
	}
}

// logTail keeps the last lines of the child's log for error messages.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 40 {
		l.lines = slices.Delete(l.lines, 0, 1)
	}
	l.lines = append(l.lines, line)
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitReady reads sd_notify datagrams (newline-separated VAR=value
// assignments) until one says READY=1, and sends the time it arrived.
func waitReady(c *net.UnixConn, ready chan<- time.Time) {
	buf := make([]byte, 4096)
	for {
		n, _, err := c.ReadFromUnix(buf)
		if err != nil {
			return
		}
		if slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
			ready <- time.Now()
			return
		}
	}
}

// procMem is a process's memory as /proc/PID/status shows it.
type procMem struct {
	rss, hwm   int64 // VmRSS, VmHWM (peak RSS)
	anon, file int64 // RssAnon (heap, stacks, runtime), RssFile (mapped binary text and data)
	threads    int
}

func (m procMem) String() string {
	return fmt.Sprintf("RSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB, %d threads",
		mib(m.rss), mib(m.anon), mib(m.file), mib(m.hwm), m.threads)
}

func readProcMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	found := 0
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) == 2 && f[1] == "kB" {
			n <<= 10
		}
		switch key {
		case "VmRSS":
			m.rss = n
		case "VmHWM":
			m.hwm = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		case "Threads":
			m.threads = int(n)
		default:
			continue
		}
		found++
	}
	if found != 5 {
		return m, fmt.Errorf("/proc/%d/status: %d of VmRSS, VmHWM, RssAnon, RssFile, Threads found", pid, found)
	}
	return m, nil
}

// readWriteBytes is write_bytes of /proc/PID/io: what the process caused to
// be sent to the block device (counted when a page is dirtied).
func readWriteBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io: no write_bytes", pid)
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

func fileSize(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// commandsSince counts the allowed command records in the segment from byte
// offset off on.
func commandsSince(seg string, off int64) (int, error) {
	f, err := os.Open(seg)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct{ Type, Decision string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return n, fmt.Errorf("%s: %w", seg, err)
		}
		if rec.Type == "command" && rec.Decision == "allow" {
			n++
		}
	}
	return n, sc.Err()
}

// adminClient talks HTTP to the gateway's admin API on its Unix socket.
func adminClient(socket string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// health is the part of GET /v1/health the benchmark reads.
type health struct {
	Gateway struct {
		Sessions int
		Audit    struct {
			Seq, Written, Synced, Batches uint64
			Segment, Err                  string
		}
	}
}

func getHealth(hc *http.Client) (health, error) {
	var h health
	resp, err := hc.Get("http://brana/v1/health")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return h, err
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("GET /v1/health: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("GET /v1/health: %w", err)
	}
	if h.Gateway.Audit.Err != "" {
		return h, fmt.Errorf("audit log: %s", h.Gateway.Audit.Err)
	}
	return h, nil
}

var errNotDurable = errors.New("audit log not durable in time")

// waitAuditDurable polls the gateway's health until the audit log has at
// least minSeq records and every record is written and fdatasync'd (in batch
// durability that takes up to sync_interval).
func waitAuditDurable(hc *http.Client, minSeq uint64) (health, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := getHealth(hc)
		if err != nil {
			return h, err
		}
		a := h.Gateway.Audit
		if a.Seq >= minSeq && a.Written == a.Seq && a.Synced == a.Seq {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("%w: seq %d (want ≥ %d), written %d, synced %d", errNotDurable, a.Seq, minSeq, a.Written, a.Synced)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatewayChildEnv makes this test binary act as `brana run -c FILE`, so that
// TestFootprintHarnessSmoke runs the harness against a gateway child without
// building cmd/brana (a -trimpath build shares no cache with the test build).
const gatewayChildEnv = "BRANA_BENCH_GATEWAY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(gatewayChildEnv) == "1" {
		os.Exit(runGatewayChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runGatewayChild is cmdRun of cmd/brana, reduced to what the harness needs.
func runGatewayChild(args []string) int {
	if len(args) != 3 || args[0] != "run" || args[1] != "-c" {
		fmt.Fprintf(os.Stderr, "%s=1: want the arguments run -c FILE, got %q\n", gatewayChildEnv, args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := g.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestFootprintHarnessSmoke runs a small footprint cycle (8 sessions, 100
// commands, no waits) against this test binary acting as the gateway, and
// checks that the harness fails when the gateway answers wrongly or dies.
func TestFootprintHarnessSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := []string{gatewayChildEnv + "=1"}
	sim, plc := startSim(t)

	t.Run("ok/cycle", func(t *testing.T) {
		plan := footprintPlan{sessions: 8, sessionReqs: 5, commands: 100, auditClients: 4, durability: "batch", syncInterval: "50ms"}
		fp, err := footprintCycle(t, plan, self, sim, plc, child)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(fp)
		switch {
		case fp.startup <= 0 || fp.firstRead <= 0:
			t.Errorf("startup %v, first read %v: want both > 0", fp.startup, fp.firstRead)
		case fp.idle.rss <= 0 || fp.busy.rss <= 0 || fp.busy.hwm < fp.busy.rss:
			t.Errorf("RSS idle %v, busy %v: want > 0 and peak ≥ RSS", fp.idle, fp.busy)
		case fp.auditRecords != 2*uint64(plan.commands):
			t.Errorf("%d audit records for %d commands, want a command and a result record each", fp.auditRecords, plan.commands)
		case fp.auditBytes < 100*int64(fp.auditRecords) || fp.auditWrites == 0 || fp.fsyncs == 0:
			t.Errorf("audit grew by %d bytes in %d writes and %d fdatasyncs for %d records", fp.auditBytes, fp.auditWrites, fp.fsyncs, fp.auditRecords)
		}
	})

	t.Run("fail/exception", func(t *testing.T) {
		plc.SetFault(unitID, modbussim.Fault{Exception: 0x04})
		defer plc.ClearFault(unitID)
		plan := footprintPlan{sessions: 1, sessionReqs: 1, commands: 4, auditClients: 1, durability: "batch", syncInterval: "50ms"}
		_, err := footprintCycle(t, plan, self, sim, plc, child)
		if err == nil || !strings.Contains(err.Error(), "exception 04") {
			t.Fatalf("cycle error = %v, want an exception 04 error", err)
		}
	})

	t.Run("fail/gateway-dies", func(t *testing.T) {
		file, _ := gwtest.WriteConfig(t, fmt.Sprintf(footprintConfig, sim, "50ms", "batch"))
		gw, err := startChild(self, []string{"run", "-c", file}, child)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gw.listening("modbus/scada"); err != nil {
			t.Fatal(err)
		}
		gw.cmd.Process.Kill()
		if err := gw.sleep(fpTimeout); err == nil || !strings.Contains(err.Error(), "exited") {
			t.Errorf("sleep: %v, want the gateway's exit", err)
		}
		if err := gw.stop(); err == nil {
			t.Error("stop of a dead gateway: no error")
		}
	})
}

// fsyncMetric counts the audit log's fdatasyncs (a histogram of their durations).
const fsyncMetric = "brana_audit_fsync_duration_seconds_count"

// scrapeMetrics reads metrics without labels from the Prometheus text
// exposition at url; every name must be there.
func scrapeMetrics(url string, names ...string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if m[name], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return nil, fmt.Errorf("GET %s: %s: %w", url, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return nil, fmt.Errorf("GET %s: no %s", url, n)
		}
	}
	return m, nil
}

// The Go runtime's own account of the child's memory, from /metrics.
var goMemMetrics = []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"}

// goMem says where the anonymous memory of the child goes.
func goMem(url string) (string, error) {
	m, err := scrapeMetrics(url, goMemMetrics...)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d goroutines, heap in use %.1f MiB, stacks %.1f MiB, from the OS %.1f MiB", int(m["go_goroutines"]),
		m["go_memstats_heap_inuse_bytes"]/(1<<20), m["go_memstats_stack_inuse_bytes"]/(1<<20), m["go_memstats_sys_bytes"]/(1<<20)), nil
}
