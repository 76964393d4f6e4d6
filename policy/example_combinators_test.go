package policy_test

import (
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// FirstMatch asks its policies in order, and the first that does not
// abstain decides (firewall style): an exception goes before the rule it
// is an exception to.
func ExampleFirstMatch() {
	p := policy.FirstMatch(
		policy.When(policy.InGroup("dba"), policy.AllowAll()), // DBAs may do anything
		policy.BlockKinds(policy.KindDDL, policy.KindDCL),     // nobody else changes the schema or privileges
		policy.Default("default", policy.Allow, ""),
	)
	dba := policytest.New(exampleT, p).As(session.Identity{Subject: "root", Groups: []string{"dba"}})
	dev := policytest.New(exampleT, p).As(session.Identity{Subject: "bob", Groups: []string{"dev"}})
	for _, sql := range []string{"ALTER TABLE orders ADD COLUMN note text", "GRANT SELECT ON orders TO PUBLIC", "SELECT 1"} {
		fmt.Printf("%-40s dba: %-5v dev: %v\n", sql, dba.Decide(sql).Verdict, dev.Decide(sql).Verdict)
	}
	// Output:
	// ALTER TABLE orders ADD COLUMN note text  dba: allow dev: block
	// GRANT SELECT ON orders TO PUBLIC         dba: allow dev: block
	// SELECT 1                                 dba: allow dev: allow
}

// Strictest asks every policy, so that no rule can be overridden by
// another: the strictest verdict wins, whatever the order, and the masks
// of every Mask decision are merged.
func ExampleStrictest() {
	p := policy.Strictest(
		policy.Default("default", policy.Allow, ""),
		policy.Rule{Name: "mask-email", When: policy.Touches("public.users"), Verdict: policy.Mask,
			Masks: []policy.ColumnMask{{Column: "public.users.email", Masker: "email"}}},
		policy.Rule{Name: "mask-phone", When: policy.Touches("public.users"), Verdict: policy.Mask,
			Masks: []policy.ColumnMask{{Column: "public.users.phone", Masker: "redact"}}},
		policy.BlockTables("secret.*"),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{
		"SELECT * FROM orders",
		"SELECT * FROM users",
		"SELECT * FROM users JOIN secret.keys USING (id)",
	} {
		d := s.Decide(sql)
		var masked []string
		for _, m := range d.Masks {
			masked = append(masked, m.Column)
		}
		fmt.Printf("%v by %s %v: %s\n", d.Verdict, d.Rule, masked, sql)
	}
	// Output:
	// allow by default []: SELECT * FROM orders
	// mask by mask-email [public.users.email public.users.phone]: SELECT * FROM users
	// block by block-tables []: SELECT * FROM users JOIN secret.keys USING (id)
}

// Default decides for every statement the rules before it left alone:
// the last entry of a FirstMatch, or the floor of a Strictest. It leaves
// out fast-path function calls, which stay refused unless a rule names
// them. A Default that blocks makes the rules before it an allow-list.
func ExampleDefault() {
	p := policy.FirstMatch(
		policy.Rule{Name: "reads", When: policy.IsKind(policy.KindSelect, policy.KindShow), Verdict: policy.Allow},
		policy.Default("only-reads", policy.Block, "Only SELECT and SHOW are allowed here."),
	)
	s := policytest.New(exampleT, p)
	for _, sql := range []string{"SELECT * FROM orders", "SHOW work_mem", "VACUUM orders"} {
		d := s.Decide(sql)
		fmt.Printf("%-5v %-10s %s\n", d.Verdict, d.Rule, sql)
	}
	// Output:
	// allow reads      SELECT * FROM orders
	// allow reads      SHOW work_mem
	// block only-reads VACUUM orders
}

// When restricts a policy to the queries its condition holds for: here,
// sessions of agents (a delegation chain of at least one) are read-only
// and kept out of the pii schema. Conditions on the identity also decide
// the session's setup: an agent's session starts read-only on the server.
func ExampleWhen() {
	p := policy.FirstMatch(
		policy.When(policy.ChainDepth(1, -1), policy.Strictest(policy.ReadOnly{}, policy.BlockTables("pii.*"))),
		policy.Default("default", policy.Allow, ""),
	)
	alice := policytest.New(exampleT, p).As(session.Identity{Subject: "alice"})
	agent := policytest.New(exampleT, p).As(session.Identity{Subject: "alice", Chain: []session.Actor{{Subject: "agent"}}})
	for _, sql := range []string{"SELECT * FROM orders", "UPDATE orders SET note = 'x' WHERE id = 1", "SELECT * FROM pii.people"} {
		fmt.Printf("%-42s alice: %-5v agent: %v\n", sql, alice.Decide(sql).Verdict, agent.Decide(sql).Verdict)
	}
	fmt.Println("read-only sessions: alice", alice.Setup().ReadOnly, "agent", agent.Setup().ReadOnly)
	// Output:
	// SELECT * FROM orders                       alice: allow agent: allow
	// UPDATE orders SET note = 'x' WHERE id = 1  alice: allow agent: block
	// SELECT * FROM pii.people                   alice: allow agent: block
	// read-only sessions: alice false agent true
}

// Named gives the decisions of a policy a name of its own, for the
// client's error and the recordings.
func ExampleNamed() {
	p := policy.FirstMatch(
		policy.Named("analysts-read-only", policy.When(policy.InGroup("analysts"), policy.ReadOnly{})),
		policy.Default("default", policy.Allow, ""),
	)
	s := policytest.New(exampleT, p).As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	d := s.Decide("DELETE FROM orders")
	fmt.Println(d.Verdict, d.Rule, strings.Contains(d.Reason, "read-only"))
	// Output: block analysts-read-only true
}
