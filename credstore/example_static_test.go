package credstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// The first entry that matches the identity gives the database role; an
// identity that matches none gets ErrNoCredential, and the proxy refuses
// its session (FATAL 28000). The password never prints.
func ExampleStatic() {
	store, err := credstore.NewStatic(
		credstore.StaticEntry{User: "app_ops", Password: session.NewSecret("s1"), Groups: []string{"ops"}},
		credstore.StaticEntry{User: "app_ro", Password: session.NewSecret("s2"), Groups: []string{"analysts"}},
		credstore.StaticEntry{User: "app_ci", Password: session.NewSecret("s3"), Subjects: []string{"ci-bot"}},
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []session.Identity{
		{Subject: "alice", Groups: []string{"analysts"}},
		{Subject: "ci-bot"},
		{Subject: "mallory", Groups: []string{"guests"}},
	} {
		cred, err := store.Credential(ctx, &session.Info{Identity: id, Database: "app"})
		switch {
		case errors.Is(err, credstore.ErrNoCredential):
			fmt.Printf("%s: no credential\n", id.Subject)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("%s: %s %v\n", id.Subject, cred.User, cred.Password)
		}
	}
	// Output:
	// alice: app_ro REDACTED
	// ci-bot: app_ci REDACTED
	// mallory: no credential
}
