package firmware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseManifestYAML reads the unsigned form of a manifest that operators
// write and `brana firmware sign` signs:
//
//	serial: 12
//	issued: 2026-11-20T10:00:00Z      # optional; default now
//	expires: 2027-05-20               # a date (its start, UTC) or an RFC 3339 time
//	images:
//	  - sha256: 5f2b...
//	    size: 1048576
//	    vendor: Example Automation
//	    product: PLC-4000 CPU
//	    version: "3.40.1"
//	    origin: vendor portal download 2026-11-20, ticket CHG-4711
//	    approved_by: [Jana Novak, Petr Svoboda]
//
// Unknown keys are errors, and each image must pass the checks that
// SignManifest makes; errors name the image by its position.
func ParseManifestYAML(data []byte, now time.Time) (Manifest, error) {
	var doc struct {
		Serial  uint64 `yaml:"serial"`
		Issued  string `yaml:"issued"`
		Expires string `yaml:"expires"`
		Images  []struct {
			SHA256     string   `yaml:"sha256"`
			Size       int64    `yaml:"size"`
			Vendor     string   `yaml:"vendor"`
			Product    string   `yaml:"product"`
			Version    string   `yaml:"version"`
			Origin     string   `yaml:"origin"`
			ApprovedBy []string `yaml:"approved_by"`
		} `yaml:"images"`
	}
	bad := func(format string, a ...any) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrManifest, fmt.Sprintf(format, a...))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return bad("empty file")
		}
		return bad("%v", err)
	}
	var rest yaml.Node
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) {
		return bad("more than one YAML document")
	}
	if doc.Serial == 0 {
		return bad("serial: missing or 0; want 1 or more, higher than the manifest it replaces")
	}
	m := Manifest{Serial: doc.Serial, Issued: now.UTC().Truncate(time.Second)}
	if doc.Issued != "" {
		t, err := parseWhen(doc.Issued)
		if err != nil {
			return bad("issued: %v", err)
		}
		m.Issued = t
	}
	if doc.Expires == "" {
		return bad("expires: missing")
	}
	t, err := parseWhen(doc.Expires)
	if err != nil {
		return bad("expires: %v", err)
	}
	m.Expires = t
	if !m.Issued.Before(m.Expires) {
		return bad("expires %s is not after issued %s", m.Expires.Format(time.RFC3339), m.Issued.Format(time.RFC3339))
	}
	seen := make(map[string]int)
	for i, y := range doc.Images {
		im := Image{
			SHA256: strings.ToLower(y.SHA256), Size: y.Size,
			Vendor: y.Vendor, Product: y.Product, Version: y.Version, Origin: y.Origin,
			ApprovedBy: y.ApprovedBy,
		}
		if msg := checkImage(&im); msg != "" {
			return bad("images[%d]: %s", i, msg)
		}
		if j, dup := seen[im.SHA256]; dup {
			return bad("images[%d]: sha256 %s is also images[%d]", i, im.SHA256, j)
		}
		seen[im.SHA256] = i
		m.Images = append(m.Images, im)
	}
	if len(m.Images) > maxImages {
		return bad("more than %d images", maxImages)
	}
	return m, nil
}

// parseWhen reads a date (its start, UTC) or an RFC 3339 time.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYY-MM-DD or an RFC 3339 time", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

// YAML renders the image as an entry of the images list of
// ParseManifestYAML, indented for pasting; empty fields are left for the
// operator to fill in.
func (im *Image) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - sha256: %s\n    size: %d\n", im.SHA256, im.Size)
	for _, f := range []struct{ name, v string }{
		{"vendor", im.Vendor}, {"product", im.Product}, {"version", im.Version}, {"origin", im.Origin},
	} {
		fmt.Fprintf(&b, "    %s: %s\n", f.name, quote(f.v))
	}
	b.WriteString("    approved_by: [")
	for i, a := range im.ApprovedBy {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(a))
	}
	b.WriteString("]\n")
	return b.String()
}

// quote writes s double-quoted. Go's escapes (\n, \t, \xNN, \uNNNN, \", \\)
// are also YAML's, so the value reads back unchanged.
func quote(s string) string { return strconv.Quote(s) }
