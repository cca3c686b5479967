package audit

import "slices"

// LiveBuffer is how many records a live subscriber may fall behind before
// it starts losing them.
const LiveBuffer = 256

// subscriber is one live feed. Its fields are guarded by Log.mu, under
// which the appender sends, so that a channel is never closed during a send.
type subscriber struct {
	ch      chan []byte
	dropped uint64
	ended   bool
}

// Subscribe returns a live feed of the records appended from now on: each
// record's JSON line without the newline, shared by all subscribers and
// read-only. The feed is for watching, not for keeping: a subscriber more
// than LiveBuffer records behind loses records (counted in Health) rather
// than slow the appender, and a record a failed write later loses has
// already been sent (the gap record that follows says so). The file stays
// the record of truth. cancel ends the feed and closes the channel; it may
// be called more than once. Close ends every feed.
func (l *Log) Subscribe() (<-chan []byte, func()) {
	s := &subscriber{ch: make(chan []byte, LiveBuffer)}
	l.mu.Lock()
	if l.closed {
		s.endLocked(l)
	} else {
		l.subs = append(l.subs, s)
	}
	l.mu.Unlock()
	cancel := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if s.ended {
			return
		}
		l.subs = slices.DeleteFunc(l.subs, func(x *subscriber) bool { return x == s })
		s.endLocked(l)
	}
	return s.ch, cancel
}

// endLocked closes the feed once and says what it lost.
func (s *subscriber) endLocked(l *Log) {
	if s.ended {
		return
	}
	s.ended = true
	close(s.ch)
	if s.dropped > 0 {
		l.opts.Log.Warn("a live audit subscriber fell behind and lost records", "lost", s.dropped)
	}
}

// publishLocked hands a copy of line to every subscriber without waiting.
func (l *Log) publishLocked(line []byte) {
	c := make([]byte, len(line))
	copy(c, line)
	for _, s := range l.subs {
		select {
		case s.ch <- c:
		default:
			s.dropped++
			l.liveDropped.Add(1)
		}
	}
}
