package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// Open a store on the audit database (not the database the gateway
// protects), record with it, and search and verify what it recorded.
// Keep the DSN and the recording key out of configuration files.
func ExampleOpen() {
	ctx := context.Background()
	// In a gateway: session.NewSecret(os.Getenv("PGWARDEN_AUDIT_DSN")), and
	// the key from PGWARDEN_RECORDING_KEY or a secret store.
	dsn := exampleAuditDSN()
	key := session.NewSecret("a long random recording key")
	store, err := pgstore.Open(ctx, dsn, key, pgstore.Options{
		// Wait for the commit of every event but results.
		Durable: func(k session.EventKind) bool { return k != session.KindResult },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The proxy records with it: proxy.Proxy{Recorder: store, ...}.
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	alice := session.Identity{Subject: "alice@example.com", Issuer: "https://idp.example.com",
		Chain: []session.Actor{{Subject: "report-agent"}}}
	for _, ev := range []session.Event{
		{Kind: session.KindSessionStart, SessionID: "5f1c2a", Time: at, Start: &session.StartEvent{Info: session.Info{
			ID: "5f1c2a", Identity: alice, User: "alice", Database: "shop", StartedAt: at}}},
		{Kind: session.KindStatement, SessionID: "5f1c2a", Time: at, Statement: &session.StatementEvent{
			Seq: 1, Protocol: session.ProtocolSimple, SQL: "DELETE FROM orders", Verdict: "block", Rule: "read-only",
			Tables: []string{"orders"}}},
		{Kind: session.KindSessionEnd, SessionID: "5f1c2a", Time: at.Add(time.Second), End: &session.EndEvent{
			Reason: session.EndClientExit, Statements: 1}},
	} {
		if err := store.Record(ctx, ev); err != nil { // committed before it returns (Durable)
			log.Fatal(err)
		}
	}

	// Reviewers search (here: the sessions an agent took part in, with a
	// refused statement) and verify.
	sums, err := store.Sessions(ctx, session.Filter{Subject: "report-agent", Verdict: "block"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sums {
		fmt.Println(s.ID, s.Identity.Subject, s.Statements, s.Refused, s.EndReason)
		fmt.Println("verify:", store.Verify(ctx, s.ID))
	}
	// Output:
	// 5f1c2a alice@example.com 1 1 client-exit
	// verify: <nil>
}
