package bundle

import (
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/policy"
)

// FuzzParseManifest: no panic; an accepted text is canonical (it renders
// back byte for byte) and its fields hold what ParseManifest promises.
func FuzzParseManifest(f *testing.F) {
	good := (&Manifest{Serial: 7, Expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), Files: []File{
		{Name: "asn.mmdb", SHA256: strings.Repeat("ab", 32)},
		{Name: "listings.yaml", SHA256: strings.Repeat("0f", 32)},
	}}).Text()
	for _, s := range []string{
		good,
		"brana-bundle 1\nserial 1\nexpires 2027-03-01T00:00:00Z\n",
		"brana-bundle 1\nserial 01\nexpires 2027-03-01T00:00:00Z\n",
		"brana-bundle 1\nserial 1\nexpires 2027-03-01T00:00:00+01:00\n",
		strings.Replace(good, "asn.mmdb", "../asn.mmdb", 1),
		strings.Replace(good, "listings.yaml", "MANIFEST", 1),
		good + "file zz " + strings.Repeat("AB", 32) + "\n",
		good[:len(good)-1],
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseManifest(text)
		if err != nil {
			return
		}
		if got := m.Text(); got != text {
			t.Fatalf("not canonical:\n%q\nrenders as\n%q", text, got)
		}
		if m.Serial == 0 || m.Expires.Location() != time.UTC {
			t.Fatalf("bad fields %+v", m)
		}
		for i, fl := range m.Files {
			if fl.Name == ManifestFile || strings.ContainsAny(fl.Name, "/\\ ") || strings.HasPrefix(fl.Name, ".") || len(fl.SHA256) != 64 {
				t.Fatalf("bad file %+v", fl)
			}
			if i > 0 && m.Files[i-1].Name >= fl.Name {
				t.Fatalf("files not sorted: %+v", m.Files)
			}
		}
	})
}

// FuzzParseListings: no panic; accepted entries are valid and carry the
// origin.
func FuzzParseListings(f *testing.F) {
	f.Add(defaultListings)
	f.Add([]byte(testListings))
	f.Add([]byte("entries:\n  - {name: A, action: note, source: s, asns: [1, 2]}\n"))
	f.Add([]byte("entries: [{name: &a x, aliases: [*a], action: block, source: *a}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseListings(data, "fuzz")
		if err != nil {
			return
		}
		for i := range l {
			if err := policy.ValidateListing(&l[i]); err != nil || l[i].Source == "" || l[i].Origin != "fuzz" {
				t.Fatalf("accepted invalid entry %+v: %v", l[i], err)
			}
		}
	})
}
