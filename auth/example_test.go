package auth_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// Static users: a verifier keeps the password out of configuration; a
// password is turned into one when the authenticator is built.
func ExampleNewStatic() {
	verifier, err := auth.Verifier(session.NewSecret("bob's password"))
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.NewStatic(
		auth.User{Name: "alice", Password: session.NewSecret("alice's password"), Groups: []string{"analysts"}},
		auth.User{Name: "bob", Verifier: verifier, Groups: []string{"ops"}},
	)
	fmt.Println(a != nil, err)
	// Output: true <nil>
}

// Verifier produces what pgwarden's configuration and PostgreSQL's
// pg_authid store: a salted SCRAM-SHA-256 verifier, not the password.
func ExampleVerifier() {
	v, err := auth.Verifier(session.NewSecret("correct horse battery staple"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(v, "SCRAM-SHA-256$4096:"))
	// Output: true
}
