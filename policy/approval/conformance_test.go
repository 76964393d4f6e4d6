package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/session"
)

// t0 is where every test clock starts.
var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// notes collects what Notify was called with.
type notes struct {
	mu   sync.Mutex
	recs []approval.Record
}

func (n *notes) add(r approval.Record) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recs = append(n.recs, r)
}

func (n *notes) all() []approval.Record {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.recs)
}

// statuses returns the statuses notified for request id, in order.
func (n *notes) statuses(id string) []approval.Status {
	var out []approval.Status
	for _, r := range n.all() {
		if r.Request.ID == id {
			out = append(out, r.Status)
		}
	}
	return out
}

// waitStatuses waits (up to 10 s) until request id was notified with
// want, in order.
func (n *notes) waitStatuses(t *testing.T, id string, want ...approval.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := n.statuses(id)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications of %s: %v, want %v", id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const idp = "https://idp.example"

var (
	alice = session.Identity{Subject: "alice", Issuer: idp, Groups: []string{"dev"}}
	bob   = session.Identity{Subject: "bob", Issuer: idp, Groups: []string{"dba"}}
	carol = session.Identity{Subject: "carol", Issuer: idp, Groups: []string{"dev"}}
	// viaAgent is alice through an agent (whose issuer is the token's).
	viaAgent = session.Identity{Subject: "alice", Issuer: idp, Groups: []string{"dev"},
		Chain: []session.Actor{{Subject: "copilot"}}}
)

var (
	hold    = policy.ApprovalSpec{Mode: policy.Hold}
	deferIt = policy.ApprovalSpec{Mode: policy.Defer}
)

func request(id session.Identity, spec policy.ApprovalSpec, sql string, params ...string) *policy.ApprovalRequest {
	var ps []*string
	for _, p := range params {
		ps = append(ps, &p)
	}
	return &policy.ApprovalRequest{Session: "s-1", Database: "app", Identity: id, Rule: "writes",
		Reason: "writes need a second pair of eyes", SQL: sql, Params: ps, Spec: spec, Created: t0}
}

// opener opens a fresh, empty store for t with opts, closed when t ends.
type opener func(t *testing.T, opts approval.Options) approval.Store

// env is one subtest's store with its clock and notifications.
type env struct {
	t     *testing.T
	s     approval.Store
	clock *clock
	notes *notes
	ctx   context.Context
}

func newEnv(t *testing.T, open opener) *env {
	c, n := newClock(), &notes{}
	return &env{t: t, s: open(t, approval.Options{Now: c.Now, Notify: n.add}), clock: c, notes: n, ctx: testContext(t)}
}

type result struct {
	d   policy.ApprovalDecision
	err error
}

// approveAsync calls Approve in a goroutine.
func (e *env) approveAsync(ctx context.Context, req *policy.ApprovalRequest) <-chan result {
	ch := make(chan result, 1)
	go func() {
		d, err := e.s.Approve(ctx, req)
		ch <- result{d, err}
	}()
	return ch
}

// await waits (up to 10 s) for an Approve's result.
func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Approve did not return")
		return result{}
	}
}

// waitPending waits until n requests are pending and returns them.
func (e *env) waitPending(n int) []approval.Record {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := e.s.List(e.ctx, approval.StatusPending)
		if err != nil {
			e.t.Fatalf("List: %v", err)
		}
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d pending requests, want %d", len(rs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) approve(req *policy.ApprovalRequest) policy.ApprovalDecision {
	e.t.Helper()
	d, err := e.s.Approve(e.ctx, req)
	if err != nil {
		e.t.Fatalf("Approve: %v", err)
	}
	return d
}

func (e *env) decide(id string, approve bool, who session.Identity, comment string) approval.Record {
	e.t.Helper()
	r, err := e.s.Decide(e.ctx, id, approve, who, comment)
	if err != nil {
		e.t.Fatalf("Decide(%s): %v", id, err)
	}
	return r
}

func (e *env) get(id string) approval.Record {
	e.t.Helper()
	r, err := e.s.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func (e *env) count() int {
	e.t.Helper()
	rs, err := e.s.List(e.ctx)
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	return len(rs)
}

func wantOutcome(t *testing.T, d policy.ApprovalDecision, want policy.ApprovalOutcome) {
	t.Helper()
	if d.Outcome != want {
		t.Fatalf("outcome %q (%+v), want %q", d.Outcome, d, want)
	}
}

// testStore is the conformance suite: every Store must pass it.
func testStore(t *testing.T, open opener) {
	t.Run("HoldApproved", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		req := request(alice, hold, "DELETE FROM orders WHERE id = $1", "42")
		ch := e.approveAsync(e.ctx, req)
		p := e.waitPending(1)[0]
		if p.Request.SQL != req.SQL || p.Request.Identity.Subject != "alice" || p.Fingerprint != req.Fingerprint() ||
			len(p.Request.Params) != 1 || *p.Request.Params[0] != "42" || !p.Request.Created.Equal(t0) || p.Request.ID == "" {
			t.Fatalf("pending record: %+v", p)
		}
		e.clock.Advance(time.Minute)
		rec := e.decide(p.Request.ID, true, bob, "looks fine")
		if rec.Status != approval.StatusApproved || rec.Approver != "bob" || rec.ApproverIssuer != idp ||
			rec.Comment != "looks fine" || !rec.Decided.Equal(t0.Add(time.Minute)) || rec.Request.ID != p.Request.ID {
			t.Fatalf("decided record: %+v", rec)
		}
		r := await(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := policy.ApprovalDecision{Outcome: policy.Approved, ID: p.Request.ID, Approver: "bob", Comment: "looks fine"}
		if !reflect.DeepEqual(r.d, want) {
			t.Fatalf("decision %+v, want %+v", r.d, want)
		}
		if req.ID != p.Request.ID {
			t.Errorf("req.ID = %q, want %q", req.ID, p.Request.ID)
		}
		if got := e.get(p.Request.ID); got.Status != approval.StatusApproved || got.Approver != "bob" {
			t.Errorf("Get: %+v", got)
		}
		e.notes.waitStatuses(t, p.Request.ID, approval.StatusPending, approval.StatusApproved)
	})

	t.Run("HoldDenied", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		ch := e.approveAsync(e.ctx, request(alice, hold, "DROP TABLE orders"))
		id := e.waitPending(1)[0].Request.ID
		e.decide(id, false, bob, "not on a Friday")
		r := await(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := policy.ApprovalDecision{Outcome: policy.Denied, ID: id, Approver: "bob", Comment: "not on a Friday"}
		if !reflect.DeepEqual(r.d, want) {
			t.Fatalf("decision %+v, want %+v", r.d, want)
		}
		if got := e.get(id); got.Status != approval.StatusDenied || got.Comment != "not on a Friday" {
			t.Errorf("Get: %+v", got)
		}
		e.notes.waitStatuses(t, id, approval.StatusPending, approval.StatusDenied)
	})

	t.Run("HoldWithdrawnOnCancel", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		ctx, cancel := context.WithCancel(e.ctx)
		ch := e.approveAsync(ctx, request(alice, hold, "TRUNCATE orders"))
		id := e.waitPending(1)[0].Request.ID
		cancel()
		r := await(t, ch)
		if !errors.Is(r.err, policy.ErrApprovalWithdrawn) || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Approve: %+v, %v; want withdrawn, canceled", r.d, r.err)
		}
		if r.d.Outcome != "" {
			t.Errorf("decision with the error: %+v", r.d)
		}
		if got := e.get(id); got.Status != approval.StatusWithdrawn {
			t.Errorf("status %q, want withdrawn", got.Status)
		}
		if _, err := e.s.Decide(e.ctx, id, true, bob, "too late"); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("Decide after the withdrawal: %v, want ErrNotPending", err)
		}
		e.notes.waitStatuses(t, id, approval.StatusPending, approval.StatusWithdrawn)
	})

	t.Run("DecisionRacesCancel", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		approved := 0
		for i := range 20 {
			ctx, cancel := context.WithCancel(e.ctx)
			ch := e.approveAsync(ctx, request(alice, hold, fmt.Sprintf("DELETE FROM t%d", i)))
			id := e.waitPending(1)[0].Request.ID
			var decideErr error
			var wg sync.WaitGroup
			wg.Go(func() { _, decideErr = e.s.Decide(e.ctx, id, true, bob, "") })
			cancel()
			wg.Wait()
			r := await(t, ch)
			rec := e.get(id)
			switch {
			case decideErr == nil:
				// The decision came first: it stands.
				approved++
				if r.err != nil || r.d.Outcome != policy.Approved || rec.Status != approval.StatusApproved {
					t.Fatalf("decided first, but Approve returned %+v, %v and the record is %s", r.d, r.err, rec.Status)
				}
			case errors.Is(decideErr, approval.ErrNotPending):
				if !errors.Is(r.err, policy.ErrApprovalWithdrawn) || rec.Status != approval.StatusWithdrawn {
					t.Fatalf("withdrawn first, but Approve returned %+v, %v and the record is %s", r.d, r.err, rec.Status)
				}
			default:
				t.Fatal(decideErr)
			}
		}
		t.Logf("%d of 20 decided before the withdrawal", approved)
	})

	t.Run("DeferIgnoresHeld", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		ch := e.approveAsync(e.ctx, request(alice, hold, "DELETE FROM orders"))
		held := e.waitPending(1)[0].Request.ID
		d := e.approve(request(alice, deferIt, "DELETE FROM orders"))
		if d.Outcome != policy.Pending || d.ID == held {
			t.Fatalf("deferred: %+v; want its own request, not the held %s", d, held)
		}
		e.decide(held, true, bob, "")
		await(t, ch)
		// The held approval was for the held statement only.
		if d2 := e.approve(request(alice, deferIt, "DELETE FROM orders")); d2.Outcome != policy.Pending || d2.ID != d.ID {
			t.Fatalf("after the held approval: %+v, want still pending %s", d2, d.ID)
		}
	})

	t.Run("HoldTimeout", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Hold, Timeout: 200 * time.Millisecond}
		start := time.Now()
		d, err := e.s.Approve(e.ctx, request(alice, spec, "TRUNCATE orders"))
		if !errors.Is(err, policy.ErrApprovalWithdrawn) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Approve: %+v, %v; want withdrawn, deadline exceeded", d, err)
		}
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("returned after %v, before the timeout", el)
		}
		rs, err := e.s.List(e.ctx, approval.StatusWithdrawn)
		if err != nil || len(rs) != 1 {
			t.Fatalf("withdrawn: %v, %v", rs, err)
		}
	})

	t.Run("CanceledBeforeFiling", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		for _, spec := range []policy.ApprovalSpec{hold, deferIt} {
			if _, err := e.s.Approve(ctx, request(alice, spec, "SELECT 1")); !errors.Is(err, policy.ErrApprovalWithdrawn) ||
				!errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", spec.Mode, err)
			}
		}
		if n := e.count(); n != 0 {
			t.Errorf("%d requests filed", n)
		}
	})

	t.Run("InvalidRequest", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		if _, err := e.s.Approve(e.ctx, request(session.Identity{}, deferIt, "SELECT 1")); err == nil {
			t.Error("a request without an identity was filed")
		}
		if _, err := e.s.Approve(e.ctx, request(alice, policy.ApprovalSpec{Mode: "later"}, "SELECT 1")); err == nil {
			t.Error("a request with an unknown mode was filed")
		}
		if n := e.count(); n != 0 {
			t.Errorf("%d requests filed", n)
		}
	})

	t.Run("DeferOnce", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		sql := "UPDATE accounts SET balance = $1 WHERE id = $2"
		req := request(alice, deferIt, sql, "100", "7")
		d := e.approve(req)
		wantOutcome(t, d, policy.Pending)
		id := d.ID
		if id == "" || req.ID != id {
			t.Fatalf("pending id %q, req.ID %q", id, req.ID)
		}
		// Asked again: the same request, not a second one.
		again := request(alice, deferIt, sql, "100", "7")
		if d := e.approve(again); d.Outcome != policy.Pending || d.ID != id || again.ID != id {
			t.Fatalf("again: %+v (req.ID %q), want pending %s", d, again.ID, id)
		}
		if n := e.count(); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		rec := e.decide(id, true, bob, "once")
		if rec.Status != approval.StatusApproved || rec.UsesLeft != 1 || !rec.ValidUntil.Equal(t0.Add(policy.DefaultApprovalValidity)) {
			t.Fatalf("approved record: %+v", rec)
		}
		// The approved statement runs once.
		d = e.approve(request(alice, deferIt, sql, "100", "7"))
		want := policy.ApprovalDecision{Outcome: policy.Approved, ID: id, Approver: "bob", Comment: "once"}
		if !reflect.DeepEqual(d, want) {
			t.Fatalf("after the approval: %+v, want %+v", d, want)
		}
		if got := e.get(id); got.Status != approval.StatusExpired || got.UsesLeft != 0 {
			t.Errorf("used up: %+v", got)
		}
		// Out of uses: a new request.
		d = e.approve(request(alice, deferIt, sql, "100", "7"))
		if d.Outcome != policy.Pending || d.ID == id || d.ID == "" {
			t.Fatalf("out of uses: %+v, want a new pending request", d)
		}
		if _, err := e.s.Decide(e.ctx, id, true, bob, ""); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("Decide of the used approval: %v", err)
		}
		e.notes.waitStatuses(t, id, approval.StatusPending, approval.StatusApproved)
		e.notes.waitStatuses(t, d.ID, approval.StatusPending)
	})

	t.Run("DeferUses", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Defer, Uses: 3}
		id := e.approve(request(alice, spec, "DELETE FROM sessions")).ID
		e.decide(id, true, bob, "")
		for left := 2; left >= 0; left-- {
			d := e.approve(request(alice, spec, "DELETE FROM sessions"))
			if d.Outcome != policy.Approved || d.ID != id {
				t.Fatalf("use %d: %+v", 3-left, d)
			}
			if got := e.get(id); got.UsesLeft != left {
				t.Errorf("after use %d: %d uses left, want %d", 3-left, got.UsesLeft, left)
			}
		}
		wantOutcome(t, e.approve(request(alice, spec, "DELETE FROM sessions")), policy.Pending)
	})

	t.Run("DeferFingerprint", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		sql := "UPDATE accounts SET balance = $1 WHERE id = $2"
		id := e.approve(request(alice, deferIt, sql, "100", "7")).ID
		e.decide(id, true, bob, "")
		other := []*policy.ApprovalRequest{
			request(alice, deferIt, sql, "1000000", "7"),                           // another parameter
			request(alice, deferIt, sql, "100"),                                    // fewer
			request(alice, deferIt, "UPDATE accounts SET balance = 0", "100", "7"), // another statement
			request(carol, deferIt, sql, "100", "7"),                               // another subject
			request(session.Identity{Subject: "alice", Issuer: "https://other.example"}, deferIt, sql, "100", "7"),
		}
		db := request(alice, deferIt, sql, "100", "7")
		db.Database = "billing"
		rule := request(alice, deferIt, sql, "100", "7")
		rule.Rule = "other-rule"
		nullParam := request(alice, deferIt, sql, "100")
		nullParam.Params = append(nullParam.Params, nil)
		other = append(other, db, rule, nullParam)
		for i, req := range other {
			d := e.approve(req)
			if d.Outcome != policy.Pending || d.ID == id {
				t.Errorf("request %d (fingerprint %s): %+v, want a new pending request", i, req.Fingerprint(), d)
			}
		}
		// The approval is still there for the right statement.
		if d := e.approve(request(alice, deferIt, sql, "100", "7")); d.Outcome != policy.Approved || d.ID != id {
			t.Errorf("the approved statement: %+v", d)
		}
	})

	t.Run("DeferValidity", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Defer, Uses: 5, Validity: 10 * time.Minute}
		id := e.approve(request(alice, spec, "VACUUM FULL orders")).ID
		e.clock.Advance(time.Hour) // pending requests do not expire
		rec := e.decide(id, true, bob, "")
		if want := t0.Add(time.Hour + 10*time.Minute); !rec.ValidUntil.Equal(want) || rec.UsesLeft != 5 {
			t.Fatalf("approved: valid until %v with %d uses, want %v and 5", rec.ValidUntil, rec.UsesLeft, want)
		}
		e.clock.Advance(10*time.Minute - time.Microsecond)
		if d := e.approve(request(alice, spec, "VACUUM FULL orders")); d.Outcome != policy.Approved || d.ID != id {
			t.Fatalf("just before the end: %+v", d)
		}
		e.clock.Advance(time.Microsecond)
		d := e.approve(request(alice, spec, "VACUUM FULL orders"))
		if d.Outcome != policy.Pending || d.ID == id {
			t.Fatalf("at the end: %+v, want a new pending request", d)
		}
		if got := e.get(id); got.Status != approval.StatusExpired || got.UsesLeft != 4 {
			t.Errorf("expired record: %+v", got)
		}
		rs, err := e.s.List(e.ctx, approval.StatusExpired)
		if err != nil || len(rs) != 1 || rs[0].Request.ID != id {
			t.Errorf("List(expired): %v, %v", rs, err)
		}
		rs, err = e.s.List(e.ctx, approval.StatusApproved)
		if err != nil || len(rs) != 0 {
			t.Errorf("List(approved): %v, %v", rs, err)
		}
	})

	t.Run("DeferDenied", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		id := e.approve(request(alice, deferIt, "DELETE FROM audit")).ID
		e.decide(id, false, bob, "never")
		d := e.approve(request(alice, deferIt, "DELETE FROM audit"))
		if d.Outcome != policy.Pending || d.ID == id {
			t.Fatalf("after a denial: %+v, want a new pending request", d)
		}
	})

	t.Run("SelfApproval", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		refused := []struct {
			name      string
			requester session.Identity
			approver  session.Identity
		}{
			{"the subject", alice, session.Identity{Subject: "alice", Issuer: idp, Groups: []string{"dba"}}},
			{"an agent of the chain", viaAgent, session.Identity{Subject: "copilot", Issuer: idp}},
			{"the subject of a chain", viaAgent, alice},
			{"the chain's agent for another subject", viaAgent,
				session.Identity{Subject: "bob", Issuer: idp, Chain: []session.Actor{{Subject: "copilot", Issuer: idp}}}},
			{"the requester through an agent", alice,
				session.Identity{Subject: "alice", Issuer: idp, Chain: []session.Actor{{Subject: "approver-bot", Issuer: idp}}}},
		}
		for _, c := range refused {
			id := e.approve(request(c.requester, deferIt, "DELETE FROM orders -- "+c.name)).ID
			if _, err := e.s.Decide(e.ctx, id, true, c.approver, ""); !errors.Is(err, approval.ErrSelfApproval) {
				t.Errorf("%s: %v, want ErrSelfApproval", c.name, err)
			}
			if got := e.get(id); got.Status != approval.StatusPending || got.Approver != "" {
				t.Errorf("%s: refused, but the record is %+v", c.name, got)
			}
			// Denying one's own request is fine.
			if _, err := e.s.Decide(e.ctx, id, false, c.approver, "never mind"); err != nil {
				t.Errorf("%s: deny: %v", c.name, err)
			}
		}
		// Same subject from another issuer is someone else.
		id := e.approve(request(alice, deferIt, "DELETE FROM orders")).ID
		e.decide(id, true, session.Identity{Subject: "alice", Issuer: "https://other.example"}, "")
		// Allowed by the spec.
		self := policy.ApprovalSpec{Mode: policy.Defer, AllowSelfApproval: true}
		id = e.approve(request(viaAgent, self, "DELETE FROM carts")).ID
		if rec := e.decide(id, true, session.Identity{Subject: "copilot", Issuer: idp}, "mine"); rec.Approver != "copilot" {
			t.Errorf("self-approved: %+v", rec)
		}
	})

	t.Run("Approvers", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Defer, Approvers: []string{"dba", "sre"}}
		id := e.approve(request(alice, spec, "ALTER TABLE orders DROP COLUMN note")).ID
		for _, who := range []session.Identity{carol, {Issuer: idp, Groups: []string{"dba"}}} {
			for _, approve := range []bool{true, false} {
				if _, err := e.s.Decide(e.ctx, id, approve, who, ""); !errors.Is(err, approval.ErrNotAnApprover) {
					t.Errorf("%q (approve %v): %v, want ErrNotAnApprover", who.Subject, approve, err)
				}
			}
		}
		if got := e.get(id); got.Status != approval.StatusPending {
			t.Fatalf("refused, but the record is %+v", got)
		}
		sre := session.Identity{Subject: "dave", Issuer: idp, Groups: []string{"oncall", "sre"}}
		if rec := e.decide(id, true, sre, ""); rec.Approver != "dave" {
			t.Errorf("approved: %+v", rec)
		}
		// Without Approvers, anyone may decide (but no approver without a
		// subject).
		id = e.approve(request(alice, deferIt, "ALTER TABLE carts DROP COLUMN note")).ID
		if _, err := e.s.Decide(e.ctx, id, true, session.Identity{}, ""); !errors.Is(err, approval.ErrNotAnApprover) {
			t.Errorf("no subject: %v", err)
		}
		e.decide(id, true, carol, "")
	})

	t.Run("Grant", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Defer, Grant: time.Hour}
		id := e.approve(request(viaAgent, spec, "UPDATE orders SET state = 'paid' WHERE id = 1")).ID
		if gs, err := e.s.Grants(e.ctx); err != nil || len(gs) != 0 {
			t.Fatalf("grants before the approval: %v, %v", gs, err)
		}
		e.clock.Advance(time.Minute)
		e.decide(id, true, bob, "for the migration")
		gs, err := e.s.Grants(e.ctx)
		if err != nil || len(gs) != 1 {
			t.Fatalf("Grants: %v, %v", gs, err)
		}
		from := t0.Add(time.Minute)
		g := gs[0]
		if g.ID == "" || g.RequestID != id || g.Subject != "alice" || g.Issuer != idp || g.Rule != "writes" ||
			g.Approver != "bob" || !g.From.Equal(from) || !g.Until.Equal(from.Add(time.Hour)) {
			t.Fatalf("grant: %+v", g)
		}
		filed := e.count()
		want := policy.ApprovalDecision{Outcome: policy.Approved, ID: id, Approver: "bob", Grant: true, GrantUntil: from.Add(time.Hour)}
		// Any statement of the rule, held or deferred, for the identity.
		for _, req := range []*policy.ApprovalRequest{
			request(alice, hold, "DELETE FROM orders WHERE id = 2"),
			request(viaAgent, deferIt, "UPDATE orders SET state = 'void'"),
		} {
			if d := e.approve(req); !reflect.DeepEqual(d, want) {
				t.Errorf("%s: %+v, want %+v", req.SQL, d, want)
			}
			if req.ID != "" {
				t.Errorf("a grant set req.ID to %q", req.ID)
			}
		}
		if n := e.count(); n != filed {
			t.Errorf("a grant filed requests: %d, want %d", n, filed)
		}
		// Not another rule, not another subject.
		otherRule := request(alice, deferIt, "DELETE FROM orders")
		otherRule.Rule = "deletes"
		wantOutcome(t, e.approve(otherRule), policy.Pending)
		wantOutcome(t, e.approve(request(carol, deferIt, "DELETE FROM orders")), policy.Pending)
		// Until its end.
		e.clock.Advance(time.Hour - time.Microsecond)
		if d := e.approve(request(alice, deferIt, "SELECT 2")); !d.Grant {
			t.Errorf("just before the end: %+v", d)
		}
		e.clock.Advance(time.Microsecond)
		if d := e.approve(request(alice, deferIt, "SELECT 2")); d.Grant || d.Outcome != policy.Pending {
			t.Errorf("at the end: %+v, want pending", d)
		}
		if gs, err := e.s.Grants(e.ctx); err != nil || len(gs) != 0 {
			t.Errorf("grants after the end: %v, %v", gs, err)
		}
	})

	t.Run("HoldGrant", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		spec := policy.ApprovalSpec{Mode: policy.Hold, Grant: time.Minute}
		ch := e.approveAsync(e.ctx, request(alice, spec, "DELETE FROM orders WHERE id = 1"))
		id := e.waitPending(1)[0].Request.ID
		e.decide(id, true, bob, "")
		if r := await(t, ch); r.err != nil || r.d.Outcome != policy.Approved || r.d.Grant {
			t.Fatalf("held request: %+v, %v", r.d, r.err)
		}
		if d := e.approve(request(alice, spec, "DELETE FROM orders WHERE id = 2")); !d.Grant || d.ID != id {
			t.Fatalf("next statement: %+v", d)
		}
		// A denial grants nothing.
		ch = e.approveAsync(e.ctx, request(carol, spec, "DELETE FROM orders WHERE id = 3"))
		id = e.waitPending(1)[0].Request.ID
		e.decide(id, false, bob, "")
		await(t, ch)
		if gs, err := e.s.Grants(e.ctx); err != nil || len(gs) != 1 || gs[0].Subject != "alice" {
			t.Errorf("grants: %v, %v", gs, err)
		}
	})

	t.Run("ListGet", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		var ids []string
		for _, sql := range []string{"SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"} {
			e.clock.Advance(time.Second)
			ids = append(ids, e.approve(request(alice, deferIt, sql)).ID)
		}
		e.decide(ids[1], true, bob, "")
		e.decide(ids[2], false, bob, "")
		all, err := e.s.List(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range all {
			got = append(got, r.Request.ID)
		}
		if want := []string{ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
			t.Fatalf("List() = %v, want newest first %v", got, want)
		}
		for _, c := range []struct {
			statuses []approval.Status
			want     []string
		}{
			{[]approval.Status{approval.StatusPending}, []string{ids[3], ids[0]}},
			{[]approval.Status{approval.StatusApproved, approval.StatusDenied}, []string{ids[2], ids[1]}},
			{[]approval.Status{approval.StatusWithdrawn}, nil},
		} {
			rs, err := e.s.List(e.ctx, c.statuses...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				if !slices.Contains(c.statuses, r.Status) {
					t.Errorf("List(%v) returned a %s record", c.statuses, r.Status)
				}
				got = append(got, r.Request.ID)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("List(%v) = %v, want %v", c.statuses, got, c.want)
			}
		}
		r := e.get(ids[0])
		if r.Request.ID != ids[0] || r.Request.SQL != "SELECT 1" || r.Status != approval.StatusPending ||
			r.Fingerprint != request(alice, deferIt, "SELECT 1").Fingerprint() || r.Request.Spec.Mode != policy.Defer {
			t.Errorf("Get: %+v", r)
		}
		if _, err := e.s.Get(e.ctx, "nope"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("Get(unknown): %v", err)
		}
		if _, err := e.s.Decide(e.ctx, "nope", true, bob, ""); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("Decide(unknown): %v", err)
		}
		for _, id := range ids[1:3] {
			if _, err := e.s.Decide(e.ctx, id, true, bob, ""); !errors.Is(err, approval.ErrNotPending) {
				t.Errorf("Decide(decided): %v", err)
			}
		}
	})

	t.Run("RecordIsACopy", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		req := request(alice, deferIt, "SELECT $1", "a")
		req.Identity.Groups = []string{"dev"} // the test's own
		id := e.approve(req).ID
		*req.Params[0] = "changed"
		req.Identity.Groups[0] = "changed"
		r := e.get(id)
		if *r.Request.Params[0] != "a" || r.Request.Identity.Groups[0] != "dev" {
			t.Fatalf("the store shares the caller's request: %+v", r.Request)
		}
		*r.Request.Params[0] = "changed too"
		if r := e.get(id); *r.Request.Params[0] != "a" {
			t.Fatal("the store shares its record with Get's caller")
		}
		// A record marshals to JSON and back.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back approval.Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(back); string(b2) != string(b) || back.Request.ID != id || back.Status != r.Status {
			t.Errorf("JSON round trip: %s -> %s", b, b2)
		}
	})

	t.Run("Notify", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		id := e.approve(request(alice, deferIt, "SELECT 1")).ID
		e.approve(request(alice, deferIt, "SELECT 1")) // already pending: no notification
		e.decide(id, true, bob, "ok")
		e.approve(request(alice, deferIt, "SELECT 1")) // a use: no notification
		e.notes.waitStatuses(t, id, approval.StatusPending, approval.StatusApproved)
		time.Sleep(50 * time.Millisecond)
		if got := e.notes.all(); len(got) != 2 || got[1].Approver != "bob" || got[1].Comment != "ok" ||
			got[0].Request.SQL != "SELECT 1" {
			t.Errorf("notifications: %+v", got)
		}
	})

	t.Run("NotifyNeverBlocks", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var calls sync.WaitGroup
		calls.Add(1)
		first := true
		logs := &testlog.Buffer{}
		s := open(t, approval.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Notify: func(approval.Record) {
			if first {
				first = false
				defer calls.Done()
				<-release
				panic("a panicking webhook")
			}
		}})
		ctx := testContext(t)
		for _, sql := range []string{"SELECT 1", "SELECT 2", "SELECT 3"} {
			if _, err := s.Approve(ctx, request(alice, deferIt, sql)); err != nil {
				t.Fatal(err)
			}
		}
		close(release)
		calls.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "a panicking webhook") {
			if time.Now().After(deadline) {
				t.Fatalf("the panic was not logged: %s", logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		ch := e.approveAsync(e.ctx, request(alice, hold, "DELETE FROM orders"))
		rec := e.waitPending(1)[0]
		if err := e.s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		r := await(t, ch)
		if !errors.Is(r.err, approval.ErrClosed) || r.d.Outcome != "" {
			t.Fatalf("held Approve after Close: %+v, %v", r.d, r.err)
		}
		e.notes.waitStatuses(t, rec.Request.ID, approval.StatusPending, approval.StatusWithdrawn)
		if _, err := e.s.Approve(e.ctx, request(alice, deferIt, "SELECT 1")); !errors.Is(err, approval.ErrClosed) {
			t.Errorf("Approve after Close: %v", err)
		}
		if _, err := e.s.Decide(e.ctx, rec.Request.ID, true, bob, ""); !errors.Is(err, approval.ErrClosed) {
			t.Errorf("Decide after Close: %v", err)
		}
		if _, err := e.s.List(e.ctx); !errors.Is(err, approval.ErrClosed) {
			t.Errorf("List after Close: %v", err)
		}
		if err := e.s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		const n = 16
		spec := policy.ApprovalSpec{Mode: policy.Defer, Uses: 5}
		run := func() map[policy.ApprovalOutcome][]string {
			var mu sync.Mutex
			out := map[policy.ApprovalOutcome][]string{}
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					d, err := e.s.Approve(e.ctx, request(alice, spec, "DELETE FROM carts WHERE stale"))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					out[d.Outcome] = append(out[d.Outcome], d.ID)
					mu.Unlock()
				})
			}
			wg.Wait()
			return out
		}
		got := run()
		ids := got[policy.Pending]
		if len(ids) != n || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 1 {
			t.Fatalf("concurrent first requests: %v, want %d of one pending id", got, n)
		}
		e.decide(ids[0], true, bob, "")
		got = run()
		if len(got[policy.Approved]) != 5 || len(got[policy.Pending]) != n-5 {
			t.Fatalf("concurrent uses of 5: %d approved, %d pending", len(got[policy.Approved]), len(got[policy.Pending]))
		}
		if p := slices.Compact(slices.Sorted(slices.Values(got[policy.Pending]))); len(p) != 1 || p[0] == ids[0] {
			t.Fatalf("after the uses: pending %v", p)
		}

		// Held requests decided concurrently, some twice.
		var chans []<-chan result
		for i := range n {
			chans = append(chans, e.approveAsync(e.ctx, request(carol, hold, "DELETE FROM t", string(rune('a'+i)))))
		}
		held := e.waitPending(n + 1) // and the deferred one
		var wg sync.WaitGroup
		var decided sync.Map
		for _, r := range held {
			if r.Request.Spec.Mode != policy.Hold {
				continue
			}
			for range 2 {
				wg.Go(func() {
					_, err := e.s.Decide(e.ctx, r.Request.ID, true, bob, "")
					if err == nil {
						if _, dup := decided.LoadOrStore(r.Request.ID, true); dup {
							t.Errorf("%s decided twice", r.Request.ID)
						}
					} else if !errors.Is(err, approval.ErrNotPending) {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		for _, ch := range chans {
			if r := await(t, ch); r.err != nil || r.d.Outcome != policy.Approved {
				t.Errorf("held: %+v, %v", r.d, r.err)
			}
		}
	})
}
