package journal

import (
	"context"
	"fmt"
	"os"
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
	for _, sessions := range []int{1, 8} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			benchRecord(b, sessions, Options{}, hooks{})
		})
	}
}

// The strategies the committer could use, measured against each other:
// fdatasync of each touched file in parallel (the default), one after the
// other, and syncfs(2) once per batch (where available).
func BenchmarkSyncStrategy(b *testing.B) {
	strategies := map[string]hooks{"fdatasync-parallel": {}, "fdatasync-sequential": {sequential: true}}
	if syncfs != nil {
		strategies["syncfs"] = hooks{batchSync: func(dir *os.File, _ []*os.File) error { return syncfs(dir) }}
	}
	for _, name := range []string{"fdatasync-parallel", "fdatasync-sequential", "syncfs"} {
		h, ok := strategies[name]
		if !ok {
			continue
		}
		for _, sessions := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/sessions=%d", name, sessions), func(b *testing.B) {
				benchRecord(b, sessions, Options{}, h)
			})
		}
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
