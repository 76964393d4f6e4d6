package proxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/proxy"
)

// execErr runs sql and returns the error.
func execErr(ctx context.Context, c *pgconn.PgConn, sql string) error {
	_, err := c.Exec(ctx, sql).ReadAll()
	return err
}

func connectRaw(t testing.TB, dsn string) *pgconn.PgConn {
	t.Helper()
	c, err := pgconn.Connect(testContext(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// wantFatal57P01 checks that the next use of c reports the gateway ending
// the session with FATAL 57P01.
func wantFatal57P01(t testing.TB, c *pgconn.PgConn) {
	t.Helper()
	err := execErr(testContext(t), c, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" || pgErr.Severity != "FATAL" {
		t.Fatalf("err = %v, want FATAL 57P01", err)
	}
}

func TestShutdownLetsRunningWorkFinishThenEnds57P01(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	busy := connectRaw(t, g.dsn("alice", alicePassword))
	idle := connectRaw(t, g.dsn("alice", alicePassword))
	inTx := connectRaw(t, g.dsn("alice", alicePassword))
	if err := execErr(ctx, inTx, "begin; create temp table drained(n int)"); err != nil {
		t.Fatal(err)
	}
	running := make(chan error, 1)
	go func() { running <- execErr(ctx, busy, "select pg_sleep(1)") }()
	time.Sleep(200 * time.Millisecond)

	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	// New clients are refused once Shutdown began.
	time.Sleep(100 * time.Millisecond)
	if _, err := pgconn.Connect(ctx, g.dsn("alice", alicePassword)); err == nil {
		t.Fatal("a new client got in during Shutdown")
	}
	// The open transaction may finish.
	if err := execErr(ctx, inTx, "insert into drained values (1); commit"); err != nil {
		t.Fatalf("finishing the open transaction during Shutdown: %v", err)
	}
	if err := <-running; err != nil {
		t.Fatalf("the running statement did not finish: %v", err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*pgconn.PgConn{busy, idle, inTx} {
		wantFatal57P01(t, c)
	}
	if err := <-g.serve; err != proxy.ErrProxyClosed {
		t.Fatalf("Serve returned %v", err)
	}
	g.serve <- proxy.ErrProxyClosed // for the cleanup check
}

func TestShutdownDeadlineEndsBusySessions(t *testing.T) {
	g := startGateway(t, nil)
	busy := connectRaw(t, g.dsn("alice", alicePassword))
	running := make(chan error, 1)
	go func() { running <- execErr(context.Background(), busy, "select pg_sleep(30)") }()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline", err)
	}
	err := <-running
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("the busy session got %v, want FATAL 57P01", err)
	}
}

func TestSessionsAndTerminate(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	alice := connectRaw(t, g.dsn("alice", alicePassword, "application_name=report-job"))
	bob := connectRaw(t, g.dsn("bob", bobPassword))
	if err := execErr(ctx, alice, "select 1; select 2"); err != nil {
		t.Fatal(err)
	}
	var aliceID string
	sessions := g.Sessions()
	if len(sessions) != 2 {
		t.Fatalf("%d sessions", len(sessions))
	}
	for _, s := range sessions {
		if s.Info.Identity.Subject == "alice" {
			aliceID = s.Info.ID
			if s.Info.UpstreamUser != rwRole || s.Info.ApplicationName != "report-job" || s.Info.Database != "app" ||
				s.State != "idle" || s.Statements != 1 || s.LastStatement.IsZero() {
				t.Fatalf("alice's session %+v", s)
			}
		}
	}
	if aliceID == "" {
		t.Fatal("alice's session is not listed")
	}
	if err := g.Terminate(aliceID, ""); err != nil {
		t.Fatal(err)
	}
	wantFatal57P01(t, alice)
	if err := execErr(ctx, bob, "select 1"); err != nil {
		t.Fatalf("terminating alice affected bob: %v", err)
	}
	waitFor(t, func() bool { return len(g.Sessions()) == 1 })
	if err := g.Terminate(aliceID, ""); !errors.Is(err, proxy.ErrSessionNotFound) {
		t.Fatalf("terminating an ended session: %v", err)
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
