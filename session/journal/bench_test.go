package journal

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

// benchRecord records b.N statement events spread over the given number of
// concurrent sessions, and reports events/s and syncs and commits per
// event.
func benchRecord(b *testing.B, sessions int, opts Options, h hooks) {
	dir := b.TempDir()
	j := openT(b, dir, opts, h)
	ctx := context.Background()
	per := (b.N + sessions - 1) / sessions
	// Every session's file exists before the clock starts.
	starts := make([]session.Event, sessions)
	for s := range sessions {
		starts[s] = script(fmt.Sprintf("bench-%d", s), "u", t0)[0]
		record(b, j, starts[s])
	}
	st0 := j.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := range sessions {
		id := fmt.Sprintf("bench-%d", s)
		wg.Go(func() {
			for i := range per {
				ev := session.Event{Kind: session.KindStatement, SessionID: id, Time: t0,
					Statement: &session.StatementEvent{Seq: int64(i + 1), Protocol: session.ProtocolSimple,
						SQL:     "select * from orders where customer_id = $1 and status = 'open' order by created_at desc limit 50",
						Verdict: "allow", Rule: "read-orders"}}
				if err := j.Record(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	st := j.Stats()
	n := float64(st.Events - st0.Events)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.Syncs-st0.Syncs)/n, "syncs/event")
	b.ReportMetric(float64(st.Commits-st0.Commits)/n, "commits/event")
}

func BenchmarkRecordStatementDurable(b *testing.B) {
	for _, sessions := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			benchRecord(b, sessions, Options{}, hooks{})
		})
	}
}

func BenchmarkRecordNoSync(b *testing.B) {
	// Only statements must be durable; these benchmarks record results.
	for _, sessions := range []int{1, 8} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			dir := b.TempDir()
			j := openT(b, dir, Options{Durable: func(session.EventKind) bool { return false }}, hooks{})
			ctx := context.Background()
			for s := range sessions {
				record(b, j, script(fmt.Sprintf("bench-%d", s), "u", t0)[0])
			}
			st0 := j.Stats()
			per := (b.N + sessions - 1) / sessions
			b.ResetTimer()
			var wg sync.WaitGroup
			for s := range sessions {
				id := fmt.Sprintf("bench-%d", s)
				wg.Go(func() {
					for i := range per {
						ev := session.Event{Kind: session.KindResult, SessionID: id, Time: t0,
							Result: &session.ResultEvent{Seq: int64(i + 1), Tag: "SELECT 50", Rows: 50, Duration: 1234567}}
						if err := j.Record(ctx, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := j.Stats()
			n := float64(st.Events - st0.Events)
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(st.Syncs-st0.Syncs)/n, "syncs/event")
		})
	}
}
