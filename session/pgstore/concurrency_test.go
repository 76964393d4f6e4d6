package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// recordConcurrently records sessions × events from one goroutine per
// session (start, statements and results, end) and returns the ids.
func recordConcurrently(t *testing.T, s session.Recorder, prefix string, sessions, events int) []string {
	t.Helper()
	ctx := testContext(t)
	ids := make([]string, sessions)
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
		wg.Go(func() {
			evs := simpleSession(ids[i], fmt.Sprintf("user%d", i), (events-2)/2)
			for _, ev := range evs {
				if err := s.Record(ctx, ev); err != nil {
					errs <- fmt.Errorf("%s %s: %w", ev.SessionID, ev.Kind, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return ids
}

// TestConcurrentSessions: 16 sessions of 100 events, every Record waiting
// for its commit: all recorded and verified, in fewer COPYs than events.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	const sessions, events = 16, 100
	ids := recordConcurrently(t, s, "conc", sessions, events)
	ctx := testContext(t)
	for _, id := range ids {
		if n := rowCount(t, s.table, id); n != events+1 {
			t.Errorf("%s: %d rows, want %d events and the seal", id, n, events+1)
		}
		if err := s.Verify(ctx, id); err != nil {
			t.Errorf("Verify(%s): %v", id, err)
		}
	}
	st := s.Stats()
	t.Logf("stats: %+v (%.1f entries per COPY)", st, float64(st.Entries)/float64(st.Batches))
	if st.Entries != sessions*(events+1) || st.Failed != 0 || st.Live != 0 {
		t.Errorf("stats: %+v", st)
	}
	if st.Batches >= sessions*events {
		t.Errorf("%d COPYs for %d events: nothing was batched", st.Batches, sessions*events)
	}
	sums, err := s.Sessions(ctx, session.Filter{})
	if err != nil || len(sums) != sessions {
		t.Fatalf("Sessions: %d, %v", len(sums), err)
	}
	for _, x := range sums {
		if x.Statements != (events-2)/2 || x.EndReason != session.EndClientExit {
			t.Errorf("%s: %+v", x.ID, x)
		}
	}
}

// TestMaxBatchAndDelay: with a delay, the writer fills batches up to
// MaxBatch, never beyond.
func TestMaxBatchAndDelay(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{MaxBatch: 8, MaxDelay: 5 * time.Millisecond})
	ids := recordConcurrently(t, s, "delay", 16, 20)
	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.LargestBatch > 8 || st.LargestBatch < 2 {
		t.Errorf("largest batch %d entries, want 2 to 8", st.LargestBatch)
	}
	if st.Entries != int64(len(ids)*21) {
		t.Errorf("%d entries written", st.Entries)
	}
	for _, id := range ids {
		if err := s.Verify(testContext(t), id); err != nil {
			t.Errorf("Verify(%s): %v", id, err)
		}
	}
}

// TestNotDurableEvents: statements and results are queued, not waited
// for; the end waits, and with it everything before it.
func TestNotDurableEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{Durable: func(k session.EventKind) bool {
		return k == session.KindSessionStart || k == session.KindSessionEnd
	}})
	ids := recordConcurrently(t, s, "async", 8, 50)
	for _, id := range ids {
		if n := rowCount(t, s.table, id); n != 51 {
			t.Errorf("%s: %d rows once its end was recorded, want 51", id, n)
		}
		if err := s.Verify(testContext(t), id); err != nil {
			t.Errorf("Verify(%s): %v", id, err)
		}
	}
	if st := s.Stats(); st.Batches >= 8*51 {
		t.Errorf("stats %+v: nothing was batched", st)
	}
}

// TestCanceledRecord: a Record whose context is done fails or records,
// and either way the ledger has no hole.
func TestCanceledRecord(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	record(t, s, startEvent("s-cancel", t0, "gina"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		if s.Record(canceled, statementEvent("s-cancel", t0, int64(i+1), "SELECT 1", "allow")) == nil {
			t.Fatal("Record with a canceled context succeeded")
		}
	}
	// A context that ends while the Record waits for its commit.
	short, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	var failed int
	for i := range 20 {
		if s.Record(short, statementEvent("s-cancel", t0, int64(i+1), "SELECT 1", "allow")) != nil {
			failed++
		}
	}
	t.Logf("%d of 20 Records with an ending context failed", failed)
	record(t, s, endEvent("s-cancel", t0.Add(time.Second), 20))
	if err := s.Verify(testContext(t), "s-cancel"); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if n := rowCount(t, s.table, "s-cancel"); n < 3 || n > 23 {
		t.Errorf("%d rows", n)
	}
}

// TestCloseFlushes: Close writes what is queued; Record afterwards fails.
func TestCloseFlushes(t *testing.T) {
	t.Parallel()
	setup(t)
	table := tableFor(t)
	ctx := testContext(t)
	s, err := pgstore.Open(ctx, recorderDSN(), testKey, pgstore.Options{Table: table, MaxDelay: time.Hour,
		Durable: func(session.EventKind) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	evs := simpleSession("s-close", "hank", 10)
	record(t, s, evs...)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := rowCount(t, table, "s-close"); n != len(evs)+1 {
		t.Errorf("%d rows after Close, want %d", n, len(evs)+1)
	}
	if err := s.Record(ctx, startEvent("s-late", t0, "hank")); err != pgstore.ErrClosed {
		t.Errorf("Record after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
