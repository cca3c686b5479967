package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/brana-ot/brana/policy/bundle"
	"github.com/brana-ot/brana/signkey"
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
		return keygen("bundle keygen", *name, *out, stdout, stderr)
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

// keygen writes a new signing key pair; bundles and firmware manifests
// use the same kind of key.
func keygen(cmd, name, prefix string, stdout, stderr io.Writer) int {
	skey, vkey, err := signkey.Generate(name)
	if err != nil {
		fmt.Fprintf(stderr, "brana %s: %v\n", cmd, err)
		return exitFailed
	}
	sp, vp, err := signkey.WritePair(prefix, skey, vkey)
	if err != nil {
		fmt.Fprintf(stderr, "brana %s: %v\n", cmd, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "signer key %s (keep it offline), verifier key %s: %s\n", sp, vp, vkey)
	return exitOK
}
