package policy

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Policy is a compiled Spec. It is immutable after Compile and safe for
// concurrent use; a reload compiles a new Policy and swaps the pointer.
type Policy struct {
	parties []*Party
	byID    map[string]*Party
	nets    []netEntry // every party network, longest prefix first

	// Credential bindings (binding.go).
	sshKeys       map[string]*Party     // "SHA256:…" key fingerprint
	sshPrincipals map[string]*Party     // certificate principal
	tlsCerts      map[string]tlsBinding // lower-case hex SHA-256 of the DER certificate
	tlsNames      map[tlsName]*Party    // subject CN and role ("" for any role)
	opcuaUsers    map[string]*Party     // user name on brana's OPC UA endpoint

	rules     []*Rule
	targets   []string
	targetIdx map[string]int
	// index holds, for party i and target j at i*len(targets)+j, the rules
	// that name both (directly or with "*"), in file order.
	index [][]*Rule
	// opcuaIndex is index for the rules with an opcua section, which index
	// leaves out (DecideModbus never sees them).
	opcuaIndex [][]*Rule

	digest string
	j      jurisdiction

	unidentified  Denial
	noRule        Denial
	notAdmitted   Denial
	needsApproval Denial
}

type netEntry struct {
	prefix netip.Prefix
	party  *Party
}

// Party is a compiled PartySpec.
type Party struct {
	ID           string
	Name         string
	Organisation string
	Kind         string
	Networks     []netip.Prefix
	LegalName    string

	// Credentials bound to the party, in spec order, for display.
	SSHKeys       []string         // "SHA256:…" fingerprints of the bound public keys
	SSHPrincipals []string         // OpenSSH certificate principals
	TLSClients    []TLSBindingSpec // fingerprints as lower-case hex
	OPCUAUsers    []string         // user names on brana's OPC UA endpoint

	// Supervised is the party's own supervised setting; Admission.Supervised
	// adds jurisdiction.supervise_prc.
	Supervised bool

	// Local is set for a scada or operator party without evidence whose
	// every network is private, loopback or link-local: it counts as
	// non-PRC and its sessions from local addresses are local sessions.
	Local bool
	// Verdict is the static jurisdiction verdict from the registry: the
	// party's evidence, its controllers' up the chain, and listings. Stale
	// evidence is judged at admission, against the session's clock.
	Verdict Verdict
	// Findings are the facts behind Verdict, the party's own first.
	Findings []Finding

	index    int // position in Policy.parties
	ev       *EvidenceSpec
	reviewBy time.Time // zero: none declared
	control  []*Party  // direct controllers
	chain    []*Party  // every controller up the chain, nearest first, once each
	relays   []relayMatch
	blocked  []int  // indexes in Findings of listings with action block
	declared string // what the party declared, for conflicts: "CZ", "CZ/DE", "local network", "nothing"
}

// Rule is a compiled RuleSpec. Its exported fields are for display and for
// the relay (Reset); the restrictions are compiled into unexported fields.
type Rule struct {
	Name        string
	Description string
	Reset       bool // a denial for which this rule is the reason also resets the client connection

	index int
	spec  RuleSpec // a private deep copy, for Spec and explanations

	anyParty, anyTarget bool
	parties, targets    map[string]bool

	classes opclass.Set
	anyFunc bool
	funcs   [2]uint64 // bit f: function code f allowed (f < 128)
	anyUnit bool
	units   [4]uint64 // bit u: unit id u allowed
	anyAddr bool
	ranges  [modbus.InputRegisters + 1][]span // by table, in spec order
	bounded bool
	min     uint16
	max     uint16
	opcua   *opcuaRule // set: the rule applies only to OPC UA requests, and only it

	denials [numReasons]Denial // preallocated, so that denying does not allocate
}

// span is an inclusive address range, kept wide.
type span struct{ lo, hi uint32 }

// PartyByAddr returns the party whose network contains ip, the most specific
// network winning, or nil when ip identifies no party. IPv4-mapped IPv6
// addresses are matched as IPv4, and zones are ignored.
func (p *Policy) PartyByAddr(ip netip.Addr) *Party {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return nil
	}
	for _, n := range p.nets {
		if n.prefix.Contains(ip) {
			return n.party
		}
	}
	return nil
}

// Party returns the party with the given id, or nil.
func (p *Policy) Party(id string) *Party { return p.byID[id] }

// Parties returns the parties in spec order. The Party values are shared and
// must not be modified.
func (p *Policy) Parties() []*Party { return slices.Clone(p.parties) }

// Rules returns the rules in spec order. The Rule values are shared and must
// not be modified.
func (p *Policy) Rules() []*Rule { return slices.Clone(p.rules) }

// Digest returns the hex SHA-256 of a canonical encoding of the Spec the
// policy was compiled from: the policy version that audit records carry. It
// does not depend on map order and changes with any change to a party or rule.
func (p *Policy) Digest() string { return p.digest }

// Spec returns a copy of the RuleSpec r was compiled from.
func (r *Rule) Spec() RuleSpec { return cloneRuleSpec(r.spec) }

func cloneRuleSpec(s RuleSpec) RuleSpec {
	s.Parties = slices.Clone(s.Parties)
	s.Targets = slices.Clone(s.Targets)
	s.Classes = slices.Clone(s.Classes)
	s.Functions = slices.Clone(s.Functions)
	s.Units = slices.Clone(s.Units)
	if s.Ranges != nil {
		m := make(map[string][]string, len(s.Ranges))
		for k, v := range s.Ranges {
			m[k] = slices.Clone(v)
		}
		s.Ranges = m
	}
	if s.Values != nil {
		b := *s.Values
		s.Values = &b
	}
	s.OPCUA = cloneOPCUA(s.OPCUA)
	return s
}

// appliesTo reports whether r names the party and the target.
func (r *Rule) appliesTo(party, target string) bool {
	return (r.anyParty || r.parties[party]) && (r.anyTarget || r.targets[target])
}

// partyIndex finds party in p. A Party from another Policy (a session that
// outlived a reload) is matched by its ID. -1 means unidentified.
func (p *Policy) partyIndex(party *Party) int {
	if party == nil {
		return -1
	}
	if i := party.index; i >= 0 && i < len(p.parties) && p.parties[i] == party {
		return i
	}
	if q := p.byID[party.ID]; q != nil {
		return q.index
	}
	return -1
}

// buildIndex fills p.index and p.nets once names are known to resolve.
func (p *Policy) buildIndex() {
	nt := len(p.targets)
	p.index = make([][]*Rule, len(p.parties)*nt)
	for i, party := range p.parties {
		for j, target := range p.targets {
			var rs []*Rule
			for _, r := range p.rules {
				if r.appliesTo(party.ID, target) {
					rs = append(rs, r)
				}
			}
			p.index[i*nt+j] = rs
		}
	}
	for _, party := range p.parties {
		for _, n := range party.Networks {
			p.nets = append(p.nets, netEntry{n, party})
		}
	}
	p.sortNets()
}

// sortNets puts longer prefixes first, so that the first network containing
// an address is the most specific one.
func (p *Policy) sortNets() {
	slices.SortStableFunc(p.nets, func(a, b netEntry) int {
		return cmp.Compare(b.prefix.Bits(), a.prefix.Bits())
	})
}

// sortedKeys returns the keys of m in order, so that errors and digests do
// not depend on map order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
