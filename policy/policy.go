package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Policy decides about every statement a client sends. See the package
// documentation for the contract.
type Policy interface {
	// Decide returns the decision about q: Abstain (the zero Decision)
	// when the policy has no opinion.
	Decide(ctx context.Context, q *Query) (Decision, error)
}

// Func adapts a function to a Policy.
type Func func(ctx context.Context, q *Query) (Decision, error)

// Decide calls f(ctx, q).
func (f Func) Decide(ctx context.Context, q *Query) (Decision, error) { return f(ctx, q) }

// Stage is the point of the protocol at which a statement is judged.
type Stage string

const (
	// StageQuery: a simple-protocol Query message, judged before any of its
	// statements reaches the server.
	StageQuery Stage = "query"
	// StageParse: an extended-protocol Parse, judged once per prepared
	// statement, without parameters.
	StageParse Stage = "parse"
	// StageBind: a Bind of a prepared statement, judged again with the
	// parameter values (Query.Params).
	StageBind Stage = "bind"
	// StageFunctionCall: a FunctionCall message (Query.FunctionOID).
	StageFunctionCall Stage = "function-call"
)

// Query is a statement to decide about, with its context. The gateway
// builds one per decision; a policy must treat it and everything it
// references as read-only and valid only during Decide.
type Query struct {
	// Session is the session the statement arrived on.
	Session *session.Info
	// Protocol is the path the statement took.
	Protocol session.Protocol
	// Stage is the protocol step being judged.
	Stage Stage
	// Time is when the statement arrived; conditions on time use it.
	Time time.Time
	// SQL is the text exactly as the client sent it: for the simple
	// protocol, possibly several statements. Empty for a function call.
	SQL string
	// Statements are the analysed statements of SQL, in order; one
	// KindFunctionCall statement for a function call. Empty for an empty
	// query.
	Statements []*Statement
	// StatementName is the prepared statement's name (extended protocol).
	StatementName string
	// Portal is the portal a Bind creates.
	Portal string
	// Params are a Bind's parameter values; nil at other stages.
	Params []Param
	// FunctionOID is the function called (function-call protocol).
	FunctionOID uint32
	// SearchPath lists, in order, the schemas an unqualified relation name
	// may resolve to in this session: the existing schemas of the
	// session's search_path when it started, and every schema a SET
	// search_path named since (a superset when the path changed; pg_temp,
	// which holds only the session's own tables, is left out). Nil means
	// unknown (a computed set_config), and any schema is possible. Use
	// Schemas to resolve a relation.
	SearchPath []string
}

// Param is one bind parameter value.
type Param struct {
	// Value is the value in the format the client chose; nil for NULL.
	Value []byte
	// Binary is set for the binary format, clear for text.
	Binary bool
	// Type is the parameter's type OID when the client declared it in the
	// Parse, 0 otherwise.
	Type uint32
}

// Schemas returns the schemas r may resolve to in this session: its own
// schema when it is qualified; otherwise pg_catalog for a catalog
// relation (unless the search_path lists pg_catalog later, when the
// schemas before it count too), and every schema of SearchPath for the
// others (no one but a superuser creates relations in pg_catalog). Nil
// means any schema is possible.
func (q *Query) Schemas(r Relation) []string {
	if r.Schema != "" {
		return []string{r.Schema}
	}
	if q.SearchPath == nil {
		return nil
	}
	at := slices.Index(q.SearchPath, "pg_catalog")
	if r.Catalog {
		if at < 0 {
			return []string{"pg_catalog"}
		}
		return q.SearchPath[:at+1]
	}
	if at < 0 {
		return q.SearchPath
	}
	return slices.Delete(slices.Clone(q.SearchPath), at, at+1)
}

// FunctionSchemas returns the schemas the call f may resolve to in this
// session: its own schema when qualified; otherwise pg_catalog first for
// a built-in name (the server looks there first unless the search_path
// lists it later), then every schema of SearchPath (a function of the same
// name there may take other argument types and win). Nil means any schema
// is possible.
func (q *Query) FunctionSchemas(f Function) []string {
	if f.Schema != "" {
		return []string{f.Schema}
	}
	if q.SearchPath == nil {
		return nil
	}
	if f.Builtin && !slices.Contains(q.SearchPath, "pg_catalog") {
		return append([]string{"pg_catalog"}, q.SearchPath...)
	}
	return q.SearchPath
}

// Verdict is what happens to a statement. Verdicts are ordered from no
// opinion through the most permissive to the strictest, so that combining
// decisions is taking the largest.
type Verdict int

const (
	// Abstain is no decision: the rule does not apply. It is the zero
	// Verdict; a top-level policy that abstains refuses the statement (the
	// gateway fails closed).
	Abstain Verdict = iota
	// Allow forwards the statement.
	Allow
	// Mask asks that the statement be forwarded with the result columns
	// named in Decision.Masks masked. The proxy does not honour it: it
	// refuses the statement, because it masks only the columns declared
	// on it (proxy.Proxy.Masks, with package mask), for which it reads the
	// catalog at session start and follows values through every query.
	Mask
	// Approve holds the statement until a person approves it.
	Approve
	// Block refuses the statement with ERROR 42501; the session stays
	// usable, and an open transaction is aborted.
	Block
	// Terminate refuses the statement and ends the session with FATAL
	// 42501; with Decision.Suspend, the identity's whole delegation chain
	// cannot open a session for that long.
	Terminate
)

var verdictNames = [...]string{Abstain: "abstain", Allow: "allow", Mask: "mask", Approve: "approve", Block: "block", Terminate: "terminate"}

// String returns the verdict's lower-case name.
func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// ParseVerdict returns the verdict named s ("allow", "mask", "approve",
// "block", "terminate"), and whether there is one.
func ParseVerdict(s string) (Verdict, bool) {
	i := slices.Index(verdictNames[:], s)
	if i <= int(Abstain) {
		return Abstain, false
	}
	return Verdict(i), true
}

// Decision is a policy's answer about a statement.
type Decision struct {
	// Verdict is what happens to the statement.
	Verdict Verdict
	// Rule names the rule that decided; the client sees it when refused.
	Rule string
	// Reason says why, in words the user will read (it is sent to the
	// client in the error's detail). Never put a secret in it.
	Reason string
	// Masks are the columns to mask, for a Mask verdict (which the proxy
	// refuses; see Mask).
	Masks []ColumnMask
	// Approval says how an Approve verdict is approved; nil is the zero
	// ApprovalSpec (hold, default timeout).
	Approval *ApprovalSpec
	// Suspend, for a Terminate verdict, is how long the identity's
	// delegation chain (the subject and every actor) may not open a
	// session; zero suspends nobody.
	Suspend time.Duration
}

// ColumnMask asks that the values of a column be masked.
type ColumnMask struct {
	// Column is schema.table.column.
	Column string
	// Masker names the masker to apply (see package mask).
	Masker string
}

// AllowAll returns a Policy that allows every statement, function calls
// included, under the rule "allow-all". Choosing it is choosing no
// statement control at all.
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
