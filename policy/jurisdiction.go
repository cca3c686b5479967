package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultHighRisk is the high-risk set when the config names none: the
// People's Republic of China with Hong Kong and Macao (NÚKIB, 2025).
var DefaultHighRisk = []string{"CN", "HK", "MO"}

// Verdict is what a finding, or all findings about a party together, say
// about control from a high-risk jurisdiction. The zero value is Unknown, so
// that a verdict nobody set never reads as safe.
type Verdict uint8

const (
	Unknown Verdict = iota // not established: missing, stale or unreadable evidence
	NonPRC                 // established and outside the high-risk set
	PRC                    // a high-risk jurisdiction (the configured set; PRC by default), or a listing
)

func (v Verdict) String() string {
	switch v {
	case NonPRC:
		return "non-PRC"
	case PRC:
		return "PRC"
	}
	return "unknown"
}

// worse combines two verdicts: PRC over Unknown over NonPRC. A non-PRC
// finding never cancels a PRC one.
func worse(a, b Verdict) Verdict {
	rank := func(v Verdict) int {
		switch v {
		case NonPRC:
			return 0
		case Unknown:
			return 1
		}
		return 2
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Finding is one fact behind a jurisdiction decision, shown to the approver
// and kept in the audit record.
type Finding struct {
	// Kind is one of established, controller, management, operations,
	// data, listing, relay, review, evidence (none declared), local (a
	// local party without evidence), from the registry; or source-country,
	// source-asn, certificate, relay, geo, clock, bundle, review (stale),
	// at run time.
	Kind     string
	Subject  string  // which party, or what (an address, a relay)
	Value    string  // what was found, e.g. "CN" or "FCC Covered List: ... (action approval)"
	Verdict  Verdict // what the fact says on its own
	Source   string  // where the fact came from: config, bundle serial N, an mmdb file
	Decisive bool    // set on the findings that decided an Admission
}

func (f Finding) String() string {
	s := f.Kind + " " + f.Subject + ": " + f.Value + " (" + f.Verdict.String()
	if f.Source != "" {
		s += "; " + f.Source
	}
	return s + ")"
}

// ListingEntry is one entity on a public high-risk list, as a bundle's
// listings.yaml or the built-in default listings carry it. Entries are
// matched against parties by legal name or organisation (and their
// controllers up the chain), and against a source address's AS owner by
// name or number.
type ListingEntry struct {
	Name      string   `yaml:"name"`      // legal name of the listed entity
	Aliases   []string `yaml:"aliases"`   // other names it trades or registers under
	Country   string   `yaml:"country"`   // the jurisdiction the listing ties it to (its ultimate control)
	Action    string   `yaml:"action"`    // block | approval | note
	Source    string   `yaml:"source"`    // the list, e.g. "FCC Covered List"
	Reference string   `yaml:"reference"` // URL or document id
	Date      string   `yaml:"date"`      // YYYY-MM-DD the entry was compiled or checked
	ASNs      []uint32 `yaml:"asns"`      // autonomous systems it owns

	Origin string `yaml:"-"` // where the entry came from: "bundle serial 7", "built-in listings 2026-11-26"
}

// Listing actions.
const (
	ActionBlock    = "block"    // sessions of the party (or anything it controls) are denied
	ActionApproval = "approval" // the party counts as PRC-managed
	ActionNote     = "note"     // shown to the approver; changes no decision
)

var listingActions = []string{ActionBlock, ActionApproval, ActionNote}

// Option changes how Compile compiles a Spec.
type Option func(*options)

type options struct {
	listings []ListingEntry
}

// WithListings adds listing entries (from a verified bundle, or the built-in
// defaults) to the listings that parties declare in the config. Entries
// that fail validation are ignored here; the bundle package validates them
// when it reads them.
func WithListings(entries []ListingEntry) Option {
	return func(o *options) { o.listings = append(o.listings, entries...) }
}

// ValidateListing checks one entry: a name, a known action, a country code
// if given, a YYYY-MM-DD date if given.
func ValidateListing(e *ListingEntry) error {
	switch {
	case strings.TrimSpace(e.Name) == "":
		return fmt.Errorf("listing without a name")
	case !contains(listingActions, e.Action):
		return fmt.Errorf("listing %q: unknown action %q (want block, approval or note)", e.Name, e.Action)
	case e.Country != "" && !ValidCountry(e.Country):
		return fmt.Errorf("listing %q: %q is not an ISO 3166-1 alpha-2 country code", e.Name, e.Country)
	case e.Date != "":
		if _, err := parseDate(e.Date); err != nil {
			return fmt.Errorf("listing %q: date: %v", e.Name, err)
		}
	}
	return nil
}

// jurisdiction is the compiled JurisdictionSpec with the listings.
type jurisdiction struct {
	highRisk []string // sorted
	strict   bool
	// supervisePRC: sessions admitted past a PRC finding are supervised.
	supervisePRC bool
	asns         map[uint32]string // ASN -> where it is listed
	listings     []ListingEntry
	byName       map[string][]int // normalized name or alias -> listings index
	relays       []relayMatch     // relays declared by PRC parties
}

func (j *jurisdiction) isHighRisk(country string) bool {
	_, ok := slices.BinarySearch(j.highRisk, strings.ToUpper(country))
	return ok
}

// countryVerdict says whether a declared or detected country is high-risk.
func (j *jurisdiction) countryVerdict(country string) Verdict {
	if j.isHighRisk(country) {
		return PRC
	}
	return NonPRC
}

// relayMatch is a relay endpoint: a host name, a domain (*.example.com) or
// a network.
type relayMatch struct {
	host   string // lower case; for a domain, ".example.com"
	prefix netip.Prefix
	party  string // who declared it
}

func parseRelay(s string) (relayMatch, error) {
	if s == "" {
		return relayMatch{}, fmt.Errorf("empty relay")
	}
	if strings.ContainsAny(s, ":/") || (s[0] >= '0' && s[0] <= '9' && strings.Count(s, ".") == 3) {
		n, err := parseNetwork(s)
		if err != nil {
			return relayMatch{}, err
		}
		return relayMatch{prefix: n}, nil
	}
	h := strings.ToLower(s)
	domain := strings.HasPrefix(h, "*.")
	if domain {
		h = h[1:]
	}
	if !validHost(strings.TrimPrefix(h, ".")) {
		return relayMatch{}, fmt.Errorf("bad relay %q (want a host name, *.domain, a CIDR or an address)", s)
	}
	return relayMatch{host: h}, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// matches reports whether a relay as a session reports it (a host name or
// an address, optionally with a port) is this endpoint.
func (m relayMatch) matches(host string, addr netip.Addr) bool {
	if m.prefix.IsValid() {
		return addr.IsValid() && m.prefix.Contains(addr)
	}
	if strings.HasPrefix(m.host, ".") {
		return strings.HasSuffix(host, m.host)
	}
	return host == m.host
}

func (m relayMatch) String() string {
	if m.prefix.IsValid() {
		if m.prefix.IsSingleIP() {
			return m.prefix.Addr().String()
		}
		return m.prefix.String()
	}
	if strings.HasPrefix(m.host, ".") {
		return "*" + m.host
	}
	return m.host
}

// splitRelay turns a reported relay ("host", "host:port", "[v6]:port",
// "192.0.2.1") into a lower-case host and, if it is one, an address.
func splitRelay(s string) (string, netip.Addr) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().String(), ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.WithZone("").Unmap()
		return a.String(), a
	}
	if h, port, ok := strings.Cut(s, ":"); ok && !strings.Contains(port, ":") {
		if _, err := strconv.Atoi(port); err == nil {
			s = h
		}
	}
	return strings.TrimSuffix(strings.ToLower(s), "."), netip.Addr{}
}

// tldCountry returns the country of a host name's country-code top-level
// domain ("cn" -> "CN", "uk" -> "GB"), or "".
func tldCountry(host string) string {
	i := strings.LastIndexByte(host, '.')
	if i < 0 {
		return ""
	}
	tld := strings.ToUpper(host[i+1:])
	if tld == "UK" {
		return "GB"
	}
	if len(tld) == 2 && ValidCountry(tld) {
		return tld
	}
	return ""
}

// normName folds a legal name for matching: lower case, every run of
// characters that are not letters or digits one space. "Co., Ltd." and
// "co ltd" match; "Huawei" and "Huawei Technologies" do not.
func normName(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
		} else {
			space = true
		}
	}
	return b.String()
}

// parseDate parses YYYY-MM-DD as midnight UTC.
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, fmt.Errorf("%q is not a date (want YYYY-MM-DD)", s)
	}
	return t, nil
}

// ValidCountry reports whether s is an ISO 3166-1 alpha-2 code (upper case,
// officially assigned) or XK, which geolocation databases use for Kosovo.
func ValidCountry(s string) bool {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return false
	}
	for i := 0; i+1 < len(iso3166); i += 3 {
		if iso3166[i] == s[0] && iso3166[i+1] == s[1] {
			return true
		}
	}
	return false
}

// iso3166 lists the officially assigned ISO 3166-1 alpha-2 codes, and XK.
const iso3166 = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW "

// isLocalAddr reports whether a is loopback, private (RFC 1918, RFC 4193)
// or link-local: an address that cannot have come from afar unrouted.
func isLocalAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	return a.IsValid() && (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast())
}

// localRanges are the ranges isLocalAddr accepts, for checking that a whole
// network is local.
var localRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("::1/128"),
}

// isLocalNet reports whether every address of n is local.
func isLocalNet(n netip.Prefix) bool {
	for _, r := range localRanges {
		if n.Bits() >= r.Bits() && r.Contains(n.Addr()) {
			return true
		}
	}
	return false
}
