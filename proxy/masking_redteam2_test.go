package proxy_test

// Red team, round 2: attacks on the masking that round 1
// (masking_redteam_test.go, whose helpers this file reuses) did not try,
// or that its fixes opened.
//
// TestKnownBug2* tests fail while the hole they show is open (each says
// the SQL, what leaks and why); TestRedTeam2* tests are families of attacks
// the gateway holds (masked, refused, or an error that echoes nothing).

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

var (
	rt2FixtureOnce sync.Once
	rt2FixtureErr  error
)

// rt2Fixture creates, as superuser, the round-2 objects: masked tables owned
// by the upstream role (app_rw, as when the application owns its schema), a
// masked child with a foreign key to a clean parent, a masked table with an
// exclusion constraint, a large masked table with planner statistics, a
// mixed-case masked table, a table-rule table in another schema, and a
// table masked by a detector-restricted rule.
func rt2Fixture(t *testing.T) {
	t.Helper()
	rtFixture(t)
	rt2FixtureOnce.Do(func() {
		rt2FixtureErr = pg.Exec(context.Background(), "app", `
			DROP VIEW IF EXISTS rt2_chk_v, rt2_late_v CASCADE;
			DROP TABLE IF EXISTS rt2_owned, rt2_owned_x, rt2_parted, rt2_staff, rt2_dept, rt2_excl, rt2_big,
				"RT2_Mixed", rt2_notes, rt2_sink CASCADE;
			DROP SCHEMA IF EXISTS rt2_s CASCADE;
			DROP SCHEMA IF EXISTS rt2_tmp_s CASCADE;
			CREATE EXTENSION IF NOT EXISTS btree_gist;
			CREATE TABLE rt2_owned(id int PRIMARY KEY, email text, ssn text);
			INSERT INTO rt2_owned VALUES (1, 'alice@example.com', '078-05-1120'), (2, 'alice@example.com', '219-09-9999'),
				(3, 'bob@example.org', '123-45-6789');
			ALTER TABLE rt2_owned OWNER TO app_rw;
			CREATE TABLE rt2_parted(at int, email text) PARTITION BY RANGE (at);
			CREATE TABLE rt2_parted_p1 PARTITION OF rt2_parted FOR VALUES FROM (0) TO (100);
			INSERT INTO rt2_parted VALUES (1, 'carol@example.net');
			ALTER TABLE rt2_parted OWNER TO app_rw;
			ALTER TABLE rt2_parted_p1 OWNER TO app_rw;
			CREATE TABLE rt2_dept(id int PRIMARY KEY);
			INSERT INTO rt2_dept VALUES (1), (2);
			CREATE TABLE rt2_staff(id int PRIMARY KEY, email text,
				dept int NOT NULL REFERENCES rt2_dept ON UPDATE CASCADE ON DELETE SET NULL CHECK (dept < 100));
			INSERT INTO rt2_staff VALUES (1, 'alice@example.com', 1), (2, 'bob@example.org', 2);
			CREATE VIEW rt2_chk_v AS SELECT * FROM rt2_staff WHERE dept = 1 WITH CHECK OPTION;
			CREATE TABLE rt2_excl(id int, email text, EXCLUDE USING gist (id WITH =, email WITH <>));
			INSERT INTO rt2_excl VALUES (1, 'alice@example.com');
			CREATE TABLE rt2_big(id int, email text);
			INSERT INTO rt2_big SELECT g, CASE WHEN g % 3 = 0 THEN 'bob@example.org' ELSE 'alice@example.com' END
				FROM generate_series(1, 3000) g;
			ANALYZE rt2_big;
			CREATE TABLE "RT2_Mixed"(id int, "Email" text);
			INSERT INTO "RT2_Mixed" VALUES (1, 'alice@example.com');
			CREATE TABLE rt2_notes(id int, note text);
			INSERT INTO rt2_notes VALUES (1, 'write to alice@example.com today'), (2, 'nothing here');
			CREATE SCHEMA rt2_s;
			CREATE TABLE rt2_s.secret(id int, email text);
			INSERT INTO rt2_s.secret VALUES (1, 'bob@example.org');
			GRANT USAGE ON SCHEMA rt2_s TO app_rw;
			GRANT SELECT, INSERT, UPDATE, DELETE ON rt2_dept, rt2_staff, rt2_chk_v, rt2_excl, rt2_big, "RT2_Mixed",
				rt2_notes, rt2_s.secret TO app_rw;`)
	})
	if rt2FixtureErr != nil {
		t.Fatalf("creating the red-team 2 fixture: %v", rt2FixtureErr)
	}
}

// rt2Gateway is rtGateway's rules plus rules over the round-2 tables.
func rt2Gateway(t *testing.T) *gateway {
	rt2Fixture(t)
	return startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{
			{Column: "public.mask_people.email", Masker: fixed("EMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_people.ssn", Masker: fixed("SSN"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_events.email", Masker: fixed("EVENT"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt_uniq.email", Masker: fixed("UEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt_events.email", Masker: fixed("REVENT"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt2_owned.email", Masker: fixed("OEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt2_owned.ssn", Masker: fixed("OSSN"), UnlessGroups: []string{"ops"}},
			{Table: "public.rt2_parted", Masker: fixed("PART"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt2_staff.email", Masker: fixed("SEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt2_excl.email", Masker: fixed("XEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.rt2_big.email", Masker: fixed("BEMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.RT2_Mixed.Email", Masker: fixed("MEMAIL"), UnlessGroups: []string{"ops"}},
			{Table: "rt2_s.secret", Masker: fixed("SSECRET"), UnlessGroups: []string{"ops"}},
		}
	})
}

// rt2Steps runs sqls one Query message at a time on a new session of alice
// and returns everything she received (rows, errors, notices).
func rt2Steps(t *testing.T, g *gateway, sqls ...string) string {
	t.Helper()
	conn, obs := rtConnect(t, g)
	var b strings.Builder
	for _, sql := range sqls {
		out, _ := rtSimple(t, conn, sql)
		fmt.Fprintf(&b, "%s\n  => %s\n", sql, out)
	}
	b.WriteString(obs.text())
	if os.Getenv("RT_TRACE") != "" {
		t.Log(b.String())
	}
	return b.String()
}

// rt2Extract reads n characters of a value one bit at a time through an
// oracle reporting whether the k-th character's code is above c. It stops
// (returning what it has) when the oracle fails: the gateway refused.
func rt2Extract(n int, above func(k, c int) (bool, error)) (string, error) {
	var got []byte
	for k := 1; k <= n; k++ {
		lo, hi := 32, 126
		for lo < hi {
			mid := (lo + hi) / 2
			yes, err := above(k, mid)
			if err != nil {
				return string(got), err
			}
			if yes {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		got = append(got, byte(lo))
	}
	return string(got), nil
}

// rt2Trace logs s when RT_TRACE is set.
func rt2Trace(t *testing.T, s string) {
	t.Helper()
	if os.Getenv("RT_TRACE") != "" {
		t.Log(s)
	}
}

// rt2Rows counts the rows in an rtSimple output.
func rt2Rows(out string) int { return strings.Count(out, ";") }

// ---------------------------------------------------------------------------
// Known bugs: each test fails until the leak is fixed.
// ---------------------------------------------------------------------------

// COPY options whose argument is a number, or a boolean spelled in another
// case, are misread (lineage.go copyStmt reads only String and Boolean
// arguments, and compares booleans case-sensitively), while the server reads
// them as PostgreSQL's defGetString/defGetBoolean do. With HEADER 0 or
// 'OFF' the gateway takes the first data row for the header and sends it
// as it is; with DELIMITER 5 it splits the rows on ',' and masks the wrong
// field.
//
//	COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER 0)
//	  -> alice@example.com / EMAIL / EMAIL
//	COPY (SELECT 'p' AS a, email, 'r,s,t' AS b FROM mask_people) TO STDOUT (FORMAT csv, DELIMITER 5)
//	  -> p5alice@example.com5r,EMAIL,t  (every row)
func TestRedTeam2FixedCopyOptionsMisread(t *testing.T) {
	g := rt2Gateway(t)
	for _, sql := range []string{
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER 0)",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER 'OFF')",
		"COPY mask_people (id, email) TO STDOUT (FORMAT csv, HEADER 'False')",
		"COPY (SELECT 'p' AS a, email, 'r,s,t' AS b FROM mask_people) TO STDOUT (FORMAT csv, DELIMITER 5)",
	} {
		conn, _ := rtConnect(t, g)
		out, _ := rtCopy(t, conn, sql)
		rtNoLeak(t, sql, out)
	}
}

// SEARCH and CYCLE add columns to a recursive CTE (the search sequence, the
// cycle path) built from the masked columns they name; lineage.go with()
// analyses only the CTE's query, so the added columns are unknown names,
// clean to the gateway, and computed (no table OID to fall back on).
//
//	WITH RECURSIVE r(id, email) AS (SELECT id, email FROM mask_people UNION ALL SELECT id, email FROM r WHERE false)
//	  SEARCH DEPTH FIRST BY email SET ord SELECT ord::text FROM r
//	  -> {(alice@example.com)}, {(bob@example.org)}, {(carol@example.net)}
//	(the same with CYCLE email SET c USING path ... SELECT path::text, and through a cursor)
func TestRedTeam2FixedRecursiveSearchCycleColumns(t *testing.T) {
	g := rt2Gateway(t)
	const cte = "WITH RECURSIVE r(id, email) AS (SELECT id, email FROM mask_people UNION ALL SELECT id, email FROM r WHERE false) "
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		cte + "SEARCH DEPTH FIRST BY email SET ord SELECT ord::text FROM r",
		cte + "SEARCH BREADTH FIRST BY email SET ord SELECT id, ord FROM r",
		cte + "CYCLE email SET is_cycle USING path SELECT path::text FROM r",
	} {
		for _, m := range rtModes {
			if conn.IsClosed() {
				conn, _ = rtConnect(t, g)
			}
			out, _ := rtExtended(t, conn, m.mode, sql)
			rtNoLeak(t, m.name+": "+sql, out)
		}
	}
	rtNoLeak(t, "cursor", rt2Steps(t, g, "BEGIN",
		"DECLARE rt2_sc CURSOR FOR "+cte+"SEARCH DEPTH FIRST BY email SET ord SELECT ord::text FROM r",
		"FETCH ALL FROM rt2_sc", "ROLLBACK"))
}

// The statements of one Query message are all judged with the catalog read
// before it (masking.go judgeMasks: needsCatalog, then changesSchema only
// sets stale for the next message), so what an earlier statement of the
// message defines is unknown when a later one is judged. Round 1's fixes
// (a user function named like a built-in, a trigger on a clean table) are
// bypassed by sending the definition and its use together.
//
//	BEGIN;
//	CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql
//	  AS $$SELECT string_agg(email, ',') FROM mask_people$$; SELECT upper(1)
//	  -> alice@example.com,bob@example.org,carol@example.net
//	CREATE TABLE rt2_sink(...); CREATE FUNCTION rt2_trig() ...; CREATE TRIGGER ...;
//	  INSERT INTO rt2_sink(id) VALUES (1) RETURNING note
//	  -> alice@example.com,bob@example.org,carol@example.net
func TestRedTeam2FixedDefinitionsUsedInTheSameQuery(t *testing.T) {
	g := rt2Gateway(t)
	drop := "DROP FUNCTION IF EXISTS public.upper(int); DROP TABLE IF EXISTS rt2_sink CASCADE; DROP FUNCTION IF EXISTS rt2_trig() CASCADE"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	rtNoLeak(t, "function named like a built-in", rt2Steps(t, g, "BEGIN",
		"CREATE FUNCTION public.upper(int) RETURNS text LANGUAGE sql AS $$SELECT string_agg(email, ',') FROM mask_people$$; SELECT upper(1)",
		"ROLLBACK"))
	rtNoLeak(t, "trigger", rt2Steps(t, g, "BEGIN",
		`CREATE TABLE rt2_sink(id int, note text);
		 CREATE FUNCTION rt2_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			NEW.note := (SELECT string_agg(email, ',') FROM mask_people); RETURN NEW; END $$;
		 CREATE TRIGGER rt2_trig BEFORE INSERT ON rt2_sink FOR EACH ROW EXECUTE FUNCTION rt2_trig();
		 INSERT INTO rt2_sink(id) VALUES (1) RETURNING note`,
		"ROLLBACK"))
}

// A foreign key's ON UPDATE CASCADE / ON DELETE SET NULL changes rows of a
// masked child when a clean parent changes. The statement names only the
// clean parent, so it touches nothing masked (maskTouched false), and the
// server's error about the child row is relayed as it is (backend.go
// backendError scrubs only touched statements); its DETAIL "Failing row
// contains (...)" quotes the whole masked row. FK actions run as internal
// triggers, which the catalog's trigger list skips (mask_catalog.go
// namesQuery: NOT tgisinternal). Needs only UPDATE/DELETE on the parent.
//
//	DELETE FROM rt2_dept WHERE id = 1
//	  -> ERROR 23502 ... DETAIL Failing row contains (1, alice@example.com, null).
//	UPDATE rt2_dept SET id = 500 WHERE id = 1
//	  -> ERROR 23514 ... DETAIL Failing row contains (1, alice@example.com, 500).
func TestRedTeam2FixedCascadeErrorEchoesMaskedRow(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{"DELETE FROM rt2_dept WHERE id = 1", "UPDATE rt2_dept SET id = 500 WHERE id = 1"} {
		for _, m := range rtModes {
			out, _ := rtExtended(t, conn, m.mode, sql)
			rtNoLeak(t, m.name+": "+sql, out)
		}
	}
}

// COPY FROM into a masked table is analysed without touching it
// (lineage.go copyStmt returns early for IsFrom), so the server's errors
// are not scrubbed; an exclusion constraint's DETAIL quotes the existing
// row it conflicts with, masked column included. (INSERT is scrubbed.)
//
//	COPY rt2_excl FROM STDIN   with "1\tzed@x.invalid"
//	  -> DETAIL Key (id, email)=(1, zed@x.invalid) conflicts with existing key (id, email)=(1, alice@example.com).
func TestRedTeam2FixedCopyFromConstraintEchoesMaskedRow(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	_, err := conn.PgConn().CopyFrom(testContext(t), strings.NewReader("1\tzed@x.invalid\n"), "COPY rt2_excl FROM STDIN")
	rtNoLeak(t, "COPY rt2_excl FROM STDIN", rtErrorText(err))
}

// In a REPEATABLE READ (or SERIALIZABLE) transaction the gateway's catalog
// queries, run on the session's connection (masking.go
// reloadMaskCatalog), read the transaction's snapshot: a view created by
// someone else after the snapshot is not in the catalog read again, yet
// the server plans it (catalog lookups are not MVCC-snapshotted) and reads
// the masked table. The statement goes on as if the view were clean.
//
//	BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1;
//	(admin) CREATE VIEW rt2_late_v AS SELECT id, email FROM mask_people;
//	SELECT email FROM rt2_late_v
//	  -> alice@example.com, bob@example.org, carol@example.net
func TestRedTeam2FixedRepeatableReadCatalog(t *testing.T) {
	g := rt2Gateway(t)
	drop := "DROP VIEW IF EXISTS rt2_late_v"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT 1"} {
		if out, err := rtSimple(t, conn, sql); err != nil {
			t.Fatalf("%s: %s", sql, out)
		}
	}
	if err := pg.Exec(testContext(t), "app", "CREATE VIEW rt2_late_v AS SELECT id, email FROM mask_people; GRANT SELECT ON rt2_late_v TO app_rw"); err != nil {
		t.Fatal(err)
	}
	out, _ := rtSimple(t, conn, "SELECT email FROM rt2_late_v")
	rtNoLeak(t, "SELECT email FROM rt2_late_v (repeatable read)", out)
	rtSimple(t, conn, "ROLLBACK")
}

// A set-returning function's row count depends on its arguments, but
// lineage.go fromItem (RangeFunction) only taints the function's columns
// with them, and a set-returning call in a target list only taints its own
// output: the number of rows, and any clean column or count(*) next to
// them, reveal the masked value without mask-inference.
//
//	SELECT count(*) FROM mask_people p, generate_series(1, ascii(substr(p.email, k, 1))) g WHERE p.id = 1
//	  -> the code of the k-th character: "alice@example.com" in 17 statements
//	SELECT id, generate_series(1, CASE WHEN ascii(substr(email, k, 1)) > c THEN 2 ELSE 1 END) FROM mask_people WHERE id = 1
//	  -> 2 rows or 1: the same by bisection
//	(also SELECT p.id FROM mask_people p, regexp_matches(p.email, '^alice') m -> 1)
func TestRedTeam2FixedSetReturningRowCounts(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	var direct []byte
	for k := 1; k <= 17; k++ {
		out, err := rtSimple(t, conn, fmt.Sprintf("SELECT count(*) FROM mask_people p, generate_series(1, ascii(substr(p.email, %d, 1))) g WHERE p.id = 1", k))
		if err != nil {
			t.Logf("refused or failed (good): %s", out)
			break
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(out, ";"))
		direct = append(direct, byte(n))
	}
	rtNoLeak(t, "count(*) over generate_series(1, ascii(...)) in FROM", string(direct))
	got, err := rt2Extract(17, func(k, c int) (bool, error) {
		out, err := rtSimple(t, conn, fmt.Sprintf("SELECT id, generate_series(1, CASE WHEN ascii(substr(email, %d, 1)) > %d THEN 2 ELSE 1 END) FROM mask_people WHERE id = 1", k, c))
		return rt2Rows(out) == 2, err
	})
	if err != nil {
		t.Logf("refused or failed (good): %v", err)
	}
	rtNoLeak(t, "rows of a set-returning call in the target list", got)
	out, _ := rtSimple(t, conn, "SELECT p.id FROM mask_people p, regexp_matches(p.email, '^alice') m")
	if out == "1;" {
		t.Errorf("regexp_matches in FROM filters on the masked value: %q", out)
	}
}

// A position inside GROUP BY ROLLUP/CUBE/GROUPING SETS names an output
// column as in GROUP BY 1, but lineage.go byOutput only resolves a bare
// integer: in a grouping set the constant carries nothing, so grouping on a
// masked output is not inference. The number of groups answers a question.
//
//	SELECT CASE WHEN id = 1 AND ascii(substr(email, k, 1)) > c THEN 0 ELSE 1 END
//	  FROM mask_people WHERE id IN (1, 2) GROUP BY ROLLUP (1)
//	  -> 3 rows or 2: "alice@example.com" by bisection
func TestRedTeam2FixedGroupingSetPositions(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	got, err := rt2Extract(17, func(k, c int) (bool, error) {
		out, err := rtSimple(t, conn, fmt.Sprintf("SELECT CASE WHEN id = 1 AND ascii(substr(email, %d, 1)) > %d THEN 0 ELSE 1 END FROM mask_people WHERE id IN (1, 2) GROUP BY ROLLUP (1)", k, c))
		return rt2Rows(out) == 3, err
	})
	if err != nil {
		t.Logf("refused or failed (good): %v", err)
	}
	rtNoLeak(t, "GROUP BY ROLLUP (1)", got)
}

// TABLESAMPLE's percentage decides which rows come back, but lineage.go
// fromItem (RangeTableSample) only counts REPEATABLE as inference, not the
// method's arguments: a scalar subquery over a masked column there picks
// all rows (100) or none (0).
//
//	SELECT count(*) FROM mask_clean TABLESAMPLE BERNOULLI
//	  ((SELECT CASE WHEN ascii(substr(email, k, 1)) > c THEN 100 ELSE 0 END FROM mask_people WHERE id = 1))
//	  -> 2 or 0: "alice@example.com" by bisection
func TestRedTeam2FixedTablesampleArguments(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	got, err := rt2Extract(17, func(k, c int) (bool, error) {
		out, err := rtSimple(t, conn, fmt.Sprintf("SELECT count(*) FROM mask_clean TABLESAMPLE BERNOULLI ((SELECT CASE WHEN ascii(substr(email, %d, 1)) > %d THEN 100 ELSE 0 END FROM mask_people WHERE id = 1))", k, c))
		return out == "2;", err
	})
	if err != nil {
		t.Logf("refused or failed (good): %v", err)
	}
	rtNoLeak(t, "TABLESAMPLE arguments", got)
}

// EXPLAIN without ANALYZE is not inference to the gateway (lineage.go,
// ExplainStmt: Inference only when explainAnalyze), but its row estimates
// come from the planner statistics, which mask-statistics protects: for
// LIKE 'prefix%' the planner tests every most-common value against the
// pattern, so the estimate spells the common values out, one character at
// a time.
//
//	EXPLAIN SELECT 1 FROM rt2_big WHERE email LIKE 'a%'   -> rows=2000
//	EXPLAIN SELECT 1 FROM rt2_big WHERE email LIKE 'b%'   -> rows=1000 ... 'c%' -> rows=1
//	  -> "alice@example.com"
func TestRedTeam2FixedExplainEstimates(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	rowsRe := regexp.MustCompile(`rows=(\d+)`)
	const alphabet = "abcdefghijklmnopqrstuvwxyz@."
	prefix := ""
	for len(prefix) < 17 {
		next := ""
		for _, c := range alphabet {
			out, err := rtSimple(t, conn, fmt.Sprintf("EXPLAIN SELECT 1 FROM rt2_big WHERE email LIKE '%s%c%%'", prefix, c))
			if err != nil {
				t.Logf("refused or failed (good): %s", out)
				return
			}
			if m := rowsRe.FindStringSubmatch(out); m != nil {
				if n, _ := strconv.Atoi(m[1]); n > 100 {
					next = string(c)
					break
				}
			}
		}
		if next == "" {
			break
		}
		prefix += next
	}
	rtNoLeak(t, "EXPLAIN row estimates", prefix)
}

// In COPY's text format a value equal to the NULL string is written as it
// is; copymask.go readField takes any field equal to the NULL string for a
// NULL and passes it unmasked. Choosing NULL is asking "is the value this?",
// and a right guess comes back in clear: an equality test on a masked
// column, which is mask-inference elsewhere.
//
//	COPY (SELECT id, email FROM mask_people) TO STDOUT (NULL 'alice@example.com')
//	  -> 1	alice@example.com / 2	EMAIL / 3	EMAIL
func TestRedTeam2FixedCopyNullStringOracle(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	sql := "COPY (SELECT id, email FROM mask_people) TO STDOUT (NULL 'alice@example.com')"
	out, _ := rtCopy(t, conn, sql)
	rtNoLeak(t, sql, out)
}

// A rule restricted by detectors masks a computed value only when its
// detectors find something in the computed value (masking.go cellFor keeps
// the detectors for derived columns; cellMask.passes lets the cell go):
// any reversible transformation carries the detected value out.
//
//	rule: public.rt2_notes.note, Redact, Detectors: EmailAddress
//	SELECT note FROM rt2_notes                                   -> ***   (masked)
//	SELECT encode(convert_to(note, 'UTF8'), 'base64') FROM rt2_notes -> d3JpdGUgdG8gYWxpY2VA... ("write to alice@example.com today")
//	SELECT reverse(note) FROM rt2_notes                          -> yadot moc.elpmaxe@ecila ot etirw
func TestRedTeam2FixedDetectorRuleDerivedValues(t *testing.T) {
	rt2Fixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Column: "public.rt2_notes.note", Masker: mask.Redact(), Detectors: []mask.Detector{mask.EmailAddress()}}}
	})
	conn, _ := rtConnect(t, g)
	out, _ := rtSimple(t, conn, "SELECT note FROM rt2_notes ORDER BY id")
	if !strings.HasPrefix(out, "***;") {
		t.Fatalf("the rule does not mask the plain column: %q", out)
	}
	out, _ = rtSimple(t, conn, "SELECT encode(convert_to(note, 'UTF8'), 'base64') FROM rt2_notes WHERE id = 1")
	dec, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(out, ";"))
	rtNoLeak(t, "base64 of a detected value", string(dec))
	out, _ = rtSimple(t, conn, "SELECT reverse(note) FROM rt2_notes WHERE id = 1")
	r := []rune(strings.TrimSuffix(out, ";"))
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	rtNoLeak(t, "reverse of a detected value", string(r))
}

// A session whose upstream role owns a masked table may change it with DDL
// the lineage lets through (lineage.go statement, default case: only
// queries inside count). Rules name tables and columns by name
// (mask_catalog.go catalogQuery targets, columnRules), so after a rename,
// a move to another schema or a DETACH the values are under a name no rule
// names; a generated column or ALTER ... TYPE ... USING copies them into a
// clean column; a row-level security policy filters on them.
//
//	BEGIN; ALTER TABLE rt2_owned RENAME COLUMN email TO contact; SELECT contact FROM rt2_owned
//	  -> alice@example.com ...  (also RENAME TO, SET SCHEMA, DETACH PARTITION of a table rule)
//	BEGIN; ALTER TABLE rt2_owned ADD COLUMN e2 text GENERATED ALWAYS AS (email) STORED; SELECT e2 FROM rt2_owned
//	BEGIN; ALTER TABLE rt2_owned ALTER COLUMN id TYPE text USING ssn; SELECT id FROM rt2_owned
//	  -> 078-05-1120 ...
func TestRedTeam2FixedOwnerDDLMovesMaskedValues(t *testing.T) {
	g := rt2Gateway(t)
	rtDrop(t, "DROP SCHEMA IF EXISTS rt2_tmp_s CASCADE")
	for name, sqls := range map[string][]string{
		"rename column":     {"ALTER TABLE rt2_owned RENAME COLUMN email TO contact", "SELECT contact FROM rt2_owned"},
		"rename table":      {"ALTER TABLE rt2_owned RENAME TO rt2_owned_x", "SELECT email, ssn FROM rt2_owned_x"},
		"set schema":        {"CREATE SCHEMA rt2_tmp_s", "ALTER TABLE rt2_owned SET SCHEMA rt2_tmp_s", "SELECT email, ssn FROM rt2_tmp_s.rt2_owned"},
		"detach partition":  {"ALTER TABLE rt2_parted DETACH PARTITION rt2_parted_p1", "SELECT email FROM rt2_parted_p1"},
		"generated column":  {"ALTER TABLE rt2_owned ADD COLUMN e2 text GENERATED ALWAYS AS (email) STORED", "SELECT e2 FROM rt2_owned"},
		"alter type using":  {"ALTER TABLE rt2_owned ALTER COLUMN id TYPE text USING ssn", "SELECT id FROM rt2_owned"},
		"table rule rename": {"ALTER TABLE rt2_parted RENAME TO rt2_parted_x", "SELECT email FROM rt2_parted_x"},
	} {
		steps := append(append([]string{"BEGIN"}, sqls...), "ROLLBACK")
		rtNoLeak(t, name, rt2Steps(t, g, steps...))
	}
	// Row-level security over a masked column: which rows come back says
	// what the column holds.
	policy := func(pattern string) string {
		return rt2Steps(t, g, "BEGIN", "ALTER TABLE rt2_owned ENABLE ROW LEVEL SECURITY", "ALTER TABLE rt2_owned FORCE ROW LEVEL SECURITY",
			"CREATE POLICY rt2_p ON rt2_owned USING (email LIKE '"+pattern+"')", "SELECT id FROM rt2_owned ORDER BY id", "ROLLBACK")
	}
	if a, b := policy("bob%"), policy("zed%"); strings.Contains(a, "=> 3;") && !strings.Contains(b, "=> 3;") {
		t.Errorf("a row-level security policy over a masked column filters on its value:\n%s", a)
	}
}

// DDL over a masked table evaluates its values (a unique index, an index
// expression, a USING cast, a CHECK), but such a statement touches nothing
// to the lineage (default case), so backend.go backendError does not scrub
// the server's error, whose message or DETAIL quotes the value. Needs
// ownership of the table.
//
//	CREATE UNIQUE INDEX rt2_ux ON rt2_owned (email)   -> DETAIL Key (email)=(alice@example.com) is duplicated.
//	CREATE INDEX rt2_ix ON rt2_owned ((email::int))   -> invalid input syntax for type integer: "alice@example.com"
//	ALTER TABLE rt2_owned ALTER COLUMN ssn TYPE int USING ssn::int -> ... "078-05-1120"
func TestRedTeam2FixedOwnerDDLErrorsEchoValues(t *testing.T) {
	g := rt2Gateway(t)
	drop := "DROP INDEX IF EXISTS rt2_ux, rt2_ix; ALTER TABLE rt2_owned DROP CONSTRAINT IF EXISTS rt2_ck"
	rtDrop(t, drop)
	t.Cleanup(func() { rtDrop(t, drop) })
	for _, sql := range []string{
		"CREATE UNIQUE INDEX rt2_ux ON rt2_owned (email)",
		"CREATE INDEX rt2_ix ON rt2_owned ((email::int))",
		"ALTER TABLE rt2_owned ALTER COLUMN ssn TYPE int USING ssn::int",
		"ALTER TABLE rt2_owned ADD CONSTRAINT rt2_ck CHECK (email::int > 0)",
	} {
		rtNoLeak(t, sql, rt2Steps(t, g, sql))
	}
}

// ROLLBACK (or ROLLBACK TO SAVEPOINT) undoes the session's DDL, but does
// not mark the catalog stale (masking.go changesSchema counts only
// statements that write relations): the catalog read inside the
// transaction stays. After dropping a masked table and creating a clean
// one of the same name, the rollback brings the masked table back (same
// name, its old OID no longer in the catalog), and the gateway reads it
// with the clean definition. Needs ownership of the table (DROP); dropping
// a masked table is no leak by itself.
//
//	BEGIN; DROP TABLE rt2_owned; CREATE TABLE rt2_owned(id int); SELECT 1 FROM rt2_owned; ROLLBACK;
//	SELECT email, ssn FROM rt2_owned
//	  -> alice@example.com|078-05-1120 ...
func TestRedTeam2FixedRollbackKeepsTheCatalogOfTheTransaction(t *testing.T) {
	g := rt2Gateway(t)
	for _, end := range []string{"ROLLBACK", "ROLLBACK TO rt2_sp"} {
		rtNoLeak(t, end, rt2Steps(t, g, "BEGIN", "SAVEPOINT rt2_sp", "DROP TABLE rt2_owned", "CREATE TABLE rt2_owned(id int)",
			"SELECT 1 FROM rt2_owned", end, "SELECT email, ssn FROM rt2_owned", "ROLLBACK"))
	}
}

// After the session changed the schema (stale), every statement waits for
// the catalog to be read again (masking.go needsCatalog: stale -> must),
// and in an aborted transaction it cannot be (reloadMaskCatalog refuses
// with mask-new-relation). So when DDL fails inside a transaction, even
// ROLLBACK is refused, and so is everything after it: the session can
// never leave the transaction.
//
//	BEGIN; CREATE TEMP TABLE rt2_t(a int); CREATE TEMP TABLE rt2_t(a int) (fails); ROLLBACK
//	  -> ERROR 42501 "mask-new-relation" ... the transaction is aborted: end it first.
func TestRedTeam2FixedAbortedTransactionWedged(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{"BEGIN", "CREATE TEMP TABLE rt2_t(a int)", "CREATE TEMP TABLE rt2_t(a int)"} {
		rtSimple(t, conn, sql)
	}
	if out, err := rtSimple(t, conn, "ROLLBACK"); err != nil {
		t.Errorf("ROLLBACK of an aborted transaction after failed DDL: %s", out)
	}
	if out, err := rtSimple(t, conn, "SELECT 1"); err != nil {
		t.Errorf("the session is stuck: %s", out)
	}
}

// ---------------------------------------------------------------------------
// Families the gateway holds.
// ---------------------------------------------------------------------------

// Constraint violations on masked tables, whose DETAIL quotes rows or keys,
// are scrubbed when the statement names the masked table or a view of it.
func TestRedTeam2ConstraintErrorsHold(t *testing.T) {
	g := rt2Gateway(t)
	for _, sqls := range [][]string{
		{"UPDATE rt2_staff SET dept = 200 WHERE id = 1"},                                       // CHECK: Failing row contains
		{"UPDATE rt2_staff SET dept = NULL WHERE id = 2"},                                      // NOT NULL
		{"UPDATE rt2_staff SET dept = 99 WHERE id = 1"},                                        // foreign key
		{"UPDATE rt2_chk_v SET dept = 2 WHERE id = 1"},                                         // WITH CHECK OPTION
		{"INSERT INTO rt2_staff VALUES (1, 'x', 1) ON CONFLICT (id) DO UPDATE SET dept = 500"}, // existing row
		{"INSERT INTO rt2_staff VALUES (1, 'x', 1)"},                                           // primary key
		{"INSERT INTO rt2_excl VALUES (1, 'zed@x.invalid')"},                                   // exclusion
		{"BEGIN", "UPDATE rt_uniq SET email = (SELECT email FROM rt_uniq WHERE id = 2) WHERE id = 1", "COMMIT"},
		{"UPDATE \"RT2_Mixed\" SET \"Email\" = \"Email\"::int::text"},
		{"BEGIN", "SAVEPOINT a", "UPDATE rt2_staff SET dept = 200", "ROLLBACK TO a", "UPDATE rt2_dept SET id = id", "COMMIT"},
	} {
		rtNoLeak(t, strings.Join(sqls, "; "), rt2Steps(t, g, sqls...))
	}
}

// Names: quoted mixed-case rules, column aliases, a rule on a table in a
// schema off the search path, search_path changes, a CTE named like a
// masked table, a table rule's column added by the session.
func TestRedTeam2NamesHold(t *testing.T) {
	g := rt2Gateway(t)
	for _, sqls := range [][]string{
		{`SELECT "Email", "Email" || '' FROM "RT2_Mixed"`, `SELECT x FROM "RT2_Mixed" AS m(i, x)`, `TABLE "RT2_Mixed"`,
			`SELECT m."Email" FROM public."RT2_Mixed" m`},
		{"SELECT * FROM rt2_s.secret", "SET search_path = rt2_s, public", "SELECT * FROM secret", "SELECT email || '' FROM secret",
			"SELECT s.email FROM secret s JOIN mask_clean c ON c.id = s.id", "RESET search_path", "SELECT email FROM rt2_s.secret"},
		{"SET search_path = rt_other, public", "SELECT * FROM public.mask_people", "SELECT * FROM rt2_owned", "RESET search_path"},
		{"WITH rt2_owned AS (SELECT 1 AS id) SELECT o.email FROM public.rt2_owned o"},
		{"BEGIN", "ALTER TABLE rt2_parted ADD COLUMN extra text", "SELECT * FROM rt2_parted", "ROLLBACK"},
		{"BEGIN", "CREATE TABLE rt2_parted_p2 PARTITION OF rt2_parted FOR VALUES FROM (100) TO (200)",
			"ALTER TABLE rt2_parted DETACH PARTITION rt2_parted_p2", "SELECT * FROM rt2_parted", "ROLLBACK"},
		{"BEGIN", "DROP TABLE rt2_owned", "CREATE TABLE rt2_owned(id int, email text)", "INSERT INTO rt2_owned VALUES (1, 'mine')",
			"SELECT * FROM rt2_owned", "ROLLBACK"},
	} {
		rtNoLeak(t, strings.Join(sqls, "; "), rt2Steps(t, g, sqls...))
	}
}

// Expressions over masked columns in the target list are masked whole, in
// every execution mode.
func TestRedTeam2ExpressionsHold(t *testing.T) {
	g := rt2Gateway(t)
	cases := []string{
		"SELECT pg_column_size(email), octet_length(ssn), length(email), bit_length(email) FROM mask_people",
		"SELECT array_position(ARRAY['alice@example.com', 'bob@example.org'], email) FROM mask_people",
		"SELECT 'alice@example.com' = ANY (ARRAY[email, ssn]), email IS DISTINCT FROM 'x', ROW(email, 1) = ROW('alice@example.com', 1) FROM mask_people",
		"SELECT ROW(id, email) > ROW(1, 'b'), email IS NOT DISTINCT FROM ssn FROM mask_people",
		"SELECT jsonb_path_query_array(to_jsonb(p), '$.email')::text, jsonb_path_exists(to_jsonb(p), '$.email ? (@ starts with \"a\")') FROM mask_people p",
		"SELECT (string_to_array(email, '@'))[1], array_to_string(string_to_array(ssn, '-'), '') FROM mask_people",
		"SELECT (regexp_match(email, '^(.*)@'))[1], substring(email from '^[^@]+') FROM mask_people",
		"SELECT string_agg(name, ',' ORDER BY email), array_agg(id ORDER BY ssn)::text, max(name) FILTER (WHERE email LIKE 'a%') FROM mask_people",
		"SELECT email::numeric, ssn::date, email::xml FROM mask_people WHERE id = 1",
		"SELECT CASE WHEN id = 1 THEN email::int END FROM mask_people",
		"SELECT \"Email\"::int FROM \"RT2_Mixed\"",
		"SELECT email, count(*) OVER () FROM rt2_big LIMIT 3",
	}
	conn, _ := rtConnect(t, g)
	for _, m := range rtModes {
		for _, sql := range cases {
			if conn.IsClosed() {
				t.Errorf("%s: the session ended before %q", m.name, sql)
				conn, _ = rtConnect(t, g)
			}
			out, _ := rtExtended(t, conn, m.mode, sql)
			rt2Trace(t, m.name+": "+sql+"\n  => "+out)
			rtNoLeak(t, m.name+": "+sql, out)
		}
	}
}

// Comparisons of masked columns where they decide the rows, and writes
// whose arguments carry masked values, are refused.
func TestRedTeam2InferenceAndSideChannelsRefused(t *testing.T) {
	g := rt2Gateway(t)
	rtDrop(t, "DROP SEQUENCE IF EXISTS rt2_seq")
	t.Cleanup(func() { rtDrop(t, "DROP SEQUENCE IF EXISTS rt2_seq") })
	cases := []string{
		"SELECT id FROM mask_people WHERE ROW(email, 1) = ROW('alice@example.com', 1)",
		"SELECT id FROM mask_people WHERE email IS DISTINCT FROM 'alice@example.com'",
		"SELECT id FROM mask_people WHERE 'alice@example.com' = ANY (ARRAY[email])",
		"SELECT id FROM mask_people WHERE array_position(ARRAY['alice@example.com'], email) IS NOT NULL",
		"SELECT id FROM mask_people LIMIT (SELECT length(email) FROM mask_people WHERE id = 1)",
		"SELECT id FROM mask_people FETCH FIRST (SELECT ascii(ssn) FROM mask_people WHERE id = 1) ROWS ONLY",
		"SELECT id FROM mask_people WHERE jsonb_path_exists(to_jsonb(mask_people), '$.email ? (@ starts with \"a\")')",
		"SELECT email, count(*) FROM rt2_big GROUP BY 1",
		"SELECT 1 FROM mask_people HAVING max(email) > 'b'",
		"SELECT id FROM mask_people ORDER BY email COLLATE \"C\"",
		"EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM mask_people WHERE email LIKE 'a%'",
		"SELECT id FROM mask_clean WHERE id IN (SELECT id FROM mask_people WHERE email < 'b')",
		"SELECT lo_create(ascii(email)) FROM mask_people WHERE id = 1",
		"SELECT lo_truncate(lo_open(0, 131072), ascii(ssn)) FROM mask_people WHERE id = 1",
		"SELECT setval('rt2_seq', ascii(email)) FROM mask_people WHERE id = 1",
		"SELECT pg_advisory_lock(ascii(email)) FROM mask_people WHERE id = 1",
		"SELECT pg_notify('rt2_ch', email) FROM mask_people",
		"INSERT INTO rt2_big SELECT id, ssn FROM mask_people",
		"UPDATE rt2_staff SET email = (SELECT ssn FROM mask_people WHERE id = 1) WHERE id = 1",
	}
	conn, _ := rtConnect(t, g)
	if _, err := conn.Exec(testContext(t), "CREATE SEQUENCE rt2_seq", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for _, sql := range cases {
		out, err := rtSimple(t, conn, "BEGIN; "+sql+"; ROLLBACK")
		rtNoLeak(t, sql, out)
		if !isRefusal(err) {
			t.Errorf("%s: not refused: %s", sql, out)
			rtSimple(t, conn, "ROLLBACK")
		}
	}
	rtAlive(t, conn)
}

// The extended protocol: binary results per column, Describe of a portal,
// a statement name closed and prepared again across Syncs, a Close the
// server skips after an error (the gateway then refuses to guess: the
// session may end), and SQL PREPARE with parameter types.
func TestRedTeam2ExtendedProtocolHolds(t *testing.T) {
	g := rt2Gateway(t)
	const masked = "SELECT id, email, ssn, age FROM mask_people WHERE id = $1"
	one := [][]byte{[]byte("1")}

	conn, _ := rtConnect(t, g)
	fe, nc := hijack(t, conn.PgConn())
	out := rtRawExchange(t, fe,
		&pgproto3.Parse{Name: "rt2_a", Query: masked},
		&pgproto3.Bind{DestinationPortal: "rt2_p", PreparedStatement: "rt2_a", Parameters: one, ResultFormatCodes: []int16{1, 1, 0, 1}},
		&pgproto3.Describe{ObjectType: 'P', Name: "rt2_p"},
		&pgproto3.Execute{Portal: "rt2_p", MaxRows: 1},
		&pgproto3.Execute{Portal: "rt2_p"},
		&pgproto3.Sync{})
	rt2Trace(t, out)
	rtNoLeak(t, "binary per column + Describe portal", out)
	out = rtRawExchange(t, fe,
		&pgproto3.Bind{PreparedStatement: "rt2_a", Parameters: one, ResultFormatCodes: []int16{1}},
		&pgproto3.Execute{}, &pgproto3.Sync{})
	rtNoLeak(t, "all binary", out)
	// The name closed and prepared again with another text, then again.
	for _, text := range []string{"SELECT 'clean'::text AS v, $1::int AS n", "SELECT email || '' AS v, id AS n FROM mask_people WHERE id = $1"} {
		out = rtRawExchange(t, fe,
			&pgproto3.Close{ObjectType: 'S', Name: "rt2_a"},
			&pgproto3.Parse{Name: "rt2_a", Query: text},
			&pgproto3.Bind{PreparedStatement: "rt2_a", Parameters: one, ResultFormatCodes: []int16{1, 0}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		rt2Trace(t, out)
		rtNoLeak(t, "close and prepare again: "+text, out)
	}
	nc.Close()

	// A Close skipped after an error: the server keeps the masked
	// statement, the gateway forgot it.
	conn, _ = rtConnect(t, g)
	fe, nc = hijack(t, conn.PgConn())
	out = rtRawExchange(t, fe, &pgproto3.Parse{Name: "rt2_b", Query: masked}, &pgproto3.Sync{})
	out += rtRawExchange(t, fe,
		&pgproto3.Execute{Portal: "rt2_none"},
		&pgproto3.Close{ObjectType: 'S', Name: "rt2_b"},
		&pgproto3.Parse{Name: "rt2_b", Query: "SELECT 1 AS id, 'clean'::text AS email, 'x'::text AS ssn, $1::int AS age"},
		&pgproto3.Sync{})
	if !strings.Contains(out, "SFATAL") {
		out += rtRawExchange(t, fe,
			&pgproto3.Bind{PreparedStatement: "rt2_b", Parameters: one},
			&pgproto3.Execute{}, &pgproto3.Sync{})
	}
	rt2Trace(t, out)
	rtNoLeak(t, "skipped Close", out)
	nc.Close()

	// SQL PREPARE with parameter types, EXECUTE in every mode.
	conn, _ = rtConnect(t, g)
	if out, err := rtSimple(t, conn, "PREPARE rt2_q(int, text) AS SELECT email, ssn || $2, $1 FROM mask_people WHERE id = $1"); err != nil {
		t.Fatalf("PREPARE: %s", out)
	}
	for _, m := range rtModes {
		out, _ := rtExtended(t, conn, m.mode, "EXECUTE rt2_q(1, 'x')")
		rtNoLeak(t, m.name+": EXECUTE rt2_q", out)
	}
}

// COPY TO in the formats and options the gateway reads right.
func TestRedTeam2CopyHolds(t *testing.T) {
	g := rt2Gateway(t)
	conn, _ := rtConnect(t, g)
	for _, sql := range []string{
		"COPY mask_people TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
		"COPY (SELECT id, email, ssn FROM mask_people) TO STDOUT (FORMAT csv, HEADER true, FORCE_QUOTE *, QUOTE '|', ESCAPE '!')",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER 1)",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER false)",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER off)",
		"COPY (SELECT email, email FROM mask_people) TO STDOUT (FORMAT csv, NULL 'alice@example.com')",
		`COPY "RT2_Mixed" TO STDOUT`,
		"COPY rt2_s.secret TO STDOUT (FORMAT csv)",
		"COPY (SELECT * FROM rt2_staff) TO STDOUT (DELIMITER '|')",
		"COPY (SELECT email FROM mask_people) TO STDOUT (FORMAT csv, HEADER MATCH)",
	} {
		if conn.IsClosed() {
			t.Errorf("the session ended before %q", sql)
			conn, _ = rtConnect(t, g)
		}
		out, _ := rtCopy(t, conn, sql)
		rt2Trace(t, sql+"\n  => "+out)
		rtNoLeak(t, sql, out)
	}
	rtAlive(t, conn)
}
