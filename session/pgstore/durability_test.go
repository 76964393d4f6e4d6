package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session/pgstore"
)

// TestDurableWhenRecordReturns: once Record returns for a statement, its
// row is there for another connection to read.
func TestDurableWhenRecordReturns(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	record(t, s, startEvent("s-durable", t0, "ivy"))
	q := fmt.Sprintf("SELECT event FROM %s WHERE session = $1 AND seq = $2", s.table)
	for i := range 25 {
		ev := statementEvent("s-durable", t0.Add(time.Duration(i)*time.Millisecond), int64(i+1), fmt.Sprintf("SELECT %d", i), "allow")
		record(t, s, ev)
		var event string
		if err := setup(t).QueryRow(ctx, q, "s-durable", i+2).Scan(&event); err != nil {
			t.Fatalf("statement %d is not visible once Record returned: %v", i+1, err)
		}
		if event != mustJSON(t, ev) {
			t.Fatalf("statement %d stored as %s", i+1, event)
		}
	}
}
