//go:build !arm && !386

// mmdbwriter does not build for 32-bit ARM (or 386), so the tests that make
// databases with it are left out there; geoip_test.go runs everywhere.

package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/brana-ot/brana/policy"
)

// writeDB writes an mmdb file of type dbType with one record per network.
func writeDB(t testing.TB, dir, name, dbType string, records map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IncludeReservedNetworks: true, // the tests use documentation ranges
		BuildEpoch:              time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Unix(),
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// geoLite2Country is the GeoLite2-Country (and City) layout.
func geoLite2Country(iso string) mmdbtype.Map {
	return mmdbtype.Map{
		"country": mmdbtype.Map{
			"iso_code":   mmdbtype.String(iso),
			"geoname_id": mmdbtype.Uint32(1),
			"names":      mmdbtype.Map{"en": mmdbtype.String("Somewhere")},
		},
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)},
	}
}

func geoLite2ASN(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

// ipinfoLite is the IPinfo lite layout: country and AS in one record.
func ipinfoLite(cc, country string, asn, asName string) mmdbtype.Map {
	return mmdbtype.Map{
		"country":        mmdbtype.String(country),
		"country_code":   mmdbtype.String(cc),
		"continent":      mmdbtype.String("Asia"),
		"continent_code": mmdbtype.String("AS"),
		"asn":            mmdbtype.String(asn),
		"as_name":        mmdbtype.String(asName),
		"as_domain":      mmdbtype.String("example.net"),
	}
}

// testDBs writes a GeoLite2-style country and ASN pair and an IPinfo lite
// file.
func testDBs(t testing.TB) (country, asn, ipinfo string) {
	dir := t.TempDir()
	country = writeDB(t, dir, "GeoLite2-Country.mmdb", "GeoLite2-Country", map[string]mmdbtype.Map{
		"192.0.2.0/24":    geoLite2Country("CZ"),
		"198.51.100.0/24": geoLite2Country("CN"),
		"2001:db8:1::/48": geoLite2Country("HK"),
		"2001:db8:2::/48": geoLite2Country("DE"),
		// A network known only by where it is registered.
		"198.18.0.0/24": {"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("MO")}},
		// A record without any country (anycast, satellite).
		"198.18.1.0/24": {"traits": mmdbtype.Map{"is_anycast": mmdbtype.Bool(true)}},
	})
	asn = writeDB(t, dir, "GeoLite2-ASN.mmdb", "GeoLite2-ASN", map[string]mmdbtype.Map{
		"192.0.2.0/24":    geoLite2ASN(2852, "CESNET z.s.p.o."),
		"198.51.100.0/24": geoLite2ASN(4134, "CHINANET-BACKBONE"),
		"2001:db8:1::/48": geoLite2ASN(58453, "China Mobile International Limited"),
	})
	ipinfo = writeDB(t, dir, "ipinfo_lite.mmdb", "ipinfo ipinfo_lite.mmdb", map[string]mmdbtype.Map{
		"198.51.100.0/24": ipinfoLite("CN", "China", "AS4837", "China Unicom"),
		"2001:db8:2::/48": ipinfoLite("DE", "Germany", "AS3320", "Deutsche Telekom AG"),
	})
	return country, asn, ipinfo
}

func TestLookup(t *testing.T) {
	country, asn, ipinfo := testDBs(t)
	pair, err := Open(country, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	countryOnly, err := Open(country, "")
	if err != nil {
		t.Fatal(err)
	}
	defer countryOnly.Close()
	asnOnly, err := Open("", asn)
	if err != nil {
		t.Fatal(err)
	}
	defer asnOnly.Close()
	lite, err := Open(ipinfo, ipinfo)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()

	tests := []struct {
		name    string
		db      *DB
		addr    string
		country string
		asn     uint32
		org     string
		found   bool
		source  string // substring
	}{
		{"ok/ipv4-country-and-asn", pair, "198.51.100.7", "CN", 4134, "CHINANET-BACKBONE", true, "GeoLite2-Country.mmdb (GeoLite2-Country, built 2026-11-20), GeoLite2-ASN.mmdb"},
		{"ok/ipv4-cz", pair, "192.0.2.1", "CZ", 2852, "CESNET z.s.p.o.", true, "GeoLite2-ASN.mmdb (GeoLite2-ASN, built 2026-11-20)"},
		{"ok/ipv4-mapped", pair, "::ffff:198.51.100.7", "CN", 4134, "CHINANET-BACKBONE", true, ""},
		{"ok/ipv6-country-and-asn", pair, "2001:db8:1::5", "HK", 58453, "China Mobile International Limited", true, ""},
		{"ok/ipv6-country-only", pair, "2001:db8:2::5", "DE", 0, "", true, "GeoLite2-Country"},
		{"ok/registered-country-fallback", pair, "198.18.0.9", "MO", 0, "", true, ""},
		{"ok/record-without-country", pair, "198.18.1.9", "", 0, "", true, ""},
		{"ok/not-in-database", pair, "203.0.113.9", "", 0, "", false, ""},
		{"ok/country-db-only", countryOnly, "198.51.100.7", "CN", 0, "", true, ""},
		{"ok/asn-db-only", asnOnly, "198.51.100.7", "", 4134, "CHINANET-BACKBONE", true, ""},
		{"ok/ipinfo-lite-ipv4", lite, "198.51.100.7", "CN", 4837, "China Unicom", true, "ipinfo_lite.mmdb"},
		{"ok/ipinfo-lite-ipv6", lite, "2001:db8:2::1", "DE", 3320, "Deutsche Telekom AG", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.db.Lookup(netip.MustParseAddr(tt.addr))
			if r.Err != nil {
				t.Fatalf("Err = %v", r.Err)
			}
			if r.Country != tt.country || r.ASN != tt.asn || r.ASOrg != tt.org || r.Found != tt.found {
				t.Fatalf("Lookup = %+v; want %s AS%d %q found %v", r, tt.country, tt.asn, tt.org, tt.found)
			}
			if !strings.Contains(r.Source, tt.source) {
				t.Fatalf("Source = %q; want it to contain %q", r.Source, tt.source)
			}
		})
	}
}

// TestSignalsAdmit runs the whole path: database, signals, admission.
func TestSignalsAdmit(t *testing.T) {
	country, asn, _ := testDBs(t)
	db, err := Open(country, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spec := policy.Spec{
		Parties: []policy.PartySpec{{ID: "vendor", Kind: "vendor", Networks: []string{"0.0.0.0/0", "::/0"}, Evidence: &policy.EvidenceSpec{
			EstablishedIn: "CZ", ManagementIn: []string{"CZ"}, OperatesFrom: []string{"CZ"}, DataTo: []string{"CZ"}, ReviewBy: "2027-06-30",
		}}},
	}
	pol, err := policy.Compile(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		db       *DB
		addr     string
		verdict  policy.AdmissionVerdict
		step     int
		conflict string
	}{
		{"ok/cz", db, "192.0.2.1", policy.Allow, 6, ""},
		{"ok/cn-conflict", db, "198.51.100.7", policy.Approval, 4, "declared CZ, source address in CN"},
		{"ok/hk-ipv6-conflict", db, "2001:db8:1::5", policy.Approval, 4, "declared CZ, source address in HK"},
		{"ok/not-in-database-unknown", db, "203.0.113.9", policy.Approval, 5, ""},
		{"ok/no-database-unknown", nil, "192.0.2.1", policy.Approval, 5, ""},
		{"ok/local-address", nil, "10.0.0.1", policy.Allow, 6, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := policy.Signals{Source: netip.MustParseAddr(tt.addr), Now: now, ClockTrusted: true}
			tt.db.Signals(sig.Source, &sig)
			a := pol.Admit(pol.Party("vendor"), sig)
			if a.Verdict != tt.verdict || a.Step != tt.step || a.Conflict != tt.conflict {
				t.Fatalf("Admit = %s; want %s at step %d, conflict %q", a, tt.verdict, tt.step, tt.conflict)
			}
		})
	}
}

func TestOpenCorrupt(t *testing.T) {
	country, _, _ := testDBs(t)
	data, err := os.ReadFile(country)
	if err != nil {
		t.Fatal(err)
	}
	// Cut off the metadata: the file is no database.
	bad := filepath.Join(t.TempDir(), "cut.mmdb")
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(country, bad); err == nil {
		db.Close()
		t.Fatal("Open succeeded with a cut file")
	}
}
