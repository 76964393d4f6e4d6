// Package policy decides about statements. Every statement a client sends
// through the gateway, on every protocol path, is analysed with
// PostgreSQL's own grammar and put to a Policy before it reaches the
// server; only an Allow lets it through.
//
// # What a policy sees
//
// A Query carries the session (identity with its delegation chain,
// database, application name), the time, the protocol stage, the SQL text,
// and its Statements: for each statement of the text, its Kind and
// command, whether it writes or locks, the relations it reads and writes,
// the functions it calls, the settings it changes, what it runs at run
// time (DO, CALL, user functions), and the statement nested in it (EXPLAIN,
// PREPARE, DECLARE CURSOR, COPY (query); for EXECUTE and FETCH, what the
// session prepared or declared under that name). Bind parameters are
// there at StageBind. Unqualified relation names resolve through
// Query.Schemas, which follows the session's search_path as the gateway
// tracked it.
//
// The stages: a simple-protocol Query is judged once for all its
// statements (one refused refuses the message); a Parse once per prepared
// statement; each Bind again, with its parameter values; a FunctionCall
// (the fast-path interface) as a KindFunctionCall statement.
//
// # Decisions
//
// Verdicts are ordered Abstain < Allow < Mask < Approve < Block <
// Terminate. A Rule decides on a Condition and abstains otherwise;
// FirstMatch and Strictest combine policies; Default ends a chain; When and
// Named restrict and rename. Built-in rules: ReadOnly, BlockKinds,
// BlockTables, OnlyTables, BlockFunctions (with DangerousFunctions),
// BlockSettings (with ProtectedSettings), and Rule with conditions on
// identity (InGroup, Subject, Involves, Issuer, ChainDepth), time (During
// a Window) and statements (IsKind, Writes, AllRows, Touches, Calls,
// ChangesSetting). RuleSet is the same, declared in YAML.
//
// A Block is answered with ERROR 42501 naming the rule and giving the reason;
// the session stays usable (in the extended protocol the server skips to the
// next Sync), and an open transaction is aborted on the server too, so that
// a later COMMIT cannot commit what came before. A Terminate also ends the
// session with FATAL 42501, and with Decision.Suspend keeps the identity's
// whole delegation chain out for that long. An Approve sends the statement
// to a person (see Approver and ApprovalSpec: held on the live session, or
// deferred with a request id; proxy.Proxy.Approver). A Mask verdict is
// refused by the gateway: masks are declared as proxy.Proxy.Masks
// (mask.Rules), which apply whatever the policy decides.
//
// # Failing closed
//
// The gateway refuses, naming why: text it cannot parse or will not parse
// (too long, nested too deeply), settings that would make the server read
// statements differently from its parser (standard_conforming_strings,
// client_encoding, backslash_quote; rule "parser-settings", which no
// policy can lift), a missing policy, a policy error, and an Abstain from
// the top-level policy.
//
// # Implementing a Policy
//
//   - Concurrency: Decide is called from many sessions at once.
//   - Context: ctx ends when the session ends; a Policy that waits must
//     return then.
//   - Ownership: q and everything it references are read-only and only valid
//     during the call; Statements are shared between sessions through the
//     gateway's cache, and Params alias the message buffer.
//   - Errors: an error refuses the statement (fail closed): the client is
//     told that the policy failed, the log gets the error.
//   - Abstain when the policy has no opinion, so that combinators can ask
//     the next one; return Allow only to allow.
//   - Determinism: the gateway caches analysis, never decisions; Decide is
//     called for every statement.
//   - Session setup: a policy that needs something of the upstream session
//     (read-only mode) implements SessionSetup.
//
// Unit-test policies with package policytest, which judges SQL exactly as
// the gateway does, without a database.
package policy
