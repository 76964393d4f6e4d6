// Package pgwarden is an embeddable Go library for building PostgreSQL
// gateways: programs that sit between clients (people's psql, CI jobs, AI
// agents, agents started by other agents) and a PostgreSQL server, own the
// database credential, and decide about every statement.
//
// This package holds only this overview; the library is in its packages.
//
// # The data path
//
//	client ──TLS/startup──> proxy ──auth.Authenticator──> session.Identity
//	                          │
//	                          ├─ credstore.Store(identity) ──> database credential (never shown to the client)
//	                          ├─ upstream login with pgx's pgconn (SCRAM/MD5/TLS), then raw frames
//	                          │
//	statements ──> analysis (PostgreSQL's grammar, cached) ──> policy.Policy ──> allow / block / terminate / approve
//	                          ├─ policy.Approver: a person approves a held or deferred statement
//	                          ├─ lineage + catalog: refuse what cannot be masked soundly
//	                          ├─ session.Recorder: the statement is recorded before it is forwarded
//	                          ▼
//	                        PostgreSQL
//	results    <── raw frames, matched to the request that caused them; masked cells rewritten (mask.Rules)
//
// proxy.Proxy composes the parts. It is configured by exported fields, like
// http.Server, and its zero value refuses everybody: with no Authenticator
// nobody gets in, with no Credentials nobody reaches the server, with no
// Policy every statement is refused.
//
// # The plugin points
//
//   - auth.Authenticator: who is this, and through which agents? auth.NewOIDC
//     verifies OAuth 2.0 / OIDC access tokens (sent as the password over
//     TLS, or with SASL OAUTHBEARER) and turns RFC 8693 "act" claims into a
//     delegation chain; auth.NewSAML verifies signed SAML assertions;
//     auth.NewClientCert maps TLS client certificates (CN or SPIFFE ID);
//     auth.NewStatic runs SCRAM-SHA-256 (with channel binding over TLS)
//     against users from configuration; auth.Chain tries several.
//   - credstore.Store: which database credential does this identity get?
//     credstore.NewStatic maps groups and subjects to fixed roles;
//     credstore.NewDynamic creates a just-in-time role for each session and
//     drops it afterwards, so that revoking an identity (Proxy.Revoke, along
//     its whole delegation chain) leaves nothing behind.
//   - policy.Policy: may this statement run? It decides on the statement
//     parsed with PostgreSQL's own grammar (kind, writes, relations,
//     functions, settings, what only runs at run time), on every protocol
//     path, with the session's identity and the time. Built-in rules
//     (read-only on the parse tree and on the server, blocked tables and
//     functions, conditions on identity, delegation chain and time windows)
//     combine with FirstMatch and Strictest; policy.RuleSet declares them;
//     policy.Func adapts any function; policy/policytest unit-tests a
//     policy without a database.
//   - policy.Approver: who approves a statement a policy holds for a person?
//     policy/approval keeps requests in memory or in PostgreSQL, shared by
//     several gateways.
//   - mask.Masker and mask.Detector: how is a masked value hidden, and which
//     cells hold sensitive content? proxy.Proxy.Masks (mask.Rules) names the
//     masked columns; the gateway follows every value through the parse tree
//     and refuses what it cannot mask.
//   - session.Recorder: where does the record of each session go?
//     session/journal writes hash-chained, sealed files (write-ahead, with
//     group commit), session/pgstore an audit database; session.Discard,
//     Multi and BestEffort compose recorders. Spans and metrics go to
//     OpenTelemetry.
//
// Each is a small interface (one method, but for mask.Detector, which also
// has a Name) with a Func adapter where it has one method; each package's
// documentation states the contract an implementation must keep
// (concurrency, context, ownership, errors).
//
// # Security defaults
//
// pgwarden fails closed: a missing plugin, a plugin error, a recorder
// failure, a message over a limit or malformed (from the client or from the
// server), a statement the gateway cannot parse, a setting that would make
// the server read statements differently from the gateway, or a policy
// with no rule that decides: each refuses, with a PostgreSQL error and
// SQLSTATE the client can read.
// Secrets (passwords, tokens, credentials) are carried as session.Secret,
// which never prints, logs or marshals its value. Cleartext secrets are only
// asked for over TLS. Startup parameters are allow-listed, replication
// connections refused, and user and database names canonicalised as the
// server does before anyone authorises on them. The client gets a cancel key
// issued by the gateway; the server's key never leaves it.
//
// # Examples
//
// examples/minimal is the smallest useful gateway (29 lines of main);
// examples/agent embeds a gateway in an agent that hands a delegated token
// to its child process, which never sees the database credential;
// examples/policytest unit-tests a policy with go test. The example gateway
// (examples/gateway, built as bin/pgwarden) runs all of this from a YAML
// file; `make demo` starts it in front of a throwaway PostgreSQL with
// sample data, masked columns and a development identity provider.
package pgwarden
