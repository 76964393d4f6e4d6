package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// An OIDC authenticator accepts the tokens an identity provider issues
// for the gateway, sent as the password (over TLS) or with SASL
// OAUTHBEARER. A token obtained by RFC 8693 token exchange, for a person
// by an agent acting for them, carries the delegation chain: it becomes
// the identity's Chain.
func ExampleNewOIDC() {
	idp := startExampleIdP() // your identity provider; here one on loopback
	defer idp.Close()

	a, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer(), Audience: "pgwarden"})
	if err != nil {
		log.Fatal(err)
	}

	// alice's own token; the one a CI job obtained for her by token
	// exchange; and the one an agent the job started obtained in turn.
	ctx := context.Background()
	tokens, err := idp.Chain(ctx, "alice", "ci-job", "agent")
	if err != nil {
		log.Fatal(err)
	}
	for _, token := range tokens {
		id, err := a.Authenticate(ctx, &auth.Request{User: "token", Database: "app", Client: passwordClient{token}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %v (%s), presented by %s at depth %d\n",
			id.Subject, id.Groups, id.Method, id.Presenter().Subject, id.Depth())
	}

	// A password that is not a token is not OIDC's to judge: in a Chain,
	// the next authenticator gets the client.
	_, err = a.Authenticate(ctx, &auth.Request{User: "alice", Database: "app", Client: passwordClient{"hunter2"}})
	fmt.Println(errors.Is(err, auth.ErrNotApplicable))
	// Output:
	// alice [analysts] (oidc), presented by alice at depth 0
	// alice [analysts] (oidc), presented by ci-job at depth 1
	// alice [analysts] (oidc), presented by agent at depth 2
	// true
}

// A configuration for an identity provider that puts roles under a
// nested claim (Keycloak's realm_access.roles). NewOIDC checks it without
// contacting the provider: the first login does.
func ExampleOIDCConfig() {
	cfg := auth.OIDCConfig{
		Issuer:      "https://login.example.com/realms/prod",
		Audience:    "pgwarden",
		Claims:      auth.ClaimNames{Groups: "realm_access.roles"},
		ExpiryGrace: time.Minute, // sessions may outlive their token by a minute
		// Ask the provider every 5 minutes whether the token was revoked.
		Introspection: &auth.Introspection{
			ClientID:     "pgwarden",
			ClientSecret: session.NewSecret("from a secret store"),
			Interval:     5 * time.Minute,
		},
	}
	if _, err := auth.NewOIDC(cfg); err != nil {
		log.Fatal(err)
	}

	// Symmetric algorithms are refused: a verifier that accepts HS256 can
	// be fooled with a token "signed" with the provider's public key.
	cfg.Algorithms = []string{"HS256"}
	_, err := auth.NewOIDC(cfg)
	fmt.Println(err)
	// Output:
	// auth: OIDC algorithm "HS256" is refused: HMAC tokens can be forged by anyone who knows the IdP's public key
}

// With Introspection, the token is checked with the identity provider at
// login, and the authenticator asks the proxy (Request.RecheckEvery) to
// check it again every Interval while the session lives: once the
// provider revokes the token, the check fails and the proxy ends the
// session.
func ExampleIntrospection() {
	idp := startExampleIdP()
	defer idp.Close()
	a, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer(), Audience: "pgwarden",
		Introspection: &auth.Introspection{
			ClientID:     "pgwarden",
			ClientSecret: session.NewSecret("pgwarden-introspection-secret"),
			Interval:     time.Minute,
		}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	token, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	req := &auth.Request{User: "token", Database: "app", Client: passwordClient{token}}
	id, err := a.Authenticate(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Subject, "logged in")

	// What the proxy runs every minute during the session.
	recheck := req.Rechecks()[0]
	fmt.Println(recheck.Interval, recheck.Check(ctx))

	idp.Revoke(token) // an administrator revokes the token
	err = recheck.Check(ctx)
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials)) // the proxy ends the session
	// Output:
	// alice logged in
	// 1m0s <nil>
	// true
}
