package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/brana-ot/brana/gateway/adminapi"
)

// streamPing keeps proxies from closing an idle stream and lets the
// console notice a login or token that ended.
const streamPing = 15 * time.Second

// streamEvent is one record of a live session as the stream sends it.
type streamEvent struct {
	Seq       uint64 `json:"seq"`
	Time      string `json:"time"`
	Type      string `json:"type"`
	Target    string `json:"target,omitempty"`
	Class     string `json:"class,omitempty"`
	Operation string `json:"operation,omitempty"`
	Decision  string `json:"decision,omitempty"`
	Text      string `json:"text"` // the decision with its rule, reason and grant
	Outcome   string `json:"outcome,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// events streams the records of one live session as server-sent events:
// "record" for each, "end" when the session closes, "logout" when the
// login or token ends. An engineer's stream counts as watching the session.
func (c *Console) events(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	if c.o.Live == nil {
		writeError(w, http.StatusServiceUnavailable, "this gateway has no live audit feed")
		return
	}
	if _, ok := c.liveSession(id); !ok {
		writeError(w, http.StatusNotFound, "no live session "+id)
		return
	}
	records, cancel := c.o.Live.Subscribe()
	defer cancel()
	// Only a person in the console supervises; automation with a token does not.
	if c.o.Watch != nil && !p.viaToken() && p.Has(adminapi.RoleApprover) {
		if stop, ok := c.o.Watch(id); ok {
			c.o.Log.Info("console: watching session", "session", id, "user", p.User)
			defer func() {
				stop()
				c.o.Log.Info("console: stopped watching session", "session", id, "user", p.User)
			}()
		}
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\n: session %s\n\n", id)
	if rc.Flush() != nil {
		return
	}
	// The session id is a plain string in the stored JSON: a byte match
	// skips other sessions' records without decoding them.
	mark, _ := json.Marshal(id)
	mark = append([]byte(`"session":`), mark...)
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case line, ok := <-records:
			if !ok {
				fmt.Fprint(w, "event: end\ndata: {\"reason\":\"the live feed ended\"}\n\n")
				rc.Flush()
				return
			}
			if !bytes.Contains(line, mark) {
				continue
			}
			rec, err := decodeRecord(line)
			if err != nil || rec.Session != id {
				continue
			}
			ev, _ := json.Marshal(streamEvent{Seq: rec.Seq, Time: rec.Time, Type: rec.Type, Target: rec.Target,
				Class: rec.Class, Operation: rec.Operation(), Decision: rec.Decision, Text: rec.DecisionText(),
				Outcome: rec.Outcome(), Detail: rec.Detail})
			fmt.Fprintf(w, "id: %d\nevent: record\ndata: %s\n\n", rec.Seq, ev)
			if rec.Type == "session.close" {
				fmt.Fprintf(w, "event: end\ndata: %s\n\n", ev)
				rc.Flush()
				return
			}
			if rc.Flush() != nil {
				return
			}
		case <-ping.C:
			if _, live := c.liveSession(id); !live {
				fmt.Fprint(w, "event: end\ndata: {\"reason\":\"the session is no longer live\"}\n\n")
				rc.Flush()
				return
			}
			if !c.alive(p) || (p.viaToken() && !c.tokens.exists(p.token.ID)) {
				fmt.Fprint(w, "event: logout\ndata: {}\n\n")
				rc.Flush()
				return
			}
			fmt.Fprint(w, ": ping\n\n")
			if rc.Flush() != nil {
				return
			}
		}
	}
}
