package session_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Secrets print as REDACTED everywhere but Reveal.
func ExampleSecret() {
	s := session.NewSecret("hunter2")
	fmt.Println(s, fmt.Sprintf("%#v", s))
	// Output: REDACTED REDACTED
}

// A plugin returns a *session.Error (possibly wrapped) to choose what the
// client reads: its SQLSTATE, message, detail and hint. Err is for the
// logs and errors.Is, never sent.
func ExampleError() {
	cause := errors.New("vault: 403 on secret/data/app/reporting")
	err := fmt.Errorf("credential lookup: %w", &session.Error{Code: session.CodeInvalidAuthorization,
		Message: "no database credential is configured for your team", Hint: "Ask the platform team.", Err: cause})

	var pgErr *session.Error
	fmt.Println(errors.As(err, &pgErr), pgErr.Code, pgErr.Message)
	fmt.Println(errors.Is(err, cause))
	// Output:
	// true 28000 no database credential is configured for your team
	// true
}

// A ledger chains a session's events with a keyed MAC: VerifyLedger finds
// an edited, removed, inserted or reordered entry, and a missing seal.
// The stores (session/journal, session/pgstore) keep ledgers for you.
func ExampleLedger() {
	key := session.NewSecret("a long random recording key")
	l, err := session.NewLedger(key, "s1")
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	var entries []session.LedgerEntry
	for _, ev := range []session.Event{
		{Kind: session.KindStatement, SessionID: "s1", Time: at, Statement: &session.StatementEvent{Seq: 1, SQL: "delete from orders", Verdict: "block"}},
		{Kind: session.KindSessionEnd, SessionID: "s1", Time: at, End: &session.EndEvent{Reason: session.EndClientExit, Statements: 1}},
	} {
		e, err := l.Append(ev)
		if err != nil {
			log.Fatal(err)
		}
		entries = append(entries, e)
	}
	seal, err := l.Seal()
	if err != nil {
		log.Fatal(err)
	}
	entries = append(entries, seal)
	fmt.Println(session.VerifyLedger(key, "s1", entries))

	// Cut before its seal, the ledger is not known to be whole.
	fmt.Println(session.IsNotSealed(session.VerifyLedger(key, "s1", entries[:2])))

	// Someone turns the refusal into an allow.
	entries[0].Event = []byte(`{"kind":"statement","session":"s1","time":"2025-03-01T09:00:00Z","statement":{"seq":1,"sql":"delete from orders","verdict":"allow"}}`)
	fmt.Println(session.VerifyLedger(key, "s1", entries))
	// Output:
	// <nil>
	// true
	// session s1: ledger entry 1: its content does not match its hash: edited
}
