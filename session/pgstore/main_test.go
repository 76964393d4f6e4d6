package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// pg is the cluster holding the audit database. A missing PostgreSQL
// installation fails the package; it never skips.
var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{Database: auditDB}, &pg))
}

const (
	auditDB = "audit"
	// recorderRole is the role stores connect as: not a superuser, with
	// CREATE on the audit database's public schema.
	recorderRole     = "recorder"
	recorderPassword = "rec-audit-secret-5d1e-9a0c"
)

// testKey is the recording key.
var testKey = session.NewSecret("test-recording-key-0b7e41")

var (
	setupOnce sync.Once
	setupErr  error
	// su is a superuser pool on the audit database, for looking at (and
	// tampering with) the table behind the store's back.
	su *pgxpool.Pool
)

func setup(t testing.TB) *pgxpool.Pool {
	t.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		setupErr = pg.Exec(ctx, auditDB, fmt.Sprintf(`
			CREATE ROLE %[1]s LOGIN PASSWORD '%[2]s';
			GRANT CREATE ON SCHEMA public TO %[1]s;
			CREATE SCHEMA archive AUTHORIZATION %[1]s;`, recorderRole, recorderPassword))
		if setupErr == nil {
			su, setupErr = pgxpool.New(ctx, pg.SuperConnString(auditDB))
		}
	})
	if setupErr != nil {
		t.Fatalf("creating the fixture: %v", setupErr)
	}
	return su
}

func recorderDSN() session.Secret {
	return session.NewSecret(pg.ConnString(recorderRole, recorderPassword, auditDB))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var tableSeq atomic.Int64

// tableFor names a table of its own for t, so that tests never see each
// other's sessions.
func tableFor(t testing.TB) string {
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("ev_%s_%d", name, tableSeq.Add(1))
}

// logBuffer is a concurrent log buffer.
type logBuffer = testlog.Buffer

// testStore is a Store under test with its table and logs.
type testStore struct {
	*pgstore.Store
	table string
	logs  *logBuffer
}

// newStore opens a store as the recorder role on a table of the test's
// own (unless opts names one), and closes it when the test ends.
func newStore(t testing.TB, opts pgstore.Options) *testStore {
	t.Helper()
	setup(t)
	if opts.Table == "" {
		opts.Table = tableFor(t)
	}
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := pgstore.Open(testContext(t), recorderDSN(), testKey, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if strings.Contains(logs.String(), recorderPassword) {
			t.Error("the logs hold the DSN's password")
		}
	})
	return &testStore{Store: s, table: opts.Table, logs: logs}
}

// record records evs in order and fails the test on an error.
func record(t testing.TB, s session.Recorder, evs ...session.Event) {
	t.Helper()
	ctx := testContext(t)
	for _, ev := range evs {
		if err := s.Record(ctx, ev); err != nil {
			t.Fatalf("Record(%s %s): %v", ev.SessionID, ev.Kind, err)
		}
	}
}

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

// startEvent opens session id of subject (with the actors of its chain).
func startEvent(id string, at time.Time, subject string, chain ...string) session.Event {
	ident := session.Identity{Subject: subject, Issuer: "https://idp.example", Method: "oidc"}
	for _, a := range chain {
		ident.Chain = append(ident.Chain, session.Actor{Subject: a, Issuer: "https://idp.example"})
	}
	return session.Event{Kind: session.KindSessionStart, SessionID: id, Time: at.Add(7 * time.Millisecond),
		Start: &session.StartEvent{Info: session.Info{ID: id, Identity: ident, ClientAddr: "10.0.0.7:51234",
			User: subject, Database: "app", UpstreamUser: "app_reader", StartedAt: at}}}
}

func statementEvent(id string, at time.Time, seq int64, sql, verdict string, tables ...string) session.Event {
	return session.Event{Kind: session.KindStatement, SessionID: id, Time: at,
		Statement: &session.StatementEvent{Seq: seq, Protocol: session.ProtocolSimple, SQL: sql, Verdict: verdict, Tables: tables}}
}

func resultEvent(id string, at time.Time, seq int64) session.Event {
	return session.Event{Kind: session.KindResult, SessionID: id, Time: at,
		Result: &session.ResultEvent{Seq: seq, Tag: "SELECT 1", Rows: 1, Duration: 1500 * time.Microsecond}}
}

func endEvent(id string, at time.Time, statements int64) session.Event {
	return session.Event{Kind: session.KindSessionEnd, SessionID: id, Time: at,
		End: &session.EndEvent{Reason: session.EndClientExit, Statements: statements}}
}

// simpleSession is a complete session of n statements (each with its
// result): 2n+2 events.
func simpleSession(id, subject string, n int) []session.Event {
	evs := []session.Event{startEvent(id, t0, subject)}
	for i := range n {
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		evs = append(evs, statementEvent(id, at, int64(i+1), fmt.Sprintf("SELECT %d FROM orders", i), "allow", "orders"),
			resultEvent(id, at, int64(i+1)))
	}
	return append(evs, endEvent(id, t0.Add(time.Second), int64(n)))
}

// mustJSON marshals v as the ledger does.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rowCount counts table's rows of session id.
func rowCount(t testing.TB, table, id string) int {
	t.Helper()
	var n int
	err := setup(t).QueryRow(testContext(t), fmt.Sprintf("SELECT count(*) FROM %s WHERE session = $1",
		pgx.Identifier(strings.Split(table, ".")).Sanitize()), id).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// suExec runs sql as the superuser.
func suExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := setup(t).Exec(testContext(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func newLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
