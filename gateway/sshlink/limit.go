package sshlink

import (
	"net/netip"
	"sync"
	"time"
)

const (
	authWindow = time.Minute            // failed attempts are counted over this sliding window
	slowStep   = 250 * time.Millisecond // each earlier failure adds this much delay before a failure answer
	slowMax    = 3 * time.Second        // cap on that delay
)

// sourceKey is the unit that limits count: an IPv4 address, or the /64 of an
// IPv6 address (one host usually owns a whole /64).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

// authLimiter counts failed logins (connections that end without
// authenticating) per source over a sliding minute. At limit failures the
// source is refused until the oldest of them is a minute old. While refused, the first limit connections still get an
// explanation (a banner); later ones are dropped right after accept, so a
// hammering source costs no key exchange.
type authLimiter struct {
	limit int

	mu sync.Mutex
	m  map[netip.Addr]*authState
}

type authState struct {
	fails   []time.Time // failures within the window, oldest first, at most limit
	until   time.Time   // end of the block that told and dropped count for
	told    int
	dropped int
}

func newAuthLimiter(limit int) *authLimiter {
	return &authLimiter{limit: limit, m: make(map[netip.Addr]*authState)}
}

func (s *authState) trim(now time.Time) {
	i := 0
	for i < len(s.fails) && now.Sub(s.fails[i]) >= authWindow {
		i++
	}
	if i > 0 {
		s.fails = s.fails[:copy(s.fails, s.fails[i:])]
	}
}

// failures is the number of failed logins in the window.
func (l *authLimiter) failures(k netip.Addr, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[k]
	if s == nil {
		return 0
	}
	s.trim(now)
	return len(s.fails)
}

// fail records one failed login and returns the failures in the window.
func (l *authLimiter) fail(k netip.Addr, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[k]
	if s == nil {
		s = &authState{fails: make([]time.Time, 0, l.limit)}
		l.m[k] = s
	}
	s.trim(now)
	if len(s.fails) >= l.limit { // only while refused: keep the newest limit
		s.fails = s.fails[:copy(s.fails, s.fails[1:])]
	}
	s.fails = append(s.fails, now)
	return len(s.fails)
}

// blocked returns how long the source stays refused, or 0.
func (l *authLimiter) blocked(k netip.Addr, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blockedLocked(k, now)
}

func (l *authLimiter) blockedLocked(k netip.Addr, now time.Time) time.Duration {
	s := l.m[k]
	if s == nil {
		return 0
	}
	s.trim(now)
	if len(s.fails) < l.limit {
		return 0
	}
	return s.fails[0].Add(authWindow).Sub(now)
}

// atAccept says what to do with a new connection: left > 0 means the source
// is refused for that long; then tell says whether it still gets an
// explanation, and dropped counts connections dropped silently in this block.
func (l *authLimiter) atAccept(k netip.Addr, now time.Time) (left time.Duration, tell bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	left = l.blockedLocked(k, now)
	if left <= 0 {
		return 0, false, 0
	}
	s := l.m[k]
	if until := s.fails[0].Add(authWindow); !until.Equal(s.until) {
		s.until, s.told, s.dropped = until, 0, 0
	}
	if s.told < l.limit {
		s.told++
		return left, true, 0
	}
	s.dropped++
	return left, false, s.dropped
}

// prune forgets sources without failures in the window.
func (l *authLimiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.m {
		if s.trim(now); len(s.fails) == 0 {
			delete(l.m, k)
		}
	}
}

// slowFor is the delay before a failure answer after n earlier failures.
func slowFor(n int) time.Duration {
	return min(time.Duration(n)*slowStep, slowMax)
}
