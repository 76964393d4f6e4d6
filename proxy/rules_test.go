package proxy_test

// Hostile attempts to get around the built-in rules (read-only, blocked
// tables, dangerous functions, bind parameters, transactions, terminate and
// suspend, size limits, parser settings), through the gateway against the
// real cluster, on the simple protocol and on the extended protocol (unnamed
// statements and named prepared statements).
//
// The tests under "Regressions" were bugs found while writing these, each
// fixed since.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
)

// rulesSecretMarker is the value of the row the blocked-table rules hide.
const rulesSecretMarker = "rules-top-secret-marker"

// rulesMode is one protocol path through the gateway.
type rulesMode struct {
	name string
	mode pgx.QueryExecMode
}

// rulesModes are the paths every case runs on: a simple-protocol Query, an
// unnamed extended-protocol statement (Parse/Bind/Execute), and a named
// prepared statement (Parse once, Bind per run).
var rulesModes = []rulesMode{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"extended", pgx.QueryExecModeExec},
	{"prepared", pgx.QueryExecModeCacheStatement},
}

var (
	rulesFixtureOnce sync.Once
	rulesFixtureErr  error
)

// rulesFixture creates, once per test binary, the tables, sequence,
// schema and functions these tests use; every name starts with rules_.
func rulesFixture(t testing.TB) {
	t.Helper()
	setupRoles(t)
	rulesFixtureOnce.Do(func() {
		rulesFixtureErr = pg.Exec(context.Background(), "app", `
			DROP TABLE IF EXISTS rules_ro, rules_ro_copy, rules_secret, rules_tx, rules_steal CASCADE;
			DROP VIEW IF EXISTS rules_v;
			DROP SEQUENCE IF EXISTS rules_seq;
			DROP SCHEMA IF EXISTS rules_hide CASCADE;
			CREATE TABLE rules_ro(id int PRIMARY KEY, note text NOT NULL);
			CREATE SEQUENCE rules_seq;
			CREATE TABLE rules_secret(id int, secret text);
			INSERT INTO rules_secret VALUES (1, '`+rulesSecretMarker+`');
			CREATE TABLE rules_tx(n int);
			CREATE SCHEMA rules_hide;
			CREATE TABLE rules_hide.rules_secret(id int, secret text);
			INSERT INTO rules_hide.rules_secret VALUES (1, 'decoy');
			CREATE OR REPLACE FUNCTION rules_evil() RETURNS bigint LANGUAGE plpgsql AS $$
				DECLARE n bigint;
				BEGIN
					DELETE FROM rules_ro;
					GET DIAGNOSTICS n = ROW_COUNT;
					RETURN n;
				END $$;
			CREATE OR REPLACE FUNCTION rules_set_path(p text) RETURNS text LANGUAGE sql
				AS $$ SELECT set_config('search_path', p, false) $$;
			GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON rules_ro, rules_secret, rules_tx TO app_rw, app_md5;
			GRANT ALL ON SEQUENCE rules_seq TO app_rw, app_md5;
			GRANT USAGE ON SCHEMA rules_hide TO app_rw, app_md5;
			GRANT SELECT ON rules_hide.rules_secret TO app_rw, app_md5;
			GRANT EXECUTE ON FUNCTION rules_evil(), rules_set_path(text) TO app_rw, app_md5;`)
	})
	if rulesFixtureErr != nil {
		t.Fatalf("creating the rules fixture: %v", rulesFixtureErr)
	}
	rulesResetReadOnlyData(t)
}

// rulesResetReadOnlyData puts rules_ro and rules_seq back as the read-only
// tests expect them (a failing test may have changed them).
func rulesResetReadOnlyData(t testing.TB) {
	t.Helper()
	if err := pg.Exec(testContext(t), "app", `
		DELETE FROM rules_ro;
		INSERT INTO rules_ro VALUES (1, 'one'), (2, 'two'), (3, 'three');
		SELECT setval('rules_seq', 1, false);
		DROP TABLE IF EXISTS rules_ro_copy;`); err != nil {
		t.Fatal(err)
	}
}

// rulesSuperValue runs sql as the superuser, directly on the cluster, and
// returns the first column of the first row of the last result ("" when
// it has no rows).
func rulesSuperValue(t testing.TB, sql string) string {
	t.Helper()
	ctx := testContext(t)
	c, err := pgconn.Connect(ctx, pg.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	res, err := c.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	last := res[len(res)-1]
	if len(last.Rows) == 0 {
		return ""
	}
	return string(last.Rows[0][0])
}

// rulesReadOnlySnapshot describes everything the read-only tests try to
// change: rules_ro's rows, rules_seq, and whether rules_ro_copy exists.
func rulesReadOnlySnapshot(t testing.TB) string {
	t.Helper()
	return rulesSuperValue(t, `SELECT
		(SELECT count(*) || ' rows: ' || coalesce(string_agg(id || '=' || note, ',' ORDER BY id), '') FROM rules_ro)
		|| '; seq ' || (SELECT last_value || '/' || is_called FROM rules_seq)
		|| '; copy ' || (to_regclass('public.rules_ro_copy') IS NOT NULL)
		|| '; ' || (SELECT count(*) FROM pg_prepared_xacts)`)
}

// rulesRun runs sql on conn over the protocol path mode and returns the rows
// as text.
func rulesRun(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string, args ...any) ([][]string, error) {
	rows, err := conn.Query(ctx, sql, append([]any{mode}, args...)...)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return out, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	rows.Close()
	return out, rows.Err()
}

// rulesTag runs one statement on conn over mode with pgconn and returns its
// command tag.
func rulesTag(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) (string, error) {
	pc := conn.PgConn()
	switch mode {
	case pgx.QueryExecModeSimpleProtocol:
		res, err := pc.Exec(ctx, sql).ReadAll()
		if err != nil {
			return "", err
		}
		return res[len(res)-1].CommandTag.String(), nil
	case pgx.QueryExecModeExec:
		r := pc.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		return r.CommandTag.String(), r.Err
	}
	if _, err := pc.Prepare(ctx, "rules_tag", sql, nil); err != nil {
		return "", err
	}
	defer pc.Deallocate(ctx, "rules_tag")
	r := pc.ExecPrepared(ctx, "rules_tag", nil, nil, nil).Read()
	return r.CommandTag.String(), r.Err
}

// rulesRefusal reports why err is not the gateway's refusal under rule,
// or "" when it is: ERROR 42501 naming the rule, with the reason in the
// detail.
func rulesRefusal(err error, rule string) string {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return "no error: the statement was allowed"
	case !errors.As(err, &pgErr):
		return fmt.Sprintf("not a server error: %v", err)
	case pgErr.Severity != "ERROR" || pgErr.Code != "42501" ||
		pgErr.Message != fmt.Sprintf("pgwarden: statement refused by rule %q", rule):
		return fmt.Sprintf("%s %s %q (detail %q)", pgErr.Severity, pgErr.Code, pgErr.Message, pgErr.Detail)
	case pgErr.Detail == "":
		return "the refusal has no reason in its detail"
	}
	return ""
}

// rulesWantRefusal fails t unless err is the refusal under rule.
func rulesWantRefusal(t testing.TB, err error, rule string) {
	t.Helper()
	if why := rulesRefusal(err, rule); why != "" {
		t.Errorf("want ERROR 42501 refused by rule %q; got %s", rule, why)
	}
}

// rulesAlive fails t unless conn still runs statements over mode.
func rulesAlive(t testing.TB, ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode) {
	t.Helper()
	if conn.PgConn().TxStatus() == 'E' || conn.PgConn().TxStatus() == 'T' {
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			t.Errorf("ROLLBACK: %v", err)
		}
	}
	rows, err := rulesRun(ctx, conn, mode, "SELECT 41 + 1")
	if err != nil || len(rows) != 1 || rows[0][0] != "42" {
		t.Fatalf("the session no longer works: %v, %v", rows, err)
	}
}

// rulesCase is a statement and what the gateway must do with it.
type rulesCase struct {
	name string
	sql  string
	// rule is the rule that must refuse the statement; empty means the
	// statement must run without error.
	rule string
}

// rulesRunCases runs every case on a session of alice per protocol path,
// checking after each that the session still works and, with check, that
// nothing changed.
func rulesRunCases(t *testing.T, g *gateway, cases []rulesCase, check func(t *testing.T)) {
	t.Helper()
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					rows, err := rulesRun(ctx, conn, m.mode, c.sql)
					if c.rule == "" {
						if err != nil {
							t.Errorf("%q: %v, want it to run", c.sql, err)
						}
					} else {
						if why := rulesRefusal(err, c.rule); why != "" {
							t.Errorf("%q: want ERROR 42501 refused by rule %q; got %s (rows %q)", c.sql, c.rule, why, rows)
						}
					}
					if check != nil {
						check(t)
					}
					rulesAlive(t, ctx, conn, m.mode)
				})
			}
		})
	}
}

// rulesRaw opens a session of alice through g and takes it over for raw
// protocol messages.
func rulesRaw(t testing.TB, g *gateway) *pgproto3.Frontend {
	t.Helper()
	fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	t.Cleanup(func() { conn.Close() })
	return fe
}

// rulesSend sends msgs and flushes them.
func rulesSend(t testing.TB, fe *pgproto3.Frontend, msgs ...pgproto3.FrontendMessage) {
	t.Helper()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
}

// rulesReceive reads the answers up to ReadyForQuery, or until the
// connection ends (then the last entry is "EOF"), as short descriptions
// made at once (pgproto3 reuses its messages). Notices and parameter
// statuses are left out.
func rulesReceive(t testing.TB, fe *pgproto3.Frontend) []string {
	t.Helper()
	var out []string
	for {
		m, err := fe.Receive()
		if err != nil {
			return append(out, "EOF")
		}
		switch m := m.(type) {
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
			continue
		case *pgproto3.ParseComplete:
			out = append(out, "ParseComplete")
		case *pgproto3.BindComplete:
			out = append(out, "BindComplete")
		case *pgproto3.CloseComplete:
			out = append(out, "CloseComplete")
		case *pgproto3.NoData:
			out = append(out, "NoData")
		case *pgproto3.RowDescription:
			out = append(out, "RowDescription")
		case *pgproto3.DataRow:
			vals := make([]string, len(m.Values))
			for i, v := range m.Values {
				vals[i] = string(v)
			}
			out = append(out, "DataRow("+strings.Join(vals, ",")+")")
		case *pgproto3.CommandComplete:
			out = append(out, "CommandComplete("+string(m.CommandTag)+")")
		case *pgproto3.EmptyQueryResponse:
			out = append(out, "EmptyQuery")
		case *pgproto3.ErrorResponse:
			out = append(out, fmt.Sprintf("%s %s: %s", m.Severity, m.Code, m.Message))
		case *pgproto3.FunctionCallResponse:
			out = append(out, fmt.Sprintf("FunctionCallResponse(%x)", m.Result))
		case *pgproto3.ReadyForQuery:
			return append(out, "Ready("+string(m.TxStatus)+")")
		default:
			out = append(out, fmt.Sprintf("%T", m))
		}
	}
}

// rulesWantAnswers fails t unless got is want.
func rulesWantAnswers(t testing.TB, step string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: answers\n  %q\nwant\n  %q", step, got, want)
	}
}

// rulesRefusedAnswer is the ErrorResponse of a refusal under rule, as
// rulesReceive describes it.
func rulesRefusedAnswer(rule string) string {
	return fmt.Sprintf("ERROR 42501: pgwarden: statement refused by rule %q", rule)
}

func rulesReadOnlyPolicy(ro policy.ReadOnly) policy.Policy {
	return policy.FirstMatch(ro, policy.Default("default", policy.Allow, ""))
}

func rulesBlockSecretPolicy() policy.Policy {
	return policy.FirstMatch(policy.BlockTables("public.rules_secret"), policy.Default("default", policy.Allow, ""))
}

// ---------------------------------------------------------------------------
// 1. Read-only.

func TestRulesReadOnlyRefusesWrites(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{}) })
	before := rulesReadOnlySnapshot(t)
	const ro = "read-only"
	cases := []rulesCase{
		{"DELETE", "DELETE FROM rules_ro", ro},
		{"UPDATE", "UPDATE rules_ro SET note = 'x'", ro},
		{"INSERT", "INSERT INTO rules_ro VALUES (99, 'x')", ro},
		{"MERGE", "MERGE INTO rules_ro t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", ro},
		{"TRUNCATE", "TRUNCATE rules_ro", ro},
		{"COPY FROM", "COPY rules_ro FROM STDIN", ro},
		{"nested block comment", "/* x /* nested */ */ DELETE FROM rules_ro", ro},
		{"line comment ended by a bare CR", "SELECT 1 --c\r; DELETE FROM rules_ro", ro},
		{"line comment ended by LF", "SELECT 1 --c\n; DELETE FROM rules_ro", ro},
		{"mixed case", "dElEtE fRoM rules_ro", ro},
		{"quoted table", `DELETE FROM "rules_ro"`, ro},
		{"quoted schema and table", `DELETE FROM "public"."rules_ro"`, ro},
		{"unicode-escaped identifier", `DELETE FROM U&"rules\005fro"`, ro},
		{"database-qualified table", "DELETE FROM app.public.rules_ro", ro},
		{"after an escape string ending in a backslash", `SELECT E'\\'; DELETE FROM rules_ro`, ro},
		{"after a dollar-quoted string", "SELECT $a$ $$ ' $a$; DELETE FROM rules_ro", ro},
		{"DO block", "DO $$ BEGIN DELETE FROM rules_ro; END $$", ro},
		{"DO block with a tag and dynamic SQL", "DO $body$ BEGIN EXECUTE 'DELETE FROM rules_ro'; END $body$", ro},
		{"DO block as a plain string", "DO LANGUAGE plpgsql 'BEGIN DELETE FROM rules_ro; END'", ro},
		{"multi-statement", "SELECT 1; DELETE FROM rules_ro", ro},
		{"multi-statement with empty statements", "SELECT 1;;; DELETE FROM rules_ro;", ro},
		{"CTE with DELETE", "WITH x AS (DELETE FROM rules_ro RETURNING *) SELECT * FROM x", ro},
		{"CTE with UPDATE", "WITH x AS (UPDATE rules_ro SET note = 'x' RETURNING *) SELECT count(*) FROM x", ro},
		{"DELETE after a reading CTE", "WITH x AS (SELECT 1) DELETE FROM rules_ro", ro},
		{"SELECT INTO", "SELECT * INTO rules_ro_copy FROM rules_ro", ro},
		{"CREATE TABLE AS", "CREATE TABLE rules_ro_copy AS SELECT * FROM rules_ro", ro},
		{"COPY of a DELETE", "COPY (DELETE FROM rules_ro RETURNING *) TO STDOUT", ro},
		{"SELECT FOR UPDATE", "SELECT * FROM rules_ro FOR UPDATE", ro},
		{"SELECT FOR NO KEY UPDATE", "SELECT * FROM rules_ro FOR NO KEY UPDATE", ro},
		{"SELECT FOR SHARE in a subquery", "SELECT * FROM (SELECT * FROM rules_ro FOR SHARE) s", ro},
		{"LOCK TABLE", "LOCK TABLE rules_ro IN EXCLUSIVE MODE", ro},
		{"EXPLAIN ANALYZE DELETE", "EXPLAIN ANALYZE DELETE FROM rules_ro", ro},
		{"EXPLAIN (ANALYZE, FORMAT JSON) UPDATE", "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE rules_ro SET note = 'x'", ro},
		{"EXPLAIN (ANALYZE on) INSERT", "EXPLAIN (ANALYZE on) INSERT INTO rules_ro VALUES (98, 'x')", ro},
		{"PREPARE of a DELETE", "PREPARE rules_p AS DELETE FROM rules_ro", ro},
		{"EXECUTE of a statement the gateway never saw", "EXECUTE rules_p", ro},
		{"PREPARE and EXECUTE in one text", "PREPARE rules_q AS DELETE FROM rules_ro; EXECUTE rules_q", ro},
		{"DECLARE of a locking cursor", "DECLARE rules_c CURSOR WITH HOLD FOR SELECT * FROM rules_ro FOR UPDATE", ro},
		{"user function that writes", "SELECT rules_evil()", ro},
		{"user function in FROM", "SELECT * FROM rules_evil()", ro},
		{"qualified, quoted user function", `SELECT "public"."rules_evil"()`, ro},
		{"CALL", "CALL public.rules_nothing()", ro},
		{"nextval", "SELECT nextval('rules_seq')", ro},
		{"setval", "SELECT setval('rules_seq', 100)", ro},
		{"nextval in a WHERE clause", "SELECT 1 WHERE nextval('rules_seq') > 0", ro},
		{"lo_create", "SELECT lo_create(0)", ro},
		{"SQL given as text", "SELECT query_to_xml('select 1', true, true, '')", ro},
		{"NOTIFY", "NOTIFY rules_channel", ro},
		{"set_config", "SELECT set_config('default_transaction_read_only', 'off', false)", ro},
		{"set_config, upper-case name", "SELECT set_config('DEFAULT_TRANSACTION_READ_ONLY', 'off', false)", ro},
		{"set_config of transaction_read_only", "SELECT set_config('transaction_read_only', 'off', true)", ro},
		{"set_config with a computed value", "SELECT set_config('default_transaction_read_only', 'o' || 'ff', false)", ro},
		{"set_config with a computed name", "SELECT set_config('default_transaction_' || 'read_only', 'off', false)", "parser-settings"},
		{"SET", "SET default_transaction_read_only = off", ro},
		{"SET TO false", "SET default_transaction_read_only TO false", ro},
		{"SET = 0", "SET default_transaction_read_only = 0", ro},
		{"SET quoted name, abbreviated value", `SET "default_transaction_read_only" = 'of'`, ro},
		{"SET SESSION", "SET SESSION default_transaction_read_only = off", ro},
		{"SET LOCAL transaction_read_only", "SET LOCAL transaction_read_only = off", ro},
		{"SET TO DEFAULT", "SET default_transaction_read_only TO DEFAULT", ro},
		{"SET FROM CURRENT", "SET default_transaction_read_only FROM CURRENT", ro},
		{"RESET", "RESET default_transaction_read_only", ro},
		{"RESET ALL", "RESET ALL", ro},
		{"DISCARD ALL", "DISCARD ALL", ro},
		{"SET SESSION CHARACTERISTICS", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", ro},
		{"SET SESSION CHARACTERISTICS with isolation", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", ro},
		{"BEGIN READ WRITE", "BEGIN READ WRITE", ro},
		{"START TRANSACTION READ ONLY, READ WRITE", "START TRANSACTION READ ONLY, READ WRITE", ro},
		{"BEGIN ISOLATION LEVEL ... READ WRITE", "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE", ro},
		{"SET TRANSACTION READ WRITE", "SET TRANSACTION READ WRITE", ro},
		{"BEGIN; SET TRANSACTION READ WRITE; DELETE", "BEGIN; SET TRANSACTION READ WRITE; DELETE FROM rules_ro; COMMIT", ro},
		{"ALTER ROLE SET", "ALTER ROLE app_rw SET default_transaction_read_only = off", ro},
		{"ALTER DATABASE SET", "ALTER DATABASE app SET default_transaction_read_only = off", ro},
		{"CREATE FUNCTION", "CREATE FUNCTION rules_new() RETURNS int LANGUAGE sql AS 'SELECT 1'", ro},
		{"GRANT", "GRANT ALL ON rules_ro TO PUBLIC", ro},
		{"VACUUM", "VACUUM rules_ro", ro},
		{"COMMIT PREPARED", "COMMIT PREPARED 'rules_gid'", ro},

		// What only looks like a write is a read: the gateway must read it
		// as the server does, and let it run.
		{"DELETE as a column alias after a CR-ended comment", "SELECT 1 --c\rDELETE FROM rules_ro", ""},
		{"DELETE inside a string", "SELECT 'x''; DELETE FROM rules_ro; --'", ""},
		{"DELETE inside an escape string", `SELECT E'\'; DELETE FROM rules_ro; --'`, ""},
		{"DELETE inside a dollar-quoted string", "SELECT $$; DELETE FROM rules_ro; $$", ""},
		{"DELETE inside a comment", "SELECT 1 /* ; DELETE FROM rules_ro */", ""},
		{"a plain read", "SELECT count(*) FROM rules_ro", ""},
		{"SET read-only on", "SET default_transaction_read_only = on", ""},
		{"SHOW", "SHOW default_transaction_read_only", ""},
	}
	rulesRunCases(t, g, cases, func(t *testing.T) {
		t.Helper()
		if got := rulesReadOnlySnapshot(t); got != before {
			t.Errorf("the data changed: %s; was %s", got, before)
		}
	})
}

func TestRulesReadOnlySessionsAreReadOnlyOnTheServer(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{}) })
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			for _, q := range []string{"SHOW default_transaction_read_only", "SHOW transaction_read_only",
				"SELECT current_setting('default_transaction_read_only')"} {
				rows, err := rulesRun(ctx, conn, m.mode, q)
				if err != nil || len(rows) != 1 || rows[0][0] != "on" {
					t.Errorf("%s: %q, %v; want on", q, rows, err)
				}
			}
		})
	}
}

func TestRulesReadOnlyServerRefusesWritesTheGatewayLetThrough(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{AllowRunTime: true})
	})
	before := rulesReadOnlySnapshot(t)
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			for _, q := range []string{"SELECT rules_evil()", "SELECT * FROM rules_evil()", "SELECT public.rules_evil() + 1"} {
				// The gateway lets the run-time call through; the server's
				// read-only mode must refuse the DELETE inside.
				rows, err := rulesRun(ctx, conn, m.mode, q)
				if pgCode(err) != "25006" {
					t.Errorf("%s: %q, %v; want the server's 25006 read_only_sql_transaction", q, rows, err)
				}
				rulesAlive(t, ctx, conn, m.mode)
			}
			// What the gateway can see stays refused.
			for _, c := range []rulesCase{
				{"DO", "DO $$ BEGIN DELETE FROM rules_ro; END $$", "read-only"},
				{"CALL", "CALL public.rules_nothing()", "read-only"},
				{"nextval", "SELECT nextval('rules_seq')", "read-only"},
				{"DELETE", "DELETE FROM rules_ro", "read-only"},
				{"set_config", "SELECT set_config('default_transaction_read_only', 'off', false)", "read-only"},
			} {
				_, err := rulesRun(ctx, conn, m.mode, c.sql)
				if why := rulesRefusal(err, c.rule); why != "" {
					t.Errorf("%s: %s", c.name, why)
				}
				rulesAlive(t, ctx, conn, m.mode)
			}
			if got := rulesReadOnlySnapshot(t); got != before {
				t.Errorf("the data changed: %s; was %s", got, before)
			}
		})
	}
}

func TestRulesReadOnlyStartupOptionsCannotTurnItOff(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{AllowRunTime: true})
		p.StartupParameters = []string{"options"}
	})
	before := rulesReadOnlySnapshot(t)
	dsn := g.dsn("alice", alicePassword, "options='-c default_transaction_read_only=off -c work_mem=7777kB'")
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, dsn)
			// The options reached the server...
			if rows, err := rulesRun(ctx, conn, m.mode, "SHOW work_mem"); err != nil || len(rows) != 1 || rows[0][0] != "7777kB" {
				t.Fatalf("SHOW work_mem: %q, %v; the startup options did not reach the server", rows, err)
			}
			// ...but not the way out of read-only mode.
			if rows, err := rulesRun(ctx, conn, m.mode, "SHOW default_transaction_read_only"); err != nil || len(rows) != 1 || rows[0][0] != "on" {
				t.Errorf("SHOW default_transaction_read_only: %q, %v; want on", rows, err)
			}
			_, err := rulesRun(ctx, conn, m.mode, "INSERT INTO rules_ro VALUES (97, 'x')")
			rulesWantRefusal(t, err, "read-only")
			rulesAlive(t, ctx, conn, m.mode)
			if rows, err := rulesRun(ctx, conn, m.mode, "SELECT rules_evil()"); pgCode(err) != "25006" {
				t.Errorf("SELECT rules_evil(): %q, %v; want the server's 25006", rows, err)
			}
			rulesAlive(t, ctx, conn, m.mode)
			if got := rulesReadOnlySnapshot(t); got != before {
				t.Errorf("the data changed: %s; was %s", got, before)
			}
		})
	}
}

// pg_notify() sends a notification as NOTIFY does (and the server allows it
// in a read-only transaction).
func TestRulesReadOnlyRefusesNotifications(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{}) })
	ctx := testContext(t)
	listener, err := pgx.Connect(ctx, pg.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, "LISTEN rules_channel"); err != nil {
		t.Fatal(err)
	}
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			conn := connect(t, g.dsn("alice", alicePassword))
			_, err := rulesRun(ctx, conn, m.mode, "NOTIFY rules_channel, 'statement'")
			rulesWantRefusal(t, err, "read-only")
			for _, q := range []string{"SELECT pg_notify('rules_channel', 'function')",
				"SELECT pg_catalog.pg_notify('rules_channel', 'qualified')",
				"SELECT 1 FROM (SELECT pg_notify('rules_channel', 'nested')) s"} {
				_, err = rulesRun(ctx, conn, m.mode, q)
				why := rulesRefusal(err, "read-only")
				if why == "" {
					continue
				}
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				n, werr := listener.WaitForNotification(wctx)
				t.Errorf("%s in a read-only session: want refused by read-only; got %s (listener received %+v, %v)", q, why, n, werr)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Blocked tables.

func TestRulesBlockTables(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	const bt = "block-tables"
	cases := []rulesCase{
		{"unqualified", "SELECT * FROM rules_secret", bt},
		{"qualified", "SELECT * FROM public.rules_secret", bt},
		{"quoted", `SELECT * FROM "rules_secret"`, bt},
		{"quoted schema and table", `SELECT * FROM "public"."rules_secret"`, bt},
		{"upper case", "SELECT * FROM PUBLIC.RULES_SECRET", bt},
		{"database-qualified", "SELECT * FROM app.public.rules_secret", bt},
		{"unicode-escaped identifier", `SELECT * FROM U&"rules\005fsecret"`, bt},
		{"unicode escape with UESCAPE", `SELECT * FROM U&"!0072ules_secret" UESCAPE '!'`, bt},
		{"TABLE", "TABLE rules_secret", bt},
		{"ONLY", "SELECT * FROM ONLY rules_secret", bt},
		{"scalar subquery", "SELECT (SELECT secret FROM rules_secret LIMIT 1)", bt},
		{"EXISTS", "SELECT 1 WHERE EXISTS (SELECT 1 FROM rules_secret)", bt},
		{"LATERAL", "SELECT b.* FROM (SELECT 1) a, LATERAL (SELECT * FROM rules_secret) b", bt},
		{"UNION", "SELECT 'x' UNION ALL SELECT secret FROM rules_secret", bt},
		{"whole-row reference", "SELECT row_to_json(s) FROM rules_secret s", bt},
		{"CTE reading the table", "WITH t AS (SELECT * FROM rules_secret) SELECT * FROM t", bt},
		{"CTE named like the table reading it", "WITH rules_secret AS (SELECT * FROM rules_secret) SELECT * FROM rules_secret", bt},
		{"CTE name out of scope", "SELECT * FROM (WITH rules_secret AS (SELECT 1) SELECT * FROM rules_secret) a, rules_secret", bt},
		{"CTE defined after its use", "WITH a AS (SELECT * FROM rules_secret), rules_secret AS (SELECT 1) SELECT * FROM a", bt},
		{"CTE named like the table, table qualified", "WITH rules_secret AS (SELECT 1) SELECT * FROM public.rules_secret", bt},
		{"CTE named with other case", `WITH "Rules_secret" AS (SELECT 1) SELECT * FROM rules_secret`, bt},
		{"COPY TO", "COPY rules_secret TO STDOUT", bt},
		{"COPY of a query", "COPY (SELECT * FROM rules_secret) TO STDOUT", bt},
		{"EXPLAIN ANALYZE", "EXPLAIN ANALYZE SELECT * FROM rules_secret", bt},
		{"DECLARE CURSOR", "DECLARE rules_c CURSOR WITH HOLD FOR SELECT * FROM rules_secret", bt},
		{"PREPARE", "PREPARE rules_ps AS SELECT * FROM rules_secret", bt},
		{"CREATE VIEW", "CREATE VIEW rules_v AS SELECT * FROM rules_secret", bt},
		{"CREATE TABLE AS", "CREATE TABLE rules_steal AS SELECT * FROM rules_secret", bt},
		{"INSERT ... SELECT", "INSERT INTO rules_tx SELECT id FROM rules_secret", bt},
		{"DELETE USING", "DELETE FROM rules_tx USING rules_secret WHERE false", bt},
		{"UPDATE RETURNING", "UPDATE rules_secret SET id = id RETURNING secret", bt},
		{"multi-statement", "SELECT 1; SELECT * FROM rules_secret", bt},
		{"search_path changed in the same text", "SET search_path = nonexistent, public; SELECT * FROM rules_secret", bt},
		{"set_config in the same statement", "SELECT set_config('search_path', 'rules_hide', false), * FROM rules_secret", bt},

		{"CTE named like the table", "WITH rules_secret AS (SELECT 1) SELECT * FROM rules_secret", ""},
		{"recursive CTE named like the table", "WITH RECURSIVE rules_secret(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM rules_secret WHERE n < 3) SELECT * FROM rules_secret", ""},
		{"the name in a string", "SELECT 'rules_secret'", ""},
		{"the name as an alias", "SELECT 1 AS rules_secret", ""},
		{"the name in the catalog", "SELECT count(*) FROM pg_class WHERE relname = 'rules_secret'", ""},
		{"another schema's table", "SELECT * FROM rules_hide.rules_secret", ""},
		{"another table", "SELECT * FROM rules_ro", ""},
	}
	rulesRunCases(t, g, cases, nil)
	if got := rulesSuperValue(t, "SELECT (to_regclass('public.rules_v') IS NULL AND to_regclass('public.rules_steal') IS NULL)::text"); got != "true" {
		t.Errorf("a refused CREATE ran: rules_v or rules_steal exists")
	}
}

func TestRulesBlockTablesReusedStatementNames(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	refused := rulesRefusedAnswer("block-tables")

	t.Run("Parse after Close", func(t *testing.T) {
		fe := rulesRaw(t, g)
		rulesSend(t, fe,
			&pgproto3.Parse{Name: "s1", Query: "SELECT 1"},
			&pgproto3.Close{ObjectType: 'S', Name: "s1"},
			&pgproto3.Parse{Name: "s1", Query: "SELECT secret FROM rules_secret"},
			&pgproto3.Bind{PreparedStatement: "s1"},
			&pgproto3.Execute{},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "Parse, Close, Parse of the blocked table", rulesReceive(t, fe),
			"ParseComplete", "CloseComplete", refused, "Ready(I)")
		// The name holds nothing now.
		rulesSend(t, fe, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got := rulesReceive(t, fe)
		if len(got) != 2 || !strings.HasPrefix(got[0], "ERROR 26000") || got[1] != "Ready(I)" {
			t.Errorf("Bind of the refused name: %q, want the server's 26000", got)
		}
		// In separate Syncs too.
		rulesSend(t, fe, &pgproto3.Parse{Name: "s2", Query: "SELECT 2"}, &pgproto3.Sync{})
		rulesWantAnswers(t, "Parse s2", rulesReceive(t, fe), "ParseComplete", "Ready(I)")
		rulesSend(t, fe, &pgproto3.Close{ObjectType: 'S', Name: "s2"}, &pgproto3.Sync{})
		rulesWantAnswers(t, "Close s2", rulesReceive(t, fe), "CloseComplete", "Ready(I)")
		rulesSend(t, fe, &pgproto3.Parse{Name: "s2", Query: "SELECT * FROM rules_secret"}, &pgproto3.Sync{})
		rulesWantAnswers(t, "Parse s2 again", rulesReceive(t, fe), refused, "Ready(I)")
		rulesSend(t, fe, &pgproto3.Bind{PreparedStatement: "s2"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := rulesReceive(t, fe); len(got) != 2 || !strings.HasPrefix(got[0], "ERROR 26000") {
			t.Errorf("Bind s2: %q, want the server's 26000", got)
		}
		rulesSend(t, fe, &pgproto3.Query{String: "SELECT 'alive'"})
		rulesWantAnswers(t, "a query after", rulesReceive(t, fe), "RowDescription", "DataRow(alive)", "CommandComplete(SELECT 1)", "Ready(I)")
	})

	t.Run("Parse over an existing name", func(t *testing.T) {
		fe := rulesRaw(t, g)
		rulesSend(t, fe,
			&pgproto3.Parse{Name: "s1", Query: "SELECT 'harmless'"},
			&pgproto3.Parse{Name: "s1", Query: "SELECT secret FROM rules_secret"},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "two Parses of s1", rulesReceive(t, fe), "ParseComplete", refused, "Ready(I)")
		rulesSend(t, fe, &pgproto3.Bind{PreparedStatement: "s1"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		rulesWantAnswers(t, "s1 still holds the first statement", rulesReceive(t, fe),
			"BindComplete", "DataRow(harmless)", "CommandComplete(SELECT 1)", "Ready(I)")
	})

	t.Run("unnamed statement replaced in a pipeline", func(t *testing.T) {
		fe := rulesRaw(t, g)
		rulesSend(t, fe,
			&pgproto3.Parse{Query: "SELECT 'harmless'"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT secret FROM rules_secret"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "pipeline", rulesReceive(t, fe),
			"ParseComplete", "BindComplete", "DataRow(harmless)", "CommandComplete(SELECT 1)", refused, "Ready(I)")
		rulesSend(t, fe, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := rulesReceive(t, fe); len(got) != 2 || !strings.HasPrefix(got[0], "ERROR 26000") {
			t.Errorf("Bind of the unnamed statement after its refused Parse: %q, want the server's 26000", got)
		}
	})

	for _, m := range rulesModes {
		t.Run("SQL PREPARE after DEALLOCATE/"+m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			steps := []struct{ sql, rule, want string }{
				{"PREPARE rules_p AS SELECT 1", "", ""},
				{"EXECUTE rules_p", "", "1"},
				{"DEALLOCATE rules_p", "", ""},
				{"PREPARE rules_p AS SELECT secret FROM rules_secret", "block-tables", ""},
				{"PREPARE rules_p AS SELECT 'harmless' UNION ALL SELECT secret FROM rules_secret", "block-tables", ""},
			}
			for _, s := range steps {
				rows, err := rulesRun(ctx, conn, m.mode, s.sql)
				switch {
				case s.rule != "":
					if why := rulesRefusal(err, s.rule); why != "" {
						t.Errorf("%s: %s", s.sql, why)
					}
				case err != nil:
					t.Errorf("%s: %v", s.sql, err)
				case s.want != "" && (len(rows) != 1 || rows[0][0] != s.want):
					t.Errorf("%s: %q, want %q", s.sql, rows, s.want)
				}
				rulesAlive(t, ctx, conn, m.mode)
			}
			// rules_p holds nothing: EXECUTE fails, and never returns the secret.
			rows, err := rulesRun(ctx, conn, m.mode, "EXECUTE rules_p")
			if err == nil || strings.Contains(fmt.Sprint(rows), rulesSecretMarker) {
				t.Errorf("EXECUTE rules_p after the refused PREPARE: %q, %v", rows, err)
			}
			rulesAlive(t, ctx, conn, m.mode)
			// A cursor on the table is refused, and FETCH finds none.
			_, err = rulesRun(ctx, conn, m.mode, "DECLARE rules_c CURSOR WITH HOLD FOR SELECT * FROM rules_secret")
			rulesWantRefusal(t, err, "block-tables")
			rulesAlive(t, ctx, conn, m.mode)
			rows, err = rulesRun(ctx, conn, m.mode, "FETCH ALL FROM rules_c")
			if err == nil || strings.Contains(fmt.Sprint(rows), rulesSecretMarker) {
				t.Errorf("FETCH from the refused cursor: %q, %v", rows, err)
			}
			rulesAlive(t, ctx, conn, m.mode)
		})
	}
}

func TestRulesBlockTablesSearchPath(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = rulesBlockSecretPolicy()
		p.StartupParameters = []string{"search_path"}
	})
	read := func(t *testing.T, ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, rule, want string) {
		t.Helper()
		rows, err := rulesRun(ctx, conn, mode, "SELECT secret FROM rules_secret")
		if rule != "" {
			if why := rulesRefusal(err, rule); why != "" {
				t.Errorf("unqualified read: %s (rows %q)", why, rows)
			}
		} else if err != nil || len(rows) != 1 || rows[0][0] != want {
			t.Errorf("unqualified read: %q, %v; want %q", rows, err, want)
		}
		rulesAlive(t, ctx, conn, mode)
	}
	set := func(t *testing.T, ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) {
		t.Helper()
		if _, err := rulesRun(ctx, conn, mode, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			t.Run("SET search_path", func(t *testing.T) {
				conn := connect(t, g.dsn("alice", alicePassword))
				set(t, ctx, conn, m.mode, "SET search_path = nonexistent, public")
				read(t, ctx, conn, m.mode, "block-tables", "")
			})
			t.Run("set_config", func(t *testing.T) {
				conn := connect(t, g.dsn("alice", alicePassword))
				set(t, ctx, conn, m.mode, "SELECT set_config('search_path', 'public', false)")
				read(t, ctx, conn, m.mode, "block-tables", "")
			})
			t.Run("started elsewhere, then set_config", func(t *testing.T) {
				// The session starts with only rules_hide in its path: the
				// unqualified name is rules_hide's decoy and is allowed,
				// until the path may reach public.
				conn := connect(t, g.dsn("alice", alicePassword, "search_path=rules_hide"))
				read(t, ctx, conn, m.mode, "", "decoy")
				set(t, ctx, conn, m.mode, "SELECT set_config('search_path', 'public', false)")
				read(t, ctx, conn, m.mode, "block-tables", "")
			})
			t.Run("started elsewhere, then SET back", func(t *testing.T) {
				conn := connect(t, g.dsn("alice", alicePassword, "search_path=rules_hide"))
				set(t, ctx, conn, m.mode, `SET search_path = "$user", PUBLIC`)
				set(t, ctx, conn, m.mode, "SET search_path = rules_hide")
				// The server is back on rules_hide, but the gateway cannot
				// know which path a rolled-back or later change left: it
				// keeps every schema named.
				read(t, ctx, conn, m.mode, "block-tables", "")
			})
			t.Run("started elsewhere, then a computed path", func(t *testing.T) {
				conn := connect(t, g.dsn("alice", alicePassword, "search_path=rules_hide"))
				set(t, ctx, conn, m.mode, "SELECT set_config('search_path', 'pub' || 'lic', false)")
				read(t, ctx, conn, m.mode, "block-tables", "")
			})
		})
	}
}

// ---------------------------------------------------------------------------
// 3. Dangerous functions.

func TestRulesDangerousFunctions(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = policy.FirstMatch(policy.BlockFunctions(policy.DangerousFunctions()...), policy.Default("default", policy.Allow, ""))
	})
	const bf = "block-functions"
	cases := []rulesCase{
		{"pg_read_file", "SELECT pg_read_file('/etc/passwd')", bf},
		{"qualified", "SELECT pg_catalog.pg_read_file('/etc/passwd')", bf},
		{"upper case", "SELECT PG_READ_FILE('/etc/passwd')", bf},
		{"quoted", `SELECT "pg_read_file"('/etc/passwd')`, bf},
		{"quoted schema", `SELECT "pg_catalog"."pg_read_file"('/etc/passwd')`, bf},
		{"in FROM", "SELECT * FROM pg_read_file('/etc/passwd')", bf},
		{"in FROM with ROWS FROM", "SELECT * FROM ROWS FROM (pg_read_file('/etc/passwd'))", bf},
		{"nested", "SELECT length(pg_read_file('/etc/passwd'))", bf},
		{"named argument", "SELECT pg_read_file(filename => '/etc/passwd')", bf},
		{"in a CTE", "WITH f AS (SELECT pg_read_file('/etc/passwd') AS x) SELECT * FROM f", bf},
		{"in a WHERE", "SELECT 1 WHERE pg_read_file('/etc/passwd') IS NOT NULL", bf},
		{"in ORDER BY", "SELECT 1 ORDER BY pg_read_file('/etc/passwd')", bf},
		{"in a lateral join", "SELECT * FROM (SELECT '/etc/passwd' AS f) a, LATERAL pg_read_file(a.f) b", bf},
		{"EXPLAIN ANALYZE", "EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')", bf},
		{"PREPARE", "PREPARE rules_f AS SELECT pg_read_file('/etc/passwd')", bf},
		{"COPY of a query", "COPY (SELECT pg_read_file('/etc/passwd')) TO STDOUT", bf},
		{"CREATE VIEW", "CREATE VIEW rules_v AS SELECT pg_read_file('/etc/passwd')", bf},
		{"multi-statement", "SELECT 1; SELECT pg_read_file('/etc/passwd')", bf},
		{"pg_read_binary_file", "SELECT pg_read_binary_file('/etc/passwd')", bf},
		{"pg_ls_dir", "SELECT pg_ls_dir('.')", bf},
		{"lo_import", "SELECT lo_import('/etc/passwd')", bf},
		{"lo_export", "SELECT lo_export(0, '/tmp/rules_lo')", bf},
		{"lo_create", "SELECT lo_create(0)", bf},
		{"lo_get", "SELECT lo_get(0)", bf},
		{"query_to_xml", "SELECT query_to_xml('select * from rules_secret', true, true, '')", bf},
		{"table_to_xml", "SELECT table_to_xml('rules_secret', true, true, '')", bf},
		{"cursor_to_xml", "SELECT cursor_to_xml('c', 1, true, true, '')", bf},
		{"set_config", "SELECT set_config('work_mem', '64MB', false)", bf},
		{"set_config, computed name", "SELECT set_config('work' || '_mem', '64MB', false)", "parser-settings"},
		{"pg_terminate_backend", "SELECT pg_terminate_backend(0)", bf},
		{"pg_cancel_backend", "SELECT pg_cancel_backend(0)", bf},
		{"pg_reload_conf", "SELECT pg_reload_conf()", bf},
		{"a function named like a dangerous one in another schema", "SELECT rules_hide.pg_read_file('x')", bf},

		{"a harmless built-in", "SELECT lower('X')", ""},
		{"the name in a string", "SELECT 'pg_read_file(''/etc/passwd'')'", ""},
		{"current_setting", "SELECT current_setting('work_mem')", ""},
	}
	rulesRunCases(t, g, cases, nil)
	if got := rulesSuperValue(t, "SELECT (to_regclass('public.rules_v') IS NULL)::text"); got != "true" {
		t.Errorf("a refused CREATE VIEW ran")
	}
}

// rulesFunctionCall sends a FunctionCall of the built-in fn with int4
// arguments on a session of alice and returns the answers, then checks that
// the session still works.
func rulesFunctionCall(t *testing.T, g *gateway, fn string, args ...byte) []string {
	t.Helper()
	pc := connectRaw(t, g.dsn("alice", alicePassword))
	res := pc.ExecParams(testContext(t), "SELECT '"+fn+"'::regproc::oid", nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	oid := parseOID(t, res.Rows[0][0])
	fe, conn := hijack(t, pc)
	t.Cleanup(func() { conn.Close() })
	call := &pgproto3.FunctionCall{Function: oid, ResultFormatCode: 1}
	for _, a := range args {
		call.ArgFormatCodes = []uint16{1}
		call.Arguments = append(call.Arguments, []byte{0, 0, 0, a})
	}
	rulesSend(t, fe, call)
	got := rulesReceive(t, fe)
	rulesSend(t, fe, &pgproto3.Query{String: "SELECT 'alive'"})
	rulesWantAnswers(t, "a query after the function call", rulesReceive(t, fe),
		"RowDescription", "DataRow(alive)", "CommandComplete(SELECT 1)", "Ready(I)")
	return got
}

func TestRulesFunctionCallMessages(t *testing.T) {
	rulesFixture(t)
	t.Run("refused without a rule for it", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = policy.FirstMatch(policy.BlockFunctions(policy.DangerousFunctions()...), policy.Default("default", policy.Allow, ""))
		})
		// A fast-path call names its function by OID; the gateway knows
		// the built-ins', so function rules apply, and the default does
		// not open the fast path.
		for fn, rule := range map[string]string{"int4pl": "no-decision", "lo_creat": "block-functions", "pg_terminate_backend": "block-functions"} {
			got := rulesFunctionCall(t, g, fn, 0, 0)
			rulesWantAnswers(t, "FunctionCall of "+fn, got, rulesRefusedAnswer(rule), "Ready(I)")
		}
		before := rulesSuperValue(t, "SELECT count(*) FROM pg_largeobject_metadata")
		rulesFunctionCall(t, g, "lo_creat", 0)
		if after := rulesSuperValue(t, "SELECT count(*) FROM pg_largeobject_metadata"); after != before {
			t.Errorf("large objects %s, were %s: the refused call ran", after, before)
		}
	})
	t.Run("Default alone", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Policy = policy.Default("default", policy.Allow, "") })
		got := rulesFunctionCall(t, g, "int4pl", 2, 3)
		rulesWantAnswers(t, "FunctionCall under Default", got, rulesRefusedAnswer("no-decision"), "Ready(I)")
	})
	t.Run("allowed by a rule", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = policy.FirstMatch(
				policy.Rule{Name: "fast-path", When: policy.IsKind(policy.KindFunctionCall), Verdict: policy.Allow},
				policy.Default("default", policy.Allow, ""))
		})
		got := rulesFunctionCall(t, g, "int4pl", 2, 3)
		rulesWantAnswers(t, "FunctionCall allowed", got, "FunctionCallResponse(00000005)", "Ready(I)")
	})
}

// ---------------------------------------------------------------------------
// 4. Bind parameters.

// rulesParamPolicy refuses a Bind whose parameters hold "forbidden-value"
// (and a simple query whose text does), and remembers what it saw.
type rulesParamPolicy struct {
	mu   sync.Mutex
	seen []string // stage: params (type)
}

func (p *rulesParamPolicy) Decide(_ context.Context, q *policy.Query) (policy.Decision, error) {
	var params []string
	for _, v := range q.Params {
		params = append(params, fmt.Sprintf("%s/%d", v.Value, v.Type))
	}
	p.mu.Lock()
	p.seen = append(p.seen, fmt.Sprintf("%s %v nil=%v", q.Stage, params, q.Params == nil))
	p.mu.Unlock()
	block := policy.Decision{Verdict: policy.Block, Rule: "bind-params", Reason: "That value is not allowed."}
	switch q.Stage {
	case policy.StageBind:
		for _, v := range q.Params {
			if string(v.Value) == "forbidden-value" {
				return block, nil
			}
		}
	case policy.StageQuery:
		if strings.Contains(q.SQL, "forbidden-value") {
			return block, nil
		}
	}
	return policy.Decision{Verdict: policy.Allow, Rule: "default"}, nil
}

func (p *rulesParamPolicy) saw(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.seen, s)
}

func (p *rulesParamPolicy) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func (p *rulesParamPolicy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = nil
}

func TestRulesBindParametersReachThePolicy(t *testing.T) {
	rulesFixture(t)
	pol := &rulesParamPolicy{}
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = pol })

	t.Run("raw", func(t *testing.T) {
		pol.reset()
		fe := rulesRaw(t, g)
		rulesSend(t, fe,
			&pgproto3.Parse{Query: "SELECT $1::text", ParameterOIDs: []uint32{25}},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("forbidden-value")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "Parse, Bind forbidden-value", rulesReceive(t, fe),
			"ParseComplete", rulesRefusedAnswer("bind-params"), "Ready(I)")
		if !pol.saw("parse [] nil=true") || !pol.saw("bind [forbidden-value/25] nil=false") {
			t.Errorf("the policy saw %q; want the Parse without parameters and the Bind with the value and its type", pol.snapshot())
		}
		// The statement stays prepared: a Bind with another value runs.
		rulesSend(t, fe, &pgproto3.Bind{Parameters: [][]byte{[]byte("ok-value")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		rulesWantAnswers(t, "Bind ok-value", rulesReceive(t, fe),
			"BindComplete", "DataRow(ok-value)", "CommandComplete(SELECT 1)", "Ready(I)")
		// A named statement and a portal, refused then allowed.
		rulesSend(t, fe,
			&pgproto3.Parse{Name: "bp", Query: "SELECT $1::text || $2::text"},
			&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "bp", Parameters: [][]byte{[]byte("a"), []byte("forbidden-value")}},
			&pgproto3.Execute{Portal: "p1"},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "named statement, forbidden second parameter", rulesReceive(t, fe),
			"ParseComplete", rulesRefusedAnswer("bind-params"), "Ready(I)")
		rulesSend(t, fe,
			&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "bp", Parameters: [][]byte{[]byte("a"), []byte("b")}},
			&pgproto3.Execute{Portal: "p1"},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "named statement, allowed", rulesReceive(t, fe),
			"BindComplete", "DataRow(ab)", "CommandComplete(SELECT 1)", "Ready(I)")
		rulesSend(t, fe, &pgproto3.Query{String: "SELECT 'alive'"})
		rulesWantAnswers(t, "a simple query after", rulesReceive(t, fe),
			"RowDescription", "DataRow(alive)", "CommandComplete(SELECT 1)", "Ready(I)")
	})

	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			for i := range 2 {
				// Twice: a prepared statement is Bound again the second time.
				_, err := rulesRun(ctx, conn, m.mode, "SELECT $1::text", "forbidden-value")
				rulesWantRefusal(t, err, "bind-params")
				rows, err := rulesRun(ctx, conn, m.mode, "SELECT $1::text", "ok-value")
				if err != nil || len(rows) != 1 || rows[0][0] != "ok-value" {
					t.Errorf("run %d with another value: %q, %v", i, rows, err)
				}
			}
			rulesAlive(t, ctx, conn, m.mode)
		})
	}
}

// ---------------------------------------------------------------------------
// 5. Transactions and pipelines.

func TestRulesRefusalRollsBackTheTransaction(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	count := func(t *testing.T, n int) string {
		return rulesSuperValue(t, fmt.Sprintf("SELECT count(*) FROM rules_tx WHERE n = %d", n))
	}
	for i, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			n := 100 + i
			if _, err := rulesTag(ctx, conn, m.mode, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := rulesRun(ctx, conn, m.mode, "INSERT INTO rules_tx VALUES ($1)", n); err != nil {
				t.Fatal(err)
			}
			_, err := rulesRun(ctx, conn, m.mode, "SELECT * FROM rules_secret")
			rulesWantRefusal(t, err, "block-tables")
			if st := conn.PgConn().TxStatus(); st != 'E' {
				t.Errorf("transaction status %q after the refusal, want E (aborted)", st)
			}
			// Even an allowed statement is refused by the server now.
			if _, err := rulesRun(ctx, conn, m.mode, "SELECT 1"); pgCode(err) != "25P02" {
				t.Errorf("a statement in the aborted transaction: %v, want 25P02", err)
			}
			tag, err := rulesTag(ctx, conn, m.mode, "COMMIT")
			if err != nil || tag != "ROLLBACK" {
				t.Errorf("COMMIT: %q, %v; want ROLLBACK", tag, err)
			}
			if c := count(t, n); c != "0" {
				t.Errorf("%s rows committed despite the refusal", c)
			}
			// The client goes on.
			if _, err := rulesTag(ctx, conn, m.mode, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := rulesRun(ctx, conn, m.mode, "INSERT INTO rules_tx VALUES ($1)", -n); err != nil {
				t.Fatal(err)
			}
			if tag, err := rulesTag(ctx, conn, m.mode, "COMMIT"); err != nil || tag != "COMMIT" {
				t.Errorf("COMMIT of the next transaction: %q, %v", tag, err)
			}
			if c := count(t, -n); c != "1" {
				t.Errorf("the next transaction committed %s rows, want 1", c)
			}

			// With pgx's transaction object, and a ROLLBACK.
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := rulesRun(ctx, conn, m.mode, "INSERT INTO rules_tx VALUES ($1)", n)
			if err != nil {
				t.Fatal(rows, err)
			}
			_, err = rulesRun(ctx, conn, m.mode, "WITH t AS (SELECT * FROM rules_secret) SELECT * FROM t")
			rulesWantRefusal(t, err, "block-tables")
			if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
				t.Errorf("Commit: %v, want ErrTxCommitRollback", err)
			}
			if c := count(t, n); c != "0" {
				t.Errorf("%s rows committed despite the refusal", c)
			}
			tx, err = conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rulesRun(ctx, conn, m.mode, "SELECT secret FROM public.rules_secret")
			rulesWantRefusal(t, err, "block-tables")
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("ROLLBACK after a refusal: %v", err)
			}
			rulesAlive(t, ctx, conn, m.mode)
		})
	}
	t.Run("one simple query", func(t *testing.T) {
		ctx := testContext(t)
		conn := connect(t, g.dsn("alice", alicePassword))
		_, err := conn.PgConn().Exec(ctx, "BEGIN; INSERT INTO rules_tx VALUES (110); SELECT * FROM rules_secret; COMMIT").ReadAll()
		rulesWantRefusal(t, err, "block-tables")
		if st := conn.PgConn().TxStatus(); st != 'I' {
			t.Errorf("transaction status %q: no statement of the refused text may run", st)
		}
		if c := count(t, 110); c != "0" {
			t.Errorf("%s rows inserted by a refused text", c)
		}
		rulesAlive(t, ctx, conn, pgx.QueryExecModeSimpleProtocol)
	})
	if err := pg.Exec(testContext(t), "app", "DELETE FROM rules_tx WHERE n BETWEEN -120 AND 120"); err != nil {
		t.Fatal(err)
	}
}

func TestRulesRefusalInAPipeline(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	count := func(t *testing.T, n int) string {
		return rulesSuperValue(t, fmt.Sprintf("SELECT count(*) FROM rules_tx WHERE n = %d", n))
	}
	t.Run("raw", func(t *testing.T) {
		fe := rulesRaw(t, g)
		rulesSend(t, fe,
			&pgproto3.Parse{Query: "INSERT INTO rules_tx VALUES (120)"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT * FROM rules_secret"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT 'skipped'"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "pipeline", rulesReceive(t, fe),
			"ParseComplete", "BindComplete", "CommandComplete(INSERT 0 1)", rulesRefusedAnswer("block-tables"), "Ready(I)")
		// The pipeline was one implicit transaction: the INSERT is gone.
		if c := count(t, 120); c != "0" {
			t.Errorf("%s rows of the refused pipeline committed", c)
		}
		rulesSend(t, fe, &pgproto3.Parse{Query: "SELECT 'alive'"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		rulesWantAnswers(t, "after the pipeline", rulesReceive(t, fe),
			"ParseComplete", "BindComplete", "DataRow(alive)", "CommandComplete(SELECT 1)", "Ready(I)")
	})
	t.Run("raw, inside an explicit transaction", func(t *testing.T) {
		fe := rulesRaw(t, g)
		rulesSend(t, fe, &pgproto3.Query{String: "BEGIN"})
		rulesWantAnswers(t, "BEGIN", rulesReceive(t, fe), "CommandComplete(BEGIN)", "Ready(T)")
		rulesSend(t, fe,
			&pgproto3.Parse{Query: "INSERT INTO rules_tx VALUES (121)"},
			&pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Name: "bad", Query: "SELECT * FROM rules_secret"},
			&pgproto3.Sync{})
		rulesWantAnswers(t, "pipeline in a transaction", rulesReceive(t, fe),
			"ParseComplete", "BindComplete", "CommandComplete(INSERT 0 1)", rulesRefusedAnswer("block-tables"), "Ready(E)")
		rulesSend(t, fe, &pgproto3.Query{String: "COMMIT"})
		rulesWantAnswers(t, "COMMIT", rulesReceive(t, fe), "CommandComplete(ROLLBACK)", "Ready(I)")
		if c := count(t, 121); c != "0" {
			t.Errorf("%s rows committed despite the refusal", c)
		}
	})
	t.Run("pgx batch", func(t *testing.T) {
		// pgx prepares every statement of the batch first (Parse, Describe,
		// then one Sync): the refused Parse fails the batch before anything
		// runs.
		ctx := testContext(t)
		conn := connect(t, g.dsn("alice", alicePassword))
		b := &pgx.Batch{}
		b.Queue("INSERT INTO rules_tx VALUES ($1)", 122)
		b.Queue("SELECT secret FROM rules_secret")
		b.Queue("SELECT 'skipped'")
		br := conn.SendBatch(ctx, b)
		_, err1 := br.Exec()
		_, err2 := br.Exec()
		_, err3 := br.Exec()
		br.Close()
		if rulesRefusal(err1, "block-tables") != "" && rulesRefusal(err2, "block-tables") != "" {
			t.Errorf("the batch: %v / %v; want the refusal", err1, err2)
		}
		if err3 == nil {
			t.Errorf("the statement after the refusal ran")
		}
		if c := count(t, 122); c != "0" {
			t.Errorf("%s rows of the refused batch committed", c)
		}
		rulesAlive(t, ctx, conn, pgx.QueryExecModeCacheStatement)
	})
	t.Run("pgx batch in exec mode", func(t *testing.T) {
		ctx := testContext(t)
		cfg, err := pgx.ParseConfig(g.dsn("alice", alicePassword))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		b := &pgx.Batch{}
		b.Queue("INSERT INTO rules_tx VALUES ($1)", 123)
		b.Queue("SELECT secret FROM rules_secret")
		b.Queue("SELECT 'skipped'")
		br := conn.SendBatch(ctx, b)
		_, err1 := br.Exec()
		_, err2 := br.Exec()
		_, err3 := br.Exec()
		br.Close()
		if err1 != nil {
			t.Errorf("the INSERT before the refusal: %v", err1)
		}
		rulesWantRefusal(t, err2, "block-tables")
		if err3 == nil {
			t.Errorf("the statement after the refusal ran")
		}
		if c := count(t, 123); c != "0" {
			t.Errorf("%s rows of the refused batch committed", c)
		}
		rulesAlive(t, ctx, conn, pgx.QueryExecModeExec)
	})
}

// ---------------------------------------------------------------------------
// 6. Terminate and suspend.

func rulesKillSwitch() policy.Policy {
	return policy.FirstMatch(
		policy.Rule{Name: "kill-switch", When: policy.Calls("pg_terminate_backend"), Verdict: policy.Terminate,
			Reason: "Terminating backends ends your session.", Suspend: 2 * time.Second},
		policy.Default("default", policy.Allow, ""))
}

// rulesWantFatal fails t unless err is a FATAL with code whose message
// contains text.
func rulesWantFatal(t testing.TB, err error, code, text string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || pgErr.Code != code || !strings.Contains(pgErr.Message, text) {
		t.Errorf("err = %v; want FATAL %s containing %q", err, code, text)
	}
}

// rulesSuspension returns alice's suspension listed by g.
func rulesSuspension(t testing.TB, g *gateway) proxy.Suspension {
	t.Helper()
	for _, s := range g.Suspensions() {
		if s.Subject == "alice" {
			if s.Rule != "kill-switch" {
				t.Errorf("suspension %+v, want rule kill-switch", s)
			}
			return s
		}
	}
	t.Fatalf("suspensions %+v: alice is not suspended", g.Suspensions())
	return proxy.Suspension{}
}

func TestRulesKillSwitchTerminatesAndSuspends(t *testing.T) {
	rulesFixture(t)
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesKillSwitch() })
			ctx := testContext(t)
			other := connect(t, g.dsn("alice", alicePassword))
			bob := connect(t, g.dsn("bob", bobPassword))
			victim := connect(t, g.dsn("alice", alicePassword))

			_, err := rulesRun(ctx, victim, m.mode, "SELECT pg_terminate_backend(0)")
			rulesWantFatal(t, err, "42501", `pgwarden: session terminated by rule "kill-switch"`)
			// The suspension is recorded before the FATAL is sent (see
			// TestRulesSuspensionBeforeTheFatal).
			if len(g.Suspensions()) == 0 {
				t.Fatal("no suspension recorded when the client read its FATAL")
			}
			sus := rulesSuspension(t, g)

			// A new session of alice is refused while suspended.
			c, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
			switch {
			case err == nil && time.Now().Before(sus.Until):
				c.Close(ctx)
				t.Fatal("alice opened a session while suspended")
			case err == nil:
				c.Close(ctx)
				t.Log("the suspension ended before the check could run; not checked")
			default:
				rulesWantFatal(t, err, "28000", `by rule "kill-switch"`)
			}
			// Alice's other live session was ended (read without writing:
			// the gateway closed it).
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err = other.PgConn().WaitForNotification(wctx)
			cancel()
			rulesWantFatal(t, err, "42501", `suspended by rule "kill-switch"`)
			// Bob is not concerned.
			if _, err := rulesRun(ctx, bob, m.mode, "SELECT 1"); err != nil {
				t.Errorf("bob's session: %v", err)
			}
			connect(t, g.dsn("bob", bobPassword))

			// After the period, alice gets in again.
			deadline := sus.Until.Add(5 * time.Second)
			for {
				c, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
				if err == nil {
					if time.Now().Before(sus.Until) {
						t.Errorf("alice got in before the suspension ended")
					}
					rows, err := rulesRun(ctx, c, m.mode, "SELECT 'back'")
					if err != nil || len(rows) != 1 || rows[0][0] != "back" {
						t.Errorf("alice after the suspension: %q, %v", rows, err)
					}
					c.Close(ctx)
					break
				}
				rulesWantFatal(t, err, "28000", `by rule "kill-switch"`)
				if time.Now().After(deadline) {
					t.Fatalf("alice still refused 5s after the suspension ended: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	t.Run("lifted", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesKillSwitch() })
		ctx := testContext(t)
		victim := connect(t, g.dsn("alice", alicePassword))
		_, err := rulesRun(ctx, victim, pgx.QueryExecModeSimpleProtocol, "SELECT pg_terminate_backend(pg_backend_pid())")
		rulesWantFatal(t, err, "42501", `"kill-switch"`)
		waitFor(t, func() bool { return len(g.Suspensions()) > 0 })
		sus := rulesSuspension(t, g)
		if !g.LiftSuspension(sus.Issuer, sus.Subject) {
			t.Fatal("LiftSuspension found no suspension")
		}
		if g.LiftSuspension(sus.Issuer, sus.Subject) {
			t.Error("LiftSuspension lifted twice")
		}
		c := connect(t, g.dsn("alice", alicePassword))
		if _, err := rulesRun(ctx, c, pgx.QueryExecModeSimpleProtocol, "SELECT 1"); err != nil {
			t.Errorf("alice after the lift: %v", err)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Size and nesting.

func TestRulesOversizedStatements(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = policy.Default("default", policy.Allow, "") })
	long := "SELECT 1" + strings.Repeat("+1", 100_000) // 200 KB, 100,000 operators
	deep := "SELECT " + strings.Repeat("(", 10_000) + "1" + strings.Repeat(")", 10_000)
	var in strings.Builder
	in.WriteString("SELECT 1 WHERE 1 IN (0")
	for i := 1; in.Len() < 10<<20; i++ {
		fmt.Fprintf(&in, ",%d", i)
	}
	in.WriteString(")")
	cases := []struct {
		name, sql, reason string
	}{
		{"200 KB expression", long, "operators"},
		{"10,000 nested parentheses", deep, "nests parentheses"},
		{"10 MB IN list", in.String(), "bytes long"},
	}
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			for _, c := range cases {
				_, err := rulesRun(ctx, conn, m.mode, c.sql)
				rulesWantRefusal(t, err, "analysis")
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && !strings.Contains(pgErr.Detail, c.reason) {
					t.Errorf("%s: detail %q, want it to mention %q", c.name, pgErr.Detail, c.reason)
				}
				rulesAlive(t, ctx, conn, m.mode)
			}
		})
	}
	// The gateway still serves new sessions.
	rulesAlive(t, testContext(t), connect(t, g.dsn("bob", bobPassword)), pgx.QueryExecModeExec)
}

// ---------------------------------------------------------------------------
// 8. Parser settings.

func TestRulesParserSettings(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = policy.Default("default", policy.Allow, "") })
	const ps = "parser-settings"
	cases := []rulesCase{
		{"SET standard_conforming_strings off", "SET standard_conforming_strings = off", ps},
		{"SET standard_conforming_strings TO 'off'", "SET standard_conforming_strings TO 'off'", ps},
		{"SET SESSION standard_conforming_strings false", "SET SESSION standard_conforming_strings = false", ps},
		{"SET LOCAL standard_conforming_strings", "SET LOCAL standard_conforming_strings = 0", ps},
		{"SET standard_conforming_strings FROM CURRENT", "SET standard_conforming_strings FROM CURRENT", ps},
		{"SET client_encoding SJIS", "SET client_encoding = 'SJIS'", ps},
		{"SET client_encoding lower case", "SET client_encoding TO 'sjis'", ps},
		{"SET client_encoding alias", "SET client_encoding = 'Shift_JIS'", ps},
		{"SET client_encoding BIG5", "SET client_encoding = 'BIG5'", ps},
		{"SET NAMES", "SET NAMES 'SJIS'", ps},
		{"SET backslash_quote", "SET backslash_quote = on", ps},
		{"set_config computed name", "SELECT set_config('standard' || '_conforming_strings', 'off', false)", ps},
		{"set_config", "SELECT set_config('standard_conforming_strings', 'off', false)", ps},
		{"set_config computed value", "SELECT set_config('standard_conforming_strings', 'o' || 'ff', false)", ps},
		{"set_config client_encoding", "SELECT set_config('client_encoding', 'SJIS', false)", ps},
		{"set_config in a subquery", "SELECT (SELECT set_config('client_encoding', 'GBK', true))", ps},
		{"in a multi-statement text", "SELECT 1; SET standard_conforming_strings = off", ps},
		{"in a PREPARE", "PREPARE rules_sc AS SELECT set_config('standard_conforming_strings', 'off', false)", ps},
		{"in EXPLAIN ANALYZE", "EXPLAIN ANALYZE SELECT set_config('client_encoding', 'SJIS', false)", ps},

		{"SET standard_conforming_strings on", "SET standard_conforming_strings = on", ""},
		{"SET client_encoding UTF8", "SET client_encoding = 'UTF8'", ""},
		{"RESET client_encoding", "RESET client_encoding", ""},
		{"SET standard_conforming_strings TO DEFAULT", "SET standard_conforming_strings TO DEFAULT", ""},
	}
	rulesRunCases(t, g, cases, nil)
	for _, m := range rulesModes {
		t.Run("unchanged/"+m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			rows, err := rulesRun(ctx, conn, m.mode,
				"SELECT current_setting('standard_conforming_strings') || ' ' || current_setting('client_encoding')")
			if err != nil || len(rows) != 1 || rows[0][0] != "on UTF8" {
				t.Errorf("settings %q, %v", rows, err)
			}
		})
	}
}

// rulesSCSFlip turns standard_conforming_strings off in code the gateway
// does not read; rulesSmuggled is a constant for a parser with standard
// strings, and a read of rules_secret for one without.
const (
	rulesSCSFlip  = "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$"
	rulesSmuggled = `SELECT 'x\' || ' , secret FROM rules_secret --'`
)

func TestRulesParserSettingsChangedAtRunTimeEndTheSession(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			// The gateway reads the smuggled text as a constant.
			rows, err := rulesRun(ctx, conn, m.mode, rulesSmuggled)
			if err != nil || len(rows) != 1 || rows[0][0] != `x\ , secret FROM rules_secret --` {
				t.Fatalf("the smuggled text with standard strings: %q, %v", rows, err)
			}
			_, err1 := rulesRun(ctx, conn, m.mode, rulesSCSFlip)
			rows, err2 := rulesRun(ctx, conn, m.mode, rulesSmuggled)
			if strings.Contains(fmt.Sprint(rows), rulesSecretMarker) {
				t.Fatalf("the secret reached the client: %q", rows)
			}
			// The server reported the change and the gateway ended the
			// session, at the DO or at the next statement.
			err = err1
			if err == nil {
				err = err2
			}
			rulesWantFatal(t, err, "42501", "standard_conforming_strings")
		})
	}
}

// ---------------------------------------------------------------------------
// Regressions: bugs found while writing these tests, each fixed.

// In one extended-protocol pipeline, the server parses the second statement
// after the DO turned standard_conforming_strings off, and reports the
// change (ParameterStatus) only at Sync. The run-time barrier
// (proxy/barrier.go) refuses a Parse that follows a run-time statement
// without a Sync between them.
func TestRulesParserSettingsChangedInAPipeline(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesBlockSecretPolicy() })
	fe := rulesRaw(t, g)
	rulesSend(t, fe,
		&pgproto3.Parse{Query: rulesSCSFlip}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: rulesSmuggled}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Sync{})
	got := rulesReceive(t, fe)
	for _, m := range got {
		if strings.Contains(m, rulesSecretMarker) {
			t.Fatalf("the blocked table's row reached the client through a statement the gateway judged as a constant: %q", got)
		}
	}
}

// Field selection syntax calls a one-argument function ((x).f is f(x)):
// the analysis sees the call.
func TestRulesFunctionCalledWithFieldSelectionSyntax(t *testing.T) {
	rulesFixture(t)
	t.Run("block-functions", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = policy.FirstMatch(policy.BlockFunctions(policy.DangerousFunctions()...), policy.Default("default", policy.Allow, ""))
		})
		for _, m := range rulesModes {
			t.Run(m.name, func(t *testing.T) {
				ctx := testContext(t)
				conn := connect(t, g.dsn("alice", alicePassword))
				// In a transaction rolled back, so that nothing stays.
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				rows, err := rulesRun(ctx, conn, m.mode, "SELECT (0::oid).lo_create")
				if why := rulesRefusal(err, "block-functions"); why != "" {
					t.Errorf("SELECT (0::oid).lo_create: want refused by block-functions; got %s: created large object %q", why, rows)
				}
			})
		}
	})
	t.Run("kill-switch", func(t *testing.T) {
		for _, m := range rulesModes {
			t.Run(m.name, func(t *testing.T) {
				g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesKillSwitch() })
				ctx := testContext(t)
				conn := connect(t, g.dsn("alice", alicePassword))
				rows, err := rulesRun(ctx, conn, m.mode, "SELECT (0).pg_terminate_backend")
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || !strings.Contains(pgErr.Message, `"kill-switch"`) {
					t.Errorf("SELECT (0).pg_terminate_backend: want FATAL by rule kill-switch; got %q, %v", rows, err)
				}
			})
		}
	})
	t.Run("read-only", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{}) })
		before := rulesReadOnlySnapshot(t)
		for _, m := range rulesModes {
			t.Run(m.name, func(t *testing.T) {
				ctx := testContext(t)
				conn := connect(t, g.dsn("alice", alicePassword))
				rows, err := rulesRun(ctx, conn, m.mode, "SELECT ('rules_seq'::regclass).nextval")
				if why := rulesRefusal(err, "read-only"); why != "" {
					t.Errorf("SELECT ('rules_seq'::regclass).nextval: want refused by read-only; got %s (rows %q)", why, rows)
				}
				if got := rulesReadOnlySnapshot(t); got != before {
					t.Errorf("the data changed: %s; was %s", got, before)
				}
			})
		}
	})
}

// With AllowRunTime the server's read-only mode is said to refuse the
// writes of what the gateway lets through; but what it lets through can
// switch that mode off for the rest of the session.
func TestRulesReadOnlyTurnedOffAtRunTimeEndsTheSession(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = rulesReadOnlyPolicy(policy.ReadOnly{AllowRunTime: true})
	})
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			rulesResetReadOnlyData(t)
			before := rulesReadOnlySnapshot(t)
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword))
			_, err := rulesRun(ctx, conn, m.mode,
				"SELECT query_to_xml('select set_config(''default_transaction_read_only'', ''off'', false)', true, true, '')")
			if err != nil && rulesRefusal(err, "read-only") != "" {
				t.Fatalf("query_to_xml: %v", err)
			}
			// The gateway checks the read-only mode before the next
			// statement, finds it off, and ends the session.
			rows, err := rulesRun(ctx, conn, m.mode, "SELECT rules_evil()")
			if pgCode(err) != "42501" || !strings.Contains(err.Error(), "read-only mode") {
				t.Errorf("SELECT rules_evil() after read-only was turned off: %q, %v; want FATAL 42501 about the read-only mode", rows, err)
			}
			if got := rulesReadOnlySnapshot(t); got != before {
				t.Errorf("a read-only session changed the data: %s; was %s", got, before)
			}
		})
	}
	rulesResetReadOnlyData(t)
}

// A function may change the search path: after a run-time statement the
// gateway asks the server for it before judging the next statement.
func TestRulesSearchPathChangedByAFunction(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Policy = policy.FirstMatch(
			policy.BlockTables("public.rules_secret"),
			policy.BlockKinds(policy.KindDo, policy.KindCall),
			policy.BlockFunctions(policy.DangerousFunctions()...),
			policy.Default("default", policy.Allow, ""))
		p.StartupParameters = []string{"search_path"}
	})
	for _, m := range rulesModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := connect(t, g.dsn("alice", alicePassword, "search_path=rules_hide"))
			if rows, err := rulesRun(ctx, conn, m.mode, "SELECT public.rules_set_path('public')"); err != nil {
				t.Fatalf("rules_set_path: %q, %v", rows, err)
			}
			rows, err := rulesRun(ctx, conn, m.mode, "SELECT secret FROM rules_secret")
			if why := rulesRefusal(err, "block-tables"); why != "" {
				t.Errorf("unqualified read after a function changed the search path: want refused by block-tables; got %s (rows %q)", why, rows)
			}
		})
	}
}

// A Terminate decision records the suspension before it sends the FATAL,
// and a session that was logging in meanwhile is refused when it
// registers: a client that reconnects as soon as it reads the FATAL is
// refused, and no session survives the suspension.
func TestRulesSuspensionBeforeTheFatal(t *testing.T) {
	rulesFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = rulesKillSwitch() })
	ctx := testContext(t)
	for i := range 100 {
		victim := connect(t, g.dsn("alice", alicePassword))
		_, err := rulesRun(ctx, victim, pgx.QueryExecModeSimpleProtocol, "SELECT pg_terminate_backend(0)")
		rulesWantFatal(t, err, "42501", `"kill-switch"`)
		listed := len(g.Suspensions()) > 0
		again, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
		if err == nil {
			waitFor(t, func() bool { return len(g.Suspensions()) > 0 })
			_, err := rulesRun(ctx, again, pgx.QueryExecModeSimpleProtocol, "SELECT 1")
			again.Close(ctx)
			t.Fatalf("iteration %d: alice logged in right after the kill-switch FATAL (suspension listed then: %v); "+
				"once the suspension was recorded, that session's next statement returned %v", i, listed, err)
		}
		if !listed {
			t.Fatalf("iteration %d: the client had the FATAL, but the suspension was not recorded yet", i)
		}
		sus := rulesSuspension(t, g)
		g.LiftSuspension(sus.Issuer, sus.Subject)
	}
}
