package proxy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
)

// A protocol-level Bind may bind a statement made by SQL PREPARE (they
// share one namespace): the gateway judges that Bind too, on what the name
// was prepared as.
func TestBindOfASQLPreparedStatementIsJudged(t *testing.T) {
	rulesFixture(t)
	noBoundDelete := policy.Func(func(_ context.Context, q *policy.Query) (policy.Decision, error) {
		for _, st := range q.Statements {
			if q.Stage == policy.StageBind && st.Is(policy.KindDelete) {
				return policy.Decision{Verdict: policy.Block, Rule: "no-bound-delete"}, nil
			}
		}
		return policy.Decision{Verdict: policy.Allow, Rule: "default"}, nil
	})
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = noBoundDelete })
	if err := pg.Exec(testContext(t), "app", "INSERT INTO rules_tx VALUES (4242)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Exec(context.Background(), "app", "DELETE FROM rules_tx WHERE n = 4242") })
	fe := rulesRaw(t, g)
	rulesSend(t, fe, &pgproto3.Query{String: "PREPARE rules_bind_del AS DELETE FROM rules_tx WHERE n = $1"})
	rulesWantAnswers(t, "PREPARE", rulesReceive(t, fe), "CommandComplete(PREPARE)", "Ready(I)")
	rulesSend(t, fe,
		&pgproto3.Bind{PreparedStatement: "rules_bind_del", Parameters: [][]byte{[]byte("4242")}},
		&pgproto3.Execute{}, &pgproto3.Sync{})
	rulesWantAnswers(t, "Bind of the SQL-prepared DELETE", rulesReceive(t, fe), rulesRefusedAnswer("no-bound-delete"), "Ready(I)")
	if n := rulesSuperValue(t, "SELECT count(*) FROM rules_tx WHERE n = 4242"); n != "1" {
		t.Errorf("rows left: %s; the refused Bind ran", n)
	}
	// The session goes on.
	rulesSend(t, fe, &pgproto3.Query{String: "SELECT 'alive'"})
	rulesWantAnswers(t, "a query after the refusal", rulesReceive(t, fe),
		"RowDescription", "DataRow(alive)", "CommandComplete(SELECT 1)", "Ready(I)")
}

// SQL EXECUTE may run a statement prepared by the protocol's Parse: the
// gateway judges it as what the Parse prepared.
func TestSQLExecuteOfAParsedStatementIsJudged(t *testing.T) {
	rulesFixture(t)
	noQueriedDelete := policy.Func(func(_ context.Context, q *policy.Query) (policy.Decision, error) {
		for _, st := range q.Statements {
			if q.Stage == policy.StageQuery && st.Is(policy.KindDelete) {
				return policy.Decision{Verdict: policy.Block, Rule: "no-simple-delete"}, nil
			}
		}
		return policy.Decision{Verdict: policy.Allow, Rule: "default"}, nil
	})
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = noQueriedDelete })
	if err := pg.Exec(testContext(t), "app", "INSERT INTO rules_tx VALUES (4243)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Exec(context.Background(), "app", "DELETE FROM rules_tx WHERE n = 4243") })
	fe := rulesRaw(t, g)
	rulesSend(t, fe, &pgproto3.Parse{Name: "rules_parsed_del", Query: "DELETE FROM rules_tx WHERE n = $1"}, &pgproto3.Sync{})
	rulesWantAnswers(t, "Parse", rulesReceive(t, fe), "ParseComplete", "Ready(I)")
	rulesSend(t, fe, &pgproto3.Query{String: "EXECUTE rules_parsed_del(4243)"})
	rulesWantAnswers(t, "SQL EXECUTE of the parsed DELETE", rulesReceive(t, fe), rulesRefusedAnswer("no-simple-delete"), "Ready(I)")
	if n := rulesSuperValue(t, "SELECT count(*) FROM rules_tx WHERE n = 4243"); n != "1" {
		t.Errorf("rows left: %s; the refused EXECUTE ran", n)
	}
}

// Settings a client sets in its startup packet's options are settings
// too: BlockSettings refuses the statements of such a session.
func TestStartupOptionsReachTheSettingsRule(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.StartupParameters = []string{"options"}
		p.Policy = policy.FirstMatch(policy.BlockSettings(policy.ProtectedSettings()...), policy.Default("default", policy.Allow, ""))
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword, `options='-c role=`+rwRole+`'`))
	_, err := conn.Exec(ctx, "SELECT 1")
	wantRefusal(t, err, "block-settings")
	plain := connect(t, g.dsn("alice", alicePassword, `options='-c work_mem=8MB'`))
	var mem string
	if err := plain.QueryRow(ctx, "SHOW work_mem").Scan(&mem); err != nil || mem != "8MB" {
		t.Fatalf("a session with harmless startup options: %q, %v", mem, err)
	}
}
