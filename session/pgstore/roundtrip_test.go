package pgstore_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// aliceSession is a full session: an identity with a delegation chain, a
// credential issued and released, statements of every outcome, an end.
func aliceSession(t testing.TB, id string) []session.Event {
	claims, err := session.ClaimsFrom(map[string]any{"sub": "alice", "tenant": "acme", "amr": []string{"pwd", "otp"}})
	if err != nil {
		t.Fatal(err)
	}
	start := startEvent(id, t0, "alice@example.com", "agent-planner", "agent-sql")
	info := &start.Start.Info
	info.Identity.Name, info.Identity.Email = "Alice", "alice@example.com"
	info.Identity.Groups = []string{"dba", "eng"}
	info.Identity.ExpiresAt = t0.Add(time.Hour)
	info.Identity.Claims = claims
	info.TLS = &session.TLSInfo{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ServerName: "db.example"}
	info.ApplicationName = "psql"
	info.Params = map[string]string{"application_name": "psql", "DateStyle": "ISO"}
	info.Lease = "pgw_lease_1"
	info.UpstreamUser = "pgw_lease_1"
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	blocked := statementEvent(id, at(30), 2, "DELETE FROM Invoices WHERE true", "block")
	blocked.Statement.Rule, blocked.Statement.Reason = "no-delete", "deleting is not allowed"
	failed := resultEvent(id, at(31), 2)
	failed.Result.Tag, failed.Result.Rows, failed.Result.ErrorCode, failed.Result.ErrorMessage = "", 0, "42501", "refused"
	ext := statementEvent(id, at(40), 3, "SELECT $1::text -- <b>&amp; \u2028 é 😀 \"quoted\"", "allow")
	ext.Statement.Protocol, ext.Statement.Name = session.ProtocolExtended, "stmt1"
	return []session.Event{
		start,
		{Kind: session.KindCredential, SessionID: id, Time: at(8), Credential: &session.CredentialEvent{
			Action: session.CredentialIssued, User: "pgw_lease_1", Lease: "pgw_lease_1", ExpiresAt: t0.Add(time.Hour)}},
		statementEvent(id, at(20), 1, "SELECT * FROM public.orders WHERE id = 1", "allow", "public.orders"),
		resultEvent(id, at(21), 1),
		blocked,
		failed,
		ext,
		resultEvent(id, at(41), 3),
		statementEvent(id, at(50), 4, "SELECT * FROM hidden_name", "mask", "other"),
		resultEvent(id, at(51), 4),
		{Kind: session.KindCredential, SessionID: id, Time: at(60), Credential: &session.CredentialEvent{
			Action: session.CredentialReleased, User: "pgw_lease_1", Lease: "pgw_lease_1"}},
		endEvent(id, at(61), 4),
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	alice := aliceSession(t, "s-alice")
	record(t, s, alice...)
	// bob: started a minute later, still running.
	bobStart := t0.Add(time.Minute)
	record(t, s, startEvent("s-bob", bobStart, "bob"),
		statementEvent("s-bob", bobStart.Add(time.Second), 1, "select * from customers", "allow", "customers"))

	got, err := s.Events(ctx, "s-alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(alice) {
		t.Fatalf("Events: %d events, want %d", len(got), len(alice))
	}
	for i := range alice {
		if g, w := mustJSON(t, got[i]), mustJSON(t, alice[i]); g != w {
			t.Errorf("event %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
	// The table holds each event's JSON byte for byte, then the seal.
	rows, err := setup(t).Query(ctx, fmt.Sprintf("SELECT seq, kind, sealed, event FROM %s WHERE session = 's-alice' ORDER BY seq", s.table))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for rows.Next() {
		var seq int64
		var kind, event *string
		var sealed bool
		if err := rows.Scan(&seq, &kind, &sealed, &event); err != nil {
			t.Fatal(err)
		}
		n++
		if seq != int64(n) {
			t.Errorf("row %d has seq %d", n, seq)
		}
		if n <= len(alice) {
			if sealed || kind == nil || *kind != string(alice[n-1].Kind) || event == nil || *event != mustJSON(t, alice[n-1]) {
				t.Errorf("row %d: kind %v sealed %v, event not stored exactly", n, kind, sealed)
			}
		} else if !sealed || kind != nil || event != nil {
			t.Errorf("row %d: want the seal (no kind, no event)", n)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(alice)+1 {
		t.Errorf("%d rows, want %d events and the seal", n, len(alice)+1)
	}

	if err := s.Verify(ctx, "s-alice"); err != nil {
		t.Errorf("Verify(alice): %v", err)
	}
	if err := s.Verify(ctx, "s-bob"); !session.IsNotSealed(err) {
		t.Errorf("Verify(bob), still running: %v, want not sealed", err)
	}
	if _, err := s.Events(ctx, "s-nobody"); !errors.Is(err, pgstore.ErrNotFound) {
		t.Errorf("Events(unknown): %v", err)
	}
	if err := s.Verify(ctx, "s-nobody"); !errors.Is(err, pgstore.ErrNotFound) {
		t.Errorf("Verify(unknown): %v", err)
	}

	// The summaries.
	all, err := s.Sessions(ctx, session.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "s-alice" || all[1].ID != "s-bob" {
		t.Fatalf("Sessions: %+v, want alice then bob", all)
	}
	a, b := all[0], all[1]
	info := alice[0].Start.Info
	if mustJSON(t, a.Identity) != mustJSON(t, info.Identity) {
		t.Errorf("alice's identity: %s", mustJSON(t, a.Identity))
	}
	end := alice[len(alice)-1]
	if a.User != info.User || a.Database != "app" || a.ClientAddr != info.ClientAddr || a.Upstream != "pgw_lease_1" ||
		!a.StartedAt.Equal(t0) || !a.EndedAt.Equal(end.Time) || a.EndReason != session.EndClientExit ||
		a.Statements != 4 || a.Refused != 1 {
		t.Errorf("alice's summary: %+v", a)
	}
	if b.Identity.Subject != "bob" || !b.StartedAt.Equal(bobStart) || !b.EndedAt.IsZero() || b.EndReason != "" ||
		b.Statements != 1 || b.Refused != 0 {
		t.Errorf("bob's summary: %+v", b)
	}

	for _, c := range []struct {
		name string
		f    session.Filter
		want []string
	}{
		{"subject", session.Filter{Subject: "alice@example.com"}, []string{"s-alice"}},
		{"first actor", session.Filter{Subject: "agent-planner"}, []string{"s-alice"}},
		{"presenting actor", session.Filter{Subject: "agent-sql"}, []string{"s-alice"}},
		{"other subject", session.Filter{Subject: "bob"}, []string{"s-bob"}},
		{"unknown subject", session.Filter{Subject: "mallory"}, nil},
		{"since before both", session.Filter{Since: t0.Add(-time.Hour)}, []string{"s-alice", "s-bob"}},
		{"since between", session.Filter{Since: t0.Add(time.Second)}, []string{"s-bob"}},
		{"until between", session.Filter{Until: t0.Add(time.Second)}, []string{"s-alice"}},
		{"until before both", session.Filter{Until: t0.Add(-time.Second)}, nil},
		{"window", session.Filter{Since: t0.Add(30 * time.Second), Until: t0.Add(2 * time.Minute)}, []string{"s-bob"}},
		{"table as recorded", session.Filter{Table: "public.orders"}, []string{"s-alice"}},
		{"table unqualified, other case", session.Filter{Table: "ORDERS"}, []string{"s-alice"}},
		{"table of the other session", session.Filter{Table: "customers"}, []string{"s-bob"}},
		{"table in SQL text only", session.Filter{Table: "invoices"}, []string{"s-alice"}},
		{"part of a word in SQL text", session.Filter{Table: "invoice"}, nil},
		{"tables field wins over SQL text", session.Filter{Table: "hidden_name"}, nil},
		{"verdict block", session.Filter{Verdict: "block"}, []string{"s-alice"}},
		{"verdict allow", session.Filter{Verdict: "allow"}, []string{"s-alice", "s-bob"}},
		{"verdict nobody got", session.Filter{Verdict: "terminate"}, nil},
		{"all at once", session.Filter{Subject: "agent-sql", Since: t0, Until: t0.Add(time.Second), Table: "orders", Verdict: "mask"}, []string{"s-alice"}},
		{"subject and verdict of different sessions", session.Filter{Subject: "bob", Verdict: "block"}, nil},
	} {
		sums, err := s.Sessions(ctx, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var ids []string
		for _, x := range sums {
			ids = append(ids, x.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s: %v, want %v", c.name, ids, c.want)
		}
	}
}

// TestEscapesJSONBRefuses records what jsonb cannot hold (a NUL a client
// can put in a bound parameter, a lone surrogate in raw claims): the
// event is stored and verifies as it was, and searching still works.
func TestEscapesJSONBRefuses(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	claims, err := session.NewClaims([]byte(`{"sub":"carol","odd":"\ud800 and \u0000"}`))
	if err != nil {
		t.Fatal(err)
	}
	start := startEvent("s-carol", t0, "carol\x00x", "agent\x00y")
	start.Start.Info.Identity.Claims = claims
	evs := []session.Event{start, statementEvent("s-carol", t0, 1, "SELECT '\x00' FROM weird", "block"), endEvent("s-carol", t0, 1)}
	record(t, s, evs...)
	got, err := s.Events(ctx, "s-carol")
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if g, w := mustJSON(t, got[i]), mustJSON(t, evs[i]); g != w {
			t.Errorf("event %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
	if err := s.Verify(ctx, "s-carol"); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for _, f := range []session.Filter{{}, {Table: "weird"}, {Verdict: "block"}, {Since: t0.Add(-time.Second)}} {
		sums, err := s.Sessions(ctx, f)
		if err != nil {
			t.Fatalf("Sessions(%+v): %v", f, err)
		}
		if len(sums) != 1 || sums[0].Identity.Subject != "carol\x00x" || sums[0].Refused != 1 {
			t.Errorf("Sessions(%+v): %+v", f, sums)
		}
	}
}

// TestWithoutKey: a store opened without the key reads recordings, and
// neither records nor verifies.
func TestWithoutKey(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	record(t, s, simpleSession("s-1", "dave", 2)...)
	ctx := testContext(t)
	r, err := pgstore.Open(ctx, recorderDSN(), session.Secret{}, pgstore.Options{Table: s.table})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if sums, err := r.Sessions(ctx, session.Filter{}); err != nil || len(sums) != 1 {
		t.Errorf("Sessions: %v, %v", sums, err)
	}
	if evs, err := r.Events(ctx, "s-1"); err != nil || len(evs) != 6 {
		t.Errorf("Events: %d events, %v", len(evs), err)
	}
	if err := r.Record(ctx, startEvent("s-2", t0, "dave")); err == nil {
		t.Error("Record without a key succeeded")
	}
	var te *session.TamperError
	if err := r.Verify(ctx, "s-1"); err == nil || errors.As(err, &te) {
		t.Errorf("Verify without a key: %v, want an error that is not a TamperError", err)
	}
}

// TestOpen: several gateways opening the same new table at once, a
// schema-qualified table, and names that are refused.
func TestOpen(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	setup(t)
	ctx := testContext(t)
	for _, table := range []string{tableFor(t), "archive." + tableFor(t)} {
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := pgstore.Open(ctx, recorderDSN(), testKey, pgstore.Options{Table: table, Logger: quiet})
				if err == nil {
					err = s.Record(ctx, startEvent("s-"+table, t0, "erin"))
					if cerr := s.Close(); err == nil {
						err = cerr
					}
				}
				errs <- err
			}()
		}
		var failures int
		for range 4 {
			if err := <-errs; err != nil {
				// Each Store starts its own ledger of the same id:
				// all but one collide, and must fail, never panic.
				failures++
			}
		}
		if failures != 3 {
			t.Errorf("%s: %d of 4 Records failed, want 3 (one id, four ledgers)", table, failures)
		}
		if n := rowCount(t, table, "s-"+table); n != 1 {
			t.Errorf("%s: %d rows", table, n)
		}
	}
	for _, bad := range []string{"Events", "a-b", "x.y.z", `"q"`, "t; drop table x"} {
		if _, err := pgstore.Open(ctx, recorderDSN(), testKey, pgstore.Options{Table: bad}); err == nil {
			t.Errorf("table %q accepted", bad)
		}
	}
}

// TestSessionsWithoutStart: a session whose start entry was deleted is
// still listed (and does not verify); the upstream user falls back to the
// credential event; the SQL text match ignores double quotes.
func TestSessionsWithoutStart(t *testing.T) {
	t.Parallel()
	s := newStore(t, pgstore.Options{})
	ctx := testContext(t)
	start := startEvent("s-quoted", t0, "rita")
	start.Start.Info.UpstreamUser = ""
	record(t, s, start,
		session.Event{Kind: session.KindCredential, SessionID: "s-quoted", Time: t0.Add(time.Millisecond),
			Credential: &session.CredentialEvent{Action: session.CredentialUsed, User: "shared_role"}},
		statementEvent("s-quoted", t0.Add(2*time.Millisecond), 1, `SELECT * FROM "Ledger"."Payments"`, "allow"),
		endEvent("s-quoted", t0.Add(time.Second), 1))
	record(t, s, simpleSession("s-headless", "sam", 2)...)
	suExec(t, fmt.Sprintf("DELETE FROM %s WHERE session = 's-headless' AND seq = 1", s.table))

	sums, err := s.Sessions(ctx, session.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 {
		t.Fatalf("Sessions: %+v", sums)
	}
	q, h := sums[0], sums[1]
	if q.ID != "s-quoted" || q.Upstream != "shared_role" || q.Identity.Subject != "rita" {
		t.Errorf("the session with a shared credential: %+v", q)
	}
	// s-headless's first remaining event is its first statement, 1ms
	// after t0.
	if h.ID != "s-headless" || h.Identity.Subject != "" || !h.StartedAt.Equal(t0.Add(time.Millisecond)) ||
		h.Statements != 2 || h.EndReason != session.EndClientExit {
		t.Errorf("the session without its start: %+v", h)
	}
	var te *session.TamperError
	if err := s.Verify(ctx, "s-headless"); !errors.As(err, &te) || te.Seq != 1 {
		t.Errorf("Verify of the session without its start: %v", err)
	}
	for table, want := range map[string]int{"payments": 1, "ledger.payments": 1, "Ledger": 1, "pay": 0} {
		sums, err := s.Sessions(ctx, session.Filter{Table: table})
		if err != nil || len(sums) != want {
			t.Errorf("Table %q: %d sessions, %v; want %d", table, len(sums), err, want)
		}
	}
}
