package lineage

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Taint is a set of masking rules, by index, whose columns' values flow
// into something. It is sorted and without duplicates; nil is empty.
type Taint []int

// Union returns t ∪ u (a new slice when both are non-empty).
func (t Taint) Union(u Taint) Taint {
	switch {
	case len(u) == 0:
		return t
	case len(t) == 0:
		return u
	}
	out := make(Taint, 0, len(t)+len(u))
	i, j := 0, 0
	for i < len(t) || j < len(u) {
		switch {
		case j == len(u) || (i < len(t) && t[i] < u[j]):
			out = append(out, t[i])
			i++
		case i == len(t) || u[j] < t[i]:
			out = append(out, u[j])
			j++
		default:
			out = append(out, t[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// Column is a column of a relation, or an output of a query: its name and
// the masking rules its values come from.
type Column struct {
	Name  string
	Taint Taint
	// Derived is set when the values are computed from masked values (an
	// expression, an aggregate, a whole row), not copies of them: only a
	// mask that keeps nothing of a value is safe for them.
	Derived bool
	// Unknown marks a group of columns whose number the gateway does not
	// know (`*` over a relation with no masked column): all are clean.
	Unknown bool
	// Named is set when Name is certainly the name the server gives the
	// column (an alias, a column reference, a relation's column), so that
	// the gateway can check that it lines up the result as the server
	// does.
	Named bool
}

// Relation is what the catalog says of a relation with masked columns.
type Relation struct {
	// Columns are all the relation's columns, in order.
	Columns []Column
}

// Catalog tells the lineage which relations hold masked values.
type Catalog interface {
	// Relation returns the relation schema.name may name (schema is empty
	// for an unqualified name: every relation of that name the session's
	// search path may find counts), and false when none holds masked
	// values.
	Relation(schema, name string) (Relation, bool)
}

// Plan is what a statement does with masked values.
type Plan struct {
	// Returns is set when the statement returns rows whose columns are
	// Outputs: a query, RETURNING, COPY ... TO, DECLARE (its cursor's rows).
	Returns bool
	Outputs []Column
	// Touches is every rule the statement reads a column of.
	Touches Taint
	// Inference are the rules whose values decide the result without
	// appearing in it (WHERE, JOIN, ORDER BY, GROUP BY, DISTINCT, ...).
	Inference Taint
	// Flows are the rules whose values the statement stores (INSERT ...
	// SELECT, UPDATE SET, CREATE TABLE AS, SELECT INTO).
	Flows Taint
	// Refusal, when set, says why the gateway cannot mask the statement.
	Refusal string
	// Copy is set for COPY ... TO STDOUT; CopyBinary when its format is
	// binary, and CopyOptions say how its text or CSV rows are written.
	Copy, CopyBinary bool
	CopyOptions      CopyOptions
	// Prepare, Execute, Cursor and Fetch name the prepared statement or
	// cursor a PREPARE, EXECUTE, DECLARE or FETCH is about: the gateway
	// keeps the plans of the first and third for the second and fourth.
	Prepare, Execute, Cursor, Fetch string
}

// CopyOptions are the options of COPY TO that decide how rows are written.
type CopyOptions struct {
	CSV    bool
	Header bool
	// Delimiter, Quote and Escape are single bytes ("" when unset: the
	// format's default); Null is the text of NULL, when set.
	Delimiter, Quote, Escape string
	Null                     *string
	// Encoding is the ENCODING option, when set.
	Encoding string
}

// Analyze works out what statement does with the masked values cat knows.
// It never panics: a tree it does not understand refuses the statement.
func Analyze(stmt *pg_query.Node, cat Catalog) (p *Plan) {
	a := &analyzer{cat: cat, plan: &Plan{}}
	defer func() {
		if r := recover(); r != nil {
			p = &Plan{Refusal: fmt.Sprintf("the gateway could not work out where the statement's values come from (%v)", r)}
		}
	}()
	a.statement(unwrap(stmt))
	return a.plan
}

type analyzer struct {
	cat  Catalog
	plan *Plan
}

// entry is a FROM item in scope: its name and its columns.
type entry struct {
	name string
	cols []Column
	// all taints every column, for items whose columns the gateway cannot
	// list (a function over masked values).
	all Taint
	// merged is set for the items of a JOIN USING or NATURAL JOIN, whose
	// joined columns `*` shows once.
	merged bool
}

// scope is one query level's FROM items, CTEs, and its enclosing level.
type scope struct {
	entries []*entry
	ctes    map[string][]Column
	parent  *scope
}

func (s *scope) cte(name string) ([]Column, bool) {
	for ; s != nil; s = s.parent {
		if c, ok := s.ctes[name]; ok {
			return c, true
		}
	}
	return nil, false
}

func (a *analyzer) refuse(format string, args ...any) {
	if a.plan.Refusal == "" {
		a.plan.Refusal = fmt.Sprintf(format, args...)
	}
}

func (a *analyzer) touch(t Taint) Taint {
	a.plan.Touches = a.plan.Touches.Union(t)
	return t
}

func (a *analyzer) infer(t Taint) { a.plan.Inference = a.plan.Inference.Union(t) }
func (a *analyzer) flow(t Taint)  { a.plan.Flows = a.plan.Flows.Union(t) }

// statement analyses a top-level statement.
func (a *analyzer) statement(m proto.Message) {
	p := a.plan
	switch n := m.(type) {
	case *pg_query.SelectStmt:
		cols := a.query(n, nil)
		p.Returns, p.Outputs = true, cols
		if n.IntoClause != nil {
			a.flow(allTaint(cols))
		}
	case *pg_query.InsertStmt:
		sc := a.with(n.WithClause, nil)
		target := a.rangeVar(n.Relation, sc)
		if n.SelectStmt != nil {
			if sel, ok := unwrap(n.SelectStmt).(*pg_query.SelectStmt); ok {
				a.flow(allTaint(a.query(sel, sc)))
			} else {
				a.refuse("an INSERT source the gateway does not know")
			}
		}
		sc.entries = append(sc.entries, target)
		if oc := n.OnConflictClause; oc != nil {
			ex := &entry{name: "excluded"}
			sc.entries = append(sc.entries, ex)
			a.infer(a.expr(oc.WhereClause, sc))
			for _, t := range oc.TargetList {
				a.flow(a.expr(t, sc))
			}
			if oc.Infer != nil {
				a.infer(a.expr(oc.Infer.WhereClause, sc))
			}
		}
		a.returning(n.ReturningList, sc)
	case *pg_query.UpdateStmt:
		sc := a.with(n.WithClause, nil)
		target := a.rangeVar(n.Relation, sc)
		sc.entries = append(sc.entries, target)
		a.from(n.FromClause, sc)
		for _, t := range n.TargetList {
			rt, ok := unwrap(t).(*pg_query.ResTarget)
			if !ok {
				a.refuse("an UPDATE target the gateway does not know")
				continue
			}
			v := a.expr(rt.Val, sc)
			// Writing a masked column's own values back into it reveals
			// nothing: only flows into other columns count.
			if own := columnTaint(target, rt.Name); len(v) > 0 && !subset(v, own) {
				a.flow(v)
			}
		}
		a.infer(a.expr(n.WhereClause, sc))
		a.returning(n.ReturningList, sc)
	case *pg_query.DeleteStmt:
		sc := a.with(n.WithClause, nil)
		sc.entries = append(sc.entries, a.rangeVar(n.Relation, sc))
		a.from(n.UsingClause, sc)
		a.infer(a.expr(n.WhereClause, sc))
		a.returning(n.ReturningList, sc)
	case *pg_query.MergeStmt:
		if t := a.any(n); len(t) > 0 {
			a.refuse("MERGE over masked columns is not supported")
		}
	case *pg_query.CopyStmt:
		a.copyStmt(n)
	case *pg_query.ExplainStmt:
		inner := &analyzer{cat: a.cat, plan: &Plan{}}
		inner.statement(unwrap(n.Query))
		a.touch(inner.plan.Touches)
		if inner.plan.Refusal != "" {
			a.refuse("%s", inner.plan.Refusal)
		}
		// Its estimates come from the planner's statistics of the masked
		// columns its conditions name; with ANALYZE it runs.
		a.infer(inner.plan.Inference)
		if explainAnalyze(n) {
			a.flow(inner.plan.Flows)
		}
	case *pg_query.DeclareCursorStmt:
		if sel, ok := unwrap(n.Query).(*pg_query.SelectStmt); ok {
			p.Outputs = a.query(sel, nil)
			p.Cursor = n.Portalname
		} else {
			a.refuse("a cursor over a query the gateway does not know")
		}
	case *pg_query.PrepareStmt:
		inner := Analyze(n.Query, a.cat)
		*p = *inner
		p.Prepare = n.Name
	case *pg_query.ExecuteStmt:
		p.Execute = n.Name
		for _, par := range n.Params {
			a.flow(a.expr(par, &scope{}))
		}
	case *pg_query.FetchStmt:
		p.Fetch = n.Portalname
	case *pg_query.CreateTableAsStmt:
		if _, ok := unwrap(n.Query).(*pg_query.ExecuteStmt); ok {
			a.refuse("CREATE TABLE AS EXECUTE stores what a prepared statement returns, which may be masked")
			return
		}
		inner := Analyze(n.Query, a.cat)
		a.touch(inner.Touches)
		a.infer(inner.Inference)
		a.flow(inner.Flows.Union(allTaint(inner.Outputs)))
		if inner.Refusal != "" {
			a.refuse("%s", inner.Refusal)
		}
	case *pg_query.ViewStmt, *pg_query.RuleStmt, *pg_query.CreateFunctionStmt:
		if t := a.any(m); len(t) > 0 {
			a.refuse("creating a view, rule or function over masked columns would open a way around the masks")
		}
	case nil:
		a.refuse("an empty statement tree")
	default:
		// Other statements return no rows; a query inside one that reads
		// masked values is refused.
		if t := a.queriesIn(m); len(t) > 0 {
			a.refuse("this kind of statement over masked columns is not supported")
		}
	}
}

func explainAnalyze(n *pg_query.ExplainStmt) bool {
	for _, o := range n.Options {
		if d, ok := unwrap(o).(*pg_query.DefElem); ok && d.Defname == "analyze" {
			if d.Arg == nil {
				return true
			}
			if s, ok := unwrap(d.Arg).(*pg_query.String); ok {
				return s.Sval != "false" && s.Sval != "off" && s.Sval != "0"
			}
			if b, ok := unwrap(d.Arg).(*pg_query.Boolean); ok {
				return b.Boolval
			}
			return true
		}
	}
	return false
}

func (a *analyzer) returning(list []*pg_query.Node, sc *scope) {
	if len(list) == 0 {
		return
	}
	a.plan.Returns = true
	a.plan.Outputs = a.targets(list, sc)
}

// copyStmt: COPY table|query TO STDOUT returns rows; COPY FROM stores the
// client's data (nothing masked flows).
func (a *analyzer) copyStmt(n *pg_query.CopyStmt) {
	if n.IsFrom {
		// Its errors (a constraint violated) may quote stored values.
		a.touch(allTaint(a.rangeVar(n.Relation, &scope{}).cols))
		if n.WhereClause != nil {
			a.infer(a.expr(n.WhereClause, &scope{entries: []*entry{a.rangeVar(n.Relation, &scope{})}}))
		}
		return
	}
	p := a.plan
	p.Copy, p.Returns = true, true
	for _, o := range n.Options {
		d, ok := unwrap(o).(*pg_query.DefElem)
		if !ok {
			continue
		}
		arg := ""
		switch v := unwrap(d.Arg).(type) {
		case *pg_query.String:
			arg = v.Sval
		case *pg_query.Boolean:
			arg = "false"
			if v.Boolval {
				arg = "true"
			}
		case *pg_query.Integer:
			arg = fmt.Sprint(v.Ival)
		case *pg_query.Float:
			arg = v.Fval
		case nil:
			arg = "true"
		default:
			a.refuse("a COPY option the gateway cannot read")
		}
		opts := &p.CopyOptions
		switch d.Defname {
		case "format":
			f := strings.ToLower(arg)
			p.CopyBinary, opts.CSV = f == "binary", f == "csv"
		case "header":
			h := strings.ToLower(arg)
			opts.Header = h != "false" && h != "off" && h != "0"
		case "delimiter":
			opts.Delimiter = arg
		case "quote":
			opts.Quote = arg
		case "escape":
			opts.Escape = arg
		case "null":
			opts.Null = &arg
		case "encoding":
			opts.Encoding = arg
		}
	}
	switch {
	case n.Query != nil:
		sel, ok := unwrap(n.Query).(*pg_query.SelectStmt)
		if !ok {
			// COPY (INSERT ... RETURNING) TO: analyse it as a statement.
			inner := Analyze(n.Query, a.cat)
			copied := *p
			*p = *inner
			p.Copy, p.CopyBinary, p.Returns = copied.Copy, copied.CopyBinary, true
			return
		}
		p.Outputs = a.query(sel, nil)
	case n.Relation != nil:
		e := a.rangeVar(n.Relation, &scope{})
		if len(n.Attlist) == 0 {
			p.Outputs = e.columnsOrUnknown()
			a.touch(allTaint(p.Outputs))
			return
		}
		for _, at := range n.Attlist {
			name := stringOf(at)
			p.Outputs = append(p.Outputs, Column{Name: name, Taint: a.touch(columnTaint(e, name).Union(e.all)), Derived: len(e.all) > 0})
		}
	}
}

// with brings a WITH clause's CTEs into a new scope under parent.
func (a *analyzer) with(w *pg_query.WithClause, parent *scope) *scope {
	sc := &scope{parent: parent, ctes: map[string][]Column{}}
	if w == nil {
		return sc
	}
	for _, c := range w.Ctes {
		cte, ok := unwrap(c).(*pg_query.CommonTableExpr)
		if !ok {
			a.refuse("a WITH item the gateway does not know")
			continue
		}
		if cte.SearchClause != nil || cte.CycleClause != nil {
			if t := a.any(cte); len(t) > 0 {
				a.refuse("SEARCH and CYCLE over masked columns are not supported")
			}
		}
		var cols []Column
		switch q := unwrap(cte.Ctequery).(type) {
		case *pg_query.SelectStmt:
			if w.Recursive {
				// The recursive term reads the CTE itself: start from
				// everything it could carry, then the real lineage.
				sc.ctes[cte.Ctename] = []Column{{Unknown: true, Taint: a.any(q), Derived: true}}
			}
			cols = a.query(q, sc)
		default:
			// DML in WITH: its RETURNING rows.
			inner := &analyzer{cat: a.cat, plan: &Plan{}}
			inner.statement(q)
			a.touch(inner.plan.Touches)
			a.infer(inner.plan.Inference)
			a.flow(inner.plan.Flows)
			if inner.plan.Refusal != "" {
				a.refuse("%s", inner.plan.Refusal)
			}
			cols = inner.plan.Outputs
		}
		cols = renamed(cols, cte.Aliascolnames)
		sc.ctes[cte.Ctename] = cols
	}
	return sc
}

// query analyses a SELECT (with its set operations) in a scope whose parent
// is outer, and returns its output columns.
func (a *analyzer) query(n *pg_query.SelectStmt, outer *scope) []Column {
	sc := a.with(n.WithClause, outer)
	if n.Op != pg_query.SetOperation_SETOP_NONE && n.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		l := a.query(n.Larg, sc)
		r := a.query(n.Rarg, sc)
		cols := make([]Column, 0, len(l))
		if len(l) != len(r) || hasUnknown(l) || hasUnknown(r) {
			// Widths the gateway cannot pair: every output carries both.
			t := allTaint(l).Union(allTaint(r))
			cols = append(cols, Column{Unknown: true, Taint: t, Derived: true})
		} else {
			for i := range l {
				cols = append(cols, Column{Name: l[i].Name, Named: l[i].Named, Taint: l[i].Taint.Union(r[i].Taint), Derived: l[i].Derived || r[i].Derived})
			}
		}
		if n.Op != pg_query.SetOperation_SETOP_UNION || !n.All {
			// INTERSECT and EXCEPT compare values; UNION removes
			// duplicates: like DISTINCT, they reveal equalities.
			a.infer(allTaint(cols))
		}
		a.orderAndLimit(n, sc, cols)
		return cols
	}
	if len(n.ValuesLists) > 0 {
		var cols []Column
		for _, row := range n.ValuesLists {
			list, _ := unwrap(row).(*pg_query.List)
			if list == nil {
				continue
			}
			for i, v := range list.Items {
				t := a.expr(v, sc)
				if i < len(cols) {
					cols[i].Taint = cols[i].Taint.Union(t)
				} else {
					cols = append(cols, Column{Name: fmt.Sprintf("column%d", i+1), Taint: t, Derived: true})
				}
			}
		}
		return cols
	}
	a.from(n.FromClause, sc)
	cols := a.targets(n.TargetList, sc)
	a.infer(a.expr(n.WhereClause, sc))
	a.infer(a.expr(n.HavingClause, sc))
	for _, g := range n.GroupClause {
		a.infer(a.byOutput(g, sc, cols))
		if _, ok := unwrap(g).(*pg_query.GroupingSet); ok {
			// Positions inside ROLLUP, CUBE or GROUPING SETS: any output.
			a.infer(allTaint(cols))
		}
	}
	for _, w := range n.WindowClause {
		a.infer(a.expr(w, sc))
	}
	if len(n.DistinctClause) > 0 {
		if len(n.DistinctClause) == 1 && unwrap(n.DistinctClause[0]) == nil {
			a.infer(allTaint(cols)) // DISTINCT: equalities of every output
		}
		for _, d := range n.DistinctClause {
			a.infer(a.byOutput(d, sc, cols))
		}
	}
	a.orderAndLimit(n, sc, cols)
	return cols
}

func (a *analyzer) orderAndLimit(n *pg_query.SelectStmt, sc *scope, cols []Column) {
	for _, s := range n.SortClause {
		if sb, ok := unwrap(s).(*pg_query.SortBy); ok {
			a.infer(a.byOutput(sb.Node, sc, cols))
		} else {
			a.infer(a.expr(s, sc))
		}
	}
	a.infer(a.expr(n.LimitCount, sc))
	a.infer(a.expr(n.LimitOffset, sc))
}

// byOutput is the taint of a GROUP BY, ORDER BY or DISTINCT ON item, which
// may name an output column (by name or position) or be an expression.
func (a *analyzer) byOutput(n *pg_query.Node, sc *scope, cols []Column) Taint {
	t := a.expr(n, sc)
	switch v := unwrap(n).(type) {
	case *pg_query.A_Const:
		if iv, ok := v.Val.(*pg_query.A_Const_Ival); ok && iv.Ival != nil {
			if i := int(iv.Ival.Ival); i >= 1 && i <= len(cols) && !hasUnknown(cols) {
				return t.Union(cols[i-1].Taint)
			}
			return t.Union(allTaint(cols))
		}
	case *pg_query.ColumnRef:
		if len(v.Fields) == 1 {
			name := stringOf(v.Fields[0])
			for _, c := range cols {
				if c.Name == name {
					t = t.Union(c.Taint)
				}
			}
		}
	}
	return t
}

// from brings FROM items into scope.
func (a *analyzer) from(items []*pg_query.Node, sc *scope) {
	for _, it := range items {
		a.fromItem(it, sc)
	}
}

func (a *analyzer) fromItem(it *pg_query.Node, sc *scope) {
	switch n := unwrap(it).(type) {
	case *pg_query.RangeVar:
		sc.entries = append(sc.entries, a.rangeVar(n, sc))
	case *pg_query.RangeSubselect:
		sel, ok := unwrap(n.Subquery).(*pg_query.SelectStmt)
		if !ok {
			a.refuse("a subquery the gateway does not know")
			return
		}
		// A subquery sees this level's CTEs, and its FROM items only
		// when LATERAL.
		outer := &scope{ctes: sc.ctes, parent: sc.parent}
		if n.Lateral {
			outer = sc
		}
		cols := a.query(sel, outer)
		e := &entry{cols: cols}
		if n.Alias != nil {
			e.name = n.Alias.Aliasname
			e.cols = renamed(cols, n.Alias.Colnames)
		}
		sc.entries = append(sc.entries, e)
	case *pg_query.JoinExpr:
		before := len(sc.entries)
		a.fromItem(n.Larg, sc)
		a.fromItem(n.Rarg, sc)
		a.infer(a.expr(n.Quals, sc))
		if n.IsNatural {
			// Joined on every column name the two sides share: any.
			for _, e := range sc.entries[before:] {
				a.infer(allTaint(e.columnsOrUnknown()).Union(e.all))
			}
		}
		if n.IsNatural || len(n.UsingClause) > 0 {
			// `*` merges the joined columns: the gateway does not model
			// the order, so `*` over this join is refused when masked.
			for _, e := range sc.entries[before:] {
				e.merged = true
			}
		}
		for _, u := range n.UsingClause {
			name := stringOf(u)
			for _, e := range sc.entries[before:] {
				a.infer(columnTaint(e, name).Union(e.all))
			}
		}
		if n.Alias != nil {
			// (a JOIN b) AS j: only j is visible, with every column.
			j := &entry{name: n.Alias.Aliasname}
			for _, e := range sc.entries[before:] {
				j.cols = append(j.cols, e.columnsOrUnknown()...)
				j.all = j.all.Union(e.all)
				j.merged = j.merged || e.merged
			}
			j.cols = renamed(j.cols, n.Alias.Colnames)
			sc.entries = append(sc.entries[:before], j)
		}
	case *pg_query.RangeFunction:
		// Its columns are unknown; what its arguments carry, every column
		// may carry, and how many rows it returns depends on them.
		e := &entry{all: a.derived(n, sc)}
		a.infer(e.all)
		if n.Alias != nil {
			e.name = n.Alias.Aliasname
		}
		sc.entries = append(sc.entries, e)
	case *pg_query.RangeTableSample:
		a.fromItem(n.Relation, sc)
		a.infer(a.expr(n.Repeatable, sc))
		for _, arg := range n.Args {
			a.infer(a.expr(arg, sc))
		}
	case nil:
	default:
		// XMLTABLE, JSON_TABLE and the like: every column carries what
		// their inputs carry.
		sc.entries = append(sc.entries, &entry{name: aliasOf(n), all: a.derived(n, sc)})
	}
}

func aliasOf(m proto.Message) string {
	var name string
	walk(m, func(x proto.Message) bool {
		if al, ok := x.(*pg_query.Alias); ok && name == "" {
			name = al.Aliasname
		}
		return name == ""
	})
	return name
}

// rangeVar makes the entry of a relation: a CTE, a relation with masked
// columns, or a clean one.
func (a *analyzer) rangeVar(n *pg_query.RangeVar, sc *scope) *entry {
	if n == nil {
		return &entry{}
	}
	e := &entry{name: n.Relname}
	if n.Alias != nil {
		e.name = n.Alias.Aliasname
	}
	var cols []Column
	found := false
	if n.Schemaname == "" {
		cols, found = sc.cte(n.Relname)
	}
	if !found {
		if rel, ok := a.cat.Relation(n.Schemaname, n.Relname); ok {
			cols = rel.Columns
			a.touch(allTaint(cols))
		}
	}
	if n.Alias != nil {
		cols = renamed(cols, n.Alias.Colnames)
	}
	e.cols = cols
	return e
}

// columnsOrUnknown returns e's columns for `e.*`: what is known, and an
// unknown group when it has none listed.
func (e *entry) columnsOrUnknown() []Column {
	if len(e.cols) == 0 {
		return []Column{{Unknown: true, Taint: e.all, Derived: len(e.all) > 0}}
	}
	if len(e.all) == 0 {
		return e.cols
	}
	out := make([]Column, len(e.cols))
	for i, c := range e.cols {
		out[i] = Column{Name: c.Name, Named: c.Named, Taint: c.Taint.Union(e.all), Derived: true, Unknown: c.Unknown}
	}
	return out
}

// targets analyses a target list (SELECT list or RETURNING).
func (a *analyzer) targets(list []*pg_query.Node, sc *scope) []Column {
	var cols []Column
	for _, t := range list {
		rt, ok := unwrap(t).(*pg_query.ResTarget)
		if !ok {
			a.refuse("a target the gateway does not know")
			continue
		}
		if cr, ok := unwrap(rt.Val).(*pg_query.ColumnRef); ok && isStar(cr) {
			cols = append(cols, a.star(cr, sc)...)
			continue
		}
		if ind, ok := unwrap(rt.Val).(*pg_query.A_Indirection); ok && len(ind.Indirection) > 0 {
			if _, star := unwrap(ind.Indirection[len(ind.Indirection)-1]).(*pg_query.A_Star); star {
				// (x).*: the fields of a composite, how many the gateway
				// does not know.
				t := a.expr(rt.Val, sc)
				cols = append(cols, Column{Unknown: true, Taint: t, Derived: len(t) > 0})
				continue
			}
		}
		name := rt.Name
		if cr, ok := unwrap(rt.Val).(*pg_query.ColumnRef); ok {
			t, derived := a.columnRef(cr, sc)
			if name == "" && len(cr.Fields) > 0 {
				name = stringOf(cr.Fields[len(cr.Fields)-1])
			}
			cols = append(cols, Column{Name: name, Named: name != "", Taint: t, Derived: derived})
			continue
		}
		t := a.expr(rt.Val, sc)
		named := name != ""
		if name == "" {
			name = colName(rt.Val)
		}
		cols = append(cols, Column{Name: name, Named: named, Taint: t, Derived: len(t) > 0})
	}
	return cols
}

// colName names an expression's output the way PostgreSQL does for the
// common cases (FigureColname): a function's name, a column's, "case",
// "?column?" otherwise.
func colName(n *pg_query.Node) string {
	switch v := unwrap(n).(type) {
	case *pg_query.FuncCall:
		if len(v.Funcname) > 0 {
			return stringOf(v.Funcname[len(v.Funcname)-1])
		}
	case *pg_query.ColumnRef:
		if len(v.Fields) > 0 {
			return stringOf(v.Fields[len(v.Fields)-1])
		}
	case *pg_query.TypeCast:
		if name := colName(v.Arg); name != "?column?" {
			return name
		}
		if v.TypeName != nil && len(v.TypeName.Names) > 0 {
			return stringOf(v.TypeName.Names[len(v.TypeName.Names)-1])
		}
	case *pg_query.CaseExpr:
		return "case"
	case *pg_query.RowExpr:
		return "row"
	case *pg_query.XmlExpr:
		return strings.ToLower(strings.TrimPrefix(v.Op.String(), "IS_"))
	case *pg_query.SubLink:
		if v.SubLinkType == pg_query.SubLinkType_EXISTS_SUBLINK {
			return "exists"
		}
		if sel, ok := unwrap(v.Subselect).(*pg_query.SelectStmt); ok && len(sel.TargetList) == 1 {
			if rt, ok := unwrap(sel.TargetList[0]).(*pg_query.ResTarget); ok {
				if rt.Name != "" {
					return rt.Name
				}
				return colName(rt.Val)
			}
		}
	}
	return "?column?"
}

func isStar(cr *pg_query.ColumnRef) bool {
	if len(cr.Fields) == 0 {
		return false
	}
	_, ok := unwrap(cr.Fields[len(cr.Fields)-1]).(*pg_query.A_Star)
	return ok
}

// star expands `*` or `x.*` in a target list.
func (a *analyzer) star(cr *pg_query.ColumnRef, sc *scope) []Column {
	var out []Column
	if len(cr.Fields) == 1 {
		merged := false
		for _, e := range sc.entries {
			out = append(out, e.columnsOrUnknown()...)
			merged = merged || e.merged
		}
		if len(sc.entries) == 0 {
			a.refuse("SELECT * without FROM")
		}
		if merged && len(allTaint(out)) > 0 {
			a.refuse("* over a JOIN with USING or NATURAL, where masked columns are, cannot be lined up: list the columns")
		}
		return out
	}
	name := stringOf(cr.Fields[len(cr.Fields)-2])
	for s := sc; s != nil; s = s.parent {
		for _, e := range s.entries {
			if e.name == name {
				return e.columnsOrUnknown()
			}
		}
	}
	// Not a FROM item the gateway knows: a composite column's fields.
	t, _ := a.columnRef(&pg_query.ColumnRef{Fields: cr.Fields[:len(cr.Fields)-1]}, sc)
	return []Column{{Unknown: true, Taint: t, Derived: len(t) > 0}}
}

// columnRef resolves a column reference in scope, over-approximating: every
// column it may name counts, in every level, and a name that is also a FROM
// item counts as that item's whole row.
func (a *analyzer) columnRef(cr *pg_query.ColumnRef, sc *scope) (Taint, bool) {
	var names []string
	for _, f := range cr.Fields {
		switch v := unwrap(f).(type) {
		case *pg_query.String:
			names = append(names, v.Sval)
		case *pg_query.A_Star:
			names = append(names, "*")
		}
	}
	var t Taint
	derived := false
	add := func(c Column) {
		t = t.Union(c.Taint)
		derived = derived || c.Derived
	}
	switch len(names) {
	case 0:
		return nil, false
	case 1:
		name := names[0]
		for s := sc; s != nil; s = s.parent {
			for _, e := range s.entries {
				for _, c := range e.cols {
					if c.Name == name || c.Unknown {
						add(c)
					}
				}
				if len(e.all) > 0 {
					add(Column{Taint: e.all, Derived: true})
				}
				if e.name == name {
					// A whole-row reference: a composite of every column.
					add(Column{Taint: allTaint(e.columnsOrUnknown()), Derived: true})
				}
			}
		}
	default:
		// [schema.]table.column, or a composite column's field
		// (table.column.field).
		matched := false
		for i := 0; i+1 < len(names); i++ {
			rel, col := names[i], names[i+1]
			for s := sc; s != nil; s = s.parent {
				for _, e := range s.entries {
					if e.name != rel {
						continue
					}
					matched = true
					if col == "*" {
						add(Column{Taint: allTaint(e.columnsOrUnknown()), Derived: true})
						continue
					}
					for _, c := range e.cols {
						if c.Name == col || c.Unknown {
							add(Column{Taint: c.Taint, Derived: c.Derived || i+2 < len(names)})
						}
					}
					if len(e.all) > 0 {
						add(Column{Taint: e.all, Derived: true})
					}
				}
			}
		}
		if !matched {
			// No FROM item of that name: a column of composite type
			// and its field.
			for s := sc; s != nil; s = s.parent {
				for _, e := range s.entries {
					if ct := columnTaint(e, names[0]).Union(e.all); len(ct) > 0 {
						add(Column{Taint: ct, Derived: true})
					}
				}
			}
		}
	}
	return a.touch(t), derived
}

// expr returns what an expression's value carries. Subqueries are analysed
// in a scope under sc (their own WHERE clauses count as inference).
func (a *analyzer) expr(n *pg_query.Node, sc *scope) Taint {
	if n == nil {
		return nil
	}
	return a.derived(unwrap(n), sc)
}

func (a *analyzer) derived(m proto.Message, sc *scope) Taint {
	var t Taint
	walk(m, func(x proto.Message) bool {
		switch v := x.(type) {
		case *pg_query.ColumnRef:
			ct, _ := a.columnRef(v, sc)
			t = t.Union(ct)
			return false
		case *pg_query.SubLink:
			sub, ok := unwrap(v.Subselect).(*pg_query.SelectStmt)
			if !ok {
				a.refuse("a subquery the gateway does not know")
				return false
			}
			cols := a.query(sub, sc)
			test := a.expr(v.Testexpr, sc)
			switch v.SubLinkType {
			case pg_query.SubLinkType_EXISTS_SUBLINK:
				// Only whether rows exist: its WHERE was counted.
			case pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_ARRAY_SUBLINK, pg_query.SubLinkType_MULTIEXPR_SUBLINK:
				t = t.Union(allTaint(cols)).Union(test)
			default:
				// x op ANY/ALL (SELECT ...): a comparison.
				cmp := allTaint(cols).Union(test)
				a.infer(cmp)
				t = t.Union(cmp)
			}
			return false
		case *pg_query.SelectStmt:
			t = t.Union(allTaint(a.query(v, sc)))
			return false
		case *pg_query.FuncCall:
			if len(v.Funcname) > 0 && setReturning[stringOf(v.Funcname[len(v.Funcname)-1])] {
				// How many rows it returns depends on its arguments.
				var args Taint
				for _, arg := range v.Args {
					args = args.Union(a.expr(arg, sc))
				}
				a.infer(args)
			}
			if len(v.Funcname) > 0 && sinkFunctions[stringOf(v.Funcname[len(v.Funcname)-1])] {
				var args Taint
				for _, arg := range v.Args {
					args = args.Union(a.expr(arg, sc))
				}
				a.flow(args) // the value leaves through the function's side effect
			}
		}
		return true
	})
	return t
}

// setReturning are built-in set-returning functions: the number of rows
// they return is a function of their arguments.
var setReturning = map[string]bool{
	"generate_series": true, "generate_subscripts": true, "unnest": true, "regexp_matches": true,
	"regexp_split_to_table": true, "string_to_table": true, "json_array_elements": true,
	"json_array_elements_text": true, "jsonb_array_elements": true, "jsonb_array_elements_text": true,
	"json_each": true, "json_each_text": true, "jsonb_each": true, "jsonb_each_text": true,
	"json_object_keys": true, "jsonb_object_keys": true, "jsonb_path_query": true, "json_populate_recordset": true,
	"jsonb_populate_recordset": true, "json_to_recordset": true, "jsonb_to_recordset": true, "ts_stat": true,
	"ts_parse": true, "ts_token_type": true, "pg_options_to_table": true, "xpath_table": true, "unnest_range": true,
}

// sinkFunctions are built-in functions that carry their arguments out of
// the statement's result: to other sessions (pg_notify), to settings a
// later statement reads (set_config), to large objects, files, other
// servers, or the WAL.
var sinkFunctions = map[string]bool{
	"pg_notify": true, "set_config": true, "setval": true,
	"pg_advisory_lock": true, "pg_advisory_xact_lock": true, "pg_try_advisory_lock": true, "pg_try_advisory_xact_lock": true,
	"pg_advisory_lock_shared": true, "pg_advisory_xact_lock_shared": true,
	"pg_try_advisory_lock_shared": true, "pg_try_advisory_xact_lock_shared": true,
	"lo_from_bytea": true, "lo_put": true, "lowrite": true, "lo_import": true, "lo_export": true,
	"pg_file_write": true, "pg_logical_emit_message": true,
	"dblink": true, "dblink_exec": true, "dblink_send_query": true, "dblink_open": true,
}

// any returns every rule a subtree reads, wherever (no scopes: every
// column of a masked relation it names counts).
func (a *analyzer) any(m proto.Message) Taint {
	var t Taint
	walk(m, func(x proto.Message) bool {
		if rv, ok := x.(*pg_query.RangeVar); ok {
			if rel, ok := a.cat.Relation(rv.Schemaname, rv.Relname); ok {
				t = t.Union(allTaint(rel.Columns))
			}
		}
		return true
	})
	return a.touch(t)
}

// queriesIn returns what the queries inside a statement read.
func (a *analyzer) queriesIn(m proto.Message) Taint {
	var t Taint
	walk(m, func(x proto.Message) bool {
		if sel, ok := x.(*pg_query.SelectStmt); ok {
			t = t.Union(a.any(sel))
			return false
		}
		return true
	})
	return t
}

// walk calls fn for every message under m (m included), depth first; fn
// returns false to skip a message's children.
func walk(m proto.Message, fn func(proto.Message) bool) {
	if m == nil {
		return
	}
	if n, ok := m.(*pg_query.Node); ok {
		walk(unwrap(n), fn)
		return
	}
	if !fn(m) {
		return
	}
	// Declared field order, not protobuf's Range order, which is
	// unspecified and differs between builds.
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.IsMap() || !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		if fd.IsList() {
			l := v.List()
			for j := range l.Len() {
				walk(l.Get(j).Message().Interface(), fn)
			}
			continue
		}
		walk(v.Message().Interface(), fn)
	}
}

// unwrap returns the message a Node holds, or nil.
func unwrap(n *pg_query.Node) proto.Message {
	if n == nil {
		return nil
	}
	r := n.ProtoReflect()
	fd := r.WhichOneof(r.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return r.Get(fd).Message().Interface()
}

func stringOf(n *pg_query.Node) string {
	if s, ok := unwrap(n).(*pg_query.String); ok {
		return s.Sval
	}
	return ""
}

func renamed(cols []Column, names []*pg_query.Node) []Column {
	if len(names) == 0 {
		return cols
	}
	out := slices.Clone(cols)
	for i := 0; i < len(names) && i < len(out); i++ {
		if out[i].Unknown {
			break
		}
		out[i].Name, out[i].Named = stringOf(names[i]), true
	}
	return out
}

func columnTaint(e *entry, name string) Taint {
	var t Taint
	for _, c := range e.cols {
		if c.Name == name || c.Unknown {
			t = t.Union(c.Taint)
		}
	}
	return t
}

func allTaint(cols []Column) Taint {
	var t Taint
	for _, c := range cols {
		t = t.Union(c.Taint)
	}
	return t
}

func hasUnknown(cols []Column) bool {
	for _, c := range cols {
		if c.Unknown {
			return true
		}
	}
	return false
}

func subset(t, of Taint) bool {
	for _, x := range t {
		if !slices.Contains(of, x) {
			return false
		}
	}
	return true
}
