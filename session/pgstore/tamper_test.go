package pgstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// TestTamperDetection changes the table behind the store's back, as
// someone with write access to it could, and expects Verify to name the
// first entry that no longer holds. Each session has 8 entries: start,
// statement/result ×2 (2-5), statement 6, end 7, seal 8.
func TestTamperDetection(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	tbl := s.table
	record(t, s, tamperSession("other-session")...)
	for _, c := range []struct {
		name string
		sql  string // %[1]s is the table, $1 the session
		seq  int64  // the entry Verify must name
	}{
		{"one byte of an event", `UPDATE %[1]s SET event = replace(event, 'FROM orders', 'FROM ordxrs') WHERE session = $1 AND seq = 4`, 4},
		{"one byte of the first event", `UPDATE %[1]s SET event = replace(event, '"User":"frank"', '"User":"frAnk"') WHERE session = $1 AND seq = 1`, 1},
		{"an entry deleted", `DELETE FROM %[1]s WHERE session = $1 AND seq = 3`, 3},
		{"two entries' seq swapped", `UPDATE %[1]s SET seq = -seq WHERE session = $1 AND seq IN (2, 4);
			UPDATE %[1]s SET seq = CASE seq WHEN -2 THEN 4 ELSE 2 END WHERE session = $1 AND seq < 0`, 2},
		{"the seal deleted", `DELETE FROM %[1]s WHERE session = $1 AND seq = 8`, 8},
		{"the end and the seal replaced by a seal", `DELETE FROM %[1]s WHERE session = $1 AND seq = 7;
			UPDATE %[1]s SET seq = 7 WHERE session = $1 AND seq = 8`, 7},
		{"an entry moved to another session", `UPDATE %[1]s SET session = $1 || '-elsewhere' WHERE session = $1 AND seq = 5`, 5},
		{"an entry's hash replaced", `UPDATE %[1]s SET hash = (SELECT hash FROM %[1]s WHERE session = $1 AND seq = 5) WHERE session = $1 AND seq = 4`, 4},
		{"an entry inserted after the seal", `INSERT INTO %[1]s (session, seq, kind, sealed, prev, hash, event)
			SELECT session, 9, kind, sealed, hash, hash, event FROM %[1]s WHERE session = $1 AND seq = 6`, 8},
		{"an entry copied from another session", `UPDATE %[1]s SET (kind, prev, hash, event) =
			(SELECT kind, prev, hash, replace(event, 'other-session', $1) FROM %[1]s WHERE session = 'other-session' AND seq = 2)
			WHERE session = $1 AND seq = 2`, 2},
		{"the kind column changed", `UPDATE %[1]s SET kind = 'result' WHERE session = $1 AND seq = 6`, 6},
		{"the seal given a kind", `UPDATE %[1]s SET kind = 'session.end' WHERE session = $1 AND seq = 8`, 8},
		{"the seal given an event", `UPDATE %[1]s SET event = '{}' WHERE session = $1 AND seq = 8`, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("s-%s", t.Name())
			record(t, s, tamperSession(id)...)
			if err := s.Verify(ctx, id); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			for _, stmt := range splitSQL(fmt.Sprintf(c.sql, tbl)) {
				tag, err := setup(t).Exec(ctx, stmt, id)
				if err != nil || tag.RowsAffected() == 0 {
					t.Fatalf("%s: %v (%d rows)", stmt, err, tag.RowsAffected())
				}
			}
			err := s.Verify(ctx, id)
			var te *session.TamperError
			if !errors.As(err, &te) {
				t.Fatalf("Verify after tampering: %v, want a *session.TamperError", err)
			}
			if te.Session != id || te.Seq != c.seq || session.IsNotSealed(err) {
				t.Errorf("Verify: %v, want entry %d named", err, c.seq)
			}
		})
	}

	// The entry moved elsewhere does not pass for a ledger of its own.
	var te *session.TamperError
	if err := s.Verify(ctx, "s-TestTamperDetection/an_entry_moved_to_another_session-elsewhere"); !errors.As(err, &te) || te.Seq != 1 {
		t.Errorf("Verify of the session an entry was moved to: %v, want entry 1 named", err)
	}

	// What the ledger cannot tell: every entry from the end on deleted
	// looks like a session whose gateway stopped. It must not verify.
	record(t, s, tamperSession("s-cut")...)
	suExec(t, fmt.Sprintf(`DELETE FROM %s WHERE session = $1 AND seq >= 7`, tbl), "s-cut")
	if err := s.Verify(ctx, "s-cut"); !session.IsNotSealed(err) {
		t.Errorf("Verify of a session cut before its end: %v, want not sealed", err)
	}
	// The untouched session still verifies.
	if err := s.Verify(ctx, "other-session"); err != nil {
		t.Errorf("Verify of the untouched session: %v", err)
	}
}

func tamperSession(id string) []session.Event {
	evs := simpleSession(id, "frank", 2)
	end := evs[len(evs)-1]
	evs = append(evs[:len(evs)-1], statementEvent(id, t0, 3, "SELECT 'other-session'", "allow"), end)
	return evs
}

// splitSQL splits statements separated by ";\n" (extended protocol runs
// one statement at a time).
func splitSQL(sql string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(sql); i++ {
		if sql[i] == ';' && sql[i+1] == '\n' {
			out = append(out, sql[start:i])
			start = i + 1
		}
	}
	return append(out, sql[start:])
}
