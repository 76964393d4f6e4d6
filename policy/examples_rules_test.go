package policy_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// Strictest asks every rule, so that no rule can be overridden by another:
// the strictest verdict wins, and the masks of every Mask decision are
// merged. (The statements are built by hand here; the gateway's analyser
// builds them from the SQL text.)
func ExampleStrictest() {
	p := policy.Strictest(
		policy.Default("default", policy.Allow, ""),
		policy.Rule{Name: "mask-email", When: policy.Touches("public.users"), Verdict: policy.Mask,
			Masks: []policy.ColumnMask{{Column: "public.users.email", Masker: "email"}}},
		policy.Rule{Name: "mask-phone", When: policy.Touches("public.users"), Verdict: policy.Mask,
			Masks: []policy.ColumnMask{{Column: "public.users.phone", Masker: "redact"}}},
		policy.BlockTables("secret.*"),
	)
	for _, st := range []*policy.Statement{
		// SELECT * FROM orders
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "orders"}}},
		// SELECT * FROM users
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "users"}}},
		// SELECT * FROM users JOIN secret.keys USING (id)
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "users"}, {Schema: "secret", Name: "keys"}}},
	} {
		q := &policy.Query{Statements: []*policy.Statement{st}, SearchPath: []string{"public"}}
		d, _ := p.Decide(context.Background(), q)
		var masked []string
		for _, m := range d.Masks {
			masked = append(masked, m.Column)
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintln(d.Verdict, d.Rule, masked, d.Reason)))
	}
	// Output:
	// allow default []
	// mask mask-email [public.users.email public.users.phone]
	// block block-tables [] Access to secret.keys is not allowed.
}

// ReadOnly refuses every change, and asks that the session start
// read-only on the server too. Restricted with When, it applies to one
// group only.
func ExampleReadOnly() {
	p := policy.Strictest(
		policy.Default("default", policy.Allow, ""),
		policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
	)
	analyst := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}}
	admin := &session.Info{Identity: session.Identity{Subject: "root", Groups: []string{"dba"}}}
	fmt.Println("analyst starts read-only:", policy.SetupFor(p, &policy.Query{Session: analyst}).ReadOnly)
	fmt.Println("admin starts read-only:", policy.SetupFor(p, &policy.Query{Session: admin}).ReadOnly)

	for _, st := range []*policy.Statement{
		// SELECT * FROM orders
		{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "orders"}}},
		// DELETE FROM orders
		{Kind: policy.KindDelete, Command: "DELETE", Writes: true, AllRows: true, Written: []policy.Relation{{Name: "orders"}}},
		// BEGIN READ WRITE
		{Kind: policy.KindTransaction, Command: "BEGIN", Settings: []policy.Setting{
			{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "BEGIN"}}},
	} {
		for _, s := range []*session.Info{analyst, admin} {
			q := &policy.Query{Session: s, Statements: []*policy.Statement{st}, SearchPath: []string{"public"}}
			d, _ := p.Decide(context.Background(), q)
			line := fmt.Sprintf("%s by %s: %v %s %s", st.Command, s.Identity.Subject, d.Verdict, d.Rule, d.Reason)
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// analyst starts read-only: true
	// admin starts read-only: false
	// SELECT by alice: allow default
	// SELECT by root: allow default
	// DELETE by alice: block read-only This session is read-only: DELETE changes data.
	// DELETE by root: allow default
	// BEGIN by alice: block read-only This session is read-only: BEGIN of transaction_read_only is not allowed.
	// BEGIN by root: allow default
}

// A Rule decides on a condition, here a time window: writes at night,
// Paris time, wait for a person's approval.
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
	update := &policy.Statement{Kind: policy.KindUpdate, Command: "UPDATE", Writes: true,
		Written: []policy.Relation{{Name: "orders"}}}
	sel := &policy.Statement{Kind: policy.KindSelect, Command: "SELECT", Reads: []policy.Relation{{Name: "orders"}}}
	for _, c := range []struct {
		at string
		st *policy.Statement
	}{
		{"2025-07-15T21:30:00Z", update}, // 23:30 in Paris (CEST)
		{"2025-07-15T21:30:00Z", sel},
		{"2025-07-15T10:00:00Z", update}, // 12:00 in Paris
		{"2025-01-15T05:30:00Z", update}, // 06:30 in Paris (CET)
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		q := &policy.Query{Time: at, Statements: []*policy.Statement{c.st}}
		d, _ := p.Decide(context.Background(), q)
		fmt.Printf("%s at %s: %v %s\n", c.st.Command, at.In(night.Location).Format("15:04"), d.Verdict, d.Rule)
	}
	fmt.Println(night)
	// Output:
	// UPDATE at 23:30: approve night-writes
	// SELECT at 23:30: allow default
	// UPDATE at 12:00: allow default
	// UPDATE at 06:30: allow default
	// 22:00-06:00 Europe/Paris
}
