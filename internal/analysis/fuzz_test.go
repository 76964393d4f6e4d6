package analysis

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
)

// fuzzSeeds add lexer corner cases to the statements of analyzeCases.
// More seeds are in testdata/fuzz/FuzzAnalyze.
var fuzzSeeds = []string{
	"SELECT abalance FROM pgbench_accounts WHERE aid = 90210",
	"UPDATE pgbench_accounts SET abalance = abalance + -4012 WHERE aid = 17;",
	"SELECT 1.5, .5, 1e5, 1E-5, 5., 0x1F, 0o17, 0b101, 1_000, 99999999999",
	"SELECT $1, $2::int, $10 FROM t WHERE a = $3",
	"SELECT x[1:2], (y).z, a.b.c FROM t",
	`SELECT E'\\', E'\'', U&'\0041' UESCAPE '!', B'01', X'AF', N'n'`,
	"SELECT $a$ $$ $b$ $a$, $_$x$_$, $é$x$é$",
	"SELECT 1 /**/ /*/ */ /* * / */ -- x\r\n; -- y\n",
	"SELECT 'a'\n'b', \"x\"\"y\" FROM \"t\"\"u\"",
	"select\tset_config('search_path', 'x, \"Y\"', true); reset all; discard all",
	"WITH RECURSIVE a AS (SELECT 1 UNION ALL SELECT n + 1 FROM a WHERE n < 10), b AS (DELETE FROM c RETURNING *) SELECT * FROM a, b",
	"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x FOR UPDATE",
	"PREPARE p(int, text) AS INSERT INTO t VALUES ($1, $2) ON CONFLICT DO NOTHING; EXECUTE p(1, 'a'); DEALLOCATE p",
	"COPY (SELECT * FROM t WHERE a > 5) TO STDOUT WITH (FORMAT csv, HEADER)",
	"CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NEW; END $f$",
	"SELECT * FROM t1 NATURAL JOIN t2 LEFT JOIN LATERAL f(t1.a) ON true WHERE t1.a IS DISTINCT FROM t2.b",
	"SELECT 1::float(5), '1'::interval second(3), 1::numeric(10, 2)",
	"SELECT 1 ISNULL, 2 NOTNULL, 3 IS NOT NULL",
	"SELECT -+-+1, 1 OPERATOR(pg_catalog.+) 2, @-5",
	"BEGIN; SELECT 1; COMMIT; BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE; ROLLBACK",
	"",
	";",
	"\x00",
	"SELECT '\xff\xfe'",
}

// FuzzAnalyze checks that any text gives statements or an *Error (no
// panic, no other error), that statements are well formed, and that the
// cache (by text and by template) answers what a fresh analysis would.
func FuzzAnalyze(f *testing.F) {
	for _, c := range analyzeCases {
		f.Add(c.sql)
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	cached := New(Limits{}, 4<<20)
	fresh := New(Limits{}, 0)
	f.Fuzz(func(t *testing.T, sql string) {
		sts, err := cached.Analyze(sql)
		if err != nil {
			var aerr *Error
			if !errors.As(err, &aerr) {
				t.Fatalf("Analyze(%q) returned a %T, want *analysis.Error: %v", sql, err, err)
			}
			if aerr.Reason == "" {
				t.Fatalf("Analyze(%q) returned an *Error without a reason", sql)
			}
			if sts != nil {
				t.Fatalf("Analyze(%q) returned statements with its error", sql)
			}
			if _, ownErr := fresh.Analyze(sql); ownErr == nil {
				t.Fatalf("Analyze(%q) fails with a cache (%v) but not without", sql, err)
			}
			return
		}
		for i, st := range sts {
			checkWellFormed(t, sql, i, st, true)
		}

		// A second look comes from the cache.
		again, err := cached.Analyze(sql)
		if err != nil {
			t.Fatalf("Analyze(%q) succeeded, then failed: %v", sql, err)
		}
		if len(again) != len(sts) {
			t.Fatalf("Analyze(%q) gave %d statements, then %d", sql, len(sts), len(again))
		}
		if len(sts) > 0 && &again[0] != &sts[0] {
			// Only an analysis shared by template is copied for each text.
			if _, templated := templateOf(sql); !templated || len(sql) > 4096 || len(sts) != 1 {
				t.Fatalf("Analyze(%q) twice did not return the cached statements", sql)
			}
		}
		if !reflect.DeepEqual(summariesOf(again), summariesOf(sts)) {
			t.Fatalf("Analyze(%q) changed between two calls:\n%s\n%s", sql, describe(sts), describe(again))
		}

		// The cache, template sharing included, must not change the answer.
		own, err := fresh.Analyze(sql)
		if err != nil {
			if grammarIntegerCheck(sql, err) {
				return // documented in template.go
			}
			t.Fatalf("Analyze(%q) succeeds with a cache but fails without: %v\n cached: %s", sql, err, describe(sts))
		}
		if !reflect.DeepEqual(summariesOf(own), summariesOf(sts)) {
			t.Fatalf("Analyze(%q) with a cache differs from without:\n cached: %s\n  fresh: %s", sql, describe(sts), describe(own))
		}
	})
}

// checkWellFormed checks one statement (and those nested in it).
func checkWellFormed(t *testing.T, sql string, i int, st *policy.Statement, top bool) {
	t.Helper()
	if st == nil {
		t.Fatalf("Analyze(%q): statement %d is nil", sql, i)
	}
	if st.Kind == "" || st.Command == "" {
		t.Fatalf("Analyze(%q): statement %d has Kind %q, Command %q; want both set\n%s", sql, i, st.Kind, st.Command, describe([]*policy.Statement{st}))
	}
	if !slices.Contains(policy.Kinds(), st.Kind) {
		t.Fatalf("Analyze(%q): statement %d has unknown Kind %q", sql, i, st.Kind)
	}
	for _, k := range st.Contains {
		if !slices.Contains(policy.Kinds(), k) {
			t.Fatalf("Analyze(%q): statement %d contains unknown Kind %q", sql, i, k)
		}
	}
	if st.AllRows && !st.Writes {
		t.Fatalf("Analyze(%q): statement %d changes all rows but does not write", sql, i)
	}
	for _, s := range st.Settings {
		if s.Name == "" || s.Via == "" {
			t.Fatalf("Analyze(%q): statement %d has a setting without a name or command: %+v", sql, i, s)
		}
	}
	if top {
		if st.SQL == "" || !strings.Contains(sql, st.SQL) {
			t.Fatalf("Analyze(%q): statement %d has SQL %q, not a part of the text", sql, i, st.SQL)
		}
		if raw, err := st.Tree(); (err != nil || raw == nil) && !grammarIntegerCheck(sql, err) {
			t.Fatalf("Analyze(%q): statement %d: Tree() = %v, %v", sql, i, raw, err)
		}
	}
	if st.Inner != nil {
		checkWellFormed(t, sql, i, st.Inner, false)
	}
}

// grammarIntegerCheck reports whether err is one of the few errors the
// grammar raises for an integer's value (float(p) needs 1 <= p <= 53, a
// column number must be in range), which texts sharing an analysis by
// template may hit: the cache then hands out the analysis of a sibling
// text, which template.go documents as accepted (the server rejects the
// text all the same).
func grammarIntegerCheck(sql string, err error) bool {
	if err == nil {
		return false
	}
	if _, templated := templateOf(sql); !templated {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "precision for type float") || strings.Contains(msg, "column number must be in range")
}

// summariesOf returns copies of sts, for
// comparison.
func summariesOf(sts []*policy.Statement) []policy.Statement {
	var out []policy.Statement
	for _, st := range sts {
		c := *st
		out = append(out, c)
	}
	return out
}
