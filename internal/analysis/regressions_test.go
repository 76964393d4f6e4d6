package analysis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
)

// TestRegressions keeps bugs found in review of the analyzer fixed (the
// earlier ones live in TestLimitsNoCrash, analyzeCases, ...).
func TestRegressions(t *testing.T) {
	// 1. BETWEEN is grammar, not an operator: the parser names the A_Expr
	// "BETWEEN" (or "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN
	// SYMMETRIC"), which is not in builtin_operators.txt, so every query
	// with BETWEEN gets RunTime "user operator BETWEEN" and is refused by
	// the read-only rule (without AllowRunTime) and by table rules.
	for _, sql := range []string{
		"SELECT * FROM t WHERE a BETWEEN 1 AND 2",
		"SELECT * FROM t WHERE a NOT BETWEEN SYMMETRIC 1 AND 2",
	} {
		t.Run("BETWEEN is not a user operator/"+sql, func(t *testing.T) {
			st := analyzeOne(t, sql)
			if len(st.RunTime) != 0 {
				t.Errorf("Analyze(%q): RunTime = %q, want none (BETWEEN compares with the built-in <= and >=)", sql, st.RunTime)
			}
		})
	}

	// 2. An operator applied to a subquery (x op ANY/ALL/SOME (SELECT
	// ...)) is in SubLink.OperName, not in an A_Expr, and is not looked at.
	// Checked on PostgreSQL 15: with
	//   CREATE OPERATOR public.=#= (FUNCTION = f, LEFTARG = int, RIGHTARG = int)
	// both statements below run f, once per row of the subquery.
	for _, sql := range []string{
		"SELECT 1 OPERATOR(public.=#=) ANY (SELECT 1)",
		"SELECT 1 =#= ALL (SELECT 2)",
	} {
		t.Run("user operator on a subquery is run-time/"+sql, func(t *testing.T) {
			st := analyzeOne(t, sql)
			if len(st.RunTime) == 0 {
				t.Errorf("Analyze(%q): RunTime is empty; want \"user operator ...\" as for %q\n got: %s",
					sql, "SELECT 1 =#= 2", describe([]*policy.Statement{st}))
			}
		})
	}

	// 3. The token limit (MaxTokens, 5000 by default) counts every
	// keyword and every operator character, including the '.' of a
	// decimal and the '-' of a negative number: a plain 2,000-row INSERT
	// (86 KB) of flat VALUES is refused, though its tree is shallow (the
	// rows are a list).
	t.Run("bulk INSERT with decimals, booleans and NULLs is analysed", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("INSERT INTO accounts (id, name, balance, active, note, delta) VALUES ")
		for i := range 2000 {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + strconv.Itoa(i) + ", 'name', 12.50, true, NULL, -1)")
		}
		sql := b.String()
		sts, err := New(Limits{}, 0).Analyze(sql)
		if err != nil {
			t.Fatalf("Analyze of a %d-byte INSERT of 2,000 rows like %q: %v; want it analysed", len(sql), "(1, 'name', 12.50, true, NULL, -1)", err)
		}
		if len(sts) != 1 || sts[0].Kind != policy.KindInsert {
			t.Errorf("Analyze of the INSERT = %s", describe(sts))
		}
	})
}

// analyzeOne analyses a single-statement text without a cache.
func analyzeOne(t *testing.T, sql string) *policy.Statement {
	t.Helper()
	sts, err := New(Limits{}, 0).Analyze(sql)
	if err != nil {
		t.Fatalf("Analyze(%q): %v", sql, err)
	}
	if len(sts) != 1 {
		t.Fatalf("Analyze(%q) = %d statements, want 1", sql, len(sts))
	}
	return sts[0]
}
