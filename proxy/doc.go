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
// From then on two relays carry the session, one per direction, without
// handing messages to other goroutines. On Linux both relays run as coroutines of the proxy's event loop (a level-triggered
// epoll loop, internal/evloop): a relay that finds nothing to read gives its
// thread back to the loop instead of parking a goroutine, which saves the
// scheduler's work on every message. A relay that blocks on anything else (a
// Policy calling a service, a Recorder waiting for the disk, an approval, a
// client that does not read) does not hold up the other sessions of its loop
// for long: the known waits hand the loop to a new goroutine at once, and a
// watchdog does so for the others within 10 ms. Under TLS the loop takes
// over the socket beneath the TLS connection. Elsewhere than Linux two
// goroutines run the same relays. Writes are buffered and flushed when
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
// # Masking
//
// Proxy.Masks names masked columns (and tables) with their maskers (see
// package mask). The promise, for every session whose identity a rule
// applies to: a value of a masked column never reaches the client (nor the
// recording or the telemetry) unmasked, whatever the statement looks like;
// where the gateway cannot show that, it refuses the statement (ERROR 42501
// naming a "mask-*" rule and saying why).
//
// When a session starts, the gateway reads the catalog: the masked tables,
// their partitions and inheritance children, and the views (and views of
// views) over them, whose definitions it follows like a statement's. For
// each statement that reads one of these, it follows the values through
// the parse tree (aliases, *, TABLE, joins, subqueries, CTEs, set
// operations, RETURNING, cursors and PREPAREd statements), and, at run
// time, through the RowDescription's table OID and column number. A result
// column that is a copy of one masked column gets that rule's masker; a
// column computed from masked values (an expression, a cast, an aggregate,
// a whole-row reference, a JSON or XML builder, a scalar subquery) is
// masked whole with mask.Redact (text becomes "***", other types NULL). A
// union's column carrying a masked column is masked in every row.
//
// Refused (rule in parentheses): masked columns in WHERE, JOIN, ORDER BY,
// GROUP BY, HAVING, DISTINCT, windows, INTERSECT/EXCEPT/UNION, IN/ANY
// subqueries (mask-inference; a rule with Inference AllowInference
// permits them); masked values stored elsewhere by INSERT ... SELECT,
// UPDATE SET, CREATE TABLE AS, SELECT INTO (mask-flow); views, rules or
// functions created over masked columns, MERGE over them (mask-lineage);
// statements whose effect is decided at run time: DO, CALL, user functions,
// query_to_xml and table_to_xml (mask-runtime); the planner statistics
// (mask-statistics); COPY TO in binary format of masked columns
// (mask-copy-binary); FETCH from a cursor not declared through the gateway
// (mask-cursor); DDL on masked relations, which could rename, move or
// re-type their columns (mask-ddl; an exempt identity must do it); calls
// of functions or operators named like ones defined in the database, and
// changes of rows of tables with user triggers (mask-runtime); a schema
// change followed by other statements in one query string
// (mask-new-relation). A Bind is checked again against the catalog as it
// is when it runs. The gateway reads the catalog again, on the session's
// connection once the server has answered what came before, after the
// session changed the schema and before a statement that reads a relation
// the catalog does not know (a new view over a masked table, a new
// partition); when it cannot wait (in a pipeline without a Sync, in an
// aborted transaction) the statement is refused (mask-new-relation).
// The server's error for a statement that reads masked columns, or for
// anything later in its transaction, is replaced by a generic one with the
// same SQLSTATE: a failed cast would echo the value; other errors lose
// their detail and context, which quote rows and keys.
//
// COPY TO STDOUT in text and CSV formats is masked row by row: each row is
// taken apart with the statement's options (delimiter, quote, escape,
// NULL, header) and put back together as COPY writes it; masked fields are
// masked as text.
//
// In the extended protocol the gateway describes every masked statement
// itself right after its Parse (clients such as pgx cache descriptions and
// do not ask again), and masks in the format each column is sent in, text
// or binary. Results with no masked column are forwarded as raw frames;
// only the masked cells of a row are rewritten. A masker's error, or a
// result whose shape the gateway did not expect, ends the session (FATAL
// XX000) rather than send the row.
//
// # Approvals
//
// A statement the Policy answers with Approve (policy.Decision.Approval
// says how) goes to Proxy.Approver (see policy/approval for stores that
// several gateways share). In Hold mode the statement waits on the live
// session (the client sees a slow statement, the server sees nothing);
// approved, it runs on the same session; denied or not approved in time,
// the client gets ERROR 42501 with the approver's comment or the timeout;
// the client's cancel request withdraws the request (ERROR 57014). In
// Defer mode the client gets ERROR 42501 at once, naming the request; once
// approved, the same identity may run exactly that statement, with the
// same parameters, within the approval's validity. In the extended
// protocol the Bind is what is approved, with its parameters (preparing
// runs nothing); changing them needs a new approval. An approval may also
// grant the rule to the identity for a while (a just-in-time grant).
// Every request and outcome is recorded (session.KindApproval) before the
// statement's own event. No Approver refuses every Approve.
//
// # Telemetry
//
// The gateway reports to OpenTelemetry through Proxy.TracerProvider and
// Proxy.MeterProvider; when they are nil, through the global providers
// (otel.GetTracerProvider, otel.GetMeterProvider), which do nothing unless
// the program installed an SDK. The tracer and the instruments are made
// once per Proxy, under the instrumentation scope
// "github.com/pgwarden/pgwarden/proxy"; attribute names follow the
// OpenTelemetry semantic conventions (1.40) where they have one, and are
// under "pgwarden." where they do not. Telemetry never carries a
// credential, a literal or a comment of a statement, a Bind parameter or
// the text of a server's error message (which may quote values); names
// stay, and so does a value written as a bare word (SET x = word).
//
// Spans. Each session has a span "pgwarden.session" (kind server), from
// the client's connection to the end of the session, with:
//
//	db.system.name            postgresql
//	db.namespace              the database
//	pgwarden.session.id       the session's id (as in its recording)
//	enduser.id                the identity's subject
//	pgwarden.identity.issuer  the identity's issuer
//	pgwarden.auth.method      how the client authenticated (scram-sha-256, oidc, ...)
//	pgwarden.chain            the subject and the delegation chain's agents, "alice > ci-job > agent"
//	pgwarden.chain.depth      the number of agents (0: the subject connected directly)
//	pgwarden.upstream.user    the role the gateway logged in as
//	network.peer.address/port the client
//	server.address/port       the PostgreSQL server (Upstream.Address)
//
// and, when it ends, pgwarden.session.end_reason and
// pgwarden.session.statements; a session that ends with a FATAL (sent by
// the gateway or by the server) has status Error and
// db.response.status_code, its SQLSTATE.
//
// Each statement has a child span of the session's (kind client), named
// "{db.operation.name} {db.collection.name}" ("SELECT accounts"), or the
// operation alone when it names no table, or "postgresql" when it could not
// be analysed. It starts when the gateway begins judging the statement and
// ends when the server's answer has been relayed: the CommandComplete or
// ErrorResponse of a Query (at its ReadyForQuery, so that every statement
// of a multi-statement Query is in), the ParseComplete of a Parse, the
// result of the Execute that runs a Bind's portal, the answer to a
// FunctionCall; for a refused statement, the refusal. Its attributes:
//
//	db.system.name             postgresql
//	db.namespace               the database
//	db.operation.name          the command (SELECT, INSERT, CREATE TABLE, ...); "BATCH SELECT" or
//	                           "BATCH" for several statements in one Query
//	db.operation.batch.size    the number of statements, when more than one
//	db.collection.name         the first table the statement names
//	db.query.summary           the span's name
//	db.query.text              the statement normalized: literals replaced by $n, comments
//	                           removed (analysis.Analyzer.Normalize); absent when it cannot be
//	pgwarden.decision          the verdict (allow, block, terminate, ...)
//	pgwarden.rule              the rule that decided, when named
//	pgwarden.stage             query, parse, bind or function-call
//	pgwarden.statement.seq     the statement's seq in the session's recording (for a Bind, its Parse's)
//	db.response.returned_rows  rows (DataRow or CopyData) relayed, but not for a Parse
//	db.response.status_code    the SQLSTATE of an error (then also error.type, and status Error)
//
// Statement spans are only made when the session's span records (it is
// sampled): a session that is not traced costs no span and no attribute
// for its statements. A Bind's span goes on until the first Execute of its
// portal completes; a portal run again after PortalSuspended has no span
// of its own. A span whose request the server never answers (skipped after
// an error in the extended protocol, or left when the session ended) ends
// with status Error and says why.
//
// Metrics:
//
//	pgwarden.statements            counter, {statement}: judged statements, by pgwarden.decision
//	                               and pgwarden.stage
//	db.client.operation.duration   histogram, s: from the judgement to the completion of a
//	                               statement (not of a Parse that succeeded, a preparation),
//	                               refusals included; by db.system.name, db.operation.name and,
//	                               on error, db.response.status_code and error.type
//	pgwarden.sessions.active       up-down counter, {session}: sessions running
//	pgwarden.sessions              counter, {session}: sessions ended, by
//	                               pgwarden.session.end_reason
//	pgwarden.bytes                 counter, By: protocol bytes relayed, by direction
//	                               (client_to_server: what clients sent; server_to_client: what
//	                               they received), added per relayed batch
//	pgwarden.masked_cells          counter, {cell}: result cells masked (see Masking),
//	                               added per relayed batch
//	pgwarden.approvals.pending     up-down counter, {statement}: statements waiting for
//	                               approval
//
// With the default providers and no SDK installed, telemetry costs a
// statement a clock reading or two and calls to disabled instruments, and
// allocates nothing (but the "BATCH" name of a multi-statement Query).
//
// # Plugins
//
// Each plugin's package states the contract an implementation keeps (its
// "Implementing a ..." section); in short, when the proxy calls it, and
// what its error does to the client:
//
//   - auth.Authenticator: once per connection, after the startup packet,
//     with a context bounded by Limits.AuthTimeout and canceled by Close.
//     ErrInvalidCredentials
//     and ErrNotApplicable give FATAL 28P01, a *session.Error its own
//     SQLSTATE, most other errors (a panic included) FATAL 28000.
//   - credstore.Store: once per session, after authentication, with the
//     same context; Credential.Release once when the session ends.
//     ErrNoCredential and other errors give FATAL 28000, a *session.Error
//     its own SQLSTATE.
//   - policy.Policy: for every statement, before it reaches the server,
//     with the session's context. An error refuses the statement (ERROR
//     42501, rule "policy-error"); the session stays usable.
//   - policy.Approver: for a statement the policy answered Approve; the
//     session waits. An error refuses the statement (ERROR 42501).
//   - session.Recorder: for every event, a statement's before the
//     statement is forwarded. An error ends the session (FATAL 58000).
//   - mask.Masker and mask.Detector (Proxy.Masks): for the cells of masked
//     columns, as results are relayed. A masker's error ends the session
//     (FATAL XX000).
//
// Errors go to Logger. A panic in a plugin is treated as that plugin's
// error (it fails closed the same way; the log gets the panic and its
// stack, the client never does), so that a bug in one plugin does not
// take every other session down with the gateway.
//
// # Security defaults
//
// The zero Proxy refuses everybody. Every failure refuses: a missing plugin,
// a plugin error, a recorder failure, an oversize message (checked before
// anything is allocated), a malformed message from either side. Errors reach
// the client as an ErrorResponse with a SQLSTATE, never as a silently dropped
// connection; internal details go to the log, and secrets go nowhere.
package proxy
