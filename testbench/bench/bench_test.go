package bench

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brana-ot/brana/testbench/modbussim"
)

// -inline.paths narrows BenchmarkInline to some paths, to profile one of
// them alone: go test -bench Inline/clients=64 -cpuprofile cpu.out -args -inline.paths=brana
var onlyPaths = flag.String("inline.paths", "", "comma-separated paths BenchmarkInline runs (direct,relay,brana,brana-c1); default all")

// One round (one b.N iteration) is passes × paths windows of window each,
// about one second. Short windows, with the order of the paths rotating at
// every pass, spread bursts of machine noise over all paths alike.
const (
	window = 80 * time.Millisecond
	passes = 3
)

// BenchmarkInline runs the request mix direct to the PLC, through the plain
// relay and through brana (targets with 4 and with 1 downstream connection)
// in the same run. b.N is the number of rounds; a round runs every path passes
// times for window each, in an order that rotates at every pass, so one round
// takes about a second (-benchtime 1x) and -benchtime Nx pools N rounds.
//
// Metrics: PATH-p50-us and PATH-p99-us (latency per request as the client
// sees it), PATH-req/s (throughput); p50-ratio, p99-ratio and tput-ratio are
// brana/relay, c1-p50-ratio, c1-p99-ratio and c1-tput-ratio brana-c1/relay;
// brana-allocs/req is the heap allocations per request of the whole process
// on the brana path minus those on the direct path, i.e. what the gateway adds;
// PATH-cpu-us/req is the CPU time (user + system, as getrusage reports it) of
// the whole process per request: load generator, simulator and whatever sits
// between them. Loopback TCP work the kernel does in softirq context may not
// be charged to the process, and idle Go threads spin briefly, so it is a
// comparison between paths, not an exact cost.
func BenchmarkInline(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchInline(b, n) })
	}
}

// BenchmarkInlineDurability runs the mix through the plain relay and through
// brana (4 connections, pipeline 8) with the audit log at each durability
// level, at 16 clients, and reports brana/relay ratios per level.
func BenchmarkInlineDurability(b *testing.B) {
	for _, d := range []string{"none", "batch", "always"} {
		b.Run("durability="+d, func(b *testing.B) {
			b.ReportAllocs()
			e := newEnvDurability(b, 16, d)
			e.paths = slices.DeleteFunc(e.paths, func(p *path) bool { return p.name != pathRelay && p.name != pathBrana })
			runRounds(b, e, nil, nil)
			relay, brana := &e.path(pathRelay).stats, &e.path(pathBrana).stats
			b.ReportMetric(brana.Percentile(50), "brana-p50-us")
			b.ReportMetric(relay.Percentile(50), "relay-p50-us")
			b.ReportMetric(brana.Throughput(), "brana-req/s")
			b.ReportMetric(brana.Percentile(50)/relay.Percentile(50), "p50-ratio")
			b.ReportMetric(brana.Throughput()/relay.Throughput(), "tput-ratio")
		})
	}
}

// runRounds warms every path up, then runs b.N rounds; mallocs and cpu, if
// not nil, collect per-path heap allocations and process CPU.
func runRounds(b *testing.B, e *env, mallocs map[string]uint64, cpu map[string]time.Duration) {
	for _, p := range e.paths {
		if _, err := load(p.clients, 50*time.Millisecond, 0); err != nil {
			b.Fatalf("warm-up %s: %v", p.name, err)
		}
	}
	var ms runtime.MemStats
	b.ResetTimer()
	for i := 0; i < b.N*passes; i++ {
		for j := range e.paths {
			p := e.paths[(i+j)%len(e.paths)]
			runtime.GC() // every window starts from a clean heap
			runtime.ReadMemStats(&ms)
			before, cpu0 := ms.Mallocs, processCPU()
			r, err := load(p.clients, window, 0)
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			if cpu != nil {
				cpu[p.name] += processCPU() - cpu0
			}
			runtime.ReadMemStats(&ms)
			if mallocs != nil {
				mallocs[p.name] += ms.Mallocs - before
			}
			p.stats.add(r, p.clients)
		}
	}
	b.StopTimer()
}

func benchInline(b *testing.B, clients int) {
	b.ReportAllocs()
	e := newEnv(b, clients)
	if *onlyPaths != "" {
		want := strings.Split(*onlyPaths, ",")
		e.paths = slices.DeleteFunc(e.paths, func(p *path) bool { return !slices.Contains(want, p.name) })
		if len(e.paths) == 0 {
			b.Fatalf("-inline.paths=%s names no path", *onlyPaths)
		}
	}
	// Warm-up first: downstream connections open lazily, pages fault in.
	mallocs := make(map[string]uint64)
	cpu := make(map[string]time.Duration)
	runRounds(b, e, mallocs, cpu)

	for _, p := range e.paths {
		b.ReportMetric(p.stats.Percentile(50), p.name+"-p50-us")
		b.ReportMetric(p.stats.Percentile(99), p.name+"-p99-us")
		b.ReportMetric(p.stats.Throughput(), p.name+"-req/s")
		b.ReportMetric(float64(cpu[p.name])/float64(time.Microsecond)/float64(max(p.stats.Requests, 1)), p.name+"-cpu-us/req")
		if testing.Verbose() {
			b.Logf("%s: %d requests in %v, %v CPU", p.name, p.stats.Requests, p.stats.Elapsed, cpu[p.name])
		}
	}
	if len(e.paths) < 4 {
		return // ratios need every path
	}
	relay, brana, c1, direct := &e.path(pathRelay).stats, &e.path(pathBrana).stats,
		&e.path(pathBranaC1).stats, &e.path(pathDirect).stats
	b.ReportMetric(brana.Percentile(50)/relay.Percentile(50), "p50-ratio")
	b.ReportMetric(brana.Percentile(99)/relay.Percentile(99), "p99-ratio")
	b.ReportMetric(brana.Throughput()/relay.Throughput(), "tput-ratio")
	b.ReportMetric(c1.Percentile(50)/relay.Percentile(50), "c1-p50-ratio")
	b.ReportMetric(c1.Percentile(99)/relay.Percentile(99), "c1-p99-ratio")
	b.ReportMetric(c1.Throughput()/relay.Throughput(), "c1-tput-ratio")
	perReq := func(name string, s *Stats) float64 { return float64(mallocs[name]) / float64(max(s.Requests, 1)) }
	b.ReportMetric(perReq(pathBrana, brana)-perReq(pathDirect, direct), "brana-allocs/req")
}

// TestBenchHarnessSmoke runs the harness briefly at two clients through every
// path and checks that every response was right and that the mix really
// reached the PLC, through brana too (PLC counters, audit records), so the
// benchmark cannot silently measure something else.
func TestBenchHarnessSmoke(t *testing.T) {
	const clients, perClient = 2, 150 // 15 rounds of the mix per client
	e := newEnv(t, clients)
	listener := map[string]string{pathBrana: "bench-c4", pathBranaC1: "bench-c1"}

	for _, p := range e.paths {
		t.Run("ok/"+p.name, func(t *testing.T) {
			before := totalCounts(p.clients)
			auditBefore := auditCommands(t, e.gw.AuditPath())
			e.plc.ResetCounters()

			r, err := load(p.clients, 10*time.Second, perClient)
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests != clients*perClient {
				t.Fatalf("%d requests answered, want %d", r.Requests, clients*perClient)
			}
			sent := totalCounts(p.clients)
			for k := range sent {
				sent[k] -= before[k]
			}
			total := clients * perClient
			want := [numKinds]int{readHolding: total * 7 / 10, readInput: total * 2 / 10, writeSetpoint: total / 10}
			if sent != want {
				t.Errorf("mix sent %v, want %v (FC 3, FC 4, FC 6)", sent, want)
			}

			plc := e.plc.Counters()
			for k, n := range want {
				if got := plc.Requests(unitID, fcOf[k]); got != uint64(n) {
					t.Errorf("PLC got %d FC %d requests, want %d", got, fcOf[k], n)
				}
			}
			if got := plc.Total(); got != uint64(total) {
				t.Errorf("PLC got %d requests in all, want %d", got, total)
			}
			if got := plc.TableWrites(unitID, modbussim.TableHoldingRegisters); got != uint64(want[writeSetpoint]) {
				t.Errorf("PLC applied %d holding register writes, want %d", got, want[writeSetpoint])
			}
			if got := plc.Exceptions(unitID); got != 0 {
				t.Errorf("PLC answered %d exceptions", got)
			}

			if l, ok := listener[p.name]; ok {
				got := auditCommands(t, e.gw.AuditPath())[l] - auditBefore[l]
				if got != total {
					t.Errorf("audit log has %d allowed command records from listener %s, want %d", got, l, total)
				}
			}
		})
	}

	// The checks must bite: an exception from the PLC, passed on by brana,
	// fails the run.
	t.Run("fail/exception-detected", func(t *testing.T) {
		e.plc.SetFault(unitID, modbussim.Fault{Exception: 0x04})
		defer e.plc.ClearFault(unitID)
		_, err := load(e.path(pathBrana).clients, 10*time.Second, 10)
		if err == nil || !strings.Contains(err.Error(), "exception 04") {
			t.Fatalf("load error = %v, want an exception 04 error", err)
		}
	})
}

func totalCounts(cs []*client) [numKinds]int {
	var n [numKinds]int
	for _, c := range cs {
		for k := range n {
			n[k] += c.counts[k]
		}
	}
	return n
}

// auditCommands counts the allowed command records per listener in the audit
// log's directory (segment files, plain or gzip-compressed). Command records
// are written before a command is forwarded, so every answered request's
// record is already in a file.
func auditCommands(t *testing.T, auditPath string) map[string]int {
	t.Helper()
	dir := filepath.Dir(auditPath)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := make(map[string]int)
	files := 0
	for _, ent := range entries {
		name := filepath.Join(dir, ent.Name())
		gz := strings.HasSuffix(name, ".jsonl.gz")
		if !gz && !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		files++
		countCommands(t, name, gz, n)
	}
	if files == 0 {
		t.Fatalf("no audit files in %s", dir)
	}
	return n
}

func countCommands(t *testing.T, name string, gz bool, n map[string]int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Type, Decision, Listener string
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rec.Type == "command" && rec.Decision == "allow" {
			n[rec.Listener]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
