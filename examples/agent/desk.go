package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// approvalOutcome is what became of one approval request.
type approvalOutcome struct {
	ID          string
	SQL         string
	Params      []string
	Chain       []string // the requester's delegation chain, person first
	Rule        string
	SelfRefusal string // the error the parent got when it tried to approve the request itself
	Approved    bool
	Comment     string
}

// desk is the parent's approval desk: it hears of each request the
// gateway holds (the store's Notify), shows it, and has it decided. The
// parent first tries to approve its child's request itself, which the
// store refuses (an agent of the requester's chain), and then bob, an
// approver outside the chain, decides.
type desk struct {
	store    *approval.Memory
	pending  chan approval.Record
	parent   session.Identity // alice via parent-agent
	approver session.Identity // bob
	n        *narrator
}

func newDesk(n *narrator) *desk {
	return &desk{pending: make(chan approval.Record, 8), n: n}
}

// notify is the approval store's Notify: it hands pending requests to the
// desk. It never blocks the store; a request the desk cannot take waits
// until its timeout and is refused.
func (d *desk) notify(r approval.Record) {
	if r.Status != approval.StatusPending {
		return
	}
	select {
	case d.pending <- r:
	default:
	}
}

// run decides requests until ctx ends, and returns what it decided.
func (d *desk) run(ctx context.Context) []approvalOutcome {
	var out []approvalOutcome
	for {
		select {
		case <-ctx.Done():
			return out
		case r := <-d.pending:
			out = append(out, d.decide(ctx, r.Request))
		}
	}
}

// decide shows a request, lets the parent try to approve it, and records
// bob's decision.
func (d *desk) decide(ctx context.Context, req policy.ApprovalRequest) approvalOutcome {
	o := approvalOutcome{ID: req.ID, SQL: req.SQL, Params: paramTexts(req.Params), Chain: chainOf(req.Identity), Rule: req.Rule}
	d.n.Say("approval desk: request %s is waiting", req.ID)
	d.n.Say("  who:   %s", arrows(o.Chain))
	d.n.Say("  what:  %s  [%s]", req.SQL, strings.Join(o.Params, ", "))
	d.n.Say("  why:   rule %s: %s", req.Rule, req.Reason)
	if _, err := d.store.Decide(ctx, req.ID, true, d.parent, "my child needs this"); err != nil {
		o.SelfRefusal = err.Error()
		d.n.Say("  %s (acting for alice, an approver) approves it itself: refused:\n    %v", parentAgent, err)
	} else {
		d.n.Say("  %s approved its own child's request: the store should have refused", parentAgent)
		return o
	}
	approve, comment := bobsCall(req)
	rec, err := d.store.Decide(ctx, req.ID, approve, d.approver, comment)
	if err != nil {
		d.n.Say("  bob's decision failed: %v", err)
		return o
	}
	o.Approved, o.Comment = rec.Status == approval.StatusApproved, rec.Comment
	d.n.Say("  %s (%s) decides: %s, %q", rec.Approver, approverGroup, rec.Status, rec.Comment)
	return o
}

// bobsCall is the person's judgement, scripted so that every run tells
// the same story: a change of an order's status is fine; a new order (a
// refund, here) goes through billing.
func bobsCall(req policy.ApprovalRequest) (approve bool, comment string) {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(req.SQL)), "UPDATE") {
		return true, "Status change: fine."
	}
	return false, "Refunds go through billing, not through an agent."
}

// paramTexts renders bind parameters as the request shows them.
func paramTexts(ps []*string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = "NULL"
		if p != nil {
			out[i] = *p
		}
	}
	return out
}

// setUp gives the desk the approval store and the identities it decides
// as: the parent's (verified from its token) and bob's, who signs in at
// the identity provider and whose token the gateway's authenticator
// verifies, as an admin API would.
func (d *desk) setUp(ctx context.Context, store *approval.Memory, verifier *auth.OIDC, idp *devidp.Provider, parent session.Identity) error {
	tok, err := approverToken(ctx, idp)
	if err != nil {
		return err
	}
	if d.approver, err = verifier.Verify(ctx, tok); err != nil {
		return fmt.Errorf("verifying bob's token: %w", err)
	}
	d.store, d.parent = store, parent
	return nil
}
