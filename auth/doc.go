// Package auth decides who a connecting client is: an Authenticator turns
// the client's startup packet and the exchange it runs with the client into
// a session.Identity, delegation chain included.
//
// The proxy does not choose the exchange: the Authenticator does, through
// the Conversation in the Request. The built-in authenticators:
//
//   - OIDC verifies an OAuth 2.0 access token or OpenID Connect ID token
//     (a signed JWT) that the client sends as its password (over TLS) or
//     with SASL OAUTHBEARER (RFC 7628, PostgreSQL 18's "oauth" method), and
//     reads the RFC 8693 delegation chain from its "act" claims. With
//     Introspection, the token is checked with the IdP at login and
//     periodically (Request.RecheckEvery).
//   - SAML verifies a signed SAML 2.0 Response or assertion, base64 in the
//     password, against the IdP's metadata.
//   - ClientCert maps a client certificate the proxy's TLS configuration
//     verified to its SPIFFE ID or common name.
//   - Static runs SCRAM-SHA-256 (with channel binding over TLS) for users
//     from configuration: for development.
//
// Chain combines them, trying each by what the client offers; When guards
// a member with a condition (static users by name).
//
// # Implementing an Authenticator
//
//   - Concurrency: Authenticate is called from many connections at once.
//   - Context: ctx ends when the proxy's authentication timeout passes or
//     the proxy shuts down; return promptly when it does.
//   - Ownership: the Request and its Conversation are only valid during the
//     call. The Identity returned is kept by the proxy and must not be
//     modified afterwards. A check registered with Request.RecheckEvery
//     runs on its own goroutine while the session lives and may keep what
//     it needs (a token) in memory; never log it.
//   - Errors: return ErrInvalidCredentials (possibly wrapped) when the client
//     failed to prove who it is: the client gets FATAL 28P01 and nothing
//     else. Return ErrNotApplicable, before exchanging anything that decides
//     against the client, when the client is not yours to judge (no
//     certificate, a password that is not your kind of token): a Chain
//     tries its next member, the proxy alone answers 28P01. Return a
//     *session.Error to choose the SQLSTATE and message. Any other error
//     reaches the client as a generic FATAL 28000, and the proxy's log gets
//     the error: never put a secret in it.
//   - Returning a nil error means the client is authenticated: the identity
//     must have a non-empty Subject, or the proxy refuses the session.
//     Set ExpiresAt when the proof expires: the proxy ends the session then.
package auth
