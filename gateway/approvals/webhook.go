package approvals

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const (
	webhookQueue    = 256
	webhookAttempts = 8
	webhookMaxDelay = time.Minute
)

// Payload is the JSON body of a webhook. It describes; it never carries a
// token or link that could approve anything.
type Payload struct {
	Event   EventKind `json:"event"`
	Time    time.Time `json:"time"`
	Request Request   `json:"request"`
}

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the webhook's secret file.
const SignatureHeader = "X-Brana-Signature"

// notified are the events that webhooks hear about: new requests and decisions.
var notified = map[EventKind]bool{Created: true, Extended: true, Approved: true, Granted: true, Denied: true, Revoked: true, Expired: true}

type delivery struct {
	kind EventKind
	body []byte
}

type webhook struct {
	s    *Service
	url  string
	host string // for logs: the URL may carry a secret in its path or query
	key  []byte
	q    chan delivery
}

func newWebhook(c WebhookConfig, s *Service) (*webhook, error) {
	h := &webhook{s: s, url: c.URL, q: make(chan delivery, webhookQueue)}
	if u, err := url.Parse(c.URL); err == nil {
		h.host = u.Host
	}
	if c.SecretFile != "" {
		key, err := readSecret(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("approvals: webhook secret: %w", err)
		}
		h.key = key
	}
	return h, nil
}

// notify queues ev without waiting; a full queue drops it with a log line.
func (h *webhook) notify(ev Event) {
	if !notified[ev.Kind] {
		return
	}
	body, err := json.Marshal(Payload{Event: ev.Kind, Time: h.s.now().UTC(), Request: ev.Request})
	if err != nil {
		h.s.log.Error("approvals: webhook payload", "err", err)
		return
	}
	select {
	case h.q <- delivery{ev.Kind, body}:
	default:
		h.s.log.Warn("approvals: webhook queue full; notification dropped", "webhook", h.host, "event", ev.Kind, "request", ev.Request.ID)
	}
}

// run delivers in order, one at a time, until the service closes.
func (h *webhook) run() {
	for {
		select {
		case <-h.s.done:
			return
		case d := <-h.q:
			h.deliver(d)
		}
	}
}

func (h *webhook) deliver(d delivery) {
	delay := h.s.opts.WebhookRetry
	for attempt := 1; ; attempt++ {
		retry, err := h.post(d)
		if err == nil {
			return
		}
		if !retry || attempt == webhookAttempts {
			h.s.log.Error("approvals: webhook not delivered", "webhook", h.host, "event", d.kind, "attempts", attempt, "err", err)
			return
		}
		h.s.log.Warn("approvals: webhook failed; retrying", "webhook", h.host, "event", d.kind, "attempt", attempt, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-h.s.done:
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, webhookMaxDelay)
	}
}

// post sends one attempt and says whether a failure is worth retrying.
func (h *webhook) post(d delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(h.s.ctx, http.MethodPost, h.url, bytes.NewReader(d.body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "brana")
	req.Header.Set("X-Brana-Event", string(d.kind))
	if h.key != nil {
		req.Header.Set(SignatureHeader, Sign(h.key, d.body))
	}
	resp, err := h.s.opts.HTTPClient.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("status %s", resp.Status)
	}
	return false, fmt.Errorf("status %s", resp.Status)
}

// Sign returns the X-Brana-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 with key. Receivers compare it with hmac.Equal.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
