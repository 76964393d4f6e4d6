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
// A Recorder receives every Event of every session, in order per session.
//
//   - Concurrency: Record is called from many sessions at once; events of one
//     session are never delivered concurrently, and arrive in the order they
//     happened.
//   - Context: ctx carries the session's deadline; a Recorder that blocks must
//     return when ctx is done.
//   - Ownership: the Event and everything it references belong to the
//     Recorder once Record is called; the proxy never modifies them afterwards.
//   - Errors: a non-nil error means the event was not recorded. The proxy
//     fails closed: a statement whose event could not be recorded is not
//     forwarded, and the session ends. Wrap a Recorder with BestEffort to opt
//     out of that, explicitly.
//   - Secrets: events never carry passwords or tokens; a Recorder must not add
//     them.
package session
