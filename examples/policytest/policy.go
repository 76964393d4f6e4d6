package policyexample

import (
	"time"

	"github.com/pgwarden/pgwarden/policy"
)

// Policy returns the example policy. Its rules are combined
// strictest-wins, then the default allows.
func Policy() policy.Policy {
	ciWindow, err := policy.ParseWindow("01:00-02:00 UTC")
	if err != nil {
		panic(err) // a constant; cannot fail
	}
	return policy.FirstMatch(
		policy.Strictest(
			policy.Named("analysts-read-only", policy.When(policy.InGroup("analysts"), policy.ReadOnly{})),
			policy.BlockTables("public.secrets"),
			policy.Rule{Name: "ci-window",
				When:    policy.All(policy.Subject("ci-bot"), policy.Not(policy.During(ciWindow))),
				Verdict: policy.Block, Reason: "The CI job runs between 01:00 and 02:00 UTC."},
			policy.Rule{Name: "no-unbounded-writes", When: policy.AllRows(),
				Verdict: policy.Block, Reason: "UPDATE and DELETE need a WHERE clause."},
			policy.Rule{Name: "admin-functions", When: policy.Calls("pg_terminate_backend", "pg_reload_conf", "pg_read_file"),
				Verdict: policy.Terminate, Suspend: time.Hour,
				Reason: "Server administration through the gateway is a sign of a compromised agent."},
		),
		policy.Default("default", policy.Allow, ""),
	)
}
