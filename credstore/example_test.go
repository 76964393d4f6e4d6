package credstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// The first entry that matches the identity gives the database role.
func ExampleStatic() {
	store, err := credstore.NewStatic(
		credstore.StaticEntry{User: "app_ops", Password: session.NewSecret("s1"), Groups: []string{"ops"}},
		credstore.StaticEntry{User: "app_ro", Password: session.NewSecret("s2"), Groups: []string{"analysts"}},
	)
	if err != nil {
		log.Fatal(err)
	}
	info := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}}
	cred, err := store.Credential(context.Background(), info)
	fmt.Println(cred.User, cred.Password, err)
	// Output: app_ro REDACTED <nil>
}
