// Package credstore gives the gateway the database credentials it logs in
// with. The gateway owns them: the client authenticates as an identity and
// never learns the role's password.
//
// Static maps identities (by group or subject) to fixed credentials.
//
// # Implementing a Store
//
//   - Concurrency: Credential is called from many sessions at once.
//   - Context: ctx ends when the proxy's authentication timeout passes or the
//     proxy shuts down.
//   - Ownership: info is read-only and only valid during the call. The
//     returned Credential belongs to the proxy, which calls its Release hook
//     once, when the session ends (also when the upstream login failed).
//   - Errors: return ErrNoCredential when the identity gets no credential;
//     return a *session.Error to choose the SQLSTATE the client sees; any
//     other error reaches the client as a generic FATAL 28000 and the
//     proxy's log. Never put the password in an error.
package credstore
