// Package approval keeps the requests behind policy.Approver: the gateway
// (the proxy) asks a Store to Approve a statement a policy sent for
// approval, and its admin API lists the requests and lets a person Decide
// them.
//
//   - Memory keeps everything in the process: one gateway whose admin API
//     runs in the same process, tests and demos.
//   - Postgres keeps requests and grants in two tables
//     (PostgresOptions.Table, default pgwarden_approvals, and
//     pgwarden_approvals_grants) that several gateways share: a request
//     held by one gateway is decided through any of them, and reaches the
//     held statement at once (LISTEN/NOTIFY, with a poll as a fallback).
//
// Options.Notify is the webhook: it hears of every request filed, every
// decision and every withdrawal.
//
// # Approve
//
// Approve files the request or finds what was decided, and sets req.ID to
// the request filed, found pending or whose approval it used (a grant
// leaves it empty: the decision's ID names the granting request):
//
//   - A grant first: when a person approved a request of the same
//     identity (issuer and subject) and rule whose ApprovalSpec.Grant was
//     positive, and that grant is active (From <= now < Until), Approve
//     returns Approved with Grant set and ID the approved request's,
//     filing nothing.
//   - Defer: Approve returns at once. When a person approved a request
//     with the same Fingerprint that is valid (now < ValidUntil) and has
//     uses left, it uses one and returns Approved with that request's id.
//     An approval out of uses (the last use stores it so) or past its
//     validity reads "expired" and is never used again. Otherwise Approve
//     returns Pending with the id of the pending request of that
//     fingerprint, filing one when there is none: the same statement asked
//     again never files a second request.
//   - Hold: Approve files a pending request and waits for a person's
//     decision (Approved or Denied, with their comment), for at most
//     ApprovalSpec.Timeout (Approve applies it itself). When ctx ends
//     first, it marks the request "withdrawn" and returns an error
//     wrapping policy.ErrApprovalWithdrawn and ctx's error
//     (context.Canceled, or context.DeadlineExceeded for the timeout).
//
// # Guarantees
//
//   - Only a person approves: Approve never approves by itself. Decide
//     refuses an approver without a subject, one outside
//     ApprovalSpec.Approvers (when set; ErrNotAnApprover), and, unless
//     ApprovalSpec.AllowSelfApproval, self-approval (ErrSelfApproval): no
//     party of the approver (its subject or an actor of its delegation
//     chain) may be a party of the request's identity (its subject or an
//     actor of its chain), so neither the requester nor an agent acting
//     in its chain approves its own request. Anyone allowed to decide may
//     deny, the requester included.
//   - One decision: a request leaves "pending" exactly once, atomically
//     (a mutex in Memory; a statement guarded by status = 'pending' in
//     Postgres): two admins never both decide it, and a held request is
//     either decided or withdrawn. A decision that beats the withdrawal
//     of a held request stands: Approve returns it even though ctx ended.
//   - One use per use: a deferred approval's uses are taken atomically;
//     two gateways never both take the last one.
//   - Fail closed: any error of Approve (the database is unreachable, the
//     store is closed) is an error, never an approval.
//   - Secrets: errors and logs never show the connection string or its
//     password. A Record holds what policy.ApprovalRequest holds: the
//     statement, its parameters and the identity, never a credential.
//
// Postgres: a held request of a gateway that stopped (it could not
// withdraw it) reads as withdrawn once its timeout and StaleHoldGrace
// passed, and Decide refuses it. A pending deferred request stays pending
// until someone decides it. Times are the store's clock (Options.Now),
// not the server's: keep the gateways' clocks in step.
//
// # Implementing an Approver
//
// A policy.Approver of your own (a ticketing system, a chat bot) must
// keep the contract of policy.Approver (package policy says how the proxy
// calls it, and what each answer does):
//
//   - Concurrency: Approve is called from many sessions at once; each
//     session waits for its answer.
//   - Fail closed: return an error when in doubt; an error refuses the
//     statement. Never return Approved unless a person (or a grant a
//     person gave) approved that statement for that identity.
//   - Context: ctx ends with the session or the client's cancel request,
//     and for a Hold at ApprovalSpec.Timeout. A held Approve returns when
//     ctx ends, with an error wrapping policy.ErrApprovalWithdrawn and
//     ctx.Err(), and withdraws the request so that nobody approves a
//     statement that will not run.
//   - Deferred approvals are bound to req.Fingerprint(): the identity,
//     database, rule, statement text and parameters.
//   - Self-approval: refuse it unless req.Spec.AllowSelfApproval, also
//     through the delegation chain (session.Identity.Chain).
//
// To put an existing system behind the admin API too, implement Store;
// to build on this package's bookkeeping, wrap a Store (Options.Notify
// tells the other system about new requests, and it decides through
// Decide).
package approval
