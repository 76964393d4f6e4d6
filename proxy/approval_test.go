package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// approvalFixture creates approval_orders with ten rows.
func approvalFixture(t *testing.T) {
	t.Helper()
	setupRoles(t)
	if err := pg.Exec(testContext(t), "app", `DROP TABLE IF EXISTS approval_orders;
		CREATE TABLE approval_orders(id int PRIMARY KEY, note text);
		INSERT INTO approval_orders SELECT g, 'order ' || g FROM generate_series(1, 10) g;
		GRANT SELECT, INSERT, UPDATE, DELETE ON approval_orders TO app_rw;`); err != nil {
		t.Fatal(err)
	}
}

// approveDeletes sends every DELETE for approval (hold, with spec), and
// allows the rest.
func approveDeletes(spec policy.ApprovalSpec) policy.Policy {
	return policy.Strictest(
		policy.Rule{Name: "deletes-need-approval", When: policy.IsKind(policy.KindDelete), Verdict: policy.Approve,
			Reason: "Deleting orders needs a second pair of eyes.", Approval: &spec},
		policy.Rule{Name: "allow", When: policy.Always(), Verdict: policy.Allow},
	)
}

// scriptedApprover answers held requests with what the test sends.
type scriptedApprover struct {
	mu       sync.Mutex
	requests []*policy.ApprovalRequest
	asked    chan *policy.ApprovalRequest
	answers  chan policy.ApprovalDecision
}

func newScriptedApprover() *scriptedApprover {
	return &scriptedApprover{asked: make(chan *policy.ApprovalRequest, 8), answers: make(chan policy.ApprovalDecision, 8)}
}

func (a *scriptedApprover) Approve(ctx context.Context, req *policy.ApprovalRequest) (policy.ApprovalDecision, error) {
	a.mu.Lock()
	req.ID = fmt.Sprintf("req-%d", len(a.requests)+1)
	a.requests = append(a.requests, req)
	a.mu.Unlock()
	a.asked <- req
	select {
	case d := <-a.answers:
		d.ID = req.ID
		return d, nil
	case <-ctx.Done():
		return policy.ApprovalDecision{}, fmt.Errorf("%w: %w", policy.ErrApprovalWithdrawn, ctx.Err())
	}
}

func countOrders(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(testContext(t), "SELECT count(*) FROM approval_orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHeldStatementRunsAfterApproval(t *testing.T) {
	approvalFixture(t)
	a := newScriptedApprover()
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = approveDeletes(policy.ApprovalSpec{Timeout: time.Minute})
		p.Approver = a
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		before := countOrders(t, conn)
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = (SELECT max(id) FROM approval_orders WHERE id > $1::int)", mode, "0")
			done <- err
		}()
		req := <-a.asked
		if req.Rule != "deletes-need-approval" || req.Identity.Subject != "alice" || !strings.HasPrefix(req.SQL, "DELETE") {
			t.Fatalf("request %+v", req)
		}
		if mode != pgx.QueryExecModeSimpleProtocol && (len(req.Params) != 1 || req.Params[0] == nil || *req.Params[0] != "0") {
			t.Fatalf("the request does not carry the parameters: %+v", req.Params)
		}
		// The server has seen nothing yet.
		other := connect(t, pg.ConnString(rwRole, rwPassword, "app"))
		if n := countOrders(t, other); n != before {
			t.Fatalf("the held DELETE ran before approval: %d rows, want %d", n, before)
		}
		a.answers <- policy.ApprovalDecision{Outcome: policy.Approved, Approver: "carol", Comment: "ok"}
		if err := <-done; err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if n := countOrders(t, conn); n != before-1 {
			t.Fatalf("%v: %d rows after the approved DELETE, want %d", mode, n, before-1)
		}
	}
	// Every request and decision is recorded.
	var actions []string
	for _, ev := range g.rec.snapshot() {
		if ev.Kind == session.KindApproval {
			actions = append(actions, string(ev.Approval.Action)+":"+ev.Approval.Approver)
		}
	}
	if strings.Join(actions, ",") != "requested:,approved:carol,requested:,approved:carol" {
		t.Fatalf("recorded approvals: %v", actions)
	}
}

func TestDeniedTimedOutAndCanceledApprovals(t *testing.T) {
	approvalFixture(t)
	start := func(t *testing.T, spec policy.ApprovalSpec) (*scriptedApprover, *pgx.Conn) {
		a := newScriptedApprover()
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = approveDeletes(spec)
			p.Approver = a
		})
		return a, connect(t, g.dsn("alice", alicePassword))
	}
	refused := func(t *testing.T, conn *pgx.Conn, err error, code, detail string) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code || !strings.Contains(pgErr.Detail, detail) {
			t.Fatalf("err = %v (detail %q), want %s with %q", err, detailOf(err), code, detail)
		}
		if n := countOrders(t, conn); n != 10 {
			t.Fatalf("%d rows: the refused DELETE ran", n)
		}
	}
	t.Run("denied", func(t *testing.T) {
		approvalFixture(t)
		a, conn := start(t, policy.ApprovalSpec{})
		go func() {
			<-a.asked
			a.answers <- policy.ApprovalDecision{Outcome: policy.Denied, Approver: "carol", Comment: "not on a Friday"}
		}()
		_, err := conn.Exec(testContext(t), "DELETE FROM approval_orders WHERE id = 1")
		refused(t, conn, err, "42501", "carol: not on a Friday")
	})
	t.Run("timed out", func(t *testing.T) {
		approvalFixture(t)
		a, conn := start(t, policy.ApprovalSpec{Timeout: 300 * time.Millisecond})
		go func() { <-a.asked }()
		_, err := conn.Exec(testContext(t), "DELETE FROM approval_orders WHERE id = 1", pgx.QueryExecModeSimpleProtocol)
		refused(t, conn, err, "42501", "within 300ms")
	})
	t.Run("canceled by the client", func(t *testing.T) {
		approvalFixture(t)
		a := newScriptedApprover()
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = approveDeletes(policy.ApprovalSpec{})
			p.Approver = a
		})
		conn := connect(t, g.dsn("alice", alicePassword))
		ctx := testContext(t)
		go func() {
			<-a.asked
			if err := conn.PgConn().CancelRequest(ctx); err != nil {
				t.Errorf("CancelRequest: %v", err)
			}
		}()
		_, err := conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = 1")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("err = %v, want 57014", err)
		}
		if conn.IsClosed() {
			t.Fatal("the client's connection closed: the gateway did not answer the cancel")
		}
		withdrawn := false
		for _, ev := range g.rec.snapshot() {
			if ev.Kind == session.KindApproval && ev.Approval.Action == session.ApprovalWithdrawn && ev.Approval.Reason == "canceled by the client" {
				withdrawn = true
			}
		}
		if !withdrawn {
			t.Fatal("no approval withdrawn by the client's cancel in the recording")
		}
		if n := countOrders(t, conn); n != 10 {
			t.Fatalf("%d rows: the canceled DELETE ran", n)
		}
	})
}

func detailOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Detail
	}
	return ""
}

// decidePending approves (or denies) the first pending request of store
// as carol, from another goroutine.
func decidePending(t *testing.T, store *approval.Memory, approve bool) string {
	t.Helper()
	ctx := testContext(t)
	for range 200 {
		recs, err := store.List(ctx, approval.StatusPending)
		if err != nil {
			t.Error(err)
			return ""
		}
		if len(recs) > 0 {
			carol := session.Identity{Subject: "carol", Issuer: "test", Groups: []string{"approvers"}}
			if _, err := store.Decide(ctx, recs[0].Request.ID, approve, carol, "checked"); err != nil {
				t.Error(err)
			}
			return recs[0].Request.ID
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("no pending request")
	return ""
}

func TestDeferredApprovalRunsOnceWithTheSameParameters(t *testing.T) {
	approvalFixture(t)
	store := approval.NewMemory(approval.Options{})
	t.Cleanup(func() { store.Close() })
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = approveDeletes(policy.ApprovalSpec{Mode: policy.Defer, Approvers: []string{"approvers"}})
		p.Approver = store
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	del := "DELETE FROM approval_orders WHERE id = $1::int"
	_, err := conn.Exec(ctx, del, "3")
	if !strings.Contains(detailOf(err), "is pending") {
		t.Fatalf("first try: %v (%s)", err, detailOf(err))
	}
	id := decidePending(t, store, true)
	if _, err := conn.Exec(ctx, del, "4"); !strings.Contains(detailOf(err), "is pending") {
		t.Fatalf("other parameters ran on the approval of %s: %v", id, err)
	}
	if _, err := conn.Exec(ctx, del, "3"); err != nil {
		t.Fatalf("the approved statement: %v", err)
	}
	if n := countOrders(t, conn); n != 9 {
		t.Fatalf("%d rows after the approved DELETE", n)
	}
	if _, err := conn.Exec(ctx, del, "3"); !strings.Contains(detailOf(err), "is pending") {
		t.Fatalf("the approval was used twice: %v", err)
	}
}

func TestGrantWidensThePolicyForItsWindowOnly(t *testing.T) {
	approvalFixture(t)
	store := approval.NewMemory(approval.Options{})
	t.Cleanup(func() { store.Close() })
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = approveDeletes(policy.ApprovalSpec{Timeout: time.Minute, Grant: 1500 * time.Millisecond})
		p.Approver = store
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	go decidePending(t, store, true)
	if _, err := conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = 1"); err != nil {
		t.Fatalf("approved: %v", err)
	}
	// Within the grant: no one is asked.
	if _, err := conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = 2"); err != nil {
		t.Fatalf("within the grant: %v", err)
	}
	if recs, _ := store.List(ctx); len(recs) != 1 {
		t.Fatalf("%d requests filed; the grant should have answered the second", len(recs))
	}
	time.Sleep(1600 * time.Millisecond)
	// After it: held again (denied here).
	go decidePending(t, store, false)
	if _, err := conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = 3"); !strings.Contains(detailOf(err), "Denied") {
		t.Fatalf("after the grant: %v (%s)", err, detailOf(err))
	}
	if n := countOrders(t, conn); n != 8 {
		t.Fatalf("%d rows", n)
	}
}

func TestSelfApprovalIsRefused(t *testing.T) {
	store := approval.NewMemory(approval.Options{})
	t.Cleanup(func() { store.Close() })
	approvalFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = approveDeletes(policy.ApprovalSpec{Mode: policy.Defer})
		p.Approver = store
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	conn.Exec(ctx, "DELETE FROM approval_orders WHERE id = 1")
	recs, err := store.List(ctx, approval.StatusPending)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v, %v", recs, err)
	}
	alice := recs[0].Request.Identity
	if _, err := store.Decide(ctx, recs[0].Request.ID, true, alice, "me"); !errors.Is(err, approval.ErrSelfApproval) {
		t.Fatalf("self-approval: %v", err)
	}
}
