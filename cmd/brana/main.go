// Command brana is the one binary of the brana gateway: it parses flags,
// loads config, calls into the gateway packages and maps the outcome to an
// exit code. Everything else lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/demo"
	"github.com/brana-ot/brana/gateway/journal"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/policy/geoip"
	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/testbench/lab"
	"github.com/brana-ot/brana/testbench/modbussim"
)

const usage = `brana — remote-access gateway for industrial control systems

Usage:
  brana init [-c FILE] [--engineer NAME] [--password-stdin] [--user brana] [--force]
                             first-start set-up: config, keys, certificates, the first engineer account
  brana run -c FILE          run the gateway
  brana check -c FILE        validate config and policy without starting (exit 1 on error)
  brana demo                 simulated PLCs and a gateway on loopback, with instructions
  brana testbench [flags]    run only the simulated PLCs
  brana policy explain -c FILE --party P --target T --op OP
                             say what would happen to one request, rule by rule
  brana audit verify DIR [--pubkey FILE]
                             prove the audit log is intact (exit 1: tampered, 3: unreadable)
  brana audit pubkey -c FILE print the audit checkpoint public key
  brana audit show DIR [filters] [--json]
                             read the audit log (brana audit for the filters)
  brana audit export DIR --stdout | -c FILE --exporter NAME
                             export records
  brana requests list|show|approve|deny|revoke|create ...
                             access requests and grants, on a running gateway's admin socket
  brana sessions list|kill ID
                             live sessions; kill ends one at once
  brana account hash         argon2id hash of a password (read from stdin) for the accounts file
  brana opcua trust|reject|certificate|user-hash ...
                             brana's own OPC UA endpoint: trusted client certificates, its certificate, users
  brana bundle keygen|sign|verify ...
                             signed data bundles (listings, IP databases)
  brana firmware hash|keygen|sign|verify ...
                             approved firmware and program images: hashes, signed manifests
  brana update apply|verify|keygen|certify|build ...
                             signed updates of brana itself, from a bundle file
  brana version              version, commit and build target
`

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the command ran and found a problem (invalid config, gateway error)
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "init":
		return cmdInit(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "testbench":
		return cmdTestbench(ctx, args[1:], stdout, stderr)
	case "policy":
		if len(args) > 1 && args[1] == "explain" {
			return cmdExplain(args[2:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: brana policy explain -c FILE --party P --target T --op OP")
		return exitUsage
	case "audit":
		return cmdAudit(args[1:], stdout, stderr)
	case "bundle":
		return cmdBundle(args[1:], stdout, stderr)
	case "firmware":
		return cmdFirmware(args[1:], stdout, stderr)
	case "update":
		return cmdUpdate(ctx, args[1:], stdout, stderr)
	case "requests":
		return cmdRequests(args[1:], stdout, stderr)
	case "sessions":
		return cmdSessions(args[1:], stdout, stderr)
	case "account":
		return cmdAccount(args[1:], stdout, stderr)
	case "opcua":
		return cmdOPCUA(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "brana %s (commit %s) %s/%s %s\n", gateway.Version, gateway.Commit, runtime.GOOS, runtime.GOARCH, runtime.Version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "brana: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("brana "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func logger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	// Under systemd, standard error goes to the journal: records carry their
	// syslog priority and leave the time stamp to the journal.
	if f, ok := w.(*os.File); ok && journal.Attached(f) {
		return slog.New(journal.New(w, l))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	file := fs.String("c", "/etc/brana/brana.yaml", "config file")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	log := logger(stderr, *level)
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	g, err := gateway.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	// SIGHUP reloads parties and rules, all or nothing.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			g.ReloadFile(ctx, *file)
		}
	}()
	if err := g.Run(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

// loadPolicy reads and validates a config file and compiles its policy.
func loadPolicy(file string) (*config.Config, *policy.Policy, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, nil, err
	}
	listings, _ := gateway.Listings(cfg)
	pol, err := policy.Compile(cfg.Spec, cfg.TargetNames(), policy.WithListings(listings))
	if err != nil {
		return nil, nil, err
	}
	return cfg, pol, nil
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	file := fs.String("c", "/etc/brana/brana.yaml", "config file")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, pol, err := loadPolicy(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: ok: %d listeners, %d targets, %d parties, %d rules; policy sha256:%s\n",
		*file, len(cfg.Listeners), len(cfg.Targets), len(pol.Parties()), len(pol.Rules()), pol.Digest())
	// Not errors, but an operator should know before sessions start needing approval.
	for _, p := range pol.Parties() {
		if p.ReviewDue(time.Now()) {
			fmt.Fprintf(stdout, "warning: the jurisdiction evidence of party %q (or of a party controlling it) is past its review_by date: its sessions need approval until it is reviewed\n", p.ID)
		}
	}
	if _, notes := gateway.Listings(cfg); len(notes) > 0 {
		for _, n := range notes {
			fmt.Fprintln(stdout, "note:", n)
		}
	}
	checkFirmware(cfg, stdout)
	return exitOK
}

func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy explain", stderr)
	file := fs.String("c", "/etc/brana/brana.yaml", "config file")
	party := fs.String("party", "", "party id")
	target := fs.String("target", "", "target name")
	op := fs.String("op", "", "operation: CLASS or fc:N[/SUB], optionally :TABLE:START[-END][=V1,V2...] and @UNIT; e.g. write:holding:100=42@1")
	source := fs.String("source", "", "address the session comes from (default: the party's first network); looked up in the configured IP databases")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if *party == "" || *target == "" || *op == "" {
		fmt.Fprintln(stderr, "brana policy explain: --party, --target and --op are required")
		return exitUsage
	}
	cfg, pol, err := loadPolicy(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	p := pol.Party(*party)
	if p == nil {
		fmt.Fprintf(stderr, "brana policy explain: no party %q in %s\n", *party, *file)
		return exitFailed
	}
	unit, pdu, err := policy.ParseModbusOp(*op)
	if err != nil {
		fmt.Fprintf(stderr, "brana policy explain: --op: %v\n", err)
		return exitUsage
	}
	var req modbus.Request
	if err := modbus.ParseRequest(unit, pdu, &req); err != nil {
		fmt.Fprintf(stderr, "brana policy explain: --op %q is not a valid request: %v\n", *op, err)
		return exitUsage
	}
	sig, err := explainSignals(cfg, p, *source)
	if err != nil {
		fmt.Fprintf(stderr, "brana policy explain: %v\n", err)
		return exitUsage
	}
	fmt.Fprint(stdout, pol.Explain(p, *target, &req, sig).String())
	return exitOK
}

// explainSignals builds the run-time signals a session from source would
// bring: the address, what the configured IP databases say of it, the clock.
func explainSignals(cfg *config.Config, p *policy.Party, source string) (policy.Signals, error) {
	sig := policy.Signals{Now: time.Now(), ClockTrusted: true}
	switch {
	case source != "":
		a, err := netip.ParseAddr(source)
		if err != nil {
			return sig, fmt.Errorf("--source %q is not an IP address", source)
		}
		sig.Source = a.Unmap()
	case len(p.Networks) > 0:
		sig.Source = p.Networks[0].Addr()
	}
	j := cfg.Spec.Jurisdiction.GeoIP
	if j.CountryDB != "" || j.ASNDB != "" {
		db, err := geoip.Open(j.CountryDB, j.ASNDB)
		if err != nil {
			return sig, err
		}
		defer db.Close()
		db.Signals(sig.Source, &sig)
	}
	return sig, nil
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	dir := fs.String("dir", "brana-demo", "working directory for the demo's config and audit log")
	level := fs.String("log-level", "warn", "gateway log level")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	err := demo.Run(ctx, demo.Options{Dir: *dir, Out: stdout, Log: logger(stderr, *level)})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "brana demo:", err)
		return exitFailed
	}
	return exitOK
}

func cmdTestbench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("testbench", stderr)
	listen := fs.String("listen", "127.0.0.1:15020", "Modbus TCP address of the first PLC; each further PLC takes the next port")
	models := fs.String("models", "feeder,pump", "comma-separated process models, one PLC each (unit 1); known: "+strings.Join(modbussim.Models(), ", "))
	if fs.Parse(args) != nil {
		return exitUsage
	}
	err := lab.Run(ctx, *listen, strings.Split(*models, ","), stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "brana testbench:", err)
		return exitFailed
	}
	return exitOK
}
