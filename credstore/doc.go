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
// Func adapts a function. The proxy calls Credential once per session,
// right after authentication and before it logs in to the server, on the
// connection's goroutine.
//
//   - Concurrency: Credential is called from many sessions at once; it
//     must be safe for concurrent use.
//   - Context: ctx is the login's: it carries the deadline of
//     proxy.Limits.AuthTimeout (60 s by default), shared with
//     authentication and the upstream login; closing the proxy (Close, or
//     Shutdown running out of time) cancels it. Pass it to what you wait
//     for.
//   - Ownership: info is read-only and only valid during the call (the
//     proxy fills in UpstreamUser and Lease afterwards); copy what you
//     keep. The returned Credential belongs to the proxy: it sends the
//     password to the server only (SCRAM-SHA-256, MD5, or cleartext over
//     upstream TLS alone), and calls Release exactly once, when the session
//     ends, also when the upstream login or the session's start failed,
//     with a context of its own (10 s) and the reason the session ended;
//     Release's error is logged. The proxy ends the session at ExpiresAt
//     (FATAL 28000).
//   - Errors: return ErrNoCredential (possibly wrapped) when the identity
//     gets no credential: the client gets FATAL 28000 naming its user.
//     Return a *session.Error to choose the SQLSTATE and message the client
//     sees. Any other error reaches the client as a generic FATAL 28000
//     (and a credential the server rejects, as FATAL 08004); the proxy's
//     log gets the error. Never put the password in an error.
//   - A panic is treated as an error: FATAL 28000 (the log gets it with
//     its stack).
//
// credstoretest checks these from the outside.
//
// # Implementing a LeaseStore
//
// A Dynamic store keeps its leases in a LeaseStore (DynamicConfig.Leases):
// a table by default, or FileLeases.
//
//   - Concurrency: Put and List are called from many sessions at once, and
//     from the sweeper; they must be safe for concurrent use, and so must
//     the store be when several gateways share it (each only ends its own
//     leases, by GatewayID).
//   - Durability: a lease is Put before its role is created, and Put again
//     when it ends; Put must be durable when it returns, so that a gateway
//     restarted after a crash finds (List) and drops the roles it left.
//   - Context: the first Put gets the Credential call's ctx; the Put that
//     ends a lease, a context of its own (30 s) that the session's end does
//     not cancel; List, NewDynamic's ctx at start, then context.Background
//     for the sweeper.
//   - Ownership: a Lease is a plain value (no password). List returns a
//     new slice the caller may sort and keep.
//   - Errors: a failed first Put refuses the credential (the client gets a
//     generic FATAL 28000); a failed Put at the end of a lease is returned
//     by Release, and logged; a failed List fails Sweep (logged) and Leases.
package credstore
