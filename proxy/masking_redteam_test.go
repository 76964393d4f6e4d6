package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

var (
	rtFixtureOnce sync.Once
	rtFixtureErr  error
)

// rtFixture creates, as superuser, the extra objects the red-team tests
// read: views over the masked tables made by an administrator before the
// session, a table with a deferrable unique constraint on a masked column,
// and a partitioned masked table of its own.
func rtFixture(t *testing.T) {
	t.Helper()
	maskFixture(t)
	rtFixtureOnce.Do(func() {
		rtFixtureErr = pg.Exec(context.Background(), "app", `
			DROP VIEW IF EXISTS rt_fn_v, rt_cte_v, rt_vv, rt_renamed_v, rt_sb_v CASCADE;
			DROP MATERIALIZED VIEW IF EXISTS rt_mv CASCADE;
			DROP FUNCTION IF EXISTS rt_email_of(int) CASCADE;
			DROP TABLE IF EXISTS rt_uniq, rt_events CASCADE;
			DROP SCHEMA IF EXISTS rt_other CASCADE;
			CREATE FUNCTION rt_email_of(int) RETURNS text LANGUAGE sql STABLE
				AS 'SELECT email FROM public.mask_people WHERE id = $1';
			CREATE VIEW rt_fn_v AS SELECT id, rt_email_of(id) AS contact FROM mask_clean;
			CREATE VIEW rt_cte_v AS WITH w AS (SELECT id, email FROM mask_people)
				SELECT s.id, s.e FROM (SELECT id, lower(email) AS e FROM w) s;
			CREATE VIEW rt_renamed_v(a, b, c) AS SELECT id, email, ssn FROM mask_people;
			CREATE VIEW rt_vv AS SELECT a, b AS bb, c || '' AS cc FROM rt_renamed_v;
			CREATE VIEW rt_sb_v WITH (security_barrier) AS SELECT id, email, ssn FROM mask_people WHERE id > 0;
			CREATE MATERIALIZED VIEW rt_mv AS SELECT id, email, ssn FROM mask_people;
			CREATE TABLE rt_uniq(id int PRIMARY KEY, email text UNIQUE DEFERRABLE INITIALLY DEFERRED);
			INSERT INTO rt_uniq VALUES (1, 'alice@example.com'), (2, 'bob@example.org');
			CREATE TABLE rt_events(at int, email text) PARTITION BY RANGE (at);
			CREATE TABLE rt_events_p1 PARTITION OF rt_events FOR VALUES FROM (0) TO (100);
			INSERT INTO rt_events VALUES (1, 'alice@example.com');
			CREATE SCHEMA rt_other;
			CREATE TABLE rt_other.mask_people(id int, name text, email text, ssn varchar(11), age int);
			INSERT INTO rt_other.mask_people VALUES (1, 'decoy', 'decoy@rt.invalid', '000-00-0000', 1);
			ANALYZE mask_people;
			GRANT USAGE ON SCHEMA rt_other TO app_rw;
			GRANT SELECT ON ALL TABLES IN SCHEMA rt_other TO app_rw;
			GRANT SELECT, INSERT, UPDATE, DELETE ON rt_fn_v, rt_cte_v, rt_vv, rt_renamed_v, rt_sb_v, rt_mv,
				rt_uniq, rt_events, rt_events_p1 TO app_rw;`)
	})
	if rtFixtureErr != nil {
		t.Fatalf("creating the red-team fixture: %v", rtFixtureErr)
	}
}

// rtGateway is maskingGateway's rules plus rules over the red-team tables.
func rtGateway(t *testing.T) *gateway {
	rtFixture(t)
	return startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{
			{Column: "public.mask_people.email", Masker: fixed("EMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_people.ssn", Masker: fixed("SSN"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_events.email", Masker: fixed("EVENT"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt_uniq.email", Masker: fixed("UEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt_events.email", Masker: fixed("REVENT"), UnlessGroups: []string{"ops"}},
		}
	})
}

// rtDrop drops what alice may have created in an earlier run.
func rtDrop(t *testing.T, sql string) {
	t.Helper()
	if err := pg.Exec(context.Background(), "app", sql); err != nil {
		t.Fatalf("cleaning up: %v", err)
	}
}

// rtSecret returns the first secret of maskSecrets in s, or "".
func rtSecret(s string) string {
	for _, secret := range maskSecrets {
		if strings.Contains(s, secret) {
			return secret
		}
	}
	return ""
}

// rtObserved collects what reaches alice outside of results: notices,
// notifications.
type rtObserved struct {
	mu  sync.Mutex
	out []string
}

func (o *rtObserved) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.out = append(o.out, s)
}

func (o *rtObserved) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.out, "\n")
}

// rtConnect connects as alice, collecting notices and notifications.
func rtConnect(t *testing.T, g *gateway) (*pgx.Conn, *rtObserved) {
	t.Helper()
	obs := &rtObserved{}
	cfg, err := pgx.ParseConfig(g.dsn("alice", alicePassword))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { obs.add("NOTICE " + rtErrorText((*pgconn.PgError)(n))) }
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		obs.add("NOTIFY " + n.Channel + " " + n.Payload)
	}
	conn, err := pgx.ConnectConfig(testContext(t), cfg)
	if err != nil {
		t.Fatalf("connect as alice: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, obs
}

// rtErrorText is everything an error tells the client.
func rtErrorText(err error) string {
	if err == nil {
		return ""
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.Join([]string{pgErr.Severity, pgErr.Code, pgErr.Message, pgErr.Detail, pgErr.Hint,
			pgErr.Where, pgErr.SchemaName, pgErr.TableName, pgErr.ColumnName, pgErr.ConstraintName,
			pgErr.InternalQuery}, "|")
	}
	return err.Error()
}

// rtSimple runs sql as one Query message and returns every row of every
// result and every error, as text.
func rtSimple(t *testing.T, conn *pgx.Conn, sql string) (string, error) {
	t.Helper()
	res, err := conn.PgConn().Exec(testContext(t), sql).ReadAll()
	var b strings.Builder
	for _, r := range res {
		for _, row := range r.Rows {
			for i, v := range row {
				if i > 0 {
					b.WriteByte('|')
				}
				if v == nil {
					b.WriteString("<null>")
				} else {
					b.Write(v)
				}
			}
			b.WriteByte(';')
		}
		if r.Err != nil {
			b.WriteString(" ERR " + rtErrorText(r.Err))
		}
	}
	if err != nil {
		b.WriteString(" ERR " + rtErrorText(err))
	}
	return b.String(), err
}

// rtExtended runs sql in one of pgx's extended modes.
func rtExtended(t *testing.T, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) (string, error) {
	t.Helper()
	rows, err := rowsText(t, conn, mode, sql)
	out := strings.Join(rows, ";")
	if err != nil {
		out += " ERR " + rtErrorText(err)
	}
	return out, err
}

// rtCopy runs a COPY TO STDOUT and returns its output (and any error).
func rtCopy(t *testing.T, conn *pgx.Conn, sql string) (string, error) {
	t.Helper()
	var b strings.Builder
	_, err := conn.PgConn().CopyTo(testContext(t), &b, sql)
	out := b.String()
	if err != nil {
		out += " ERR " + rtErrorText(err)
	}
	return out, err
}

// rtAlive checks the session still answers.
func rtAlive(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var n int
	if err := conn.QueryRow(testContext(t), "SELECT 41 + 1", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 42 {
		t.Fatalf("the session no longer answers: %d, %v", n, err)
	}
}

// isRefusal reports whether err is a masking refusal.
func isRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, `"mask-`)
}

// rtModes are pgx's ways of running a statement.
var rtModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"cache-statement", pgx.QueryExecModeCacheStatement},
	{"cache-describe", pgx.QueryExecModeCacheDescribe},
	{"describe-exec", pgx.QueryExecModeDescribeExec},
	{"exec", pgx.QueryExecModeExec},
}

// rtRawExchange sends msgs on a hijacked connection and returns every
// message received up to ReadyForQuery, encoded (pgproto3 reuses buffers).
func rtRawExchange(t *testing.T, fe *pgproto3.Frontend, msgs ...pgproto3.FrontendMessage) string {
	t.Helper()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		m, err := fe.Receive()
		if err != nil {
			if strings.Contains(b.String(), "SFATAL") {
				return b.String() // the gateway ended the session rather than send the rows: sound
			}
			t.Fatalf("raw protocol: %v (after %q)", err, b.String())
		}
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%T %q\n", m, enc)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return b.String()
		}
	}
}

// rtNoLeak fails t when what alice received holds a secret.
func rtNoLeak(t *testing.T, what, received string) {
	t.Helper()
	if s := rtSecret(received); s != "" {
		if !utf8.ValidString(received) {
			received = fmt.Sprintf("%q", received)
		}
		t.Errorf("LEAK of %q through %s:\n%s", s, what, received)
	}
}

// ---------------------------------------------------------------------------
// Attacks the gateway holds (masked, refused, or an error that echoes
// nothing), in every pgx execution mode.
// ---------------------------------------------------------------------------

func TestRedTeamSingleStatementsHold(t *testing.T) {
	g := rtGateway(t)
	cases := []string{
		// Lateral joins and correlated subqueries.
		"SELECT l.x FROM mask_people p, LATERAL (SELECT p.email || '' AS x) l",
		"SELECT l.* FROM mask_people p CROSS JOIN LATERAL (SELECT p.ssn AS s, p.email AS e) l",
		"SELECT (SELECT q.email || '' FROM mask_people q WHERE q.id = p.id) FROM mask_people p",
		"SELECT (SELECT max(ssn) FROM mask_people q WHERE q.id >= c.id) FROM mask_clean c",
		// Recursive CTEs, window functions, grouping sets.
		"WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM mask_people WHERE id = 1 UNION ALL SELECT n + 1, e || '' FROM r WHERE n < 3) SELECT n, e FROM r",
		"SELECT lag(email) OVER (ORDER BY id), first_value(ssn) OVER w, nth_value(email, 2) OVER w FROM mask_people WINDOW w AS (ORDER BY id)",
		"SELECT id, max(email), min(ssn) FROM mask_people GROUP BY ROLLUP (id)",
		"SELECT id, string_agg(email, ',') FROM mask_people GROUP BY GROUPING SETS ((id), ())",
		// VALUES, arrays, composites, JSON, XML.
		"SELECT * FROM (VALUES ((SELECT email FROM mask_people WHERE id = 1)), ('x')) v(x)",
		"SELECT ARRAY[email, ssn], (ARRAY[email])[1], ARRAY(SELECT ssn FROM mask_people) FROM mask_people",
		"SELECT (array_agg(email ORDER BY id))[2], (string_to_array(string_agg(ssn, ','), ','))[1] FROM mask_people",
		"SELECT (p).email, (p.*).ssn, (p).name FROM mask_people p",
		"SELECT p::text, row(p.email, p.ssn)::text, row_to_json(p)::text, to_jsonb(p) ->> 'email' FROM mask_people p",
		"SELECT (jsonb_populate_record(null::mask_people, to_jsonb(p))).email FROM mask_people p",
		"SELECT jsonb_build_array(email, ssn)::text, json_agg(p)::text FROM mask_people p GROUP BY p.id, p.email, p.ssn",
		"SELECT string_agg(email, ',' ORDER BY id), array_agg(ssn ORDER BY id)::text FROM mask_people",
		"SELECT DISTINCT ON (id) email, ssn FROM mask_people ORDER BY id",
		"SELECT * FROM XMLTABLE('/r' PASSING xmlelement(name r, (SELECT email FROM mask_people WHERE id = 1)) COLUMNS e text PATH '.')",
		"SELECT xmlforest(email, ssn)::text, xmlagg(xmlelement(name e, email))::text FROM mask_people GROUP BY email, ssn",
		// Set operations in subqueries.
		"SELECT x FROM (SELECT email AS x FROM mask_people INTERSECT SELECT note FROM mask_clean) s",
		"SELECT x FROM (SELECT email AS x FROM mask_people EXCEPT SELECT note FROM mask_clean) s",
		"SELECT x || '' FROM (SELECT email AS x FROM mask_people UNION ALL SELECT note FROM mask_clean) s",
		// Table functions with masked arguments.
		"SELECT u FROM mask_people p, unnest(ARRAY[p.email, p.ssn]) u",
		"SELECT * FROM unnest((SELECT array_agg(email) FROM mask_people))",
		"SELECT g, email FROM mask_people, generate_series(1, 2) g",
		"SELECT * FROM regexp_split_to_table((SELECT string_agg(email, ' ') FROM mask_people), ' ')",
		// String functions, casts and back, CASE and friends.
		"SELECT format('%s', email), concat(email), email || '', 'x' || ssn, concat_ws(',', email, ssn) FROM mask_people",
		"SELECT regexp_replace(email, '@', ' at '), substr(email, 1, 5) || substr(email, 6), left(ssn, 3), translate(email, 'a', 'a') FROM mask_people",
		"SELECT email::varchar::text, email::bytea, ssn::char(11), email::name, encode(convert_to(email, 'UTF8'), 'hex') FROM mask_people",
		"SELECT CASE WHEN id = 1 THEN email ELSE ssn END, COALESCE(email, 'x'), NULLIF(email, 'x'), GREATEST(email, ssn), LEAST(ssn, 'z') FROM mask_people",
		"SELECT email COLLATE \"C\", lower(email) COLLATE \"C\", overlay(email placing 'x' from 1 for 0) FROM mask_people",
		// Error-based extraction: the server's message is replaced.
		"SELECT email::int FROM mask_people",
		"SELECT CASE WHEN id > 0 THEN email::numeric END FROM mask_people",
		"SELECT ssn::date FROM mask_people",
		"SELECT email::json FROM mask_people",
		"SELECT email::regclass FROM mask_people",
		"SELECT xmlparse(document email) FROM mask_people",
		"SELECT to_number(email, '999') FROM mask_people",
		"SELECT 1 / (length(email) - length(email)) FROM mask_people",
		"SELECT (SELECT email FROM mask_people)",
		// RETURNING, ON CONFLICT, data-modifying CTEs, MERGE.
		"UPDATE mask_people SET name = name WHERE id = 1 RETURNING email || '', (SELECT ssn FROM mask_people WHERE id = 2)",
		"INSERT INTO mask_people(id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = mask_people.name RETURNING email, ssn || ''",
		"DELETE FROM mask_people WHERE id = -1 RETURNING email",
		"WITH d AS (UPDATE mask_people SET name = name WHERE id = 1 RETURNING email, ssn) SELECT email || '', ssn FROM d",
		"UPDATE mask_clean c SET note = note FROM mask_people p WHERE p.id = c.id RETURNING p.email, upper(p.ssn), c.*",
		"MERGE INTO mask_clean c USING mask_people p ON c.id = p.id WHEN MATCHED THEN UPDATE SET note = p.email",
		"UPDATE mask_people SET name = email WHERE id = 1",
		"INSERT INTO mask_clean SELECT id, ssn FROM mask_people WHERE false",
		// Views, views of views, renamed columns, security barrier, matview.
		"SELECT * FROM mask_people_v",
		"SELECT a, b, c, b || c FROM rt_renamed_v",
		"SELECT * FROM rt_vv",
		"SELECT bb || '', cc FROM rt_vv",
		"SELECT * FROM rt_sb_v WHERE id = 1",
		"SELECT id, email, ssn || '' FROM rt_mv",
		"TABLE rt_mv",
		// Partitions and inheritance.
		"SELECT * FROM ONLY mask_people",
		"SELECT * FROM mask_child",
		"SELECT email, email || '' FROM mask_events_p1",
		"SELECT email || '', tableoid::regclass FROM mask_events",
		"SELECT email || '' FROM rt_events",
		// Schema-qualified, quoted identifiers and another schema's decoy.
		`SELECT "email", "public"."mask_people"."ssn", public.mask_people.email || '' FROM "public"."mask_people"`,
		`SELECT app.public.mask_people.email FROM public.mask_people`,
		"SELECT email, ssn FROM rt_other.mask_people",
		"SELECT o.email, p.email FROM rt_other.mask_people o JOIN public.mask_people p ON p.id = o.id",
		// The catalog, and functions that dump tables or run SQL text.
		"SELECT * FROM pg_stats WHERE tablename = 'mask_people'",
		"SELECT most_common_vals::text FROM pg_catalog.pg_stats",
		"SELECT * FROM pg_stats_ext",
		"SELECT column_name, column_default FROM information_schema.columns WHERE table_name = 'mask_people'",
		"SELECT table_to_xml('mask_people', true, false, '')",
		"SELECT pg_catalog.query_to_xml('select email from mask_people', true, false, '')",
		"SELECT schema_to_xml('public', true, false, '')",
		"SELECT database_to_xml(true, false, '')",
		"SELECT cursor_to_xml('rt_nope', 10, false, false, '')",
		"SELECT * FROM ts_stat('SELECT to_tsvector(email) FROM mask_people')",
		"SELECT ts_rewrite('a'::tsquery, 'SELECT to_tsquery(''simple'', replace(email, ''@'', '' '')), ''a''::tsquery FROM mask_people')",
		"SELECT rt_email_of(1)",
		// Side channels.
		"SELECT pg_notify('rt_ch', email) FROM mask_people",
		"SELECT set_config('rt.x', ssn, false) FROM mask_people",
		"SELECT lo_from_bytea(0, convert_to(email, 'UTF8')) FROM mask_people",
		"SELECT current_setting('rt.x', true)",
		// EXPLAIN.
		"EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) SELECT email || '' FROM mask_people",
		"EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM mask_people WHERE id = 1",
		"EXPLAIN ANALYZE SELECT id FROM mask_people WHERE email LIKE 'a%'",
		// Statements with comments and unusual whitespace.
		"/* a */ SELECT\n\temail -- c\n\t,ssn FROM/**/mask_people",
		"SELECT\u00a0email FROM mask_people",
		"SELECT email FROM mask_people;;",
		// Run-time code.
		"DO $$ BEGIN PERFORM email FROM mask_people; END $$",
	}
	conn, obs := rtConnect(t, g)
	for _, m := range rtModes {
		for _, sql := range cases {
			if conn.IsClosed() {
				t.Errorf("%s: the session ended before %q", m.name, sql)
				conn, obs = rtConnect(t, g)
			}
			// In a transaction rolled back after it: the shared fixture's
			// rows keep their order for the other tests.
			if _, err := conn.Exec(testContext(t), "BEGIN", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			out, _ := rtExtended(t, conn, m.mode, sql)
			if m.name == "simple" && os.Getenv("RT_TRACE") != "" {
				t.Logf("%s\n  => %s", sql, out)
			}
			rtNoLeak(t, m.name+": "+sql, out)
			if _, err := conn.Exec(testContext(t), "ROLLBACK", pgx.QueryExecModeSimpleProtocol); err != nil && conn.IsClosed() {
				t.Errorf("%s: the session ended after %q: %v", m.name, sql, err)
			}
		}
	}
	rtNoLeak(t, "notices and notifications", obs.text())
	rtAlive(t, conn)
}

// Stateful attacks, one statement (one Query message) at a time in one
// session: cursors, PREPARE/EXECUTE, savepoints, search_path, LISTEN.
func TestRedTeamSessionSequencesHold(t *testing.T) {
	g := rtGateway(t)
	rtDrop(t, "DROP TABLE IF EXISTS rt_tmp_mine")
	sequences := map[string][]string{
		"scroll cursor": {
			"BEGIN",
			"DECLARE rt_c1 SCROLL CURSOR FOR SELECT id, email, ssn || '' FROM mask_people ORDER BY id",
			"FETCH ABSOLUTE 2 FROM rt_c1", "FETCH BACKWARD 1 FROM rt_c1", "MOVE LAST IN rt_c1",
			"FETCH PRIOR FROM rt_c1", "FETCH RELATIVE -1 FROM rt_c1", "FETCH ALL FROM rt_c1", "CLOSE rt_c1",
			// The name declared again over clean values: both definitions count.
			"DECLARE rt_c1 CURSOR FOR SELECT note, note FROM mask_clean", "DECLARE rt_c1 CURSOR FOR SELECT 1",
			"FETCH ALL FROM rt_c1", "COMMIT",
		},
		"cursor with hold": {
			"BEGIN", "DECLARE rt_c2 CURSOR WITH HOLD FOR SELECT email, lower(ssn) FROM mask_people", "COMMIT",
			"FETCH ALL FROM rt_c2", "CLOSE rt_c2",
		},
		"cursor over a view and a CTE": {
			"BEGIN",
			"DECLARE rt_c3 CURSOR FOR WITH w AS (SELECT * FROM mask_people_v) SELECT contact || '' FROM w",
			"FETCH 2 FROM rt_c3", `DECLARE "RT_C3" CURSOR FOR SELECT email FROM mask_people`, `FETCH ALL FROM "RT_C3"`,
			"ROLLBACK",
		},
		"prepare, deallocate, prepare again": {
			"PREPARE rt_q(int) AS SELECT email || '' AS v FROM mask_people WHERE id = $1", "EXECUTE rt_q(1)",
			"DEALLOCATE rt_q", "PREPARE rt_q(int) AS SELECT $1::text AS v", "EXECUTE rt_q(1)",
			"DEALLOCATE ALL", "PREPARE rt_q AS SELECT ssn FROM mask_people", "EXECUTE rt_q",
			"EXPLAIN ANALYZE EXECUTE rt_q", "EXECUTE rt_q((SELECT email FROM mask_people LIMIT 1))", "DEALLOCATE rt_q",
			"PREPARE rt_q2(text) AS SELECT $1", "EXECUTE rt_q2((SELECT email FROM mask_people LIMIT 1))",
			"DEALLOCATE rt_q2",
		},
		"savepoints and errors": {
			"BEGIN", "SAVEPOINT s1", "SELECT email::int FROM mask_people", "ROLLBACK TO s1",
			"SELECT email, ssn::date FROM mask_people", "ROLLBACK TO SAVEPOINT s1", "SELECT email FROM mask_people",
			"RELEASE s1", "COMMIT",
		},
		"multi-statement queries": {
			"SELECT 1; SELECT email FROM mask_people; SELECT note FROM mask_clean; SELECT ssn || '' FROM mask_people",
			"SELECT note FROM mask_clean; SELECT email::int FROM mask_people; SELECT email FROM mask_people",
			"BEGIN; DECLARE rt_c4 CURSOR FOR SELECT email FROM mask_people; FETCH ALL FROM rt_c4; MOVE ABSOLUTE 0 IN rt_c4; FETCH 1 FROM rt_c4; COMMIT",
			"SELECT 'x' AS email; TABLE mask_people; SELECT 1",
		},
		"search_path": {
			"SET search_path = rt_other, public", "SELECT email, ssn FROM mask_people",
			"SELECT email FROM public.mask_people", "SELECT m.email || '' FROM public.mask_people m",
			"RESET search_path", "SELECT email FROM mask_people",
		},
		"temporary tables and flows": {
			"CREATE TEMP TABLE rt_tmp AS SELECT email FROM mask_people",
			"SELECT email INTO TEMP rt_tmp2 FROM mask_people",
			"CREATE TEMP TABLE rt_tmp_mine(id int, v text)",
			"INSERT INTO rt_tmp_mine SELECT id, email FROM mask_people",
			"INSERT INTO rt_tmp_mine VALUES (1, (SELECT ssn FROM mask_people WHERE id = 1))",
			"WITH x AS (SELECT email FROM mask_people) INSERT INTO rt_tmp_mine SELECT 1, email FROM x",
			"UPDATE rt_tmp_mine SET v = (SELECT email FROM mask_people LIMIT 1)",
			"CREATE VIEW rt_mine_v AS SELECT email FROM mask_people",
			"CREATE MATERIALIZED VIEW rt_mine_mv AS SELECT email FROM mask_people",
			"SELECT * FROM rt_tmp_mine",
		},
		"listen and notify": {
			"LISTEN rt_ch", "NOTIFY rt_ch, 'hello'", "SELECT pg_notify('rt_ch', (SELECT email FROM mask_people LIMIT 1))",
			"SELECT 1", "UNLISTEN *",
		},
	}
	conn, obs := rtConnect(t, g)
	for name, sqls := range sequences {
		for _, sql := range sqls {
			if conn.IsClosed() {
				t.Errorf("%s: the session ended before %q", name, sql)
				conn, obs = rtConnect(t, g)
			}
			out, _ := rtSimple(t, conn, sql)
			if os.Getenv("RT_TRACE") != "" {
				t.Logf("%s: %s\n  => %s", name, sql, out)
			}
			rtNoLeak(t, name+": "+sql, out)
		}
		rtSimple(t, conn, "ROLLBACK")
	}
	rtNoLeak(t, "notices and notifications", obs.text())
	rtAlive(t, conn)
}

// The extended protocol: pipelines (pgx batches) in binary format, a SQL
// PREPAREd statement bound by a Bind, FETCH and EXECUTE through Parse.
func TestRedTeamExtendedProtocolHolds(t *testing.T) {
	g := rtGateway(t)
	ctx := testContext(t)
	conn, obs := rtConnect(t, g)

	b := &pgx.Batch{}
	queued := []string{
		"SELECT email, ssn, age FROM mask_people WHERE id = $1",
		"SELECT email || '', length(ssn) FROM mask_people WHERE id = $1",
		"SELECT contact FROM mask_people_v WHERE id = $1",
		"SELECT note FROM mask_clean WHERE id = $1",
		"SELECT p FROM mask_people p WHERE id = $1",
	}
	for _, sql := range queued {
		b.Queue(sql, 1)
	}
	br := conn.SendBatch(ctx, b)
	for _, sql := range queued {
		rows, err := br.Query()
		var got []string
		for err == nil && rows.Next() {
			vals, verr := rows.Values()
			if verr != nil {
				err = verr
				break
			}
			got = append(got, fmt.Sprint(vals...))
		}
		if rows != nil {
			rows.Close()
		}
		rtNoLeak(t, "batch: "+sql, strings.Join(got, ";")+rtErrorText(err))
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}

	// A SQL PREPAREd statement over masked columns bound by a Bind.
	if out, err := rtSimple(t, conn, "PREPARE rt_bp AS SELECT email FROM mask_people"); err != nil {
		t.Fatalf("PREPARE: %s", out)
	}
	res := conn.PgConn().ExecPrepared(ctx, "rt_bp", nil, nil, nil).Read()
	rtNoLeak(t, "Bind of a SQL PREPAREd statement", fmt.Sprintf("%q %s", res.Rows, rtErrorText(res.Err)))
	if res.Err != nil && !isRefusal(res.Err) {
		t.Errorf("Bind of a SQL PREPAREd statement: %v", res.Err)
	}

	// FETCH and EXECUTE through Parse/Bind/Execute, text and binary.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, sql := range []string{
		"DECLARE rt_ec CURSOR FOR SELECT email, ssn || '', id FROM mask_people",
		"PREPARE rt_ep(int) AS SELECT email, upper(ssn) FROM mask_people WHERE id = $1",
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, m := range rtModes {
		for _, sql := range []string{"FETCH 1 FROM rt_ec", "EXECUTE rt_ep(1)", "EXECUTE rt_ep(2)"} {
			out, _ := rtExtended(t, tx.Conn(), m.mode, sql)
			rtNoLeak(t, m.name+": "+sql, out)
		}
	}
	rtNoLeak(t, "notices", obs.text())
}

// COPY TO STDOUT in text and CSV with their options, column lists, and the
// binary format.
func TestRedTeamCopyHolds(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"COPY mask_people TO STDOUT",
		"COPY mask_people (email, id) TO STDOUT (DELIMITER '|')",
		"COPY mask_people (ssn) TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
		"COPY (SELECT id, email, ssn FROM mask_people) TO STDOUT WITH (FORMAT csv, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NULL', HEADER, FORCE_QUOTE (email))",
		"COPY mask_people TO STDOUT CSV HEADER DELIMITER AS '@' QUOTE AS '.'",
		"COPY mask_people TO STDOUT (FORMAT text, HEADER, NULL '')",
		"COPY (SELECT email || '', lower(ssn) FROM mask_people) TO STDOUT (FORMAT csv)",
		"COPY (TABLE mask_people) TO STDOUT (ENCODING 'LATIN1')",
		"COPY (SELECT * FROM mask_people p, mask_clean c) TO STDOUT",
		"COPY (SELECT c.*, p.* FROM mask_clean c, mask_people p) TO STDOUT (FORMAT csv)",
		"COPY (SELECT contact FROM mask_people_v) TO STDOUT",
		"COPY (SELECT * FROM rt_vv) TO STDOUT",
		"COPY (UPDATE mask_people SET name = name WHERE id = 1 RETURNING email, ssn) TO STDOUT",
		"COPY mask_events TO STDOUT",
		"COPY mask_events_p1 TO STDOUT (FORMAT csv)",
		"COPY mask_child TO STDOUT",
		"COPY mask_people TO STDOUT (FORMAT binary)",
		"COPY (SELECT email || '' FROM mask_people) TO STDOUT (FORMAT binary)",
		"COPY (SELECT email FROM mask_people) TO PROGRAM 'cat'",
		"COPY mask_people TO '/tmp/rt_leak'",
	} {
		if conn.IsClosed() {
			t.Errorf("the session ended before %q", sql)
			conn, _ = rtConnect(t, g)
		}
		rtSimple(t, conn, "BEGIN")
		out, _ := rtCopy(t, conn, sql)
		rtSimple(t, conn, "ROLLBACK")
		if os.Getenv("RT_TRACE") != "" {
			t.Logf("%s\n  => %q", sql, out)
		}
		rtNoLeak(t, sql, out)
	}
	rtAlive(t, conn)
}

// ---------------------------------------------------------------------------
// Known bugs: each test fails until the leak is fixed.
// ---------------------------------------------------------------------------

// A CTE of the statement is out of scope in a FROM subquery of the same
// level (lineage.fromItem analyses a non-lateral subquery under sc.parent,
// which skips the level's CTEs), so a value computed there from a masked
// column is clean to the gateway and has no table OID to fall back on.
//
//	WITH w AS (SELECT email FROM mask_people) SELECT x FROM (SELECT email || '' AS x FROM w) s
//	  -> alice@example.com, bob@example.org, carol@example.net
//	SELECT e FROM rt_cte_v   (an administrator's view written that way)
//	  -> alice@example.com, ...
//	WITH w AS (...) UPDATE mask_clean ... FROM (SELECT ... FROM w) s RETURNING s.e
//	  -> alice@example.com
func TestRedTeamFixedCTEInFromSubquery(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"WITH w AS (SELECT email FROM mask_people) SELECT x FROM (SELECT email || '' AS x FROM w) s",
		"WITH w AS (SELECT id, ssn FROM mask_people) SELECT c.note, s.x FROM mask_clean c JOIN (SELECT id, lower(ssn) AS x FROM w) s USING (id)",
		"SELECT e FROM rt_cte_v",
		"BEGIN; WITH w AS (SELECT id, email FROM mask_people) UPDATE mask_clean c SET note = note FROM (SELECT id, email || '' AS e FROM w) s WHERE s.id = c.id RETURNING s.e; ROLLBACK",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// `*` over a JOIN ... USING counts the USING column twice and in the wrong
// place (lineage.star concatenates every FROM item's columns; PostgreSQL
// puts the merged column first, once). With a relation whose columns are
// unknown (any clean table) absorbing the difference in expandOutputs
// (masking.go), the masks shift by one column: the masked value lands in a
// column the gateway thinks is clean. COPY has no table-OID fallback, so
// even a plain column leaks there.
//
//	SELECT * FROM (SELECT email || '' AS e, id FROM mask_people) p JOIN mask_clean USING (id)
//	  -> <null>|alice@example.com|one ...
//	COPY (SELECT * FROM (SELECT email AS e, id FROM mask_people) p JOIN mask_clean USING (id)) TO STDOUT
//	  -> EMAIL	alice@example.com	one ...
func TestRedTeamFixedStarOverJoinUsing(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	sql := "SELECT * FROM (SELECT email || '' AS e, id FROM mask_people) p JOIN mask_clean USING (id)"
	for _, m := range rtModes {
		out, _ := rtExtended(t, conn, m.mode, sql)
		rtNoLeak(t, m.name+": "+sql, out)
	}
	sql = "COPY (SELECT * FROM (SELECT email AS e, id FROM mask_people) p JOIN mask_clean USING (id)) TO STDOUT"
	out, _ := rtCopy(t, conn, sql)
	rtNoLeak(t, sql, out)
}

// `(s).*` in a target list expands to every field of s at the server, but
// lineage.targets treats it as one expression column; next to a clean `*`
// (an Unknown group in expandOutputs) the masks shift and the masked value
// goes out under a clean column.
//
//	SELECT c.*, (s).* FROM mask_clean c, (SELECT lower(email) AS e, 1 AS k FROM mask_people) s
//	  -> 1|one|alice@example.com|<null> ...
func TestRedTeamFixedCompositeStarShiftsMasks(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	sql := "SELECT c.*, (s).* FROM mask_clean c, (SELECT lower(email) AS e, 1 AS k FROM mask_people) s"
	for _, m := range rtModes {
		out, _ := rtExtended(t, conn, m.mode, sql)
		rtNoLeak(t, m.name+": "+sql, out)
	}
}

// Legitimate queries whose width the gateway miscounts end the session
// with FATAL XX000 (masking.go maskFailed) instead of being masked or
// refused: `(p).*` (one column to lineage.targets), `*` over a JOIN with an
// alias (lineage.fromItem adds the alias entry next to the joined ones, so
// star counts the columns twice), `*` over JOIN ... USING.
//
//	SELECT (p).* FROM mask_people p
//	  -> FATAL XX000 the result has 5 columns where the gateway expected 1
func TestRedTeamFixedMiscountedWidthEndsSession(t *testing.T) {
	g := rtGateway(t)
	for _, sql := range []string{
		"SELECT (p).* FROM mask_people p",
		"SELECT * FROM (mask_people p JOIN mask_clean c ON c.id = p.id) AS j",
		"SELECT * FROM mask_people JOIN mask_child USING (id)",
	} {
		conn, _ := rtConnect(t, g)
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
		if conn.IsClosed() || strings.Contains(out, "FATAL") {
			t.Errorf("%s ended the session: %s", sql, out)
		}
	}
}

// The catalog links a view to masked tables through pg_depend only; a view
// that reads them through a function (here an administrator's SQL
// function) depends on the function, so it is not in the catalog, is not
// "relevant" (masking.go relevant) and its rows go out raw. The same
// statement naming the function directly is refused (mask-runtime).
//
//	SELECT contact FROM rt_fn_v     -- rt_fn_v: SELECT id, rt_email_of(id) AS contact FROM mask_clean
//	  -> alice@example.com, bob@example.org
func TestRedTeamFixedViewReadingThroughAFunction(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	for _, m := range rtModes {
		out, _ := rtExtended(t, conn, m.mode, "SELECT contact FROM rt_fn_v")
		rtNoLeak(t, m.name+": SELECT contact FROM rt_fn_v", out)
	}
}

// MOVE runs the cursor's query but judgeMasks (masking.go, case
// plan.Fetch) skips it before setting maskTouched, so the server's error
// is not scrubbed and echoes the value.
//
//	BEGIN; DECLARE rtc CURSOR FOR SELECT email::int FROM mask_people;
//	MOVE FORWARD ALL IN rtc
//	  -> ERROR 22P02 invalid input syntax for type integer: "alice@example.com"
func TestRedTeamFixedMoveErrorEchoesValue(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	defer rtSimple(t, conn, "ROLLBACK")
	for _, sql := range []string{"BEGIN", "DECLARE rt_mc CURSOR FOR SELECT email::int FROM mask_people", "MOVE FORWARD ALL IN rt_mc"} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// Work that runs at COMMIT (or at the Sync that ends an implicit
// transaction) reports its errors on a statement that reads nothing
// (backend.go backendError scrubs only when o.stmt.maskTouched): a WITH
// HOLD cursor is run to completion, and deferred constraints are checked.
//
//	BEGIN; DECLARE rth CURSOR WITH HOLD FOR SELECT email::int FROM mask_people; COMMIT
//	  -> ERROR 22P02 invalid input syntax for type integer: "alice@example.com"
//	BEGIN; UPDATE rt_uniq SET email = (SELECT email FROM rt_uniq WHERE id = 2) WHERE id = 1; COMMIT
//	  -> ERROR 23505 ... DETAIL Key (email)=(bob@example.org) already exists.
//	   (the UPDATE writes a masked column's values into itself: allowed)
func TestRedTeamFixedErrorAtCommitEchoesValue(t *testing.T) {
	g := rtGateway(t)
	for name, sqls := range map[string][]string{
		"with hold": {"BEGIN", "DECLARE rt_hc CURSOR WITH HOLD FOR SELECT email::int FROM mask_people", "COMMIT"},
		"deferred":  {"BEGIN", "UPDATE rt_uniq SET email = (SELECT email FROM rt_uniq WHERE id = 2) WHERE id = 1", "COMMIT"},
	} {
		conn, _ := rtConnect(t, g)
		for _, sql := range sqls {
			out, _ := rtSimple(t, conn, sql)
			rtNoLeak(t, name+": "+sql, out)
		}
	}
	// The same in the extended protocol: the error comes with the Sync.
	conn, _ := rtConnect(t, g)
	res := conn.PgConn().ExecParams(testContext(t),
		"UPDATE rt_uniq SET email = (SELECT email FROM rt_uniq WHERE id = 2) WHERE id = 1", nil, nil, nil, nil).Read()
	rtNoLeak(t, "extended UPDATE + Sync", rtErrorText(res.Err))
}

// CREATE TABLE AS EXECUTE stores what a PREPAREd statement returns, but
// lineage.statement (CreateTableAsStmt) analyses the EXECUTE alone, whose
// plan has no outputs: no mask-flow, and the copy is a clean table.
//
//	PREPARE rt_p AS SELECT email FROM mask_people;
//	CREATE TEMP TABLE rt_ctas AS EXECUTE rt_p; SELECT email FROM rt_ctas
//	  -> alice@example.com, bob@example.org, carol@example.net
func TestRedTeamFixedCreateTableAsExecute(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"PREPARE rt_ctp AS SELECT email, ssn FROM mask_people",
		"CREATE TEMP TABLE rt_ctas AS EXECUTE rt_ctp",
		"SELECT email, ssn FROM rt_ctas",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// The analysis takes any unqualified call of a pg_catalog name for the
// built-in (analysis/classify.go funcName: Builtin = schema "" && builtin
// name), so an overload in public with other argument types (which the
// server prefers for an exact match) runs without mask-runtime. Creating it
// is allowed: its body is a string the lineage does not read.
//
//	CREATE FUNCTION public.lower(int) RETURNS text LANGUAGE sql
//	  AS 'SELECT string_agg(email, '','') FROM mask_people';
//	SELECT lower(1)
//	  -> alice@example.com,bob@example.org,carol@example.net
func TestRedTeamFixedUserFunctionNamedLikeBuiltin(t *testing.T) {
	g := rtGateway(t)
	rtDrop(t, "DROP FUNCTION IF EXISTS public.lower(int)")
	t.Cleanup(func() { rtDrop(t, "DROP FUNCTION IF EXISTS public.lower(int)") })
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"CREATE FUNCTION public.lower(int) RETURNS text LANGUAGE sql AS 'SELECT string_agg(email, '','') FROM mask_people'",
		"SELECT lower(1)",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// CREATE FUNCTION (string body) and CREATE TRIGGER are allowed, and an
// INSERT into a clean table names no function: the trigger reads the masked
// table and the values come back in RETURNING and in a NOTICE (NoticeResponse
// is relayed as is, backend.go).
//
//	CREATE TABLE rt_sink(id int, note text);
//	CREATE FUNCTION rt_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
//	  NEW.note := (SELECT string_agg(email, ',') FROM mask_people); RAISE NOTICE '%', NEW.note; RETURN NEW; END $$;
//	CREATE TRIGGER rt_trig BEFORE INSERT ON rt_sink FOR EACH ROW EXECUTE FUNCTION rt_trig();
//	INSERT INTO rt_sink(id) VALUES (1) RETURNING note
//	  -> alice@example.com,bob@example.org,carol@example.net (row and notice)
func TestRedTeamFixedTriggerRunsUnseenCode(t *testing.T) {
	g := rtGateway(t)
	drop := "DROP TABLE IF EXISTS rt_sink CASCADE; DROP FUNCTION IF EXISTS rt_trig() CASCADE"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	conn, obs := rtConnect(t, g)
	for _, sql := range []string{
		"CREATE TABLE rt_sink(id int, note text)",
		`CREATE FUNCTION rt_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			NEW.note := (SELECT string_agg(email, ',') FROM mask_people); RAISE NOTICE '%', NEW.note; RETURN NEW; END $$`,
		"CREATE TRIGGER rt_trig BEFORE INSERT ON rt_sink FOR EACH ROW EXECUTE FUNCTION rt_trig()",
		"INSERT INTO rt_sink(id) VALUES (1) RETURNING note",
		"SELECT note FROM rt_sink",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
	rtNoLeak(t, "notices", obs.text())
}

// setval stores its argument in a sequence, which a later clean statement
// reads; it is a writing built-in (analysis/functions.go) but not a sink
// of the lineage (lineage.go sinkFunctions), so a value computed from a
// masked column leaves through it, 7 bytes per call.
//
//	SELECT setval('rt_seq', ('x' || encode(convert_to(substr(email, 1, 7), 'UTF8'), 'hex'))::bit(56)::bigint)
//	  FROM mask_people WHERE id = 1;  SELECT last_value FROM rt_seq
//	  -> 27422272635879525 = "alice@e" (then "xample.", "com")
func TestRedTeamFixedSequenceSideChannel(t *testing.T) {
	g := rtGateway(t)
	rtDrop(t, "DROP SEQUENCE IF EXISTS rt_seq")
	t.Cleanup(func() { rtDrop(t, "DROP SEQUENCE IF EXISTS rt_seq") })
	conn, _ := rtConnect(t, g)
	ctx := testContext(t)
	if _, err := conn.Exec(ctx, "CREATE SEQUENCE rt_seq", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for start := 1; start <= 15; start += 7 {
		sql := fmt.Sprintf("SELECT setval('rt_seq', ('x' || encode(convert_to(substr(email, %d, 7), 'UTF8'), 'hex'))::bit(56)::bigint) FROM mask_people WHERE id = 1", start)
		if out, err := rtSimple(t, conn, sql); err != nil {
			t.Logf("refused or failed (good): %s", out)
			return
		}
		var v int64
		if err := conn.QueryRow(ctx, "SELECT last_value FROM rt_seq", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
			t.Fatal(err)
		}
		for shift := 48; shift >= 0; shift -= 8 {
			if c := byte(v >> shift); c != 0 {
				got = append(got, c)
			}
		}
	}
	rtNoLeak(t, "setval/last_value", string(got))
}

// COPY ... ENCODING changes the bytes the server writes, but the gateway
// takes rows apart as ASCII (copymask.go readField): in SJIS the second
// byte of 'ソ' is 0x5C, the ESCAPE given, so the gateway reads `\"` as an
// escaped quote, runs on past the real delimiter and takes the masked
// field into a clean one; the field counts still agree, so it is sent.
//
//	COPY (SELECT ',ソ' AS a, email, ',x,y' AS b FROM mask_people WHERE id = 1)
//	  TO STDOUT WITH (FORMAT csv, ESCAPE '\', ENCODING 'SJIS')
//	  -> ",\x83\",alice@example.com,",EMAIL,y"
func TestRedTeamFixedCopyEncodingConfusesTheParser(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	sql := `COPY (SELECT ',ソ' AS a, email, ',x,y' AS b FROM mask_people WHERE id = 1) TO STDOUT WITH (FORMAT csv, ESCAPE '\', ENCODING 'SJIS')`
	out, _ := rtCopy(t, conn, sql)
	rtNoLeak(t, sql, out)
}

// SQL cursors and protocol portals share one namespace: an Execute message
// may run a DECLAREd cursor. The gateway finds no portal of that name
// (backend.go front: s.portals), so o.stmt is nil and maskRow sends the
// rows raw.
//
//	Query "BEGIN; DECLARE rtx CURSOR FOR SELECT email FROM mask_people"
//	Execute{Portal: "rtx"}, Sync
//	  -> DataRow alice@example.com, bob@example.org, carol@example.net
func TestRedTeamFixedExecuteMessageRunsSQLCursor(t *testing.T) {
	g := rtGateway(t)
	conn, _ := rtConnect(t, g)
	if out, err := rtSimple(t, conn, "BEGIN; DECLARE rt_xc CURSOR FOR SELECT email, ssn FROM mask_people"); err != nil {
		t.Fatalf("DECLARE: %s", out)
	}
	fe, nc := hijack(t, conn.PgConn())
	defer nc.Close()
	out := rtRawExchange(t, fe, &pgproto3.Execute{Portal: "rt_xc"}, &pgproto3.Sync{})
	rtNoLeak(t, "Execute of a SQL cursor", out)
}

// SQL DEALLOCATE removes a statement made by Parse too (one namespace), but
// the gateway keeps it in s.statements; a new Parse of the name is then
// taken for one the server will reject (frontend.go trackParse: "an
// existing statement stays"), and a Bind binds the old, clean definition's
// plan to the new statement's rows.
//
//	Parse rt_s "SELECT 'clean'::text AS v"; Query "DEALLOCATE rt_s";
//	Parse rt_s "SELECT email || '' AS v FROM mask_people"; Bind/Execute rt_s
//	  -> alice@example.com, bob@example.org, carol@example.net
func TestRedTeamFixedDeallocateThenParseAgain(t *testing.T) {
	g := rtGateway(t)
	ctx := testContext(t)
	for _, dealloc := range []string{"DEALLOCATE rt_s", "DEALLOCATE ALL", "DISCARD ALL"} {
		conn, _ := rtConnect(t, g)
		pc := conn.PgConn()
		if _, err := pc.Prepare(ctx, "rt_s", "SELECT 'clean'::text AS v", nil); err != nil {
			t.Fatal(err)
		}
		if out, err := rtSimple(t, conn, dealloc); err != nil {
			t.Fatalf("%s: %s", dealloc, out)
		}
		if _, err := pc.Prepare(ctx, "rt_s", "SELECT email || '' AS v FROM mask_people", nil); err != nil {
			t.Logf("%s: Parse again: %v", dealloc, err)
		}
		res := pc.ExecPrepared(ctx, "rt_s", nil, nil, nil).Read()
		rtNoLeak(t, dealloc+" then Parse again", fmt.Sprintf("%q %s", res.Rows, rtErrorText(res.Err)))
	}
}

// The gateway reads the catalog again on the session's own connection
// (masking.go reloadMaskCatalog), under the session's search_path. Its
// queries qualify tables and functions but not operators: with pg_catalog
// after public, alice's public.=(text, name) returning false matches no
// masked table, and from then on nothing is masked, even plain columns.
//
//	CREATE FUNCTION public.rt_false(text, name) RETURNS bool LANGUAGE sql AS 'SELECT false';
//	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = name, FUNCTION = public.rt_false);
//	SET search_path = public, pg_catalog; CREATE TABLE rt_reload(x int);  -- DDL: reload
//	SELECT email, ssn FROM mask_people
//	  -> alice@example.com|078-05-1120 ...
func TestRedTeamFixedCatalogReloadUsesSessionOperators(t *testing.T) {
	g := rtGateway(t)
	drop := "DROP OPERATOR IF EXISTS public.= (text, name); DROP FUNCTION IF EXISTS public.rt_false(text, name); DROP TABLE IF EXISTS rt_reload"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"CREATE FUNCTION public.rt_false(text, name) RETURNS bool LANGUAGE sql AS 'SELECT false'",
		"CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = name, FUNCTION = public.rt_false)",
		"SET search_path = public, pg_catalog",
		"CREATE TABLE rt_reload(x int)",
		"SELECT email, ssn FROM mask_people",
		"RESET search_path",
		"SELECT email, ssn FROM mask_people",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// The gateway reads the catalog again before a statement naming a relation
// it did not know, but knows relations by name alone (mask_catalog.go
// known, masking.go unknown): a partition created by someone else in
// another schema under a name that exists elsewhere is "known", so it is
// read with the old catalog, in which its OID is not masked.
//
//	(session starts)  superuser: CREATE TABLE rt_other.mask_clean PARTITION OF rt_events ...;
//	                  INSERT INTO rt_events VALUES (301, 'carol@example.net')
//	SELECT email FROM rt_other.mask_clean
//	  -> carol@example.net
func TestRedTeamFixedNewPartitionWithAKnownName(t *testing.T) {
	g := rtGateway(t)
	drop := "DROP TABLE IF EXISTS rt_other.mask_clean"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	conn, _ := rtConnect(t, g)
	if err := pg.Exec(testContext(t), "app", `CREATE TABLE rt_other.mask_clean PARTITION OF rt_events FOR VALUES FROM (300) TO (400);
		INSERT INTO rt_events VALUES (301, 'carol@example.net'); GRANT SELECT ON rt_other.mask_clean TO app_rw;`); err != nil {
		t.Fatal(err)
	}
	out, _ := rtSimple(t, conn, "SELECT email FROM rt_other.mask_clean")
	rtNoLeak(t, "SELECT email FROM rt_other.mask_clean", out)
}
