package sessions

import (
	"sync"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	var mu sync.Mutex
	stopped := map[string]string{}
	mk := func(id, party string, since time.Time) *Session {
		return New(Info{ID: id, Party: party, Since: since}, func(reason string) {
			mu.Lock()
			stopped[id] = reason
			mu.Unlock()
		})
	}
	now := time.Now()
	a, b, c := mk("a", "acme", now), mk("b", "scada", now.Add(time.Second)), mk("c", "acme", now.Add(2*time.Second))
	for _, s := range []*Session{c, a, b} {
		r.Add(s)
	}
	a.Counted(false)
	a.Counted(true)
	l := r.List()
	if len(l) != 3 || l[0].ID != "a" || l[2].ID != "c" || l[0].Requests != 2 || l[0].Refused != 1 {
		t.Fatalf("List = %+v", l)
	}
	if !r.Kill("b", "engineer stopped it") || r.Kill("zz", "x") {
		t.Fatal("Kill reported wrongly")
	}
	if stopped["b"] != "engineer stopped it" {
		t.Fatalf("stop reason = %q", stopped["b"])
	}
	if b.Stop("again") {
		t.Fatal("a session stopped twice")
	}
	ids := r.KillWhere(func(s *Session) bool { return s.Party() == "acme" }, "grant revoked")
	if len(ids) != 2 || stopped["a"] != "grant revoked" || stopped["c"] != "grant revoked" {
		t.Fatalf("KillWhere = %v, stopped %v", ids, stopped)
	}
	r.Remove(a)
	if r.Len() != 2 {
		t.Fatalf("Len = %d after Remove", r.Len())
	}
}
