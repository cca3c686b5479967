package console

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAuditSearch(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("audrey")
	for _, tc := range []struct {
		name, query string
		seqs        []uint64 // log order
	}{
		{"party", "party=acme", []uint64{1, 2, 3, 4, 5}},
		{"party-by-org", "party=ACME+s.r.o", []uint64{1, 2, 3}},
		{"session", "session=s-old", []uint64{2, 3, 4, 5}},
		{"decision", "decision=deny", []uint64{6}},
		{"text", "q=unidentified", []uint64{6}},
		{"text-in-values", "q=acme-tune", []uint64{3}},
		{"type-family", "type=session", []uint64{2, 5, 6}},
		{"limit", "party=acme&limit=2", []uint64{4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.get("/api/v1/audit?" + tc.query)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			var a struct {
				Matched int
				Records []struct{ Seq uint64 }
			}
			json.Unmarshal([]byte(body), &a)
			var got []uint64
			for _, r := range a.Records {
				got = append(got, r.Seq)
			}
			if !equalSeqs(got, tc.seqs) {
				t.Fatalf("seqs %v, want %v", got, tc.seqs)
			}
		})
	}
	t.Run("page", func(t *testing.T) {
		resp, body := c.get("/audit?party=acme&session=s-old&q=42")
		if resp.StatusCode != 200 || !strings.Contains(body, `data-seq="3"`) || strings.Contains(body, `data-seq="2"`) ||
			!strings.Contains(body, "fc 16 unit 1 write write holding 100..101 = 42, 43") {
			t.Fatalf("page: %s\n%s", resp.Status, body)
		}
	})
	t.Run("fail/bad-filter", func(t *testing.T) {
		if resp, _ := c.get("/audit?class=writ"); resp.StatusCode != 400 {
			t.Fatalf("bad class: %s", resp.Status)
		}
	})
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAuditExport(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("audrey")
	resp, body := c.get("/api/v1/audit/export?format=json&session=s-old")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("json export: %s %v", resp.Status, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], `{"seq":2,"prev":"`) {
		t.Fatalf("json export:\n%s", body)
	}
	resp, body = c.get("/api/v1/audit/export?format=csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv export: %s", resp.Status)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || rows[0][0] != "seq" || rows[3][21] != "42 43" || rows[3][12] != "16" {
		t.Fatalf("csv:\n%s", body)
	}
	if d := rows[6][34]; !strings.HasPrefix(d, "'=") {
		t.Fatalf("a formula in a CSV cell was not defused: %q", d)
	}
	if resp, _ := c.get("/api/v1/audit/export?format=xml"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad format: %s", resp.Status)
	}
}

func TestSessionStory(t *testing.T) {
	f := newFixture(t, cheap(t))
	c := f.loggedIn("audrey")
	resp, body := c.get("/api/v1/audit/sessions/s-old")
	if resp.StatusCode != 200 {
		t.Fatalf("story: %s %s", resp.Status, body)
	}
	var a struct {
		Requests []string
		Records  []struct {
			Seq  uint64
			Type string
		}
	}
	json.Unmarshal([]byte(body), &a)
	var types []string
	for _, r := range a.Records {
		types = append(types, r.Type)
	}
	// From the request the session raised to its close.
	if strings.Join(types, ",") != "approval.request,session.open,command,result,session.close" || len(a.Requests) != 1 || a.Requests[0] != "R-ABCDEF" {
		t.Fatalf("story %v, requests %v", types, a.Requests)
	}
	if resp, body := c.get("/audit/sessions/s-old"); resp.StatusCode != 200 || !strings.Contains(body, "R-ABCDEF") {
		t.Fatalf("story page: %s", resp.Status)
	}
	if !mentions("session s-1 from", "s-1") || mentions("session s-12 from", "s-1") || mentions("xs-1", "s-1") {
		t.Fatal("mentions matches parts of ids")
	}
}
