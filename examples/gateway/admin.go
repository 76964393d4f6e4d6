package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// The admin API is a small JSON-over-HTTP API next to the proxy, for
// operators and scripts: list and terminate sessions, revoke identities,
// read the access review, and list and decide approval requests (see
// approvals_admin.go). Every request carries the admin token as
// "Authorization: Bearer <token>"; anything else is answered 401, before
// the path is even looked at. It has no TLS: keep it on loopback (the
// default), or behind a TLS-terminating proxy. With
// telemetry.prometheus.enabled it also serves GET /metrics, with the token
// unless telemetry.prometheus.require_token is false.

// maxAdminBody bounds a request body.
const maxAdminBody = 64 << 10

// defaultStaleAfter is the access review's default staleness threshold.
const defaultStaleAfter = time.Hour

// newAdminServer returns the admin API's HTTP server for g, whose
// configuration has an admin section. Its errors go to logger.
func newAdminServer(g *gateway, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           newAdminHandler(g, logger),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// The access review logs in to the server for static credentials.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// adminAPI serves the admin API of one gateway.
type adminAPI struct {
	g   *gateway
	log *slog.Logger
	// tokenHash is the SHA-256 of the admin token: requests' tokens are
	// hashed and compared in constant time, so neither the token's
	// content nor its length leaks through timing. The token itself is
	// not kept here.
	tokenHash [sha256.Size]byte
	// hasToken is false when no token is configured: every request is
	// refused.
	hasToken bool
	// now is the clock (tests may replace it).
	now func() time.Time
	// revoking serializes revocations and their removal, so that the
	// saved file follows the proxy's state in the same order.
	revoking sync.Mutex
}

// newAdminHandler returns the admin API's handler: the routes behind the
// token check.
func newAdminHandler(g *gateway, logger *slog.Logger) http.Handler {
	a := &adminAPI{g: g, log: logger, now: time.Now}
	if g.cfg.Admin != nil && !g.cfg.Admin.Token.IsZero() {
		a.tokenHash, a.hasToken = sha256.Sum256([]byte(g.cfg.Admin.Token.Reveal())), true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sessions", a.listSessions)
	mux.HandleFunc("POST /sessions/{id}/terminate", a.terminate)
	mux.HandleFunc("GET /revocations", a.listRevocations)
	mux.HandleFunc("POST /revocations", a.revoke)
	mux.HandleFunc("DELETE /revocations", a.unrevoke)
	mux.HandleFunc("GET /leases", a.leases)
	mux.HandleFunc("POST /leases/{role}/revoke", a.revokeLease)
	a.approvalRoutes(mux)
	metrics := g.metricsHandler()
	if metrics == nil {
		return a.authenticate(mux)
	}
	if g.cfg.Telemetry.Prometheus.requireToken() {
		mux.Handle("GET /metrics", metrics)
		return a.authenticate(mux)
	}
	// telemetry.prometheus.require_token: false: a scraper reads
	// /metrics without the token; every other path still needs it.
	open := http.NewServeMux()
	open.Handle("GET /metrics", metrics)
	open.Handle("/", a.authenticate(mux))
	return open
}

// metricsHandler returns the handler of GET /metrics (the Prometheus text
// format); nil when telemetry.prometheus is not enabled.
func (g *gateway) metricsHandler() http.Handler {
	if g.telemetry == nil || g.telemetry.metrics == nil {
		return nil
	}
	return g.telemetry.metrics
}

// authenticate answers 401 to requests without the admin token, and
// passes the others to next.
func (a *adminAPI) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r.Header.Get("Authorization")) {
			// Never log the header: it may hold a token that is almost
			// right, or the right one for another gateway.
			a.log.Warn("pgwarden: admin API: unauthorized request", "remote", r.RemoteAddr,
				"method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="pgwarden"`)
			writeError(w, http.StatusUnauthorized, "unauthorized: send the admin token as Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized reports whether header is "Bearer <the admin token>".
func (a *adminAPI) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !a.hasToken {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimLeft(token, " ")))
	return subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) == 1
}

// actorJSON is one party of a delegation chain.
type actorJSON struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer,omitempty"`
}

// chainJSON returns id's delegation chain, never nil (an empty list when
// the subject connects directly).
func chainJSON(id session.Identity) []actorJSON {
	out := make([]actorJSON, 0, len(id.Chain))
	for _, a := range id.Chain {
		out = append(out, actorJSON{Subject: a.Subject, Issuer: a.Issuer})
	}
	return out
}

// sessionJSON is a live session in GET /sessions.
type sessionJSON struct {
	ID      string      `json:"id"`
	Subject string      `json:"subject"`
	Issuer  string      `json:"issuer"`
	Chain   []actorJSON `json:"chain"`
	// User is the user name the client sent; Database its database.
	User       string `json:"user"`
	Database   string `json:"database"`
	ClientAddr string `json:"client_addr"`
	// UpstreamUser is the database role the session uses; Lease names its
	// just-in-time lease (the role), if any.
	UpstreamUser    string    `json:"upstream_user"`
	Lease           string    `json:"lease,omitempty"`
	State           string    `json:"state"`
	StartedAt       time.Time `json:"started_at"`
	Statements      int64     `json:"statements"`
	LastStatementAt time.Time `json:"last_statement_at,omitzero"`
}

// listSessions answers GET /sessions: {"sessions": [...]}, oldest first.
func (a *adminAPI) listSessions(w http.ResponseWriter, r *http.Request) {
	live := a.g.proxy.Sessions()
	slices.SortFunc(live, func(x, y proxy.SessionStatus) int { return x.Info.StartedAt.Compare(y.Info.StartedAt) })
	out := make([]sessionJSON, 0, len(live))
	for _, s := range live {
		out = append(out, sessionJSON{
			ID: s.Info.ID, Subject: s.Info.Identity.Subject, Issuer: s.Info.Identity.Issuer,
			Chain: chainJSON(s.Info.Identity), User: s.Info.User, Database: s.Info.Database,
			ClientAddr: s.Info.ClientAddr, UpstreamUser: s.Info.UpstreamUser, Lease: s.Info.Lease,
			State: s.State, StartedAt: s.Info.StartedAt.UTC(), Statements: s.Statements,
			LastStatementAt: utc(s.LastStatement),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// terminateRequest is the optional body of POST /sessions/{id}/terminate.
type terminateRequest struct {
	// Message is what the client reads with its FATAL 57P01; empty for
	// the default.
	Message string `json:"message"`
}

// terminate answers POST /sessions/{id}/terminate: the session ends with
// FATAL 57P01 and its credential is released. 404 for no such session.
func (a *adminAPI) terminate(w http.ResponseWriter, r *http.Request) {
	var req terminateRequest
	if !readJSON(w, r, &req, true) {
		return
	}
	id := r.PathValue("id")
	err := a.g.proxy.Terminate(id, req.Message)
	if errors.Is(err, proxy.ErrSessionNotFound) {
		writeError(w, http.StatusNotFound, "no live session has this id")
		return
	}
	if err != nil {
		a.fail(w, "terminating a session", err)
		return
	}
	a.log.Warn("pgwarden: admin API: session terminated", "session", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"terminated": id})
}

// revocationJSON is a revocation: the body of POST /revocations and an
// item of GET /revocations.
type revocationJSON struct {
	// Issuer empty means the subject within any issuer.
	Issuer  string    `json:"issuer"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since,omitzero"`
}

// listRevocations answers GET /revocations: {"revocations": [...]}, oldest
// first.
func (a *adminAPI) listRevocations(w http.ResponseWriter, r *http.Request) {
	rs := a.g.proxy.Revocations()
	out := make([]revocationJSON, 0, len(rs))
	for _, v := range rs {
		// The time it was made, rather than when a restart applied it.
		since := cmp.Or(a.g.revocations.since(v.Issuer, v.Subject), v.Since).UTC()
		out = append(out, revocationJSON{Issuer: v.Issuer, Subject: v.Subject, Reason: v.Reason, Since: since})
	}
	slices.SortFunc(out, func(x, y revocationJSON) int {
		return cmp.Or(x.Since.Compare(y.Since), strings.Compare(x.Issuer, y.Issuer), strings.Compare(x.Subject, y.Subject))
	})
	writeJSON(w, http.StatusOK, map[string]any{"revocations": out})
}

// revoke answers POST /revocations {issuer, subject, reason}: every live
// session involving the subject (as subject or anywhere in its delegation
// chain) ends, new ones are refused until DELETE /revocations, and the
// just-in-time leases of the ended sessions end with reason "revoked".
// The answer is {"ended": n}, the number of sessions ended.
func (a *adminAPI) revoke(w http.ResponseWriter, r *http.Request) {
	var req revocationJSON
	if !readJSON(w, r, &req, false) {
		return
	}
	if req.Subject == "" {
		writeError(w, http.StatusBadRequest, "subject is required")
		return
	}
	// The leases of the sessions about to end. The sessions release them
	// as they end, asynchronously; ending them here too means that when
	// the answer arrives, the revoked parties' roles are gone from the
	// server. Whichever comes second does nothing.
	var leases []string
	for _, s := range a.g.proxy.Sessions() {
		if s.Info.Lease != "" && s.Info.Identity.Involves(req.Issuer, req.Subject) {
			leases = append(leases, s.Info.Lease)
		}
	}
	a.revoking.Lock()
	defer a.revoking.Unlock()
	n, err := a.g.proxy.Revoke(req.Issuer, req.Subject, req.Reason)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.endLeases(r.Context(), leases); err != nil {
		// The revocation is in force; the sweeper retries the drops.
		a.log.Error("pgwarden: admin API: ending the revoked sessions' leases", "err", err)
	}
	a.log.Warn("pgwarden: admin API: identity revoked", "issuer", req.Issuer, "subject", req.Subject,
		"reason", req.Reason, "sessions_ended", n, "remote", r.RemoteAddr)
	req.Since = a.now().UTC()
	if err := a.g.revocations.add(req); err != nil {
		a.fail(w, "the revocation is in force, but saving it", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ended": n})
}

// unrevoke answers DELETE /revocations?issuer=&subject=: the revocation
// with exactly this issuer and subject is lifted ({"lifted": true}); 404
// when there is none.
func (a *adminAPI) unrevoke(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	issuer, subject := q.Get("issuer"), q.Get("subject")
	if subject == "" {
		writeError(w, http.StatusBadRequest, "the subject query parameter is required")
		return
	}
	a.revoking.Lock()
	defer a.revoking.Unlock()
	if !a.g.proxy.Unrevoke(issuer, subject) {
		writeError(w, http.StatusNotFound, "no revocation for this issuer and subject")
		return
	}
	a.log.Warn("pgwarden: admin API: revocation lifted", "issuer", issuer, "subject", subject, "remote", r.RemoteAddr)
	if err := a.g.revocations.remove(issuer, subject); err != nil {
		a.fail(w, "the revocation is lifted, but saving that", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lifted": true})
}

// revokeLeaseRequest is the optional body of POST /leases/{role}/revoke.
type revokeLeaseRequest struct {
	Reason string `json:"reason"`
}

// revokeLease answers POST /leases/{role}/revoke: the session using the
// active lease (if it is live here) ends with FATAL 28000, and the lease
// ends with reason "revoked" (its role is dropped). The identity is not
// revoked: it may log in again and gets a new lease. The answer is
// {"session_ended": bool}; 404 when this gateway holds no such active
// lease.
func (a *adminAPI) revokeLease(w http.ResponseWriter, r *http.Request) {
	var req revokeLeaseRequest
	if !readJSON(w, r, &req, true) {
		return
	}
	role := r.PathValue("role")
	if a.g.dynamic == nil {
		writeError(w, http.StatusNotFound, "this gateway has no dynamic credentials")
		return
	}
	leases, err := a.g.dynamic.Leases(r.Context())
	if err != nil {
		a.fail(w, "reading the leases", err)
		return
	}
	if !slices.ContainsFunc(leases, func(l credstore.Lease) bool {
		return l.Role == role && l.Active() && l.Gateway == a.g.gatewayID
	}) {
		writeError(w, http.StatusNotFound, "this gateway holds no active lease with this role")
		return
	}
	ended := a.g.proxy.RevokeLease(role, req.Reason)
	if err := a.endLeases(r.Context(), []string{role}); err != nil {
		a.fail(w, "ending the lease", err)
		return
	}
	a.log.Warn("pgwarden: admin API: lease revoked", "role", role, "reason", req.Reason,
		"session_ended", ended, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"session_ended": ended})
}

// leases answers GET /leases?stale=DURATION with the access review (see
// reviewReport); stale defaults to 1h.
func (a *adminAPI) leases(w http.ResponseWriter, r *http.Request) {
	staleAfter := defaultStaleAfter
	if s := r.URL.Query().Get("stale"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "stale must be a positive duration such as 30m or 1h")
			return
		}
		staleAfter = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	report, err := a.g.review(ctx, staleAfter, a.now())
	if err != nil {
		a.fail(w, "building the access review", err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}

// leaseEndTimeout bounds how long the API waits for leases to end.
const leaseEndTimeout = 30 * time.Second

// endLeases ends the leases of roles with reason "revoked" and waits until
// the lease store records each as ended, so that their roles are gone when
// the API answers: a session's own release may be ending one at the same
// time (then EndLease returns at once and the release drops the role).
func (a *adminAPI) endLeases(ctx context.Context, roles []string) error {
	if a.g.dynamic == nil || len(roles) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseEndTimeout)
	defer cancel()
	var errs []error
	for _, role := range roles {
		errs = append(errs, a.g.dynamic.EndLease(ctx, role, "revoked"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for {
		leases, err := a.g.dynamic.Leases(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(leases, func(l credstore.Lease) bool { return l.Active() && slices.Contains(roles, l.Role) }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the leases did not end within %s", leaseEndTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fail logs err and answers 500 with what was being done (not err, which
// may name internals).
func (a *adminAPI) fail(w http.ResponseWriter, doing string, err error) {
	a.log.Error("pgwarden: admin API: "+doing, "err", err)
	writeError(w, http.StatusInternalServerError, doing+" failed; see the gateway's log")
}

// readJSON decodes the request body into v (unknown fields are refused);
// an empty body is allowed when optional. On failure it has answered 400
// and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && optional {
		return true
	}
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid JSON body: %v", err))
		return false
	}
	return true
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError answers status with {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// utc returns t in UTC, the zero time as it is.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
