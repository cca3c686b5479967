package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/auditexport"
	"github.com/brana-ot/brana/gateway/auditquery"
	"github.com/brana-ot/brana/gateway/config"
)

// Exit codes of `brana audit verify`, documented in docs/AUDIT.md.
const (
	exitVerifyFailed     = 1 // the log is not intact: the first bad place is printed
	exitVerifyUnreadable = 3 // the log could not be read at all
)

const auditUsage = `usage:
  brana audit verify DIR [--pubkey FILE]   check chain, sequence and checkpoint signatures
  brana audit pubkey -c FILE               print the checkpoint public key (keep a copy off the gateway)
  brana audit show DIR [--since T] [--until T] [--party P] [--target T] [--session S]
                   [--class C] [--decision D] [--type T] [--service S] [--node PART]
                   [--from-seq N] [--to-seq N] [--json]
                                           read records (times: RFC 3339, a local date, or "2h" ago)
  brana audit export DIR --stdout [--from N]           records as JSON Lines
  brana audit export DIR -c FILE --exporter NAME       send what exporter NAME has not sent yet
`

func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(args[1:], stdout, stderr)
	case "pubkey":
		return cmdAuditPubkey(args[1:], stdout, stderr)
	case "show":
		return cmdAuditShow(args[1:], stdout, stderr)
	case "export":
		return cmdAuditExport(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "brana audit: unknown command %q\n%s", args[0], auditUsage)
	return exitUsage
}

// parseDir parses flags with the log directory before or after them; it
// prints usage and returns "" when the directory is missing or flags are bad.
func parseDir(fs *flag.FlagSet, args []string, usage string) string {
	var dir string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		dir, args = args[0], args[1:]
	}
	if fs.Parse(args) != nil {
		return ""
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		fmt.Fprintln(fs.Output(), "usage:", usage)
	}
	return dir
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit verify", stderr)
	pubFile := fs.String("pubkey", "", "PEM public key of the checkpoint signing key (from `brana audit pubkey`)")
	dir := parseDir(fs, args, "brana audit verify DIR [--pubkey FILE]")
	if dir == "" {
		return exitUsage
	}
	var pub []byte
	if *pubFile != "" {
		var err error
		if pub, err = os.ReadFile(*pubFile); err != nil {
			fmt.Fprintln(stderr, "brana audit verify:", err)
			return exitUsage
		}
	}
	var key []byte
	if pub != nil {
		k, err := audit.ParsePublicKeyPEM(pub)
		if err != nil {
			fmt.Fprintf(stderr, "brana audit verify: %s: %v\n", *pubFile, err)
			return exitUsage
		}
		key = k
	}
	rep, err := audit.Verify(dir, key)
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		fmt.Fprintf(stdout, "FAILED: %v\n", p)
		fmt.Fprintf(stdout, "%d records verified before it (seq %d..%d)\n", rep.Records, rep.First, rep.Last)
		return exitVerifyFailed
	case err != nil:
		fmt.Fprintln(stderr, "brana audit verify:", err)
		return exitVerifyUnreadable
	}
	fmt.Fprintf(stdout, "OK: %d records (seq %d..%d) in %d segments, %d checkpoints", rep.Records, rep.First, rep.Last, rep.Segments, rep.Checkpoints)
	if rep.Signed {
		fmt.Fprint(stdout, ", signatures verified")
	}
	if rep.Gaps > 0 {
		fmt.Fprintf(stdout, ", %d gap records (repairs brana made and recorded)", rep.Gaps)
	}
	fmt.Fprintln(stdout)
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	return exitOK
}

func cmdAuditPubkey(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit pubkey", stderr)
	file := fs.String("c", "/etc/brana/brana.yaml", "config file")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	key, err := audit.PublicKeyOf(gateway.SigningKeyPath(cfg))
	if err != nil {
		fmt.Fprintln(stderr, "brana audit pubkey:", err)
		return exitFailed
	}
	fmt.Fprint(stdout, string(audit.PublicKeyPEM(key)))
	return exitOK
}

func cmdAuditShow(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit show", stderr)
	var fl auditquery.Flags
	fs.StringVar(&fl.Since, "since", "", "records at or after this time")
	fs.StringVar(&fl.Until, "until", "", "records before this time")
	fs.StringVar(&fl.Party, "party", "", "party id, or part of its name or organisation")
	fs.StringVar(&fl.Target, "target", "", "target name")
	fs.StringVar(&fl.Session, "session", "", "session id")
	fs.StringVar(&fl.Class, "class", "", "operation class")
	fs.StringVar(&fl.Decision, "decision", "", "allow, deny, held, partial, invalid or error")
	fs.StringVar(&fl.Type, "type", "", "record type")
	fs.StringVar(&fl.Service, "service", "", "OPC UA service, any case (Read, Write, Call …)")
	fs.StringVar(&fl.Node, "node", "", "part of an OPC UA NodeId the request names, any case")
	fs.Uint64Var(&fl.FromSeq, "from-seq", 0, "first sequence number")
	fs.Uint64Var(&fl.ToSeq, "to-seq", 0, "last sequence number")
	asJSON := fs.Bool("json", false, "print the stored JSON lines unchanged")
	dir := parseDir(fs, args, "brana audit show DIR [filters] [--json]")
	if dir == "" {
		return exitUsage
	}
	f, err := auditquery.ParseFilter(fl, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "brana audit show:", err)
		return exitUsage
	}
	if _, err := auditquery.Show(stdout, dir, f, *asJSON); err != nil {
		fmt.Fprintln(stderr, "brana audit show:", err)
		return exitFailed
	}
	return exitOK
}

func cmdAuditExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit export", stderr)
	toStdout := fs.Bool("stdout", false, "write records as JSON Lines to standard output")
	from := fs.Uint64("from", 1, "with --stdout: first sequence number")
	file := fs.String("c", "", "config file naming the exporter")
	name := fs.String("exporter", "", "name of an exporter under audit.export in the config")
	dir := parseDir(fs, args, "brana audit export DIR --stdout [--from N] | brana audit export DIR -c FILE --exporter NAME")
	if dir == "" {
		return exitUsage
	}
	if *toStdout == (*name != "") {
		fmt.Fprintln(stderr, "usage: brana audit export DIR --stdout [--from N] | brana audit export DIR -c FILE --exporter NAME")
		return exitUsage
	}
	if *toStdout {
		if _, err := auditexport.WriteJSON(stdout, dir, *from); err != nil {
			fmt.Fprintln(stderr, "brana audit export:", err)
			return exitFailed
		}
		return exitOK
	}
	if *file == "" {
		fmt.Fprintln(stderr, "brana audit export: --exporter needs -c FILE")
		return exitUsage
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	for _, ec := range cfg.Audit.Export {
		if ec.Name != *name {
			continue
		}
		n, err := auditexport.Export(context.Background(), dir, ec)
		fmt.Fprintf(stdout, "%d records sent to %s\n", n, *name)
		if errors.Is(err, auditexport.ErrBusy) {
			fmt.Fprintf(stderr, "brana audit export: %v (the running gateway forwards to %s itself)\n", err, *name)
			return exitFailed
		}
		if err != nil {
			fmt.Fprintln(stderr, "brana audit export:", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "brana audit export: no exporter %q under audit.export in %s\n", *name, *file)
	return exitFailed
}
