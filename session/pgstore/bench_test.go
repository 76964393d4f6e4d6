package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session/pgstore"
)

// BenchmarkRecordBatched records statement events (each Record waiting for
// its commit) from 1 and 8 concurrent sessions; events/s is the store's
// throughput, entries/COPY how much the writer batched. The test cluster
// runs with fsync=off: on a real server a commit costs a flush, and
// batching matters more.
func BenchmarkRecordBatched(b *testing.B) {
	for _, sessions := range []int{1, 8} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			s := newStore(b, pgstore.Options{})
			ctx := context.Background()
			ids := make([]string, sessions)
			for i := range ids {
				ids[i] = fmt.Sprintf("bench-%d-%d", b.N, i)
				record(b, s, startEvent(ids[i], t0, "bench"))
			}
			per := (b.N + sessions - 1) / sessions
			before := s.Stats()
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, id := range ids {
				wg.Go(func() {
					for j := range per {
						if err := s.Record(ctx, statementEvent(id, t0.Add(time.Duration(j)), int64(j+1), "SELECT * FROM orders WHERE id = 42", "allow", "orders")); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(sessions*per)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Entries-before.Entries)/float64(st.Batches-before.Batches), "entries/COPY")
		})
	}
}
