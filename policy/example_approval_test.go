package policy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// An Approve verdict sends the statement to a person through the proxy's
// Approver; the rule's ApprovalSpec says how. Here deletes are deferred:
// the client learns the request's id at once, and once a DBA approved
// it, may run the same statement once within a day.
func ExampleApprovalSpec() {
	p := policy.Strictest(
		policy.Rule{Name: "deletes-need-approval", When: policy.IsKind(policy.KindDelete), Verdict: policy.Approve,
			Reason:   "Deletes are reviewed by a DBA.",
			Approval: &policy.ApprovalSpec{Mode: policy.Defer, Validity: 24 * time.Hour, Approvers: []string{"dba"}}},
		policy.Default("default", policy.Allow, ""),
	)
	d := policytest.New(exampleT, p).Decide("DELETE FROM orders WHERE id = 42")
	fmt.Println(d.Verdict, d.Rule)
	fmt.Printf("%+v\n", d.Approval.Effective())
	// Output:
	// approve deletes-need-approval
	// {Mode:defer Timeout:5m0s Validity:24h0m0s Uses:1 Approvers:[dba] Grant:0s AllowSelfApproval:false}
}

// ApproverFunc adapts a function to an Approver: here, a change-ticket
// system that approves deferred requests (see policy/approval for stores
// with an admin API). It keeps the contract: safe for concurrent use,
// bound to the request's Fingerprint, never approving by itself, and an
// error (which refuses the statement) when in doubt.
func ExampleApproverFunc() {
	var mu sync.Mutex
	tickets := map[string]string{} // ticket id → status, as the ticket system keeps them

	approver := policy.ApproverFunc(func(ctx context.Context, req *policy.ApprovalRequest) (policy.ApprovalDecision, error) {
		if req.Spec.Mode != policy.Defer {
			return policy.ApprovalDecision{}, errors.New("tickets: only deferred approvals are supported")
		}
		req.ID = "CHG-" + req.Fingerprint()[:8] // the same statement, parameters and identity: the same ticket
		mu.Lock()
		defer mu.Unlock()
		switch tickets[req.ID] {
		case "approved":
			tickets[req.ID] = "used" // once
			return policy.ApprovalDecision{Outcome: policy.Approved, ID: req.ID, Approver: "bob"}, nil
		case "":
			tickets[req.ID] = "open"
		}
		return policy.ApprovalDecision{Outcome: policy.Pending, ID: req.ID}, nil
	})

	// What the proxy asks when a rule answered Approve.
	ctx := context.Background()
	ask := func() policy.ApprovalDecision {
		req := &policy.ApprovalRequest{Database: "app", Rule: "deletes-need-approval", SQL: "DELETE FROM orders WHERE id = 42",
			Identity: session.Identity{Subject: "alice", Issuer: "https://idp.example.com"},
			Spec:     policy.ApprovalSpec{Mode: policy.Defer}}
		d, err := approver.Approve(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		return d
	}
	first := ask()
	fmt.Println(first.Outcome)
	tickets[first.ID] = "approved" // bob approves the ticket
	fmt.Println(ask().Outcome, ask().Outcome)
	// Output:
	// pending
	// approved pending
}
