package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/approval"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	testStore(t, func(t *testing.T, opts approval.Options) approval.Store {
		return openPostgres(t, approval.PostgresOptions{Options: opts})
	})
}

// gateways opens two stores on the same tables, as two gateways sharing
// a database, with one clock. PollInterval is long: only LISTEN/NOTIFY
// delivers a decision quickly.
func gateways(t *testing.T, poll time.Duration) (a, b *approval.Postgres, n *notes, table string) {
	table = tableFor(t)
	n = &notes{}
	opts := approval.PostgresOptions{Options: approval.Options{Now: newClock().Now, Notify: n.add}, Table: table, PollInterval: poll}
	return openPostgres(t, opts), openPostgres(t, opts), n, table
}

// decideElsewhere holds a request on a, decides it through b and
// checks that a's Approve returns the decision within 5 s.
func decideElsewhere(t *testing.T, a, b *approval.Postgres, sql string, approve bool) {
	t.Helper()
	ea := &env{t: t, s: a, ctx: testContext(t)}
	ch := ea.approveAsync(ea.ctx, request(alice, hold, sql))
	var id string
	for _, r := range (&env{t: t, s: b, ctx: ea.ctx}).waitPending(1) {
		if r.Request.SQL == sql {
			id = r.Request.ID
		}
	}
	if id == "" {
		t.Fatalf("%s is not pending", sql)
	}
	start := time.Now()
	if _, err := b.Decide(ea.ctx, id, approve, bob, "through b"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		want := policy.Denied
		if approve {
			want = policy.Approved
		}
		if r.err != nil || r.d.Outcome != want || r.d.ID != id || r.d.Comment != "through b" {
			t.Fatalf("held on a: %+v, %v; want %s", r.d, r.err, want)
		}
		t.Logf("%s reached the held request after %v", want, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the decision made through b did not reach the request held on a within 5 s")
	}
}

func TestPostgresTwoGateways(t *testing.T) {
	t.Parallel()
	a, b, n, _ := gateways(t, time.Minute)
	decideElsewhere(t, a, b, "DELETE FROM orders WHERE id = 1", true)
	decideElsewhere(t, a, b, "DELETE FROM orders WHERE id = 2", false)
	decideElsewhere(t, b, a, "DELETE FROM orders WHERE id = 3", true)

	// Withdrawn on a: b cannot decide it.
	ctx, cancel := context.WithCancel(testContext(t))
	ea := &env{t: t, s: a, ctx: ctx}
	ch := ea.approveAsync(ctx, request(alice, hold, "DELETE FROM orders WHERE id = 4"))
	id := (&env{t: t, s: b, ctx: testContext(t)}).waitPending(1)[0].Request.ID
	cancel()
	if r := await(t, ch); !errors.Is(r.err, policy.ErrApprovalWithdrawn) {
		t.Fatalf("withdrawn: %v", r.err)
	}
	if _, err := b.Decide(testContext(t), id, true, bob, ""); !errors.Is(err, approval.ErrNotPending) {
		t.Errorf("Decide through b of a request withdrawn on a: %v", err)
	}
	// Each process notifies of its own changes, once.
	n.waitStatuses(t, id, approval.StatusPending, approval.StatusWithdrawn)
}

// TestPostgresListenerReconnects: the listener connections are killed;
// they reconnect, and decisions made elsewhere reach held requests at
// once again (a decision notified while nobody listened too).
func TestPostgresListenerReconnects(t *testing.T) {
	t.Parallel()
	a, b, _, table := gateways(t, time.Minute)
	listeners := func() []int32 {
		rows, err := setup(t).Query(testContext(t), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query = $2 ORDER BY pid`, approval.ListenerApplicationName,
			"LISTEN "+pgx.Identifier{table}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	before := listeners()
	if len(before) != 2 {
		t.Fatalf("listeners of %s: %v, want a's and b's", table, before)
	}
	if _, err := setup(t).Exec(testContext(t), `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid`, before); err != nil {
		t.Fatal(err)
	}
	// Right away: the notification may come before a listens again.
	decideElsewhere(t, a, b, "DELETE FROM orders WHERE id = 1", true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := listeners()
		if len(after) == 2 && after[0] != before[0] && after[0] != before[1] && after[1] != before[0] && after[1] != before[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners after the kill: %v (before: %v)", after, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	decideElsewhere(t, a, b, "DELETE FROM orders WHERE id = 2", true)
}

// TestPostgresPoll: a decision nobody notified (made behind the stores'
// backs) reaches the held request through the poll.
func TestPostgresPoll(t *testing.T) {
	t.Parallel()
	table := tableFor(t)
	s := openPostgres(t, approval.PostgresOptions{Table: table, PollInterval: 100 * time.Millisecond})
	e := &env{t: t, s: s, ctx: testContext(t)}
	ch := e.approveAsync(e.ctx, request(alice, hold, "DELETE FROM orders"))
	id := e.waitPending(1)[0].Request.ID
	if _, err := setup(t).Exec(e.ctx, fmt.Sprintf(`UPDATE %s SET status = 'approved', approver = 'dba-on-psql', decided = now()
		WHERE id = $1`, pgx.Identifier{table}.Sanitize()), id); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || r.d.Outcome != policy.Approved || r.d.Approver != "dba-on-psql" {
		t.Fatalf("held: %+v, %v", r.d, r.err)
	}
}

// TestPostgresConcurrentRedeem: the last use of a deferred approval,
// asked for by both gateways at once, is taken exactly once.
func TestPostgresConcurrentRedeem(t *testing.T) {
	t.Parallel()
	a, b, _, _ := gateways(t, time.Minute)
	ctx := testContext(t)
	const per = 8
	ask := func() map[policy.ApprovalOutcome][]string {
		var mu sync.Mutex
		out := map[policy.ApprovalOutcome][]string{}
		var wg sync.WaitGroup
		for _, s := range []*approval.Postgres{a, b} {
			for range per {
				wg.Go(func() {
					d, err := s.Approve(ctx, request(alice, deferIt, "DELETE FROM carts WHERE stale"))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					out[d.Outcome] = append(out[d.Outcome], d.ID)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		return out
	}
	first := ask()
	pending := first[policy.Pending]
	if len(pending) != 2*per {
		t.Fatalf("first: %v", first)
	}
	for _, id := range pending {
		if id != pending[0] {
			t.Fatalf("two gateways filed two requests for one statement: %v", pending)
		}
	}
	if _, err := b.Decide(ctx, pending[0], true, bob, ""); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		got := ask()
		if round == 0 && (len(got[policy.Approved]) != 1 || got[policy.Approved][0] != pending[0]) {
			t.Fatalf("the one use: %d approved (%v), want exactly 1", len(got[policy.Approved]), got)
		}
		if round > 0 && len(got[policy.Approved]) != 0 {
			t.Fatalf("round %d: %v approved", round, got[policy.Approved])
		}
		if len(got[policy.Pending]) != 2*per-len(got[policy.Approved]) {
			t.Fatalf("round %d: %v", round, got)
		}
		// Approve the new request, with one use, for the next round to
		// fight over... only in round 0.
		if round == 0 {
			if _, err := a.Decide(ctx, got[policy.Pending][0], true, bob, ""); err != nil {
				t.Fatal(err)
			}
			got = ask()
			if len(got[policy.Approved]) != 1 {
				t.Fatalf("the second approval's one use: %v", got)
			}
		}
	}
}

// TestPostgresStaleHold: a held request whose gateway stopped without
// withdrawing it reads as withdrawn once its timeout and StaleHoldGrace
// passed, and nobody can approve it.
func TestPostgresStaleHold(t *testing.T) {
	t.Parallel()
	table := tableFor(t)
	c := newClock()
	s := openPostgres(t, approval.PostgresOptions{Options: approval.Options{Now: c.Now}, Table: table})
	ctx := testContext(t)
	req := request(alice, policy.ApprovalSpec{Mode: policy.Hold, Timeout: time.Minute}, "DROP TABLE orders")
	req.ID = "crashed-gateway-request"
	body, _ := json.Marshal(req)
	if _, err := setup(t).Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, request, status, mode, fingerprint, filed, held_until)
		VALUES ($1, $2, 'pending', 'hold', $3, $4, $5)`, pgx.Identifier{table}.Sanitize()),
		req.ID, string(body), req.Fingerprint(), t0, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, req.ID); err != nil || r.Status != approval.StatusPending {
		t.Fatalf("within its timeout: %+v, %v", r, err)
	}
	c.Advance(time.Minute + approval.StaleHoldGrace - time.Microsecond)
	if r, err := s.Get(ctx, req.ID); err != nil || r.Status != approval.StatusPending {
		t.Fatalf("within the grace: %+v, %v", r, err)
	}
	c.Advance(time.Microsecond)
	if r, err := s.Get(ctx, req.ID); err != nil || r.Status != approval.StatusWithdrawn {
		t.Fatalf("past the grace: %+v, %v", r, err)
	}
	if rs, err := s.List(ctx, approval.StatusPending); err != nil || len(rs) != 0 {
		t.Errorf("List(pending): %v, %v", rs, err)
	}
	if _, err := s.Decide(ctx, req.ID, true, bob, ""); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("Decide: %v, want ErrNotPending", err)
	}
	var status string
	if err := setup(t).QueryRow(ctx, fmt.Sprintf(`SELECT status FROM %s WHERE id = $1`, pgx.Identifier{table}.Sanitize()),
		req.ID).Scan(&status); err != nil || status != "withdrawn" {
		t.Errorf("stored status %q, %v; want withdrawn", status, err)
	}
}

// TestPostgresSchema: a schema-qualified table, its grants table, the
// indexes; a second store opens the existing tables.
func TestPostgresSchema(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	if _, err := setup(t).Exec(ctx, `CREATE SCHEMA IF NOT EXISTS approvals_app AUTHORIZATION `+gatewayRole); err != nil {
		t.Fatal(err)
	}
	name := tableFor(t)
	opts := approval.PostgresOptions{Table: "approvals_app." + name, PollInterval: time.Minute}
	a, b := openPostgres(t, opts), openPostgres(t, opts)
	rows, err := setup(t).Query(ctx, `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE nspname = 'approvals_app' AND relkind IN ('r', 'i') AND starts_with(relname, $1) ORDER BY relname`, name)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, suffix := range []string{"", "_fingerprint", "_grants", "_grants_lookup", "_grants_pkey", "_pending_defer", "_pkey", "_seq"} {
		want = append(want, name+suffix)
	}
	if got := strings.Join(names, " "); got != strings.Join(want, " ") {
		t.Errorf("relations: %s\nwant:      %s", got, strings.Join(want, " "))
	}
	decideElsewhere(t, a, b, "DELETE FROM orders", true)
}

// TestPostgresOpenErrors: bad options and connection strings fail
// OpenPostgres without showing the password.
func TestPostgresOpenErrors(t *testing.T) {
	t.Parallel()
	setup(t)
	ctx := testContext(t)
	const secret = "not-the-password-9f2e"
	for _, c := range []struct {
		name, dsn string
		opts      approval.PostgresOptions
	}{
		{"bad table", gatewayDSN(), approval.PostgresOptions{Table: "Approvals; DROP TABLE x"}},
		{"long table", gatewayDSN(), approval.PostgresOptions{Table: strings.Repeat("a", 49)}},
		{"unparsable", "postgres://gateway:" + secret + "@127.0.0.1:notaport/approvals", approval.PostgresOptions{}},
		{"wrong password", pg.ConnString(gatewayRole, secret, approvalsDB), approval.PostgresOptions{}},
		{"no server", fmt.Sprintf("host=127.0.0.1 port=1 user=gateway password=%s dbname=approvals sslmode=disable connect_timeout=2", secret),
			approval.PostgresOptions{}},
	} {
		logs := &testlog.Buffer{}
		c.opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
		s, err := approval.OpenPostgres(ctx, c.dsn, c.opts)
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("%s: the password shows: %v", c.name, err)
		}
	}
}
