// Package policy decides about statements: every statement a client sends
// through the gateway, on every protocol path (simple query, Parse of the
// extended protocol, function call), is put to a Policy before it reaches
// the server, and only an Allow lets it through.
//
// A Block is answered with ERROR 42501 naming the rule and giving the reason;
// the session stays usable (in the extended protocol the gateway skips to the
// next Sync, as the server would), and an open transaction is aborted on the
// server too, so that a later COMMIT cannot commit what came before.
//
// # Implementing a Policy
//
//   - Concurrency: Decide is called from many sessions at once.
//   - Context: ctx ends when the session ends; a Policy that waits must
//     return then.
//   - Ownership: q and everything it references are read-only and only valid
//     during the call.
//   - Errors: an error refuses the statement (fail closed): the client is
//     told that the policy failed, the log gets the error.
//   - Determinism: the gateway may cache analysis, never decisions; Decide is
//     called for every statement.
package policy
