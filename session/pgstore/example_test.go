package pgstore_test

import (
	"context"
	"log"
	"os"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// Open a store on the audit database (not the database the gateway
// protects), record with it, and verify a session. The DSN and the
// recording key come from the environment here; keep them out of
// configuration files.
func ExampleOpen() {
	ctx := context.Background()
	dsn := session.NewSecret(os.Getenv("PGWARDEN_AUDIT_DSN")) // e.g. "host=audit.internal dbname=audit user=pgwarden_recorder"
	key := session.NewSecret(os.Getenv("PGWARDEN_RECORDING_KEY"))
	store, err := pgstore.Open(ctx, dsn, key, pgstore.Options{
		// Wait for the commit of every event but results.
		Durable: func(k session.EventKind) bool { return k != session.KindResult },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The proxy records with it: proxy.Proxy{Recorder: store, ...}.
	var _ session.Recorder = store

	// Reviewers search and verify.
	sums, err := store.Sessions(ctx, session.Filter{Subject: "alice@example.com", Verdict: "block"})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sums {
		if err := store.Verify(ctx, s.ID); err != nil && !session.IsNotSealed(err) {
			log.Printf("session %s was tampered with: %v", s.ID, err)
		}
	}
}
