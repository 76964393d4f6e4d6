package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// webhook posts approval records to approvals.webhook.url: every request
// this gateway files (pending), every decision made through its admin API
// (approved, denied) and every withdrawal of a request it held. It is the
// store's Options.Notify, which the store calls one record at a time, in
// order, from a goroutine of its own: a POST never delays a statement or
// a decision, only the next notification (each POST is bounded by the
// timeout). A failure is logged and not retried.
//
// The URL (which may carry a token, as chat webhooks' do) and the header
// values are secrets: logs name the URL's host only, and errors are
// stripped of the URL.
type webhook struct {
	url     string
	host    string // for the logs
	headers []webhookHeader
	client  *http.Client
	log     *slog.Logger
}

type webhookHeader struct {
	name  string
	value session.Secret
}

// newWebhook returns the webhook of approvals.webhook (validated).
func newWebhook(cfg *webhookConfig, logger *slog.Logger) *webhook {
	w := &webhook{url: cfg.URL.Reveal(), log: logger, client: &http.Client{
		Timeout: cmp.Or(time.Duration(cfg.Timeout), defaultWebhookTimeout),
		// A redirect would carry the headers (tokens) elsewhere: refuse it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if u, err := url.Parse(w.url); err == nil {
		w.host = u.Host
	}
	for name, value := range cfg.Headers {
		w.headers = append(w.headers, webhookHeader{name: name, value: value.Secret})
	}
	slices.SortFunc(w.headers, func(a, b webhookHeader) int { return cmp.Compare(a.name, b.name) })
	return w
}

// notify posts rec as JSON, and logs a failure.
func (w *webhook) notify(rec approval.Record) {
	attrs := []any{"host", w.host, "request", rec.Request.ID, "status", string(rec.Status)}
	status, err := w.post(rec)
	switch {
	case err != nil:
		w.log.Warn("pgwarden: approvals webhook: the notification was not delivered", append(attrs, "err", err)...)
	case status < 200 || status > 299:
		w.log.Warn("pgwarden: approvals webhook: the notification was refused", append(attrs, "http_status", status)...)
	default:
		w.log.Debug("pgwarden: approvals webhook: notified", attrs...)
	}
}

// post sends rec and returns the answer's status code.
func (w *webhook) post(rec approval.Record) (int, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("invalid webhook URL")
	}
	for _, h := range w.headers {
		req.Header.Set(h.name, h.value.Reveal())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pgwarden-approvals")
	resp, err := w.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL: keep only what went wrong.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			if ue.Timeout() {
				return 0, errors.New("timed out")
			}
			return 0, ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
