package main

import (
	"time"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
)

// The rules' names, as clients, approvers and the recording see them.
const (
	ruleApproval = "orders-writes-need-approval"
	ruleReadOnly = "agents-read-only"
	ruleMask     = "customer-email"
	ordersTable  = "public.orders"
)

// approvalTimeout is how long a held write waits for a person.
const approvalTimeout = time.Minute

// agentPolicy judges every statement of the agents' sessions:
//
//   - a write that only inserts into or updates (with a WHERE clause)
//     public.orders is held until a member of approverGroup approves it;
//   - anything else that could change something is refused (read only);
//   - the functions that escape a gateway's control are refused;
//   - the rest (reads) is allowed.
//
// The rules are combined strictest-wins, so their order does not matter
// and no rule can lift another's refusal.
//
// policy.ReadOnly also starts sessions read-only on the server, which
// would make an approved write fail there. So the read-only rule here
// is ReadOnly's judgement on the parse tree alone (policy.Func hides its
// SessionSetup), and the server's second line of defence is the template
// role's grants: SELECT on both tables, INSERT and UPDATE on orders.
func agentPolicy() policy.Policy {
	writesOrders := policy.ConditionFunc(onlyWritesOrders)
	return policy.Strictest(
		policy.Rule{
			Name:    ruleApproval,
			When:    writesOrders,
			Verdict: policy.Approve,
			Reason:  "Agents change orders only with a person's approval.",
			Approval: &policy.ApprovalSpec{
				Mode:      policy.Hold,
				Timeout:   approvalTimeout,
				Approvers: []string{approverGroup},
			},
		},
		policy.When(policy.Not(writesOrders),
			policy.Named(ruleReadOnly, policy.Func(policy.ReadOnly{}.Decide))),
		policy.BlockFunctions(policy.DangerousFunctions()...),
		policy.Default("reads", policy.Allow, ""),
	)
}

// onlyWritesOrders holds for a query whose every statement is an INSERT
// into, or an UPDATE with a WHERE clause of, public.orders, and nothing
// more: no data-changing CTE, no row locks, no code whose effect only
// the server knows (functions of the database, DO, CALL), no other
// relation written.
func onlyWritesOrders(q *policy.Query) bool {
	if len(q.Statements) == 0 {
		return false
	}
	for _, st := range q.Statements {
		if st.Kind != policy.KindInsert && st.Kind != policy.KindUpdate {
			return false
		}
		if st.AllRows || st.Locks || len(st.Contains) > 0 || len(st.RunTime) > 0 || len(st.Written) == 0 {
			return false
		}
		for _, r := range st.Written {
			if !isOrders(q, r) {
				return false
			}
		}
	}
	return true
}

// isOrders reports whether r is public.orders in every schema the
// session may resolve it to (an unknown search path is not).
func isOrders(q *policy.Query, r policy.Relation) bool {
	schemas := q.Schemas(r)
	if len(schemas) == 0 {
		return false
	}
	for _, s := range schemas {
		if !policy.MatchRelation(ordersTable, s, r.Name) {
			return false
		}
	}
	return true
}

// agentMasks hides customers' e-mail addresses (the domain stays) from
// every session, whatever the statement; statements that would reveal
// them otherwise (filtering or sorting on them) are refused.
func agentMasks() mask.Rules {
	return mask.Rules{{Name: ruleMask, Column: "public.customers.email", Masker: mask.Email(true)}}
}
