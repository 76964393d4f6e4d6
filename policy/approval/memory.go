package approval

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

var _ Store = (*Memory)(nil)

// Memory is a Store that keeps its requests and grants in memory: for one
// gateway whose admin API runs in the same process, for tests and for
// demos. Requests are lost when the process ends (held ones with it), and
// every record is kept until then. Memory is safe for concurrent use.
type Memory struct {
	opts   Options
	notify *notifier

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close
	seq    int64
	recs   map[string]*memRecord
	byFP   map[string][]*memRecord // deferred records that may still be used, by fingerprint
	grants []Grant
}

// memRecord is a record as Memory keeps it.
type memRecord struct {
	rec  Record
	seq  int64
	mode policy.ApprovalMode
	// settled is closed once the record leaves pending (decided or
	// withdrawn): it wakes the held Approve.
	settled chan struct{}
}

// NewMemory returns an empty Memory store.
func NewMemory(opts Options) *Memory {
	return &Memory{opts: opts, notify: newNotifier(opts), done: make(chan struct{}),
		recs: map[string]*memRecord{}, byFP: map[string][]*memRecord{}}
}

// status is r's status at now: an approved deferred request past its
// validity is expired.
func (r *memRecord) status(now time.Time) Status {
	if r.rec.Status == StatusApproved && !r.rec.ValidUntil.IsZero() && !now.Before(r.rec.ValidUntil) {
		return StatusExpired
	}
	return r.rec.Status
}

// read returns a copy of r with its status at now.
func (r *memRecord) read(now time.Time) Record {
	out := cloneRecord(r.rec)
	out.Status = r.status(now)
	return out
}

// Approve implements policy.Approver; see the package documentation.
func (m *Memory) Approve(ctx context.Context, req *policy.ApprovalRequest) (policy.ApprovalDecision, error) {
	if err := checkRequest(req); err != nil {
		return policy.ApprovalDecision{}, err
	}
	if err := ctx.Err(); err != nil {
		return policy.ApprovalDecision{}, withdrawn(err)
	}
	spec := req.Spec.Effective()
	if spec.Mode != policy.Hold && spec.Mode != policy.Defer {
		return policy.ApprovalDecision{}, fmt.Errorf("approval: unknown approval mode %q", spec.Mode)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return policy.ApprovalDecision{}, ErrClosed
	}
	now := m.opts.now()
	if g, ok := m.activeGrant(req.Identity.Issuer, req.Identity.Subject, req.Rule, now); ok {
		m.mu.Unlock()
		return grantDecision(g), nil
	}
	fp := req.Fingerprint()
	if spec.Mode == policy.Defer {
		d, rec, isNew := m.deferLocked(req, fp, now)
		m.mu.Unlock()
		if isNew {
			m.notify.send(rec)
		}
		return d, nil
	}
	r := m.fileLocked(req, fp, spec.Mode, now)
	rec := r.read(now)
	m.mu.Unlock()
	m.notify.send(rec)
	return m.hold(ctx, r, spec.Timeout)
}

// deferLocked uses a valid approval of fingerprint fp, or finds the
// pending request, or files req. isNew says req was filed (rec is its
// record).
func (m *Memory) deferLocked(req *policy.ApprovalRequest, fp string, now time.Time) (d policy.ApprovalDecision, rec Record, isNew bool) {
	var use, pending *memRecord
	live := m.byFP[fp][:0]
	for _, r := range m.byFP[fp] {
		switch r.status(now) {
		case StatusPending:
			pending = r
		case StatusApproved:
			if r.rec.UsesLeft > 0 && (use == nil || r.rec.ValidUntil.Before(use.rec.ValidUntil)) {
				use = r
			}
		default:
			continue // denied or expired: never used again
		}
		live = append(live, r)
	}
	clear(m.byFP[fp][len(live):])
	if len(live) == 0 {
		delete(m.byFP, fp)
	} else {
		m.byFP[fp] = live
	}
	switch {
	case use != nil:
		use.rec.UsesLeft--
		if use.rec.UsesLeft == 0 {
			use.rec.Status = StatusExpired
		}
		req.ID = use.rec.Request.ID
		return policy.ApprovalDecision{Outcome: policy.Approved, ID: req.ID, Approver: use.rec.Approver, Comment: use.rec.Comment},
			Record{}, false
	case pending != nil:
		req.ID = pending.rec.Request.ID
		return policy.ApprovalDecision{Outcome: policy.Pending, ID: req.ID}, Record{}, false
	}
	r := m.fileLocked(req, fp, policy.Defer, now)
	m.byFP[fp] = append(m.byFP[fp], r)
	return policy.ApprovalDecision{Outcome: policy.Pending, ID: req.ID}, r.read(now), true
}

// fileLocked files req as a pending request and sets req.ID.
func (m *Memory) fileLocked(req *policy.ApprovalRequest, fp string, mode policy.ApprovalMode, now time.Time) *memRecord {
	id := newID()
	m.seq++
	r := &memRecord{rec: Record{Request: filed(req, id, now), Status: StatusPending, Fingerprint: fp},
		seq: m.seq, mode: mode, settled: make(chan struct{})}
	m.recs[id] = r
	req.ID = id
	return r
}

// hold waits until r is decided, ctx ends, timeout passes or the store
// closes.
func (m *Memory) hold(ctx context.Context, r *memRecord, timeout time.Duration) (policy.ApprovalDecision, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cause error
	select {
	case <-r.settled:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-m.done:
		cause = ErrClosed
	}
	m.mu.Lock()
	now := m.opts.now()
	if r.rec.Status == StatusPending {
		// Withdraw it: nobody decided in time (checked and changed under
		// the lock, so a decision either came first or never comes).
		r.rec.Status, r.rec.Decided = StatusWithdrawn, now
		close(r.settled)
	} else if d, ok := decision(r.rec); ok {
		m.mu.Unlock()
		return d, nil
	} else {
		// Withdrawn already (not by us: cannot happen in Memory).
		cause = fmt.Errorf("request %s was withdrawn", r.rec.Request.ID)
	}
	rec := r.read(now)
	m.mu.Unlock()
	m.notify.send(rec)
	if cause == ErrClosed {
		return policy.ApprovalDecision{}, fmt.Errorf("%w: request %s withdrawn", ErrClosed, rec.Request.ID)
	}
	return policy.ApprovalDecision{}, withdrawn(cause)
}

// activeGrant returns the active grant for (issuer, subject, rule) at now
// that lasts longest, dropping the grants that ended.
func (m *Memory) activeGrant(issuer, subject, rule string, now time.Time) (Grant, bool) {
	m.grants = slices.DeleteFunc(m.grants, func(g Grant) bool { return !now.Before(g.Until) })
	var best Grant
	found := false
	for _, g := range m.grants {
		if g.Issuer == issuer && g.Subject == subject && g.Rule == rule && g.activeAt(now) &&
			(!found || g.Until.After(best.Until)) {
			best, found = g, true
		}
	}
	return best, found
}

// List implements Store.
func (m *Memory) List(ctx context.Context, statuses ...Status) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.opts.now()
	rs := make([]*memRecord, 0, len(m.recs))
	for _, r := range m.recs {
		if len(statuses) == 0 || slices.Contains(statuses, r.status(now)) {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *memRecord) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = r.read(now)
	}
	return out, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Record{}, ErrClosed
	}
	r, ok := m.recs[id]
	if !ok {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r.read(m.opts.now()), nil
}

// Decide implements Store.
func (m *Memory) Decide(ctx context.Context, id string, approve bool, approver session.Identity, comment string) (Record, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Record{}, ErrClosed
	}
	r, ok := m.recs[id]
	if !ok {
		m.mu.Unlock()
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	now := m.opts.now()
	if st := r.status(now); st != StatusPending {
		m.mu.Unlock()
		return Record{}, fmt.Errorf("%w: request %s is %s", ErrNotPending, id, st)
	}
	if err := mayDecide(&r.rec.Request, approve, approver); err != nil {
		m.mu.Unlock()
		return Record{}, err
	}
	r.rec.Approver, r.rec.ApproverIssuer, r.rec.Comment, r.rec.Decided = approver.Subject, approver.Issuer, comment, now
	r.rec.Status = StatusDenied
	if approve {
		r.rec.Status = StatusApproved
		spec := r.rec.Request.Spec.Effective()
		if r.mode == policy.Defer {
			r.rec.ValidUntil, r.rec.UsesLeft = now.Add(spec.Validity), spec.Uses
		}
		if spec.Grant > 0 {
			m.grants = append(m.grants, Grant{ID: newID(), RequestID: id, Subject: r.rec.Request.Identity.Subject,
				Issuer: r.rec.Request.Identity.Issuer, Rule: r.rec.Request.Rule, Approver: approver.Subject,
				From: now, Until: now.Add(spec.Grant)})
		}
	}
	close(r.settled)
	rec := r.read(now)
	m.mu.Unlock()
	m.notify.send(rec)
	return rec, nil
}

// Grants implements Store.
func (m *Memory) Grants(ctx context.Context) ([]Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.opts.now()
	var out []Grant
	for _, g := range m.grants {
		if g.activeAt(now) {
			out = append(out, g)
		}
	}
	slices.SortStableFunc(out, func(a, b Grant) int { return b.From.Compare(a.From) })
	return out, nil
}

// Close implements Store: held Approve calls withdraw their request and
// return an error wrapping ErrClosed. It always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	return nil
}
