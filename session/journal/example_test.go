package journal_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// A journal records every session to its own file, and reads them back.
// In a gateway, set proxy.Proxy's Recorder to the journal.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "recordings")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The recording key chains every ledger: keep it secret, and keep it to
	// verify recordings later.
	j, err := journal.Open(dir, session.NewSecret("a long random recording key"), journal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()

	ctx := context.Background()
	id := "5f1c2a"
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, ev := range []session.Event{
		{Kind: session.KindSessionStart, SessionID: id, Time: at, Start: &session.StartEvent{Info: session.Info{
			ID: id, User: "alice", Database: "shop", StartedAt: at,
			Identity: session.Identity{Subject: "alice", Issuer: "https://idp.example"}}}},
		{Kind: session.KindStatement, SessionID: id, Time: at, Statement: &session.StatementEvent{
			Seq: 1, Protocol: session.ProtocolSimple, SQL: "delete from orders", Verdict: "block"}},
		{Kind: session.KindSessionEnd, SessionID: id, Time: at.Add(time.Second), End: &session.EndEvent{
			Reason: session.EndClientExit, Statements: 1}},
	} {
		// A statement is on disk before Record returns: only then may the
		// proxy forward it.
		if err := j.Record(ctx, ev); err != nil {
			log.Fatal(err)
		}
	}

	sums, _ := j.Sessions(ctx, session.Filter{Table: "orders"})
	for _, s := range sums {
		fmt.Println(s.ID, s.Identity.Subject, s.Statements, s.Refused, s.EndReason)
	}
	fmt.Println("verify:", j.Verify(ctx, id))
	// Output:
	// 5f1c2a alice 1 1 client-exit
	// verify: <nil>
}

// Verify finds what was changed in a session's file: here a refusal
// turned into an allow. The recording key must be kept away from the
// journal's directory, or whoever edits the file can forge the chain too.
func ExampleJournal_Verify() {
	dir, err := os.MkdirTemp("", "recordings")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key := session.NewSecret("a long random recording key")
	j, err := journal.Open(dir, key, journal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, ev := range []session.Event{
		{Kind: session.KindSessionStart, SessionID: "s1", Time: at, Start: &session.StartEvent{Info: session.Info{
			ID: "s1", User: "alice", Database: "shop", StartedAt: at, Identity: session.Identity{Subject: "alice"}}}},
		{Kind: session.KindStatement, SessionID: "s1", Time: at, Statement: &session.StatementEvent{
			Seq: 1, Protocol: session.ProtocolSimple, SQL: "delete from orders", Verdict: "block"}},
		{Kind: session.KindSessionEnd, SessionID: "s1", Time: at, End: &session.EndEvent{Reason: session.EndClientExit, Statements: 1}},
	} {
		if err := j.Record(ctx, ev); err != nil {
			log.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		log.Fatal(err)
	}

	file := filepath.Join(dir, "s1.jsonl")
	b, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	edited := strings.Replace(string(b), `"verdict":"block"`, `"verdict":"allow"`, 1)
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		log.Fatal(err)
	}

	r, err := journal.OpenReadOnly(dir, key) // a reviewer's tool
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	err = r.Verify(ctx, "s1")
	var tampered *session.TamperError
	fmt.Println(errors.As(err, &tampered), tampered.Seq)
	// Output: true 2
}
