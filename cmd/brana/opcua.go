package main

// The opcua commands look after brana's own OPC UA endpoint: the client
// certificates it trusts (gateway/opcuatrust), its server certificate, and
// hashes for its users file. They work on the files in the data folder, so
// they need no running gateway; a running gateway sees a trusted or rejected
// certificate from the next secure channel on.

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/gateway/passhash"
)

const opcuaUsage = `usage:
  brana opcua trust [list [rejected|trusted]]   the client certificates in the trust folder
  brana opcua trust PREFIX                      trust a rejected certificate (8 or more hex digits of its SHA-1 thumbprint)
  brana opcua trust FILE.der|FILE.pem           trust a certificate from a file
  brana opcua reject PREFIX                     stop trusting a certificate
  brana opcua certificate                       brana's server certificate (made now if it is missing)
  brana opcua user-hash                         read a password (from the terminal without echo, or the first
                                                line of standard input) and print its argon2id hash for the users file
flags: -c FILE (or -config FILE, default /etc/brana/brana.yaml); -listener NAME when opcua listeners
       have trust folders of their own
`

func cmdOPCUA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, opcuaUsage)
		return exitUsage
	}
	switch args[0] {
	case "trust", "reject", "certificate":
		return cmdOPCUAFiles(args[0], args[1:], stdout, stderr)
	case "user-hash":
		if len(args) != 1 {
			fmt.Fprint(stderr, opcuaUsage)
			return exitUsage
		}
		pw, err := readNewPassword(stderr)
		if err == nil {
			var h string
			if h, err = passhash.New(pw); err == nil {
				fmt.Fprintln(stdout, h)
				return exitOK
			}
		}
		fmt.Fprintln(stderr, "brana opcua user-hash:", err)
		return exitFailed
	case "help", "-h", "--help":
		fmt.Fprint(stdout, opcuaUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "brana opcua: unknown command %q\n\n%s", args[0], opcuaUsage)
	return exitUsage
}

// cmdOPCUAFiles runs the commands that need the config: trust, reject and
// certificate.
func cmdOPCUAFiles(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("opcua "+cmd, stderr)
	var file, listener string
	fs.StringVar(&file, "c", "/etc/brana/brana.yaml", "config file")
	fs.StringVar(&file, "config", "/etc/brana/brana.yaml", "config file")
	fs.StringVar(&listener, "listener", "", "opcua listener whose trust folder or certificate to use")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "brana opcua %s: %s\n", cmd, strings.TrimPrefix(err.Error(), "opcuatrust: "))
		return exitFailed
	}
	if cmd == "certificate" {
		if len(pos) != 0 {
			fmt.Fprint(stderr, opcuaUsage)
			return exitUsage
		}
		if err := printCertificates(stdout, cfg, listener); err != nil {
			return fail(err)
		}
		return exitOK
	}
	dir, err := opcuaPick(cfg, listener, func(l *config.Listener) string { return l.TrustDir }, cfg.DefaultOPCUATrustDir())
	if err != nil {
		return fail(err)
	}
	store, err := opcuatrust.Open(dir)
	if err != nil {
		return fail(err)
	}
	switch {
	case cmd == "reject" && len(pos) == 1:
		e, err := store.Reject(pos[0])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "rejected %s %s (%s)\nmoved to %s; it opens no new secure channel from now on\n",
			e.Thumbprint, e.Subject, orDash(e.AppURI), e.Path)
		return exitOK
	case cmd == "trust" && (len(pos) == 0 || pos[0] == "list"):
		which := []string{opcuatrust.Rejected, opcuatrust.Trusted}
		switch {
		case len(pos) == 2 && (pos[1] == opcuatrust.Rejected || pos[1] == opcuatrust.Trusted):
			which = pos[1:]
		case len(pos) > 1:
			fmt.Fprint(stderr, opcuaUsage)
			return exitUsage
		}
		if err := listTrust(stdout, store, which); err != nil {
			return fail(err)
		}
		return exitOK
	case cmd == "trust" && len(pos) == 1:
		var e opcuatrust.Entry
		if isCertFile(pos[0]) {
			b, err := os.ReadFile(pos[0])
			if err != nil {
				return fail(err)
			}
			e, err = store.Add(b)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", pos[0], err))
			}
		} else if e, err = store.Trust(pos[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "trusted %s %s (%s), valid %s to %s\nstored in %s; it may open secure channels from now on\n",
			e.Thumbprint, e.Subject, orDash(e.AppURI), day(e.NotBefore), day(e.NotAfter), e.Path)
		if time.Now().After(e.NotAfter) {
			fmt.Fprintln(stdout, "warning: the certificate has expired: it is refused until its owner renews it")
		}
		return exitOK
	}
	fmt.Fprint(stderr, opcuaUsage)
	return exitUsage
}

// isCertFile tells a certificate file from a thumbprint prefix, which is
// hex digits and perhaps colons only.
func isCertFile(arg string) bool {
	return strings.Trim(strings.ToLower(arg), "0123456789abcdef:") != ""
}

// opcuaPick returns the folder or file of the opcua listeners that field
// names: the named listener's, the one all listeners share, or def when
// there is no opcua listener.
func opcuaPick(cfg *config.Config, listener string, field func(*config.Listener) string, def string) (string, error) {
	var paths, names []string
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Protocol != "opcua" {
			continue
		}
		names = append(names, l.Name)
		if listener == l.Name {
			return field(l), nil
		}
		if !slices.Contains(paths, field(l)) {
			paths = append(paths, field(l))
		}
	}
	switch {
	case listener != "":
		return "", fmt.Errorf("no opcua listener %q in %s (opcua listeners: %s)", listener, cfg.File, orDash(strings.Join(names, ", ")))
	case len(paths) == 0:
		return def, nil
	case len(paths) > 1:
		return "", fmt.Errorf("the opcua listeners %s do not share one; name one with -listener", strings.Join(names, ", "))
	}
	return paths[0], nil
}

func listTrust(w io.Writer, store *opcuatrust.Store, which []string) error {
	var rows []string
	now := time.Now()
	for _, folder := range which {
		list, err := store.List(folder)
		if err != nil {
			return err
		}
		for _, e := range list {
			until := day(e.NotAfter)
			if now.After(e.NotAfter) {
				until += " (expired)"
			}
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\n", folder, e.Thumbprint, orDash(e.Subject), orDash(e.AppURI), until))
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(w, "no certificates in %s (%s)\n", store.Dir(), strings.Join(which, ", "))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLDER\tTHUMBPRINT\tSUBJECT\tAPPLICATION URI\tVALID UNTIL")
	for _, r := range rows {
		fmt.Fprint(tw, r)
	}
	return tw.Flush()
}

// printCertificates shows brana's server certificates, one per file the
// opcua listeners name, and makes those that are missing.
func printCertificates(w io.Writer, cfg *config.Config, listener string) error {
	paths := []string{}
	users := map[string][]string{}
	for _, l := range cfg.Listeners {
		if l.Protocol != "opcua" || (listener != "" && l.Name != listener) {
			continue
		}
		if !slices.Contains(paths, l.Certificate) {
			paths = append(paths, l.Certificate)
		}
		users[l.Certificate] = append(users[l.Certificate], l.Name)
	}
	switch {
	case len(paths) == 0 && listener != "":
		return fmt.Errorf("no opcua listener %q in %s", listener, cfg.File)
	case len(paths) == 0:
		paths = []string{cfg.DefaultOPCUACertificate()}
	}
	for i, p := range paths {
		id, created, err := gateway.OPCUAServerIdentity(cfg, p)
		if err != nil {
			return err
		}
		c, err := x509.ParseCertificate(id.Cert)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		state := ""
		if created {
			state = " (made now)"
		}
		names := slices.Clone(c.DNSNames)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "certificate\t%s%s\n", p, state)
		fmt.Fprintf(tw, "listeners\t%s\n", orDash(strings.Join(users[p], ", ")))
		fmt.Fprintf(tw, "thumbprint\t%s (SHA-1)\n", opcuatrust.Thumbprint(id.Cert))
		fmt.Fprintf(tw, "subject\t%s\n", c.Subject)
		fmt.Fprintf(tw, "application uri\t%s\n", id.AppURI)
		fmt.Fprintf(tw, "names\t%s\n", orDash(strings.Join(names, ", ")))
		fmt.Fprintf(tw, "valid\t%s to %s\n", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
