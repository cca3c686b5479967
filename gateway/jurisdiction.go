package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/policy/bundle"
	"github.com/brana-ot/brana/policy/geoip"
)

// jurisdiction holds what admission needs at run time beyond the compiled
// policy: the listings (built in plus the signed bundle's), the offline IP
// databases, and whether the bundle and the clock can be trusted.
type jurisdiction struct {
	listings      []policy.ListingEntry
	geo           *geoip.DB
	bundle        *bundle.Bundle // nil: none configured or none ever verified
	bundleExpired atomic.Bool
	clockTrusted  atomic.Bool
	notes         []string // what an operator should know, for the start-up audit record
}

// loadJurisdiction verifies the data bundle (keeping the last good copy when
// a new one fails) and opens the IP databases. Problems are not fatal: a
// missing database or a bad bundle makes remote sessions need approval.
func loadJurisdiction(cfg *config.Config, log *slog.Logger) *jurisdiction {
	j := &jurisdiction{listings: bundle.DefaultListings()}
	j.clockTrusted.Store(checkClock(DataDir(cfg), log))
	spec := cfg.Spec.Jurisdiction
	country, asn := spec.GeoIP.CountryDB, spec.GeoIP.ASNDB
	if spec.Bundle.Dir != "" {
		b := j.verifyBundle(cfg, log)
		if b == nil {
			// A bundle is configured but none can be trusted: its listings
			// and databases are unknown, so remote sessions need approval.
			j.bundleExpired.Store(true)
			j.note(log, "no verified data bundle: every remote session needs approval")
		}
		if b != nil {
			j.bundle = b
			j.listings = append(j.listings, b.Listings...)
			if b.CountryDB != "" {
				country = b.CountryDB
			}
			if b.ASNDB != "" {
				asn = b.ASNDB
			}
		}
	}
	if country != "" || asn != "" {
		db, err := geoip.Open(country, asn)
		if err != nil {
			j.note(log, "IP databases not usable; remote sessions need approval: "+err.Error())
		} else {
			j.geo = db
		}
	}
	return j
}

func (j *jurisdiction) note(log *slog.Logger, msg string) {
	log.Warn(msg)
	j.notes = append(j.notes, msg)
}

// verifyBundle checks the configured bundle; on success it becomes the kept
// copy, on failure the kept copy (if any) is used instead.
func (j *jurisdiction) verifyBundle(cfg *config.Config, log *slog.Logger) *bundle.Bundle {
	spec := cfg.Spec.Jurisdiction.Bundle
	statePath := filepath.Join(DataDir(cfg), "bundle.state")
	kept := filepath.Join(DataDir(cfg), "bundle")
	v, err := bundle.LoadVerifier(spec.PublicKey)
	if err != nil {
		j.note(log, "data bundle not used: "+err.Error())
		return nil
	}
	st, err := bundle.LoadState(statePath)
	if err != nil {
		j.note(log, "data bundle state unreadable: "+err.Error())
	}
	now := time.Now()
	b, err := bundle.VerifyState(spec.Dir, v, st, now)
	if b != nil && (err == nil || errors.Is(err, bundle.ErrExpired)) {
		if spec.Dir != kept {
			if cerr := copyDir(spec.Dir, kept); cerr != nil {
				j.note(log, "could not keep a copy of the data bundle: "+cerr.Error())
			} else if kb, kerr := bundle.VerifyState(kept, v, b.State(), now); kb != nil {
				b, err = kb, kerr
			}
		}
		if serr := bundle.SaveState(statePath, b.State()); serr != nil {
			j.note(log, "data bundle state not saved: "+serr.Error())
		}
		j.accept(b, err, log)
		return b
	}
	j.note(log, "data bundle in "+spec.Dir+" rejected: "+err.Error())
	if kb, kerr := bundle.VerifyState(kept, v, st, now); kb != nil && (kerr == nil || errors.Is(kerr, bundle.ErrExpired)) {
		j.note(log, "using the last good data bundle, serial "+strconv.FormatUint(kb.Serial, 10))
		j.accept(kb, kerr, log)
		return kb
	}
	return nil
}

func (j *jurisdiction) accept(b *bundle.Bundle, err error, log *slog.Logger) {
	if errors.Is(err, bundle.ErrExpired) || b.Expired {
		j.bundleExpired.Store(true)
		j.note(log, fmt.Sprintf("data bundle serial %d expired on %s: every remote session needs approval", b.Serial, b.Expires.Format(time.DateOnly)))
		return
	}
	log.Info("data bundle verified", "serial", b.Serial, "expires", b.Expires)
}

// signals gathers what the policy's admission looks at for a session from src.
func (j *jurisdiction) signals(src string) policy.Signals {
	sig := policy.Signals{Now: time.Now(), ClockTrusted: j.clockTrusted.Load()}
	if ap, err := netip.ParseAddrPort(src); err == nil {
		sig.Source = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(src); err == nil {
		sig.Source = a.Unmap()
	}
	sig.BundleExpired = j.expired(sig.Now)
	j.geo.Signals(sig.Source, &sig)
	return sig
}

// expired reports that the data bundle is configured but not current: it
// expired (at start or since), or none could be verified.
func (j *jurisdiction) expired(now time.Time) bool {
	return j.bundleExpired.Load() || (j.bundle != nil && now.After(j.bundle.Expires))
}

// touchClock records that brana saw the clock at now, so that a clock set
// back later (before or after a restart) is noticed.
func (j *jurisdiction) touchClock(dataDir string) {
	if j.clockTrusted.Load() {
		os.WriteFile(filepath.Join(dataDir, "last-seen"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640)
	}
}

// Listings returns the listings a config's policy is compiled with: the
// built-in ones plus a configured data bundle's, verified without changing
// any state (for `brana check` and `brana policy explain`).
func Listings(cfg *config.Config) ([]policy.ListingEntry, []string) {
	l := bundle.DefaultListings()
	spec := cfg.Spec.Jurisdiction.Bundle
	if spec.Dir == "" {
		return l, nil
	}
	v, err := bundle.LoadVerifier(spec.PublicKey)
	if err != nil {
		return l, []string{"data bundle not used: " + err.Error()}
	}
	st, _ := bundle.LoadState(filepath.Join(DataDir(cfg), "bundle.state"))
	for _, dir := range []string{spec.Dir, filepath.Join(DataDir(cfg), "bundle")} {
		b, err := bundle.VerifyState(dir, v, st, time.Now())
		if b != nil && (err == nil || errors.Is(err, bundle.ErrExpired)) {
			notes := []string{"data bundle " + dir + " serial " + strconv.FormatUint(b.Serial, 10)}
			if err != nil {
				notes = append(notes, err.Error())
			}
			return append(l, b.Listings...), notes
		}
	}
	return l, []string{"no verified data bundle: remote sessions would need approval"}
}

func (j *jurisdiction) close() {
	if j != nil && j.geo != nil {
		j.geo.Close()
	}
}

// checkClock compares the clock with the latest time brana has seen (kept in
// the data directory). A clock that went back (a Pi without a battery-backed
// clock before NTP) cannot be trusted for review dates and expiries.
func checkClock(dataDir string, log *slog.Logger) bool {
	now := time.Now()
	last, behind := ClockBehind(dataDir, now)
	if behind {
		log.Error("the system clock is earlier than the last time brana saw; time-dependent decisions are treated as unknown",
			"now", now.Format(time.RFC3339), "last_seen", last.Format(time.RFC3339))
		return false
	}
	os.MkdirAll(dataDir, 0o750)
	os.WriteFile(filepath.Join(dataDir, "last-seen"), []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o640)
	return true
}

// ClockBehind reads the latest time brana has seen on this gateway
// (DATA_DIR/last-seen; zero when there is none) and reports whether now is
// more than a minute earlier: then the gateway does not trust the clock, and
// treats time-dependent decisions as unknown. It only reads.
func ClockBehind(dataDir string, now time.Time) (last time.Time, behind bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "last-seen"))
	if err != nil {
		return time.Time{}, false
	}
	last, err = time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, false
	}
	return last, now.Before(last.Add(-time.Minute))
}

// copyDir replaces dst with a copy of the regular files in src.
func copyDir(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o640); err != nil {
			return err
		}
	}
	os.RemoveAll(dst)
	return os.Rename(tmp, dst)
}
