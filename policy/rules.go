package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rule is a policy that decides only about the queries its condition
// holds for, and abstains on the others. Its zero value abstains always
// (it has no condition, and no verdict).
type Rule struct {
	// Name names the rule in decisions, errors and recordings.
	Name string
	// When selects the queries the rule decides about; nil matches none,
	// so that a forgotten condition cannot widen a rule. Use Always() for
	// every query.
	When Condition
	// Verdict is the decision when the condition holds.
	Verdict Verdict
	// Reason tells the user why.
	Reason string
	// Masks, for a Mask verdict.
	Masks []ColumnMask
	// Suspend, for a Terminate verdict: how long the identity's chain is
	// kept out.
	Suspend time.Duration
	// Approval, for an Approve verdict: how it is approved (nil: hold,
	// with the defaults).
	Approval *ApprovalSpec
}

// Decide returns the rule's decision when its condition holds, and
// abstains otherwise.
func (r Rule) Decide(_ context.Context, q *Query) (Decision, error) {
	if r.When == nil || r.Verdict == Abstain || !r.When.Holds(q) {
		return Decision{}, nil
	}
	return Decision{Verdict: r.Verdict, Rule: r.Name, Reason: r.Reason, Masks: r.Masks, Suspend: r.Suspend, Approval: r.Approval}, nil
}

// When restricts p to the queries c holds for: on the others it abstains.
// Session setup (see Setup) is asked of p when c holds for a query made
// of the session alone (conditions on statements then do not hold).
func When(c Condition, p Policy) Policy { return &when{c: c, p: p} }

type when struct {
	c Condition
	p Policy
}

func (w *when) Decide(ctx context.Context, q *Query) (Decision, error) {
	if !w.c.Holds(q) {
		return Decision{}, nil
	}
	return w.p.Decide(ctx, q)
}

func (w *when) SetupSession(q *Query, s *Setup) {
	if w.c.Holds(q) {
		setupOf(w.p, q, s)
	}
}

// Named renames the decisions of p (those that are not Abstain) to name.
func Named(name string, p Policy) Policy { return &named{name: name, p: p} }

type named struct {
	name string
	p    Policy
}

func (n *named) Decide(ctx context.Context, q *Query) (Decision, error) {
	d, err := n.p.Decide(ctx, q)
	if err == nil && d.Verdict != Abstain {
		d.Rule = n.name
	}
	return d, err
}

func (n *named) SetupSession(q *Query, s *Setup) { setupOf(n.p, q, s) }

// FirstMatch returns the decision of the first policy that does not
// abstain, in order (firewall style); it abstains when they all do. An
// error from a policy is returned at once.
func FirstMatch(ps ...Policy) Policy { return firstMatch(ps) }

type firstMatch []Policy

func (f firstMatch) Decide(ctx context.Context, q *Query) (Decision, error) {
	for _, p := range f {
		d, err := p.Decide(ctx, q)
		if err != nil || d.Verdict != Abstain {
			return d, err
		}
	}
	return Decision{}, nil
}

func (f firstMatch) SetupSession(q *Query, s *Setup) {
	for _, p := range f {
		setupOf(p, q, s)
	}
}

// Strictest asks every policy and returns the strictest decision (the
// largest Verdict; the first of equals), so that no rule can be overridden
// by another: order does not matter. Mask decisions merge their masks. It
// abstains when they all do; an error from any policy is returned.
func Strictest(ps ...Policy) Policy { return strictest(ps) }

type strictest []Policy

func (st strictest) Decide(ctx context.Context, q *Query) (Decision, error) {
	var best Decision
	var masks []ColumnMask
	for _, p := range st {
		d, err := p.Decide(ctx, q)
		if err != nil {
			return Decision{}, err
		}
		if d.Verdict == Mask {
			masks = append(masks, d.Masks...)
		}
		if d.Verdict > best.Verdict {
			best = d
		}
	}
	if best.Verdict == Mask {
		best.Masks = masks
	}
	return best, nil
}

func (st strictest) SetupSession(q *Query, s *Setup) {
	for _, p := range st {
		setupOf(p, q, s)
	}
}

// Default returns a policy that decides verdict for every query under the
// rule name: the last entry of a FirstMatch, or the floor of a Strictest.
// Function calls are left out (it abstains on them), so that the
// fast-path interface stays closed unless a rule names it.
func Default(name string, verdict Verdict, reason string) Policy {
	return Rule{Name: name, Verdict: verdict, Reason: reason, When: Not(IsKind(KindFunctionCall))}
}

// BlockKinds refuses statements of the given kinds, also when nested (the
// DELETE in an EXPLAIN ANALYZE, the statement a PREPARE defines).
func BlockKinds(kinds ...Kind) Policy {
	return Func(func(_ context.Context, q *Query) (Decision, error) {
		for _, st := range q.Statements {
			for s := st; s != nil; s = s.Inner {
				if slices.Contains(kinds, s.Kind) {
					return Decision{Verdict: Block, Rule: "block-kinds",
						Reason: fmt.Sprintf("%s statements are not allowed.", s.Command)}, nil
				}
				for _, k := range s.Contains {
					if slices.Contains(kinds, k) {
						return Decision{Verdict: Block, Rule: "block-kinds",
							Reason: fmt.Sprintf("%s statements are not allowed (in a WITH clause).", strings.ToUpper(string(k)))}, nil
					}
				}
			}
		}
		return Decision{}, nil
	})
}

// BlockTables refuses statements that read or write a relation matching
// one of patterns: "schema.table", "schema.*", "*.table" or "table" (any
// schema). An unqualified name is refused when any schema the session's
// search_path may resolve it to matches. Names are as PostgreSQL stores
// them: lower case unless created quoted.
func BlockTables(patterns ...string) Policy {
	return Func(func(_ context.Context, q *Query) (Decision, error) {
		if r, ok := firstRelation(q, patterns, true); ok {
			return Decision{Verdict: Block, Rule: "block-tables",
				Reason: fmt.Sprintf("Access to %s is not allowed.", r)}, nil
		}
		return Decision{}, nil
	})
}

// OnlyTables refuses statements that read or write a relation matching
// none of patterns (see BlockTables), and abstains on the others. An
// unqualified name must match in every schema it may resolve to.
// Statements whose reads the gateway cannot see (run-time ones, see
// Statement.RunTime) are refused too.
func OnlyTables(patterns ...string) Policy {
	return Func(func(_ context.Context, q *Query) (Decision, error) {
		if r, ok := firstRelation(q, patterns, false); ok {
			return Decision{Verdict: Block, Rule: "only-tables",
				Reason: fmt.Sprintf("%s is not among the tables this session may use.", r)}, nil
		}
		for _, st := range q.Statements {
			for s := st; s != nil; s = s.Inner {
				if len(s.RunTime) > 0 {
					return Decision{Verdict: Block, Rule: "only-tables",
						Reason: fmt.Sprintf("The gateway cannot see which tables this statement uses (%s).", s.RunTime[0])}, nil
				}
			}
		}
		return Decision{}, nil
	})
}

// BlockFunctions refuses statements that call a function matching one of
// names: "schema.name", or "name" for any schema (so that a function
// created elsewhere under a built-in's name is caught too). See
// DangerousFunctions for a maintained default list.
func BlockFunctions(names ...string) Policy {
	return Func(func(_ context.Context, q *Query) (Decision, error) {
		if f, ok := firstFunction(q, names); ok {
			return Decision{Verdict: Block, Rule: "block-functions",
				Reason: fmt.Sprintf("Calling %s is not allowed.", f)}, nil
		}
		return Decision{}, nil
	})
}

// DangerousFunctions returns the names of PostgreSQL's functions that
// escape a gateway's control: file and program access, large objects,
// dblink, backend signalling and administration, functions that run SQL
// given as text, and those that change settings (identity, parsing,
// read-only) behind SET's back. The list is a fresh copy.
func DangerousFunctions() []string {
	return []string{
		// Files and programs on the server.
		"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir",
		"pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
		"pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_file_write", "pg_file_rename",
		"pg_file_unlink", "pg_file_sync", "pg_logdir_ls",
		// Large objects (also server files: lo_import, lo_export).
		"lo_import", "lo_export", "lo_create", "lo_creat", "lo_unlink", "lo_open", "lo_close",
		"loread", "lowrite", "lo_get", "lo_put", "lo_from_bytea", "lo_lseek", "lo_lseek64",
		"lo_tell", "lo_tell64", "lo_truncate", "lo_truncate64",
		// Other databases.
		"dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
		"dblink_open", "dblink_fetch", "dblink_get_result",
		// Backends, server and replication administration.
		"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
		"pg_promote", "pg_switch_wal", "pg_create_restore_point", "pg_backup_start",
		"pg_backup_stop", "pg_log_backend_memory_contexts", "pg_create_physical_replication_slot",
		"pg_create_logical_replication_slot", "pg_drop_replication_slot",
		"pg_logical_emit_message", "pg_replication_origin_create", "pg_stat_reset",
		"pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
		// SQL given as text, which the gateway cannot judge.
		"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
		"cursor_to_xmlschema", "table_to_xml", "table_to_xml_and_xmlschema",
		"schema_to_xml", "schema_to_xml_and_xmlschema", "database_to_xml",
		"database_to_xml_and_xmlschema", "ts_stat", "ts_rewrite",
		// Settings behind SET's back.
		"set_config",
	}
}

// firstRelation returns the first relation of q that matches one of
// patterns (any=true) or matches none of them (any=false).
func firstRelation(q *Query, patterns []string, any bool) (Relation, bool) {
	for _, st := range q.Statements {
		for s := st; s != nil; s = s.Inner {
			for _, rels := range [][]Relation{s.Reads, s.Written} {
				for _, r := range rels {
					if matchesRelation(q, r, patterns, any) == any {
						return r, true
					}
				}
			}
		}
	}
	return Relation{}, false
}

// matchesRelation reports, with any, whether r may resolve to a relation
// matching a pattern; without, whether every relation it may resolve to
// matches one.
func matchesRelation(q *Query, r Relation, patterns []string, any bool) bool {
	schemas := q.Schemas(r)
	if schemas == nil {
		// Any schema is possible: only a pattern for every schema is sure.
		schemas = []string{"*"}
		if any {
			for _, p := range patterns {
				if _, name := splitPattern(p); name == "*" || name == r.Name {
					return true
				}
			}
			return false
		}
	}
	for _, schema := range schemas {
		ok := slices.ContainsFunc(patterns, func(p string) bool { return MatchRelation(p, schema, r.Name) })
		if ok && any {
			return true
		}
		if !ok && !any {
			return false
		}
	}
	return !any
}

// MatchRelation reports whether the relation schema.name matches pattern
// ("schema.table", "schema.*", "*.table", "*.*", or "table" for any
// schema). A schema of "*" (unknown) matches only patterns for any schema.
func MatchRelation(pattern, schema, name string) bool {
	ps, pn := splitPattern(pattern)
	return (pn == "*" || pn == name) && (ps == "*" || ps == schema)
}

func splitPattern(p string) (schema, name string) {
	if s, n, ok := strings.Cut(p, "."); ok {
		return s, n
	}
	return "*", p
}

// MatchFunction reports whether f, as written, matches pattern:
// "schema.name" for that schema (an unqualified call matches
// "pg_catalog.name" patterns when it is a built-in), or "name" for any
// schema. BlockFunctions and Calls go further: they resolve unqualified
// calls through the session's search_path (Query.FunctionSchemas).
func MatchFunction(pattern string, f Function) bool {
	ps, pn := splitPattern(pattern)
	if pn != f.Name && pn != "*" {
		return false
	}
	switch {
	case ps == "*":
		return true
	case f.Schema == "":
		return ps == "pg_catalog" && f.Builtin
	}
	return ps == f.Schema
}

func firstFunction(q *Query, patterns []string) (Function, bool) {
	for _, st := range q.Statements {
		for s := st; s != nil; s = s.Inner {
			for _, f := range s.Functions {
				if slices.ContainsFunc(patterns, func(p string) bool { return callMatches(q, p, f) }) {
					return f, true
				}
			}
		}
	}
	return Function{}, false
}

// callMatches reports whether the call f may call a function matching
// pattern, resolving an unqualified call through the session's
// search_path (see Query.FunctionSchemas).
func callMatches(q *Query, pattern string, f Function) bool {
	ps, pn := splitPattern(pattern)
	if pn != f.Name && pn != "*" {
		return false
	}
	if ps == "*" {
		return true
	}
	schemas := q.FunctionSchemas(f)
	return schemas == nil || slices.Contains(schemas, ps)
}
