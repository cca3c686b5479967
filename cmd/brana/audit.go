package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/audit"
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
  brana audit show DIR [filters] [--json]  read records
  brana audit export DIR [--to ...]        send records to syslog, HTTP or stdout
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
	}
	fmt.Fprintf(stderr, "brana audit: unknown command %q\n%s", args[0], auditUsage)
	return exitUsage
}

// dirAndFlags lets the directory come before or after the flags.
func dirAndFlags(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit verify", stderr)
	pubFile := fs.String("pubkey", "", "PEM public key of the checkpoint signing key (from `brana audit pubkey`)")
	dir, rest := dirAndFlags(args)
	if fs.Parse(rest) != nil {
		return exitUsage
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		fmt.Fprintln(stderr, "usage: brana audit verify DIR [--pubkey FILE]")
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
