package proxy_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

var (
	maskFixtureOnce sync.Once
	maskFixtureErr  error
)

// The secrets of the masking fixture: none may reach a masked client.
var maskSecrets = []string{"alice@example.com", "bob@example.org", "carol@example.net", "078-05-1120", "219-09-9999", "123-45-6789"}

// maskFixture creates mask_people (email and ssn masked), a partitioned
// table, an inheritance child, a view and a clean table.
func maskFixture(t testing.TB) {
	t.Helper()
	setupRoles(t)
	maskFixtureOnce.Do(func() {
		maskFixtureErr = pg.Exec(context.Background(), "app", `
			DROP TABLE IF EXISTS mask_people, mask_clean, mask_events, mask_child CASCADE;
			CREATE TABLE mask_people(id int PRIMARY KEY, name text, email text, ssn varchar(11), age int);
			INSERT INTO mask_people VALUES (1, 'Alice', 'alice@example.com', '078-05-1120', 34),
			                               (2, 'Bob', 'bob@example.org', '219-09-9999', 45);
			CREATE TABLE mask_child(extra int) INHERITS (mask_people);
			INSERT INTO mask_child VALUES (3, 'Carol', 'carol@example.net', '123-45-6789', 20, 7);
			CREATE TABLE mask_clean(id int, note text);
			INSERT INTO mask_clean VALUES (1, 'one'), (2, 'two');
			CREATE TABLE mask_events(at int, email text) PARTITION BY RANGE (at);
			CREATE TABLE mask_events_p1 PARTITION OF mask_events FOR VALUES FROM (0) TO (100);
			INSERT INTO mask_events VALUES (1, 'alice@example.com');
			CREATE VIEW mask_people_v AS SELECT id, email AS contact, upper(name) AS shout FROM mask_people;
			GRANT SELECT, INSERT, UPDATE, DELETE ON mask_people, mask_clean, mask_events, mask_events_p1, mask_child, mask_people_v TO app_rw, app_md5;`)
	})
	if maskFixtureErr != nil {
		t.Fatalf("creating the masking fixture: %v", maskFixtureErr)
	}
}

// fixed masks every value with text, whatever it was (NULL for non-text
// types): the test can tell which rule masked a cell.
func fixed(text string) mask.Masker {
	return mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) {
		switch c.Type {
		case 25, 1043:
			return append(dst, text...), false, nil
		}
		return dst, true, nil
	})
}

func maskingGateway(t *testing.T) *gateway {
	maskFixture(t)
	return startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{
			{Column: "public.mask_people.email", Masker: fixed("EMAIL"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_people.ssn", Masker: fixed("SSN"), UnlessGroups: []string{"ops"}},
			{Column: "public.mask_events.email", Masker: fixed("EVENT"), UnlessGroups: []string{"ops"}},
		}
	})
}

// rowsText runs sql and returns every row as "a|b|c" (NULL as <null>).
func rowsText(t *testing.T, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) ([]string, error) {
	t.Helper()
	rows, err := conn.Query(testContext(t), sql, mode)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, v := range vals {
			if v == nil {
				parts = append(parts, "<null>")
				continue
			}
			parts = append(parts, strings.TrimSpace(strings.ReplaceAll(fmtValue(v), "\n", " ")))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

var modes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"cached", pgx.QueryExecModeCacheStatement},
	{"describe", pgx.QueryExecModeCacheDescribe},
	{"exec", pgx.QueryExecModeExec},
}

func TestMaskedResults(t *testing.T) {
	g := maskingGateway(t)
	cases := []struct{ sql, want string }{
		{"SELECT email FROM mask_people ORDER BY id", "EMAIL;EMAIL;EMAIL"},
		{"SELECT email AS contact, name FROM mask_people WHERE id = 1", "EMAIL|Alice"},
		{"SELECT * FROM mask_people WHERE id = 1", "1|Alice|EMAIL|SSN|34"},
		{"TABLE ONLY mask_people", "1|Alice|EMAIL|SSN|34;2|Bob|EMAIL|SSN|45"},
		{"SELECT * FROM mask_child", "3|Carol|EMAIL|SSN|20|7"},
		{"SELECT p.email, c.note FROM mask_people p JOIN mask_clean c ON c.id = p.id ORDER BY p.id", "EMAIL|one;EMAIL|two"},
		{"SELECT x FROM (SELECT email AS x, id FROM mask_people) s WHERE s.id = 2", "EMAIL"},
		{"WITH w AS (SELECT ssn FROM mask_people WHERE id = 1) SELECT ssn FROM w", "SSN"},
		{"SELECT email FROM mask_people WHERE id = 1 UNION ALL SELECT note FROM mask_clean WHERE id = 1", "EMAIL;EMAIL"}, // the column carries masked values: all of it is masked
		{"SELECT contact, shout FROM mask_people_v WHERE id = 1", "EMAIL|ALICE"},
		{"SELECT email FROM mask_events_p1", "EVENT"},
		{"SELECT email FROM mask_events", "EVENT"},
		{"SELECT email, extra FROM mask_child", "EMAIL|7"},
		{"SELECT upper(email) FROM mask_people WHERE id = 1", "***"},
		{"SELECT email::varchar(5) FROM mask_people WHERE id = 1", "***"},
		{"SELECT count(email) FROM mask_people", "<null>"},
		{"SELECT length(ssn) FROM mask_people WHERE id = 1", "<null>"},
		{"SELECT p FROM mask_people p WHERE id = 1", "<null>"},
		{"SELECT row_to_json(p) FROM mask_people p WHERE id = 1", "<null>"},
		{"SELECT json_build_object('e', email) FROM mask_people WHERE id = 1", "<null>"},
		{"SELECT (SELECT email FROM mask_people WHERE id = 1) || '!'", "***"},
		{"SELECT 'plain' AS email", "plain"},
		{"SELECT 1 AS email", "1"},
		{"SELECT xmlelement(name e, email) FROM mask_people WHERE id = 1", "<null>"},
		{"SELECT to_jsonb(p.*) FROM mask_people p WHERE id = 1", "<null>"},
		{"SELECT note AS email FROM mask_clean WHERE id = 1", "one"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			conn := connect(t, g.dsn("alice", alicePassword))
			for _, c := range cases {
				for round := range 2 { // the second time, pgx uses its cached description
					got, err := rowsText(t, conn, m.mode, c.sql)
					if err != nil {
						t.Fatalf("%s (round %d): %v", c.sql, round, err)
					}
					if strings.Join(got, ";") != c.want {
						t.Errorf("%s (round %d): got %q, want %q", c.sql, round, strings.Join(got, ";"), c.want)
					}
				}
			}
		})
	}
}

func TestMaskedBinaryResultsAndExemptIdentity(t *testing.T) {
	g := maskingGateway(t)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	// pgx asks for binary results for the types it knows.
	var email, ssn string
	var age int
	if err := conn.QueryRow(ctx, "SELECT email, ssn, age FROM mask_people WHERE id = $1", 1).Scan(&email, &ssn, &age); err != nil {
		t.Fatal(err)
	}
	if email != "EMAIL" || ssn != "SSN" || age != 34 {
		t.Fatalf("got %q %q %d", email, ssn, age)
	}
	bob := connect(t, g.dsn("bob", bobPassword))
	if err := bob.QueryRow(ctx, "SELECT email FROM mask_people WHERE id = 1").Scan(&email); err != nil || email != "alice@example.com" {
		t.Fatalf("exempt identity: %q, %v", email, err)
	}
	if _, err := bob.Exec(ctx, "SELECT id FROM mask_people WHERE email LIKE 'a%'"); err != nil {
		t.Fatalf("exempt identity refused: %v", err)
	}
}

func TestMaskedCursorsAndReturning(t *testing.T) {
	g := maskingGateway(t)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DECLARE c CURSOR FOR SELECT id, email FROM mask_people ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		got, err := rowsText(t, tx.Conn(), m, "FETCH 1 FROM c")
		if err != nil || len(got) != 1 || !strings.HasSuffix(got[0], "|EMAIL") {
			t.Fatalf("FETCH: %q, %v", got, err)
		}
	}
	got, err := rowsText(t, tx.Conn(), pgx.QueryExecModeSimpleProtocol, "UPDATE mask_people SET name = name WHERE id = 1 RETURNING email, ssn")
	if err != nil || strings.Join(got, ";") != "EMAIL|SSN" {
		t.Fatalf("RETURNING: %q, %v", got, err)
	}
	got, err = rowsText(t, tx.Conn(), pgx.QueryExecModeCacheStatement, "DELETE FROM mask_people WHERE id = 2 RETURNING *")
	if err != nil || strings.Join(got, ";") != "2|Bob|EMAIL|SSN|45" {
		t.Fatalf("RETURNING *: %q, %v", got, err)
	}
	if _, err := tx.Exec(ctx, "PREPARE p AS SELECT ssn FROM mask_people WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	got, err = rowsText(t, tx.Conn(), pgx.QueryExecModeSimpleProtocol, "EXECUTE p(1)")
	if err != nil || strings.Join(got, ";") != "SSN" {
		t.Fatalf("EXECUTE: %q, %v", got, err)
	}
}

func TestMaskingRefusesWhatItCannotMask(t *testing.T) {
	g := maskingGateway(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	cases := []struct{ sql, rule string }{
		{"SELECT id FROM mask_people WHERE email LIKE 'a%'", "mask-inference"},
		{"SELECT id FROM mask_people ORDER BY ssn", "mask-inference"},
		{"SELECT count(*) FROM mask_people GROUP BY email", "mask-inference"},
		{"SELECT DISTINCT email FROM mask_people", "mask-inference"},
		{"SELECT c.id FROM mask_clean c JOIN mask_people p ON p.email = c.note", "mask-inference"},
		{"SELECT email FROM mask_people UNION SELECT note FROM mask_clean", "mask-inference"},
		{"SELECT id FROM mask_clean WHERE note IN (SELECT ssn FROM mask_people)", "mask-inference"},
		{"INSERT INTO mask_clean SELECT id, email FROM mask_people", "mask-flow"},
		{"UPDATE mask_people SET name = ssn", "mask-flow"},
		{"SELECT pg_notify('mask_channel', email) FROM mask_people", "mask-flow"},
		{"SELECT set_config('mask.v', ssn, false) FROM mask_people", "mask-flow"},
		{"SELECT c.id FROM mask_clean c NATURAL JOIN mask_people p", "mask-inference"},
		{"CREATE TEMP TABLE leak AS SELECT email FROM mask_people", "mask-flow"},
		{"SELECT * FROM pg_stats WHERE tablename = 'mask_people'", "mask-statistics"},
		{"SELECT query_to_xml('select email from mask_people', true, true, '')", "mask-runtime"},
		{"SELECT table_to_xml('mask_people', true, true, '')", "mask-runtime"},
		{"COPY mask_people TO STDOUT (FORMAT binary)", "mask-copy-binary"},
		{"COPY mask_people TO STDOUT (NULL 'alice@example.com')", "mask-copy"},
		{"ALTER TABLE mask_people RENAME COLUMN email TO contact", "mask-ddl"},
		{"FETCH ALL FROM never_declared", "mask-cursor"},
	}
	for _, m := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, c := range cases {
			_, err := rowsText(t, conn, m, c.sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, `"`+c.rule+`"`) {
				t.Errorf("%s: err = %v, want refusal by %s", c.sql, err, c.rule)
			}
		}
	}
	// The session is still usable.
	got, err := rowsText(t, conn, pgx.QueryExecModeCacheStatement, "SELECT email FROM mask_people WHERE id = 1")
	if err != nil || strings.Join(got, ";") != "EMAIL" {
		t.Fatalf("after refusals: %q, %v", got, err)
	}
}

func TestMaskedStatementErrorsDoNotEchoValues(t *testing.T) {
	g := maskingGateway(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	for _, m := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		_, err := rowsText(t, conn, m, "SELECT email::int FROM mask_people")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22P02" {
			t.Fatalf("err = %v, want 22P02", err)
		}
		for _, s := range maskSecrets {
			if strings.Contains(pgErr.Message+pgErr.Detail+pgErr.Hint+pgErr.Where, s) {
				t.Fatalf("the error echoes %q: %+v", s, pgErr)
			}
		}
	}
}

func TestMaskingReadsTheCatalogAgainForNewRelations(t *testing.T) {
	g := maskingGateway(t)
	ctx := testContext(t)
	if err := pg.Exec(ctx, "app", `DROP VIEW IF EXISTS mask_swap_v; CREATE VIEW mask_swap_v AS SELECT note FROM mask_clean;
		GRANT SELECT ON mask_swap_v TO app_rw;`); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, g.dsn("alice", alicePassword))
	if got, err := rowsText(t, conn, pgx.QueryExecModeSimpleProtocol, "SELECT note FROM mask_swap_v ORDER BY 1"); err != nil || strings.Join(got, ";") != "one;two" {
		t.Fatalf("clean view: %q, %v", got, err)
	}
	// Another session redefines a view the catalog knows as clean: seen
	// once the catalog is older than its maximum age.
	if err := pg.Exec(ctx, "app", `CREATE OR REPLACE VIEW mask_swap_v AS SELECT email AS note FROM mask_people WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if got, err := rowsText(t, conn, pgx.QueryExecModeSimpleProtocol, "SELECT note FROM mask_swap_v"); err != nil || strings.Join(got, ";") != "EMAIL" {
		t.Fatalf("redefined view: %q, %v", got, err)
	}
	if err := pg.Exec(ctx, "app", `DROP VIEW IF EXISTS mask_late_v; DROP TABLE IF EXISTS mask_events_p2;
		CREATE VIEW mask_late_v AS SELECT id, email FROM mask_people;
		CREATE TABLE mask_events_p2 PARTITION OF mask_events FOR VALUES FROM (100) TO (200);
		INSERT INTO mask_events VALUES (150, 'bob@example.org');
		GRANT SELECT ON mask_late_v, mask_events_p2 TO app_rw;`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sql, want string }{
		{"SELECT email FROM mask_late_v WHERE id = 1", "EMAIL"},
		{"SELECT email FROM mask_events_p2", "EVENT"},
	} {
		got, err := rowsText(t, conn, pgx.QueryExecModeCacheStatement, c.sql)
		if err != nil || strings.Join(got, ";") != c.want {
			t.Fatalf("%s: %q, %v", c.sql, got, err)
		}
	}
	// What the session creates itself it may use.
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE mask_mine(x int); INSERT INTO mask_mine VALUES (5)"); err == nil || !strings.Contains(err.Error(), "mask-new-relation") {
		t.Fatalf("a schema change followed by another statement in one query: %v", err)
	}
	for _, sql := range []string{"CREATE TEMP TABLE mask_mine(x int)", "INSERT INTO mask_mine VALUES (5)"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := rowsText(t, conn, pgx.QueryExecModeSimpleProtocol, "SELECT x FROM mask_mine"); err != nil || strings.Join(got, ";") != "5" {
		t.Fatalf("own temp table: %q, %v", got, err)
	}
	// In a pipeline without a Sync before it, the gateway cannot wait for
	// the catalog: the statement is refused.
	if err := pg.Exec(ctx, "app", `DROP VIEW IF EXISTS mask_later_v; CREATE VIEW mask_later_v AS SELECT email FROM mask_people;
		GRANT SELECT ON mask_later_v TO app_rw;`); err != nil {
		t.Fatal(err)
	}
	p := conn.PgConn().StartPipeline(ctx)
	p.SendQueryParams("SELECT 1", nil, nil, nil, nil)
	p.SendQueryParams("SELECT email FROM mask_later_v", nil, nil, nil, nil)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	var refusal error
	for {
		res, err := p.GetResults()
		if err != nil {
			refusal = err
			break
		}
		if res == nil {
			break
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			for rr.NextRow() {
				for _, s := range maskSecrets {
					if strings.Contains(string(rr.Values()[0]), s) {
						t.Fatalf("leaked %q", s)
					}
				}
			}
			if _, err := rr.Close(); err != nil {
				refusal = err
				break
			}
		}
	}
	p.Close()
	wantRefusal(t, refusal, "mask-new-relation")
}

func TestMaskedCopy(t *testing.T) {
	maskFixture(t)
	tricky := "a,b\"c\td\\e\nf"
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{
			{Column: "public.mask_people.email", Masker: fixed(tricky)},
			{Column: "public.mask_people.ssn", Masker: fixed("SSN")},
		}
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	copyOut := func(sql string) string {
		t.Helper()
		var b strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &b, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		for _, s := range maskSecrets {
			if strings.Contains(b.String(), s) {
				t.Fatalf("%s leaked %q:\n%s", sql, s, b.String())
			}
		}
		return b.String()
	}
	escaped := `a,b"c\td\\e\nf`
	if got, want := copyOut("COPY (SELECT id, email, ssn FROM ONLY mask_people ORDER BY id) TO STDOUT"),
		"1\t"+escaped+"\tSSN\n2\t"+escaped+"\tSSN\n"; got != want {
		t.Fatalf("text:\n%q\nwant\n%q", got, want)
	}
	got := copyOut("COPY mask_people (id, email, name) TO STDOUT WITH (FORMAT csv, HEADER)")
	r := csv.NewReader(strings.NewReader(got))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, got)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "id,email,name" || recs[1][1] != tricky || recs[2][2] != "Bob" {
		t.Fatalf("csv: %q", recs)
	}
	if got := copyOut("COPY mask_people (ssn, name) TO STDOUT WITH (DELIMITER '|')"); !strings.HasPrefix(got, "SSN|Alice\n") {
		t.Fatalf("custom delimiter: %q", got)
	}
	if got := copyOut("COPY (SELECT upper(email), 1 FROM ONLY mask_people WHERE id = 1) TO STDOUT (FORMAT csv)"); got != "***,1\n" {
		t.Fatalf("computed: %q", got)
	}
	if got := copyOut("COPY (SELECT ssn FROM ONLY mask_people WHERE id = 2) TO STDOUT"); got != "SSN\n" {
		t.Fatalf("copy: %q", got)
	}
}

func TestDetectorsOverEveryResult(t *testing.T) {
	maskFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Table: "*", Masker: mask.Redact(), Detectors: []mask.Detector{mask.EmailAddress(), mask.PaymentCard()}}}
	})
	conn := connect(t, g.dsn("alice", alicePassword))
	ctx := testContext(t)
	for _, m := range modes {
		got, err := rowsText(t, conn, m.mode, "SELECT note, 'write to x@example.com', 42, 4111111111111111::int8 FROM mask_clean WHERE id = 1")
		if err != nil || strings.Join(got, ";") != "one|***|42|<null>" {
			t.Errorf("%s: %q, %v", m.name, got, err)
		}
	}
	var b strings.Builder
	if _, err := conn.PgConn().CopyTo(ctx, &b, "COPY (SELECT 'card 4111 1111 1111 1111', 'plain') TO STDOUT"); err != nil || b.String() != "***\tplain\n" {
		t.Fatalf("COPY: %q, %v", b.String(), err)
	}
}

func TestInferenceAllowedByTheRule(t *testing.T) {
	maskFixture(t)
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Column: "public.mask_people.email", Masker: fixed("EMAIL"), Inference: mask.AllowInference}}
	})
	conn := connect(t, g.dsn("alice", alicePassword))
	for _, c := range []struct{ sql, want string }{
		{"SELECT email FROM ONLY mask_people UNION SELECT note FROM mask_clean ORDER BY 1", "EMAIL;EMAIL;EMAIL;EMAIL"},
		{"SELECT id, email FROM ONLY mask_people WHERE email LIKE 'alice%'", "1|EMAIL"},
		{"SELECT DISTINCT email FROM ONLY mask_people", "EMAIL;EMAIL"},
	} {
		got, err := rowsText(t, conn, pgx.QueryExecModeCacheStatement, c.sql)
		if err != nil || strings.Join(got, ";") != c.want {
			t.Errorf("%s: %q, %v", c.sql, got, err)
		}
	}
}
