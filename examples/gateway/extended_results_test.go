package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/session"
)

// Results of the extended protocol, as recorded: bugs found while wiring
// the recording, fixed in the proxy.

// recordExtended serves a gateway recording to a directory, runs one
// prepared INSERT twice (extended protocol: one Parse, two Binds) and
// returns the session's events.
func recordExtended(t *testing.T) []session.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	path := f.writeConfig(t, f.config("recording: {dir: rec, key: "+testRecordingKey+"}\n"))
	tg := startTestGatewayFile(t, path, testAdminToken)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", tg.addr))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := conn.Exec(ctx, "INSERT INTO t (n, s) VALUES ($1, $2)", i, "x"); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	tg.waitSessions(t, 0)
	tg.stop()
	j := openJournal(t, filepath.Join(f.dir, "rec"))
	list, err := j.Sessions(ctx, session.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v, %v", list, err)
	}
	events, err := j.Events(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestExtendedResultDuration: a result of the extended protocol (an
// Execute) is recorded with the time the statement took (it once was
// measured from the zero time).
func TestExtendedResultDuration(t *testing.T) {
	t.Parallel()
	n := 0
	for _, ev := range recordExtended(t) {
		if r := ev.Result; r != nil {
			n++
			if r.Duration < 0 || r.Duration > time.Minute {
				t.Errorf("result %+v: duration %s; want the time the INSERT took", r, r.Duration)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d results, want 2", n)
	}
}

// TestExtendedResultNamesItsBind: the result of an Execute names the Bind
// that opened its portal (ResultEvent.Bind: the parameters), and the
// statement the server ran (Seq: the Parse).
func TestExtendedResultNamesItsBind(t *testing.T) {
	t.Parallel()
	var binds, results []int64
	for _, ev := range recordExtended(t) {
		switch {
		case ev.Statement != nil && ev.Statement.Stage == "bind":
			binds = append(binds, ev.Statement.Seq)
		case ev.Result != nil:
			results = append(results, ev.Result.Bind)
		}
	}
	if len(binds) != 2 || len(results) != 2 || results[0] != binds[0] || results[1] != binds[1] {
		t.Errorf("bind events #%v, their results refer to #%v; want each result to refer to its Bind", binds, results)
	}
}
