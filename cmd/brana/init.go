package main

// brana init sets a gateway up for its first start (gateway/provision) and
// prints what the operator writes down: fingerprints, the first engineer's
// password, the next steps.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/provision"
)

const initUsage = `usage: brana init [-c FILE] [--engineer NAME] [--password-stdin] [--user brana] [--force]

Sets the gateway up for its first start: writes the starter config to FILE
when there is none (and keeps one that is there), checks it, makes every key
and certificate the gateway needs, adds the first engineer account (role
approver) and prints the fingerprints to write down. Run it again at any
time: it never replaces a key and changes nothing that is there.

`

// starter is the config init writes; tests point it at their own folders.
var starter = config.Starter

func cmdInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, initUsage); fs.PrintDefaults() }
	file := fs.String("c", "/etc/brana/brana.yaml", "config file; written from the starter config when missing")
	engineer := fs.String("engineer", "", "engineer account to add (role approver); default "+provision.DefaultEngineer+", added only when there are no accounts yet")
	pwStdin := fs.Bool("password-stdin", false, "read the engineer's password from standard input (twice without echo on a terminal) instead of generating one")
	svcUser := fs.String("user", "brana", "service user: when run as root, it gets the data folder and the keys, and its group the config and accounts files")
	force := fs.Bool("force", false, "make certificates even when the clock is behind the last time brana saw (their dates will be wrong)")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "brana init: unexpected argument %q\n%s", fs.Arg(0), initUsage)
		return exitUsage
	}
	o := provision.Options{Config: *file, Starter: starter, Engineer: *engineer, User: *svcUser, AsRoot: os.Geteuid() == 0, Force: *force}
	if *pwStdin {
		pw, err := readNewPassword(stderr)
		if err != nil {
			fmt.Fprintln(stderr, "brana init: password:", err)
			return exitFailed
		}
		o.Password = pw
	}
	res, err := provision.Run(o)
	if res != nil && res.ClockBehind {
		printClock(stdout, res)
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, provision.ErrConfig) {
			msg = strings.TrimPrefix(msg, provision.ErrConfig.Error()+": ")
			msg += "\nbrana init: nothing was made; fix the config and run brana init again"
		}
		msg = strings.TrimPrefix(msg, "provision: ")
		fmt.Fprintln(stderr, "brana init:", msg)
		return exitFailed
	}
	printInit(stdout, o, res)
	return exitOK
}

func printClock(w io.Writer, res *provision.Result) {
	fmt.Fprintf(w, "warning: the system clock (%s) is earlier than the last time brana saw (%s).\n"+
		"  Until it is right, the gateway treats time-dependent decisions as unknown: every session that\n"+
		"  is not local needs approval, and review dates are not checked. Set the clock (NTP, RTC) first.\n\n",
		time.Now().Format(time.RFC3339), res.LastSeen.Format(time.RFC3339))
}

func printInit(w io.Writer, o provision.Options, res *provision.Result) {
	cfg, pol := res.Config, res.Policy
	if res.ConfigWritten {
		fmt.Fprintf(w, "config   %s: written from the starter config: it admits nobody until you replace its EXAMPLE target, party and rule\n", o.Config)
	} else {
		fmt.Fprintf(w, "config   %s: kept as it is\n", o.Config)
	}
	fmt.Fprintf(w, "         ok: %d listeners, %d targets, %d parties, %d rules; policy sha256:%s\n",
		len(cfg.Listeners), len(cfg.Targets), len(pol.Parties()), len(pol.Rules()), pol.Digest())
	fmt.Fprintf(w, "data     %s\n", res.DataDir)
	for _, it := range res.Items {
		state := "kept"
		if it.Created {
			state = "made"
		}
		fmt.Fprintf(w, "%-8s %s: %s\n", state, it.What, it.Path)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note:", n)
	}

	fmt.Fprintln(w, "\nFingerprints (write them down; compare them at the first connection):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, it := range res.Items {
		fmt.Fprintf(tw, "  %s\t%s\n", it.What, it.Fingerprint)
	}
	tw.Flush()
	for _, it := range res.Items {
		if it.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", it.What, it.Note)
		}
	}

	if a := res.Account; a != nil {
		fmt.Fprintf(w, "\nEngineer account %q (role approver) added to %s\n", a.User, strings.Join(a.Files, ", "))
		if a.Generated {
			fmt.Fprintf(w, "  password: %s\n", a.Password)
			fmt.Fprintln(w, "  It is shown this once; only its hash is kept. brana does not make you change it: to set your")
			fmt.Fprintf(w, "  own, run brana account hash and put the hash in place of this account's in %s.\n", a.Files[0])
		}
	}

	fmt.Fprintln(w, "\nNext:")
	fmt.Fprintf(w, "  sudo brana check -c %s     after each edit\n", o.Config)
	fmt.Fprintln(w, "  sudo systemctl enable --now brana")
	if cfg.Console.Enabled() {
		url, loopback := consoleURL(cfg.Console.Listen)
		fmt.Fprintf(w, "  the engineer console: %s\n", url)
		if loopback {
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(cfg.Console.Listen)
			fmt.Fprintf(w, "    (loopback only: from your workstation, ssh -L %s:%s YOU@%s, then open it there)\n", port, hostPort(cfg.Console.Listen), host)
		}
	}
}

// consoleURL is the console's address as a browser dials it, and whether it
// listens on loopback only.
func consoleURL(listen string) (string, bool) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://" + listen + "/", false
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.IsUnspecified()):
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	case ip != nil && ip.IsLoopback(), host == "localhost":
		return "https://" + net.JoinHostPort(host, port) + "/", true
	}
	return "https://" + net.JoinHostPort(host, port) + "/", false
}

func hostPort(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	return net.JoinHostPort(host, port)
}
