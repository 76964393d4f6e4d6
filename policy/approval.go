package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// ApprovalMode says how a statement that needs a person's approval waits
// for it.
type ApprovalMode string

const (
	// Hold: the statement waits on the live session until a person decides
	// (the client sees a slow statement; the server sees nothing yet).
	// Approved, it runs on the same session; denied or timed out, the
	// client gets an error naming why; the client's cancel request
	// withdraws the request.
	Hold ApprovalMode = "hold"
	// Defer: the client gets an error with the request's id at once. Once
	// a person approved it, the same identity may run exactly that
	// statement (same text, same parameters) within ApprovalSpec.Validity,
	// ApprovalSpec.Uses times.
	Defer ApprovalMode = "defer"
)

// Defaults of ApprovalSpec.
const (
	DefaultApprovalTimeout  = 5 * time.Minute
	DefaultApprovalValidity = time.Hour
)

// ApprovalSpec is how an Approve decision is approved. The zero value holds
// the statement for up to DefaultApprovalTimeout, for any approver the
// Approver accepts, without a grant.
type ApprovalSpec struct {
	// Mode is Hold (the default) or Defer.
	Mode ApprovalMode `json:"mode,omitempty"`
	// Timeout is the longest a held statement waits. Zero means
	// DefaultApprovalTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Validity is how long a deferred approval may be used. Zero means
	// DefaultApprovalValidity.
	Validity time.Duration `json:"validity,omitempty"`
	// Uses is how many times a deferred approval may be used. Zero means
	// once.
	Uses int `json:"uses,omitempty"`
	// Approvers are the groups whose members may decide. Empty: any
	// approver the Approver accepts.
	Approvers []string `json:"approvers,omitempty"`
	// Grant, when positive, makes an approval also a just-in-time grant:
	// for this long, the identity passes the same rule without asking.
	Grant time.Duration `json:"grant,omitempty"`
	// AllowSelfApproval lets the requesting identity (or a member of its
	// delegation chain) approve its own request. Off by default.
	AllowSelfApproval bool `json:"allow_self_approval,omitempty"`
}

// Effective returns s with its defaults filled in.
func (s ApprovalSpec) Effective() ApprovalSpec {
	if s.Mode == "" {
		s.Mode = Hold
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultApprovalTimeout
	}
	if s.Validity <= 0 {
		s.Validity = DefaultApprovalValidity
	}
	if s.Uses <= 0 {
		s.Uses = 1
	}
	return s
}

// ApprovalRequest is what a person decides on: what will run, with which
// parameters, for whom, through which chain, and why it needs approval.
// It is a plain value that marshals to JSON; it never holds a secret.
type ApprovalRequest struct {
	// ID names the request; the Approver sets it.
	ID string `json:"id,omitempty"`
	// Session, Database and Identity (with its delegation chain) say
	// where and for whom.
	Session  string           `json:"session"`
	Database string           `json:"database"`
	Identity session.Identity `json:"identity"`
	// Rule and Reason are the policy's.
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
	// SQL is the statement text; Params its bind parameters, as the
	// recording shows them (text as sent; binary as "\\x" and hex; nil
	// for NULL).
	SQL    string    `json:"sql"`
	Params []*string `json:"params,omitempty"`
	// Spec is how it is approved.
	Spec ApprovalSpec `json:"spec"`
	// Created is when the gateway asked.
	Created time.Time `json:"created"`
}

// Fingerprint identifies what is approved: the identity (issuer and
// subject), the database, the rule, the statement text and its parameters.
// A deferred approval is used only by a request with the same fingerprint.
func (r *ApprovalRequest) Fingerprint() string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		for i, l := 0, uint64(len(s)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(r.Identity.Issuer)
	field(r.Identity.Subject)
	field(r.Database)
	field(r.Rule)
	field(r.SQL)
	for _, p := range r.Params {
		if p == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		field(*p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ApprovalOutcome is an Approver's answer.
type ApprovalOutcome string

// The outcomes.
const (
	// Approved: run the statement.
	Approved ApprovalOutcome = "approved"
	// Denied: refuse it, with the approver's comment.
	Denied ApprovalOutcome = "denied"
	// Pending: (Defer) the request is filed under ID; nobody decided yet.
	Pending ApprovalOutcome = "pending"
)

// ApprovalDecision is an Approver's answer about a request.
type ApprovalDecision struct {
	// Outcome is the answer.
	Outcome ApprovalOutcome `json:"outcome"`
	// ID is the request decided (or filed, when Pending), or the request
	// whose approval or grant was used.
	ID string `json:"id,omitempty"`
	// Approver is the subject of the person who decided; Comment is
	// theirs.
	Approver string `json:"approver,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// Grant is set when a just-in-time grant let the request pass;
	// GrantUntil is when the grant ends.
	Grant      bool      `json:"grant,omitempty"`
	GrantUntil time.Time `json:"grant_until,omitzero"`
}

// ErrApprovalWithdrawn is what an Approver returns when ctx ended before a
// decision (the client canceled, the session ended, or the timeout
// passed); it wraps ctx's error.
var ErrApprovalWithdrawn = errors.New("policy: approval request withdrawn")

// Approver decides about statements a policy sends for approval.
//
// Approve files req (setting req.ID) or finds what was decided about it:
//   - When a grant for the identity and req.Rule is active, it returns
//     Approved with Grant set, at once.
//   - With Mode Defer, it returns at once: Approved when a person approved
//     a request with the same Fingerprint that is still valid and has uses
//     left (using one), otherwise Pending with the id of the filed (or
//     already pending) request.
//   - With Mode Hold, it blocks until a person decides (Approved or
//     Denied) or ctx ends; then it withdraws the request and returns an
//     error wrapping ErrApprovalWithdrawn and ctx's error.
//
// The contract: Approve is called from many sessions at once; it never
// approves by itself (only a person, or a grant a person gave, does); an
// error other than a withdrawal refuses the statement (fail closed).
//
// See the package documentation for how the proxy calls it.
type Approver interface {
	// Approve files req, or finds what was decided about it, as above.
	Approve(ctx context.Context, req *ApprovalRequest) (ApprovalDecision, error)
}

// ApproverFunc adapts a function to an Approver.
type ApproverFunc func(ctx context.Context, req *ApprovalRequest) (ApprovalDecision, error)

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, req *ApprovalRequest) (ApprovalDecision, error) {
	return f(ctx, req)
}
