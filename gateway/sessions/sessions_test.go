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

func TestWatch(t *testing.T) {
	r := NewRegistry()
	s := New(Info{ID: "s1", Party: "vendor"}, func(string) {})
	s.SetSupervised(true)
	r.Add(s)
	if r.Get("s1") != s || r.Get("zz") != nil {
		t.Fatal("Get found the wrong session")
	}
	if s.Watched() {
		t.Fatal("watched before anyone watches")
	}
	stopA := s.Watch()
	stopB := s.Watch()
	if i := r.List()[0]; !s.Watched() || i.Watchers != 2 || !i.Supervised {
		t.Fatalf("two watchers: Watched %v, Info %+v", s.Watched(), i)
	}
	stopA()
	stopA() // idempotent: does not take B's place away
	if !s.Watched() || s.Info().Watchers != 1 {
		t.Fatalf("after one stop: Watched %v, watchers %d", s.Watched(), s.Info().Watchers)
	}
	stopB()
	if s.Watched() || s.Info().Watchers != 0 {
		t.Fatalf("after both stopped: Watched %v, watchers %d", s.Watched(), s.Info().Watchers)
	}
	s.SetSupervised(false)
	if s.Info().Supervised {
		t.Fatal("Supervised still set")
	}
}

func TestCountByProtocol(t *testing.T) {
	r := NewRegistry()
	mk := func(id, protocol string) *Session { return New(Info{ID: id, Protocol: protocol}, func(string) {}) }
	a, b, c := mk("a", "modbus"), mk("b", "opcua"), mk("c", "modbus")
	for _, s := range []*Session{a, b, c} {
		r.Add(s)
	}
	if m, o, x := r.Count("modbus"), r.Count("opcua"), r.Count("ssh"); m != 2 || o != 1 || x != 0 {
		t.Fatalf("Count = modbus %d, opcua %d, ssh %d; want 2, 1, 0", m, o, x)
	}
	r.Remove(a)
	if m := r.Count("modbus"); m != 1 {
		t.Fatalf("Count(modbus) = %d after a removal; want 1", m)
	}
}
