package main

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// authOnly is minimal with its auth section replaced.
func authOnly(authSection string) string {
	return strings.Replace(minimal, "auth:\n  users:\n    - {name: alice, password: alice-secret, groups: [analysts]}\n", authSection, 1)
}

func TestAuthSectionsLoad(t *testing.T) {
	text := "tls: {cert: server.crt, key: server.key}\n" + authOnly(`auth:
  users:
    - {name: alice, password: alice-secret, groups: [analysts]}
  oidc:
    issuer: https://idp.example.com
    audience: pgwarden
    algorithms: [ES256]
    clock_skew: 1m
    expiry_grace: 30s
    oauth_bearer: always
    claims: {groups: realm_access.roles}
    introspection: {client_id: gw, client_secret: s3cret, interval: 10s}
  client_certs:
    ca: ca.crt
    subject: spiffe
    trust_domains: [example.org]
`)
	p, err := buildFrom(t, text)
	if err != nil {
		t.Fatal(err)
	}
	if p.TLS == nil || p.TLS.ClientAuth != tls.VerifyClientCertIfGiven || p.TLS.ClientCAs == nil {
		t.Fatalf("client certificates are not asked for and verified: %+v", p.TLS)
	}
	// The chain's first member is the client certificate: a client without
	// one, not a static user, and with no password to give fails cleanly.
	_, err = p.Authenticator.Authenticate(context.Background(), &auth.Request{User: "nobody", Client: noPassword{}})
	if !errors.Is(err, errNoPassword) {
		t.Fatalf("authenticating a client without certificate or password: %v; want the OIDC member to ask for the token", err)
	}
}

// noPassword is a client that has nothing to give.
type noPassword struct{ auth.Conversation }

var errNoPassword = errors.New("no password")

func (noPassword) CleartextPassword(context.Context) (s session.Secret, err error) {
	return s, errNoPassword
}

func (noPassword) SASLStart(context.Context, []string) (string, []byte, error) {
	return "", nil, errNoPassword
}

func TestAuthSectionErrors(t *testing.T) {
	tests := []struct{ name, auth, want string }{
		{"http issuer off loopback", "auth:\n  oidc: {issuer: http://idp.example.com, audience: gw}\n",
			"auth.oidc.issuer: must be https"},
		{"no audience", "auth:\n  oidc: {issuer: https://idp.example.com}\n", "auth.oidc.audience: is required"},
		{"hmac algorithm", "auth:\n  oidc: {issuer: https://idp.example.com, audience: gw, algorithms: [HS256]}\n",
			"auth.oidc.algorithms[0]: is not accepted"},
		{"alg none", "auth:\n  oidc: {issuer: https://idp.example.com, audience: gw, algorithms: [none]}\n",
			"auth.oidc.algorithms[0]: is not accepted"},
		{"skew too large", "auth:\n  oidc: {issuer: https://idp.example.com, audience: gw, clock_skew: 1h}\n",
			"auth.oidc.clock_skew: must be between"},
		{"oauth_bearer", "auth:\n  oidc: {issuer: https://idp.example.com, audience: gw, oauth_bearer: sometimes}\n",
			"auth.oidc.oauth_bearer: must be auto, always or never"},
		{"introspection without client", "auth:\n  oidc: {issuer: https://idp.example.com, audience: gw, introspection: {interval: 1m}}\n",
			"auth.oidc.introspection.client_id: is required"},
		{"client certs without tls", "auth:\n  client_certs: {ca: ca.crt}\n",
			"auth.client_certs: needs the tls section"},
		{"client certs subject", "tls: {cert: a, key: b}\nauth:\n  client_certs: {ca: ca.crt, subject: email}\n",
			"auth.client_certs.subject: must be spiffe or cn"},
		{"saml without metadata", "auth:\n  saml: {audience: https://gw.example.com}\n",
			"auth.saml.idp_metadata: is required"},
		{"saml without audience", "auth:\n  saml: {idp_metadata: idp.xml}\n", "auth.saml.audience: is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantLoadError(t, authOnly(tc.auth), tc.want) })
	}
}

func TestOIDCSecretsStayOutOfErrors(t *testing.T) {
	_, err := loadConfig(writeFile(t, authOnly("auth:\n  oidc: {issuer: http://idp.example.com, audience: gw, introspection: {client_id: gw, client_secret: hunter2-secret, interval: -1s}}\n")))
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("err = %v; want an error that does not show the secret", err)
	}
}
