package bundle

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/brana-ot/brana/policy"
)

// DefaultListingsCompiled is the day the built-in listings were compiled.
// They must be reviewed; a signed bundle brings newer ones.
const DefaultListingsCompiled = "2026-11-26"

//go:embed default/listings.yaml
var defaultListings []byte

var parsedDefaults = sync.OnceValues(func() ([]policy.ListingEntry, error) {
	return ParseListings(defaultListings, "built-in listings compiled "+DefaultListingsCompiled)
})

// DefaultListings returns the built-in listings of public high-risk
// entities (default/listings.yaml): the companies named in the joint
// cybersecurity advisory of 27 August 2025 (action block) and the PRC
// entities on the FCC Covered List (action approval), each with its source,
// as compiled on DefaultListingsCompiled. The slice is the caller's.
func DefaultListings() []policy.ListingEntry {
	l, err := parsedDefaults()
	if err != nil {
		panic("bundle: built-in listings: " + err.Error()) // a test keeps this from happening
	}
	out := slices.Clone(l)
	for i := range out {
		out[i].Aliases = slices.Clone(out[i].Aliases)
		out[i].ASNs = slices.Clone(out[i].ASNs)
	}
	return out
}

// ParseListings reads a listings.yaml: a mapping with one key, entries, a
// list of {name, aliases, country, action, source, reference, date, asns}.
// Unknown keys are errors, and every entry must pass
// policy.ValidateListing and name its source. origin is set on every entry
// (e.g. "bundle serial 7").
func ParseListings(data []byte, origin string) ([]policy.ListingEntry, error) {
	var doc struct {
		Entries []policy.ListingEntry `yaml:"entries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file lists nothing
		}
		return nil, fmt.Errorf("%w: %v", ErrListings, err)
	}
	var rest yaml.Node
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrListings)
	}
	for i := range doc.Entries {
		e := &doc.Entries[i]
		if err := policy.ValidateListing(e); err != nil {
			return nil, fmt.Errorf("%w: entries[%d]: %v", ErrListings, i, err)
		}
		if e.Source == "" {
			return nil, fmt.Errorf("%w: entries[%d] (%s): no source", ErrListings, i, e.Name)
		}
		e.Origin = origin
	}
	return doc.Entries, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
