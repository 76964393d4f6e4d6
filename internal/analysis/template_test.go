package analysis

import (
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
)

func TestTemplateOf(t *testing.T) {
	for _, c := range []struct {
		sql, want string
		found     bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 90210;", "SELECT abalance FROM pgbench_accounts WHERE aid = 0;", true},
		{"SELECT 1, 22, -333", "SELECT 0, 0, -0", true},
		{"SELECT 1.5, .5, 1e5, 1E-5, 5.", "", false},
		{"SELECT 1234567890, 123456789", "SELECT 1234567890, 0", true},
		{"SELECT $1, $23", "", false},
		{"SELECT a1, t2.c3 FROM t4", "", false},
		{"SELECT '123', \"456\", $$789$$, $q$12$q$, E'1\\'2', U&'\\0031'", "", false},
		{"SELECT 1 -- 2\n, 3 /* 4 /* 5 */ 6 */", "SELECT 0 -- 2\n, 0 /* 4 /* 5 */ 6 */", true},
		{"SELECT 0x1F, 1_000, 12abc", "", false},
		{"SELECT x[1:2]", "SELECT x[0:0]", true},
		{"SELECT 1::int8", "SELECT 0::int8", true},
	} {
		got, found := templateOf(c.sql)
		if found != c.found || (found && got != c.want) {
			t.Errorf("templateOf(%q) = %q, %v; want %q, %v", c.sql, got, found, c.want, c.found)
		}
	}
}

// TestTemplateSharingMatchesFullAnalysis checks the template cache against
// the analysis of each text on its own: texts that differ in integers get
// what their own analysis would give them.
func TestTemplateSharingMatchesFullAnalysis(t *testing.T) {
	digits := regexp.MustCompile(`\b[0-9]+\b`)
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
		"UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7",
		"INSERT INTO t VALUES (1, 'x', 2.5) RETURNING *",
		"SELECT nextval(42)",
		"SELECT setval('s', 10)",
		"SELECT * FROM t LIMIT 10 OFFSET 20",
		"SET work_mem = 64",
		"SELECT set_config('a', '1', 1::bool)",
		"EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 3",
		"EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 3",
		"FETCH 5 FROM c",
		"SELECT 1; DELETE FROM t WHERE id = 2",
		"DECLARE c CURSOR FOR SELECT * FROM t WHERE id = 5 FOR UPDATE",
		"PREPARE p AS SELECT * FROM t WHERE id = 9",
		"SELECT pg_sleep(1)",
		"LOCK TABLE t IN ACCESS SHARE MODE",
		"SELECT 99999999999999999999, 2",
	} {
		a := New(Limits{}, 1<<20)
		if _, err := a.Analyze(sql); err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		for _, n := range []int{0, 3, 12345, 2147483648} {
			other := digits.ReplaceAllString(sql, strconv.Itoa(n))
			got, err1 := a.Analyze(other)
			want, err2 := New(Limits{}, 0).Analyze(other)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%q: errors differ: %v vs %v", other, err1, err2)
			}
			if !reflect.DeepEqual(summaries(got), summaries(want)) {
				t.Errorf("%q after %q:\n got %+v\nwant %+v", other, sql, summaries(got), summaries(want))
			}
		}
	}
}

// summaries returns copies of sts without their tree functions, for
// comparison.
func summaries(sts []*policy.Statement) []policy.Statement {
	var out []policy.Statement
	for _, st := range sts {
		c := *st
		out = append(out, c)
	}
	return out
}
