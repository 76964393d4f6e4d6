package session

import "time"

// EventKind says which of an Event's payloads is set.
type EventKind string

// The kinds of events a session produces, in the order they can occur.
const (
	// KindSessionStart: the client authenticated and the upstream session
	// is ready. Payload: Start.
	KindSessionStart EventKind = "session.start"
	// KindStatement: a statement was judged and is about to be forwarded
	// (or was refused). It is recorded before the statement reaches the
	// server. Payload: Statement.
	KindStatement EventKind = "statement"
	// KindResult: the server finished a statement. Payload: Result.
	KindResult EventKind = "result"
	// KindSessionEnd: the session is over. Payload: End.
	KindSessionEnd EventKind = "session.end"
	// KindCredential: the session's database credential was issued (after
	// session.start) or released, expired or revoked (before
	// session.end). Payload: Credential.
	KindCredential EventKind = "credential"
	// KindApproval: a statement was sent for a person's approval, or the
	// approval was decided, withdrawn or used. Payload: Approval.
	KindApproval EventKind = "approval"
)

// Event is one thing that happened in a session. It is a plain value that
// marshals to JSON; exactly one payload, the one named by Kind, is set.
type Event struct {
	// Kind says what happened, and which payload is set.
	Kind EventKind `json:"kind"`
	// SessionID is the session's Info.ID.
	SessionID string `json:"session"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Start is set for KindSessionStart.
	Start *StartEvent `json:"start,omitempty"`
	// Statement is set for KindStatement.
	Statement *StatementEvent `json:"statement,omitempty"`
	// Result is set for KindResult.
	Result *ResultEvent `json:"result,omitempty"`
	// End is set for KindSessionEnd.
	End *EndEvent `json:"end,omitempty"`
	// Credential is set for KindCredential.
	Credential *CredentialEvent `json:"credential,omitempty"`
	// Approval is set for KindApproval.
	Approval *ApprovalEvent `json:"approval,omitempty"`
}

// ApprovalAction says what happened to an approval request.
type ApprovalAction string

// What can happen to an approval request, as a session sees it.
const (
	ApprovalRequested ApprovalAction = "requested" // sent to the approver (held or deferred)
	ApprovalApproved  ApprovalAction = "approved"  // a person approved it (or a grant, or an earlier deferred approval, let it pass)
	ApprovalDenied    ApprovalAction = "denied"    // a person denied it
	ApprovalPending   ApprovalAction = "pending"   // deferred: the client was told its id
	ApprovalWithdrawn ApprovalAction = "withdrawn" // the client canceled, the wait timed out, or the session ended
	ApprovalFailed    ApprovalAction = "failed"    // the approver failed: refused
)

// ApprovalEvent records an approval request and its outcome. Seq is the
// statement it is about (the StatementEvent that follows carries the final
// verdict).
type ApprovalEvent struct {
	// Action says what happened.
	Action ApprovalAction `json:"action"`
	// ID names the request in the approval store.
	ID string `json:"id,omitempty"`
	// Mode is "hold" or "defer"; Rule the rule that asked.
	Mode string `json:"mode,omitempty"`
	Rule string `json:"rule,omitempty"`
	// Approver is the subject who decided; Comment theirs.
	Approver string `json:"approver,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// Grant is set when a just-in-time grant let the statement pass.
	Grant bool `json:"grant,omitempty"`
	// Reason says why it was withdrawn or failed.
	Reason string `json:"reason,omitempty"`
}

// CredentialAction says what happened to a session's credential.
type CredentialAction string

// What can happen to a credential.
const (
	// CredentialIssued: a credential was created for the session (a lease).
	CredentialIssued CredentialAction = "issued"
	// CredentialUsed: the session logged in with a shared credential (a
	// static one).
	CredentialUsed CredentialAction = "used"
	// CredentialReleased: the session ended and released its credential.
	CredentialReleased CredentialAction = "released"
	// CredentialExpired: the session ended because its credential expired.
	CredentialExpired CredentialAction = "expired"
	// CredentialRevoked: the session ended because its identity was
	// revoked.
	CredentialRevoked CredentialAction = "revoked"
)

// CredentialEvent is a credential lifecycle event. It names the role and
// the lease, never a password.
type CredentialEvent struct {
	// Action says what happened.
	Action CredentialAction `json:"action"`
	// User is the database role.
	User string `json:"user"`
	// Lease names the lease, for just-in-time credentials.
	Lease string `json:"lease,omitempty"`
	// ExpiresAt is when the credential expires (zero: never).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// StartEvent opens a session's record.
type StartEvent struct {
	// Info describes the session: its identity, client, database and
	// upstream role.
	Info Info `json:"info"`
}

// Protocol is the path a statement took on the wire.
type Protocol string

// The protocol paths a statement can take.
const (
	// ProtocolSimple: a Query message (one or more statements as text).
	ProtocolSimple Protocol = "simple"
	// ProtocolExtended: a Parse message (later bound and executed).
	ProtocolExtended Protocol = "extended"
	// ProtocolFunctionCall: a FunctionCall message (the fast-path interface,
	// used by large-object functions in libpq).
	ProtocolFunctionCall Protocol = "function-call"
)

// StatementEvent records a statement the client sent and what the gateway
// decided about it.
type StatementEvent struct {
	// Seq numbers the session's statements from 1; results refer to it.
	Seq int64 `json:"seq"`
	// Protocol is the path the statement took.
	Protocol Protocol `json:"protocol"`
	// SQL is the statement text as the client sent it. Text that is not
	// valid UTF-8 (possible with client_encoding SQL_ASCII) is in SQLBytes
	// instead, so that the record keeps every byte.
	SQL      string `json:"sql,omitempty"`
	SQLBytes []byte `json:"sql_bytes,omitempty"`
	// Name is the prepared statement's name (extended protocol; empty for
	// the unnamed statement).
	Name string `json:"name,omitempty"`
	// FunctionOID is the function called (function-call protocol).
	FunctionOID uint32 `json:"function_oid,omitempty"`
	// Stage is where on the protocol path the statement was judged:
	// "query" (simple), "parse", "bind" (with Portal and Params) or
	// "function-call".
	Stage string `json:"stage,omitempty"`
	// Kinds are the kinds of the statements in SQL ("select", "execute",
	// "fetch", ...): PREPARE/EXECUTE and cursors show here.
	Kinds []string `json:"kinds,omitempty"`
	// Tables are the relations the statements read or write, qualified
	// when the statement qualified them.
	Tables []string `json:"tables,omitempty"`
	// Portal is the portal a Bind creates (empty: the unnamed portal).
	Portal string `json:"portal,omitempty"`
	// Params are a Bind's parameter values: text as sent; binary values,
	// and text that is not valid UTF-8, as "\\x" and hex; null for NULL.
	Params []*string `json:"params,omitempty"`
	// Verdict, Rule and Reason are the policy's decision.
	Verdict string `json:"verdict"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// ResultEvent records how the server finished a statement (one per command
// completed, error or empty query).
type ResultEvent struct {
	// Seq is the StatementEvent of the statement the server ran (for the
	// extended protocol, the Parse that defined it).
	Seq int64 `json:"seq"`
	// Bind, for the Execute of a portal, is the StatementEvent of the Bind
	// that opened the portal: the parameters this result was computed
	// with.
	Bind int64 `json:"bind,omitempty"`
	// Tag is the command tag, for example "SELECT 3".
	Tag string `json:"tag,omitempty"`
	// Rows is the number of rows the client received for this command.
	Rows int64 `json:"rows"`
	// Duration is from forwarding the statement (or the Execute) to its
	// completion.
	Duration time.Duration `json:"duration"`
	// ErrorCode and ErrorMessage are set when the command failed.
	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
}

// EndReason says why a session ended.
type EndReason string

// Why sessions end.
const (
	// EndClientExit: the client closed the session.
	EndClientExit EndReason = "client-exit"
	// EndTerminated: an administrator terminated the session, or a policy
	// did (verdict Terminate), or its identity was suspended.
	EndTerminated EndReason = "terminated"
	// EndShutdown: the gateway shut down.
	EndShutdown EndReason = "shutdown"
	// EndUpstreamClosed: the connection to the server was lost (or, for a
	// credential's release, the upstream login failed).
	EndUpstreamClosed EndReason = "upstream-closed"
	// EndProtocolError: a peer broke the protocol, or a result could not
	// be masked.
	EndProtocolError EndReason = "protocol-error"
	// EndIdleTimeout: the client was idle past the gateway's limit.
	EndIdleTimeout EndReason = "idle-timeout"
	// EndRecorderFailed: an event could not be recorded.
	EndRecorderFailed EndReason = "recorder-failed"
	// EndExpired: the identity's proof or the credential expired.
	EndExpired EndReason = "expired"
	// EndRevoked: the identity's proof was revoked, or could not be
	// re-validated, or the identity was revoked at the gateway.
	EndRevoked EndReason = "revoked"
)

// EndEvent closes a session's record.
type EndEvent struct {
	// Reason says why the session ended.
	Reason EndReason `json:"reason"`
	// ErrorCode and Message are the FATAL error the client was sent, if any.
	ErrorCode string `json:"error_code,omitempty"`
	Message   string `json:"message,omitempty"`
	// Statements is how many statement events the session had (a Bind of
	// a prepared statement is one).
	Statements int64 `json:"statements"`
}
