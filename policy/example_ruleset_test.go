package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// A RuleSet is the declarative form of a policy (the example gateway's
// YAML policy section): rules with conditions on who, when and what,
// combined strictest-wins, and a default.
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
	analyst := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}}
	for _, st := range []*policy.Statement{
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Schema: "public", Name: "orders"}}},
		{Kind: policy.KindDelete, Command: "DELETE", Writes: true, Written: []policy.Relation{{Name: "orders"}}},
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "secrets"}}},
		{Kind: policy.KindSelect, Command: "SELECT", Functions: []policy.Function{{Name: "pg_read_file", Builtin: true}}},
	} {
		q := &policy.Query{Session: analyst, Time: time.Now(), Statements: []*policy.Statement{st}, SearchPath: []string{"public"}}
		d, _ := p.Decide(context.Background(), q)
		fmt.Printf("%s: %s by %s\n", st.Command, d.Verdict, d.Rule)
	}

	bad := policy.RuleSet{Default: "maybe", Rules: []policy.RuleSpec{{Name: "x", Kinds: []string{"selekt"}}}}
	_, err = bad.Policy()
	fmt.Println(err)
	// Output:
	// SELECT: allow by default
	// DELETE: block by analysts-read-only
	// SELECT: block by no-secrets
	// SELECT: terminate by kill-switch
	// default: must be allow or block; rules[0].kinds[0]: unknown statement kind "selekt"
}
