package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// Status is where a request stands.
type Status string

// The statuses.
const (
	// StatusPending: filed, nobody decided yet.
	StatusPending Status = "pending"
	// StatusApproved: a person approved it. A deferred approval stays
	// approved while it is valid and has uses left.
	StatusApproved Status = "approved"
	// StatusDenied: a person denied it.
	StatusDenied Status = "denied"
	// StatusWithdrawn: a held request whose wait ended before a decision
	// (the client canceled, the session ended, the timeout passed, the
	// store closed, or the gateway holding it stopped).
	StatusWithdrawn Status = "withdrawn"
	// StatusExpired: a deferred approval past its validity or out of uses.
	// It is never used again.
	StatusExpired Status = "expired"
)

// Record is a request and what became of it. It is a plain value that
// marshals to JSON (for the admin API and the webhook); it never holds a
// secret.
type Record struct {
	// Request is what was asked; Request.ID is the record's id.
	Request policy.ApprovalRequest `json:"request"`
	// Status is where it stands, as of the read.
	Status Status `json:"status"`
	// Fingerprint is Request.Fingerprint(): what a deferred approval
	// approves.
	Fingerprint string `json:"fingerprint"`
	// Approver and ApproverIssuer name the person who decided; Comment is
	// theirs; Decided is when they decided (or when the request was
	// withdrawn).
	Approver       string    `json:"approver,omitempty"`
	ApproverIssuer string    `json:"approver_issuer,omitempty"`
	Comment        string    `json:"comment,omitempty"`
	Decided        time.Time `json:"decided,omitzero"`
	// ValidUntil and UsesLeft, for an approved deferred request: until
	// when, and how many more times, the same statement may run.
	ValidUntil time.Time `json:"valid_until,omitzero"`
	UsesLeft   int       `json:"uses_left,omitempty"`
}

// Grant is a just-in-time grant: an approval of a request whose
// ApprovalSpec.Grant was positive lets the same identity (issuer and
// subject) pass the same rule without asking, from From until Until
// (excluded).
type Grant struct {
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Rule      string    `json:"rule"`
	Approver  string    `json:"approver"`
	From      time.Time `json:"from"`
	Until     time.Time `json:"until"`
}

// activeAt reports whether g is active at t: From <= t < Until.
func (g Grant) activeAt(t time.Time) bool { return !t.Before(g.From) && t.Before(g.Until) }

// Store is an Approver that keeps its requests, for the gateway (which
// calls Approve) and its admin API (which lists and decides). Every method
// is safe for concurrent use.
type Store interface {
	policy.Approver
	// List returns the records whose status is one of statuses (every
	// record when there is none), newest first.
	List(ctx context.Context, statuses ...Status) ([]Record, error)
	// Get returns the record of request id, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)
	// Decide approves (approve true) or denies the pending request id, as
	// approver, with a comment, and returns the decided record. It fails
	// with ErrNotFound, ErrNotPending (the request was decided, withdrawn
	// or expired), ErrSelfApproval or ErrNotAnApprover, and changes
	// nothing then. A held Approve waiting for the request returns at
	// once.
	Decide(ctx context.Context, id string, approve bool, approver session.Identity, comment string) (Record, error)
	// Grants returns the grants active now, newest first.
	Grants(ctx context.Context) ([]Grant, error)
	// Close releases the store's resources. Held Approve calls withdraw
	// their request and return an error wrapping ErrClosed; every later
	// call returns ErrClosed.
	Close() error
}

// The errors of a Store. Use errors.Is: the errors returned wrap them,
// with the request's id or status.
var (
	// ErrNotFound: no request has this id.
	ErrNotFound = errors.New("approval: no such request")
	// ErrNotPending: the request was already decided, withdrawn or
	// expired.
	ErrNotPending = errors.New("approval: the request is not pending")
	// ErrSelfApproval: the approver is the requester, or an actor of the
	// request's delegation chain, and the request's spec does not allow
	// self-approval.
	ErrSelfApproval = errors.New("approval: the requester (or an agent acting in its chain) may not approve its own request")
	// ErrNotAnApprover: the approver is not a member of any group allowed
	// to decide the request (or has no subject).
	ErrNotAnApprover = errors.New("approval: the approver is not allowed to decide this request")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("approval: the store is closed")
)

// Options tune a store; the zero value is ready to use.
type Options struct {
	// Notify, when set, is called with every request filed (pending),
	// every decision (approved, denied) and every withdrawal, by the
	// process that made the change: the gateway's webhook. Calls are made
	// one at a time, in order, from a goroutine of their own: Notify never
	// blocks Approve or Decide (a slow Notify delays only the next
	// notifications). A panic in Notify is logged.
	Notify func(Record)
	// Now returns the current time (for tests); nil means time.Now. The
	// store keeps times to the microsecond, in UTC.
	Now func() time.Time
	// Logger receives what the store cannot return (a failed poll, a
	// dropped listener connection, a panic in Notify). Nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) now() time.Time {
	t := time.Now()
	if o.Now != nil {
		t = o.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// newID returns a random URL-safe id: 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// withdrawn is the error of a held Approve whose ctx ended first.
func withdrawn(cause error) error {
	return fmt.Errorf("%w: %w", policy.ErrApprovalWithdrawn, cause)
}

// checkRequest refuses a request the store cannot file.
func checkRequest(req *policy.ApprovalRequest) error {
	if req == nil {
		return errors.New("approval: nil request")
	}
	if req.Identity.Subject == "" {
		return errors.New("approval: the request has no identity (empty subject)")
	}
	return nil
}

// filed returns the copy of req the store keeps: its own slices, the id
// and (when req has none) the creation time set.
func filed(req *policy.ApprovalRequest, id string, now time.Time) policy.ApprovalRequest {
	r := cloneRequest(*req)
	r.ID = id
	if r.Created.IsZero() {
		r.Created = now
	}
	return r
}

// cloneRequest copies r's slices, so that neither the caller nor the
// store can change the other's copy. (Claims are immutable.)
func cloneRequest(r policy.ApprovalRequest) policy.ApprovalRequest {
	if r.Params != nil {
		ps := make([]*string, len(r.Params))
		for i, p := range r.Params {
			if p != nil {
				v := *p
				ps[i] = &v
			}
		}
		r.Params = ps
	}
	r.Identity.Groups = slices.Clone(r.Identity.Groups)
	r.Identity.Chain = slices.Clone(r.Identity.Chain)
	r.Spec.Approvers = slices.Clone(r.Spec.Approvers)
	return r
}

func cloneRecord(r Record) Record {
	r.Request = cloneRequest(r.Request)
	return r
}

// party is an issuer and subject.
type party struct{ issuer, subject string }

// parties returns id's subject and every actor of its chain; an actor
// without an issuer has the identity's.
func parties(id session.Identity) []party {
	ps := []party{{id.Issuer, id.Subject}}
	for _, a := range id.Chain {
		iss := a.Issuer
		if iss == "" {
			iss = id.Issuer
		}
		ps = append(ps, party{iss, a.Subject})
	}
	return ps
}

// mayDecide checks that approver may decide req (approve says which
// way):
//   - the approver must have a subject;
//   - when the spec names approver groups, the approver must be in one;
//   - to approve, unless the spec allows self-approval, no party of the
//     approver (its subject or an actor of its chain) may be a party of
//     the request's identity (its subject or an actor of its chain):
//     neither the requester nor an agent acting in its chain approves its
//     own request, also not through another subject's delegation.
//
// Denying one's own request is allowed: it only refuses.
func mayDecide(req *policy.ApprovalRequest, approve bool, approver session.Identity) error {
	if approver.Subject == "" {
		return fmt.Errorf("%w: the approver has no subject", ErrNotAnApprover)
	}
	if groups := req.Spec.Approvers; len(groups) > 0 && !slices.ContainsFunc(groups, approver.InGroup) {
		return fmt.Errorf("%w: %s is in none of the groups %s", ErrNotAnApprover, approver.Subject, strings.Join(groups, ", "))
	}
	if approve && !req.Spec.AllowSelfApproval {
		requester := parties(req.Identity)
		for _, p := range parties(approver) {
			if slices.Contains(requester, p) {
				return fmt.Errorf("%w (request %s, approver %s)", ErrSelfApproval, req.ID, p.subject)
			}
		}
	}
	return nil
}

// decision is the ApprovalDecision a decided record gives, and whether
// the record is decided.
func decision(r Record) (policy.ApprovalDecision, bool) {
	d := policy.ApprovalDecision{ID: r.Request.ID, Approver: r.Approver, Comment: r.Comment}
	switch r.Status {
	case StatusApproved:
		d.Outcome = policy.Approved
	case StatusDenied:
		d.Outcome = policy.Denied
	default:
		return policy.ApprovalDecision{}, false
	}
	return d, true
}

// grantDecision is the decision a grant gives.
func grantDecision(g Grant) policy.ApprovalDecision {
	return policy.ApprovalDecision{Outcome: policy.Approved, ID: g.RequestID, Approver: g.Approver,
		Grant: true, GrantUntil: g.Until}
}

// notifier calls Options.Notify one record at a time, in order, from a
// goroutine that runs only while records are queued.
type notifier struct {
	fn  func(Record)
	log *slog.Logger

	mu      sync.Mutex
	queue   []Record
	running bool
}

func newNotifier(opts Options) *notifier {
	return &notifier{fn: opts.Notify, log: opts.logger()}
}

// send queues r for Notify; it never blocks.
func (n *notifier) send(r Record) {
	if n.fn == nil {
		return
	}
	r = cloneRecord(r)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append(n.queue, r)
	if !n.running {
		n.running = true
		go n.run()
	}
}

func (n *notifier) run() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.running = false
			n.queue = nil
			n.mu.Unlock()
			return
		}
		r := n.queue[0]
		n.queue[0] = Record{}
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.call(r)
	}
}

func (n *notifier) call(r Record) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("approval: Notify panicked", "request", r.Request.ID, "status", string(r.Status), "panic", fmt.Sprint(p))
		}
	}()
	n.fn(r)
}
