package policy

import (
	"context"
	"fmt"

	"github.com/pgwarden/pgwarden/session"
)

// Policy decides about every statement a client sends. See the package
// documentation for the contract.
type Policy interface {
	Decide(ctx context.Context, q *Query) (Decision, error)
}

// Func adapts a function to a Policy.
type Func func(ctx context.Context, q *Query) (Decision, error)

// Decide calls f(ctx, q).
func (f Func) Decide(ctx context.Context, q *Query) (Decision, error) { return f(ctx, q) }

// Query is a statement to decide about, with its context.
type Query struct {
	// Session is the session the statement arrived on (read-only).
	Session *session.Info
	// Protocol is the path the statement took.
	Protocol session.Protocol
	// SQL is the statement text exactly as the client sent it: for the
	// simple protocol, possibly several statements separated by semicolons.
	// Empty for a function call.
	SQL string
	// StatementName is the prepared statement's name (extended protocol).
	StatementName string
	// FunctionOID is the function called (function-call protocol).
	FunctionOID uint32
}

// Verdict is what happens to a statement. Verdicts are ordered from the
// most to the least permissive, so that combining decisions is taking the
// largest.
type Verdict int

const (
	// Allow forwards the statement.
	Allow Verdict = iota
	// Block refuses the statement with ERROR 42501; the session stays
	// usable, and an open transaction is aborted.
	Block
)

// String returns "allow" or "block".
func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Block:
		return "block"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Decision is a policy's answer about a statement.
type Decision struct {
	Verdict Verdict
	// Rule names the rule that decided; the client sees it when refused.
	Rule string
	// Reason says why, in words the user will read (it is sent to the
	// client in the error's detail). Never put a secret in it.
	Reason string
}

// AllowAll returns a Policy that allows every statement, under the rule
// "allow-all". Choosing it is choosing no statement control at all.
func AllowAll() Policy {
	return Func(func(context.Context, *Query) (Decision, error) {
		return Decision{Verdict: Allow, Rule: "allow-all"}, nil
	})
}

// BlockAll returns a Policy that refuses every statement under the rule
// "block-all", telling the client reason.
func BlockAll(reason string) Policy {
	return Func(func(context.Context, *Query) (Decision, error) {
		return Decision{Verdict: Block, Rule: "block-all", Reason: reason}, nil
	})
}
