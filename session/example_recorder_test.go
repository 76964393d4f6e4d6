package session_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgwarden/pgwarden/session"
)

// A Recorder is any function that keeps events (see the package
// documentation for its contract). Here one that counts the statements
// each verdict got; a Recorder is called from many sessions at once, and
// this one is only safe for the single goroutine of the example.
func ExampleRecorderFunc() {
	verdicts := map[string]int{}
	counter := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		if ev.Kind == session.KindStatement {
			verdicts[ev.Statement.Verdict]++
		}
		return nil
	})
	ctx := context.Background()
	for _, v := range []string{"allow", "block", "allow"} {
		counter.Record(ctx, session.Event{Kind: session.KindStatement, SessionID: "s1",
			Statement: &session.StatementEvent{Seq: 1, SQL: "select 1", Verdict: v}})
	}
	fmt.Println(verdicts)
	// Output: map[allow:2 block:1]
}

// Multi records every event to each of its recorders, and fails when one
// of them fails: the proxy then ends the session (fail closed).
func ExampleMulti() {
	primary := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		fmt.Println("primary:", ev.Kind)
		return nil
	})
	replica := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		return errors.New("replica: disk full")
	})
	rec := session.Multi(primary, replica)
	err := rec.Record(context.Background(), session.Event{Kind: session.KindSessionStart, SessionID: "s1",
		Start: &session.StartEvent{Info: session.Info{ID: "s1"}}})
	fmt.Println(err)
	// Output:
	// primary: session.start
	// replica: disk full
}

// BestEffort turns off failing closed, explicitly: the session goes on
// unrecorded when the recorder fails, and onError hears of it. Discard
// keeps nothing at all.
func ExampleBestEffort() {
	flaky := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		return errors.New("the audit database is unreachable")
	})
	rec := session.BestEffort(flaky, func(ev session.Event, err error) {
		fmt.Printf("not recorded: %s of session %s: %v\n", ev.Kind, ev.SessionID, err)
	})
	err := rec.Record(context.Background(), session.Event{Kind: session.KindStatement, SessionID: "s1",
		Statement: &session.StatementEvent{Seq: 1, SQL: "select 1", Verdict: "allow"}})
	fmt.Println(err)
	fmt.Println(session.Discard.Record(context.Background(), session.Event{Kind: session.KindSessionEnd, SessionID: "s1"}))
	// Output:
	// not recorded: statement of session s1: the audit database is unreachable
	// <nil>
	// <nil>
}
