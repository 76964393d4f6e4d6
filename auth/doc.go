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
// Func adapts a function; Chain and When compose it with the built-in
// authenticators. The proxy calls Authenticate once per connection, after
// the startup packet, on the connection's goroutine.
//
//   - Concurrency: Authenticate is called from many connections at once;
//     it must be safe for concurrent use.
//   - Context: ctx carries the deadline of proxy.Limits.AuthTimeout (60 s
//     by default; none when that limit is turned off), which bounds
//     authentication, the credential lookup and the upstream login
//     together; the client connection has the same deadline, so a
//     Conversation call fails then too. Closing the proxy (Close, or
//     Shutdown running out of time) cancels ctx. Return
//     promptly when ctx is done, and pass it to what you wait for (an
//     identity provider, a database).
//   - Ownership: the Request, its Params and its Conversation are only
//     valid during the call; use the Conversation from the calling
//     goroutine only, and finish the exchange before returning. The
//     Identity returned is kept by the proxy and handed to every other
//     plugin: do not modify it (or its Groups and Chain) afterwards. A check
//     registered with Request.RecheckEvery runs on a goroutine of its own
//     every interval while the session lives, with a context that ends
//     with the session (and after the interval, or 30 s); it may keep what
//     it needs (a token) in memory, never in a log. Its error ends the
//     session (FATAL 28000).
//   - Errors: return ErrInvalidCredentials (possibly wrapped) when the client
//     failed to prove who it is: the client gets FATAL 28P01 and nothing
//     else. Return ErrNotApplicable, before exchanging anything that decides
//     against the client, when the client is not yours to judge (no
//     certificate, a password that is not your kind of token): a Chain
//     tries its next member, the proxy alone answers 28P01. Return the
//     Conversation's errors as they are (ErrCleartextRefused becomes FATAL
//     28000 asking for TLS, ErrExchange FATAL 08P01, a client that hung up
//     gets nothing). Return a *session.Error to choose the SQLSTATE and
//     message. Any other error, a panic included, reaches the client as a
//     generic FATAL 28000. The proxy logs every error: never put a secret
//     (a password, a token) in one.
//   - Returning a nil error means the client is authenticated: the identity
//     must have a non-empty Subject, or the proxy refuses the session.
//     Set ExpiresAt when the proof expires: a proof already expired is
//     refused, and the proxy ends the session at ExpiresAt (FATAL 28000).
package auth
