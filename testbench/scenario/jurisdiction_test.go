package scenario

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/policy/bundle"
	"github.com/brana-ot/brana/testbench/gwtest"
)

// Sources of the parties of the jurisdiction tests.
const (
	jzMonitoringIP  = "127.0.0.1" // monitoring: a local operator, no evidence (a local party)
	jzEngineeringIP = "127.0.0.2" // engineering: an integrator with full non-PRC evidence (not a local party)
	jzListedIP      = "127.0.0.5" // vendor-listed: non-PRC evidence, but its legal name is on the bundle's block list
)

// jzListedName is the legal name of vendor-listed, which the test bundle lists.
const jzListedName = "Listed Automation Kft."

// jzBlockListing lists vendor-listed with action block.
const jzBlockListing = `entries:
  - name: "Listed Automation Kft."
    aliases: ["Listed Automation"]
    country: CN
    action: block
    source: "Test advisory TA-2026-17"
    reference: "https://example.invalid/ta-2026-17"
    date: "2026-11-01"
`

// jzNoteListing lists somebody else, for information only: with it in
// force, vendor-listed is admitted.
const jzNoteListing = `entries:
  - name: "Somebody Else Ltd."
    country: CN
    action: note
    source: "Test register"
    date: "2026-11-01"
`

// jzConfig is a gateway on data dir dataDir (absolute, so that a restart
// finds the same state) with one Modbus TCP target plc at plcAddr, the three
// parties above, rules that let each read, and the given jurisdiction section
// (top-level YAML, may be empty).
func jzConfig(dataDir, plcAddr, jurisdiction string) string {
	return `version: 1
gateway:
  name: "jurisdiction test gateway"
  data_dir: ` + strconv.Quote(dataDir) + `
audit:
  durability: batch
  sync_interval: 10ms
listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc
targets:
  - name: plc
    transport: tcp
    address: ` + plcAddr + `
parties:
  - id: monitoring
    name: "Dispatch monitoring"
    organisation: "Distribuce Lhota a.s."
    kind: operator
    networks: [127.0.0.1/32]
  - id: engineering
    name: "Protection engineer"
    organisation: "Servis Morava s.r.o."
    legal_name: "Servis Morava s.r.o."
    kind: integrator
    networks: [127.0.0.2/32]
    evidence:
      established_in: CZ
      management_in: [CZ]
      operates_from: [CZ]
      data_to: [CZ]
      reviewed_on: 2026-10-01
      review_by: 2099-12-31
  - id: vendor-listed
    name: "Petra Horváth (service engineer)"
    organisation: "` + jzListedName + `"
    legal_name: "` + jzListedName + `"
    kind: vendor
    networks: [127.0.0.5/32]
    evidence:
      established_in: HU
      management_in: [HU]
      operates_from: [HU]
      data_to: [HU]
      reviewed_on: 2026-10-01
      review_by: 2099-12-31
rules:
  - name: everyone-reads
    parties: [monitoring, engineering, vendor-listed]
    targets: [plc]
    classes: [read]
` + jurisdiction
}

// jzBundleYAML is the jurisdiction section naming a bundle and its key.
func jzBundleYAML(dir, pubFile string) string {
	return "jurisdiction:\n  bundle:\n    dir: " + strconv.Quote(dir) + "\n    public_key: " + strconv.Quote(pubFile) + "\n"
}

// jzKey makes a note signing key and writes its verifier key to a file.
func jzKey(t *testing.T, dir, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, name+".pub")
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return signer, pub
}

// jzMakeBundle replaces dir with a bundle of the given files, signed by
// signer with serial and expiry (signer nil: not signed).
func jzMakeBundle(t *testing.T, dir string, files map[string]string, signer note.Signer, serial uint64, expires time.Time) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if signer != nil {
		if err := bundle.Sign(dir, signer, serial, expires); err != nil {
			t.Fatalf("bundle.Sign: %v", err)
		}
	}
}

// jzHealth is GET /v1/health.
type jzHealth struct {
	Status  string `json:"status"`
	Gateway struct {
		ClockTrusted *bool `json:"clock_trusted"`
		Bundle       *struct {
			Serial  uint64    `json:"serial"`
			Expires time.Time `json:"expires"`
			Expired bool      `json:"expired"`
		} `json:"bundle"`
	} `json:"gateway"`
}

// jzGetHealth asks the admin socket for the health, without credentials.
func jzGetHealth(t *testing.T, socket string) jzHealth {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://brana/v1/health")
	if err != nil {
		t.Fatalf("GET /v1/health: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/health without credentials: HTTP %d; want 200", resp.StatusCode)
	}
	var h jzHealth
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("health: %v", err)
	}
	if h.Gateway.ClockTrusted == nil {
		t.Fatal("health does not say whether the clock is trusted")
	}
	return h
}

// jzMaxSeq is the highest sequence number in the gateway's audit file (0: none).
func jzMaxSeq(t *testing.T, gw *gwtest.Gateway) uint64 {
	t.Helper()
	var max uint64
	for _, r := range readAudit(t, gw.AuditPath()) {
		max = r.Seq
	}
	return max
}

// jzStartRecord waits for the gateway.start record written after seq.
func jzStartRecord(t *testing.T, gw *gwtest.Gateway, after uint64) auditRec {
	t.Helper()
	return waitAudit(t, gw, "the gateway.start record", func(r *auditRec) bool { return r.Type == "gateway.start" && r.Seq > after })
}

// jzRefused connects from src and expects the gateway to close the
// connection at once with a session.refused record, which it returns.
func jzRefused(t *testing.T, gw *gwtest.Gateway, src string) auditRec {
	t.Helper()
	rc := dialFrom(t, gw.ModbusAddr("scada"), src)
	rc.expectClosed(3 * time.Second)
	return waitAudit(t, gw, "the refusal of "+rc.source(), func(r *auditRec) bool {
		return r.Type == "session.refused" && r.Source == rc.source()
	})
}

// jzReads connects from src and expects a read of holding 100-101 to pass.
func jzReads(t *testing.T, gw *gwtest.Gateway, src string, plcUnit byte) {
	t.Helper()
	rc := dialFrom(t, gw.ModbusAddr("scada"), src)
	if got := registers(t, rc.call(1, pduReadHolding(100, 2))); len(got) != 2 || got[0] != mark(plcUnit, 100) {
		t.Fatalf("read from %s: %v; want %v", src, got, marks(plcUnit, 100, 2))
	}
}

// jzHeld connects from src and expects its read to be held for approval
// (exception 06) in a session whose open record says "held" for reason.
func jzHeld(t *testing.T, gw *gwtest.Gateway, plcTotal func() uint64, src, reason string) {
	t.Helper()
	before := plcTotal()
	rc := dialFrom(t, gw.ModbusAddr("scada"), src)
	expectException(t, rc.call(1, pduReadHolding(100, 2)), 3, 0x06)
	if n := plcTotal(); n != before {
		t.Fatalf("a held session's read reached the PLC (%d requests, before %d)", n, before)
	}
	open := waitAudit(t, gw, "the session.open of "+rc.source(), func(r *auditRec) bool {
		return r.Type == "session.open" && r.Source == rc.source()
	})
	if open.Decision != "held" || !strings.Contains(open.Detail, "approval (step 5)") || !strings.Contains(open.Detail, reason) {
		t.Fatalf("session from %s opened with decision %q; want held at step 5 naming %q: %s", src, open.Decision, reason, open.String())
	}
}

// The signed data bundle through the real gateway: its block listing refuses
// a vendor that the config alone would admit; a tampered, rolled-back,
// re-used, foreign-signed or padded bundle is rejected at start (and the
// start record says so) while the kept last good copy still refuses the
// vendor; a newer good bundle replaces the kept copy; an expired one is used
// but makes every non-local session need approval.
func TestDataBundleThroughGateway(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	bundleDir := filepath.Join(dir, "bundle-in")
	signer, pub := jzKey(t, dir, "brana-test-bundle")
	other, _ := jzKey(t, dir, "someone-else")
	cfg := jzConfig(dataDir, plcAddr, jzBundleYAML(bundleDir, pub))
	month := time.Now().Add(30 * 24 * time.Hour)

	// Without the bundle the vendor is admitted by the rules: what follows
	// is the bundle's doing.
	{
		gw := gwtest.Start(t, jzConfig(filepath.Join(dir, "no-bundle"), plcAddr, ""))
		jzReads(t, gw, jzListedIP, 1)
		gw.Stop(t)
	}

	// Every start appends to the same audit log: a start's record is the
	// first gateway.start after the previous run's last record.
	var lastSeq uint64
	run := func(t *testing.T) (*gwtest.Gateway, auditRec) {
		t.Helper()
		gw := gwtest.Start(t, cfg)
		return gw, jzStartRecord(t, gw, lastSeq)
	}
	stop := func(t *testing.T, gw *gwtest.Gateway) {
		t.Helper()
		gw.Stop(t)
		lastSeq = jzMaxSeq(t, gw)
	}

	jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 5, month)
	gw, start := run(t)
	if strings.Contains(start.Detail, "rejected") || strings.Contains(start.Detail, "expired") {
		t.Fatalf("a good bundle is reported as a problem at start: %s", start.Detail)
	}
	ref := jzRefused(t, gw, jzListedIP)
	if ref.Reason != "jurisdiction" || ref.Party != "vendor-listed" || ref.Decision != "deny" {
		t.Fatalf("refusal record: %s; want reason jurisdiction, party vendor-listed, decision deny", ref.String())
	}
	for _, want := range []string{"step 2", "listed with action block", "Test advisory TA-2026-17", jzListedName} {
		if !strings.Contains(ref.Detail, want) {
			t.Fatalf("refusal detail does not name %q: %s", want, ref.Detail)
		}
	}
	jzReads(t, gw, jzEngineeringIP, 1) // others are not affected
	h := jzGetHealth(t, gw.AdminSocket())
	if h.Gateway.Bundle == nil || h.Gateway.Bundle.Serial != 5 || h.Gateway.Bundle.Expired {
		t.Fatalf("health bundle %+v; want serial 5, not expired", h.Gateway.Bundle)
	}
	stop(t, gw)
	if _, err := os.Stat(filepath.Join(dataDir, "bundle", bundle.ManifestFile)); err != nil {
		t.Fatalf("no kept copy of the good bundle: %v", err)
	}

	rejected := []struct {
		name string
		make func(t *testing.T) // replaces bundleDir
		why  string             // in the start record
	}{
		{"tampered listings", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 5, month)
			path := filepath.Join(bundleDir, "listings.yaml")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			i := strings.Index(string(b), "Listed Automation Kft.")
			b[i] = 'X' // one byte: the entry no longer names the vendor
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not match the manifest"},
		{"rolled back serial", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, signer, 3, month)
		}, "serial goes back"},
		{"serial reused for other content", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, signer, 5, month)
		}, "serial reused"},
		{"signed by another key", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, other, 9, month)
		}, "signature does not verify"},
		{"unsigned file added", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 5, month)
			if err := os.WriteFile(filepath.Join(bundleDir, "extra.yaml"), []byte("entries: []\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not listed in the manifest"},
		{"no manifest", func(t *testing.T) {
			jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, nil, 0, month)
		}, "MANIFEST"},
	}
	for _, tc := range rejected {
		t.Run("rejected/"+tc.name, func(t *testing.T) {
			tc.make(t)
			gw, start := run(t)
			defer stop(t, gw)
			for _, want := range []string{"data bundle in " + bundleDir + " rejected", tc.why, "using the last good data bundle, serial 5"} {
				if !strings.Contains(start.Detail, want) {
					t.Fatalf("gateway.start record does not say %q: %s", want, start.Detail)
				}
			}
			ref := jzRefused(t, gw, jzListedIP)
			if ref.Reason != "jurisdiction" || !strings.Contains(ref.Detail, "Test advisory TA-2026-17") {
				t.Fatalf("with the kept bundle the vendor is not refused by its listing: %s", ref.String())
			}
			if h := jzGetHealth(t, gw.AdminSocket()); h.Gateway.Bundle == nil || h.Gateway.Bundle.Serial != 5 {
				t.Fatalf("health bundle %+v; want the kept serial 5", h.Gateway.Bundle)
			}
		})
	}

	// A newer good bundle without the listing is accepted and replaces the
	// kept copy: the vendor is admitted, and a bad bundle after it falls
	// back to serial 6, not 5.
	t.Run("newer bundle replaces the kept copy", func(t *testing.T) {
		jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, signer, 6, month)
		gw, start := run(t)
		if strings.Contains(start.Detail, "rejected") {
			t.Fatalf("serial 6 rejected: %s", start.Detail)
		}
		jzReads(t, gw, jzListedIP, 1)
		stop(t, gw)

		jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 4, month)
		gw, start = run(t)
		defer stop(t, gw)
		if !strings.Contains(start.Detail, "using the last good data bundle, serial 6") {
			t.Fatalf("rolled-back serial 4 after 6: start record %s", start.Detail)
		}
		jzReads(t, gw, jzListedIP, 1)
	})

	// An expired bundle, signed correctly, is used (its listings apply) but
	// every session that is not local needs approval; a local party's does not.
	t.Run("expired bundle", func(t *testing.T) {
		jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 7, time.Now().Add(-time.Hour))
		gw, start := run(t)
		defer stop(t, gw)
		if !strings.Contains(start.Detail, "data bundle serial 7 expired") {
			t.Fatalf("gateway.start record does not say the bundle expired: %s", start.Detail)
		}
		h := jzGetHealth(t, gw.AdminSocket())
		if h.Gateway.Bundle == nil || h.Gateway.Bundle.Serial != 7 || !h.Gateway.Bundle.Expired {
			t.Fatalf("health bundle %+v; want serial 7, expired", h.Gateway.Bundle)
		}
		if ref := jzRefused(t, gw, jzListedIP); !strings.Contains(ref.Detail, "Test advisory TA-2026-17") {
			t.Fatalf("the expired bundle's block listing does not apply: %s", ref.String())
		}
		jzHeld(t, gw, plc.Counters().Total, jzEngineeringIP, "data bundle: expired")
		jzReads(t, gw, jzMonitoringIP, 1)
	})
}

// A configured bundle that fails verification when there is no last good
// copy (first start, or the kept copy is lost) leaves the gateway without
// the operator's listings; loadJurisdiction's contract is that a bad bundle
// makes remote sessions need approval, and DESIGN.md step 5 treats missing
// data as unknown. And a bundle that expires while the gateway runs must
// show as expired in the health, as it already does for admission.
func TestDataBundleFailures(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)

	t.Run("bad bundle and no kept copy", func(t *testing.T) {
		dir := t.TempDir()
		bundleDir := filepath.Join(dir, "bundle-in")
		signer, pub := jzKey(t, dir, "brana-test-bundle")
		jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzBlockListing}, signer, 1, time.Now().Add(24*time.Hour))
		if err := os.WriteFile(filepath.Join(bundleDir, "listings.yaml"), []byte(jzNoteListing), 0o644); err != nil {
			t.Fatal(err)
		}
		gw := gwtest.Start(t, jzConfig(filepath.Join(dir, "data"), plcAddr, jzBundleYAML(bundleDir, pub)))
		if start := jzStartRecord(t, gw, 0); !strings.Contains(start.Detail, "rejected") {
			t.Fatalf("start record does not say the bundle was rejected: %s", start.Detail)
		}
		jzHeld(t, gw, plc.Counters().Total, jzEngineeringIP, "bundle")
		jzReads(t, gw, jzMonitoringIP, 1)
	})

	t.Run("bundle expires while running", func(t *testing.T) {
		dir := t.TempDir()
		bundleDir := filepath.Join(dir, "bundle-in")
		signer, pub := jzKey(t, dir, "brana-test-bundle")
		expires := time.Now().Add(2 * time.Second) // Sign truncates to the second: 1-2s from now
		jzMakeBundle(t, bundleDir, map[string]string{"listings.yaml": jzNoteListing}, signer, 1, expires)
		gw := gwtest.Start(t, jzConfig(filepath.Join(dir, "data"), plcAddr, jzBundleYAML(bundleDir, pub)))
		jzReads(t, gw, jzEngineeringIP, 1)
		time.Sleep(time.Until(expires.Truncate(time.Second)) + 50*time.Millisecond)
		jzHeld(t, gw, plc.Counters().Total, jzEngineeringIP, "data bundle: expired")
		if h := jzGetHealth(t, gw.AdminSocket()); h.Gateway.Bundle == nil || !h.Gateway.Bundle.Expired {
			t.Fatalf("regression: gateway/access.go Health: bundle.expired is only the flag set at start (bundleExpired), not Expires < now; after the bundle expired at run time health says %+v while admission already treats it as expired", h.Gateway.Bundle)
		}
	})
}

// The clock check at start: a DATA_DIR/last-seen later than now by more
// than a minute makes the clock untrusted (health says so, the file keeps
// the later time), and then every session that is not local needs approval.
func TestClockWentBack(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	for _, tc := range []struct {
		name     string
		lastSeen string // "" for no file
		trusted  bool
	}{
		{"first start", "", true},
		{"an hour ago", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), true},
		{"30s ahead (within the minute of slack)", time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339), true},
		{"a day ahead", time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			path := filepath.Join(dataDir, "last-seen")
			if tc.lastSeen != "" {
				if err := os.MkdirAll(dataDir, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.lastSeen+"\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			t0 := time.Now().Truncate(time.Second)
			gw := gwtest.Start(t, jzConfig(dataDir, plcAddr, ""))
			defer gw.Stop(t)
			if got := *jzGetHealth(t, gw.AdminSocket()).Gateway.ClockTrusted; got != tc.trusted {
				t.Fatalf("health clock_trusted %v; want %v", got, tc.trusted)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("last-seen: %v", err)
			}
			seen, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("last-seen %q: %v", b, err)
			}
			switch {
			case !tc.trusted && strings.TrimSpace(string(b)) != tc.lastSeen:
				t.Fatalf("an untrusted clock overwrote last-seen %s with %s", tc.lastSeen, b)
			case tc.trusted && seen.Before(t0):
				t.Fatalf("a trusted start did not record now in last-seen: %s", b)
			}
			if tc.trusted {
				jzReads(t, gw, jzEngineeringIP, 1)
			} else {
				jzHeld(t, gw, plc.Counters().Total, jzEngineeringIP, "clock not trusted")
			}
			jzReads(t, gw, jzMonitoringIP, 1) // a local party is never held for the clock
		})
	}

	// last-seen is "the latest time brana has seen": a gateway that ran for
	// a while has seen later times than its start. If only the start time is
	// kept, a clock that goes back after a long run to a time after the last
	// start is not noticed.
	t.Run("last-seen advances while running", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		gw := gwtest.Start(t, jzConfig(dataDir, plcAddr, ""))
		jzReads(t, gw, jzMonitoringIP, 1)
		time.Sleep(1100 * time.Millisecond)
		stopAt := time.Now().Truncate(time.Second)
		gw.Stop(t)
		b, err := os.ReadFile(filepath.Join(dataDir, "last-seen"))
		if err != nil {
			t.Fatal(err)
		}
		if seen, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b))); err != nil || seen.Before(stopAt) {
			t.Fatalf("regression: gateway/jurisdiction.go checkClock: DATA_DIR/last-seen is written only at start (%s), never while running or at stop (%s); a clock set back after a long run, to a time after the last start, is trusted", strings.TrimSpace(string(b)), stopAt.UTC().Format(time.RFC3339))
		}
	})
}

// Admission with an expired bundle or an untrusted clock, for sources a
// loopback testbench cannot have: they make anything that is not a local
// session need approval (step 5), even in strict mode; a PRC finding comes
// first (step 4); a local party from its local network is not affected.
func TestAdmissionBundleAndClock(t *testing.T) {
	spec := policy.Spec{
		Parties: []policy.PartySpec{
			{ID: "vendor-de", Name: "Anna Schmidt", Organisation: "Beispiel GmbH", LegalName: "Beispiel GmbH", Kind: "vendor",
				Networks: []string{"203.0.113.0/24"}, Evidence: &policy.EvidenceSpec{EstablishedIn: "DE", ManagementIn: []string{"DE"},
					OperatesFrom: []string{"DE"}, DataTo: []string{"DE"}, ReviewedOn: "2026-10-01", ReviewBy: "2099-12-31"}},
			{ID: "scada", Name: "Control room SCADA", Organisation: "Distribuce Lhota a.s.", Kind: "scada", Networks: []string{"10.1.0.0/24"}},
		},
	}
	public, local := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.1.0.5")
	geo := func(cc string) func(*policy.Signals) {
		return func(s *policy.Signals) { s.Country, s.GeoKnown, s.GeoSource = cc, true, "test.mmdb" }
	}
	expired := func(s *policy.Signals) { s.BundleExpired = true }
	untrusted := func(s *policy.Signals) { s.ClockTrusted = false }
	from := func(a netip.Addr) func(*policy.Signals) { return func(s *policy.Signals) { s.Source = a } }

	for _, tc := range []struct {
		name   string
		party  string
		strict bool
		sig    []func(*policy.Signals)
		want   policy.AdmissionVerdict
		step   int
		reason string
	}{
		{"remote, fresh data", "vendor-de", false, nil, policy.Allow, policy.StepRules, ""},
		{"remote, bundle expired", "vendor-de", false, []func(*policy.Signals){expired}, policy.Approval, policy.StepUnknown, "data bundle: expired"},
		{"remote, bundle expired, strict", "vendor-de", true, []func(*policy.Signals){expired}, policy.Approval, policy.StepUnknown, "data bundle: expired"},
		{"remote, clock untrusted", "vendor-de", false, []func(*policy.Signals){untrusted}, policy.Approval, policy.StepUnknown, "clock not trusted"},
		{"remote from CN, bundle expired", "vendor-de", false, []func(*policy.Signals){geo("CN"), expired}, policy.Approval, policy.StepPRCRuntime, "source-country"},
		{"remote from CN, bundle expired, strict", "vendor-de", true, []func(*policy.Signals){geo("CN"), expired}, policy.Deny, policy.StepPRCRuntime, "strict mode"},
		{"vendor from a local address, bundle expired", "vendor-de", false, []func(*policy.Signals){from(local), expired}, policy.Approval, policy.StepUnknown, "data bundle: expired"},
		{"local party, bundle expired, clock untrusted", "scada", false, []func(*policy.Signals){from(local), expired, untrusted}, policy.Allow, policy.StepRules, ""},
		{"local party from a public address, bundle expired", "scada", false, []func(*policy.Signals){expired}, policy.Approval, policy.StepUnknown, "data bundle: expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec
			s.Jurisdiction.Strict = tc.strict
			pol, err := policy.Compile(s, nil, policy.WithListings(bundle.DefaultListings()))
			if err != nil {
				t.Fatal(err)
			}
			sig := policy.Signals{Source: public, Now: time.Now(), ClockTrusted: true, Country: "DE", GeoKnown: true, GeoSource: "test.mmdb"}
			for _, f := range tc.sig {
				f(&sig)
			}
			a := pol.Admit(pol.Party(tc.party), sig)
			if a.Verdict != tc.want || a.Step != tc.step || !strings.Contains(a.String(), tc.reason) {
				t.Fatalf("admission %s; want %s at step %d naming %q", a.String(), tc.want, tc.step, tc.reason)
			}
		})
	}
}

// `brana policy explain` says what the gateway would do: for a party whose
// legal name is on the built-in listings (FCC Covered List, action
// approval) the gateway holds the session as PRC-managed (step 3), and
// explain must say so too.
func TestExplainAgreesWithGatewayOnListings(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	dir := t.TempDir()
	cfg := strings.Replace(jzConfig(filepath.Join(dir, "data"), plcAddr, ""), `legal_name: "`+jzListedName+`"`, `legal_name: "Huawei Technologies Co., Ltd."`, 1)
	gw := gwtest.Start(t, cfg)
	rc := dialFrom(t, gw.ModbusAddr("scada"), jzListedIP)
	expectException(t, rc.call(1, pduReadHolding(100, 2)), 3, 0x06)
	open := waitAudit(t, gw, "the vendor's session.open", func(r *auditRec) bool { return r.Type == "session.open" && r.Source == rc.source() })
	if !strings.Contains(open.Detail, "approval (step 3)") {
		t.Fatalf("gateway admission: %s; want approval at step 3 (listed)", open.Detail)
	}
	file := filepath.Join(dir, "brana.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(buildBrana(t), "policy", "explain", "-c", file, "--party", "vendor-listed", "--target", "plc", "--op", "read:holding:100-101@1").CombinedOutput()
	if err != nil {
		t.Fatalf("brana policy explain: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "admission: approval (step 3)") {
		t.Fatalf("brana policy explain disagrees with the gateway (approval, step 3):\n%s", out)
	}
}

// A reload that changes what a party's evidence says must apply to its live
// sessions too (DESIGN.md: SIGHUP "ends sessions the new policy no longer
// admits"): a party that the new config lists with action block may not go
// on working on a session admitted under the old policy.
func TestReloadReadmitsLiveSessions(t *testing.T) {
	plc, plcAddr := startPLC(t, map[byte]string{1: "feeder"})
	markUnits(t, plc)
	dir := t.TempDir()
	cfg := jzConfig(filepath.Join(dir, "data"), plcAddr, "")
	gw := gwtest.Start(t, cfg)
	waitAudit(t, gw, "the config.load record", func(r *auditRec) bool { return r.Type == "config.load" })
	eng := dialFrom(t, gw.ModbusAddr("scada"), jzEngineeringIP)
	if got := registers(t, eng.call(1, pduReadHolding(100, 2))); !slices.Equal(got, marks(1, 100, 2)) {
		t.Fatalf("read before the reload: %v", got)
	}
	blocked := strings.Replace(cfg, "      reviewed_on: 2026-10-01\n      review_by: 2099-12-31\n  - id: vendor-listed",
		"      listings:\n        - {source: \"Test advisory TA-2026-18\", action: block, date: 2026-11-20}\n      reviewed_on: 2026-10-01\n      review_by: 2099-12-31\n  - id: vendor-listed", 1)
	if blocked == cfg {
		t.Fatal("test config did not change")
	}
	file := filepath.Join(dir, "reload.yaml")
	if err := os.WriteFile(file, []byte(blocked), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := gw.ReloadFile(context.Background(), file); err != nil {
		t.Fatalf("reload: %v", err)
	}
	jzRefused(t, gw, jzEngineeringIP) // new sessions: refused at step 2
	before := plc.Counters().Total()
	eng.write(frame(0x4242, 1, pduReadHolding(100, 2)))
	f, err := eng.readFrame(2 * time.Second)
	if err == nil && len(f) > 7 && f[7]&0x80 == 0 {
		t.Fatalf("regression: gateway/reload.go recheckSessions only re-checks the identity of live sessions, and gateway/modbusrelay keeps the admission made at session start: after a reload lists engineering with action block, its live session still reads (answer % x, PLC saw %d new requests)", f, plc.Counters().Total()-before)
	}
}
