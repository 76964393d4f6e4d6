// Package session is the vocabulary every pgwarden package shares: who is
// connected (Identity and its delegation chain), what the session is (Info),
// what happened in it (Event), where that goes (Recorder), how secrets are
// carried (Secret) and how an error reaches the client with a SQLSTATE (Error).
//
// session imports no other pgwarden package, so plugins written against it
// (authenticators, credential stores, policies, recorders) never depend on the
// proxy that composes them.
//
// # Implementing a Recorder
//
// RecorderFunc adapts a function; Multi and BestEffort compose recorders,
// and Discard keeps nothing. A Recorder receives every Event of every
// session, in order per session; a statement's event is recorded before
// the statement is forwarded to the server (write-ahead).
//
//   - Concurrency: Record is called from many sessions at once; events of
//     one session are never delivered concurrently, and arrive in the order
//     they happened.
//   - Context: the session's start is recorded with the login's context
//     (the deadline of proxy.Limits.AuthTimeout); the events of a running
//     session with the session's context, canceled when the session ends,
//     without a deadline; the events after it ended (the credential's
//     release, the session's end) with a context of their own, bounded to
//     10 s. The session waits for Record: a Recorder that blocks slows it,
//     and must return when ctx is done. A Recorder that knows some events
//     never wait (for a disk, a network) says so with QuickRecorder, and
//     saves the proxy a hand-over of its thread for each of them.
//   - Ownership: the proxy never modifies an Event, or what it references,
//     after Record is called: a Recorder may keep them, but must not
//     modify them (Multi hands the same Event to every recorder).
//   - Errors: a non-nil error means the event was not recorded. The proxy
//     fails closed: a session whose start could not be recorded is refused,
//     and a running session whose event could not be recorded ends (FATAL
//     58000 in both cases), the statement that event was about not
//     forwarded; an error recording the events after the session ended is
//     logged. The error goes
//     to the proxy's log, never to the client: never put a secret in it.
//     Wrap a Recorder with BestEffort to opt out of failing closed,
//     explicitly.
//   - Secrets: events carry no password or token of the client's login or
//     of the gateway's credential, and a Recorder must not add them. The
//     text of statements that may carry a password (CREATE and ALTER ROLE,
//     user mappings, foreign servers) is recorded with its constants
//     replaced by $1, $2, ... Other statements and Bind parameters are
//     recorded as the client sent them (masked columns' values masked),
//     and may hold anything the client chose to send: keep recordings
//     where such data may be kept.
//   - A panic is treated as an error (the log gets it with its stack).
//
// # Implementing an Archive
//
// An Archive is what reviewers read recordings through (the proxy never
// calls it). Its methods are called from many goroutines at once and must
// be safe for concurrent use; they honour ctx. Sessions lists oldest
// first; Events returns a session's events as recorded, without verifying
// them; Verify returns nil only for an intact and sealed ledger (see
// VerifyLedger), a *TamperError otherwise, and another error when the
// record cannot be read. Never return a secret (a connection string, the
// recording key) in an error.
package session
