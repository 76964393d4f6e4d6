package policy_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// A policy is any function from a query to a decision. (Matching SQL text
// like this is for illustration only: it is trivially evaded.)
func ExampleFunc() {
	noFastPath := policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
		if q.Protocol == session.ProtocolFunctionCall {
			return policy.Decision{Verdict: policy.Block, Rule: "no-fastpath",
				Reason: "Use SQL instead of the fast-path function interface."}, nil
		}
		if q.Session.Identity.InGroup("readers") && !strings.HasPrefix(strings.ToLower(q.SQL), "select") {
			return policy.Decision{Verdict: policy.Block, Rule: "readers-select-only"}, nil
		}
		return policy.Decision{Verdict: policy.Allow, Rule: "default"}, nil
	})
	reader := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"readers"}}}
	for _, q := range []*policy.Query{
		{Session: reader, Protocol: session.ProtocolSimple, SQL: "SELECT 1"},
		{Session: reader, Protocol: session.ProtocolSimple, SQL: "DELETE FROM orders"},
		{Session: reader, Protocol: session.ProtocolFunctionCall, FunctionOID: 764},
	} {
		d, _ := noFastPath.Decide(context.Background(), q)
		fmt.Println(d.Verdict, d.Rule)
	}
	// Output:
	// allow default
	// block readers-select-only
	// block no-fastpath
}
