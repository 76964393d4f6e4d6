package policy

import (
	"errors"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Statement is what the gateway found in one SQL statement, parsed with the
// real PostgreSQL grammar. A policy decides on it without walking parse
// trees; Tree is there for the rare rule that must.
//
// Statements are shared between sessions (the gateway caches them by exact
// text): a policy must never modify one.
type Statement struct {
	// Kind is what the statement does.
	Kind Kind
	// Command names the command the way PostgreSQL's command tags do, for
	// example "SELECT", "CREATE TABLE", "ALTER ROLE".
	Command string
	// SQL is the statement's own text, without the others of a
	// multi-statement string.
	SQL string

	// Writes is set when running the statement can change data, schema,
	// privileges or sequences: INSERT/UPDATE/DELETE/MERGE (also inside a
	// CTE), SELECT INTO, CREATE TABLE AS, COPY FROM, TRUNCATE, DDL, DCL,
	// nextval/setval and other known writing functions, EXPLAIN ANALYZE of
	// any of these, and the statement a PREPARE defines or an EXECUTE runs.
	Writes bool
	// Locks is set when the statement takes row or table locks that
	// readers do not: SELECT ... FOR UPDATE/SHARE, LOCK.
	Locks bool
	// AllRows is set when an UPDATE or DELETE (here, in a CTE, or in a
	// nested statement that runs) has no WHERE clause, and so changes every
	// row of its table.
	AllRows bool
	// Contains lists the kinds of the data-changing statements nested in
	// this one's WITH clauses (a DELETE in a CTE of a SELECT).
	Contains []Kind
	// RunTime lists why the statement's effect is decided at run time and
	// cannot be read from its text: "DO block", "CALL", "user function f",
	// "function query_to_xml runs SQL text". Empty when the text says it all.
	RunTime []string

	// Reads are the tables (and views, sequences, ...) the statement reads.
	Reads []Relation
	// Written are the relations the statement writes or changes: targets
	// of DML and COPY FROM, created, altered, dropped or truncated ones.
	Written []Relation
	// Functions are the functions called, including those called by
	// name through operators' functional forms; not those run by triggers,
	// views or other functions, which only the server sees.
	Functions []Function
	// Operators are the names of the operators the statement uses (built-in
	// ones; a user-defined operator is also in RunTime).
	Operators []string
	// Settings are the run-time settings the statement changes.
	Settings []Setting

	// Name is the name the statement is about: the prepared statement of
	// PREPARE/EXECUTE/DEALLOCATE, the cursor of DECLARE/FETCH/MOVE/CLOSE,
	// the channel of LISTEN/NOTIFY/UNLISTEN. Empty otherwise (and for
	// DEALLOCATE ALL, CLOSE ALL, UNLISTEN *).
	Name string
	// Inner is the statement inside: the one EXPLAIN explains, PREPARE
	// defines, DECLARE CURSOR declares, COPY (query) TO copies, CREATE TABLE
	// AS or CREATE VIEW/RULE stores; for EXECUTE and FETCH, the gateway fills
	// it with the statement the session prepared or declared under Name.
	Inner *Statement
	// Executes reports, for EXPLAIN, whether Inner runs (ANALYZE).
	Executes bool
}

// Tree parses the statement's text again with PostgreSQL's grammar and
// returns its parse tree: the escape hatch for custom rules (the gateway
// keeps summaries, not trees, in its cache). It fails for nested
// statements (the outer statement's tree holds them, see Inner) and for
// statements the gateway built itself, which have no text.
func (s *Statement) Tree() (*pg_query.RawStmt, error) {
	if s.SQL == "" {
		return nil, errors.New("policy: the statement has no text of its own")
	}
	r, err := pg_query.Parse(s.SQL)
	if err != nil {
		return nil, err
	}
	if len(r.Stmts) != 1 {
		return nil, errors.New("policy: the statement's text holds no single statement")
	}
	return r.Stmts[0], nil
}

// Kinds returns the statement's kind followed by those of the statements
// nested in it: inner statements and data-changing CTEs (an EXPLAIN
// ANALYZE DELETE is both an explain and a delete).
func (s *Statement) Kinds() []Kind {
	var kinds []Kind
	for st := s; st != nil; st = st.Inner {
		kinds = append(kinds, st.Kind)
		kinds = append(kinds, st.Contains...)
	}
	return kinds
}

// Is reports whether the statement, or one nested in it, is of one of the
// given kinds.
func (s *Statement) Is(kinds ...Kind) bool {
	for st := s; st != nil; st = st.Inner {
		if slices.Contains(kinds, st.Kind) || slices.ContainsFunc(st.Contains, func(k Kind) bool { return slices.Contains(kinds, k) }) {
			return true
		}
	}
	return false
}

// Relations returns every relation the statement and those nested in it
// read or write.
func (s *Statement) Relations() []Relation {
	var rels []Relation
	for st := s; st != nil; st = st.Inner {
		rels = append(rels, st.Reads...)
		rels = append(rels, st.Written...)
	}
	return rels
}

// Relation names a table, view, sequence or other relation as written in
// the statement.
type Relation struct {
	// Schema is the schema as written; empty when the name was not
	// qualified, and the session's search_path decides (see
	// Query.Schemas).
	Schema string
	// Name is the relation's name, case-folded and unquoted the way
	// PostgreSQL does.
	Name string
	// Catalog is set when the name is unqualified and names one of
	// PostgreSQL's own relations in pg_catalog (pg_class, pg_authid, ...),
	// which the server finds there before looking in the search_path.
	Catalog bool
}

// String returns schema.name, or name when unqualified.
func (r Relation) String() string {
	if r.Schema == "" {
		return r.Name
	}
	return r.Schema + "." + r.Name
}

// Function names a called function as written.
type Function struct {
	// Schema is the schema as written, empty when unqualified.
	Schema string
	// Name is the function's name, case-folded the way PostgreSQL does.
	Name string
	// Builtin is set when the name is unqualified or in pg_catalog and
	// names one of PostgreSQL's own functions; otherwise the function is
	// the database's own, and what it does is decided at run time.
	Builtin bool
}

// String returns schema.name, or name when unqualified.
func (f Function) String() string {
	if f.Schema == "" {
		return f.Name
	}
	return f.Schema + "." + f.Name
}

// Setting is a change to a run-time setting.
type Setting struct {
	// Name is the setting, lower case ("search_path", "role",
	// "session_authorization", "transaction_read_only",
	// "default_transaction_read_only", ...). "all" for RESET ALL and
	// DISCARD ALL; "*" when the name is only known at run time (set_config
	// with a computed name).
	Name string
	// Value is the new value as text when it is a constant; empty for a
	// RESET.
	Value string
	// Known reports whether Value is the value the server will use (false
	// for a computed value, a RESET or DEFAULT).
	Known bool
	// Reset is set for RESET, SET ... TO DEFAULT and DISCARD.
	Reset bool
	// Local is set when the change lasts only until the end of the
	// transaction (SET LOCAL, set_config(..., true), SET TRANSACTION, BEGIN
	// options).
	Local bool
	// Via is the command that makes the change: "SET", "RESET",
	// "set_config", "BEGIN", "SET TRANSACTION", "SET SESSION CHARACTERISTICS",
	// "DISCARD".
	Via string
}

// Kind classifies statements.
type Kind string

// Statement kinds. DDL kinds share KindDDL, with Statement.Command telling
// which command it is.
const (
	KindSelect       Kind = "select"
	KindInsert       Kind = "insert"
	KindUpdate       Kind = "update"
	KindDelete       Kind = "delete"
	KindMerge        Kind = "merge"
	KindCopy         Kind = "copy"
	KindTruncate     Kind = "truncate"
	KindDDL          Kind = "ddl"           // CREATE, ALTER, DROP, COMMENT, ...
	KindDCL          Kind = "dcl"           // GRANT, REVOKE, CREATE/ALTER/DROP ROLE, ...
	KindTransaction  Kind = "transaction"   // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...
	KindSet          Kind = "set"           // SET, SET ROLE, SET SESSION AUTHORIZATION, SET TRANSACTION
	KindReset        Kind = "reset"         // RESET
	KindShow         Kind = "show"          // SHOW
	KindDiscard      Kind = "discard"       // DISCARD
	KindPrepare      Kind = "prepare"       // PREPARE
	KindExecute      Kind = "execute"       // EXECUTE
	KindDeallocate   Kind = "deallocate"    // DEALLOCATE
	KindDeclare      Kind = "declare"       // DECLARE CURSOR
	KindFetch        Kind = "fetch"         // FETCH, MOVE
	KindClose        Kind = "close"         // CLOSE (a cursor)
	KindDo           Kind = "do"            // DO
	KindCall         Kind = "call"          // CALL
	KindExplain      Kind = "explain"       // EXPLAIN
	KindLock         Kind = "lock"          // LOCK
	KindListen       Kind = "listen"        // LISTEN
	KindUnlisten     Kind = "unlisten"      // UNLISTEN
	KindNotify       Kind = "notify"        // NOTIFY
	KindMaintenance  Kind = "maintenance"   // VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, REFRESH MATERIALIZED VIEW
	KindLoad         Kind = "load"          // LOAD (a shared library)
	KindFunctionCall Kind = "function-call" // the FunctionCall message (no SQL)
	KindOther        Kind = "other"         // anything else (Command says what)
)

// Kinds returns every statement kind, for configuration checks.
func Kinds() []Kind {
	return []Kind{KindSelect, KindInsert, KindUpdate, KindDelete, KindMerge, KindCopy, KindTruncate,
		KindDDL, KindDCL, KindTransaction, KindSet, KindReset, KindShow, KindDiscard, KindPrepare,
		KindExecute, KindDeallocate, KindDeclare, KindFetch, KindClose, KindDo, KindCall, KindExplain,
		KindLock, KindListen, KindUnlisten, KindNotify, KindMaintenance, KindLoad, KindFunctionCall, KindOther}
}

// ParseKind returns the kind named s (case-insensitive), and whether there
// is one.
func ParseKind(s string) (Kind, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "_", "-")
	for _, k := range Kinds() {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}
