package proxy_test

import (
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/proxy"
)

// The benchmarks run each workload directly against PostgreSQL and through
// the gateway, in the same run, so that the ratio is what matters:
//
//	go test -run '^$' -bench . -benchtime 3s ./proxy
func benchTargets(b *testing.B) []struct{ name, dsn string } {
	g := startGateway(b, func(p *proxy.Proxy) {
		p.Recorder = nil // session.Discard, as when nothing is recorded
		p.Logger = slog.New(slog.DiscardHandler)
	})
	return []struct{ name, dsn string }{
		{"direct", pg.ConnString(rwRole, rwPassword, "app")},
		{"pgwarden", g.dsn("alice", alicePassword)},
	}
}

// BenchmarkSelectOne is one round trip per operation: the gateway's added
// latency.
func BenchmarkSelectOne(b *testing.B) {
	for _, target := range benchTargets(b) {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			b.Run(target.name+"/"+mode.String(), func(b *testing.B) {
				conn := connect(b, target.dsn)
				ctx := testContext(b)
				var n int
				for b.Loop() {
					if err := conn.QueryRow(ctx, "select 1", mode).Scan(&n); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkResult10kRows moves a 10,000-row result: the gateway's cost per
// forwarded row.
func BenchmarkResult10kRows(b *testing.B) {
	for _, target := range benchTargets(b) {
		b.Run(target.name, func(b *testing.B) {
			conn := connect(b, target.dsn)
			ctx := testContext(b)
			for b.Loop() {
				rows, err := conn.Query(ctx, "select g, 'row number ' || g from generate_series(1, 10000) g")
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
		})
	}
}
