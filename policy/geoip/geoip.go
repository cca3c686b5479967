// Package geoip reads the country and autonomous system of a source address
// from offline MaxMind-format (mmdb) databases, and puts them into the
// run-time signals of a policy admission ([policy.Signals]).
//
// It reads the layouts of MaxMind GeoLite2/GeoIP2 Country, City and ASN,
// DB-IP lite (the same layout) and IPinfo lite (country_code, asn "AS123",
// as_name, in one file). No database, a database that does not know the
// address and a lookup error all leave the country unknown: never
// "not PRC". Databases are opened by the gateway, read-only, memory-mapped.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/brana-ot/brana/policy"
)

var (
	// ErrNoDatabase says that no database is open; Signals records it in
	// Signals.GeoErr.
	ErrNoDatabase = errors.New("geoip: no geolocation database")
)

// DB is a pair of open databases, for countries and for autonomous systems;
// either may be missing, or both may be one file. A nil *DB is valid and
// knows nothing. A DB is safe for concurrent use.
type DB struct {
	country, asn         *maxminddb.Reader
	countryName, asnName string // for Finding.Source: "file (type, built date)"
}

// Open opens the country and the ASN database. Either path may be empty;
// the same path twice opens the file once. On error nothing stays open.
func Open(countryDB, asnDB string) (*DB, error) {
	d := new(DB)
	var err error
	if countryDB != "" {
		if d.country, d.countryName, err = open(countryDB); err != nil {
			return nil, err
		}
	}
	switch {
	case asnDB == "":
	case asnDB == countryDB:
		d.asn, d.asnName = d.country, d.countryName
	default:
		if d.asn, d.asnName, err = open(asnDB); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

func open(path string) (*maxminddb.Reader, string, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("geoip: open %s: %w", path, err)
	}
	m := r.Metadata
	name := filepath.Base(path) + " (" + m.DatabaseType
	if m.BuildEpoch != 0 {
		name += ", built " + m.BuildTime().UTC().Format("2006-01-02")
	}
	return r, name + ")", nil
}

// Close closes the databases. It is safe on a nil *DB and more than once.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.country != nil {
		errs = append(errs, d.country.Close())
	}
	if d.asn != nil && d.asn != d.country {
		errs = append(errs, d.asn.Close())
	}
	d.country, d.asn = nil, nil
	return errors.Join(errs...)
}

// Result is what the databases say about one address.
type Result struct {
	Country string // ISO 3166-1 alpha-2, upper case; "" unknown
	ASN     uint32 // 0 unknown
	ASOrg   string
	Found   bool   // a database had a record for the address
	Source  string // the databases that had one
	Err     error  // ErrNoDatabase, or a lookup error (then the rest may be partial)
}

// record holds the fields of every layout this package reads. Fields whose
// type differs between layouts are decoded as any.
type record struct {
	Country           any    `maxminddb:"country"`            // GeoIP2: {iso_code}; IPinfo lite: a name
	RegisteredCountry any    `maxminddb:"registered_country"` // GeoIP2: {iso_code}
	CountryCode       string `maxminddb:"country_code"`       // IPinfo lite
	ASNumber          any    `maxminddb:"autonomous_system_number"`
	ASOrg             string `maxminddb:"autonomous_system_organization"`
	ASN               any    `maxminddb:"asn"`     // IPinfo lite: "AS123"
	ASName            string `maxminddb:"as_name"` // IPinfo lite
}

// Lookup looks addr up in both databases. IPv4-mapped IPv6 addresses are
// looked up as IPv4.
func (d *DB) Lookup(addr netip.Addr) Result {
	var res Result
	addr = addr.WithZone("").Unmap()
	if d == nil || d.country == nil && d.asn == nil {
		res.Err = ErrNoDatabase
		return res
	}
	if !addr.IsValid() {
		res.Err = errors.New("geoip: no address")
		return res
	}
	var sources, errs []string
	lookup := func(r *maxminddb.Reader, name string, country bool) {
		var rec record
		res1 := r.Lookup(addr)
		if err := res1.Decode(&rec); err != nil {
			errs = append(errs, name+": "+err.Error())
			return
		}
		if !res1.Found() {
			return
		}
		res.Found = true
		sources = append(sources, name)
		if country && res.Country == "" {
			res.Country = rec.country()
		}
		if res.ASN == 0 {
			res.ASN, res.ASOrg = rec.asn()
		}
	}
	if d.country != nil {
		lookup(d.country, d.countryName, true)
	}
	if d.asn != nil && d.asn != d.country {
		lookup(d.asn, d.asnName, false)
	}
	res.Source = strings.Join(sources, ", ")
	if len(errs) > 0 {
		res.Err = errors.New("geoip: " + strings.Join(errs, "; "))
	}
	return res
}

// country returns the ISO code of the country, falling back to the country
// the network is registered in.
func (r *record) country() string {
	for _, v := range []any{r.Country, r.RegisteredCountry} {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["iso_code"].(string); ok && policy.ValidCountry(strings.ToUpper(s)) {
				return strings.ToUpper(s)
			}
		}
	}
	if s := strings.ToUpper(r.CountryCode); policy.ValidCountry(s) {
		return s
	}
	return ""
}

func (r *record) asn() (uint32, string) {
	if n := asNumber(r.ASNumber); n != 0 {
		return n, r.ASOrg
	}
	if n := asNumber(r.ASN); n != 0 {
		return n, r.ASName
	}
	return 0, ""
}

func asNumber(v any) uint32 {
	var n uint64
	switch x := v.(type) {
	case uint64:
		n = x
	case uint32:
		n = uint64(x)
	case uint16:
		n = uint64(x)
	case int:
		if x > 0 {
			n = uint64(x)
		}
	case int64:
		if x > 0 {
			n = uint64(x)
		}
	case int32:
		if x > 0 {
			n = uint64(x)
		}
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(x, "AS"), "as")
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			n = u
		}
	}
	if n > 0xFFFFFFFF {
		return 0
	}
	return uint32(n)
}

// Signals fills sig's geolocation fields (Country, ASN, ASOrg, GeoKnown,
// GeoSource, GeoErr) for addr; it sets nothing else. Loopback, private and
// link-local addresses are not looked up: Admit treats them as local.
// A nil *DB records that there is no database.
func (d *DB) Signals(addr netip.Addr, sig *policy.Signals) {
	sig.Country, sig.ASN, sig.ASOrg, sig.GeoKnown, sig.GeoSource, sig.GeoErr = "", 0, "", false, "", ""
	a := addr.WithZone("").Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() {
		return
	}
	res := d.Lookup(addr)
	if res.Err != nil {
		sig.GeoErr = res.Err.Error()
	}
	// Partial answers are kept: a country from one file stays a finding
	// even if the other file failed.
	sig.Country, sig.ASN, sig.ASOrg = res.Country, res.ASN, res.ASOrg
	sig.GeoKnown = res.Found
	sig.GeoSource = res.Source
}
