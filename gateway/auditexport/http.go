package auditexport

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// httpSender POSTs each batch as application/x-ndjson: the stored lines,
// each followed by a newline. A 2xx answer acknowledges the batch; anything
// else (redirects included: audit records go where configured, nowhere else)
// is a failure and the batch is sent again.
type httpSender struct {
	cfg    *Config
	client *http.Client
	grace  time.Duration
}

func newHTTPSender(cfg *Config, tc *tls.Config, timeout, grace time.Duration) *httpSender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // straight to the configured endpoint
	tr.TLSClientConfig = tc
	if tc == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &httpSender{cfg: cfg, grace: grace, client: &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (h *httpSender) send(ctx context.Context, b *batch) error {
	// A request in flight may finish for a short grace after shutdown.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(h.grace, cancel) })
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.cfg.URL, bytes.NewReader(b.data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "brana-audit-export")
	req.Header.Set("X-Brana-Exporter", h.cfg.Name)
	req.Header.Set("X-Brana-Seq-First", strconv.FormatUint(b.seqs[0], 10))
	req.Header.Set("X-Brana-Seq-Last", strconv.FormatUint(b.seqs[b.len()-1], 10))
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return fmt.Errorf("%w: %s answered %s: %q", errRejected, h.cfg.URL, resp.Status, msg)
	}
	return nil
}

func (h *httpSender) close() { h.client.CloseIdleConnections() }
