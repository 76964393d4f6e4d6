// Package credstore gives the gateway the database credentials it logs in
// with. The gateway owns them: the client authenticates as an identity and
// never learns the role's password.
//
//   - Static maps identities (by group or subject) to fixed credentials.
//   - Dynamic issues just-in-time credentials: a short-lived login role per
//     session, member of the template roles the identity maps to, dropped
//     when the session ends or its TTL passes. Leases are persisted (a
//     table, or a file with FileLeases) so that a gateway restarted after a
//     crash drops the roles it left behind; Leases and CheckPrivileges feed
//     access reviews (which credentials are alive, for whom through which
//     delegation chain, and which roles exceed least privilege).
//
// The package credstoretest is a conformance suite for Store
// implementations.
//
// # Implementing a Store
//
//   - Concurrency: Credential is called from many sessions at once.
//   - Context: ctx ends when the proxy's authentication timeout passes or the
//     proxy shuts down.
//   - Ownership: info is read-only and only valid during the call. The
//     returned Credential belongs to the proxy, which calls its Release hook
//     once, when the session ends (also when the upstream login failed).
//     The proxy ends the session at the Credential's ExpiresAt.
//   - Errors: return ErrNoCredential when the identity gets no credential;
//     return a *session.Error to choose the SQLSTATE the client sees; any
//     other error reaches the client as a generic FATAL 28000 and the
//     proxy's log. Never put the password in an error.
package credstore
