package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/signkey"
)

const firmwareUsage = `usage:
  brana firmware hash FILE...                  SHA-256 and size of each image, with a manifest entry to fill in
  brana firmware keygen NAME [--out PREFIX]    write PREFIX.key (signer, keep offline) and PREFIX.pub (verifier);
                                               PREFIX defaults to NAME
  brana firmware sign --key FILE --in MANIFEST.yaml --out MANIFEST.signed
                                               sign the approved-image list
  brana firmware verify --keys FILE[,FILE] [--after-serial N] MANIFEST.signed [IMAGE]
                                               check the manifest and, with IMAGE, whether it is approved
                                               (exit 0: yes, 1: no)
`

func cmdFirmware(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, firmwareUsage)
		return exitUsage
	}
	switch args[0] {
	case "hash":
		return cmdFirmwareHash(args[1:], stdout, stderr)
	case "keygen":
		fs := newFlags("firmware keygen", stderr)
		name := fs.String("name", "", "key name, e.g. lhota-firmware (or give it as the argument)")
		out := fs.String("out", "", "file prefix (default: the name)")
		pos, ok := parseArgs(fs, args[1:])
		if ok && *name == "" && len(pos) == 1 {
			*name, pos = pos[0], nil
		}
		if !ok || *name == "" || len(pos) != 0 {
			fmt.Fprint(stderr, firmwareUsage)
			return exitUsage
		}
		if *out == "" {
			*out = *name
		}
		return keygen("firmware keygen", *name, *out, stdout, stderr)
	case "sign":
		return cmdFirmwareSign(args[1:], stdout, stderr)
	case "verify":
		return cmdFirmwareVerify(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "brana firmware: unknown command %q\n%s", args[0], firmwareUsage)
	return exitUsage
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, which it returns.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, bool) {
	var pos []string
	for {
		if fs.Parse(args) != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// hashFile returns the hex SHA-256 and size of a file, read as a stream:
// images may be larger than what a gateway reassembles.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func cmdFirmwareHash(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, firmwareUsage)
		return exitUsage
	}
	code := exitOK
	for _, path := range args {
		sum, size, err := hashFile(path)
		if err != nil {
			fmt.Fprintln(stderr, "brana firmware hash:", err)
			code = exitFailed
			continue
		}
		im := firmware.Image{SHA256: sum, Size: size}
		fmt.Fprintf(stdout, "%s  %d  %s\n# manifest entry: fill in and add under images:\n%s", sum, size, path, im.YAML())
	}
	return code
}

func cmdFirmwareSign(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware sign", stderr)
	key := fs.String("key", "", "signer key file from keygen")
	in := fs.String("in", "", "unsigned manifest (YAML)")
	out := fs.String("out", "", "signed manifest to write")
	pos, ok := parseArgs(fs, args)
	if !ok || len(pos) != 0 || *key == "" || *in == "" || *out == "" {
		fmt.Fprint(stderr, firmwareUsage)
		return exitUsage
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(stderr, "brana firmware sign:", err)
		return exitFailed
	}
	m, err := firmware.ParseManifestYAML(data, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "brana firmware sign: %s: %v\n", *in, err)
		return exitFailed
	}
	s, err := signkey.LoadSigner(*key)
	if err != nil {
		fmt.Fprintln(stderr, "brana firmware sign:", err)
		return exitFailed
	}
	signed, err := firmware.SignManifest(m, s)
	if err != nil {
		fmt.Fprintln(stderr, "brana firmware sign:", err)
		return exitFailed
	}
	if err := os.WriteFile(*out, signed, 0o644); err != nil {
		fmt.Fprintln(stderr, "brana firmware sign:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: signed by %s, serial %d, %d images, expires %s\n",
		*out, s.Name(), m.Serial, len(m.Images), m.Expires.UTC().Format(time.RFC3339))
	return exitOK
}

func cmdFirmwareVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware verify", stderr)
	var keys []string
	fs.Func("keys", "verifier key file(s), comma-separated or repeated", func(s string) error {
		for k := range strings.SplitSeq(s, ",") {
			if k != "" {
				keys = append(keys, k)
			}
		}
		return nil
	})
	after := fs.Uint64("after-serial", 0, "the serial in force; the manifest's must not be lower")
	pos, ok := parseArgs(fs, args)
	if !ok || len(keys) == 0 || len(pos) < 1 || len(pos) > 2 {
		fmt.Fprint(stderr, firmwareUsage)
		return exitUsage
	}
	vs, err := firmware.LoadVerifiers(keys...)
	if err != nil {
		fmt.Fprintln(stderr, "brana firmware verify:", err)
		return exitFailed
	}
	path := pos[0]
	m, err := firmware.LoadManifest(path, vs, time.Now(), *after)
	if err != nil {
		if errors.Is(err, firmware.ErrExpired) {
			err = fmt.Errorf("%w: gateways approve no image with it", err)
		}
		fmt.Fprintf(stdout, "%s: REJECTED: %v\n", path, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: OK, serial %d, signed by %s, issued %s, expires %s, %d images\n", path, m.Serial, m.Signer,
		m.Issued.Format(time.RFC3339), m.Expires.Format(time.RFC3339), len(m.Images))
	if len(pos) == 1 {
		for _, im := range m.Images {
			fmt.Fprintf(stdout, "  %s  %d  %s\n", im.SHA256, im.Size, describe(&im))
		}
		return exitOK
	}
	file := pos[1]
	sum, size, err := hashFile(file)
	if err != nil {
		fmt.Fprintln(stderr, "brana firmware verify:", err)
		return exitFailed
	}
	im, ok := m.Lookup(sum, size)
	if !ok {
		fmt.Fprintf(stdout, "%s: NOT APPROVED: sha256 %s, %d bytes is not in manifest serial %d\n", file, sum, size, m.Serial)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: APPROVED: sha256 %s, %d bytes: %s\n", file, sum, size, describe(im))
	return exitOK
}

// checkFirmware verifies the configured firmware manifest for `brana check`
// with the gateway's own function, and reports it. A manifest the gateway
// would not accept is a warning, not an error: the gateway starts without
// one (every program image commit is then refused), so check, which runs
// before each start, must not stop it either.
func checkFirmware(cfg *config.Config, stdout io.Writer) {
	if !cfg.Firmware.Enabled() {
		return
	}
	path := cfg.Firmware.Manifest
	m, err := gateway.CheckManifest(cfg, time.Now())
	if err != nil {
		fmt.Fprintf(stdout, "warning: firmware manifest %s is not accepted: %v; the gateway starts with no manifest in force "+
			"and refuses every program image commit, and a reload with it is rejected\n", path, err)
		return
	}
	issued := ""
	if !m.Issued.IsZero() {
		issued = "issued " + m.Issued.UTC().Format(time.RFC3339) + ", "
	}
	fmt.Fprintf(stdout, "firmware manifest %s: ok: serial %d, %sexpires %s, signed by %s, %d approved images\n",
		path, m.Serial, issued, m.Expires.UTC().Format(time.RFC3339), m.Signer, len(m.Images))
}

func describe(im *firmware.Image) string {
	return fmt.Sprintf("%s %s %s (%s; approved by %s)", im.Vendor, im.Product, im.Version, im.Origin, strings.Join(im.ApprovedBy, ", "))
}
