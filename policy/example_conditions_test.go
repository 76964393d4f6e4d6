package policy_test

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must load on hosts without zoneinfo

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// A Rule decides on a condition, and abstains otherwise. Here a time
// window: writes at night, Paris time, wait for a person's approval.
func ExampleRule() {
	night, err := policy.ParseWindow("22:00-06:00 Europe/Paris")
	if err != nil {
		panic(err)
	}
	p := policy.FirstMatch(
		policy.Rule{Name: "night-writes", When: policy.All(policy.Writes(), policy.During(night)),
			Verdict: policy.Approve, Reason: "Writes between 22:00 and 06:00 need an approval."},
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, c := range []struct{ at, sql string }{
		{"2025-07-15T21:30:00Z", "UPDATE orders SET paid = true WHERE id = 7"}, // 23:30 in Paris (CEST)
		{"2025-07-15T21:30:00Z", "SELECT * FROM orders"},
		{"2025-07-15T10:00:00Z", "UPDATE orders SET paid = true WHERE id = 7"}, // 12:00 in Paris
		{"2025-01-15T05:30:00Z", "UPDATE orders SET paid = true WHERE id = 7"}, // 06:30 in Paris (CET)
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		d := s.At(at).Decide(c.sql)
		fmt.Printf("%s %-7v %s\n", at.In(night.Location).Format("15:04"), d.Verdict, c.sql)
	}
	fmt.Println(night)
	// Output:
	// 23:30 approve UPDATE orders SET paid = true WHERE id = 7
	// 23:30 allow   SELECT * FROM orders
	// 12:00 allow   UPDATE orders SET paid = true WHERE id = 7
	// 06:30 allow   UPDATE orders SET paid = true WHERE id = 7
	// 22:00-06:00 Europe/Paris
}

// A Terminate verdict refuses the statement and ends the session (FATAL
// 42501); with Suspend, the identity's whole delegation chain (the
// person, and every agent in it) cannot open a session for that long.
// Here an agent that reaches for server administration is cut off.
func ExampleRule_terminate() {
	p := policy.FirstMatch(
		policy.Rule{Name: "agent-admin-functions",
			When:    policy.All(policy.ChainDepth(1, -1), policy.Calls("pg_terminate_backend", "pg_reload_conf", "pg_read_file")),
			Verdict: policy.Terminate, Suspend: time.Hour,
			Reason: "Server administration by an agent is a sign that it was compromised."},
		policy.Default("default", policy.Allow, ""),
	)
	agent := policytest.New(exampleT, p).As(session.Identity{Subject: "alice",
		Chain: []session.Actor{{Subject: "ci-job"}, {Subject: "agent"}}})
	d := agent.Decide("SELECT pg_terminate_backend(pid) FROM pg_stat_activity")
	fmt.Println(d.Verdict, d.Rule, d.Suspend)
	// Output: terminate agent-admin-functions 1h0m0s
}

// Involves holds when a subject is anywhere in the session's identity:
// the person, or any agent of its delegation chain. Revoking or
// restricting an agent restricts what it started too.
func ExampleInvolves() {
	p := policy.FirstMatch(
		policy.Rule{Name: "agent-x-quarantined", When: policy.Involves("agent-x"), Verdict: policy.Block,
			Reason: "agent-x is under review."},
		policy.Default("default", policy.Allow, ""),
	)
	for _, id := range []session.Identity{
		{Subject: "alice"},
		{Subject: "alice", Chain: []session.Actor{{Subject: "agent-x"}}},
		{Subject: "alice", Chain: []session.Actor{{Subject: "agent-x"}, {Subject: "sub-agent"}}},
	} {
		d := policytest.New(exampleT, p).As(id).Decide("SELECT 1")
		fmt.Println(id.Depth(), id.Presenter().Subject, d.Verdict)
	}
	// Output:
	// 0 alice allow
	// 1 agent-x block
	// 2 sub-agent block
}

// AllRows holds for an UPDATE or DELETE without WHERE, also in a CTE or
// run by EXPLAIN ANALYZE.
func ExampleAllRows() {
	p := policy.FirstMatch(
		policy.Rule{Name: "no-unbounded-writes", When: policy.AllRows(), Verdict: policy.Block,
			Reason: "UPDATE and DELETE need a WHERE clause."},
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"DELETE FROM orders WHERE id = 1",
		"DELETE FROM orders",
		"UPDATE orders SET paid = true",
		"WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d",
		"EXPLAIN ANALYZE UPDATE orders SET paid = true",
		"EXPLAIN UPDATE orders SET paid = true", // explained, not run
	} {
		fmt.Printf("%-5v %s\n", s.Decide(sql).Verdict, sql)
	}
	// Output:
	// allow DELETE FROM orders WHERE id = 1
	// block DELETE FROM orders
	// block UPDATE orders SET paid = true
	// block WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d
	// block EXPLAIN ANALYZE UPDATE orders SET paid = true
	// allow EXPLAIN UPDATE orders SET paid = true
}

// Touches and Writes together: writes to the payroll schema need a
// person's approval; reads do not.
func ExampleTouches() {
	p := policy.Strictest(
		policy.Rule{Name: "payroll-writes", When: policy.All(policy.Touches("payroll.*"), policy.Writes()),
			Verdict: policy.Approve},
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SELECT * FROM payroll.salaries",
		"UPDATE payroll.salaries SET amount = amount * 2 WHERE employee = 'bob'",
		"INSERT INTO audit.copy SELECT * FROM payroll.salaries", // reads payroll, writes elsewhere
	} {
		fmt.Printf("%-7v %s\n", s.Decide(sql).Verdict, sql)
	}
	// Output:
	// allow   SELECT * FROM payroll.salaries
	// approve UPDATE payroll.salaries SET amount = amount * 2 WHERE employee = 'bob'
	// approve INSERT INTO audit.copy SELECT * FROM payroll.salaries
}

// ConditionFunc makes a condition of any function of the query: here,
// on the identity's e-mail domain (as the identity provider vouches for
// it). Conditions are asked from many sessions at once and must not
// change the query.
func ExampleConditionFunc() {
	contractor := policy.ConditionFunc(func(q *policy.Query) bool {
		return strings.HasSuffix(q.Session.Identity.Email, "@contractors.example.com")
	})
	p := policy.FirstMatch(
		policy.Rule{Name: "contractors-no-exports", When: policy.All(contractor, policy.IsKind(policy.KindCopy)),
			Verdict: policy.Block, Reason: "Contractors do not export data."},
		policy.Default("default", policy.Allow, ""),
	)
	for _, email := range []string{"alice@example.com", "carol@contractors.example.com"} {
		s := policytest.New(exampleT, p).As(session.Identity{Subject: email, Email: email})
		fmt.Println(email, s.Decide("COPY orders TO STDOUT").Verdict)
	}
	// Output:
	// alice@example.com allow
	// carol@contractors.example.com block
}
