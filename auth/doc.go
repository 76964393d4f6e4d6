// Package auth decides who a connecting client is: an Authenticator turns
// the client's startup packet and the exchange it runs with the client into
// a session.Identity.
//
// The proxy does not choose the exchange: the Authenticator does, through
// the Conversation in the Request. Static users (Static) run SCRAM-SHA-256,
// with channel binding (SCRAM-SHA-256-PLUS) when the client connected with
// TLS; token authenticators ask for a cleartext password, which the proxy
// only allows over TLS.
//
// # Implementing an Authenticator
//
//   - Concurrency: Authenticate is called from many connections at once.
//   - Context: ctx ends when the proxy's authentication timeout passes or
//     the proxy shuts down; return promptly when it does.
//   - Ownership: the Request and its Conversation are only valid during the
//     call. The Identity returned is kept by the proxy and must not be
//     modified afterwards.
//   - Errors: return ErrInvalidCredentials (possibly wrapped) when the client
//     failed to prove who it is: the client gets FATAL 28P01 and nothing
//     else. Return a *session.Error to choose the SQLSTATE and message. Any
//     other error reaches the client as a generic FATAL 28000, and the
//     proxy's log gets the error: never put a secret in it.
//   - Returning a nil error means the client is authenticated: the identity
//     must have a non-empty Subject, or the proxy refuses the session.
package auth
