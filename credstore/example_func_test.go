package credstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// Func adapts a function to a Store: here, one that fetches a role's
// password from a secret manager (vault stands in for its client), a
// role per database. It keeps the contract: ErrNoCredential when the
// identity gets none, and never the password in an error.
func ExampleFunc() {
	vault := map[string]string{"app/reporting": "s3cr3t-from-vault"}

	store := credstore.Func(func(ctx context.Context, info *session.Info) (credstore.Credential, error) {
		if !info.Identity.InGroup("analysts") {
			return credstore.Credential{}, credstore.ErrNoCredential
		}
		path := info.Database + "/reporting"
		password, ok := vault[path] // a call that honours ctx, in a real store
		if !ok {
			return credstore.Credential{}, fmt.Errorf("no secret at %s in the vault", path) // the client gets a generic FATAL 28000
		}
		return credstore.Credential{
			User:      "reporting",
			Password:  session.NewSecret(password),
			ExpiresAt: time.Now().Add(time.Hour), // the proxy ends the session then
			Release: func(ctx context.Context, reason session.EndReason) error {
				fmt.Println("released:", reason) // e.g. revoke a lease in the vault
				return nil
			},
		}, nil
	})

	ctx := context.Background()
	analyst := session.Identity{Subject: "alice", Groups: []string{"analysts"}}
	cred, err := store.Credential(ctx, &session.Info{Identity: analyst, Database: "app"})
	fmt.Println(cred.User, cred.Password, err)
	cred.Release(ctx, session.EndClientExit) // the proxy's call, once, when the session ends

	_, err = store.Credential(ctx, &session.Info{Identity: analyst, Database: "billing"})
	fmt.Println(err)
	_, err = store.Credential(ctx, &session.Info{Identity: session.Identity{Subject: "bob"}, Database: "app"})
	fmt.Println(errors.Is(err, credstore.ErrNoCredential))
	// Output:
	// reporting REDACTED <nil>
	// released: client-exit
	// no secret at billing/reporting in the vault
	// true
}
