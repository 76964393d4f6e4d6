package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// checkNoSecret fails t if text shows secret (never printing it).
func checkNoSecret(t testing.TB, where, text, secret string) {
	t.Helper()
	if secret == "" {
		t.Fatal("no secret to look for")
	}
	if strings.Contains(text, secret) {
		t.Errorf("%s holds the password", where)
	}
}

// TestRevokedInsertFailsClosed: when the server refuses the writes,
// Record fails, the failed session stays failed (no hole in its record),
// and new sessions record again once the server accepts writes.
func TestRevokedInsertFailsClosed(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	record(t, s, startEvent("s-a", t0, "jane"))
	suExec(t, fmt.Sprintf("REVOKE INSERT ON %s FROM %s", s.table, recorderRole))

	err := s.Record(ctx, statementEvent("s-a", t0, 1, "SELECT 1", "allow"))
	if err == nil {
		t.Fatal("Record succeeded without INSERT")
	}
	t.Logf("Record: %v", err)
	checkNoSecret(t, "the error", err.Error(), recorderPassword)
	if err := s.Record(ctx, startEvent("s-b", t0, "kate")); err == nil {
		t.Error("a new session recorded without INSERT")
	}

	suExec(t, fmt.Sprintf("GRANT INSERT ON %s TO %s", s.table, recorderRole))
	if err := s.Record(ctx, statementEvent("s-a", t0, 2, "SELECT 2", "allow")); err == nil {
		t.Error("a session whose write failed recorded again: its record would have a hole")
	} else {
		t.Logf("Record after the failure: %v", err)
	}
	if err := s.Record(ctx, endEvent("s-a", t0, 2)); err == nil {
		t.Error("the failed session's end was recorded")
	}
	record(t, s, simpleSession("s-c", "lena", 1)...)
	if err := s.Verify(ctx, "s-a"); !session.IsNotSealed(err) {
		t.Errorf("Verify of the failed session: %v, want not sealed", err)
	}
	if err := s.Verify(ctx, "s-c"); err != nil {
		t.Errorf("Verify of a session recorded after the failure: %v", err)
	}
	if st := s.Stats(); st.Failed != 2 || st.Live != 1 { // s-b started, never ended
		t.Errorf("stats: %+v", st)
	}
	checkNoSecret(t, "the logs", s.logs.String(), recorderPassword)
}

// TestStoppedDatabaseFailsClosed: the audit database goes away; Record
// fails (it neither hangs nor panics) and Close returns.
func TestStoppedDatabaseFailsClosed(t *testing.T) {
	t.Parallel()
	c := pgtest.New(t, pgtest.Options{})
	ctx := testContext(t)
	logs := &logBuffer{}
	s, err := pgstore.Open(ctx, session.NewSecret(c.SuperConnString("")), testKey,
		pgstore.Options{Logger: newLogger(logs), WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	record(t, s, startEvent("s-stop", t0, "mona"))
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Record(ctx, startEvent(fmt.Sprintf("s-%d", i), t0, "nina"))
		})
	}
	wg.Wait()
	err = s.Record(ctx, statementEvent("s-stop", t0, 1, "SELECT 1", "allow"))
	for _, err := range append(errs, err) {
		if err == nil {
			t.Fatal("Record succeeded with the database stopped")
		}
		checkNoSecret(t, "the error", err.Error(), c.Password)
	}
	t.Logf("Record: %v", err)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		t.Logf("Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	checkNoSecret(t, "the logs", logs.String(), c.Password)
}

// TestOneSessionCannotFailOthers: the server refuses one session's entries
// (another gateway already recorded that id); the other sessions of the
// batch are written.
func TestOneSessionCannotFailOthers(t *testing.T) {
	t.Parallel()
	first := newStore(t, pgstore.Options{})
	record(t, first, startEvent("s-dup", t0, "olga"))
	// The writer waits until it has both entries: they share a batch.
	second := newStore(t, pgstore.Options{Table: first.table, MaxBatch: 2, MaxDelay: time.Minute})
	ctx := testContext(t)
	var wg sync.WaitGroup
	var dupErr, okErr error
	wg.Go(func() { dupErr = second.Record(ctx, startEvent("s-dup", t0, "olga")) })
	wg.Go(func() { okErr = second.Record(ctx, startEvent("s-ok", t0, "pia")) })
	wg.Wait()
	if dupErr == nil || okErr != nil {
		t.Fatalf("Record of the duplicate: %v; of the other session: %v", dupErr, okErr)
	}
	if st := second.Stats(); st.Batches != 3 || st.Entries != 1 || st.Failed != 1 {
		t.Errorf("stats: %+v, want one batch refused and each session written on its own", st)
	}
	record(t, second, endEvent("s-ok", t0, 0))
	if err := second.Verify(ctx, "s-ok"); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := first.Verify(ctx, "s-dup"); !session.IsNotSealed(err) {
		t.Errorf("Verify of the first gateway's session: %v", err)
	}
}

// TestOpenErrorsHidePassword: a DSN that does not parse, a wrong password
// and a server that is not there: no error shows the password.
func TestOpenErrorsHidePassword(t *testing.T) {
	t.Parallel()
	setup(t)
	ctx, cancel := context.WithTimeout(testContext(t), 10*time.Second)
	defer cancel()
	const secret = "open-sesame-4411"
	for _, dsn := range []string{
		"host=127.0.0.1 password='" + secret + "' port=notaport",
		"postgres://u:" + secret + "@127.0.0.1:%zz/db",
		pg.ConnString(recorderRole, secret, auditDB),
		pg.ConnString(secret, secret, secret),
		"host=127.0.0.1 port=1 connect_timeout=2 user=x password=" + secret,
	} {
		s, err := pgstore.Open(ctx, session.NewSecret(dsn), testKey, pgstore.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open succeeded")
			continue
		}
		t.Logf("Open: %v", err)
		checkNoSecret(t, "Open's error", err.Error(), secret)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Open did not fail by itself: %v", err)
		}
	}
}
