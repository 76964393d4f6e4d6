package proxy_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

var maskBenchOnce sync.Once

// maskBenchTable creates mask_bench: 1,000,000 rows of five columns, one
// of them an email address.
func maskBenchTable(b *testing.B) {
	setupRoles(b)
	var err error
	maskBenchOnce.Do(func() {
		err = pg.Exec(context.Background(), "app", `
			DROP TABLE IF EXISTS mask_bench;
			CREATE TABLE mask_bench AS SELECT g AS id, 'name ' || g AS name, 'user' || g || '@example.com' AS email,
				'note number ' || g AS note, g % 97 AS grp FROM generate_series(1, 1000000) g;
			GRANT SELECT ON mask_bench TO app_rw;
			ANALYZE mask_bench;`)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMasked1MRows moves a 1,000,000-row result of five columns
// directly, through a gateway without masking, and through one that masks
// the email column (keyed hash), in the same run; and, through the masking
// gateway, the same result without the email column (no masked cell).
//
//	go test -run '^$' -bench Masked1MRows -benchtime 5x ./proxy
func BenchmarkMasked1MRows(b *testing.B) {
	maskBenchTable(b)
	quiet := func(p *proxy.Proxy) {
		p.Recorder = nil
		p.Logger = slog.New(slog.DiscardHandler)
	}
	plain := startGateway(b, quiet)
	hash, err := mask.KeyedHash([]byte("benchmark-key-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	masked := startGateway(b, func(p *proxy.Proxy) {
		quiet(p)
		p.Masks = mask.Rules{{Column: "public.mask_bench.email", Masker: hash}}
	})
	const all = "SELECT id, name, email, note, grp FROM mask_bench"
	const clean = "SELECT id, name, note, grp, grp FROM mask_bench"
	targets := []struct{ name, dsn, sql string }{
		{"direct", pg.ConnString(rwRole, rwPassword, "app"), all},
		{"unmasked", plain.dsn("alice", alicePassword), all},
		{"masked", masked.dsn("alice", alicePassword), all},
		{"masked-gateway-no-masked-cell", masked.dsn("alice", alicePassword), clean},
	}
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			conn := connect(b, target.dsn)
			ctx := testContext(b)
			var rows int
			for b.Loop() {
				r, err := conn.Query(ctx, target.sql)
				if err != nil {
					b.Fatal(err)
				}
				for r.Next() {
					rows++
				}
				if r.Err() != nil {
					b.Fatal(r.Err())
				}
			}
			if rows != 1000000*b.N {
				b.Fatalf("%d rows", rows)
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
