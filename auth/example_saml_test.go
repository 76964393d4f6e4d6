package auth_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pgwarden/pgwarden/auth"
)

// A SAML authenticator accepts a signed SAML 2.0 assertion (or the
// Response carrying it), base64-encoded, as the password: what the
// identity provider posts after a login, which a small tool hands to
// psql as PGPASSWORD.
func ExampleNewSAML() {
	idp := newExampleSAMLIdP() // your identity provider
	a, err := auth.NewSAML(auth.SAMLConfig{
		IdPMetadata: idp.Metadata(), // as its administrators publish it
		Audience:    "https://gateway.example.com/saml",
		Recipient:   "https://gateway.example.com/saml/acs",
	})
	if err != nil {
		log.Fatal(err)
	}

	password := idp.Login("alice@example.com", "analysts", "ops")
	id, err := a.Authenticate(context.Background(), &auth.Request{User: "alice", Database: "app",
		Client: passwordClient{password}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Subject, id.Groups, id.Method)
	fmt.Println(id.Issuer)
	// Output:
	// alice@example.com [analysts ops] saml
	// https://idp.example.com/saml/metadata
}
