package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/policy/approval"
)

// The approvals endpoints of the admin API (behind the admin token, like
// every other):
//
//	GET  /approvals[?status=S]        {"approvals": [record...]}, newest first
//	GET  /approvals/{id}              the record
//	POST /approvals/{id}/approve      the decided record; body {"comment": "..."}
//	POST /approvals/{id}/deny         the same
//	GET  /grants                      {"grants": [grant...]}: the active grants
//
// A record is approval.Record as JSON. Deciding also needs the
// approver's credentials in X-Pgwarden-Approver (see approverAuth).

// maxApprovalComment bounds a decision's comment, in characters: the
// client reads it in its error message.
const maxApprovalComment = 1000

// approverCheckTimeout bounds checking the approver's credentials (an
// OIDC token may need the IdP's keys).
const approverCheckTimeout = 30 * time.Second

// approvalStatuses are the values of GET /approvals?status=, besides all.
var approvalStatuses = []approval.Status{approval.StatusPending, approval.StatusApproved, approval.StatusDenied,
	approval.StatusWithdrawn, approval.StatusExpired}

// approvalRoutes adds the approvals endpoints to mux.
func (a *adminAPI) approvalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /approvals", a.listApprovals)
	mux.HandleFunc("GET /approvals/{id}", a.getApproval)
	mux.HandleFunc("POST /approvals/{id}/approve", func(w http.ResponseWriter, r *http.Request) { a.decide(w, r, true) })
	mux.HandleFunc("POST /approvals/{id}/deny", func(w http.ResponseWriter, r *http.Request) { a.decide(w, r, false) })
	mux.HandleFunc("GET /grants", a.listGrants)
}

// approvalStore returns the store, or answers 404 and returns nil when
// the gateway has no approvals section.
func (a *adminAPI) approvalStore(w http.ResponseWriter) approval.Store {
	if a.g.approvals == nil {
		writeError(w, http.StatusNotFound, "this gateway has no approvals section")
	}
	return a.g.approvals
}

// parseStatuses reads ?status=: comma-separated statuses, or all;
// default pending. nil means every status.
func parseStatuses(q string) ([]approval.Status, bool) {
	if q == "" {
		return []approval.Status{approval.StatusPending}, true
	}
	var out []approval.Status
	for s := range strings.SplitSeq(q, ",") {
		s = strings.TrimSpace(s)
		if s == "all" {
			return nil, true
		}
		if !slices.Contains(approvalStatuses, approval.Status(s)) {
			return nil, false
		}
		out = append(out, approval.Status(s))
	}
	return out, true
}

// listApprovals answers GET /approvals?status=S: the records with one of
// the statuses (comma-separated: pending, approved, denied, withdrawn,
// expired; all for every record; default pending), newest first.
func (a *adminAPI) listApprovals(w http.ResponseWriter, r *http.Request) {
	store := a.approvalStore(w)
	if store == nil {
		return
	}
	statuses, ok := parseStatuses(r.URL.Query().Get("status"))
	if !ok {
		writeError(w, http.StatusBadRequest, "status must be all, or pending, approved, denied, withdrawn or expired (comma-separated)")
		return
	}
	recs, err := store.List(r.Context(), statuses...)
	if err != nil {
		a.approvalFail(w, "listing the approval requests", err)
		return
	}
	if recs == nil {
		recs = []approval.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": recs})
}

// getApproval answers GET /approvals/{id}: the record; 404 for no such
// request.
func (a *adminAPI) getApproval(w http.ResponseWriter, r *http.Request) {
	store := a.approvalStore(w)
	if store == nil {
		return
	}
	rec, err := store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.approvalFail(w, "reading the approval request", err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// decideRequest is the optional body of the decide endpoints.
type decideRequest struct {
	Comment string `json:"comment"`
}

// decide answers POST /approvals/{id}/approve and /deny: the approver
// (X-Pgwarden-Approver) decides the pending request. 401 for missing or
// wrong approver credentials; 403 when the approver may not decide it
// (not in its approver groups, or approving their own request); 404 for
// no such request; 409 when it is not pending any more; 500 when the
// gateway records and the decision could not be recorded (it is not
// applied then).
func (a *adminAPI) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	store := a.approvalStore(w)
	if store == nil {
		return
	}
	var req decideRequest
	if !readJSON(w, r, &req, true) {
		return
	}
	if utf8.RuneCountInString(req.Comment) > maxApprovalComment ||
		strings.ContainsFunc(req.Comment, func(c rune) bool { return unicode.IsControl(c) && c != '\n' || unicode.Is(unicode.Cf, c) }) {
		writeError(w, http.StatusBadRequest, "the comment must be at most 1000 characters, without control characters")
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), approverCheckTimeout)
	defer cancel()
	approver, err := a.g.approvers.identify(ctx, r.Header.Get(approverHeader))
	if err != nil {
		// Never log the header: it holds a password or a token.
		a.log.Warn("pgwarden: admin API: approver not authenticated", "request", id, "remote", r.RemoteAddr, "err", err)
		switch {
		case errors.Is(err, errApproverUnverified):
			writeError(w, http.StatusServiceUnavailable, "the approver's credentials could not be checked; see the gateway's log")
		case errors.Is(err, auth.ErrInvalidCredentials):
			writeError(w, http.StatusUnauthorized, "the approver's credentials ("+approverHeader+") are invalid")
		default:
			writeError(w, http.StatusUnauthorized, err.Error())
		}
		return
	}
	// With recording, the decision is recorded before it is applied, and
	// not applied when it cannot be (see approvals_ledger.go).
	ledger, ok := a.beginDecision(w, r, store, id, approve, approver, req.Comment)
	if !ok {
		return
	}
	dctx, dcancel := ledger.applyContext(r)
	defer dcancel()
	rec, err := store.Decide(dctx, id, approve, approver, req.Comment)
	if lerr := ledger.finish(dctx, err); lerr != nil {
		a.log.Error("pgwarden: admin API: the decision's ledger could not be completed (it records the decision asked for)",
			"request", id, "ledger", ledger.id, "err", lerr)
	}
	if err != nil {
		a.log.Warn("pgwarden: admin API: approval decision refused", "request", id, "approve", approve,
			"approver", approver.Subject, "approver_issuer", approver.Issuer, "remote", r.RemoteAddr, "err", err)
		a.approvalFail(w, "deciding the approval request", err)
		return
	}
	a.log.Warn("pgwarden: admin API: approval request decided", "request", id, "status", string(rec.Status),
		"approver", approver.Subject, "approver_issuer", approver.Issuer, "comment", req.Comment,
		"rule", rec.Request.Rule, "subject", rec.Request.Identity.Subject, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, rec)
}

// listGrants answers GET /grants: {"grants": [...]}, the active
// just-in-time grants, newest first.
func (a *adminAPI) listGrants(w http.ResponseWriter, r *http.Request) {
	store := a.approvalStore(w)
	if store == nil {
		return
	}
	gs, err := store.Grants(r.Context())
	if err != nil {
		a.approvalFail(w, "listing the grants", err)
		return
	}
	if gs == nil {
		gs = []approval.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": gs})
}

// approvalFail answers a store's error: the store's own errors (which
// name the request, its status, the approver and groups, never a secret)
// with their status code, anything else 500 or 503.
func (a *adminAPI) approvalFail(w http.ResponseWriter, doing string, err error) {
	switch {
	case errors.Is(err, approval.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, approval.ErrNotPending):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, approval.ErrSelfApproval), errors.Is(err, approval.ErrNotAnApprover):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, approval.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the approval store is closed (the gateway is stopping)")
	default:
		a.fail(w, doing, err)
	}
}
