package policytest_test

import (
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// A policy's unit test: in a test function, pass its t (exampleT stands
// in for it here, and prints what the test would report). Expect checks
// the verdict and the rule; a session remembers what the gateway does
// between statements (here a PREPARE).
func ExampleNew() {
	p := policy.FirstMatch(
		policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
		policy.BlockTables("public.secrets"),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	s.Expect("SELECT * FROM orders", policy.Allow, "default")
	s.Expect("SELECT * FROM secrets", policy.Block, "block-tables")

	analyst := s.As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	analyst.Expect("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", policy.Block, "read-only")
	analyst.Expect("PREPARE p AS SELECT * FROM orders", policy.Allow, "default")
	analyst.Expect("EXECUTE p", policy.Allow, "default")
	fmt.Println("read-only session:", analyst.Setup().ReadOnly)

	// A failing expectation, as the test would report it.
	analyst.Expect("TRUNCATE orders", policy.Allow, "")
	// Output:
	// read-only session: true
	// FAIL: policytest: "TRUNCATE orders": got block by rule "read-only" (This session is read-only: TRUNCATE TABLE changes data.); want allow by rule "(any)"
}

// At sets the time statements arrive: rules on time windows are tested
// at the edges.
func ExampleSession_At() {
	window, err := policy.ParseWindow("01:00-02:00 UTC")
	if err != nil {
		panic(err)
	}
	p := policy.FirstMatch(
		policy.Rule{Name: "ci-window", When: policy.All(policy.Subject("ci-bot"), policy.Not(policy.During(window))),
			Verdict: policy.Block, Reason: "The CI job runs between 01:00 and 02:00 UTC."},
		policy.Default("default", policy.Allow, ""),
	)
	ci := policytest.New(exampleT, p).As(session.Identity{Subject: "ci-bot"})
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{59 * time.Minute, time.Hour, 2*time.Hour - time.Second, 2 * time.Hour} {
		d := ci.At(day.Add(at)).Decide("UPDATE jobs SET done = true WHERE id = 7")
		fmt.Println(day.Add(at).Format("15:04:05"), d.Verdict)
	}
	// Output:
	// 00:59:00 block
	// 01:00:00 allow
	// 01:59:59 allow
	// 02:00:00 block
}

// Query shows what the gateway puts to the policy for a statement: what
// a policy of your own decides on.
func ExampleSession_Query() {
	s := policytest.New(exampleT, policy.AllowAll())
	q := s.Query("WITH gone AS (DELETE FROM orders WHERE paid RETURNING customer_id) " +
		"SELECT c.email FROM customers c JOIN gone USING (customer_id); SET search_path = shop, public")
	for _, st := range q.Statements {
		fmt.Printf("%s (%s): writes %v, contains %v, reads %v, writes to %v, settings %d\n",
			st.Command, st.Kind, st.Writes, st.Contains, st.Reads, st.Written, len(st.Settings))
	}
	fmt.Println("search_path:", q.SearchPath)
	// Output:
	// SELECT (select): writes true, contains [delete], reads [customers], writes to [orders], settings 0
	// SET (set): writes false, contains [], reads [], writes to [], settings 1
	// search_path: [public shop]
}
