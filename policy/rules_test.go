package policy_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris must load on hosts without zoneinfo

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// Helpers of this file are prefixed with rt (rules test) so that they do
// not collide with those of other test files of package policy_test.

// rtRel reads "schema.name" or "name" (unqualified) into a Relation.
func rtRel(s string) policy.Relation {
	if schema, name, ok := strings.Cut(s, "."); ok {
		return policy.Relation{Schema: schema, Name: name}
	}
	return policy.Relation{Name: s}
}

// rtCatalogRel is an unqualified name of one of PostgreSQL's own relations.
func rtCatalogRel(name string) policy.Relation { return policy.Relation{Name: name, Catalog: true} }

// rtSelect is a SELECT reading the relations named ("schema.name" or "name").
func rtSelect(rels ...string) *policy.Statement {
	st := &policy.Statement{Kind: policy.KindSelect, Command: "SELECT"}
	for _, r := range rels {
		st.Reads = append(st.Reads, rtRel(r))
	}
	return st
}

// rtReads is a SELECT reading exactly rels.
func rtReads(rels ...policy.Relation) *policy.Statement {
	return &policy.Statement{Kind: policy.KindSelect, Command: "SELECT", Reads: rels}
}

// rtDelete is a DELETE without WHERE of table.
func rtDelete(table string) *policy.Statement {
	return &policy.Statement{Kind: policy.KindDelete, Command: "DELETE", Writes: true, AllRows: true,
		Written: []policy.Relation{rtRel(table)}}
}

// rtInsert is an INSERT into table.
func rtInsert(table string) *policy.Statement {
	return &policy.Statement{Kind: policy.KindInsert, Command: "INSERT", Writes: true,
		Written: []policy.Relation{rtRel(table)}}
}

// rtExplainAnalyze is EXPLAIN ANALYZE of inner.
func rtExplainAnalyze(inner *policy.Statement) *policy.Statement {
	return &policy.Statement{Kind: policy.KindExplain, Command: "EXPLAIN", Executes: true,
		Writes: inner.Writes, Locks: inner.Locks, Inner: inner}
}

// rtPrepare is PREPARE p AS inner.
func rtPrepare(inner *policy.Statement) *policy.Statement {
	return &policy.Statement{Kind: policy.KindPrepare, Command: "PREPARE", Name: "p",
		Writes: inner.Writes, Locks: inner.Locks, AllRows: inner.AllRows, Inner: inner}
}

// rtExecute is EXECUTE p, with the statement the session prepared as p.
func rtExecute(inner *policy.Statement) *policy.Statement {
	return &policy.Statement{Kind: policy.KindExecute, Command: "EXECUTE", Name: "p",
		Writes: inner.Writes, Locks: inner.Locks, AllRows: inner.AllRows, Inner: inner}
}

// rtCall is a SELECT calling fs.
func rtCall(fs ...policy.Function) *policy.Statement {
	st := &policy.Statement{Kind: policy.KindSelect, Command: "SELECT", Functions: fs}
	for _, f := range fs {
		if !f.Builtin {
			st.RunTime = append(st.RunTime, "user function "+f.String())
		}
	}
	return st
}

// rtSet is a statement of kind set (SET, BEGIN ..., SET TRANSACTION)
// changing the given settings.
func rtSet(settings ...policy.Setting) *policy.Statement {
	return &policy.Statement{Kind: policy.KindSet, Command: "SET", Settings: settings}
}

// rtSetTo is SET name = value.
func rtSetTo(name, value string) policy.Setting {
	return policy.Setting{Name: name, Value: value, Known: true, Via: "SET"}
}

// rtFastPath is the statement the gateway builds for a FunctionCall message
// (as internal/judge.FunctionCall does).
func rtFastPath() *policy.Statement {
	return &policy.Statement{Kind: policy.KindFunctionCall, Command: "FUNCTION CALL",
		RunTime: []string{"fast-path call of function 764"}}
}

// rtQ is a query of an anonymous session with the given search path.
func rtQ(path []string, sts ...*policy.Statement) *policy.Query {
	return &policy.Query{
		Session:    &session.Info{Identity: session.Identity{Subject: "alice", Issuer: "static"}},
		Time:       rtTime("2025-01-15T12:00:00Z"),
		Statements: sts,
		SearchPath: path,
	}
}

// rtAs returns q with its session's identity set to id.
func rtAs(id session.Identity, q *policy.Query) *policy.Query {
	q.Session = &session.Info{Identity: id}
	return q
}

func rtTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func rtDecide(t *testing.T, p policy.Policy, q *policy.Query) policy.Decision {
	t.Helper()
	d, err := p.Decide(context.Background(), q)
	if err != nil {
		t.Fatalf("Decide: unexpected error %v", err)
	}
	return d
}

// rtReturns is a policy that always decides d, counting its calls.
func rtReturns(d policy.Decision, calls *int) policy.Policy {
	return policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
		if calls != nil {
			*calls++
		}
		return d, nil
	})
}

// rtFails is a policy that always fails with err.
func rtFails(err error, calls *int) policy.Policy {
	return policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
		if calls != nil {
			*calls++
		}
		return policy.Decision{Verdict: policy.Allow, Rule: "broken"}, err
	})
}

func rtDecision(v policy.Verdict, rule string) policy.Decision {
	return policy.Decision{Verdict: v, Rule: rule}
}

func rtMustWindow(t *testing.T, s string) policy.Window {
	t.Helper()
	w, err := policy.ParseWindow(s)
	if err != nil {
		t.Fatalf("ParseWindow(%q): %v", s, err)
	}
	return w
}

// ---------------------------------------------------------------------
// Verdicts and kinds

func TestVerdictOrder(t *testing.T) {
	order := []policy.Verdict{policy.Abstain, policy.Allow, policy.Mask, policy.Approve, policy.Block, policy.Terminate}
	if policy.Abstain != 0 {
		t.Errorf("Abstain = %d, want the zero Verdict", policy.Abstain)
	}
	for i := 1; i < len(order); i++ {
		if !(order[i-1] < order[i]) {
			t.Errorf("%v (%d) is not less strict than %v (%d)", order[i-1], order[i-1], order[i], order[i])
		}
	}
	var zero policy.Decision
	if zero.Verdict != policy.Abstain {
		t.Errorf("zero Decision has verdict %v, want abstain", zero.Verdict)
	}
}

func TestVerdictStringAndParse(t *testing.T) {
	tests := []struct {
		v    policy.Verdict
		name string
	}{
		{policy.Abstain, "abstain"},
		{policy.Allow, "allow"},
		{policy.Mask, "mask"},
		{policy.Approve, "approve"},
		{policy.Block, "block"},
		{policy.Terminate, "terminate"},
		{policy.Verdict(42), "verdict(42)"},
		{policy.Verdict(-1), "verdict(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.String(); got != tt.name {
				t.Errorf("Verdict(%d).String() = %q, want %q", int(tt.v), got, tt.name)
			}
			got, ok := policy.ParseVerdict(tt.v.String())
			wantOK := tt.v > policy.Abstain && tt.v <= policy.Terminate
			if ok != wantOK {
				t.Fatalf("ParseVerdict(%q) ok = %v, want %v", tt.v.String(), ok, wantOK)
			}
			if ok && got != tt.v {
				t.Errorf("ParseVerdict(%q) = %v, want %v", tt.v.String(), got, tt.v)
			}
			if !ok && got != policy.Abstain {
				t.Errorf("ParseVerdict(%q) = %v on failure, want abstain", tt.v.String(), got)
			}
		})
	}
	for _, s := range []string{"", "bogus", "allowed", "verdict(3)"} {
		if v, ok := policy.ParseVerdict(s); ok || v != policy.Abstain {
			t.Errorf("ParseVerdict(%q) = %v, %v; want abstain, false", s, v, ok)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range policy.Kinds() {
		got, ok := policy.ParseKind(string(k))
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, true", k, got, ok, k)
		}
	}
	tests := []struct {
		in   string
		want policy.Kind
		ok   bool
	}{
		{"SELECT", policy.KindSelect, true},
		{"  Delete ", policy.KindDelete, true},
		{"function_call", policy.KindFunctionCall, true},
		{"FUNCTION-CALL", policy.KindFunctionCall, true},
		{"DDL", policy.KindDDL, true},
		{"", "", false},
		{"drop", "", false},
		{"select;", "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, ok := policy.ParseKind(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseKind(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
	if kinds := policy.Kinds(); len(kinds) != len(slices.Compact(slices.Sorted(slices.Values(kinds)))) {
		t.Errorf("Kinds() has duplicates: %v", kinds)
	}
}

// ---------------------------------------------------------------------
// Rule and combinators

func TestRule(t *testing.T) {
	masks := []policy.ColumnMask{{Column: "public.users.email", Masker: "email"}}
	q := rtQ([]string{"public"}, rtSelect("users"))
	tests := []struct {
		name string
		rule policy.Rule
		want policy.Decision
	}{
		{"zero value abstains", policy.Rule{}, policy.Decision{}},
		{"nil When abstains", policy.Rule{Name: "r", Verdict: policy.Block, Reason: "no"}, policy.Decision{}},
		{"Abstain verdict abstains", policy.Rule{Name: "r", When: policy.Always(), Reason: "no"}, policy.Decision{}},
		{"condition false abstains", policy.Rule{Name: "r", When: policy.Not(policy.Always()), Verdict: policy.Block}, policy.Decision{}},
		{"block", policy.Rule{Name: "no-users", When: policy.Touches("users"), Verdict: policy.Block, Reason: "Ask HR."},
			policy.Decision{Verdict: policy.Block, Rule: "no-users", Reason: "Ask HR."}},
		{"mask carries masks", policy.Rule{Name: "mask-email", When: policy.Always(), Verdict: policy.Mask, Masks: masks},
			policy.Decision{Verdict: policy.Mask, Rule: "mask-email", Masks: masks}},
		{"terminate carries suspend", policy.Rule{Name: "kill", When: policy.Always(), Verdict: policy.Terminate, Reason: "bye", Suspend: time.Hour},
			policy.Decision{Verdict: policy.Terminate, Rule: "kill", Reason: "bye", Suspend: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rtDecide(t, tt.rule, q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFirstMatch(t *testing.T) {
	boom := errors.New("boom")
	q := rtQ(nil, rtSelect("t"))
	tests := []struct {
		name      string
		policies  func(calls *int) []policy.Policy
		want      policy.Decision
		wantErr   error
		wantCalls int // calls of the counted policies
	}{
		{"no policies abstains", func(*int) []policy.Policy { return nil }, policy.Decision{}, nil, 0},
		{"all abstain", func(c *int) []policy.Policy {
			return []policy.Policy{rtReturns(policy.Decision{}, c), policy.Rule{}, rtReturns(policy.Decision{}, c)}
		}, policy.Decision{}, nil, 2},
		{"first non-abstain wins, even if more permissive", func(c *int) []policy.Policy {
			return []policy.Policy{policy.Rule{}, rtReturns(rtDecision(policy.Allow, "a"), nil), rtReturns(rtDecision(policy.Block, "b"), c)}
		}, rtDecision(policy.Allow, "a"), nil, 0},
		{"first non-abstain wins, stricter first", func(c *int) []policy.Policy {
			return []policy.Policy{rtReturns(rtDecision(policy.Block, "b"), nil), rtReturns(rtDecision(policy.Allow, "a"), c)}
		}, rtDecision(policy.Block, "b"), nil, 0},
		{"error returned at once", func(c *int) []policy.Policy {
			return []policy.Policy{policy.Rule{}, rtFails(boom, nil), rtReturns(rtDecision(policy.Block, "b"), c)}
		}, policy.Decision{}, boom, 0},
		{"error after a decision is never reached", func(c *int) []policy.Policy {
			return []policy.Policy{rtReturns(rtDecision(policy.Allow, "a"), nil), rtFails(boom, c)}
		}, rtDecision(policy.Allow, "a"), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			got, err := policy.FirstMatch(tt.policies(&calls)...).Decide(context.Background(), q)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
			if calls != tt.wantCalls {
				t.Errorf("the counted policies were asked %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

// rtPermutations returns every order of ps.
func rtPermutations(ps []policy.Policy) [][]policy.Policy {
	if len(ps) <= 1 {
		return [][]policy.Policy{slices.Clone(ps)}
	}
	var out [][]policy.Policy
	for i := range ps {
		rest := slices.Concat(ps[:i:i], ps[i+1:])
		for _, p := range rtPermutations(rest) {
			out = append(out, append([]policy.Policy{ps[i]}, p...))
		}
	}
	return out
}

func TestStrictest(t *testing.T) {
	q := rtQ(nil, rtSelect("t"))
	m1 := policy.ColumnMask{Column: "public.users.email", Masker: "email"}
	m2 := policy.ColumnMask{Column: "public.users.phone", Masker: "redact"}
	m3 := policy.ColumnMask{Column: "public.cards.pan", Masker: "last4"}
	maskA := policy.Rule{Name: "mask-a", When: policy.Always(), Verdict: policy.Mask, Masks: []policy.ColumnMask{m1}}
	maskB := policy.Rule{Name: "mask-b", When: policy.Always(), Verdict: policy.Mask, Masks: []policy.ColumnMask{m2, m3}}
	allow := policy.Rule{Name: "allow", When: policy.Always(), Verdict: policy.Allow}
	approve := policy.Rule{Name: "approve", When: policy.Always(), Verdict: policy.Approve, Reason: "needs a second pair of eyes"}
	block := policy.Rule{Name: "block", When: policy.Always(), Verdict: policy.Block, Reason: "no"}
	block2 := policy.Rule{Name: "block-2", When: policy.Always(), Verdict: policy.Block, Reason: "no either"}
	kill := policy.Rule{Name: "kill", When: policy.Always(), Verdict: policy.Terminate, Suspend: time.Minute}

	t.Run("largest verdict wins in every order", func(t *testing.T) {
		for _, ps := range rtPermutations([]policy.Policy{allow, block, maskA, policy.Rule{}}) {
			got := rtDecide(t, policy.Strictest(ps...), q)
			if got.Verdict != policy.Block || got.Rule != "block" || got.Reason != "no" {
				t.Errorf("Strictest(%d policies in some order) = %+v, want block by rule block", len(ps), got)
			}
		}
		for _, ps := range rtPermutations([]policy.Policy{allow, kill, approve}) {
			got := rtDecide(t, policy.Strictest(ps...), q)
			want := policy.Decision{Verdict: policy.Terminate, Rule: "kill", Suspend: time.Minute}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Strictest = %+v, want %+v", got, want)
			}
		}
	})

	tests := []struct {
		name     string
		policies []policy.Policy
		want     policy.Decision
	}{
		{"no policies abstains", nil, policy.Decision{}},
		{"all abstain", []policy.Policy{policy.Rule{}, rtReturns(policy.Decision{}, nil)}, policy.Decision{}},
		{"allow over abstain", []policy.Policy{policy.Rule{}, allow}, rtDecision(policy.Allow, "allow")},
		{"first of equals", []policy.Policy{block, block2}, policy.Decision{Verdict: policy.Block, Rule: "block", Reason: "no"}},
		{"first of equals, other order", []policy.Policy{block2, block}, policy.Decision{Verdict: policy.Block, Rule: "block-2", Reason: "no either"}},
		{"masks of every Mask decision merged", []policy.Policy{maskA, allow, maskB},
			policy.Decision{Verdict: policy.Mask, Rule: "mask-a", Masks: []policy.ColumnMask{m1, m2, m3}}},
		{"masks merged in order asked", []policy.Policy{maskB, maskA},
			policy.Decision{Verdict: policy.Mask, Rule: "mask-b", Masks: []policy.ColumnMask{m2, m3, m1}}},
		{"approve over masks drops them", []policy.Policy{maskA, approve, maskB},
			policy.Decision{Verdict: policy.Approve, Rule: "approve", Reason: "needs a second pair of eyes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rtDecide(t, policy.Strictest(tt.policies...), q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("merging does not modify the rules' masks", func(t *testing.T) {
		a := policy.Rule{Name: "a", When: policy.Always(), Verdict: policy.Mask, Masks: make([]policy.ColumnMask, 1, 8)}
		a.Masks[0] = m1
		rtDecide(t, policy.Strictest(a, maskB), q)
		rtDecide(t, policy.Strictest(a, maskA), q)
		if got := a.Masks[:cap(a.Masks)][1]; got != (policy.ColumnMask{}) {
			t.Errorf("Strictest appended into a rule's Masks array: %+v", got)
		}
	})

	boom := errors.New("boom")
	for _, ps := range rtPermutations([]policy.Policy{block, rtFails(boom, nil), allow}) {
		t.Run("error propagates", func(t *testing.T) {
			d, err := policy.Strictest(ps...).Decide(context.Background(), q)
			if !errors.Is(err, boom) {
				t.Errorf("error = %v (decision %+v), want %v", err, d, boom)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name string
		p    policy.Policy
		q    *policy.Query
		want policy.Decision
	}{
		{"allows a select", policy.Default("default", policy.Allow, "fine"), rtQ(nil, rtSelect("t")),
			policy.Decision{Verdict: policy.Allow, Rule: "default", Reason: "fine"}},
		{"blocks a delete", policy.Default("deny", policy.Block, "nope"), rtQ(nil, rtDelete("t")),
			policy.Decision{Verdict: policy.Block, Rule: "deny", Reason: "nope"}},
		{"decides an empty query", policy.Default("default", policy.Allow, ""), rtQ(nil),
			rtDecision(policy.Allow, "default")},
		{"abstains on a function call", policy.Default("default", policy.Allow, ""), rtQ(nil, rtFastPath()),
			policy.Decision{}},
		{"abstains on a function call when blocking too", policy.Default("deny", policy.Block, ""), rtQ(nil, rtFastPath()),
			policy.Decision{}},
		{"as last of FirstMatch", policy.FirstMatch(policy.BlockKinds(policy.KindDelete), policy.Default("default", policy.Allow, "")),
			rtQ(nil, rtSelect("t")), rtDecision(policy.Allow, "default")},
		{"as floor of Strictest", policy.Strictest(policy.Default("default", policy.Allow, ""), policy.BlockKinds(policy.KindDelete)),
			rtQ(nil, rtDelete("t")), policy.Decision{Verdict: policy.Block, Rule: "block-kinds", Reason: "DELETE statements are not allowed."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rtDecide(t, tt.p, tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNamed(t *testing.T) {
	boom := errors.New("boom")
	q := rtQ(nil, rtSelect("t"))
	tests := []struct {
		name    string
		p       policy.Policy
		want    policy.Decision
		wantErr error
	}{
		{"renames a decision", policy.Named("renamed", policy.BlockAll("no")),
			policy.Decision{Verdict: policy.Block, Rule: "renamed", Reason: "no"}, nil},
		{"keeps abstain unnamed", policy.Named("renamed", policy.Rule{}), policy.Decision{}, nil},
		{"passes errors", policy.Named("renamed", rtFails(boom, nil)), policy.Decision{}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Decide(context.Background(), q)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWhen(t *testing.T) {
	p := policy.When(policy.InGroup("contractors"), policy.BlockKinds(policy.KindDelete))
	contractor := session.Identity{Subject: "bob", Groups: []string{"contractors"}}
	employee := session.Identity{Subject: "carol", Groups: []string{"staff"}}
	tests := []struct {
		name string
		q    *policy.Query
		want policy.Verdict
	}{
		{"condition holds, inner decides", rtAs(contractor, rtQ(nil, rtDelete("t"))), policy.Block},
		{"condition holds, inner abstains", rtAs(contractor, rtQ(nil, rtSelect("t"))), policy.Abstain},
		{"condition fails, abstains", rtAs(employee, rtQ(nil, rtDelete("t"))), policy.Abstain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rtDecide(t, p, tt.q); got.Verdict != tt.want {
				t.Errorf("Decide = %+v, want verdict %v", got, tt.want)
			}
		})
	}
}

// ---------------------------------------------------------------------
// Built-in rules on statements

func TestBlockKinds(t *testing.T) {
	tests := []struct {
		name   string
		kinds  []policy.Kind
		sts    []*policy.Statement
		block  bool
		reason string
	}{
		{"plain delete", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtDelete("t")}, true, "DELETE statements are not allowed."},
		{"select passes", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtSelect("t")}, false, ""},
		{"EXPLAIN ANALYZE DELETE", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtExplainAnalyze(rtDelete("t"))}, true, "DELETE statements are not allowed."},
		{"PREPARE of DELETE", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtPrepare(rtDelete("t"))}, true, "DELETE statements are not allowed."},
		{"EXECUTE of a prepared DELETE", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtExecute(rtDelete("t"))}, true, "DELETE statements are not allowed."},
		{"EXECUTE of a prepared SELECT", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtExecute(rtSelect("t"))}, false, ""},
		{"outer kind blocked", []policy.Kind{policy.KindExplain}, []*policy.Statement{rtExplainAnalyze(rtSelect("t"))}, true, "EXPLAIN statements are not allowed."},
		{"second statement of several", []policy.Kind{policy.KindDelete}, []*policy.Statement{rtSelect("t"), rtDelete("t")}, true, "DELETE statements are not allowed."},
		{"any of several kinds", []policy.Kind{policy.KindTruncate, policy.KindInsert}, []*policy.Statement{rtInsert("t")}, true, "INSERT statements are not allowed."},
		{"function call kind", []policy.Kind{policy.KindFunctionCall}, []*policy.Statement{rtFastPath()}, true, "FUNCTION CALL statements are not allowed."},
		{"no kinds blocks nothing", nil, []*policy.Statement{rtDelete("t")}, false, ""},
		{"empty query", []policy.Kind{policy.KindDelete}, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rtDecide(t, policy.BlockKinds(tt.kinds...), rtQ(nil, tt.sts...))
			want := policy.Decision{}
			if tt.block {
				want = policy.Decision{Verdict: policy.Block, Rule: "block-kinds", Reason: tt.reason}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("BlockKinds(%v) = %+v, want %+v", tt.kinds, got, want)
			}
		})
	}
}

// TestTablePolicies checks BlockTables, OnlyTables and Touches on the same
// cases: block is BlockTables' (and Touches') answer, refuse OnlyTables'.
func TestTablePolicies(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		path     []string
		rel      policy.Relation
		block    bool // BlockTables refuses, Touches holds
		refuse   bool // OnlyTables refuses
	}{
		// Qualified names: the search path does not matter.
		{"qualified in blocked schema", []string{"secret.*"}, []string{"public"}, rtRel("secret.keys"), true, false},
		{"qualified elsewhere", []string{"secret.*"}, []string{"public"}, rtRel("public.orders"), false, true},
		{"qualified with unknown path", []string{"public.orders"}, nil, rtRel("public.orders"), true, false},
		{"qualified other schema, unknown path", []string{"public.orders"}, nil, rtRel("app.orders"), false, true},
		{"exact schema.table", []string{"public.orders"}, []string{"public"}, rtRel("public.orders"), true, false},
		{"exact schema.table, other table", []string{"public.orders"}, []string{"public"}, rtRel("public.customers"), false, true},
		{"*.table matches any schema", []string{"*.t"}, []string{"public"}, rtRel("other.t"), true, false},
		{"bare table matches any schema", []string{"t"}, []string{"public"}, rtRel("other.t"), true, false},
		{"bare table, other name", []string{"t"}, []string{"public"}, rtRel("other.u"), false, true},
		{"schema.* matches every table", []string{"s.*"}, []string{"public"}, rtRel("s.anything"), true, false},
		{"*.* matches everything", []string{"*.*"}, []string{"public"}, rtRel("x.y"), true, false},
		{"names are case-sensitive", []string{"public.orders"}, []string{"public"}, rtRel("public.Orders"), false, true},

		// Unqualified names resolve through the search path.
		{"unqualified, only candidate blocked", []string{"public.orders"}, []string{"public"}, rtRel("orders"), true, false},
		{"unqualified, no candidate blocked", []string{"secret.*"}, []string{"public"}, rtRel("keys"), false, true},
		{"unqualified, one of two candidates blocked", []string{"secret.*"}, []string{"public", "secret"}, rtRel("keys"), true, true},
		{"unqualified, every candidate allowed", []string{"public.*", "secret.*"}, []string{"public", "secret"}, rtRel("keys"), true, false},
		{"unqualified, one candidate not allowed", []string{"public.orders"}, []string{"public", "app"}, rtRel("orders"), true, true},
		{"unqualified, *.table covers every candidate", []string{"*.orders"}, []string{"public", "app"}, rtRel("orders"), true, false},
		{"unqualified, empty path has no candidate", []string{"public.*"}, []string{}, rtRel("orders"), false, false},
		{"unqualified non-catalog skips pg_catalog in path", []string{"pg_catalog.*"}, []string{"pg_catalog", "public"}, rtRel("orders"), false, true},

		// Unknown search path: any schema is possible.
		{"unknown path, bare pattern", []string{"orders"}, nil, rtRel("orders"), true, false},
		{"unknown path, *.table pattern", []string{"*.orders"}, nil, rtRel("orders"), true, false},
		{"unknown path, qualified pattern blocks the name anywhere", []string{"public.orders"}, nil, rtRel("orders"), true, true},
		{"unknown path, schema.* blocks any table", []string{"secret.*"}, nil, rtRel("anything"), true, true},
		{"unknown path, other name", []string{"public.orders"}, nil, rtRel("customers"), false, true},
		{"unknown path, catalog relation", []string{"pg_catalog.pg_authid"}, nil, rtCatalogRel("pg_authid"), true, true},

		// Catalog relations are found in pg_catalog first.
		{"catalog relation resolves to pg_catalog", []string{"pg_catalog.pg_authid"}, []string{"public"}, rtCatalogRel("pg_authid"), true, false},
		{"catalog relation not in another schema", []string{"public.pg_authid"}, []string{"public"}, rtCatalogRel("pg_authid"), false, true},
		{"catalog relation, bare pattern", []string{"pg_authid"}, []string{"public"}, rtCatalogRel("pg_authid"), true, false},
		{"catalog relation, pg_catalog first in path", []string{"public.pg_authid"}, []string{"pg_catalog", "public"}, rtCatalogRel("pg_authid"), false, true},
		{"catalog relation, pg_catalog later: both candidates", []string{"public.pg_authid"}, []string{"public", "pg_catalog"}, rtCatalogRel("pg_authid"), true, true},
		{"catalog relation, pg_catalog later, both allowed", []string{"pg_catalog.*", "public.*"}, []string{"public", "pg_catalog"}, rtCatalogRel("pg_authid"), true, false},
		{"catalog relation, schemas after pg_catalog do not count", []string{"app.*"}, []string{"public", "pg_catalog", "app"}, rtCatalogRel("pg_authid"), false, true},
		{"qualified public.pg_authid is not the catalog", []string{"pg_catalog.pg_authid"}, []string{"public"}, rtRel("public.pg_authid"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtQ(tt.path, rtReads(tt.rel))
			want := policy.Decision{}
			if tt.block {
				want = policy.Decision{Verdict: policy.Block, Rule: "block-tables",
					Reason: fmt.Sprintf("Access to %s is not allowed.", tt.rel)}
			}
			if got := rtDecide(t, policy.BlockTables(tt.patterns...), q); !reflect.DeepEqual(got, want) {
				t.Errorf("BlockTables(%q) on %s with search path %q = %+v, want %+v", tt.patterns, tt.rel, tt.path, got, want)
			}
			if got := policy.Touches(tt.patterns...).Holds(q); got != tt.block {
				t.Errorf("Touches(%q) on %s with search path %q = %v, want %v", tt.patterns, tt.rel, tt.path, got, tt.block)
			}
			want = policy.Decision{}
			if tt.refuse {
				want = policy.Decision{Verdict: policy.Block, Rule: "only-tables",
					Reason: fmt.Sprintf("%s is not among the tables this session may use.", tt.rel)}
			}
			if got := rtDecide(t, policy.OnlyTables(tt.patterns...), q); !reflect.DeepEqual(got, want) {
				t.Errorf("OnlyTables(%q) on %s with search path %q = %+v, want %+v", tt.patterns, tt.rel, tt.path, got, want)
			}
		})
	}
}

func TestTablePoliciesOnStatementShapes(t *testing.T) {
	path := []string{"public"}
	tests := []struct {
		name   string
		sts    []*policy.Statement
		block  bool   // BlockTables("secret.*")
		refuse string // OnlyTables("public.*", "secret.*") reason, "" for abstain
	}{
		{"no relations", []*policy.Statement{rtSelect()}, false, ""},
		{"written relation", []*policy.Statement{rtInsert("secret.keys")}, true, ""},
		{"relation of a nested statement", []*policy.Statement{rtExplainAnalyze(rtSelect("secret.keys"))}, true, ""},
		{"relation of a prepared statement", []*policy.Statement{rtPrepare(rtDelete("secret.keys"))}, true, ""},
		{"second statement", []*policy.Statement{rtSelect("orders"), rtSelect("secret.keys")}, true, ""},
		{"other schema", []*policy.Statement{rtSelect("app.users")}, false, "app.users is not among the tables this session may use."},
		{"run-time statement", []*policy.Statement{rtCall(policy.Function{Name: "f"})}, false,
			"The gateway cannot see which tables this statement uses (user function f)."},
		{"run-time nested statement", []*policy.Statement{rtPrepare(rtCall(policy.Function{Schema: "app", Name: "g"}))}, false,
			"The gateway cannot see which tables this statement uses (user function app.g)."},
		{"DO block", []*policy.Statement{{Kind: policy.KindDo, Command: "DO", Writes: true, RunTime: []string{"DO block"}}}, false,
			"The gateway cannot see which tables this statement uses (DO block)."},
		{"built-in call is not run-time", []*policy.Statement{rtCall(policy.Function{Name: "lower", Builtin: true})}, false, ""},
		{"fast-path function call", []*policy.Statement{rtFastPath()}, false,
			"The gateway cannot see which tables this statement uses (fast-path call of function 764)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtQ(path, tt.sts...)
			if got := rtDecide(t, policy.BlockTables("secret.*"), q); (got.Verdict == policy.Block) != tt.block {
				t.Errorf("BlockTables(secret.*) = %+v, want block %v", got, tt.block)
			}
			got := rtDecide(t, policy.OnlyTables("public.*", "secret.*"), q)
			want := policy.Decision{}
			if tt.refuse != "" {
				want = policy.Decision{Verdict: policy.Block, Rule: "only-tables", Reason: tt.refuse}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("OnlyTables = %+v, want %+v", got, want)
			}
		})
	}
}

func TestQuerySchemas(t *testing.T) {
	tests := []struct {
		name string
		path []string
		rel  policy.Relation
		want []string
	}{
		{"qualified", []string{"public"}, rtRel("app.t"), []string{"app"}},
		{"qualified, unknown path", nil, rtRel("app.t"), []string{"app"}},
		{"unqualified", []string{"a", "b"}, rtRel("t"), []string{"a", "b"}},
		{"unqualified, unknown path", nil, rtRel("t"), nil},
		{"unqualified, pg_catalog left out", []string{"a", "pg_catalog", "b"}, rtRel("t"), []string{"a", "b"}},
		{"catalog", []string{"a", "b"}, rtCatalogRel("pg_class"), []string{"pg_catalog"}},
		{"catalog, pg_catalog first", []string{"pg_catalog", "a"}, rtCatalogRel("pg_class"), []string{"pg_catalog"}},
		{"catalog, pg_catalog later", []string{"a", "pg_catalog", "b"}, rtCatalogRel("pg_class"), []string{"a", "pg_catalog"}},
		{"catalog, unknown path", nil, rtCatalogRel("pg_class"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtQ(slices.Clone(tt.path))
			got := q.Schemas(tt.rel)
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Schemas(%s) with search path %q = %q, want %q", tt.rel, tt.path, got, tt.want)
			}
			if !slices.Equal(q.SearchPath, tt.path) {
				t.Errorf("Schemas modified the search path: %q, was %q", q.SearchPath, tt.path)
			}
		})
	}
}

func TestMatchRelation(t *testing.T) {
	tests := []struct {
		pattern, schema, name string
		want                  bool
	}{
		{"public.orders", "public", "orders", true},
		{"public.orders", "app", "orders", false},
		{"public.orders", "public", "users", false},
		{"public.*", "public", "anything", true},
		{"public.*", "app", "anything", false},
		{"*.orders", "app", "orders", true},
		{"orders", "app", "orders", true},
		{"orders", "app", "users", false},
		{"*.*", "x", "y", true},
		{"*", "x", "y", true},
		// An unknown schema matches only patterns for any schema.
		{"public.orders", "*", "orders", false},
		{"*.orders", "*", "orders", true},
		{"orders", "*", "orders", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.schema+"."+tt.name, func(t *testing.T) {
			if got := policy.MatchRelation(tt.pattern, tt.schema, tt.name); got != tt.want {
				t.Errorf("MatchRelation(%q, %q, %q) = %v, want %v", tt.pattern, tt.schema, tt.name, got, tt.want)
			}
		})
	}
}

func TestMatchFunction(t *testing.T) {
	tests := []struct {
		pattern string
		f       policy.Function
		want    bool
	}{
		{"pg_read_file", policy.Function{Name: "pg_read_file", Builtin: true}, true},
		{"pg_read_file", policy.Function{Schema: "pg_catalog", Name: "pg_read_file", Builtin: true}, true},
		// A function created elsewhere under a built-in's name.
		{"pg_read_file", policy.Function{Schema: "public", Name: "pg_read_file"}, true},
		{"pg_read_file", policy.Function{Name: "pg_read_file"}, true},
		{"pg_read_file", policy.Function{Name: "pg_read_binary_file", Builtin: true}, false},
		{"pg_catalog.pg_read_file", policy.Function{Name: "pg_read_file", Builtin: true}, true},
		{"pg_catalog.pg_read_file", policy.Function{Schema: "pg_catalog", Name: "pg_read_file", Builtin: true}, true},
		{"pg_catalog.pg_read_file", policy.Function{Name: "pg_read_file"}, false},
		{"pg_catalog.pg_read_file", policy.Function{Schema: "public", Name: "pg_read_file"}, false},
		{"public.f", policy.Function{Schema: "public", Name: "f"}, true},
		{"public.f", policy.Function{Schema: "app", Name: "f"}, false},
		{"public.*", policy.Function{Schema: "public", Name: "g"}, true},
		{"*.f", policy.Function{Schema: "app", Name: "f"}, true},
		{"*", policy.Function{Schema: "app", Name: "f"}, true},
		{"f", policy.Function{Name: "g"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.f.String(), func(t *testing.T) {
			if got := policy.MatchFunction(tt.pattern, tt.f); got != tt.want {
				t.Errorf("MatchFunction(%q, %+v) = %v, want %v", tt.pattern, tt.f, got, tt.want)
			}
		})
	}
}

func TestBlockFunctions(t *testing.T) {
	dangerous := policy.DangerousFunctions()
	tests := []struct {
		name     string
		patterns []string
		st       *policy.Statement
		reason   string // "" for abstain
	}{
		{"built-in pg_read_file", dangerous, rtCall(policy.Function{Name: "pg_read_file", Builtin: true}), "Calling pg_read_file is not allowed."},
		{"qualified built-in", dangerous, rtCall(policy.Function{Schema: "pg_catalog", Name: "lo_import", Builtin: true}), "Calling pg_catalog.lo_import is not allowed."},
		{"user function named like a dangerous built-in", dangerous, rtCall(policy.Function{Schema: "public", Name: "dblink"}), "Calling public.dblink is not allowed."},
		{"extension function, unqualified", dangerous, rtCall(policy.Function{Name: "dblink_exec"}), "Calling dblink_exec is not allowed."},
		{"harmless built-in", dangerous, rtCall(policy.Function{Name: "lower", Builtin: true}), ""},
		{"second of several calls", dangerous, rtCall(policy.Function{Name: "lower", Builtin: true}, policy.Function{Name: "set_config", Builtin: true}), "Calling set_config is not allowed."},
		{"in a nested statement", dangerous, rtPrepare(rtCall(policy.Function{Name: "query_to_xml", Builtin: true})), "Calling query_to_xml is not allowed."},
		{"schema pattern, unqualified built-in", []string{"pg_catalog.pg_sleep"}, rtCall(policy.Function{Name: "pg_sleep", Builtin: true}), "Calling pg_sleep is not allowed."},
		{"schema pattern, user function elsewhere", []string{"pg_catalog.pg_sleep"}, rtCall(policy.Function{Schema: "app", Name: "pg_sleep"}), ""},
		{"schema.* pattern", []string{"app.*"}, rtCall(policy.Function{Schema: "app", Name: "anything"}), "Calling app.anything is not allowed."},
		{"no patterns", nil, rtCall(policy.Function{Name: "pg_read_file", Builtin: true}), ""},
		{"no functions", dangerous, rtSelect("t"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtQ([]string{"public"}, tt.st)
			got := rtDecide(t, policy.BlockFunctions(tt.patterns...), q)
			want := policy.Decision{}
			if tt.reason != "" {
				want = policy.Decision{Verdict: policy.Block, Rule: "block-functions", Reason: tt.reason}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("BlockFunctions = %+v, want %+v", got, want)
			}
			if holds := policy.Calls(tt.patterns...).Holds(q); holds != (tt.reason != "") {
				t.Errorf("Calls = %v, want %v", holds, tt.reason != "")
			}
		})
	}
}

func TestDangerousFunctions(t *testing.T) {
	list := policy.DangerousFunctions()
	for _, name := range []string{"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export",
		"dblink", "dblink_exec", "pg_terminate_backend", "set_config", "query_to_xml", "ts_stat"} {
		if !slices.Contains(list, name) {
			t.Errorf("DangerousFunctions() lacks %s", name)
		}
	}
	for _, name := range []string{"lower", "now", "count", "nextval"} {
		if slices.Contains(list, name) {
			t.Errorf("DangerousFunctions() lists harmless %s", name)
		}
	}
	if len(list) != len(slices.Compact(slices.Sorted(slices.Values(list)))) {
		t.Errorf("DangerousFunctions() has duplicates")
	}
	for i := range list {
		list[i] = "changed"
	}
	if again := policy.DangerousFunctions(); !slices.Contains(again, "pg_read_file") || slices.Contains(again, "changed") {
		t.Errorf("DangerousFunctions() is not a fresh copy: a caller's change shows in the next call")
	}
}

func TestReadOnly(t *testing.T) {
	const prefix = "This session is read-only: "
	strict := policy.ReadOnly{}
	lax := policy.ReadOnly{AllowRunTime: true}
	notify := &policy.Statement{Kind: policy.KindNotify, Command: "NOTIFY", Name: "c"}
	listen := &policy.Statement{Kind: policy.KindListen, Command: "LISTEN", Name: "c"}
	do := &policy.Statement{Kind: policy.KindDo, Command: "DO", Writes: true, RunTime: []string{"DO block"}}
	call := &policy.Statement{Kind: policy.KindCall, Command: "CALL", RunTime: []string{"CALL p"}}
	load := &policy.Statement{Kind: policy.KindLoad, Command: "LOAD", RunTime: []string{"LOAD loads a server library"}}
	forUpdate := rtSelect("orders")
	forUpdate.Locks = true
	lock := &policy.Statement{Kind: policy.KindLock, Command: "LOCK", Locks: true, Reads: []policy.Relation{rtRel("orders")}}
	userFunc := rtCall(policy.Function{Name: "f"})
	prepared := rtPrepare(rtCall(policy.Function{Name: "set_config", Builtin: true}))
	prepared.Inner.Settings = []policy.Setting{{Name: "default_transaction_read_only", Value: "off", Known: true, Via: "set_config"}}

	dtro := "default_transaction_read_only"
	tests := []struct {
		name   string
		ro     policy.ReadOnly
		sts    []*policy.Statement
		reason string // how the reason starts, after prefix; "" for abstain
	}{
		{"select abstains", strict, []*policy.Statement{rtSelect("orders")}, ""},
		{"empty query abstains", strict, nil, ""},
		{"LISTEN abstains", strict, []*policy.Statement{listen}, ""},
		{"insert", strict, []*policy.Statement{rtInsert("orders")}, "INSERT changes data."},
		{"write after a select", strict, []*policy.Statement{rtSelect("orders"), rtDelete("orders")}, "DELETE changes data."},
		{"EXECUTE of a prepared write", strict, []*policy.Statement{rtExecute(rtInsert("orders"))}, "EXECUTE changes data."},
		// As the gateway builds it: an EXECUTE's Writes counts what it runs.
		{"execute of a write", strict, []*policy.Statement{{Kind: policy.KindExecute, Command: "EXECUTE", Writes: true, Inner: rtInsert("orders")}}, "EXECUTE changes data."},
		{"SELECT FOR UPDATE", strict, []*policy.Statement{forUpdate}, "SELECT takes locks for writing."},
		{"LOCK", strict, []*policy.Statement{lock}, "LOCK takes locks for writing."},
		{"DO", strict, []*policy.Statement{do}, "DO runs code the gateway cannot see."},
		{"DO with AllowRunTime", lax, []*policy.Statement{do}, "DO runs code the gateway cannot see."},
		{"CALL with AllowRunTime", lax, []*policy.Statement{call}, "CALL runs code the gateway cannot see."},
		{"LOAD with AllowRunTime", lax, []*policy.Statement{load}, "LOAD runs code the gateway cannot see."},
		{"NOTIFY", strict, []*policy.Statement{notify}, "notifications are not allowed."},
		{"fast-path function call", strict, []*policy.Statement{rtFastPath()}, "fast-path function calls are not allowed."},
		{"fast-path function call with AllowRunTime", lax, []*policy.Statement{rtFastPath()}, "fast-path function calls are not allowed."},
		{"user function", strict, []*policy.Statement{userFunc}, "the gateway cannot see what this statement does (user function f)."},
		{"user function with AllowRunTime", lax, []*policy.Statement{userFunc}, ""},

		{"SET default_transaction_read_only off", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "off"))}, "SET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only 0", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "0"))}, "SET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only false", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "false"))}, "SET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only OFF", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "OFF"))}, "SET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only no", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "no"))}, "SET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only to a computed value", strict, []*policy.Statement{rtSet(policy.Setting{Name: dtro, Via: "set_config"})}, "set_config of default_transaction_read_only is not allowed."},
		{"RESET default_transaction_read_only", strict, []*policy.Statement{rtSet(policy.Setting{Name: dtro, Reset: true, Via: "RESET"})}, "RESET of default_transaction_read_only is not allowed."},
		{"SET default_transaction_read_only TO DEFAULT", strict, []*policy.Statement{rtSet(policy.Setting{Name: dtro, Reset: true, Via: "SET"})}, "SET of default_transaction_read_only is not allowed."},
		{"SET SESSION CHARACTERISTICS READ WRITE", strict, []*policy.Statement{rtSet(policy.Setting{Name: dtro, Value: "off", Known: true, Via: "SET SESSION CHARACTERISTICS"})}, "SET SESSION CHARACTERISTICS of default_transaction_read_only is not allowed."},
		{"BEGIN READ WRITE", strict, []*policy.Statement{{Kind: policy.KindTransaction, Command: "BEGIN", Settings: []policy.Setting{{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "BEGIN"}}}}, "BEGIN of transaction_read_only is not allowed."},
		{"SET TRANSACTION READ WRITE", strict, []*policy.Statement{rtSet(policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "SET TRANSACTION"})}, "SET TRANSACTION of transaction_read_only is not allowed."},
		{"RESET ALL", strict, []*policy.Statement{{Kind: policy.KindReset, Command: "RESET", Settings: []policy.Setting{{Name: "all", Reset: true, Via: "RESET"}}}}, "RESET of "},
		{"DISCARD ALL", strict, []*policy.Statement{{Kind: policy.KindDiscard, Command: "DISCARD", Settings: []policy.Setting{{Name: "all", Reset: true, Via: "DISCARD"}}}}, "DISCARD of "},
		{"set_config with a computed name", lax, []*policy.Statement{rtSet(policy.Setting{Name: "*", Value: "off", Known: true, Via: "set_config"})}, "set_config of "},
		{"set_config in a prepared statement", strict, []*policy.Statement{prepared}, "set_config of default_transaction_read_only is not allowed."},

		{"SET default_transaction_read_only on", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "on"))}, ""},
		{"SET default_transaction_read_only true", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "true"))}, ""},
		{"SET default_transaction_read_only 1", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "1"))}, ""},
		{"SET default_transaction_read_only YES", strict, []*policy.Statement{rtSet(rtSetTo(dtro, "YES"))}, ""},
		{"SET transaction_read_only on", strict, []*policy.Statement{rtSet(rtSetTo("transaction_read_only", "on"))}, ""},
		{"BEGIN READ ONLY", strict, []*policy.Statement{{Kind: policy.KindTransaction, Command: "BEGIN", Settings: []policy.Setting{{Name: "transaction_read_only", Value: "on", Known: true, Local: true, Via: "BEGIN"}}}}, ""},
		{"SET search_path", strict, []*policy.Statement{rtSet(rtSetTo("search_path", "app"))}, ""},
		{"SET ROLE is not ReadOnly's business", strict, []*policy.Statement{rtSet(rtSetTo("role", "admin"))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rtDecide(t, tt.ro, rtQ([]string{"public"}, tt.sts...))
			if tt.reason == "" {
				if !reflect.DeepEqual(got, policy.Decision{}) {
					t.Errorf("%+v.Decide = %+v, want abstain", tt.ro, got)
				}
				return
			}
			if got.Verdict != policy.Block || got.Rule != "read-only" || !strings.HasPrefix(got.Reason, prefix+tt.reason) {
				t.Errorf("%+v.Decide = %+v, want block by read-only, reason %q...", tt.ro, got, prefix+tt.reason)
			}
		})
	}
}

func TestSessionSetup(t *testing.T) {
	x := session.Identity{Subject: "bob", Groups: []string{"x"}}
	y := session.Identity{Subject: "carol", Groups: []string{"y"}}
	sessionOnly := func(id session.Identity) *policy.Query {
		return &policy.Query{Session: &session.Info{Identity: id}, Time: rtTime("2025-01-15T12:00:00Z")}
	}
	onlyX := policy.When(policy.InGroup("x"), policy.ReadOnly{})
	tests := []struct {
		name string
		p    policy.Policy
		id   session.Identity
		want bool
	}{
		{"ReadOnly", policy.ReadOnly{}, y, true},
		{"ReadOnly with AllowRunTime", policy.ReadOnly{AllowRunTime: true}, y, true},
		{"AllowAll asks nothing", policy.AllowAll(), x, false},
		{"rules ask nothing", policy.FirstMatch(policy.BlockKinds(policy.KindDelete), policy.Default("d", policy.Allow, "")), x, false},
		{"When, condition holds", onlyX, x, true},
		{"When, condition fails", onlyX, y, false},
		{"When on statements: none in the setup query", policy.When(policy.IsKind(policy.KindSelect), policy.ReadOnly{}), x, false},
		{"Named passes through", policy.Named("ro", policy.ReadOnly{}), y, true},
		{"Strictest passes through", policy.Strictest(policy.AllowAll(), onlyX), x, true},
		{"Strictest, When fails", policy.Strictest(policy.AllowAll(), onlyX), y, false},
		{"FirstMatch passes through to every policy", policy.FirstMatch(policy.Default("d", policy.Allow, ""), onlyX), x, true},
		{"FirstMatch, When fails", policy.FirstMatch(policy.Default("d", policy.Allow, ""), onlyX), y, false},
		{"nested combinators", policy.FirstMatch(policy.Named("n", policy.Strictest(policy.When(policy.Subject("bob"), policy.ReadOnly{})))), x, true},
		{"one policy cannot undo another's", policy.Strictest(policy.ReadOnly{}, onlyX), y, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.SetupFor(tt.p, sessionOnly(tt.id)); got.ReadOnly != tt.want {
				t.Errorf("SetupFor(..., %s).ReadOnly = %v, want %v", tt.id.Subject, got.ReadOnly, tt.want)
			}
		})
	}

	t.Run("When(InGroup(x), ReadOnly{}) decides only for x", func(t *testing.T) {
		if d := rtDecide(t, onlyX, rtAs(x, rtQ(nil, rtInsert("t")))); d.Verdict != policy.Block || d.Rule != "read-only" {
			t.Errorf("insert by a member of x: %+v, want block by read-only", d)
		}
		if d := rtDecide(t, onlyX, rtAs(y, rtQ(nil, rtInsert("t")))); d.Verdict != policy.Abstain {
			t.Errorf("insert by a non-member: %+v, want abstain", d)
		}
	})
}

func TestBlockSettings(t *testing.T) {
	protected := policy.BlockSettings(policy.ProtectedSettings()...)
	tests := []struct {
		name    string
		p       policy.Policy
		setting policy.Setting
		reason  string // "" for abstain
	}{
		{"SET ROLE", protected, rtSetTo("role", "admin"), "Changing role (SET) is not allowed."},
		{"RESET ROLE", protected, policy.Setting{Name: "role", Reset: true, Via: "RESET"}, "Changing role (RESET) is not allowed."},
		{"SET SESSION AUTHORIZATION", protected, rtSetTo("session_authorization", "bob"), "Changing session_authorization (SET) is not allowed."},
		{"set_config of role", protected, policy.Setting{Name: "role", Value: "admin", Known: true, Via: "set_config"}, "Changing role (set_config) is not allowed."},
		{"BEGIN READ WRITE", protected, policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "BEGIN"}, "Changing transaction_read_only (BEGIN) is not allowed."},
		{"standard_conforming_strings", protected, rtSetTo("standard_conforming_strings", "off"), "Changing standard_conforming_strings (SET) is not allowed."},
		{"search_path is not protected", protected, rtSetTo("search_path", "app"), ""},
		{"work_mem is not protected", protected, rtSetTo("work_mem", "64MB"), ""},
		{"RESET ALL", protected, policy.Setting{Name: "all", Reset: true, Via: "RESET"}, "Changing every setting (RESET) is not allowed."},
		{"DISCARD ALL", protected, policy.Setting{Name: "all", Reset: true, Via: "DISCARD"}, "Changing every setting (DISCARD) is not allowed."},
		{"name known at run time", protected, policy.Setting{Name: "*", Via: "set_config"}, "Changing a setting named at run time (set_config) is not allowed."},
		{"no names still blocks RESET ALL", policy.BlockSettings(), policy.Setting{Name: "all", Reset: true, Via: "RESET"}, "Changing every setting (RESET) is not allowed."},
		{"no names still blocks run-time names", policy.BlockSettings(), policy.Setting{Name: "*", Via: "set_config"}, "Changing a setting named at run time (set_config) is not allowed."},
		{"no names lets SET ROLE through", policy.BlockSettings(), rtSetTo("role", "admin"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, shape := range []struct {
				name string
				st   *policy.Statement
			}{
				{"direct", rtSet(tt.setting)},
				{"nested", rtPrepare(&policy.Statement{Kind: policy.KindSelect, Command: "SELECT", Settings: []policy.Setting{tt.setting}})},
			} {
				got := rtDecide(t, tt.p, rtQ(nil, shape.st))
				want := policy.Decision{}
				if tt.reason != "" {
					want = policy.Decision{Verdict: policy.Block, Rule: "block-settings", Reason: tt.reason}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Decide = %+v, want %+v", shape.name, got, want)
				}
			}
		})
	}
}

func TestProtectedSettings(t *testing.T) {
	list := policy.ProtectedSettings()
	for _, name := range []string{"role", "session_authorization", "default_transaction_read_only", "transaction_read_only"} {
		if !slices.Contains(list, name) {
			t.Errorf("ProtectedSettings() lacks %s", name)
		}
	}
	if slices.Contains(list, "search_path") {
		t.Errorf("ProtectedSettings() lists search_path, which the gateway follows instead")
	}
	list[0] = "changed"
	if slices.Contains(policy.ProtectedSettings(), "changed") {
		t.Errorf("ProtectedSettings() is not a fresh copy")
	}
}

// ---------------------------------------------------------------------
// Conditions

func TestIdentityConditions(t *testing.T) {
	direct := session.Identity{Subject: "alice", Issuer: "https://idp.example", Groups: []string{"analysts", "staff"}}
	agent := session.Identity{Subject: "alice", Issuer: "https://idp.example", Chain: []session.Actor{
		{Subject: "planner", Issuer: "https://agents.example"}, {Subject: "sql-agent", Issuer: "https://agents.example"}}}
	one := session.Identity{Subject: "bob", Issuer: "static", Chain: []session.Actor{{Subject: "copilot", Issuer: "static"}}}
	tests := []struct {
		name string
		c    policy.Condition
		id   *session.Identity // nil: a query without session
		want bool
	}{
		{"InGroup member", policy.InGroup("analysts"), &direct, true},
		{"InGroup one of several", policy.InGroup("admins", "staff"), &direct, true},
		{"InGroup non-member", policy.InGroup("admins"), &direct, false},
		{"InGroup of nothing", policy.InGroup(), &direct, false},
		{"InGroup without session", policy.InGroup("analysts"), nil, false},
		{"Subject", policy.Subject("alice"), &direct, true},
		{"Subject one of several", policy.Subject("bob", "alice"), &direct, true},
		{"Subject other", policy.Subject("bob"), &direct, false},
		{"Subject is not an actor", policy.Subject("sql-agent"), &agent, false},
		{"Subject without session", policy.Subject("alice"), nil, false},
		{"Involves subject", policy.Involves("alice"), &agent, true},
		{"Involves first actor", policy.Involves("planner"), &agent, true},
		{"Involves last actor", policy.Involves("sql-agent"), &agent, true},
		{"Involves nobody else", policy.Involves("mallory"), &agent, false},
		{"Involves direct session", policy.Involves("sql-agent"), &direct, false},
		{"Involves without session", policy.Involves("alice"), nil, false},
		{"Issuer", policy.Issuer("https://idp.example"), &direct, true},
		{"Issuer other", policy.Issuer("static"), &direct, false},
		{"Issuer is the subject's, not an actor's", policy.Issuer("https://agents.example"), &agent, false},
		{"Issuer without session", policy.Issuer("static"), nil, false},
		{"ChainDepth(0,0) direct", policy.ChainDepth(0, 0), &direct, true},
		{"ChainDepth(0,0) agent", policy.ChainDepth(0, 0), &agent, false},
		{"ChainDepth(1,-1) agent", policy.ChainDepth(1, -1), &agent, true},
		{"ChainDepth(1,-1) direct", policy.ChainDepth(1, -1), &direct, false},
		{"ChainDepth(0,-1) anyone", policy.ChainDepth(0, -1), &direct, true},
		{"ChainDepth(1,1) one agent", policy.ChainDepth(1, 1), &one, true},
		{"ChainDepth(1,1) two agents", policy.ChainDepth(1, 1), &agent, false},
		{"ChainDepth(2,2) two agents", policy.ChainDepth(2, 2), &agent, true},
		{"ChainDepth(3,-1) two agents", policy.ChainDepth(3, -1), &agent, false},
		{"ChainDepth without session", policy.ChainDepth(0, -1), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtQ(nil, rtSelect("t"))
			if tt.id == nil {
				q.Session = nil
			} else {
				q.Session = &session.Info{Identity: *tt.id}
			}
			if got := tt.c.Holds(q); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLogicalConditions(t *testing.T) {
	yes, no := policy.Always(), policy.Not(policy.Always())
	tests := []struct {
		name string
		c    policy.Condition
		want bool
	}{
		{"Always", yes, true},
		{"Not(Always)", no, false},
		{"Not(Not(Always))", policy.Not(no), true},
		{"All()", policy.All(), true},
		{"All(yes, yes)", policy.All(yes, yes), true},
		{"All(yes, no)", policy.All(yes, no), false},
		{"Any()", policy.Any(), false},
		{"Any(no, yes)", policy.Any(no, yes), true},
		{"Any(no, no)", policy.Any(no, no), false},
		{"ConditionFunc", policy.ConditionFunc(func(q *policy.Query) bool { return q.Session.Identity.Subject == "alice" }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Holds(rtQ(nil)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatementConditions(t *testing.T) {
	path := []string{"public", "secret"}
	tests := []struct {
		name string
		c    policy.Condition
		sts  []*policy.Statement
		want bool
	}{
		{"IsKind direct", policy.IsKind(policy.KindDelete), []*policy.Statement{rtDelete("t")}, true},
		{"IsKind nested", policy.IsKind(policy.KindDelete), []*policy.Statement{rtExplainAnalyze(rtDelete("t"))}, true},
		{"IsKind outer", policy.IsKind(policy.KindExplain), []*policy.Statement{rtExplainAnalyze(rtDelete("t"))}, true},
		{"IsKind second statement", policy.IsKind(policy.KindDelete), []*policy.Statement{rtSelect("t"), rtDelete("t")}, true},
		{"IsKind other", policy.IsKind(policy.KindDelete, policy.KindUpdate), []*policy.Statement{rtSelect("t")}, false},
		{"IsKind empty query", policy.IsKind(policy.KindSelect), nil, false},
		{"Writes", policy.Writes(), []*policy.Statement{rtInsert("t")}, true},
		// Writes counts what runs, which the outer statement states: an
		// inner write that does not run (EXPLAIN without ANALYZE) is not one.
		{"Writes nested, not run", policy.Writes(), []*policy.Statement{{Kind: policy.KindExplain, Command: "EXPLAIN", Inner: rtInsert("t")}}, false},
		{"Writes select", policy.Writes(), []*policy.Statement{rtSelect("t")}, false},
		{"AllRows", policy.AllRows(), []*policy.Statement{rtDelete("t")}, true},
		{"AllRows prepared", policy.AllRows(), []*policy.Statement{rtPrepare(rtDelete("t"))}, true},
		{"AllRows with WHERE", policy.AllRows(), []*policy.Statement{{Kind: policy.KindDelete, Command: "DELETE", Writes: true, Written: []policy.Relation{rtRel("t")}}}, false},
		{"Touches qualified", policy.Touches("secret.*"), []*policy.Statement{rtSelect("secret.keys")}, true},
		{"Touches via search path", policy.Touches("secret.*"), []*policy.Statement{rtSelect("keys")}, true},
		{"Touches written", policy.Touches("public.orders"), []*policy.Statement{rtDelete("orders")}, true},
		{"Touches other", policy.Touches("app.*"), []*policy.Statement{rtSelect("keys")}, false},
		{"Calls", policy.Calls("pg_sleep"), []*policy.Statement{rtCall(policy.Function{Name: "pg_sleep", Builtin: true})}, true},
		{"Calls nested", policy.Calls("pg_sleep"), []*policy.Statement{rtPrepare(rtCall(policy.Function{Name: "pg_sleep", Builtin: true}))}, true},
		{"Calls other", policy.Calls("pg_sleep"), []*policy.Statement{rtCall(policy.Function{Name: "now", Builtin: true})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Holds(rtQ(path, tt.sts...)); got != tt.want {
				t.Errorf("Holds = %v, want %v", got, tt.want)
			}
		})
	}
}

// ---------------------------------------------------------------------
// Time windows

func TestWindowContains(t *testing.T) {
	tests := []struct {
		window string
		at     string
		want   bool
	}{
		{"01:00-02:00 UTC", "2025-01-15T00:59:59Z", false},
		{"01:00-02:00 UTC", "2025-01-15T01:00:00Z", true}, // From is inclusive
		{"01:00-02:00 UTC", "2025-01-15T01:30:00Z", true},
		{"01:00-02:00 UTC", "2025-01-15T01:59:59.999Z", true},
		{"01:00-02:00 UTC", "2025-01-15T02:00:00Z", false}, // To is exclusive
		{"01:00-02:00 UTC", "2025-01-15T13:30:00Z", false},
		{"01:00-02:00 UTC", "2025-01-15T03:30:00+02:00", true},  // 01:30 UTC
		{"01:00-02:00 UTC", "2025-01-15T01:30:00-05:00", false}, // 06:30 UTC
		{"01:00-02:00", "2025-01-15T01:30:00Z", true},

		// Over midnight.
		{"22:00-02:00 UTC", "2025-01-15T21:59:59Z", false},
		{"22:00-02:00 UTC", "2025-01-15T22:00:00Z", true},
		{"22:00-02:00 UTC", "2025-01-15T23:59:59Z", true},
		{"22:00-02:00 UTC", "2025-01-16T00:00:00Z", true},
		{"22:00-02:00 UTC", "2025-01-16T01:59:59Z", true},
		{"22:00-02:00 UTC", "2025-01-16T02:00:00Z", false},
		{"22:00-02:00 UTC", "2025-01-16T12:00:00Z", false},

		{"00:00-24:00 UTC", "2025-01-15T00:00:00Z", true},
		{"00:00-24:00 UTC", "2025-01-15T23:59:59Z", true},

		// Europe/Paris: CET (UTC+1) in January, CEST (UTC+2) in July.
		{"09:00-10:00 Europe/Paris", "2025-01-15T07:59:59Z", false},
		{"09:00-10:00 Europe/Paris", "2025-01-15T08:00:00Z", true},
		{"09:00-10:00 Europe/Paris", "2025-01-15T08:30:00Z", true},
		{"09:00-10:00 Europe/Paris", "2025-01-15T09:00:00Z", false},
		{"09:00-10:00 Europe/Paris", "2025-07-15T06:59:59Z", false},
		{"09:00-10:00 Europe/Paris", "2025-07-15T07:00:00Z", true},
		{"09:00-10:00 Europe/Paris", "2025-07-15T07:30:00Z", true},
		{"09:00-10:00 Europe/Paris", "2025-07-15T08:30:00Z", false},
		{"09:00-10:00 Europe/Paris", "2025-07-15T09:30:00+02:00", true},
		{"22:00-06:00 Europe/Paris", "2025-07-15T19:59:59Z", false}, // 21:59:59 CEST
		{"22:00-06:00 Europe/Paris", "2025-07-15T20:30:00Z", true},  // 22:30 CEST
		{"22:00-06:00 Europe/Paris", "2025-07-15T22:30:00Z", true},  // 00:30 CEST the next day
		{"22:00-06:00 Europe/Paris", "2025-07-16T03:30:00Z", true},  // 05:30 CEST
		{"22:00-06:00 Europe/Paris", "2025-07-16T04:00:00Z", false}, // 06:00 CEST
		{"22:00-06:00 Europe/Paris", "2025-01-16T04:30:00Z", true},  // 05:30 CET
		{"22:00-06:00 Europe/Paris", "2025-01-16T05:00:00Z", false}, // 06:00 CET
	}
	for _, tt := range tests {
		t.Run(tt.window+"@"+tt.at, func(t *testing.T) {
			w := rtMustWindow(t, tt.window)
			at := rtTime(tt.at)
			if got := w.Contains(at); got != tt.want {
				t.Errorf("%s contains %s (%s there) = %v, want %v", w, at.UTC().Format(time.RFC3339), at.In(w.Location).Format("Mon 15:04:05 MST"), got, tt.want)
			}
			q := rtQ(nil)
			q.Time = at
			if got := policy.During(w).Holds(q); got != tt.want {
				t.Errorf("During(%s) at %s = %v, want %v", w, tt.at, got, tt.want)
			}
		})
	}
}

func TestWindowDays(t *testing.T) {
	// 2025-01-02 is a Thursday, 2025-01-03 a Friday, 2025-01-04 a Saturday.
	if d := rtTime("2025-01-03T12:00:00Z").Weekday(); d != time.Friday {
		t.Fatalf("2025-01-03 is a %v, the cases below assume a Friday", d)
	}
	fridayNight := policy.Window{From: 22 * time.Hour, To: 2 * time.Hour, Days: []time.Weekday{time.Friday}}
	mondayMorning := policy.Window{From: time.Hour, To: 2 * time.Hour, Days: []time.Weekday{time.Monday}, Location: time.UTC}
	weekdays := policy.Window{From: 9 * time.Hour, To: 17 * time.Hour, Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}}
	tests := []struct {
		name string
		w    policy.Window
		at   string
		want bool
	}{
		{"over midnight, evening of the day", fridayNight, "2025-01-03T23:00:00Z", true},
		{"over midnight, morning after belongs to the day", fridayNight, "2025-01-04T01:00:00Z", true},
		{"over midnight, morning of the day belongs to the day before", fridayNight, "2025-01-03T01:00:00Z", false},
		{"over midnight, evening of the next day", fridayNight, "2025-01-04T23:00:00Z", false},
		{"over midnight, evening of the day before", fridayNight, "2025-01-02T23:00:00Z", false},
		{"over midnight, morning after ends at To", fridayNight, "2025-01-04T02:00:00Z", false},
		{"same day window, right day", mondayMorning, "2025-01-06T01:30:00Z", true},
		{"same day window, other day", mondayMorning, "2025-01-07T01:30:00Z", false},
		{"weekdays, Friday", weekdays, "2025-01-03T16:59:00Z", true},
		{"weekdays, Saturday", weekdays, "2025-01-04T10:00:00Z", false},
		{"weekdays, Sunday", weekdays, "2025-01-05T10:00:00Z", false},
		{"days in the window's zone", policy.Window{From: 0, To: time.Hour, Days: []time.Weekday{time.Saturday}, Location: rtParis(t)},
			"2025-01-03T23:30:00Z", true}, // Saturday 00:30 in Paris, still Friday in UTC
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := rtTime(tt.at)
			if got := tt.w.Contains(at); got != tt.want {
				t.Errorf("%s on %v contains %s (a %v) = %v, want %v", tt.w, tt.w.Days, tt.at, at.Weekday(), got, tt.want)
			}
		})
	}
}

func rtParis(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("loading Europe/Paris: %v", err)
	}
	return loc
}

func TestWindowZeroAndNilLocation(t *testing.T) {
	var zero policy.Window
	for _, at := range []string{"2025-01-15T00:00:00Z", "2025-01-15T12:00:00Z", "2025-01-15T23:59:59Z"} {
		if zero.Contains(rtTime(at)) {
			t.Errorf("the zero Window contains %s, want empty", at)
		}
	}
	w := policy.Window{From: time.Hour, To: 2 * time.Hour} // nil Location: UTC
	if !w.Contains(rtTime("2025-01-15T01:30:00Z")) || w.Contains(rtTime("2025-01-15T01:30:00+01:00")) {
		t.Errorf("a Window without Location is not in UTC")
	}
	if got := w.String(); got != "01:00-02:00 UTC" {
		t.Errorf("String() = %q, want %q", got, "01:00-02:00 UTC")
	}
	if policy.During().Holds(rtQ(nil)) {
		t.Errorf("During() with no window holds")
	}
	q := rtQ(nil)
	q.Time = rtTime("2025-01-15T05:30:00Z")
	if !policy.During(w, rtMustWindow(t, "05:00-06:00 UTC")).Holds(q) {
		t.Errorf("During(w1, w2) does not hold inside w2")
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in       string
		from, to time.Duration
		zone     string
		str      string
	}{
		{"01:00-02:00 UTC", time.Hour, 2 * time.Hour, "UTC", "01:00-02:00 UTC"},
		{"01:00-02:00", time.Hour, 2 * time.Hour, "UTC", "01:00-02:00 UTC"},
		{"  22:00-06:00   Europe/Paris ", 22 * time.Hour, 6 * time.Hour, "Europe/Paris", "22:00-06:00 Europe/Paris"},
		{"00:00-24:00 UTC", 0, 24 * time.Hour, "UTC", "00:00-24:00 UTC"},
		{"09:15-17:45 America/New_York", 9*time.Hour + 15*time.Minute, 17*time.Hour + 45*time.Minute, "America/New_York", "09:15-17:45 America/New_York"},
		{"9:05-10:00 UTC", 9*time.Hour + 5*time.Minute, 10 * time.Hour, "UTC", "09:05-10:00 UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, err := policy.ParseWindow(tt.in)
			if err != nil {
				t.Fatalf("ParseWindow(%q): %v", tt.in, err)
			}
			if w.From != tt.from || w.To != tt.to || w.Location == nil || w.Location.String() != tt.zone || len(w.Days) != 0 {
				t.Errorf("ParseWindow(%q) = %+v, want From %v To %v in %s on every day", tt.in, w, tt.from, tt.to, tt.zone)
			}
			if got := w.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			again, err := policy.ParseWindow(w.String())
			if err != nil {
				t.Fatalf("ParseWindow(String()) = %v", err)
			}
			if again.From != w.From || again.To != w.To || again.Location.String() != w.Location.String() {
				t.Errorf("round trip %q -> %q -> %+v, want %+v", tt.in, w.String(), again, w)
			}
		})
	}
}

func TestParseWindowErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		"abc",
		"01:00",
		"01:00-",
		"-02:00",
		"25:00-01:00",
		"01:00-25:00",
		"01:60-02:00",
		"24:01-01:00",
		"1h-2h",
		"01:00-02:00-03:00",
		"01:00-02:00 UTC extra",
		"01:00 - 02:00 UTC",
		"01:00-02:00 Nowhere/Atlantis",
	} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			w, err := policy.ParseWindow(in)
			if err == nil {
				t.Fatalf("ParseWindow(%q) = %+v, want an error", in, w)
			}
			if !strings.HasPrefix(err.Error(), "policy: time window") {
				t.Errorf("error %q does not say it is about a time window", err)
			}
			if !reflect.DeepEqual(w, policy.Window{}) {
				t.Errorf("ParseWindow(%q) returned %+v with its error, want the zero Window", in, w)
			}
		})
	}
}

// TestScenarioCIWindow: a scheduled CI job's identity may only work between
// 01:00 and 02:00 UTC.
func TestScenarioCIWindow(t *testing.T) {
	w := rtMustWindow(t, "01:00-02:00 UTC")
	p := policy.FirstMatch(
		policy.Rule{Name: "ci-window", When: policy.All(policy.Subject("ci-bot"), policy.Not(policy.During(w))),
			Verdict: policy.Block, Reason: "ci-bot runs between 01:00 and 02:00 UTC only."},
		policy.Default("default", policy.Allow, ""),
	)
	ci := session.Identity{Subject: "ci-bot", Issuer: "https://ci.example"}
	human := session.Identity{Subject: "alice", Issuer: "https://idp.example"}
	tests := []struct {
		name string
		id   session.Identity
		at   string
		want policy.Decision
	}{
		{"ci-bot at 01:30", ci, "2025-01-15T01:30:00Z", rtDecision(policy.Allow, "default")},
		{"ci-bot at 01:00", ci, "2025-01-15T01:00:00Z", rtDecision(policy.Allow, "default")},
		{"ci-bot at 02:00", ci, "2025-01-15T02:00:00Z", policy.Decision{Verdict: policy.Block, Rule: "ci-window", Reason: "ci-bot runs between 01:00 and 02:00 UTC only."}},
		{"ci-bot at 03:00", ci, "2025-01-15T03:00:00Z", policy.Decision{Verdict: policy.Block, Rule: "ci-window", Reason: "ci-bot runs between 01:00 and 02:00 UTC only."}},
		{"ci-bot at 01:30 New York time", ci, "2025-01-15T01:30:00-05:00", policy.Decision{Verdict: policy.Block, Rule: "ci-window", Reason: "ci-bot runs between 01:00 and 02:00 UTC only."}},
		{"someone else at 03:00", human, "2025-01-15T03:00:00Z", rtDecision(policy.Allow, "default")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := rtAs(tt.id, rtQ([]string{"public"}, rtSelect("builds")))
			q.Time = rtTime(tt.at)
			if got := rtDecide(t, p, q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ---------------------------------------------------------------------
// The same rules on statements from the real analyser.

func TestPoliciesOnSQL(t *testing.T) {
	a := analysis.New(analysis.Limits{}, 0)
	public := []string{"public"}
	tests := []struct {
		name string
		p    policy.Policy
		path []string
		sql  string
		want policy.Verdict
		rule string // when want is not Abstain
	}{
		{"read-only select", policy.ReadOnly{}, public, "SELECT * FROM orders WHERE id = 1", policy.Abstain, ""},
		{"read-only delete", policy.ReadOnly{}, public, "DELETE FROM orders", policy.Block, "read-only"},
		{"read-only explain analyze delete", policy.ReadOnly{}, public, "EXPLAIN ANALYZE DELETE FROM orders", policy.Block, "read-only"},
		{"read-only data-modifying CTE", policy.ReadOnly{}, public, "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", policy.Block, "read-only"},
		{"read-only for update", policy.ReadOnly{}, public, "SELECT * FROM orders FOR UPDATE", policy.Block, "read-only"},
		{"read-only for share", policy.ReadOnly{}, public, "SELECT * FROM orders FOR SHARE", policy.Block, "read-only"},
		{"read-only nextval", policy.ReadOnly{}, public, "SELECT nextval('orders_id_seq')", policy.Block, "read-only"},
		{"read-only lo_import", policy.ReadOnly{}, public, "SELECT lo_import('/etc/passwd')", policy.Block, "read-only"},
		{"read-only copy from", policy.ReadOnly{}, public, "COPY orders FROM STDIN", policy.Block, "read-only"},
		{"read-only copy to stdout", policy.ReadOnly{}, public, "COPY orders TO STDOUT", policy.Abstain, ""},
		{"read-only copy to a server file", policy.ReadOnly{AllowRunTime: true}, public, "COPY orders TO '/tmp/x'", policy.Block, "read-only"},
		{"read-only DO", policy.ReadOnly{AllowRunTime: true}, public, "DO $$ BEGIN PERFORM 1; END $$", policy.Block, "read-only"},
		{"read-only CALL", policy.ReadOnly{AllowRunTime: true}, public, "CALL refresh()", policy.Block, "read-only"},
		{"read-only LOAD", policy.ReadOnly{AllowRunTime: true}, public, "LOAD 'auto_explain'", policy.Block, "read-only"},
		{"read-only NOTIFY", policy.ReadOnly{}, public, "NOTIFY jobs", policy.Block, "read-only"},
		{"read-only LISTEN", policy.ReadOnly{}, public, "LISTEN jobs", policy.Abstain, ""},
		{"read-only user function", policy.ReadOnly{}, public, "SELECT myfunc(1)", policy.Block, "read-only"},
		{"read-only user function, AllowRunTime", policy.ReadOnly{AllowRunTime: true}, public, "SELECT myfunc(1)", policy.Abstain, ""},
		{"read-only query_to_xml", policy.ReadOnly{}, public, "SELECT query_to_xml('delete from orders', true, true, '')", policy.Block, "read-only"},
		{"read-only SET default_transaction_read_only off", policy.ReadOnly{}, public, "SET default_transaction_read_only = off", policy.Block, "read-only"},
		{"read-only SET default_transaction_read_only 0", policy.ReadOnly{}, public, "SET default_transaction_read_only = 0", policy.Block, "read-only"},
		{"read-only SET default_transaction_read_only 'false'", policy.ReadOnly{}, public, "SET default_transaction_read_only = 'false'", policy.Block, "read-only"},
		{"read-only SET ... TO DEFAULT", policy.ReadOnly{}, public, "SET default_transaction_read_only TO DEFAULT", policy.Block, "read-only"},
		{"read-only RESET default_transaction_read_only", policy.ReadOnly{}, public, "RESET default_transaction_read_only", policy.Block, "read-only"},
		{"read-only SET SESSION CHARACTERISTICS", policy.ReadOnly{}, public, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", policy.Block, "read-only"},
		{"read-only BEGIN READ WRITE", policy.ReadOnly{}, public, "BEGIN READ WRITE", policy.Block, "read-only"},
		{"read-only START TRANSACTION READ WRITE", policy.ReadOnly{}, public, "START TRANSACTION READ WRITE", policy.Block, "read-only"},
		{"read-only SET TRANSACTION READ WRITE", policy.ReadOnly{}, public, "SET TRANSACTION READ WRITE", policy.Block, "read-only"},
		{"read-only set_config", policy.ReadOnly{AllowRunTime: true}, public, "SELECT set_config('default_transaction_read_only', 'off', false)", policy.Block, "read-only"},
		{"read-only set_config of a computed name", policy.ReadOnly{AllowRunTime: true}, public, "SELECT set_config(name, 'off', false) FROM settings", policy.Block, "read-only"},
		{"read-only RESET ALL", policy.ReadOnly{}, public, "RESET ALL", policy.Block, "read-only"},
		{"read-only DISCARD ALL", policy.ReadOnly{}, public, "DISCARD ALL", policy.Block, "read-only"},
		{"read-only BEGIN READ ONLY", policy.ReadOnly{}, public, "BEGIN READ ONLY", policy.Abstain, ""},
		{"read-only SET transaction_read_only on", policy.ReadOnly{}, public, "SET transaction_read_only = on", policy.Abstain, ""},
		{"read-only second statement writes", policy.ReadOnly{}, public, "SELECT 1; UPDATE orders SET paid = true", policy.Block, "read-only"},

		{"block delete", policy.BlockKinds(policy.KindDelete), public, "DELETE FROM orders WHERE id = 1", policy.Block, "block-kinds"},
		{"block explain analyze delete", policy.BlockKinds(policy.KindDelete), public, "EXPLAIN (ANALYZE) DELETE FROM orders", policy.Block, "block-kinds"},
		{"block prepare of delete", policy.BlockKinds(policy.KindDelete), public, "PREPARE p AS DELETE FROM orders WHERE id = $1", policy.Block, "block-kinds"},
		{"block copy of delete returning", policy.BlockKinds(policy.KindDelete), public, "COPY (DELETE FROM orders RETURNING *) TO STDOUT", policy.Block, "block-kinds"},
		{"block-kinds lets select through", policy.BlockKinds(policy.KindDelete), public, "SELECT * FROM orders", policy.Abstain, ""},
		{"block truncate", policy.BlockKinds(policy.KindTruncate, policy.KindDDL), public, "TRUNCATE orders", policy.Block, "block-kinds"},
		{"block DDL", policy.BlockKinds(policy.KindTruncate, policy.KindDDL), public, "DROP TABLE orders", policy.Block, "block-kinds"},

		{"block-tables qualified", policy.BlockTables("secret.*"), public, "SELECT * FROM secret.keys", policy.Block, "block-tables"},
		{"block-tables via search path", policy.BlockTables("secret.*"), []string{"public", "secret"}, "SELECT * FROM keys", policy.Block, "block-tables"},
		{"block-tables not on the path", policy.BlockTables("secret.*"), public, "SELECT * FROM keys", policy.Abstain, ""},
		{"block-tables unknown path", policy.BlockTables("secret.keys"), nil, "SELECT * FROM keys", policy.Block, "block-tables"},
		{"block-tables quoted name", policy.BlockTables("public.Keys"), public, `SELECT * FROM "Keys"`, policy.Block, "block-tables"},
		{"block-tables folded name", policy.BlockTables("public.keys"), public, `SELECT * FROM KEYS`, policy.Block, "block-tables"},
		{"block-tables in a subquery", policy.BlockTables("secret.*"), public, "SELECT * FROM orders WHERE id IN (SELECT id FROM secret.keys)", policy.Block, "block-tables"},
		{"block-tables in a CTE", policy.BlockTables("secret.*"), public, "WITH k AS (SELECT * FROM secret.keys) SELECT * FROM k", policy.Block, "block-tables"},
		{"block-tables CTE shadowing a table", policy.BlockTables("public.keys"), public, "WITH keys AS (SELECT 1) SELECT * FROM keys", policy.Abstain, ""},
		{"block-tables catalog", policy.BlockTables("pg_catalog.pg_authid"), public, "SELECT rolpassword FROM pg_authid", policy.Block, "block-tables"},
		{"block-tables catalog, qualified", policy.BlockTables("pg_catalog.pg_authid"), public, "SELECT rolpassword FROM pg_catalog.pg_authid", policy.Block, "block-tables"},
		{"block-tables catalog name in another schema", policy.BlockTables("pg_catalog.pg_authid"), public, "SELECT * FROM public.pg_authid", policy.Abstain, ""},
		{"block-tables written by nextval", policy.BlockTables("public.orders_id_seq"), public, "SELECT nextval('orders_id_seq')", policy.Block, "block-tables"},

		{"only-tables allowed", policy.OnlyTables("public.*"), public, "SELECT * FROM orders JOIN customers USING (customer_id)", policy.Abstain, ""},
		{"only-tables other schema", policy.OnlyTables("public.*"), public, "SELECT * FROM secret.keys", policy.Block, "only-tables"},
		{"only-tables catalog", policy.OnlyTables("public.*"), public, "SELECT * FROM pg_class", policy.Block, "only-tables"},
		{"only-tables two candidates", policy.OnlyTables("public.*"), []string{"public", "app"}, "SELECT * FROM orders", policy.Block, "only-tables"},
		{"only-tables unknown path", policy.OnlyTables("public.*"), nil, "SELECT * FROM orders", policy.Block, "only-tables"},
		{"only-tables unknown path, any-schema pattern", policy.OnlyTables("orders"), nil, "SELECT * FROM orders", policy.Abstain, ""},
		{"only-tables no table", policy.OnlyTables("public.*"), public, "SELECT 1", policy.Abstain, ""},
		{"only-tables user function", policy.OnlyTables("public.*"), public, "SELECT myfunc()", policy.Block, "only-tables"},
		{"only-tables query_to_xml", policy.OnlyTables("public.*"), public, "SELECT query_to_xml('select * from secret.keys', true, true, '')", policy.Block, "only-tables"},

		{"dangerous pg_read_file", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT pg_read_file('/etc/passwd')", policy.Block, "block-functions"},
		{"dangerous qualified", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT pg_catalog.pg_read_file('/etc/passwd')", policy.Block, "block-functions"},
		{"dangerous lo_import", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT lo_import('/etc/passwd')", policy.Block, "block-functions"},
		{"dangerous dblink", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", policy.Block, "block-functions"},
		{"dangerous dblink in another schema", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT ext.dblink('host=x', 'select 1')", policy.Block, "block-functions"},
		{"dangerous set_config", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT set_config('role', 'admin', false)", policy.Block, "block-functions"},
		{"dangerous query_to_xml", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT query_to_xml('select 1', true, true, '')", policy.Block, "block-functions"},
		{"dangerous in a WHERE", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT 1 WHERE pg_terminate_backend(42)", policy.Block, "block-functions"},
		{"harmless function", policy.BlockFunctions(policy.DangerousFunctions()...), public, "SELECT lower(name), now() FROM customers", policy.Abstain, ""},

		{"protected SET ROLE", policy.BlockSettings(policy.ProtectedSettings()...), public, "SET ROLE admin", policy.Block, "block-settings"},
		{"protected RESET ROLE", policy.BlockSettings(policy.ProtectedSettings()...), public, "RESET ROLE", policy.Block, "block-settings"},
		{"protected SET SESSION AUTHORIZATION", policy.BlockSettings(policy.ProtectedSettings()...), public, "SET SESSION AUTHORIZATION bob", policy.Block, "block-settings"},
		{"protected set_config role", policy.BlockSettings(policy.ProtectedSettings()...), public, "SELECT set_config('role', 'admin', false)", policy.Block, "block-settings"},
		{"protected RESET ALL", policy.BlockSettings(policy.ProtectedSettings()...), public, "RESET ALL", policy.Block, "block-settings"},
		{"protected search_path is fine", policy.BlockSettings(policy.ProtectedSettings()...), public, "SET search_path = app, public", policy.Abstain, ""},
		{"protected work_mem is fine", policy.BlockSettings(policy.ProtectedSettings()...), public, "SET work_mem = '64MB'", policy.Abstain, ""},

		{"strictest of several", policy.Strictest(policy.Default("default", policy.Allow, ""), policy.ReadOnly{}, policy.BlockTables("secret.*")),
			public, "SELECT * FROM secret.keys", policy.Block, "block-tables"},
		{"strictest default", policy.Strictest(policy.Default("default", policy.Allow, ""), policy.ReadOnly{}, policy.BlockTables("secret.*")),
			public, "SELECT * FROM orders", policy.Allow, "default"},
		{"first-match order", policy.FirstMatch(policy.Rule{Name: "allow-orders", When: policy.Touches("public.orders"), Verdict: policy.Allow}, policy.ReadOnly{}),
			public, "DELETE FROM orders", policy.Allow, "allow-orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts, err := a.Analyze(tt.sql)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", tt.sql, err)
			}
			got := rtDecide(t, tt.p, rtQ(tt.path, sts...))
			if got.Verdict != tt.want || (tt.want != policy.Abstain && got.Rule != tt.rule) {
				t.Errorf("%q with search path %q: %+v, want %v by %q", tt.sql, tt.path, got, tt.want, tt.rule)
			}
		})
	}
}

// ---------------------------------------------------------------------
// Regressions: bugs found in review, each fixed.

func TestRegressions(t *testing.T) {
	// Window.Contains must use the wall-clock time of day, not the time
	// elapsed since local midnight, which differs by an hour on the days a
	// zone changes to or from summer time.
	t.Run("Window.Contains on DST change days", func(t *testing.T) {
		tests := []struct {
			window string
			at     string
			want   bool
			wall   string // the time in Paris
		}{
			// 2025-03-30: clocks go from 02:00 CET to 03:00 CEST.
			{"09:00-10:00 Europe/Paris", "2025-03-30T07:30:00Z", true, "09:30 CEST"},
			{"09:00-10:00 Europe/Paris", "2025-03-30T08:30:00Z", false, "10:30 CEST"},
			{"22:00-06:00 Europe/Paris", "2025-03-30T04:30:00Z", false, "06:30 CEST"},
			// 2025-10-26: clocks go from 03:00 CEST back to 02:00 CET.
			{"09:00-10:00 Europe/Paris", "2025-10-26T08:30:00Z", true, "09:30 CET"},
			{"09:00-10:00 Europe/Paris", "2025-10-26T07:30:00Z", false, "08:30 CET"},
			{"22:00-06:00 Europe/Paris", "2025-10-26T04:30:00Z", true, "05:30 CET"},
		}
		for _, tt := range tests {
			t.Run(tt.window+"@"+tt.wall, func(t *testing.T) {
				w := rtMustWindow(t, tt.window)
				at := rtTime(tt.at)
				if wall := at.In(w.Location).Format("15:04 MST"); wall != tt.wall {
					t.Fatalf("test setup: %s is %s in Paris, not %s", tt.at, wall, tt.wall)
				}
				if got := w.Contains(at); got != tt.want {
					t.Errorf("%s contains %s (%s) = %v, want %v", w, tt.at, tt.wall, got, tt.want)
				}
			})
		}
	})

	// BlockFunctions resolves an unqualified call through nothing: a
	// "schema.name" pattern matches only calls written with that schema
	// (or, for pg_catalog, unqualified built-ins). A call evil() that the
	// session's search_path resolves to app.evil is not refused by
	// BlockFunctions("app.evil"), whereas BlockTables("app.t") does refuse
	// an unqualified t on the same search path. Fails open.
	t.Run("BlockFunctions(schema.name) on an unqualified call", func(t *testing.T) {
		evil := policy.Function{Name: "evil"} // not a built-in: the database's own
		tests := []struct {
			name string
			path []string
		}{
			{"search path holds the schema", []string{"app"}},
			{"schema is one of several candidates", []string{"public", "app"}},
			{"unknown search path", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := rtQ(tt.path, rtCall(evil))
				if got := rtDecide(t, policy.BlockFunctions("app.evil"), q); got.Verdict != policy.Block {
					t.Errorf("BlockFunctions(app.evil) on SELECT evil() with search path %q = %+v, want block", tt.path, got)
				}
				if got := rtDecide(t, policy.BlockTables("app.evil"), rtQ(tt.path, rtSelect("evil"))); got.Verdict != policy.Block {
					t.Errorf("for comparison, BlockTables(app.evil) on SELECT * FROM evil = %+v, want block", got)
				}
			})
		}
	})

	// BlockKinds and IsKind see only a statement's own kind and those of
	// Inner; a data-modifying CTE has no Inner (the analyser reports the
	// statement as a SELECT that Writes, with AllRows), so blocking
	// KindDelete lets a DELETE wrapped in WITH through.
	t.Run("BlockKinds(KindDelete) on a DELETE in a CTE", func(t *testing.T) {
		a := analysis.New(analysis.Limits{}, 0)
		for _, sql := range []string{
			"WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d",
			"WITH d AS (DELETE FROM orders) SELECT 1",
		} {
			sts, err := a.Analyze(sql)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", sql, err)
			}
			q := rtQ([]string{"public"}, sts...)
			if got := rtDecide(t, policy.BlockKinds(policy.KindDelete), q); got.Verdict != policy.Block {
				t.Errorf("BlockKinds(delete) on %q = %+v, want block", sql, got)
			}
			if policy.IsKind(policy.KindDelete).Holds(q) != true {
				t.Errorf("IsKind(delete) on %q = false, want true", sql)
			}
		}
	})
}
