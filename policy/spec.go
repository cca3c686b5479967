package policy

// Spec is the policy part of the YAML config. It holds plain types only: the
// config loader decodes YAML strictly into it, and Compile checks and
// compiles it.
type Spec struct {
	Parties      []PartySpec      `yaml:"parties"`
	Rules        []RuleSpec       `yaml:"rules"`
	Jurisdiction JurisdictionSpec `yaml:"jurisdiction"`
}

// JurisdictionSpec configures how parties and sessions are judged against
// the high-risk jurisdictions (DESIGN.md, "Policy model"). The files it names
// are opened by the gateway, never by Compile.
type JurisdictionSpec struct {
	HighRisk    []string   `yaml:"high_risk"`     // ISO 3166-1 alpha-2 codes; empty means CN, HK, MO
	Strict      bool       `yaml:"strict"`        // a PRC finding denies instead of needing approval
	GeoIP       GeoIPSpec  `yaml:"geoip"`         // offline MaxMind-format databases
	Bundle      BundleSpec `yaml:"bundle"`        // signed data bundle with listings and databases
	ASNHighRisk []uint32   `yaml:"asn_high_risk"` // autonomous systems owned from a high-risk jurisdiction

	// SupervisePRC puts every session admitted past a PRC finding (a
	// PRC-managed party, or a PRC finding at run time) under supervision,
	// as if its party had supervised set.
	SupervisePRC bool `yaml:"supervise_prc"`
}

// GeoIPSpec names the mmdb files the gateway opens for source address
// country and ASN. Either may be empty; a file may hold both (IPinfo lite).
type GeoIPSpec struct {
	CountryDB string `yaml:"country_db"`
	ASNDB     string `yaml:"asn_db"`
}

// BundleSpec names the directory of a signed data bundle and the file
// holding the note verifier key that signs it.
type BundleSpec struct {
	Dir       string `yaml:"dir"`
	PublicKey string `yaml:"public_key"`
}

// PartySpec declares one party: a person, a company or a system on the other
// end of a session.
type PartySpec struct {
	ID           string   `yaml:"id"`           // short id used in rules, e.g. "scada"
	Name         string   `yaml:"name"`         // display name of a person or system, e.g. "Control room SCADA"
	Organisation string   `yaml:"organisation"` // e.g. "ČEPS, a.s."
	Kind         string   `yaml:"kind"`         // vendor | integrator | operator | scada | owner
	Networks     []string `yaml:"networks"`     // CIDRs or single IPs that identify local parties

	LegalName string        `yaml:"legal_name"` // registered name, matched against listings, e.g. "Vendor s.r.o."
	Evidence  *EvidenceSpec `yaml:"evidence"`   // jurisdiction evidence; local scada and operator parties may omit it

	// Credentials bound to the party (see binding.go). Each binds to one
	// party only; an owner never connects and has none.
	SSHKeys       []string         `yaml:"ssh_keys"`       // public keys, authorized_keys format: "ssh-ed25519 AAAA... comment"
	SSHPrincipals []string         `yaml:"ssh_principals"` // OpenSSH user certificate principals
	TLSClients    []TLSBindingSpec `yaml:"tls_clients"`    // TLS client certificates (Modbus/TCP Security, OPC UA X.509 users)
	OPCUAUsers    []string         `yaml:"opcua_users"`    // user names of brana's OPC UA endpoint (its users file)

	// Supervised: commands above read pass only while an engineer watches
	// the session live in the console (dual control).
	Supervised bool `yaml:"supervised"`
}

// TLSBindingSpec binds TLS client certificates to a party: one certificate
// by its fingerprint, or every certificate with a subject common name (the
// TLS listener has checked that one of its client CAs issued it). A binding
// with a role matches only certificates whose Modbus/TCP Security role
// equals it, so one CN with two roles may bind to two parties.
type TLSBindingSpec struct {
	Fingerprint string `yaml:"fingerprint"` // SHA-256 of the DER certificate, 64 hex digits (colons and case ignored)
	CommonName  string `yaml:"common_name"` // subject CN, compared exactly
	Role        string `yaml:"role"`        // optional Modbus role (OID 1.3.6.1.4.1.50316.802.1), compared exactly
}

// EvidenceSpec is what the operator established about a party's
// jurisdiction. Countries are ISO 3166-1 alpha-2 codes.
type EvidenceSpec struct {
	EstablishedIn string        `yaml:"established_in"` // country of incorporation
	ControlledBy  []string      `yaml:"controlled_by"`  // ids of controlling parties (usually kind owner); empty: none
	ManagementIn  []string      `yaml:"management_in"`  // where its management sits
	OperatesFrom  []string      `yaml:"operates_from"`  // where the staff who connect work from
	DataTo        []string      `yaml:"data_to"`        // where data from the sessions goes
	Listings      []ListingSpec `yaml:"listings"`       // entries on public high-risk lists
	Relays        []string      `yaml:"relays"`         // host names (or *.domain) or CIDRs of relay endpoints it uses
	ReviewedOn    string        `yaml:"reviewed_on"`    // YYYY-MM-DD
	ReviewBy      string        `yaml:"review_by"`      // YYYY-MM-DD; after this day the evidence is stale
}

// ListingSpec is one entry of a party on a public list.
type ListingSpec struct {
	Source    string `yaml:"source"`    // the list, e.g. "FCC Covered List"
	Reference string `yaml:"reference"` // URL or document id
	Action    string `yaml:"action"`    // block | approval | note
	Date      string `yaml:"date"`      // YYYY-MM-DD the entry was checked
}

// RuleSpec is one allow-rule. A request is allowed when one rule names its
// party and target and every restriction the rule sets holds; restrictions
// left empty do not restrict.
type RuleSpec struct {
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Parties     []string            `yaml:"parties"`   // party ids, or "*"
	Targets     []string            `yaml:"targets"`   // target names, or "*"
	Classes     []string            `yaml:"classes"`   // read, write, diagnose, control, program, unknown
	Functions   []int               `yaml:"functions"` // optional: only these Modbus function codes (1..127)
	Units       []int               `yaml:"units"`     // optional: downstream unit ids 0..255; empty = any (unit 0, broadcast, only matches a rule without units or one naming 0)
	Ranges      map[string][]string `yaml:"ranges"`    // table name -> ["0-99", "120"]; an addressed access must fall wholly inside one range of its table; empty map = any address
	Values      *Bounds             `yaml:"values"`    // optional bounds on every written value (registers: 0..65535; coils 0/1)
	Reset       bool                `yaml:"reset"`     // when this rule is the reason for a denial, also reset the client connection

	// OPCUA set: the rule applies only to OPC UA requests, and its Modbus
	// restrictions (functions, units, ranges, values) are not used. Unset:
	// the rule applies only to Modbus requests.
	OPCUA *OPCUARuleSpec `yaml:"opcua"`
}

// Bounds limits every value a write carries to Min..Max, both included.
type Bounds struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// FieldError is one problem Compile found in a Spec. Path names the field the
// way the YAML spells it, e.g. "rules[2].ranges.holding[0]" or
// "parties[0].networks[1]", so the config loader can map it to a line.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }
