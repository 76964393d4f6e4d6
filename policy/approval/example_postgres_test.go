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

// Gateways sharing a database share their requests: a statement held by
// one gateway is decided through the admin API of another, and the held
// statement hears of it at once (LISTEN/NOTIFY).
func ExampleOpenPostgres() {
	ctx := context.Background()
	dsn := exampleApprovalsDSN() // e.g. os.Getenv("PGWARDEN_APPROVALS_DSN")

	filed := make(chan approval.Record, 1)
	gatewayA, err := approval.OpenPostgres(ctx, dsn, approval.PostgresOptions{
		Options: approval.Options{Notify: func(r approval.Record) { // the webhook
			if r.Status == approval.StatusPending {
				filed <- r
			}
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer gatewayA.Close()
	gatewayB, err := approval.OpenPostgres(ctx, dsn, approval.PostgresOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer gatewayB.Close()

	// The proxy of gateway A asks: proxy.Proxy{Approver: gatewayA, ...}.
	var _ policy.Approver = gatewayA
	decided := make(chan policy.ApprovalDecision)
	go func() {
		req := &policy.ApprovalRequest{Database: "app", Rule: "ddl", SQL: "ALTER TABLE orders ADD COLUMN note text",
			Identity: session.Identity{Subject: "alice", Issuer: "https://idp.example.com"},
			Spec:     policy.ApprovalSpec{Mode: policy.Hold, Timeout: time.Minute, Approvers: []string{"dba"}}}
		d, err := gatewayA.Approve(ctx, req) // held until someone decides
		if err != nil {
			log.Fatal(err)
		}
		decided <- d
	}()
	<-filed

	// The admin API of gateway B lists what waits, and bob decides.
	pending, err := gatewayB.List(ctx, approval.StatusPending)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range pending {
		fmt.Println("waiting:", r.Request.Identity.Subject, r.Request.SQL)
	}
	alice := session.Identity{Subject: "alice", Issuer: "https://idp.example.com", Groups: []string{"dba"}}
	_, err = gatewayB.Decide(ctx, pending[0].Request.ID, true, alice, "")
	fmt.Println("alice approves her own request:", errors.Is(err, approval.ErrSelfApproval))
	bob := session.Identity{Subject: "bob", Issuer: "https://idp.example.com", Groups: []string{"dba"}}
	if _, err := gatewayB.Decide(ctx, pending[0].Request.ID, true, bob, "go ahead"); err != nil {
		log.Fatal(err)
	}

	d := <-decided
	fmt.Println(d.Outcome, "by", d.Approver+":", d.Comment)
	// Output:
	// waiting: alice ALTER TABLE orders ADD COLUMN note text
	// alice approves her own request: true
	// approved by bob: go ahead
}
