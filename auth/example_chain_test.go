package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// A gateway that accepts client certificates, a few static users, and
// tokens from an identity provider, tried in that order: each member
// that does not apply to the client passes it on.
func ExampleChain() {
	idp := startExampleIdP()
	defer idp.Close()

	certs, err := auth.NewClientCert(auth.ClientCertConfig{})
	if err != nil {
		log.Fatal(err)
	}
	static, err := auth.NewStatic(auth.User{Name: "admin", Password: session.NewSecret("dev only"), Groups: []string{"ops"}})
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer(), Audience: "pgwarden"})
	if err != nil {
		log.Fatal(err)
	}
	a := auth.Chain(
		certs,
		auth.When(func(r *auth.Request) bool { return static.Knows(r.User) }, static),
		tokens,
	)

	ctx := context.Background()
	login := func(user string, client auth.Conversation) {
		id, err := a.Authenticate(ctx, &auth.Request{User: user, Database: "app", Client: client})
		switch {
		case errors.Is(err, auth.ErrInvalidCredentials):
			fmt.Printf("%s: refused\n", user)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("%s: %s (%s)\n", user, id.Subject, id.Method)
		}
	}
	// No certificate; a static user: SCRAM-SHA-256.
	login("admin", &scramPasswordClient{password: "dev only"})
	// No certificate, not a static user, and a token as the password.
	token, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	login("alice", passwordClient{token})
	// A password that is not a token: no member applies (and the identity
	// provider is not asked).
	login("mallory", passwordClient{"hunter2"})
	// Output:
	// admin: admin (scram-sha-256)
	// alice: alice (oidc)
	// mallory: refused
}

// When puts an authenticator in a Chain for some clients only; to the
// others it answers ErrNotApplicable without a word to the client. Here,
// static users for development, from loopback only.
func ExampleWhen() {
	static, err := auth.NewStatic(auth.User{Name: "admin", Password: session.NewSecret("dev only")})
	if err != nil {
		log.Fatal(err)
	}
	fromLoopback := func(r *auth.Request) bool {
		host, _, err := net.SplitHostPort(r.ClientAddr)
		return err == nil && net.ParseIP(host).IsLoopback()
	}
	a := auth.When(fromLoopback, static)

	ctx := context.Background()
	_, err = a.Authenticate(ctx, &auth.Request{User: "admin", Database: "app", ClientAddr: "203.0.113.7:50123",
		Client: &scramPasswordClient{password: "dev only"}})
	fmt.Println(errors.Is(err, auth.ErrNotApplicable))
	id, err := a.Authenticate(ctx, &auth.Request{User: "admin", Database: "app", ClientAddr: "127.0.0.1:50124",
		Client: &scramPasswordClient{password: "dev only"}})
	fmt.Println(id.Subject, err)
	// Output:
	// true
	// admin <nil>
}
