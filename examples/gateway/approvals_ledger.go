package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// Decision ledgers. A held request's decision reaches the requester's
// session recording (the proxy records it there), but the approver's side
// of every decision, and the whole of a deferred request's denial, would
// only be in the approval store, the log and the webhook. So, when the
// gateway records (the recording section), every decision taken through
// the admin API is recorded as a ledger of its own: a short pseudo-session
// "approval-<request id>-<random>" whose identity is the APPROVER's:
//
//	session.start  Info{Identity: the approver (no claims), User: the
//	               approver's subject, Database: the request's, ClientAddr:
//	               the admin API caller, ApplicationName: "pgwarden approvals"}
//	approval       {Action: approved|denied, ID, Mode, Rule, Approver,
//	               Comment, Reason: decisionRequested}
//	[approval      {Action: failed, Reason: "not applied: ..."}: when the
//	               store refused the decision]
//	session.end    {Reason: client-exit}: sealed.
//
// Write-ahead, fail closed: the start and the approval event are recorded
// BEFORE Store.Decide, and when that fails the admin API answers 500 and
// does not decide. A decision that is not recorded is never applied;
// recording after a successful Decide could only log a failure of the
// recording, leaving an applied decision outside every recording, the very
// gap these ledgers close. The price is that the approval event records a
// decision asked for: when the store then refuses it (403: not an
// approver, self-approval; 409: decided meanwhile; 503), a failed event
// says so before the seal, and the request stays as it was. A request
// that is not pending (or unknown) is refused before anything is
// recorded: a request never becomes pending again, so nothing would be
// decided. Should the gateway stop between Decide and the seal, the
// ledger ends unsealed after the approval event (the file store seals it
// at recovery; `pgwarden verify` says so); the approval store has the
// outcome. With recording.fail: best_effort the recorder never fails, and
// a decision is applied even when its ledger could not be written (the
// log says so), as sessions go on unrecorded.

// decisionApplication is the ApplicationName of a decision ledger.
const decisionApplication = "pgwarden approvals"

// decisionRequested is the Reason of a ledger's approval event: it is
// recorded before the decision is applied.
const decisionRequested = "decision requested through the admin API; applied unless a failed event follows"

// decisionLedgerPrefix starts the session id of a decision ledger.
const decisionLedgerPrefix = "approval-"

// maxLedgerRequestID bounds the part of a ledger's id taken from the
// request id (the journal accepts ids of up to 128 characters).
const maxLedgerRequestID = 64

// decisionTimeout bounds applying a recorded decision and sealing its
// ledger, which go on when the caller goes away.
const decisionTimeout = 30 * time.Second

// decisionRecorder returns the recorder decision ledgers go to: the
// proxy's recorder when the gateway records; nil when it does not.
func (g *gateway) decisionRecorder() session.Recorder {
	if len(g.stores) == 0 || g.proxy == nil || g.proxy.Recorder == nil {
		return nil
	}
	return g.proxy.Recorder
}

// decisionLedgerID returns a new ledger id for a decision of request id:
// "approval-", the request id in the characters a journal accepts (a-z,
// 0-9, '_' and '-'; any other is '_'), at most 64 of them, then '-' and 12
// random hex digits (several attempts may decide the same request).
func decisionLedgerID(requestID string) string {
	var b strings.Builder
	b.WriteString(decisionLedgerPrefix)
	n := 0
	for _, c := range strings.ToLower(requestID) {
		if n == maxLedgerRequestID {
			break
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			c = '_'
		}
		b.WriteRune(c)
		n++
	}
	var r [6]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(r[:]))
	return b.String()
}

// decisionLedger is the open ledger of one decision.
type decisionLedger struct {
	rec session.Recorder
	id  string
	// ev is the recorded approval event; failed copies its request part.
	ev session.ApprovalEvent
}

// beginDecision, when the gateway records, opens the ledger of the
// decision approver is about to take on request id: it records the
// session's start and the decision (write-ahead). It returns nil and true
// when the gateway does not record. It returns false, having answered,
// when the request is unknown or not pending (nothing is recorded: there
// is nothing to decide) or when the ledger could not be recorded (500:
// the decision is not applied).
func (a *adminAPI) beginDecision(w http.ResponseWriter, r *http.Request, store approval.Store, id string, approve bool,
	approver session.Identity, comment string) (*decisionLedger, bool) {
	rec := a.g.decisionRecorder()
	if rec == nil {
		return nil, true
	}
	req, err := store.Get(r.Context(), id)
	if err != nil {
		a.approvalFail(w, "reading the approval request", err)
		return nil, false
	}
	if req.Status != approval.StatusPending {
		a.approvalFail(w, "deciding the approval request", fmt.Errorf("%w: request %s is %s", approval.ErrNotPending, id, req.Status))
		return nil, false
	}
	l := &decisionLedger{rec: rec, id: decisionLedgerID(id), ev: session.ApprovalEvent{
		Action: session.ApprovalDenied, ID: id, Mode: string(req.Request.Spec.Mode), Rule: req.Request.Rule,
		Approver: approver.Subject, Comment: comment, Reason: decisionRequested,
	}}
	if approve {
		l.ev.Action = session.ApprovalApproved
	}
	who := approver
	who.Claims = session.Claims{} // who decided and through which chain, not every claim of their token
	now := time.Now()
	info := session.Info{ID: l.id, Identity: who, ClientAddr: r.RemoteAddr, User: approver.Subject,
		Database: req.Request.Database, ApplicationName: decisionApplication, StartedAt: now}
	// Recorded whatever becomes of the caller's connection.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), decisionTimeout)
	defer cancel()
	err = rec.Record(ctx, session.Event{Kind: session.KindSessionStart, SessionID: l.id, Time: now, Start: &session.StartEvent{Info: info}})
	if err == nil {
		ev := l.ev
		err = rec.Record(ctx, session.Event{Kind: session.KindApproval, SessionID: l.id, Time: time.Now(), Approval: &ev})
		if err != nil {
			// Seal what there is, if the store still can: the ledger
			// then says the attempt was never decided. It stays unsealed
			// otherwise.
			_ = rec.Record(ctx, session.Event{Kind: session.KindSessionEnd, SessionID: l.id, Time: time.Now(),
				End: &session.EndEvent{Reason: session.EndRecorderFailed}})
		}
	}
	if err != nil {
		// The stores' errors name sessions and files, never a secret.
		a.log.Error("pgwarden: admin API: the decision could not be recorded, so it is not applied", "request", id,
			"approve", approve, "approver", approver.Subject, "ledger", l.id, "err", err)
		writeError(w, http.StatusInternalServerError, "the decision could not be recorded, so it was not applied; see the gateway's log")
		return nil, false
	}
	return l, true
}

// applyContext returns the context to apply a recorded decision with: it
// outlives the caller's request, bounded by decisionTimeout.
func (l *decisionLedger) applyContext(r *http.Request) (context.Context, context.CancelFunc) {
	if l == nil {
		return r.Context(), func() {}
	}
	return context.WithTimeout(context.WithoutCancel(r.Context()), decisionTimeout)
}

// finish records what became of the decision (a failed event when the
// store refused it, with decideErr) and seals the ledger. A nil ledger
// does nothing. Its error is only for the log: the decision stands (or
// was refused) either way, and the ledger already says it was asked for.
func (l *decisionLedger) finish(ctx context.Context, decideErr error) error {
	if l == nil {
		return nil
	}
	var errs []error
	if decideErr != nil {
		reason := "not applied: " + decideErr.Error()
		if !errors.Is(decideErr, approval.ErrNotFound) && !errors.Is(decideErr, approval.ErrNotPending) &&
			!errors.Is(decideErr, approval.ErrSelfApproval) && !errors.Is(decideErr, approval.ErrNotAnApprover) &&
			!errors.Is(decideErr, approval.ErrClosed) {
			// The store failed: whether it applied the decision is only
			// known to it.
			reason = "the approval store failed (see GET /approvals/" + l.ev.ID + "): " + decideErr.Error()
		}
		ev := session.ApprovalEvent{Action: session.ApprovalFailed, ID: l.ev.ID, Mode: l.ev.Mode, Rule: l.ev.Rule,
			Approver: l.ev.Approver, Reason: reason}
		if err := l.rec.Record(ctx, session.Event{Kind: session.KindApproval, SessionID: l.id, Time: time.Now(), Approval: &ev}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.rec.Record(ctx, session.Event{Kind: session.KindSessionEnd, SessionID: l.id, Time: time.Now(),
		End: &session.EndEvent{Reason: session.EndClientExit}}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// approvalLine describes an approval event in a timeline: "approval
// approved: request ID (rule R, defer) by bob: comment; reason".
func approvalLine(e *session.ApprovalEvent) string {
	line := "approval " + orDash(string(e.Action))
	if e.ID != "" {
		line += ": request " + e.ID
	}
	var about []string
	if e.Rule != "" {
		about = append(about, "rule "+e.Rule)
	}
	if e.Mode != "" {
		about = append(about, e.Mode)
	}
	if e.Grant {
		about = append(about, "by a grant")
	}
	if len(about) > 0 {
		line += " (" + strings.Join(about, ", ") + ")"
	}
	if e.Approver != "" {
		line += " by " + e.Approver
	}
	if e.Comment != "" {
		line += ": " + e.Comment
	}
	if e.Reason != "" {
		line += "; " + e.Reason
	}
	return printable(line)
}
