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
// Func adapts a function; Rule, When, FirstMatch and Strictest compose it
// with the built-in rules. The proxy calls Decide for every statement it
// judges (see the stages above), before the statement reaches the server,
// on the session's goroutine that reads from the client.
//
//   - Concurrency: Decide is called from many sessions at once (one
//     statement at a time for each); it must be safe for concurrent use.
//   - Context: ctx ends when the session ends; it has no deadline. The
//     session waits for Decide: a Policy that waits (for a service, a
//     lock) slows its session, and must return when ctx is done.
//   - Ownership: q and everything it references are read-only and only
//     valid during the call: the proxy reuses the Query, Statements are
//     shared between sessions through the gateway's cache, and Params
//     alias the client's message. Copy what you keep.
//   - Decisions: Abstain (the zero Decision) when the policy has no
//     opinion, so that combinators ask the next one; a top-level Abstain
//     is refused (rule "no-decision"). Allow only to allow. Rule names the
//     rule in the client's error and the recordings, and Reason is sent to
//     the client as the error's detail: never put a secret in either.
//   - Errors: an error refuses the statement (fail closed): the client
//     gets ERROR 42501 from rule "policy-error", saying that the policy
//     failed, and the proxy's log gets the error (never a secret in it). A
//     panic is treated as an error (the log gets it with its stack).
//   - Determinism: the gateway caches analysis, never decisions; Decide is
//     called for every statement.
//   - Session setup: a policy that needs something of the upstream session
//     (read-only mode) implements SessionSetup; the proxy calls
//     SetupSession once per session, before it logs in to the server, with
//     a Query of the session and the time alone (no statements).
//
// A Condition (ConditionFunc adapts a function) is asked the same way,
// through the rules it restricts: Holds must be safe for concurrent use,
// quick, and must not modify q.
//
// Unit-test policies with package policytest, which judges SQL exactly as
// the gateway does, without a database.
//
// # Implementing an Approver
//
// ApproverFunc adapts a function; package approval has stores with an
// admin API, and states the rest of the contract. The proxy calls Approve
// when a Bind, a Query or a FunctionCall gets an Approve verdict (a Parse
// with one is allowed: the Bind that runs it is approved, with its
// parameters), on the session's goroutine that reads from the client.
//
//   - Concurrency: Approve is called from many sessions at once (one
//     statement at a time for each); it must be safe for concurrent use.
//   - Context: ctx ends when the session ends or the client cancels the
//     statement; for a Hold, it also has the deadline of the spec's
//     Timeout. When ctx ends first, withdraw the request and return an
//     error wrapping ErrApprovalWithdrawn and ctx.Err(): the client gets
//     ERROR 57014 when it canceled, ERROR 42501 otherwise.
//   - Ownership: req is made for the call; set req.ID to the request's id
//     (it goes to the recording), and copy what you keep. Its Identity's
//     Groups and Chain are the session's: do not modify them.
//   - Outcomes: Approved only when a person approved this request (for a
//     Defer, an earlier one with the same req.Fingerprint), or a grant a
//     person gave covers this identity and rule; Denied, with the
//     approver's comment; Pending for a Defer, with the request's id.
//     Anything else refuses the statement, and so does Pending for a Hold. The id, the approver and the comment reach the
//     client in the error's detail: never a secret in them.
//   - Errors: any other error refuses the statement (ERROR 42501, saying
//     that the approver failed); the session stays usable, and the proxy's
//     log gets the error. A panic is treated as an error.
package policy
