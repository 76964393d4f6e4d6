package proxy_test

import (
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/proxy"
)

// TestRoundTripAllocations counts what the gateway allocates per round
// trip, as the difference between the same client's allocations through
// the gateway and directly (the test process runs both). A prepared
// statement's Bind, Execute and Sync and their answers allocate nothing;
// a simple Query allocates its text, its statement and its analysis (a
// copy of its template's, with its own text: the literals differ from
// query to query). Not a timing: a count.
func TestRoundTripAllocations(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Recorder = nil // session.Discard
		p.Logger = slog.New(slog.DiscardHandler)
	})
	for _, c := range []struct {
		mode pgx.QueryExecMode
		max  float64 // allocations the gateway may add per round trip
	}{
		{pgx.QueryExecModeCacheStatement, 0},
		{pgx.QueryExecModeSimpleProtocol, 3},
	} {
		perRoundTrip := func(dsn string) float64 {
			conn := connect(t, dsn)
			ctx := testContext(t)
			var n int
			query := func() {
				if err := conn.QueryRow(ctx, "select 1", c.mode).Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
			for range 100 { // warm: caches, buffers, the pipeline's ring
				query()
			}
			return testing.AllocsPerRun(2000, query)
		}
		direct := perRoundTrip(pg.ConnString(rwRole, rwPassword, "app"))
		through := perRoundTrip(g.dsn("alice", alicePassword))
		t.Logf("%v: %.0f allocations per round trip directly, %.0f through the gateway", c.mode, direct, through)
		if added := through - direct; added > c.max {
			t.Errorf("%v: the gateway allocates %.0f times per round trip, want at most %.0f", c.mode, added, c.max)
		}
	}
}
