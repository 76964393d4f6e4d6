package proxy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

func TestRecorderSeesTheSessionInOrder(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec(ctx, "select g from generate_series(1, 3) g", pgx.QueryExecModeSimpleProtocol)
	conn.Exec(ctx, "select $1::int", 5)
	conn.Exec(ctx, "select 'forbidden'", pgx.QueryExecModeSimpleProtocol)
	conn.Close(ctx)
	waitFor(t, func() bool {
		evs := g.rec.snapshot()
		return len(evs) > 0 && evs[len(evs)-1].Kind == session.KindSessionEnd
	})

	evs := g.rec.snapshot()
	if evs[0].Kind != session.KindSessionStart || evs[0].Start.Info.Identity.Subject != "alice" ||
		evs[0].Start.Info.UpstreamUser != rwRole {
		t.Fatalf("first event %+v", evs[0])
	}
	var statements []*session.StatementEvent
	results := map[int64][]*session.ResultEvent{}
	for _, ev := range evs {
		if ev.SessionID != evs[0].SessionID {
			t.Fatal("events of another session")
		}
		switch ev.Kind {
		case session.KindStatement:
			statements = append(statements, ev.Statement)
		case session.KindResult:
			if len(statements) == 0 || ev.Result.Seq > statements[len(statements)-1].Seq {
				t.Fatalf("result %+v recorded before its statement", ev.Result)
			}
			results[ev.Result.Seq] = append(results[ev.Result.Seq], ev.Result)
		}
	}
	if len(statements) != 4 {
		t.Fatalf("%d statements recorded, want 4 (query, parse, bind, query)", len(statements))
	}
	first, second, bind, third := statements[0], statements[1], statements[2], statements[3]
	if first.Protocol != session.ProtocolSimple || first.Stage != "query" || first.Verdict != "allow" || results[first.Seq][0].Rows != 3 ||
		results[first.Seq][0].Tag != "SELECT 3" || !slices.Equal(first.Kinds, []string{"select"}) {
		t.Fatalf("first statement %+v, results %+v", first, results[first.Seq])
	}
	if second.Protocol != session.ProtocolExtended || second.Stage != "parse" || second.SQL != "select $1::int" || len(results[second.Seq]) != 1 ||
		results[second.Seq][0].Tag != "SELECT 1" {
		t.Fatalf("second statement %+v, results %+v", second, results[second.Seq])
	}
	if bind.Stage != "bind" || bind.SQL != "select $1::int" || bind.Verdict != "allow" || len(bind.Params) != 1 ||
		bind.Params[0] == nil || (*bind.Params[0] != "5" && *bind.Params[0] != `\x00000005`) {
		t.Fatalf("bind %+v, want the parameter 5", bind)
	}
	if third.Verdict != "block" || third.Rule != "no-forbidden" || results[third.Seq][0].ErrorCode != "42501" {
		t.Fatalf("third statement %+v, results %+v", third, results[third.Seq])
	}
	if end := evs[len(evs)-1].End; end.Reason != session.EndClientExit || end.Statements != 4 {
		t.Fatalf("end %+v", end)
	}
}

func TestRecorderFailureFailsClosed(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	setup := connect(t, g.dsn("alice", alicePassword))
	if _, err := setup.Exec(ctx, "create table if not exists unrecorded(n int)"); err != nil {
		t.Fatal(err)
	}
	g.rec.mu.Lock()
	g.rec.fail = func(ev session.Event) error {
		if ev.Kind == session.KindStatement && ev.Statement.SQL == "insert into unrecorded values (1)" {
			return errors.New("disk full")
		}
		return nil
	}
	g.rec.mu.Unlock()
	c := connectRaw(t, g.dsn("alice", alicePassword))
	err := execErr(ctx, c, "insert into unrecorded values (1)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" {
		t.Fatalf("err = %v, want a FATAL: a statement that cannot be recorded must not run", err)
	}
	var n int
	if err := setup.QueryRow(ctx, "select count(*) from unrecorded").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the unrecorded statement ran: %d rows, %v", n, err)
	}
}

func TestRecorderFailingAtStartRefusesTheSession(t *testing.T) {
	g := startGateway(t, nil)
	g.rec.fail = func(ev session.Event) error {
		if ev.Kind == session.KindSessionStart {
			return errors.New("audit store down")
		}
		return nil
	}
	_, err := pgx.Connect(context.Background(), g.dsn("alice", alicePassword))
	if pgCode(err) != "58000" {
		t.Fatalf("err = %v, want SQLSTATE 58000", err)
	}
}

// TestResultsNameTheStatementTheServerRan checks the gateway's model of
// prepared statements and portals against the server's in the awkward
// cases: a failed Parse of a name followed by a good one in the same
// pipeline, and a Parse that the server refuses because the name exists.
func TestResultsNameTheStatementTheServerRan(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	c := connectRaw(t, g.dsn("alice", alicePassword))
	pipe := c.StartPipeline(ctx)
	pipe.SendPrepare("s1", "select 1/", nil) // a syntax error
	pipe.SendPipelineSync()
	pipe.SendPrepare("s1", "select 41", nil)
	pipe.SendQueryPrepared("s1", nil, nil, nil)
	pipe.SendPipelineSync()
	pipe.SendPrepare("s1", "select 43", nil) // refused by the server: s1 exists
	pipe.SendPipelineSync()
	pipe.SendQueryPrepared("s1", nil, nil, nil)
	pipe.SendPipelineSync()
	if err := pipe.Flush(); err != nil {
		t.Fatal(err)
	}
	var values []string
	for syncs := 0; syncs < 4; {
		r, err := pipe.GetResults()
		switch r := r.(type) {
		case *pgconn.PipelineSync:
			syncs++
		case *pgconn.ResultReader:
			if res := r.Read(); res.Err == nil && len(res.Rows) == 1 {
				values = append(values, string(res.Rows[0][0]))
			}
		case nil:
			if err == nil {
				t.Fatal("pipeline ended early")
			}
		}
	}
	pipe.Close()
	if strings.Join(values, ",") != "41,41" {
		t.Fatalf("the server returned %v; the test's premise is wrong", values)
	}
	c.Close(ctx)
	waitFor(t, func() bool {
		evs := g.rec.snapshot()
		return len(evs) > 0 && evs[len(evs)-1].Kind == session.KindSessionEnd
	})
	sqlOf := map[int64]string{}
	var ran []string
	for _, ev := range g.rec.snapshot() {
		if ev.Kind == session.KindStatement {
			sqlOf[ev.Statement.Seq] = ev.Statement.SQL
		}
		if ev.Kind == session.KindResult && ev.Result.Tag == "SELECT 1" {
			ran = append(ran, sqlOf[ev.Result.Seq])
		}
	}
	if strings.Join(ran, ",") != "select 41,select 41" {
		t.Fatalf("results recorded against %q, want both against \"select 41\"", ran)
	}
}
