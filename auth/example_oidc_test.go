package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// An OIDC authenticator for tokens an identity provider issues to this
// gateway. It contacts the provider on the first login, not here.
func ExampleNewOIDC() {
	a, err := auth.NewOIDC(auth.OIDCConfig{
		Issuer:   "https://login.example.com/realms/prod",
		Audience: "pgwarden",
		// Keycloak puts roles under realm_access.
		Claims:      auth.ClaimNames{Groups: "realm_access.roles"},
		ExpiryGrace: time.Minute,
		// Ask the provider every 5 minutes whether the token was revoked.
		Introspection: &auth.Introspection{
			ClientID:     "pgwarden",
			ClientSecret: session.NewSecret("from a secret store"),
			Interval:     5 * time.Minute,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = a // use it as the proxy's Authenticator, alone or in a Chain
}

// passwordClient is a client that sends a password in clear when asked.
type passwordClient struct{ password string }

func (c passwordClient) CleartextPassword(context.Context) (session.Secret, error) {
	return session.NewSecret(c.password), nil
}
func (passwordClient) SASLStart(context.Context, []string) (string, []byte, error) {
	return "", nil, errors.New("no SASL")
}
func (passwordClient) SASLContinue(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("no SASL")
}
func (passwordClient) SASLFinal(context.Context, []byte) error { return errors.New("no SASL") }
func (passwordClient) TLSServerEndPoint() []byte               { return nil }

// A gateway that accepts client certificates, a few static users, and
// tokens from an identity provider, tried in that order.
func ExampleChain() {
	certs, err := auth.NewClientCert(auth.ClientCertConfig{})
	if err != nil {
		log.Fatal(err)
	}
	static, err := auth.NewStatic(auth.User{Name: "admin", Password: session.NewSecret("dev only")})
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := auth.NewOIDC(auth.OIDCConfig{Issuer: "https://login.example.com", Audience: "pgwarden"})
	if err != nil {
		log.Fatal(err)
	}
	a := auth.Chain(
		certs,
		auth.When(func(r *auth.Request) bool { return static.Knows(r.User) }, static),
		tokens,
	)

	// A client without a certificate, not a static user, whose password is
	// not a token: no member applies (and the identity provider is not
	// contacted).
	_, err = a.Authenticate(context.Background(), &auth.Request{
		User: "mallory", Database: "app", Client: passwordClient{password: "hunter2"},
	})
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))
	// Output: true
}

// The identity of a client whose certificate the proxy's TLS layer
// verified: its SPIFFE ID, vouched for by its trust domain.
func ExampleNewClientCert() {
	a, err := auth.NewClientCert(auth.ClientCertConfig{
		TrustDomains: []string{"prod.example.com"},
		GroupsFromOU: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://prod.example.com/ns/billing/sa/api")
	leaf := &x509.Certificate{
		Subject:  pkix.Name{CommonName: "billing-api", OrganizationalUnit: []string{"billing"}},
		URIs:     []*url.URL{spiffe},
		NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	id, err := a.Authenticate(context.Background(), &auth.Request{
		User: "billing", Database: "app",
		TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Subject)
	fmt.Println(id.Issuer, id.Groups, id.Method, id.ExpiresAt.Format(time.DateOnly))
	// Output:
	// spiffe://prod.example.com/ns/billing/sa/api
	// spiffe://prod.example.com [billing] client-cert 2030-01-01
}
