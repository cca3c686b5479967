package firmware

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseManifestYAML(t *testing.T) {
	h := sum(testImage(100))
	doc := `serial: 12
issued: 2026-11-20T10:00:00Z
expires: 2027-05-20
images:
  - sha256: ` + strings.ToUpper(h) + `
    size: 100
    vendor: Example Automation
    product: PLC-4000 CPU
    version: 3.40
    origin: vendor portal download 2026-11-20, ticket CHG-4711
    approved_by: [Jana Nováková, Petr Svoboda]
`
	m, err := ParseManifestYAML([]byte(doc), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{Serial: 12, Issued: issued, Expires: expires, Images: []Image{{
		SHA256: h, Size: 100, Vendor: "Example Automation", Product: "PLC-4000 CPU", Version: "3.40",
		Origin: "vendor portal download 2026-11-20, ticket CHG-4711", ApprovedBy: []string{"Jana Nováková", "Petr Svoboda"},
	}}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	s, v := newKey(t, "k")
	data, err := SignManifest(m, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(data, verifierList(v), now, 0); err != nil {
		t.Fatal(err)
	}

	noIssued := strings.Replace(doc, "issued: 2026-11-20T10:00:00Z\n", "", 1)
	if m, err := ParseManifestYAML([]byte(noIssued), now.Add(500*time.Millisecond)); err != nil || !m.Issued.Equal(now) {
		t.Fatalf("issued defaults to now: %v, %v", m.Issued, err)
	}

	tests := []struct{ name, doc, msg string }{
		{"unknown-key", doc + "signer: x\n", "signer"},
		{"no-serial", strings.Replace(doc, "serial: 12\n", "", 1), "serial"},
		{"no-expiry", strings.Replace(doc, "expires: 2027-05-20\n", "", 1), "expires"},
		{"bad-expiry", strings.Replace(doc, "2027-05-20", "20.5.2027", 1), "expires"},
		{"expires-before-issued", strings.Replace(doc, "2027-05-20", "2026-01-01", 1), "not after"},
		{"bad-hash", strings.Replace(doc, strings.ToUpper(h), "abc", 1), "images[0]: sha256"},
		{"no-approver", strings.Replace(doc, "[Jana Nováková, Petr Svoboda]", "[]", 1), "images[0]: approved_by"},
		{"duplicate", doc + strings.SplitN(doc, "images:\n", 2)[1], "images[1]: sha256"},
		{"two-documents", doc + "---\nserial: 1\n", "more than one"},
		{"empty", "", "empty"},
	}
	for _, tt := range tests {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			_, err := ParseManifestYAML([]byte(tt.doc), now)
			if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("ParseManifestYAML: %v; want ErrManifest about %q", err, tt.msg)
			}
		})
	}
}

// An entry that Image.YAML writes reads back as the same image, whatever
// its text holds.
func TestImageYAMLRoundTrip(t *testing.T) {
	im := Image{SHA256: sum(nil), Size: 7, Vendor: `ACME: "Automation" #1`, Product: "- [x]", Version: "010",
		Origin: "it's 'quoted' \\ back", ApprovedBy: []string{"yes", "Žofie Dvořáková"}}
	doc := "serial: 1\nexpires: 2030-01-01\nimages:\n" + im.YAML()
	m, err := ParseManifestYAML([]byte(doc), now)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if !reflect.DeepEqual(m.Images[0], im) {
		t.Fatalf("got %+v\nwant %+v", m.Images[0], im)
	}
}
