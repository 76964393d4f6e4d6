package analysis

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// pgbenchSelect is pgbench's select-only statement with aid = n.
func pgbenchSelect(n int) string {
	return "SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(n)
}

// pgbenchTexts returns n texts of the pgbench statement with different
// aids.
func pgbenchTexts(n int) []string {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = pgbenchSelect(i*7919%100000 + 1)
	}
	return texts
}

// largeStatement returns a report query of about 10 KB: CTEs with joins,
// aggregates and subqueries, joined together.
func largeStatement() string {
	var b strings.Builder
	b.WriteString("WITH ")
	for i := range 24 {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "c%d AS (SELECT o.id, o.customer_id, sum(l.amount) AS total, count(*) AS n "+
			"FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id LEFT JOIN products p ON p.id = l.product_id "+
			"WHERE o.created_at >= now() - interval '%d days' AND p.category IN ('a', 'b', 'c') "+
			"AND o.customer_id NOT IN (SELECT customer_id FROM blocked) GROUP BY o.id, o.customer_id HAVING sum(l.amount) > %d)", i, i+1, i*10)
	}
	b.WriteString("\nSELECT cu.id, cu.name, coalesce(c0.total, 0) AS total FROM customers cu")
	for i := range 24 {
		fmt.Fprintf(&b, " LEFT JOIN c%d ON c%d.customer_id = cu.id", i, i)
	}
	b.WriteString(" WHERE cu.active AND lower(cu.region) = 'emea' ORDER BY cu.name LIMIT 100")
	return b.String()
}

func TestLargeStatementForBenchmarks(t *testing.T) {
	sql := largeStatement()
	if len(sql) < 9<<10 || len(sql) > 12<<10 {
		t.Errorf("largeStatement is %d bytes, want about 10 KB", len(sql))
	}
	st := analyzeOne(t, sql)
	want := rels(qrel("sales", "orders"), qrel("sales", "order_lines"), rel("products"), rel("blocked"), rel("customers"))
	if !equalSlices(st.Reads, want) {
		t.Errorf("largeStatement reads %+v, want %+v", st.Reads, want)
	}
}

// BenchmarkAnalyzeCached analyses the same text again and again: every
// call after the first is a cache hit.
func BenchmarkAnalyzeCached(b *testing.B) {
	for _, c := range []struct{ name, sql string }{
		// No integer: cached by its exact text.
		{"exact", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"},
		// An integer: shared by template, copied for each call.
		{"template", pgbenchSelect(12345)},
		{"large", largeStatement()},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := New(Limits{}, 64<<20)
			if _, err := a.Analyze(c.sql); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Analyze(c.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAnalyzeUncached parses and classifies each time (cache
// disabled).
func BenchmarkAnalyzeUncached(b *testing.B) {
	b.Run("small", func(b *testing.B) {
		texts := pgbenchTexts(4096)
		a := New(Limits{}, 0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := a.Analyze(texts[i%len(texts)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("large", func(b *testing.B) {
		sql := largeStatement()
		a := New(Limits{}, 0)
		b.SetBytes(int64(len(sql)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Analyze(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAnalyzeTemplated analyses pgbench texts with varying aids
// through the cache: after the first, each is a template hit.
func BenchmarkAnalyzeTemplated(b *testing.B) {
	texts := pgbenchTexts(4096)
	a := New(Limits{}, 64<<20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Analyze(texts[i%len(texts)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPrecheck measures the scan of the limits alone.
func BenchmarkPrecheck(b *testing.B) {
	sql := largeStatement()
	b.SetBytes(int64(len(sql)))
	for b.Loop() {
		if err := (Limits{}).precheck(sql); err != nil {
			b.Fatal(err)
		}
	}
}
