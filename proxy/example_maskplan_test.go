package proxy_test

import (
	"fmt"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

// PlanMasks shows, without a database, how the gateway would mask or
// refuse a statement: a test of the masking rules.
func ExamplePlanMasks() {
	rules := mask.Rules{
		{Column: "public.users.email", Masker: mask.Email(true), UnlessGroups: []string{"support"}},
		{Column: "public.users.ssn", Masker: mask.Redact()},
	}
	for _, sql := range []string{
		"SELECT id, email AS contact, upper(ssn) FROM users",
		"SELECT id FROM users WHERE email LIKE 'a%'",
	} {
		plans, err := proxy.PlanMasks(rules, []string{"analysts"}, sql)
		if err != nil {
			fmt.Println(err)
			continue
		}
		for _, p := range plans {
			if p.Refused != nil {
				fmt.Printf("refused by %s\n", p.Refused.Rule)
				continue
			}
			for _, c := range p.Columns {
				fmt.Printf("%s: %q\n", c.Name, c.Masker)
			}
		}
	}
	// Output:
	// id: ""
	// contact: "email(keep_domain)"
	// upper: "redact"
	// refused by mask-inference
}
