package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// blockForbidden refuses statements that mention "forbidden", and every
// function call (fast-path). It stands in for a real policy.
var blockForbidden = policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
	if q.Protocol == session.ProtocolFunctionCall {
		return policy.Decision{Verdict: policy.Block, Rule: "no-fastpath", Reason: "Function calls are not allowed."}, nil
	}
	if strings.Contains(q.SQL, "forbidden") {
		return policy.Decision{Verdict: policy.Block, Rule: "no-forbidden", Reason: "That word is not allowed here."}, nil
	}
	return policy.Decision{Verdict: policy.Allow, Rule: "default"}, nil
})

// wantRefusal checks that err is the gateway's refusal under rule.
func wantRefusal(t testing.TB, err error, rule string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" || pgErr.Severity != "ERROR" ||
		!strings.Contains(pgErr.Message, `"`+rule+`"`) {
		t.Fatalf("err = %v, want ERROR 42501 naming rule %q", err, rule)
	}
}

func TestRefusedStatementsKeepTheSessionUsable(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	var n int
	check := func(step string) {
		t.Helper()
		if err := conn.QueryRow(ctx, "select 5").Scan(&n); err != nil || n != 5 {
			t.Fatalf("after %s: %d, %v", step, n, err)
		}
	}
	_, err := conn.Exec(ctx, "select 'forbidden'", pgx.QueryExecModeSimpleProtocol)
	wantRefusal(t, err, "no-forbidden")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr); pgErr.Detail != "That word is not allowed here." {
		t.Fatalf("detail %q", pgErr.Detail)
	}
	check("a refused simple query")
	_, err = conn.Exec(ctx, "select $1::text || 'forbidden'", "x")
	wantRefusal(t, err, "no-forbidden")
	check("a refused extended query")
	_, err = conn.Prepare(ctx, "named", "select 'forbidden'")
	wantRefusal(t, err, "no-forbidden")
	// The refused statement did not take the name.
	if _, err := conn.Prepare(ctx, "named", "select 1"); err != nil {
		t.Fatalf("preparing an allowed statement under the refused name: %v", err)
	}
	check("a refused prepared statement")
}

func TestRefusalInsideATransactionAbortsIt(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	if _, err := conn.Exec(ctx, "create table if not exists tx_guard(note text)"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "insert into tx_guard values ('must not be committed')", mode); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "select 'forbidden'", mode)
		wantRefusal(t, err, "no-forbidden")
		if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
			t.Fatalf("COMMIT after a refusal: %v, want the server to roll back", err)
		}
	}
	var count int
	if err := conn.QueryRow(ctx, "select count(*) from tx_guard").Scan(&count); err != nil || count != 0 {
		t.Fatalf("rows committed despite the refusal: %d, %v", count, err)
	}
}

func TestRefusalInAPipelineSkipsToSync(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	if _, err := conn.Exec(ctx, "create temp table pipe_guard(n int)"); err != nil {
		t.Fatal(err)
	}
	// One pipeline, one Sync: Parse/Bind/Describe/Execute for each statement.
	batch := &pgconn.Batch{}
	batch.ExecParams("insert into pipe_guard values (1)", nil, nil, nil, nil)
	batch.ExecParams("select 'forbidden'", nil, nil, nil, nil)
	batch.ExecParams("insert into pipe_guard values (2)", nil, nil, nil, nil)
	results, err := conn.PgConn().ExecBatch(ctx, batch).ReadAll()
	wantRefusal(t, err, "no-forbidden")
	if len(results) != 1 || results[0].Err != nil || results[0].CommandTag.String() != "INSERT 0 1" {
		t.Fatalf("results %+v: the statement before the refusal must run, the one after must be skipped", results)
	}
	var count int
	if err := conn.QueryRow(ctx, "select count(*) from pipe_guard").Scan(&count); err != nil || count != 0 {
		// The batch is one implicit transaction: the refusal rolls it back.
		t.Fatalf("rows after the refused batch: %d, %v", count, err)
	}
}

func TestRefusedFunctionCall(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	msgs := callInt4pl(t, g, 2, 3)
	if len(msgs) != 2 {
		t.Fatalf("answer %v", msgs)
	}
	e, ok := msgs[0].(*pgproto3.ErrorResponse)
	if !ok || e.Code != "42501" || !strings.Contains(e.Message, "no-fastpath") {
		t.Fatalf("answer %#v", msgs[0])
	}
}

func TestNoPolicyRefusesEveryStatement(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = nil })
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	for range 2 {
		_, err := conn.Exec(ctx, "select 1")
		wantRefusal(t, err, "no-policy")
	}
}

func TestPolicyErrorsFailClosed(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
			return policy.Decision{Verdict: policy.Allow}, errors.New("rule store unreachable")
		})
	})
	conn := connect(t, g.dsn("alice", alicePassword))
	_, err := conn.Exec(testContext(t), "select 1")
	wantRefusal(t, err, "policy-error")
	if strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("the policy's internal error reached the client: %v", err)
	}
}
