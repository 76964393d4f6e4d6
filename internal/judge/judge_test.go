package judge

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

func analyze(t testing.TB, sql string) []*policy.Statement {
	t.Helper()
	sts, err := analysis.New(analysis.Limits{}, 0).Analyze(sql)
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	return sts
}

func TestSplitSearchPath(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`"$user", public`, []string{"app", "public"}},
		{`a,B , "C d", "x""y"`, []string{"a", "b", "C d", `x"y`}},
		{`pg_temp, pg_temp_3, pg_catalog, s`, []string{"pg_catalog", "s"}},
		{``, nil},
		{`, ,`, nil},
	} {
		if got := SplitSearchPath(c.in, "app"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitSearchPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParserSettings(t *testing.T) {
	for sql, refused := range map[string]bool{
		"SET standard_conforming_strings = off":                                             true,
		"SET standard_conforming_strings = on":                                              false,
		"RESET standard_conforming_strings":                                                 false,
		"SET client_encoding = 'SJIS'":                                                      true,
		"SET client_encoding = 'UTF8'":                                                      false,
		"SET backslash_quote = on":                                                          true,
		"SELECT set_config('standard_' || 'conforming_strings', 'off', false)":              true,
		"SELECT set_config('work_mem', '1MB', false)":                                       false,
		"UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'": true,
		"EXPLAIN ANALYZE SELECT set_config('client_encoding', 'BIG5', false)":               true,
		"SELECT 1": false,
	} {
		if _, got := GatewaySettings(analyze(t, sql)); got != refused {
			t.Errorf("GatewaySettings(%q) refused = %v, want %v", sql, got, refused)
		}
	}
}

func TestResolveTracksNames(t *testing.T) {
	n := Names{SearchPath: []string{"public"}}
	step := func(sql string) []*policy.Statement {
		t.Helper()
		sts, next := n.Resolve(analyze(t, sql), "app")
		n = next
		return sts
	}
	step("PREPARE p AS DELETE FROM orders WHERE id = $1")
	ex := step("EXECUTE p(1)")
	if ex[0].Inner == nil || ex[0].Inner.Kind != policy.KindDelete || !ex[0].Writes {
		t.Fatalf("EXECUTE p: %+v; want the prepared DELETE as Inner, writing", ex[0])
	}
	// A second PREPARE of the name keeps both candidates.
	step("PREPARE p AS SELECT 1")
	ex = step("EXECUTE p")
	if !ex[0].Writes || ex[0].Inner == nil || ex[0].Inner.Inner == nil {
		t.Fatalf("EXECUTE p with two candidates: %+v; want both, writing", ex[0])
	}
	step("DEALLOCATE p")
	ex = step("EXECUTE p")
	if len(ex[0].Inner.RunTime) == 0 || !ex[0].Writes {
		t.Fatalf("EXECUTE of a deallocated name: %+v; want an unknown, writing statement", ex[0].Inner)
	}
	// The same text may prepare and execute.
	ex = step("PREPARE q AS INSERT INTO t VALUES (1); EXECUTE q")
	if ex[1].Inner == nil || ex[1].Inner.Kind != policy.KindInsert {
		t.Fatalf("EXECUTE q after PREPARE q in one text: %+v", ex[1])
	}
	// Cursors.
	step("DECLARE c CURSOR FOR SELECT * FROM secrets")
	f := step("FETCH 10 FROM c")
	if f[0].Inner == nil || len(f[0].Inner.Reads) != 1 {
		t.Fatalf("FETCH c: %+v; want the cursor's query as Inner", f[0])
	}
	step("CLOSE ALL")
	if f = step("FETCH c"); len(f[0].Inner.RunTime) == 0 {
		t.Fatalf("FETCH of a closed cursor: %+v; want an unknown cursor", f[0].Inner)
	}
	// The search path only grows; a computed one is unknown.
	step(`SET search_path = "$user", hidden`)
	if !reflect.DeepEqual(n.SearchPath, []string{"public", "app", "hidden"}) {
		t.Fatalf("search path %q", n.SearchPath)
	}
	step("RESET search_path")
	if len(n.SearchPath) != 3 {
		t.Fatalf("RESET shrank the search path to %q", n.SearchPath)
	}
	step("SELECT set_config('search_path', current_user, false)")
	if n.SearchPath != nil {
		t.Fatalf("a computed search path is %q, want unknown (nil)", n.SearchPath)
	}
}

func TestResolveDoesNotModifyItsInput(t *testing.T) {
	sts := analyze(t, "EXECUTE p")
	before := *sts[0]
	n := Names{Prepared: map[string][]*policy.Statement{"p": analyze(t, "DELETE FROM t")}}
	out, _ := n.Resolve(sts, "app")
	if !reflect.DeepEqual(before.Kind, sts[0].Kind) || sts[0].Inner != nil || out[0] == sts[0] {
		t.Fatal("Resolve modified the shared analysis instead of copying it")
	}
}

func TestDecideFailsClosed(t *testing.T) {
	q := &policy.Query{Statements: analyze(t, "SELECT 1")}
	for name, c := range map[string]struct {
		p    policy.Policy
		rule string
		err  bool
	}{
		"no policy": {nil, "no-policy", false},
		"error": {policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
			return policy.Decision{Verdict: policy.Allow}, errors.New("boom")
		}), "policy-error", true},
		"abstain": {policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
			return policy.Decision{}, nil
		}), "no-decision", false},
		"bogus verdict": {policy.Func(func(context.Context, *policy.Query) (policy.Decision, error) {
			return policy.Decision{Verdict: 42, Rule: "weird"}, nil
		}), "weird", false},
	} {
		d, err := Decide(context.Background(), c.p, q)
		if d.Verdict != policy.Block || d.Rule != c.rule || (err != nil) != c.err {
			t.Errorf("%s: %+v, %v; want block by %q", name, d, err, c.rule)
		}
	}
}

func TestOffline(t *testing.T) {
	o := Offline{
		Policy:   policy.FirstMatch(policy.BlockTables("public.secrets"), policy.Default("default", policy.Allow, "")),
		Info:     &session.Info{Identity: session.Identity{Subject: "a"}, UpstreamUser: "app"},
		Names:    Names{SearchPath: []string{"hidden"}},
		Analyzer: analysis.New(analysis.Limits{}, 1<<20),
	}
	ctx := context.Background()
	for _, c := range []struct {
		sql, rule string
	}{
		{"SELECT * FROM secrets", "default"},
		{"SET search_path = hidden, public", "default"},
		{"SELECT * FROM secrets", "block-tables"},
		{"SELECT ((", "analysis"},
		{"SET standard_conforming_strings = off", "parser-settings"},
	} {
		d, err := o.Decide(ctx, c.sql, time.Now())
		if err != nil || d.Rule != c.rule {
			t.Errorf("%q: %+v, %v; want rule %q", c.sql, d, err, c.rule)
		}
	}
}

// BenchmarkDecideCached is the gateway's cost per statement once its text
// is in the analysis cache: lookup, name resolution and a decision by a
// policy like make bench's (read-only, a blocked table, the dangerous
// functions, no DDL).
func BenchmarkDecideCached(b *testing.B) {
	rs := policy.RuleSet{Default: "allow", Rules: []policy.RuleSpec{
		{Name: "read-only", ReadOnly: true},
		{Name: "no-secrets", Tables: []string{"public.secrets"}},
		{Name: "dangerous", Functions: []string{"dangerous"}},
		{Name: "no-ddl", Kinds: []string{"ddl", "dcl"}},
	}}
	p, err := rs.Policy()
	if err != nil {
		b.Fatal(err)
	}
	o := Offline{Policy: p, Info: &session.Info{Identity: session.Identity{Subject: "a"}},
		Names: Names{SearchPath: []string{"public"}}, Analyzer: analysis.New(analysis.Limits{}, 1<<20)}
	ctx := context.Background()
	for _, bc := range []struct{ name, sql string }{
		{"exact", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"},
		{"template", "SELECT abalance FROM pgbench_accounts WHERE aid = 4242"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			now := time.Now()
			if d, _ := o.Decide(ctx, bc.sql, now); d.Verdict != policy.Allow {
				b.Fatalf("%+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				o.Decide(ctx, bc.sql, now)
			}
		})
	}
}
