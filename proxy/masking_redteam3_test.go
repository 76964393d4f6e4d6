package proxy_test

// Red team, round 3: attacks on the fixes of rounds 1 and 2 (the
// multi-statement refusal, the catalog reload, the trigger and user-code
// checks), reusing the helpers of masking_redteam_test.go.
//
// TestKnownBug3* tests fail while the hole they show is open;
// TestRedTeam3* tests are families the gateway holds.

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

const rt3Drop = `DROP FUNCTION IF EXISTS public.upper(int) CASCADE;
	DROP TABLE IF EXISTS rt3_sink, rt3_dom CASCADE;
	DROP FUNCTION IF EXISTS rt3_trig() CASCADE;
	DROP DOMAIN IF EXISTS rt3_email CASCADE`

const rt3TrigFunc = `CREATE FUNCTION rt3_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
	NEW.note := (SELECT string_agg(email, ',') FROM mask_people); RETURN NEW; END $$`

const rt3Trigger = "CREATE TRIGGER rt3_trig BEFORE INSERT ON rt3_sink FOR EACH ROW EXECUTE FUNCTION rt3_trig()"

func rt3Clean(t *testing.T) {
	rtDrop(t, rt3Drop)
	t.Cleanup(func() { rtDrop(t, rt3Drop) })
}

// A Query message holding a transaction statement is never preceded by a
// catalog reload (masking.go judgeMasks: `reload = false` for any
// KindTransaction in st.analysis), and when needsCatalog says must but
// reload is false nothing refuses: the statements are judged with the
// catalog read before the session's last DDL (stale is still set). A user
// function named like a built-in, or a trigger, created by a standalone
// statement (which the multi-statement refusal asks for) is unknown to the
// userCode/triggered checks when used after BEGIN in the next message.
//
//	CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql
//	  AS $$SELECT string_agg(email, ',') FROM mask_people$$
//	BEGIN; SELECT upper(1)
//	  -> alice@example.com,bob@example.org,carol@example.net
//	(CREATE TRIGGER ...;  BEGIN; INSERT INTO rt3_sink(id) VALUES (1) RETURNING note  -> the same)
func TestRedTeam3FixedTransactionStatementSkipsReload(t *testing.T) {
	g := rtGateway(t)
	rt3Clean(t)
	for name, steps := range map[string][]string{
		"function after BEGIN": {
			"CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS $$SELECT string_agg(email, ',') FROM mask_people$$",
			"BEGIN; SELECT upper(1)", "ROLLBACK"},
		"function after COMMIT": {
			"CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS $$SELECT string_agg(email, ',') FROM mask_people$$",
			"COMMIT; SELECT upper(1)"},
		"trigger after BEGIN": {
			"CREATE TABLE rt3_sink(id int, note text)", rt3TrigFunc, rt3Trigger,
			"BEGIN; INSERT INTO rt3_sink(id) VALUES (1) RETURNING note", "ROLLBACK"},
	} {
		rtDrop(t, rt3Drop)
		rtNoLeak(t, name, rt2Steps(t, g, steps...))
	}
}

// judgeMasks runs at Parse only (judge.go: stage != StageBind), and the
// catalog reload forced by a Parse of DDL happens at the next Parse, before
// the DDL has been executed. So: Parse the CREATE TRIGGER, Sync; Parse the
// INSERT (the gateway reads the catalog again: no trigger yet, stale
// cleared), then Bind/Execute the CREATE TRIGGER and the INSERT in one
// pipeline. The trigger reads the masked table; RETURNING hands it back.
// (pgx: conn.Prepare of both, then a Batch executing them.)
//
//	Parse rt3_ddl "CREATE TRIGGER rt3_trig BEFORE INSERT ON rt3_sink ..."; Sync
//	Parse rt3_ins "INSERT INTO rt3_sink(id) VALUES (1) RETURNING note"
//	Bind/Execute rt3_ddl; Bind/Execute rt3_ins; Sync
//	  -> DataRow alice@example.com,bob@example.org,carol@example.net
func TestRedTeam3FixedParseBeforeDDLRuns(t *testing.T) {
	g := rtGateway(t)
	rt3Clean(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{"CREATE TABLE rt3_sink(id int, note text)", rt3TrigFunc} {
		if out, err := rtSimple(t, conn, sql); err != nil {
			t.Fatalf("%s: %s", sql, out)
		}
	}
	fe, nc := hijack(t, conn.PgConn())
	defer nc.Close()
	out := rtRawExchange(t, fe, &pgproto3.Parse{Name: "rt3_ddl", Query: rt3Trigger}, &pgproto3.Sync{})
	out += rtRawExchange(t, fe,
		&pgproto3.Parse{Name: "rt3_ins", Query: "INSERT INTO rt3_sink(id) VALUES (1) RETURNING note"},
		&pgproto3.Bind{PreparedStatement: "rt3_ddl"}, &pgproto3.Execute{},
		&pgproto3.Bind{PreparedStatement: "rt3_ins"}, &pgproto3.Execute{},
		&pgproto3.Sync{})
	rtNoLeak(t, "Parse of the INSERT before the CREATE TRIGGER ran", out)
}

// The same with SQL PREPARE: the trigger check (masking.go unseenCode,
// line 145) looks at x.Written of INSERT/UPDATE/... kinds only, and runs
// when the PREPARE is judged (no trigger yet). EXECUTE is KindExecute with
// no Written relations (analysis: "EXECUTE p" carries only its arguments),
// so the reload before it (stale after CREATE TRIGGER) changes nothing:
// the prepared INSERT runs the new trigger unchecked.
//
//	PREPARE rt3_p AS INSERT INTO rt3_sink(id) VALUES (1) RETURNING note
//	CREATE TRIGGER rt3_trig BEFORE INSERT ON rt3_sink ...
//	EXECUTE rt3_p
//	  -> alice@example.com,bob@example.org,carol@example.net
func TestRedTeam3FixedPrepareBeforeTrigger(t *testing.T) {
	g := rtGateway(t)
	rt3Clean(t)
	out := rt2Steps(t, g, "CREATE TABLE rt3_sink(id int, note text)", rt3TrigFunc,
		"PREPARE rt3_p AS INSERT INTO rt3_sink(id) VALUES (1) RETURNING note", rt3Trigger, "EXECUTE rt3_p")
	rtNoLeak(t, "PREPARE before CREATE TRIGGER, EXECUTE after", out)
}

// Multi-statement and pipeline attacks on the "schema change on its own"
// refusal: a DDL then a use in one Query, in a pgx Batch (one pipeline, no
// Sync between), with the DDL last.
func TestRedTeam3SchemaChangeThenUseHolds(t *testing.T) {
	g := rtGateway(t)
	rt3Clean(t)
	ctx := testContext(t)
	fn := "CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS $$SELECT string_agg(email, ',') FROM mask_people$$"
	for _, sqls := range [][]string{
		{fn + "; SELECT upper(1)"},
		{"BEGIN; " + fn + "; SELECT upper(1); COMMIT"},
		{"SELECT 1; " + fn, "SELECT upper(1)"},
		{"CREATE TABLE rt3_sink(id int, note text)", rt3TrigFunc + "; " + rt3Trigger + "; INSERT INTO rt3_sink(id) VALUES (1) RETURNING note"},
	} {
		rtDrop(t, rt3Drop)
		rtNoLeak(t, strings.Join(sqls, " / "), rt2Steps(t, g, sqls...))
	}
	// A pipeline (pgconn.Batch): Parse/Bind/Execute of both, one Sync; and
	// pgx.Batch in its default mode.
	rtDrop(t, rt3Drop)
	conn, obs := rtConnect(t, g)
	b := &pgconn.Batch{}
	b.ExecParams(fn, nil, nil, nil, nil)
	b.ExecParams("SELECT upper(1)", nil, nil, nil, nil)
	res, err := conn.PgConn().ExecBatch(ctx, b).ReadAll()
	var sb strings.Builder
	for _, r := range res {
		for _, row := range r.Rows {
			for _, v := range row {
				sb.Write(v)
				sb.WriteByte('|')
			}
		}
		sb.WriteString(rtErrorText(r.Err))
	}
	sb.WriteString(rtErrorText(err) + obs.text())
	rtNoLeak(t, "pgconn batch: CREATE FUNCTION + SELECT upper(1)", sb.String())

	rtDrop(t, rt3Drop)
	conn, obs = rtConnect(t, g)
	pb := &pgx.Batch{}
	pb.Queue(fn)
	pb.Queue("SELECT upper(1)")
	br := conn.SendBatch(ctx, pb)
	_, err1 := br.Exec()
	var v string
	err2 := br.QueryRow().Scan(&v)
	br.Close()
	rtNoLeak(t, "pgx batch: CREATE FUNCTION + SELECT upper(1)", v+rtErrorText(err1)+rtErrorText(err2)+obs.text())
}

// Binary results, domains over text, arrays of masked values and composite
// types, with real maskers (Partial, Email) and an every-result rule.
func TestRedTeam3TypesAndFormatsHold(t *testing.T) {
	rtFixture(t)
	rt3Clean(t)
	if err := pg.Exec(context.Background(), "app", `
		CREATE DOMAIN rt3_email AS text;
		CREATE TABLE rt3_dom(id int, email rt3_email, ssn varchar(11), code char(12), nm name, js jsonb);
		INSERT INTO rt3_dom VALUES (1, 'alice@example.com', '078-05-1120', '219-09-9999', 'bob@example.org',
			'{"e": "carol@example.net"}');
		GRANT SELECT ON rt3_dom TO app_rw;`); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{
			{Column: "public.mask_people.email", Masker: mask.Email(true), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_people.ssn", Masker: mask.Partial(0, 2), UnlessGroups: []string{"ops"}},
			{Table: "public.rt3_dom", Masker: mask.Partial(1, 1), UnlessGroups: []string{"ops"}},
		}
	})
	cases := []string{
		"SELECT * FROM rt3_dom",
		"SELECT email, email::text, ssn::text, code, nm, js, js ->> 'e' FROM rt3_dom",
		"SELECT array_agg(email), array_agg(ssn), ARRAY[email] FROM mask_people",
		"SELECT array_agg(email)::text[], (array_agg(ssn))[1:2] FROM mask_people",
		"SELECT p FROM mask_people p",
		"SELECT ROW(email, ssn) FROM mask_people",
		"SELECT d FROM rt3_dom d",
		"SELECT email::name, ssn::bpchar, email::varchar(5), to_json(email), to_jsonb(ssn) FROM mask_people",
		"SELECT email FROM mask_people UNION ALL SELECT 'x' UNION ALL SELECT email FROM rt3_dom",
		"SELECT x FROM (SELECT email AS x FROM rt3_dom UNION ALL SELECT note FROM mask_clean) s",
	}
	conn, obs := rtConnect(t, g)
	for _, m := range rtModes {
		for _, sql := range cases {
			if conn.IsClosed() {
				conn, obs = rtConnect(t, g)
			}
			out, _ := rtExtended(t, conn, m.mode, sql)
			rt2Trace(t, m.name+": "+sql+"\n  => "+out)
			rtNoLeak(t, m.name+": "+sql, out)
		}
	}
	// Binary per column in raw protocol.
	fe, nc := hijack(t, conn.PgConn())
	defer nc.Close()
	for _, sql := range []string{"SELECT email, ssn, code, nm, js FROM rt3_dom", "SELECT array_agg(email), p FROM mask_people p GROUP BY p"} {
		out := rtRawExchange(t, fe, &pgproto3.Parse{Query: sql}, &pgproto3.Bind{ResultFormatCodes: []int16{1}},
			&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
		rt2Trace(t, out)
		rtNoLeak(t, "binary: "+sql, out)
		if strings.Contains(out, "SFATAL") {
			break
		}
	}
	rtNoLeak(t, "notices", obs.text())
}

// The every-result rule (Table "*") lets through, unmasked, any cell its
// detectors cannot read (masking.go:59 and :61 passUnreadable: true;
// cellMask.passes, masking.go:667), while mask.Rule's contract
// (mask/mask.go:96-99) says "a cell of another type in binary format is
// masked whole". A record, an array or a bytea in binary format carries
// the detected value out; the same query in text format is masked.
//
//	rule: {Table: "*", Masker: Redact, Detectors: EmailAddress, USSSN}
//	Parse/Bind (all results binary) "SELECT ROW(email, 1), ARRAY[email, ssn], email::bytea FROM mask_people"
//	  -> alice@example.com, 078-05-1120 inside the binary record/array/bytea
//	(pgx cache-statement, cache-describe, describe-exec modes do this by themselves)
func TestRedTeam3FixedEveryResultRuleBinaryPasses(t *testing.T) {
	rtFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Table: "*", Masker: mask.Redact(), Detectors: []mask.Detector{mask.EmailAddress(), mask.USSSN()}}}
	})
	conn, _ := rtConnect(t, g)
	fe, nc := hijack(t, conn.PgConn())
	defer nc.Close()
	for _, sql := range []string{"SELECT ROW(email, 1) FROM mask_people", "SELECT ARRAY[email, ssn] FROM mask_people",
		"SELECT email::bytea FROM mask_people"} {
		out := rtRawExchange(t, fe, &pgproto3.Parse{Query: sql}, &pgproto3.Bind{ResultFormatCodes: []int16{1}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		rtNoLeak(t, "binary: "+sql, out)
		if strings.Contains(out, "SFATAL") {
			return
		}
	}
}

// The same rule in text format: composites, arrays, JSON are read by the
// detectors and masked. (email::bytea in text format is hex, which no
// detector reads: like any reversible encoding, a limit of detectors.)
func TestRedTeam3EveryResultRuleTextHolds(t *testing.T) {
	rtFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Table: "*", Masker: mask.Redact(), Detectors: []mask.Detector{mask.EmailAddress(), mask.USSSN()}}}
	})
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"SELECT email, ssn FROM mask_people",
		"SELECT p FROM mask_people p",
		"SELECT ROW(email, 1), ARRAY[email, ssn], to_jsonb(p), p::text FROM mask_people p",
	} {
		out, _ := rtSimple(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// Cursors over set operations, FETCH after the catalog changed, COPY CSV
// options, notices and NOTIFY outside transactions, INSERT ... SELECT
// RETURNING, and long and quoted identifiers.
func TestRedTeam3SessionFamiliesHold(t *testing.T) {
	g := rtGateway(t)
	rt3Clean(t)
	long := strings.Repeat("x", 70)
	for name, sqls := range map[string][]string{
		"cursor over union": {"BEGIN",
			"DECLARE rt3_c CURSOR FOR SELECT note FROM mask_clean UNION ALL SELECT email FROM mask_people",
			"FETCH ALL FROM rt3_c", "ROLLBACK"},
		"cursor over intersect subquery": {"BEGIN",
			"DECLARE rt3_c CURSOR FOR SELECT * FROM (SELECT email FROM mask_people UNION SELECT 'x') s",
			"FETCH ALL FROM rt3_c", "ROLLBACK"},
		"fetch after ddl": {"BEGIN",
			"DECLARE rt3_c CURSOR WITH HOLD FOR SELECT id, email FROM mask_people",
			"CREATE TABLE rt3_sink(id int, note text)", "COMMIT", "FETCH ALL FROM rt3_c", "CLOSE rt3_c"},
		"insert select returning": {"CREATE TABLE rt3_sink(id int, note text)",
			"INSERT INTO rt3_sink SELECT id, email FROM mask_people RETURNING note",
			"INSERT INTO rt3_sink SELECT id, 'x' FROM mask_people RETURNING (SELECT ssn FROM mask_people LIMIT 1)",
			"SELECT * FROM rt3_sink"},
		"long identifiers": {
			`SELECT email AS "` + long + `", ssn AS "` + long + `y" FROM mask_people`,
			`SELECT "` + long + `" FROM (SELECT email AS "` + long + `z" FROM mask_people) s`,
			`SELECT email AS "EMAIL", 'x' AS email FROM mask_people`,
			`SELECT "email" FROM (SELECT 'x' AS "Email", email FROM mask_people) s`},
		"notice outside tx": {
			"DO $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(email, ',') FROM mask_people); END $$",
			"SELECT email::int FROM mask_people", "SELECT 1"},
		"notify trigger": {"CREATE TABLE rt3_sink(id int, note text)", "LISTEN rt3_ch",
			`CREATE FUNCTION rt3_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
				PERFORM pg_notify('rt3_ch', (SELECT string_agg(email, ',') FROM mask_people)); RETURN NEW; END $$`,
			rt3Trigger, "INSERT INTO rt3_sink(id) VALUES (1)", "SELECT 1"},
		"instead of trigger on own view": {
			"CREATE TABLE rt3_sink(id int, note text)", rt3TrigFunc,
			"CREATE VIEW rt3_v AS SELECT id, note FROM rt3_sink",
			"CREATE TRIGGER rt3_vt INSTEAD OF INSERT ON rt3_v FOR EACH ROW EXECUTE FUNCTION rt3_trig()",
			"INSERT INTO rt3_v(id) VALUES (1) RETURNING note"},
		"rule on own table": {
			"CREATE TABLE rt3_sink(id int, note text)",
			"CREATE RULE rt3_r AS ON INSERT TO rt3_sink DO INSTEAD SELECT email, ssn FROM mask_people",
			"INSERT INTO rt3_sink VALUES (1, 'x')"},
	} {
		rtDrop(t, rt3Drop)
		rtNoLeak(t, name, rt2Steps(t, g, sqls...))
	}
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"COPY (SELECT id, email FROM mask_people) TO STDOUT (FORMAT csv, HEADER, DELIMITER ',', QUOTE ',')",
		"COPY (SELECT email, ssn FROM mask_people) TO STDOUT (FORMAT csv, FORCE_NOT_NULL (email))",
		"COPY (SELECT 'a,b\"c' AS x, email FROM mask_people) TO STDOUT (FORMAT csv, QUOTE '\"', ESCAPE '\"')",
		"COPY (SELECT E'a\\tb' AS x, email FROM mask_people) TO STDOUT (DELIMITER E'\\t')",
		"COPY (SELECT 'x' AS a, email FROM mask_people) TO STDOUT (FORMAT csv, HEADER, QUOTE '@', FORCE_QUOTE *)",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, DELIMITER '@')",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, NULL '', FORCE_NULL (email))",
	} {
		if conn.IsClosed() {
			conn, _ = rtConnect(t, g)
		}
		out, _ := rtCopy(t, conn, sql)
		rt2Trace(t, sql+"\n  => "+out)
		rtNoLeak(t, sql, out)
	}
	rtDrop(t, "DROP VIEW IF EXISTS rt3_v")
}
