// Package proxy is pgwarden's composition root: Proxy speaks the PostgreSQL
// wire protocol to clients, authenticates them with an auth.Authenticator,
// logs in to the server with a credential from a credstore.Store, puts every
// statement to a policy.Policy, and records sessions with a
// session.Recorder.
//
// # The data path
//
// For each client connection the proxy negotiates TLS (answering SSLRequest
// with 'S' when Proxy.TLS is set and 'N' otherwise, refusing plaintext sent
// ahead of the handshake, answering GSSENCRequest with 'N'), reads the
// startup packet (protocol 3.0; user and database canonicalised as the
// server would; other parameters checked against an allow-list; replication
// refused), lets the Authenticator run its exchange with the client, obtains
// the credential, and logs in upstream with pgx's pgconn (SCRAM-SHA-256, MD5,
// TLS), then takes the connection over (pgconn.Hijack). The client receives
// the server's ParameterStatus messages and a BackendKeyData issued by the
// gateway; cancel requests with that key are sent on to the server with the
// server's own key, which the client never sees.
//
// From then on two goroutines relay the session, one per direction, without
// handing messages to other goroutines. Writes are buffered and flushed when
// the reading side has nothing more to give. A pipeline of the client's
// requests awaiting answers (also for pipelined extended-protocol traffic and
// COPY) matches every server message to the request that caused it; server
// messages that do not fit end the session, as do malformed DataRows. Result
// rows are forwarded as raw frames.
//
// A statement the policy refuses never reaches the server: the proxy sends in
// its place a statement that is certain to fail (a syntax error), so that the
// server aborts an open transaction and, in the extended protocol, skips to
// the next Sync, exactly as if the statement had failed there; the client
// gets ERROR 42501 naming the rule, and the session stays usable. A refused
// Bind is replaced the same way, by a Bind of a statement name the gateway
// reserves.
//
// # Judging statements
//
// Every Query (all its statements), Parse, Bind (with its parameters) and
// FunctionCall is analysed with PostgreSQL's grammar (cached by exact
// text, bounded by Limits.AnalysisCacheSize) and put to the policy; text
// over Limits.MaxStatementSize, or too deeply nested to parse safely, is
// refused. Each session tracks what changes the meaning of later
// statements: SQL PREPAREs and cursors, and the schemas of its search_path
// (read from the server at login). After a statement whose effect is
// decided at run time (a user function, DO, CALL), the next statement waits
// for the server's answers and the gateway reads the search path and the
// read-only mode again before judging it. A policy's Terminate ends the
// session and may suspend its delegation chain (Proxy.Suspensions,
// Proxy.LiftSuspension); a policy asking for read-only sessions
// (policy.SessionSetup) gets them on the server too.
//
// # Security defaults
//
// The zero Proxy refuses everybody. Every failure refuses: a missing plugin,
// a plugin error, a recorder failure, an oversize message (checked before
// anything is allocated), a malformed message from either side. Errors reach
// the client as an ErrorResponse with a SQLSTATE, never as a silently dropped
// connection; internal details go to the log, and secrets go nowhere.
package proxy
