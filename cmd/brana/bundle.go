package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/brana-ot/brana/policy/bundle"
)

const bundleUsage = `usage:
  brana bundle keygen --name NAME --out PREFIX        write PREFIX.key (signer, keep offline) and PREFIX.pub (verifier)
  brana bundle sign DIR --key FILE --serial N --expires YYYY-MM-DD
                                                       write DIR/MANIFEST over every file in DIR
  brana bundle verify DIR --pubkey FILE [--after-serial N]
                                                       check signature, serial, expiry and file hashes
`

func cmdBundle(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bundleUsage)
		return exitUsage
	}
	switch args[0] {
	case "keygen":
		fs := newFlags("bundle keygen", stderr)
		name := fs.String("name", "", "key name, e.g. brana-bundles-lhota")
		out := fs.String("out", "", "file prefix")
		if fs.Parse(args[1:]) != nil || *name == "" || *out == "" {
			fmt.Fprint(stderr, bundleUsage)
			return exitUsage
		}
		skey, vkey, err := bundle.GenerateKey(*name)
		if err != nil {
			fmt.Fprintln(stderr, "brana bundle keygen:", err)
			return exitFailed
		}
		if err := os.WriteFile(*out+".key", []byte(skey+"\n"), 0o600); err != nil {
			fmt.Fprintln(stderr, "brana bundle keygen:", err)
			return exitFailed
		}
		if err := os.WriteFile(*out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
			fmt.Fprintln(stderr, "brana bundle keygen:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "signer key %s.key (keep it offline), verifier key %s.pub: %s\n", *out, *out, vkey)
		return exitOK
	case "sign":
		fs := newFlags("bundle sign", stderr)
		key := fs.String("key", "", "signer key file from keygen")
		serial := fs.Uint64("serial", 0, "bundle serial; must grow with every bundle")
		expires := fs.String("expires", "", "expiry date YYYY-MM-DD (UTC) or RFC 3339 time")
		dir := parseDir(fs, args[1:], "brana bundle sign DIR --key FILE --serial N --expires YYYY-MM-DD")
		if dir == "" || *key == "" || *serial == 0 || *expires == "" {
			fmt.Fprint(stderr, bundleUsage)
			return exitUsage
		}
		exp, err := time.Parse(time.DateOnly, *expires)
		if err != nil {
			if exp, err = time.Parse(time.RFC3339, *expires); err != nil {
				fmt.Fprintf(stderr, "brana bundle sign: --expires %q is not YYYY-MM-DD or an RFC 3339 time\n", *expires)
				return exitUsage
			}
		}
		s, err := bundle.LoadSigner(*key)
		if err != nil {
			fmt.Fprintln(stderr, "brana bundle sign:", err)
			return exitFailed
		}
		if err := bundle.Sign(dir, s, *serial, exp); err != nil {
			fmt.Fprintln(stderr, "brana bundle sign:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s: signed, serial %d, expires %s\n", dir, *serial, exp.UTC().Format(time.RFC3339))
		return exitOK
	case "verify":
		fs := newFlags("bundle verify", stderr)
		pub := fs.String("pubkey", "", "verifier key file")
		after := fs.Uint64("after-serial", 0, "the serial in force; the bundle's must not be lower")
		dir := parseDir(fs, args[1:], "brana bundle verify DIR --pubkey FILE")
		if dir == "" || *pub == "" {
			fmt.Fprint(stderr, bundleUsage)
			return exitUsage
		}
		v, err := bundle.LoadVerifier(*pub)
		if err != nil {
			fmt.Fprintln(stderr, "brana bundle verify:", err)
			return exitFailed
		}
		b, err := bundle.Verify(dir, v, *after, time.Now())
		switch {
		case b != nil && errors.Is(err, bundle.ErrExpired):
			fmt.Fprintf(stdout, "%s: signature good, serial %d, but EXPIRED on %s: gateways treat it as unknown\n", dir, b.Serial, b.Expires.UTC().Format(time.RFC3339))
			return exitFailed
		case err != nil:
			fmt.Fprintf(stdout, "%s: REJECTED: %v\n", dir, err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s: OK, serial %d, expires %s, %d listings\n", dir, b.Serial, b.Expires.UTC().Format(time.RFC3339), len(b.Listings))
		return exitOK
	}
	fmt.Fprintf(stderr, "brana bundle: unknown command %q\n%s", args[0], bundleUsage)
	return exitUsage
}
