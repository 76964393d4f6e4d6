package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// Static users log in with SCRAM-SHA-256, as with PostgreSQL itself: the
// client proves it knows the password without sending it. A verifier
// keeps the password out of configuration; a password is turned into one
// when the authenticator is built.
func ExampleNewStatic() {
	verifier, err := auth.Verifier(session.NewSecret("bob's password"))
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.NewStatic(
		auth.User{Name: "alice", Password: session.NewSecret("alice's password"), Groups: []string{"analysts"}},
		auth.User{Name: "bob", Verifier: verifier, Groups: []string{"ops"}},
	)
	if err != nil {
		log.Fatal(err)
	}

	// The proxy fills the Request; its Client runs the exchange with the
	// connecting client (here, one that knows bob's password).
	ctx := context.Background()
	id, err := a.Authenticate(ctx, &auth.Request{User: "bob", Database: "app",
		Client: &scramPasswordClient{password: "bob's password"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Subject, id.Issuer, id.Groups, id.Method)

	// A wrong password and an unknown user get the same answer (FATAL
	// 28P01 from the proxy): users cannot be enumerated.
	_, err = a.Authenticate(ctx, &auth.Request{User: "bob", Database: "app", Client: &scramPasswordClient{password: "guess"}})
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))
	_, err = a.Authenticate(ctx, &auth.Request{User: "mallory", Database: "app", Client: &scramPasswordClient{password: "guess"}})
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))
	// Output:
	// bob static [ops] scram-sha-256
	// true
	// true
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
