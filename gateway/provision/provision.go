// Package provision sets a gateway up for its first start (`brana init`):
// the config file from the starter config when there is none, the data
// directory, every key and certificate the gateway would otherwise make
// lazily at start, the first engineer account, and the ownership the
// service user needs. Each key is made by the function the gateway itself
// uses, so there is one code path per key; an existing key is never
// replaced, and a second run changes nothing.
package provision

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/brana-ot/brana/gateway"
	"github.com/brana-ot/brana/gateway/adminapi"
	"github.com/brana-ot/brana/gateway/atomicfile"
	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/gateway/sshlink"
	"github.com/brana-ot/brana/policy"
)

// DefaultEngineer is the first account's user name unless one is given.
const DefaultEngineer = "engineer"

// MinPassword is the shortest password accepted for an engineer account.
const MinPassword = 12

// Errors of Run.
var (
	ErrConfig        = errors.New("provision: config")
	ErrClockBehind   = errors.New("provision: the system clock is earlier than the last time brana saw")
	ErrShortPassword = fmt.Errorf("provision: the password is shorter than %d characters", MinPassword)
)

// Options say what Run sets up.
type Options struct {
	Config   string // config file; written from Starter when it does not exist
	Starter  []byte // the config written then; nil: config.Starter
	Engineer string // the account to add; "": DefaultEngineer, and only when the accounts file has none
	Password string // its password; "": a generated one, returned in Result
	User     string // the service user that gets the data directory, when AsRoot; "": nobody
	AsRoot   bool   // running as root: hand files to User (and the config to root:User's group)
	// Force makes certificates even when the clock is behind the last time
	// brana saw, although their validity dates will be wrong.
	Force bool
	Now   func() time.Time // default time.Now
	Log   *slog.Logger     // what the key functions log; default none
}

// Item is one key or certificate.
type Item struct {
	What        string // "ssh host key", "console certificate", ...
	Path        string
	Fingerprint string // as the operator compares it, with its kind: "SHA256:…", "SHA-256 AB:CD:…"
	Created     bool
	Note        string // what to do with it, if anything
}

// Account is an engineer account Run added.
type Account struct {
	User      string
	Files     []string // accounts files it was added to
	Password  string   // the generated password; "" when it was given
	Generated bool
}

// Result is what Run did, for `brana init` to print.
type Result struct {
	Config        *config.Config
	Policy        *policy.Policy
	ConfigWritten bool // the starter config was written to Options.Config
	DataDir       string
	Items         []Item
	Account       *Account // nil: no account was added
	Notes         []string // things the operator should know (accounts kept, ownership)
	LastSeen      time.Time
	ClockBehind   bool // the clock is more than a minute before LastSeen
}

// Run sets up the gateway as Options say. A config that does not load is
// ErrConfig wrapping config.Load's errors (which name file, line and
// field), and then nothing is made.
func Run(o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Starter == nil {
		o.Starter = config.Starter
	}
	// What the operator typed is checked before anything is made.
	if o.Engineer != "" {
		if err := adminapi.CheckUser(o.Engineer); err != nil {
			return nil, fmt.Errorf("provision: --engineer: %w", err)
		}
	}
	if o.Password != "" && len([]rune(o.Password)) < MinPassword {
		return nil, ErrShortPassword
	}
	res := &Result{}
	var err error
	if res.ConfigWritten, err = writeStarter(o.Config, o.Starter); err != nil {
		return nil, err
	}
	cfg, pol, err := load(o.Config)
	if err != nil {
		return nil, err
	}
	res.Config, res.Policy = cfg, pol
	res.DataDir = gateway.DataDir(cfg)
	res.LastSeen, res.ClockBehind = gateway.ClockBehind(res.DataDir, o.Now())
	if res.ClockBehind && !o.Force {
		if missing := missingCertificates(cfg); len(missing) > 0 {
			return res, fmt.Errorf("%w (%s; now %s): certificates made now would carry wrong dates: %s. Set the clock (NTP, RTC), or use --force",
				ErrClockBehind, res.LastSeen.Format(time.RFC3339), o.Now().Format(time.RFC3339), strings.Join(missing, ", "))
		}
	}
	if err := os.MkdirAll(res.DataDir, 0o750); err != nil {
		return res, fmt.Errorf("provision: data directory: %w", err)
	}
	if err := makeKeys(cfg, o.Log, res); err != nil {
		return res, err
	}
	if err := addEngineer(cfg, o, res); err != nil {
		return res, err
	}
	if o.AsRoot {
		if err := own(cfg, o, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// writeStarter writes starter to path when path does not exist.
func writeStarter(path string, starter []byte) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("provision: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("provision: %w", err)
	}
	if err := atomicfile.WriteFile(path, starter, 0o640); err != nil {
		return false, fmt.Errorf("provision: writing the starter config: %w", err)
	}
	return true, nil
}

// load validates the config and compiles its policy as `brana check` does.
// The accounts files it names are made empty first when they are missing,
// since the config does not load without them; when it does not load, they
// are removed again.
func load(path string) (*config.Config, *policy.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var made []string
	for _, f := range config.AccountFiles(path, data) {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return nil, nil, fmt.Errorf("provision: accounts: %w", err)
		}
		if err := atomicfile.WriteFile(f, []byte("# who may log in to the console and the admin socket; brana init, brana account hash\naccounts: []\n"), 0o640); err != nil {
			return nil, nil, fmt.Errorf("provision: accounts: %w", err)
		}
		made = append(made, f)
	}
	cfg, err := config.Load(path)
	var pol *policy.Policy
	if err == nil {
		listings, _ := gateway.Listings(cfg)
		pol, err = policy.Compile(cfg.Spec, cfg.TargetNames(), policy.WithListings(listings))
	}
	if err != nil {
		for _, f := range made {
			os.Remove(f)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, pol, nil
}

// secureOPCUA lists the OPC UA listeners that present brana's server
// certificate, one per certificate file.
func secureOPCUA(cfg *config.Config) []config.Listener {
	var out []config.Listener
	for _, lc := range cfg.Listeners {
		if lc.Protocol == "opcua" && gateway.OPCUASecured(lc) &&
			!slices.ContainsFunc(out, func(l config.Listener) bool { return l.Certificate == lc.Certificate }) {
			out = append(out, lc)
		}
	}
	return out
}

func hasOPCUATarget(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Targets, func(t config.Target) bool { return t.Protocol == "opcua" })
}

// missingCertificates are the certificates (which have validity dates) Run
// would make.
func missingCertificates(cfg *config.Config) []string {
	var paths []string
	if cfg.Console.Enabled() {
		paths = append(paths, cfg.Console.Certificate)
	}
	for _, lc := range secureOPCUA(cfg) {
		paths = append(paths, lc.Certificate)
	}
	if hasOPCUATarget(cfg) {
		paths = append(paths, gateway.OPCUAClientCertPath(cfg))
	}
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}

// makeKeys loads or makes every key the config needs, through the
// gateway's own functions.
func makeKeys(cfg *config.Config, log *slog.Logger, res *Result) error {
	if cfg.SSH.Enabled() {
		s, created, err := sshlink.LoadOrCreateHostKey(cfg.SSH.HostKey, log)
		if err != nil {
			return err
		}
		// The public half, as sshd keeps it beside the key: for vendors'
		// known_hosts files and for ssh-keygen -lf.
		pub := cfg.SSH.HostKey + ".pub"
		if _, err := os.Stat(pub); errors.Is(err, fs.ErrNotExist) {
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " brana ssh host key\n"
			if err := atomicfile.WriteFile(pub, []byte(line), 0o644); err != nil {
				return fmt.Errorf("provision: ssh host public key: %w", err)
			}
		}
		res.Items = append(res.Items, Item{What: "ssh host key", Path: cfg.SSH.HostKey, Created: created,
			Fingerprint: ssh.FingerprintSHA256(s.PublicKey()), Note: "vendors compare it when ssh first connects; public key " + pub})
	}

	key, created, err := gateway.AuditKey(cfg)
	if err != nil {
		return err
	}
	res.Items = append(res.Items, Item{What: "audit signing key", Path: gateway.SigningKeyPath(cfg), Created: created,
		Fingerprint: "key id " + audit.KeyID(key.Public().(ed25519.PublicKey)),
		Note:        "keep a copy of " + gateway.PublicKeyPath(cfg) + " away from this gateway (brana audit verify --pubkey)"})

	if cfg.Console.Enabled() {
		_, fp, created, err := gateway.ConsoleCertificate(cfg)
		if err != nil {
			return err
		}
		res.Items = append(res.Items, Item{What: "console certificate", Path: cfg.Console.Certificate, Created: created,
			Fingerprint: "SHA-256 " + fp, Note: "compare it with what the browser shows at the first visit"})
	}

	for _, lc := range secureOPCUA(cfg) {
		id, created, err := gateway.OPCUAServerIdentity(cfg, lc.Certificate)
		if err != nil {
			return err
		}
		if _, err := opcuatrust.Open(lc.TrustDir); err != nil {
			return err
		}
		res.Items = append(res.Items, Item{What: "opc ua server certificate", Path: lc.Certificate, Created: created,
			Fingerprint: "SHA-1 thumbprint " + opcuatrust.Thumbprint(id.Cert), Note: "OPC UA clients trust it (" + id.AppURI + ")"})
	}

	if hasOPCUATarget(cfg) {
		id, created, err := gateway.OPCUAClientIdentity(cfg)
		if err != nil {
			return err
		}
		res.Items = append(res.Items, Item{What: "opc ua client certificate", Path: gateway.OPCUAClientCertPath(cfg), Created: created,
			Fingerprint: "SHA-1 thumbprint " + opcuatrust.Thumbprint(id.Cert), Note: "the OPC UA PLCs must trust it (" + id.AppURI + ")"})
	}
	return nil
}

// accountFiles are the distinct accounts files the config names, the
// console's first.
func accountFiles(cfg *config.Config) []string {
	var out []string
	for _, f := range []string{cfg.Console.Accounts, cfg.Admin.Accounts} {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// addEngineer adds the engineer account (role approver) to each accounts
// file that does not have it: the named user, or DefaultEngineer into a
// file without accounts.
func addEngineer(cfg *config.Config, o Options, res *Result) error {
	files := accountFiles(cfg)
	if len(files) == 0 {
		res.Notes = append(res.Notes, "no accounts file is configured (admin.accounts): no engineer account was made, and nobody can log in")
		return nil
	}
	name := o.Engineer
	if name == "" {
		name = DefaultEngineer
	}
	var into []string
	for _, f := range files {
		a, err := adminapi.LoadAccounts(f)
		if err != nil {
			return err
		}
		list := a.List()
		switch {
		case slices.ContainsFunc(list, func(acc adminapi.Account) bool { return acc.User == name }):
			res.Notes = append(res.Notes, fmt.Sprintf("account %s is in %s already: left as it is", name, f))
		case o.Engineer == "" && len(list) > 0:
			res.Notes = append(res.Notes, fmt.Sprintf("%s has %d account(s): none added (--engineer NAME adds one)", f, len(list)))
		default:
			into = append(into, f)
		}
	}
	if len(into) == 0 {
		if o.Password != "" {
			res.Notes = append(res.Notes, "the password given was not used: no account was added")
		}
		return nil
	}
	acc := &Account{User: name, Password: o.Password}
	if acc.Password == "" {
		acc.Password, acc.Generated = newPassword(), true
	}
	hash, err := adminapi.HashPassword(acc.Password)
	if err != nil {
		return err
	}
	for _, f := range into {
		if err := adminapi.AddAccount(f, adminapi.Account{User: name, Roles: []string{adminapi.RoleApprover}, Hash: hash}); err != nil {
			return err
		}
		acc.Files = append(acc.Files, f)
	}
	if !acc.Generated {
		acc.Password = ""
	}
	res.Account = acc
	return nil
}

// newPassword is 120 random bits as six groups of four lower-case base32
// characters (no 0, 1 or 8 to mistake), easy to read out and type.
func newPassword() string {
	var b [15]byte
	rand.Read(b[:])
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
	var out []string
	for i := 0; i < len(s); i += 4 {
		out = append(out, s[i:i+4])
	}
	return strings.Join(out, "-")
}

// own gives the data directory and every key to the service user, and the
// config and accounts files to root and the user's group, mode 0640, so
// that the service can read them and not change them.
func own(cfg *config.Config, o Options, res *Result) error {
	if o.User == "" {
		return nil
	}
	u, err := user.Lookup(o.User)
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("user %s does not exist: files stay owned by root, and a service running as %s could not read them", o.User, o.User))
		return nil
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("provision: user %s: uid %q, gid %q", o.User, u.Uid, u.Gid)
	}
	group := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		group = g.Name
	}
	data, err := filepath.EvalSymlinks(res.DataDir) // a data folder linked to other storage is walked there
	if err != nil {
		return fmt.Errorf("provision: ownership: %w", err)
	}
	if err := ownable(data, filepath.Dir(o.Config)); err != nil {
		return err
	}
	err = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("provision: ownership: %w", err)
	}
	for _, it := range res.Items {
		// A key made elsewhere before (say the host's own SSH key) keeps
		// its owner: only what init made goes to the service.
		if !it.Created {
			continue
		}
		for _, p := range []string{it.Path, it.Path + ".pub"} {
			if inside(res.DataDir, p) {
				continue
			}
			if err := os.Lchown(p, uid, gid); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("provision: ownership: %w", err)
			}
		}
	}
	files := append([]string{o.Config}, accountFiles(cfg)...)
	for _, f := range files {
		if err := os.Chown(f, 0, gid); err != nil {
			return fmt.Errorf("provision: ownership: %w", err)
		}
		if err := os.Chmod(f, 0o640); err != nil {
			return fmt.Errorf("provision: ownership: %w", err)
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%s and the keys belong to %s:%s; %s: root:%s, mode 0640",
		res.DataDir, o.User, group, strings.Join(files, ", "), group))
	return nil
}

// systemDirs are never a data directory: handing one of them to the service
// user would give it the system.
var systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/opt", "/proc", "/root",
	"/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log"}

// ownable refuses a data directory that is a system directory or holds the
// config, before init gives everything under it to the service user: a
// mistyped data_dir must not hand over /var or /etc/brana.
func ownable(data, configDir string) error {
	clean := filepath.Clean(data)
	for _, d := range systemDirs {
		if clean == d {
			return fmt.Errorf("provision: gateway.data_dir %s is a system directory; give brana a directory of its own, such as /var/lib/brana", data)
		}
	}
	if cd, err := filepath.EvalSymlinks(configDir); err == nil && inside(clean, cd) {
		return fmt.Errorf("provision: gateway.data_dir %s holds the config directory %s; the service must not own its own config", data, configDir)
	}
	return nil
}

// inside reports whether path is dir or under it.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
