package analysis

import (
	"reflect"
	"slices"
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgwarden/pgwarden/policy"
)

// walker fills one Statement from its parse tree.
type walker struct {
	st *policy.Statement
	// ctes are the names of the common table expressions in scope: an
	// unqualified name among them is not a relation.
	ctes []string
	// targets is set while walking the objects a DDL or DCL statement acts
	// on: the relations found are written, not read.
	targets bool
	// root is the statement node itself, as opposed to nested ones.
	root proto.Message
}

// classify analyses one statement.
func classify(node *pg_query.Node, text string) *policy.Statement {
	st := &policy.Statement{SQL: text}
	w := &walker{st: st}
	w.statement(unwrap(node))
	st.Reads = dedupe(st.Reads)
	st.Written = dedupe(st.Written)
	st.Functions = dedupe(st.Functions)
	st.Operators = dedupe(st.Operators)
	st.RunTime = dedupe(st.RunTime)
	return st
}

// nested analyses a statement inside another (EXPLAIN, PREPARE, ...).
func (w *walker) nested(node *pg_query.Node) *policy.Statement {
	inner := &walker{st: &policy.Statement{}, ctes: w.ctes}
	inner.statement(unwrap(node))
	st := inner.st
	st.Reads = dedupe(st.Reads)
	st.Written = dedupe(st.Written)
	st.Functions = dedupe(st.Functions)
	st.Operators = dedupe(st.Operators)
	st.RunTime = dedupe(st.RunTime)
	return st
}

func (w *walker) set(kind policy.Kind, command string) {
	w.st.Kind, w.st.Command = kind, command
}

// statement classifies a top-level statement node and walks it.
func (w *walker) statement(m proto.Message) {
	st := w.st
	w.root = m
	switch n := m.(type) {
	case *pg_query.SelectStmt:
		w.set(policy.KindSelect, "SELECT")
		if n.IntoClause != nil {
			st.Command = "SELECT INTO"
		}
	case *pg_query.InsertStmt:
		w.set(policy.KindInsert, "INSERT")
	case *pg_query.UpdateStmt:
		w.set(policy.KindUpdate, "UPDATE")
	case *pg_query.DeleteStmt:
		w.set(policy.KindDelete, "DELETE")
	case *pg_query.MergeStmt:
		w.set(policy.KindMerge, "MERGE")
	case *pg_query.CopyStmt:
		w.copyStmt(n)
		return
	case *pg_query.TruncateStmt:
		w.set(policy.KindTruncate, "TRUNCATE TABLE")
		st.Writes = true
		w.targets = true
	case *pg_query.TransactionStmt:
		w.transaction(n)
		return
	case *pg_query.VariableSetStmt:
		w.variableSet(n)
		return
	case *pg_query.VariableShowStmt:
		w.set(policy.KindShow, "SHOW")
		return
	case *pg_query.DiscardStmt:
		w.set(policy.KindDiscard, "DISCARD")
		if n.Target == pg_query.DiscardMode_DISCARD_ALL {
			st.Settings = append(st.Settings, policy.Setting{Name: "all", Reset: true, Via: "DISCARD"})
		}
		return
	case *pg_query.PrepareStmt:
		w.set(policy.KindPrepare, "PREPARE")
		st.Name = n.Name
		w.setInner(w.nested(n.Query), true)
		return
	case *pg_query.ExecuteStmt:
		w.set(policy.KindExecute, "EXECUTE")
		st.Name = n.Name
		w.walkFields(n) // the arguments may call functions
		return
	case *pg_query.DeallocateStmt:
		w.set(policy.KindDeallocate, "DEALLOCATE")
		st.Name = n.Name
		return
	case *pg_query.DeclareCursorStmt:
		w.set(policy.KindDeclare, "DECLARE CURSOR")
		st.Name = n.Portalname
		w.setInner(w.nested(n.Query), true)
		return
	case *pg_query.FetchStmt:
		w.set(policy.KindFetch, "FETCH")
		if n.Ismove {
			st.Command = "MOVE"
		}
		st.Name = n.Portalname
		return
	case *pg_query.ClosePortalStmt:
		w.set(policy.KindClose, "CLOSE CURSOR")
		st.Name = n.Portalname
		return
	case *pg_query.DoStmt:
		w.set(policy.KindDo, "DO")
		st.Writes = true
		st.RunTime = append(st.RunTime, "DO block")
		return
	case *pg_query.CallStmt:
		w.set(policy.KindCall, "CALL")
		st.Writes = true
		if n.Funccall != nil {
			st.RunTime = append(st.RunTime, "CALL "+funcName(n.Funccall).String())
		}
		w.walkFields(n)
		return
	case *pg_query.ExplainStmt:
		w.explain(n)
		return
	case *pg_query.LockStmt:
		w.set(policy.KindLock, "LOCK TABLE")
		st.Locks = n.Mode > 1 // stronger than ACCESS SHARE
	case *pg_query.ListenStmt:
		w.set(policy.KindListen, "LISTEN")
		st.Name = n.Conditionname
		return
	case *pg_query.UnlistenStmt:
		w.set(policy.KindUnlisten, "UNLISTEN")
		st.Name = n.Conditionname
		return
	case *pg_query.NotifyStmt:
		w.set(policy.KindNotify, "NOTIFY")
		st.Name = n.Conditionname
		return
	case *pg_query.VacuumStmt:
		command := "VACUUM"
		if !n.IsVacuumcmd {
			command = "ANALYZE"
		}
		w.set(policy.KindMaintenance, command)
		st.Writes = true
		w.targets = true
	case *pg_query.ClusterStmt, *pg_query.ReindexStmt, *pg_query.CheckPointStmt, *pg_query.RefreshMatViewStmt:
		w.set(policy.KindMaintenance, commandOf(m))
		st.Writes = true
		w.targets = true
	case *pg_query.LoadStmt:
		w.set(policy.KindLoad, "LOAD")
		st.RunTime = append(st.RunTime, "LOAD loads a server library")
		return
	case *pg_query.CreateTableAsStmt:
		w.createTableAs(n)
		return
	case *pg_query.ViewStmt:
		w.set(policy.KindDDL, "CREATE VIEW")
		st.Writes = true
		st.Written = append(st.Written, relation(n.View))
		w.setInner(w.nested(n.Query), false)
		return
	case *pg_query.DropStmt:
		w.set(policy.KindDDL, "DROP "+objectTypeName(n.RemoveType))
		st.Writes = true
		if isRelationType(n.RemoveType) {
			for _, obj := range n.Objects {
				if l, ok := unwrap(obj).(*pg_query.List); ok {
					st.Written = append(st.Written, qualifiedName(l.Items))
				}
			}
		}
		return
	case *pg_query.CommentStmt, *pg_query.SecLabelStmt:
		w.set(policy.KindDDL, commandOf(m))
		st.Writes = true
		objtype, object := pg_query.ObjectType(0), (*pg_query.Node)(nil)
		if c, ok := m.(*pg_query.CommentStmt); ok {
			objtype, object = c.Objtype, c.Object
		} else {
			l := m.(*pg_query.SecLabelStmt)
			objtype, object = l.Objtype, l.Object
		}
		if isRelationType(objtype) {
			if l, ok := unwrap(object).(*pg_query.List); ok {
				st.Written = append(st.Written, qualifiedName(l.Items))
			}
		}
		return
	case *pg_query.GrantStmt:
		w.set(policy.KindDCL, grantCommand(n.IsGrant))
		st.Writes = true
		w.targets = true
	case *pg_query.GrantRoleStmt:
		w.set(policy.KindDCL, grantCommand(n.IsGrant))
		st.Writes = true
		return
	case *pg_query.CreateRoleStmt, *pg_query.AlterRoleStmt, *pg_query.AlterRoleSetStmt, *pg_query.DropRoleStmt,
		*pg_query.AlterDefaultPrivilegesStmt, *pg_query.ReassignOwnedStmt, *pg_query.DropOwnedStmt,
		*pg_query.CreatePolicyStmt, *pg_query.AlterPolicyStmt:
		w.set(policy.KindDCL, commandOf(m))
		st.Writes = true
		w.targets = true
	case *pg_query.ConstraintsSetStmt:
		w.set(policy.KindSet, "SET CONSTRAINTS")
		return
	default:
		name := commandOf(m)
		switch {
		case m == nil:
			w.set(policy.KindOther, "EMPTY")
			return
		case isDDL(m):
			w.set(policy.KindDDL, name)
			w.targets = true
		default:
			// Unknown to this analyzer: assume the worst.
			w.set(policy.KindOther, name)
			st.RunTime = append(st.RunTime, "statement "+name+" is not analysed by the gateway")
		}
		st.Writes = true
	}
	w.walk(m)
}

func grantCommand(isGrant bool) string {
	if isGrant {
		return "GRANT"
	}
	return "REVOKE"
}

// setInner records a nested statement; with inherit, its effects count as
// the outer statement's (PREPARE and DECLARE run it, later).
func (w *walker) setInner(inner *policy.Statement, inherit bool) {
	w.st.Inner = inner
	if inherit {
		w.st.Writes = w.st.Writes || inner.Writes
		w.st.Locks = w.st.Locks || inner.Locks
		w.st.AllRows = w.st.AllRows || inner.AllRows
	}
}

func (w *walker) copyStmt(n *pg_query.CopyStmt) {
	st := w.st
	if n.IsFrom {
		w.set(policy.KindCopy, "COPY FROM")
		st.Writes = true
	} else {
		w.set(policy.KindCopy, "COPY TO")
	}
	if n.Relation != nil {
		if n.IsFrom {
			st.Written = append(st.Written, relation(n.Relation))
		} else {
			st.Reads = append(st.Reads, relation(n.Relation))
		}
	}
	if n.Query != nil {
		w.setInner(w.nested(n.Query), true)
	}
	switch {
	case n.IsProgram:
		st.RunTime = append(st.RunTime, "COPY runs a program on the database server")
		st.Writes = true
	case n.Filename != "":
		st.RunTime = append(st.RunTime, "COPY accesses a file on the database server")
		st.Writes = true
	}
	if n.WhereClause != nil {
		w.walk(n.WhereClause)
	}
}

func (w *walker) explain(n *pg_query.ExplainStmt) {
	w.set(policy.KindExplain, "EXPLAIN")
	for _, o := range n.Options {
		if d, ok := unwrap(o).(*pg_query.DefElem); ok && d.Defname == "analyze" {
			w.st.Executes = d.Arg == nil || truthy(constText(d.Arg))
		}
	}
	inner := w.nested(n.Query)
	w.st.Inner = inner
	// Planning alone may run functions (constant folding of immutable
	// ones): what the inner statement runs at run time, EXPLAIN may too.
	w.st.RunTime = append(w.st.RunTime, inner.RunTime...)
	if w.st.Executes {
		w.st.Writes = inner.Writes
		w.st.Locks = inner.Locks
		w.st.AllRows = inner.AllRows
	}
}

func (w *walker) createTableAs(n *pg_query.CreateTableAsStmt) {
	switch {
	case n.IsSelectInto:
		w.set(policy.KindSelect, "SELECT INTO")
	case n.Objtype == pg_query.ObjectType_OBJECT_MATVIEW:
		w.set(policy.KindDDL, "CREATE MATERIALIZED VIEW")
	default:
		w.set(policy.KindDDL, "CREATE TABLE AS")
	}
	w.st.Writes = true
	if n.Into != nil && n.Into.Rel != nil {
		w.st.Written = append(w.st.Written, relation(n.Into.Rel))
	}
	w.setInner(w.nested(n.Query), true)
}

func (w *walker) transaction(n *pg_query.TransactionStmt) {
	names := map[pg_query.TransactionStmtKind]string{
		pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:             "BEGIN",
		pg_query.TransactionStmtKind_TRANS_STMT_START:             "START TRANSACTION",
		pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:            "COMMIT",
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:          "ROLLBACK",
		pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:         "SAVEPOINT",
		pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:           "RELEASE",
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:       "ROLLBACK TO SAVEPOINT",
		pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:           "PREPARE TRANSACTION",
		pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:   "COMMIT PREPARED",
		pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
	}
	w.set(policy.KindTransaction, names[n.Kind])
	if w.st.Command == "" {
		w.st.Command = "TRANSACTION"
	}
	switch n.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		// Ends a transaction another session prepared: its writes land.
		w.st.Writes = true
	}
	w.transactionModes(n.Options, "BEGIN", "transaction_", true)
}

// transactionModes records BEGIN/SET TRANSACTION options as settings.
func (w *walker) transactionModes(options []*pg_query.Node, via, prefix string, local bool) {
	for _, o := range options {
		d, ok := unwrap(o).(*pg_query.DefElem)
		if !ok {
			continue
		}
		name := d.Defname // transaction_isolation, transaction_read_only, transaction_deferrable
		if prefix != "transaction_" {
			name = prefix + name
		}
		value, known := constValue(d.Arg)
		if known && name != "transaction_isolation" && name != "default_transaction_isolation" {
			value = onOff(truthy(value))
		}
		w.st.Settings = append(w.st.Settings, policy.Setting{Name: name, Value: value, Known: known, Local: local, Via: via})
	}
}

func (w *walker) variableSet(n *pg_query.VariableSetStmt) {
	st := w.st
	name := strings.ToLower(n.Name)
	switch n.Kind {
	case pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_RESET_ALL:
		w.set(policy.KindReset, "RESET")
		if n.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
			name = "all"
		}
		st.Settings = append(st.Settings, policy.Setting{Name: name, Reset: true, Via: "RESET"})
		return
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		// SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ...
		w.set(policy.KindSet, "SET")
		switch name {
		case "transaction":
			w.transactionModes(n.Args, "SET TRANSACTION", "transaction_", true)
		case "session characteristics":
			w.transactionModes(n.Args, "SET SESSION CHARACTERISTICS", "default_", false)
		default:
			// SET TRANSACTION SNAPSHOT and future forms.
			st.Settings = append(st.Settings, policy.Setting{Name: strings.ReplaceAll(name, " ", "_"), Local: true, Via: "SET"})
		}
		return
	}
	w.set(policy.KindSet, "SET")
	s := policy.Setting{Name: name, Local: n.IsLocal, Via: "SET"}
	switch n.Kind {
	case pg_query.VariableSetKind_VAR_SET_DEFAULT:
		s.Reset = true
	case pg_query.VariableSetKind_VAR_SET_CURRENT:
		// SET x FROM CURRENT: the value is whatever it is now.
	default:
		var parts []string
		known := true
		for _, a := range n.Args {
			v, ok := constValue(a)
			known = known && ok
			if name == "search_path" {
				v = quoteIdent(v)
			}
			parts = append(parts, v)
		}
		s.Value, s.Known = strings.Join(parts, ", "), known
	}
	st.Settings = append(st.Settings, s)
}

// walk visits a subtree, collecting relations, functions, nested DML and
// locking clauses.
func (w *walker) walk(m proto.Message) {
	switch n := m.(type) {
	case nil:
		return
	case *pg_query.Node:
		w.walk(unwrap(n))
		return
	case *pg_query.RangeVar:
		w.rangeVar(n)
		return
	case *pg_query.FuncCall:
		w.call(n)
		return
	case *pg_query.A_Indirection:
		// (x).name is a field of x, or the call name(x): PostgreSQL tries
		// both (ParseFuncOrColumn).
		for _, ind := range n.Indirection {
			if f, ok := unwrap(ind).(*pg_query.String); ok {
				w.attributeCall(f.Sval, true)
			}
		}
	case *pg_query.ColumnRef:
		// t.name may also call name(t) when t has no column name; only
		// built-in names are recorded (every qualified column would look
		// like a call otherwise).
		if len(n.Fields) >= 2 {
			if f, ok := unwrap(n.Fields[len(n.Fields)-1]).(*pg_query.String); ok {
				w.attributeCall(f.Sval, false)
			}
		}
		return
	case *pg_query.SelectStmt:
		base := w.with(n.WithClause)
		if n.IntoClause != nil {
			w.st.Writes = true
			w.st.Written = append(w.st.Written, relation(n.IntoClause.Rel))
		}
		if len(n.LockingClause) > 0 {
			w.st.Locks = true
		}
		targets := w.targets
		w.targets = false
		// FOR UPDATE OF names FROM items (aliases), not relations.
		w.walkFields(n, "with_clause", "into_clause", "locking_clause")
		w.targets = targets
		w.ctes = w.ctes[:base]
		return
	case *pg_query.A_Expr:
		switch n.Kind {
		case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
			pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
			// Named by keywords; the server uses >= and <=.
		default:
			w.operator(n.Name)
		}
	case *pg_query.SubLink:
		w.operator(n.OperName) // x op ANY (SELECT ...)
	case *pg_query.SortBy:
		w.operator(n.UseOp) // ORDER BY x USING op
	case *pg_query.InsertStmt:
		w.dml(policy.KindInsert, n.Relation, n.WithClause, n, false)
		return
	case *pg_query.UpdateStmt:
		w.dml(policy.KindUpdate, n.Relation, n.WithClause, n, n.WhereClause == nil)
		return
	case *pg_query.DeleteStmt:
		w.dml(policy.KindDelete, n.Relation, n.WithClause, n, n.WhereClause == nil)
		return
	case *pg_query.MergeStmt:
		w.dml(policy.KindMerge, n.Relation, n.WithClause, n, false)
		return
	}
	w.walkFields(m)
}

// dml walks an INSERT, UPDATE, DELETE or MERGE, wherever it appears (a
// CTE's DML runs, whatever the outer statement is).
func (w *walker) dml(kind policy.Kind, target *pg_query.RangeVar, with *pg_query.WithClause, m proto.Message, allRows bool) {
	w.st.Writes = true
	w.st.AllRows = w.st.AllRows || allRows
	if m != w.root && !slices.Contains(w.st.Contains, kind) {
		w.st.Contains = append(w.st.Contains, kind)
	}
	if target != nil {
		// The target is always a table, even when a CTE has its name.
		rel := relation(target)
		w.st.Written = append(w.st.Written, rel)
		if rel.Name == "pg_settings" && (rel.Catalog || rel.Schema == "pg_catalog") {
			// The view's rules call set_config: a change of settings
			// named by the rows.
			w.st.Settings = append(w.st.Settings, policy.Setting{Name: "*", Via: "UPDATE pg_settings"})
		}
	}
	base := w.with(with)
	targets := w.targets
	w.targets = false
	w.walkFields(m, "relation", "with_clause")
	w.targets = targets
	w.ctes = w.ctes[:base]
}

// with walks a WITH clause, each CTE seeing the names PostgreSQL lets it
// see, and leaves all its names in scope. It returns the scope to restore.
func (w *walker) with(with *pg_query.WithClause) int {
	base := len(w.ctes)
	if with == nil {
		return base
	}
	var names []string
	for _, c := range with.Ctes {
		if cte, ok := unwrap(c).(*pg_query.CommonTableExpr); ok {
			names = append(names, cte.Ctename)
		}
	}
	for i, c := range with.Ctes {
		cte, ok := unwrap(c).(*pg_query.CommonTableExpr)
		if !ok {
			continue
		}
		w.ctes = w.ctes[:base]
		if with.Recursive {
			w.ctes = append(w.ctes, names...)
		} else {
			w.ctes = append(w.ctes, names[:min(i, len(names))]...)
		}
		w.walk(cte.Ctequery)
	}
	w.ctes = append(w.ctes[:base], names...)
	return base
}

func (w *walker) rangeVar(n *pg_query.RangeVar) {
	if n.Schemaname == "" && slices.Contains(w.ctes, n.Relname) {
		return
	}
	if w.targets {
		w.st.Written = append(w.st.Written, relation(n))
	} else {
		w.st.Reads = append(w.st.Reads, relation(n))
	}
}

func (w *walker) call(n *pg_query.FuncCall) {
	st := w.st
	f := funcName(n)
	st.Functions = append(st.Functions, f)
	if !f.Builtin {
		st.RunTime = append(st.RunTime, "user function "+f.String())
	} else {
		builtinEffect(st, f.Name)
	}
	if f.Builtin && (f.Name == "nextval" || f.Name == "setval") && len(n.Args) > 0 {
		// Only a name given as text names the sequence; a numeric OID
		// does not (and must not: analyses are shared between texts that
		// differ in integers, see templateOf).
		if seq, ok := stringConst(n.Args[0]); ok {
			st.Written = append(st.Written, parseRelationName(seq))
		}
	}
	if f.Builtin && f.Name == "set_config" {
		s := policy.Setting{Name: "*", Via: "set_config"}
		if len(n.Args) > 0 {
			if name, ok := constValue(n.Args[0]); ok && name != "" {
				s.Name = strings.ToLower(name)
			}
		}
		if len(n.Args) > 1 {
			s.Value, s.Known = constValue(n.Args[1])
		}
		if len(n.Args) > 2 {
			v, ok := constValue(n.Args[2])
			s.Local = !ok || truthy(v) // unknown: could be either
		}
		st.Settings = append(st.Settings, s)
	}
	w.walkFields(n, "funcname")
}

// operator records an operator that may run a user function: one named
// in a schema other than pg_catalog, or one that is none of PostgreSQL's
// own.
func (w *walker) operator(name []*pg_query.Node) {
	var parts []string
	for _, n := range name {
		if s, ok := unwrap(n).(*pg_query.String); ok {
			parts = append(parts, s.Sval)
		}
	}
	if len(parts) == 0 {
		return
	}
	op := parts[len(parts)-1]
	w.st.Operators = append(w.st.Operators, op)
	schema := ""
	if len(parts) > 1 {
		schema = parts[len(parts)-2]
	}
	if (schema != "" && schema != "pg_catalog") || !builtinOperators[op] {
		w.st.RunTime = append(w.st.RunTime, "user operator "+strings.Join(parts, "."))
	}
}

// attributeCall records name as a function possibly called in attribute
// notation: a built-in as a call (so that writing and dangerous functions
// are seen), and with userToo any other name as a run-time call.
func (w *walker) attributeCall(name string, userToo bool) {
	st := w.st
	switch {
	case builtinFunctions[name]:
		st.Functions = append(st.Functions, policy.Function{Name: name, Builtin: true})
		builtinEffect(st, name)
	case userToo:
		st.RunTime = append(st.RunTime, "(...)."+name+" may call function "+name)
	}
}

// walkFields walks every message-valued field of m except those named in
// skip.
func (w *walker) walkFields(m proto.Message, skip ...string) {
	if m == nil {
		return
	}
	// Fields are visited in their declared order, which is the order of
	// the SQL text; protobuf's Range order is unspecified and differs
	// between builds, and the analysis must not.
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.IsMap() || !r.Has(fd) || slices.Contains(skip, string(fd.Name())) {
			continue
		}
		v := r.Get(fd)
		if fd.IsList() {
			l := v.List()
			for j := range l.Len() {
				w.walk(l.Get(j).Message().Interface())
			}
			continue
		}
		w.walk(v.Message().Interface())
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

func relation(n *pg_query.RangeVar) policy.Relation {
	if n == nil {
		return policy.Relation{}
	}
	return policy.Relation{Schema: n.Schemaname, Name: n.Relname, Catalog: n.Schemaname == "" && catalogRelations[n.Relname]}
}

// qualifiedName turns a list of String nodes (schema, name) into a
// Relation.
func qualifiedName(items []*pg_query.Node) policy.Relation {
	var parts []string
	for _, it := range items {
		if s, ok := unwrap(it).(*pg_query.String); ok {
			parts = append(parts, s.Sval)
		}
	}
	switch len(parts) {
	case 0:
		return policy.Relation{}
	case 1:
		return policy.Relation{Name: parts[0], Catalog: catalogRelations[parts[0]]}
	}
	return policy.Relation{Schema: parts[len(parts)-2], Name: parts[len(parts)-1]}
}

func funcName(n *pg_query.FuncCall) policy.Function {
	r := qualifiedName(n.Funcname)
	f := policy.Function{Schema: r.Schema, Name: r.Name}
	f.Builtin = (f.Schema == "" || f.Schema == "pg_catalog") && builtinFunctions[f.Name]
	return f
}

// constValue returns the text of a constant (or a constant cast), and
// whether the node is one.
func constValue(n *pg_query.Node) (string, bool) {
	switch c := unwrap(n).(type) {
	case *pg_query.A_Const:
		if c.Isnull {
			return "", false
		}
		switch v := c.Val.(type) {
		case *pg_query.A_Const_Sval:
			return v.Sval.Sval, true
		case *pg_query.A_Const_Ival:
			return itoa(int64(v.Ival.Ival)), true
		case *pg_query.A_Const_Fval:
			return v.Fval.Fval, true
		case *pg_query.A_Const_Boolval:
			if v.Boolval.Boolval {
				return "on", true
			}
			return "off", true
		case *pg_query.A_Const_Bsval:
			return v.Bsval.Bsval, true
		}
	case *pg_query.TypeCast:
		return constValue(c.Arg)
	case *pg_query.String:
		return c.Sval, true
	case *pg_query.Integer:
		return itoa(int64(c.Ival)), true
	case *pg_query.Boolean:
		if c.Boolval {
			return "on", true
		}
		return "off", true
	}
	return "", false
}

// stringConst returns the text of a string constant (or a cast of one).
func stringConst(n *pg_query.Node) (string, bool) {
	switch c := unwrap(n).(type) {
	case *pg_query.A_Const:
		if v, ok := c.Val.(*pg_query.A_Const_Sval); ok && !c.Isnull {
			return v.Sval.Sval, true
		}
	case *pg_query.TypeCast:
		return stringConst(c.Arg)
	}
	return "", false
}

func constText(n *pg_query.Node) string {
	v, _ := constValue(n)
	return v
}

func itoa(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	var b [24]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// truthy reports whether a setting value means true the way PostgreSQL's
// boolean parser reads it.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "t", "yes", "y", "1", "tr", "tru", "ye":
		return true
	}
	return false
}

// quoteIdent quotes a search_path element when PostgreSQL would need it.
func quoteIdent(s string) string {
	if s == "$user" {
		return `"$user"`
	}
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && (r >= '0' && r <= '9' || r == '$'))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// parseRelationName reads a relation name written as text (nextval's
// argument), case-folding unquoted parts like regclass input does.
func parseRelationName(s string) policy.Relation {
	var parts []string
	for s != "" {
		var part string
		if s[0] == '"' {
			end := 1
			var b strings.Builder
			for end < len(s) {
				if s[end] == '"' {
					if end+1 < len(s) && s[end+1] == '"' {
						b.WriteByte('"')
						end += 2
						continue
					}
					break
				}
				b.WriteByte(s[end])
				end++
			}
			part = b.String()
			s = s[min(end+1, len(s)):]
		} else {
			end := strings.IndexByte(s, '.')
			if end < 0 {
				end = len(s)
			}
			part = strings.ToLower(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		parts = append(parts, part)
		s = strings.TrimPrefix(s, ".")
	}
	if len(parts) == 0 {
		return policy.Relation{}
	}
	if len(parts) == 1 {
		return policy.Relation{Name: parts[0], Catalog: catalogRelations[parts[0]]}
	}
	return policy.Relation{Schema: parts[len(parts)-2], Name: parts[len(parts)-1]}
}

// commandOf names a statement node's command from its type: CreateStmt is
// "CREATE TABLE", AlterTableStmt "ALTER TABLE", and so on.
func commandOf(m proto.Message) string {
	if m == nil {
		return ""
	}
	name := reflect.TypeOf(m).Elem().Name()
	if c, ok := commandNames[name]; ok {
		return c
	}
	name = strings.TrimSuffix(name, "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) && !unicode.IsUpper(rune(name[i-1])) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

var commandNames = map[string]string{
	"CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "CreateSeqStmt": "CREATE SEQUENCE",
	"AlterSeqStmt": "ALTER SEQUENCE", "CreateTrigStmt": "CREATE TRIGGER", "RuleStmt": "CREATE RULE",
	"CreateFunctionStmt": "CREATE FUNCTION", "CreateSchemaStmt": "CREATE SCHEMA", "CreateExtensionStmt": "CREATE EXTENSION",
	"RenameStmt": "ALTER RENAME", "CommentStmt": "COMMENT", "AlterSystemStmt": "ALTER SYSTEM",
	"CreateRoleStmt": "CREATE ROLE", "AlterRoleStmt": "ALTER ROLE", "AlterRoleSetStmt": "ALTER ROLE SET",
	"DropRoleStmt": "DROP ROLE", "CheckPointStmt": "CHECKPOINT", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
	"CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE", "AlterDatabaseSetStmt": "ALTER DATABASE SET",
	"CreatePolicyStmt": "CREATE POLICY", "AlterPolicyStmt": "ALTER POLICY", "DefineStmt": "CREATE",
	"SecLabelStmt": "SECURITY LABEL",
}

// isDDL reports whether a statement node defines, changes or removes
// objects.
func isDDL(m proto.Message) bool {
	name := reflect.TypeOf(m).Elem().Name()
	for _, p := range []string{"Create", "Alter", "Drop", "Rename", "Comment", "Define", "Sec", "Import", "Reassign", "Index", "Rule", "Createdb", "Dropdb"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func isRelationType(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		return true
	}
	return false
}

func objectTypeName(t pg_query.ObjectType) string {
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func dedupe[T comparable](s []T) []T {
	if len(s) < 2 {
		return s
	}
	out := s[:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return slices.Clip(out)
}
