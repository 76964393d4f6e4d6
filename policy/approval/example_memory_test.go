package approval_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// A deferred approval: the gateway files the request and the client gets
// its id at once; once a person approved it, the same statement runs
// (once, by default).
func ExampleNewMemory() {
	store := approval.NewMemory(approval.Options{})
	defer store.Close()
	ctx := context.Background()
	alice := session.Identity{Subject: "alice", Issuer: "https://idp.example", Groups: []string{"dev"}}
	bob := session.Identity{Subject: "bob", Issuer: "https://idp.example", Groups: []string{"dba"}}
	ask := func() policy.ApprovalDecision {
		req := &policy.ApprovalRequest{Database: "app", Identity: alice, Rule: "deletes",
			SQL: "DELETE FROM orders WHERE id = 42", Spec: policy.ApprovalSpec{Mode: policy.Defer, Approvers: []string{"dba"}}}
		d, err := store.Approve(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		return d
	}

	// The gateway asks: pending, the client gets the id.
	d := ask()
	fmt.Println(d.Outcome)

	// Alice is no dba: she may not decide.
	_, err := store.Decide(ctx, d.ID, true, alice, "")
	fmt.Println(errors.Is(err, approval.ErrNotAnApprover))

	// Bob approves through the admin API.
	rec, err := store.Decide(ctx, d.ID, true, bob, "ok for order 42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Status, rec.UsesLeft)

	// The client runs the statement again: approved, once.
	again := ask()
	fmt.Println(again.Outcome, again.Approver, again.Comment, again.ID == d.ID)
	fmt.Println(ask().Outcome)
	// Output:
	// pending
	// true
	// approved 1
	// approved bob ok for order 42 true
	// pending
}

// A held statement waits for a person's decision; Options.Notify (the
// webhook) tells the approvers about it.
func ExampleMemory_Decide() {
	filed := make(chan approval.Record, 10)
	store := approval.NewMemory(approval.Options{Notify: func(r approval.Record) {
		if r.Status == approval.StatusPending {
			filed <- r
		}
	}})
	defer store.Close()
	ctx := context.Background()

	// An approver, told by the webhook, decides.
	go func() {
		r := <-filed
		bob := session.Identity{Subject: "bob", Issuer: "https://idp.example"}
		if _, err := store.Decide(ctx, r.Request.ID, true, bob, "go ahead"); err != nil {
			log.Print(err)
		}
	}()

	req := &policy.ApprovalRequest{Database: "app", Rule: "ddl", SQL: "ALTER TABLE orders ADD COLUMN note text",
		Identity: session.Identity{Subject: "alice", Issuer: "https://idp.example"},
		Spec:     policy.ApprovalSpec{Mode: policy.Hold, Timeout: time.Minute}}
	d, err := store.Approve(ctx, req) // held until bob decides
	if errors.Is(err, policy.ErrApprovalWithdrawn) {
		fmt.Println("nobody decided in time")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Outcome, "by", d.Approver+":", d.Comment)
	// Output:
	// approved by bob: go ahead
}
