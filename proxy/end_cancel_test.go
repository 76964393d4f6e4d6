package proxy_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A session that ends while its statement runs must not leave the statement
// running on the server: PostgreSQL notices a closed connection only when it
// next writes, so a pg_sleep(30) (or a long UPDATE) of a terminated,
// revoked or vanished client would otherwise run to its end. Each case ends
// the session and waits for the statement to be gone, well before 30 s.
func TestEndedSessionCancelsItsStatement(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	cases := []struct {
		name, app string
		end       func(t *testing.T, marker string)
	}{
		{"terminated", "end-cancel-terminate", func(t *testing.T, _ string) {
			if err := g.Terminate(rlSessionID(t, g, "end-cancel-terminate"), "operator"); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked", "end-cancel-revoke", func(t *testing.T, _ string) {
			if n, err := g.Revoke("", "bob", "compromised"); err != nil || n != 1 {
				t.Fatalf("Revoke = %d, %v", n, err)
			}
			t.Cleanup(func() { g.Unrevoke("", "bob") })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			marker := "end_cancel_" + c.name
			user, password := "alice", alicePassword
			if c.name == "revoked" {
				user, password = "bob", bobPassword
			}
			conn := connectRaw(t, g.dsn(user, password, "application_name="+c.app))
			done := make(chan error, 1)
			go func() { done <- execErr(ctx, conn, "select pg_sleep(30) as "+marker) }()
			waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 1 })
			c.end(t, marker)
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the statement of an ended session succeeded")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the client never heard that its session ended")
			}
			waitUntilGone(t, marker)
		})
	}
	t.Run("client vanished", func(t *testing.T) {
		const marker = "end_cancel_vanished"
		_, nc := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
		if _, err := nc.Write(rlEncode(t, &pgproto3.Query{String: "select pg_sleep(30) as " + marker})); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 1 })
		nc.Close()
		waitUntilGone(t, marker)
	})
}

// waitUntilGone waits for the statement marked marker to stop running on
// the server, for at most 10 s: a third of the pg_sleep the tests run.
func waitUntilGone(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for rlUpstreamRunning(t, marker) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the statement %s still runs on the server after its session ended", marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A client's Terminate message after a statement is the exception: on a
// direct connection PostgreSQL runs what was sent before it, and through
// the gateway too. The statement sleeps, then writes: its row must appear.
func TestTerminateMessageLetsTheStatementFinish(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	admin := connectRaw(t, g.dsn("alice", alicePassword))
	if err := execErr(ctx, admin, "drop table if exists end_cancel_goodbye; create table end_cancel_goodbye(id int)"); err != nil {
		t.Fatal(err)
	}
	_, nc := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	if _, err := nc.Write(rlEncode(t, &pgproto3.Query{String: "insert into end_cancel_goodbye select 1 from pg_sleep(1)"},
		&pgproto3.Terminate{})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		res := admin.Exec(ctx, "select count(*) from end_cancel_goodbye")
		rows, err := res.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return string(rows[0].Rows[0][0]) == "1"
	})
}
