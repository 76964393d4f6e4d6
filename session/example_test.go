package session_test

import (
	"context"
	"fmt"

	"github.com/pgwarden/pgwarden/session"
)

// A Recorder is any function that keeps events; Multi sends them to several.
func ExampleRecorderFunc() {
	count := 0
	counter := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		count++
		return nil
	})
	printer := session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
		if ev.Kind == session.KindStatement {
			fmt.Println(ev.Statement.SQL, ev.Statement.Verdict)
		}
		return nil
	})
	rec := session.Multi(counter, printer)
	rec.Record(context.Background(), session.Event{Kind: session.KindStatement,
		Statement: &session.StatementEvent{Seq: 1, SQL: "select 1", Verdict: "allow"}})
	fmt.Println(count)
	// Output:
	// select 1 allow
	// 1
}

// Secrets print as REDACTED everywhere but Reveal.
func ExampleSecret() {
	s := session.NewSecret("hunter2")
	fmt.Println(s, fmt.Sprintf("%#v", s))
	// Output: REDACTED REDACTED
}
