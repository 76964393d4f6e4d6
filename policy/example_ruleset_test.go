package policy_test

import (
	"fmt"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/policy/policytest"
	"github.com/pgwarden/pgwarden/session"
)

// A RuleSet is the declarative form of a policy (the example gateway's
// YAML policy section): rules with conditions on who, when and what,
// combined strictest-wins, and a default. Policy checks it and reports
// every problem at once.
func ExampleRuleSet() {
	rs := policy.RuleSet{
		Default: "allow",
		Rules: []policy.RuleSpec{
			{Name: "analysts-read-only", Groups: []string{"analysts"}, ReadOnly: true},
			{Name: "no-secrets", Tables: []string{"public.secrets"}, Reason: "Secrets stay in the vault."},
			{Name: "kill-switch", Functions: []string{"dangerous"}, Verdict: "terminate", Suspend: "1h"},
		},
	}
	p, err := rs.Policy()
	if err != nil {
		fmt.Println(err)
		return
	}
	analyst := policytest.New(exampleT, p).As(session.Identity{Subject: "alice", Groups: []string{"analysts"}})
	for _, sql := range []string{
		"SELECT * FROM orders",
		"DELETE FROM orders WHERE id = 1",
		"SELECT * FROM secrets",
		"SELECT pg_read_file('/etc/passwd')",
	} {
		d := analyst.Decide(sql)
		fmt.Printf("%v by %s: %s\n", d.Verdict, d.Rule, sql)
	}

	bad := policy.RuleSet{Default: "maybe", Rules: []policy.RuleSpec{{Name: "x", Kinds: []string{"selekt"}}}}
	_, err = bad.Policy()
	fmt.Println(err)
	// Output:
	// allow by default: SELECT * FROM orders
	// block by analysts-read-only: DELETE FROM orders WHERE id = 1
	// block by no-secrets: SELECT * FROM secrets
	// terminate by kill-switch: SELECT pg_read_file('/etc/passwd')
	// default: must be allow or block; rules[0].kinds[0]: unknown statement kind "selekt"
}
