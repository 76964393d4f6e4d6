package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// holding is the approval a session's frontend relay waits for, so that
// the client's cancel request can withdraw it.
type holding struct {
	mu       sync.Mutex
	cancel   context.CancelFunc
	canceled bool // by the client
}

// withdraw cancels the held approval, if any, as the client asked.
func (h *holding) withdraw() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cancel == nil {
		return false
	}
	h.canceled = true
	h.cancel()
	return true
}

// approval asks the Proxy's Approver about a statement a policy sent for
// approval (decision d), and returns the decision to act on: Allow when a
// person (or a grant a person gave, or an earlier deferred approval)
// approved it, Block otherwise, with the reason the client reads. code is
// the SQLSTATE of a refusal (42501, or 57014 when the client canceled).
// params are a Bind's parameters.
func (s *clientSession) approval(st *statement, d policy.Decision, params []*string) (out policy.Decision, code string) {
	code = session.CodeInsufficientPrivilege
	spec := policy.ApprovalSpec{}
	if d.Approval != nil {
		spec = *d.Approval
	}
	spec = spec.Effective()
	refuse := func(reason string) policy.Decision {
		return policy.Decision{Verdict: policy.Block, Rule: d.Rule, Reason: reason}
	}
	if s.p.Approver == nil {
		s.recordApproval(st, session.ApprovalEvent{Action: session.ApprovalFailed, Mode: string(spec.Mode), Rule: d.Rule,
			Reason: "no approver"})
		return refuse("This statement needs a person's approval, and this gateway has no approver configured."), code
	}
	who := s.info.Identity
	who.Claims = session.Claims{} // the approver needs who and through which chain, not every claim of the token
	req := &policy.ApprovalRequest{Session: s.info.ID, Database: s.info.Database, Identity: who,
		Rule: d.Rule, Reason: d.Reason, SQL: st.shownSQL(), Params: params, Spec: spec, Created: time.Now()}
	if st.protocol == session.ProtocolFunctionCall {
		req.SQL = fmt.Sprintf("-- fast-path call of the function with OID %d", st.fnOID)
	}
	if !s.recordApproval(st, session.ApprovalEvent{Action: session.ApprovalRequested, Mode: string(spec.Mode), Rule: d.Rule}) {
		return refuse("The gateway could not record the approval request."), code
	}
	ctx, cancel := context.WithCancel(s.ctx)
	if spec.Mode == policy.Hold {
		ctx, cancel = context.WithTimeout(s.ctx, spec.Timeout)
	}
	s.hold.mu.Lock()
	s.hold.cancel, s.hold.canceled = cancel, false
	s.hold.mu.Unlock()
	s.telApprovalPending(1) // telemetry
	s.blocking()
	dec, err := approve(ctx, s.p.Approver, req)
	s.telApprovalPending(-1) // telemetry
	s.hold.mu.Lock()
	canceled := s.hold.canceled
	s.hold.cancel, s.hold.canceled = nil, false
	s.hold.mu.Unlock()
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	ev := session.ApprovalEvent{ID: req.ID, Mode: string(spec.Mode), Rule: d.Rule, Approver: dec.Approver, Comment: dec.Comment, Grant: dec.Grant}
	switch {
	case err != nil && errors.Is(err, policy.ErrApprovalWithdrawn) || err != nil && ctx.Err() != nil:
		ev.Action = session.ApprovalWithdrawn
		switch {
		case canceled:
			ev.Reason, code = "canceled by the client", session.CodeQueryCanceled
			out = refuse("The client canceled the statement while it waited for approval; the approval request is withdrawn.")
		case timedOut:
			ev.Reason = "timed out"
			out = refuse(fmt.Sprintf("Nobody approved this statement within %v; the approval request is withdrawn.", spec.Timeout))
		default:
			ev.Reason = "session ended"
			out = refuse("The session ended while the statement waited for approval.")
		}
	case err != nil:
		s.log.Error("pgwarden: the approver failed; statement refused", "err", err, "seq", st.seq)
		ev.Action, ev.Reason = session.ApprovalFailed, "approver error"
		out = refuse("The approver failed, so the statement is refused.")
	case dec.Outcome == policy.Approved:
		ev.Action, ev.ID = session.ApprovalApproved, dec.ID
		reason := fmt.Sprintf("Approved (request %s) by %s", dec.ID, dec.Approver)
		if dec.Grant {
			reason = fmt.Sprintf("Allowed by a grant (request %s) until %s", dec.ID, dec.GrantUntil.UTC().Format(time.RFC3339))
		}
		if dec.Comment != "" {
			reason += ": " + dec.Comment
		}
		out = policy.Decision{Verdict: policy.Allow, Rule: d.Rule, Reason: reason}
	case dec.Outcome == policy.Denied:
		ev.Action, ev.ID = session.ApprovalDenied, dec.ID
		reason := fmt.Sprintf("Denied (request %s) by %s.", dec.ID, dec.Approver)
		if dec.Comment != "" {
			reason = fmt.Sprintf("Denied (request %s) by %s: %s", dec.ID, dec.Approver, dec.Comment)
		}
		out = refuse(reason)
	case dec.Outcome == policy.Pending && spec.Mode == policy.Defer:
		ev.Action, ev.ID = session.ApprovalPending, dec.ID
		out = refuse(fmt.Sprintf("This statement needs a person's approval: request %s is pending. Once an approver approved it (pgwarden approve %s), run exactly the same statement, with the same parameters, again.", dec.ID, dec.ID))
	default:
		s.log.Error("pgwarden: the approver answered nonsense; statement refused", "outcome", dec.Outcome, "seq", st.seq)
		ev.Action, ev.Reason = session.ApprovalFailed, "invalid outcome "+string(dec.Outcome)
		out = refuse("The approver gave no decision, so the statement is refused.")
	}
	if !s.recordApproval(st, ev) && out.Verdict == policy.Allow {
		out = refuse("The gateway could not record the approval.")
	}
	return out, code
}

// recordApproval records an approval event about st; false when the
// recorder failed (and the session is ending).
func (s *clientSession) recordApproval(st *statement, ev session.ApprovalEvent) bool {
	s.log.Info("pgwarden: approval", "action", string(ev.Action), "id", ev.ID, "rule", ev.Rule, "approver", ev.Approver)
	if !s.recording {
		return true
	}
	return s.record(session.Event{Kind: session.KindApproval, SessionID: s.info.ID, Time: time.Now(), Approval: &ev})
}

// approvedNames applies the names a statement sent for approval changes
// (search_path, prepared statements, ...), once it was approved.
func (s *clientSession) approvedNames(st *statement) {
	if st.approvalNames != nil {
		s.names = *st.approvalNames
		st.approvalNames = nil
	}
}

// recordedParams renders Bind parameters as the recording shows them.
func recordedParams(params []wire.BindParam) []*string {
	out := make([]*string, len(params))
	for i, p := range params {
		if p.Value == nil {
			continue
		}
		v := string(p.Value)
		if p.Binary || !utf8.Valid(p.Value) {
			v = `\x` + hex.EncodeToString(p.Value)
		}
		out[i] = &v
	}
	return out
}
