package analysis

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
)

// want is what a test expects of one analysed statement. Every field is
// compared; slices compare by length and content (nil and empty are the
// same). command and sql are only compared when set.
type want struct {
	kind    policy.Kind
	command string
	// sql, when set, is the statement's own text (Statement.SQL).
	sql                    string
	writes, locks, allRows bool
	// contains are the kinds of the data-changing statements in WITH
	// clauses (Statement.Contains).
	contains []policy.Kind
	// runTime are substrings of Statement.RunTime, one per entry, in order;
	// nil expects no run-time reason at all.
	runTime        []string
	reads, written []policy.Relation
	functions      []policy.Function
	settings       []policy.Setting
	name           string
	inner          *want
	executes       bool
}

type analyzeCase struct {
	name string
	sql  string
	want []want
}

func rel(name string) policy.Relation          { return policy.Relation{Name: name} }
func qrel(schema, name string) policy.Relation { return policy.Relation{Schema: schema, Name: name} }
func catalogRel(name string) policy.Relation   { return policy.Relation{Name: name, Catalog: true} }
func rels(r ...policy.Relation) []policy.Relation {
	return r
}
func builtin(name string) policy.Function { return policy.Function{Name: name, Builtin: true} }
func pgCatalog(name string) policy.Function {
	return policy.Function{Schema: "pg_catalog", Name: name, Builtin: true}
}
func userFn(schema, name string) policy.Function { return policy.Function{Schema: schema, Name: name} }
func fns(f ...policy.Function) []policy.Function { return f }
func sets(s ...policy.Setting) []policy.Setting  { return s }

// one is a single-statement expectation.
func one(w want) []want { return []want{w} }

// selectNothing is a plain SELECT that reads no table and writes nothing.
var selectNothing = want{kind: policy.KindSelect, command: "SELECT"}

// analyzeCases are the statements a hostile user might send, each with
// what the analysis must see in it.
var analyzeCases = []analyzeCase{
	// --- Comments ---------------------------------------------------------
	{"comment/nested block comment hides a statement", "SELECT 1 /* a /* b */ c; DROP TABLE t; */",
		one(selectNothing)},
	{"comment/nested block comment then a real statement", "SELECT 1 /* a /* b */ c; DROP TABLE t; */; DELETE FROM u",
		[]want{selectNothing, {kind: policy.KindDelete, command: "DELETE", sql: "DELETE FROM u", writes: true, allRows: true, written: rels(rel("u"))}}},
	{"comment/line comment ended by a bare CR before the semicolon", "SELECT 1 -- c\r; DROP TABLE x",
		[]want{{kind: policy.KindSelect, sql: "SELECT 1 -- c"}, {kind: policy.KindDDL, command: "DROP TABLE", sql: "DROP TABLE x", writes: true, written: rels(rel("x"))}}},
	{"comment/line comment ended by a bare CR hides nothing", "SELECT 1; -- c\rDROP TABLE x",
		[]want{selectNothing, {kind: policy.KindDDL, command: "DROP TABLE", writes: true, written: rels(rel("x"))}}},
	{"comment/line comment to LF", "SELECT 1 -- ; DROP TABLE x\n; DELETE FROM t WHERE a = 1",
		[]want{selectNothing, {kind: policy.KindDelete, writes: true, written: rels(rel("t"))}}},
	{"comment/comment glued to an operator", "SELECT 1 +/* ; DROP TABLE x; */ 2",
		one(selectNothing)},

	// --- Case and quoting -------------------------------------------------
	{"case/mixed-case keywords and name", "DeLeTe FrOm T",
		one(want{kind: policy.KindDelete, command: "DELETE", writes: true, allRows: true, written: rels(rel("t"))})},
	{"quote/quoted keeps case, unquoted folds", `SELECT * FROM "Secrets", secrets, SECRETS, "secrets"`,
		one(want{kind: policy.KindSelect, reads: rels(rel("Secrets"), rel("secrets"))})},
	{"quote/quoted schema", `SELECT * FROM "My Schema"."T"`,
		one(want{kind: policy.KindSelect, reads: rels(qrel("My Schema", "T"))})},
	{"quote/unicode escaped identifier", `SELECT * FROM U&"d\0061ta"`,
		one(want{kind: policy.KindSelect, reads: rels(rel("data"))})},
	{"quote/unicode escaped identifier with UESCAPE", `SELECT * FROM U&"!0073ecrets" UESCAPE '!'`,
		one(want{kind: policy.KindSelect, reads: rels(rel("secrets"))})},
	{"quote/backslash does not escape a standard string", `SELECT 'a\'; DELETE FROM t; --'`,
		[]want{{kind: policy.KindSelect, sql: `SELECT 'a\'`}, {kind: policy.KindDelete, sql: "DELETE FROM t", writes: true, allRows: true, written: rels(rel("t"))}}},
	{"quote/backslash escapes in an E string", `SELECT E'\'; DELETE FROM t; --'`,
		one(selectNothing)},
	{"quote/doubled quote in a string", `SELECT 'it''s; DELETE FROM t'`,
		one(selectNothing)},

	// --- Dollar quoting ---------------------------------------------------
	{"dollar/$$ body with a semicolon and DELETE", "SELECT $$ ; DELETE FROM t $$",
		one(selectNothing)},
	{"dollar/tagged body with a semicolon and DELETE", "SELECT $tag$ ; DELETE FROM t; $$ $tag$",
		one(selectNothing)},
	{"dollar/nested different tags", "SELECT $a$ $b$ ; DELETE FROM t; $b$ $$ $a$",
		one(selectNothing)},
	{"dollar/body then a real statement", "SELECT $x$;DROP TABLE a;$x$; DROP TABLE b",
		[]want{selectNothing, {kind: policy.KindDDL, command: "DROP TABLE", writes: true, written: rels(rel("b"))}}},

	// --- Several statements -----------------------------------------------
	{"multi/select then delete", "SELECT 1; DELETE FROM t",
		[]want{{kind: policy.KindSelect, sql: "SELECT 1"}, {kind: policy.KindDelete, sql: "DELETE FROM t", writes: true, allRows: true, written: rels(rel("t"))}}},
	{"multi/empty statements are dropped", ";;SELECT 1;;",
		one(selectNothing)},

	// --- CTEs -------------------------------------------------------------
	{"cte/DELETE in a CTE", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
		one(want{kind: policy.KindSelect, writes: true, contains: []policy.Kind{policy.KindDelete}, allRows: true, written: rels(rel("t"))})},
	{"cte/UPDATE with WHERE in a CTE", "WITH x AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING *) SELECT * FROM x",
		one(want{kind: policy.KindSelect, writes: true, contains: []policy.Kind{policy.KindUpdate}, written: rels(rel("t"))})},
	{"cte/INSERT in a CTE of an INSERT", "WITH x AS (INSERT INTO log VALUES (1) RETURNING *) INSERT INTO t SELECT * FROM x",
		one(want{kind: policy.KindInsert, writes: true, contains: []policy.Kind{policy.KindInsert}, written: rels(rel("t"), rel("log"))})},
	{"cte/name shadows a table", "WITH secrets AS (SELECT 1) SELECT * FROM secrets",
		one(selectNothing)},
	{"cte/non-recursive CTE reads the real table of its own name", "WITH t AS (SELECT * FROM t) SELECT * FROM t",
		one(want{kind: policy.KindSelect, reads: rels(rel("t"))})},
	{"cte/recursive CTE reads itself", "WITH RECURSIVE t AS (SELECT 1 UNION ALL SELECT * FROM t) SELECT * FROM t, u",
		one(want{kind: policy.KindSelect, reads: rels(rel("u"))})},
	{"cte/later sibling is a table for an earlier one", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b",
		one(want{kind: policy.KindSelect, reads: rels(rel("b"))})},
	{"cte/scope ends with its subquery", "SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) q, s",
		one(want{kind: policy.KindSelect, reads: rels(rel("s"))})},
	{"cte/schema-qualified name is never a CTE", "WITH t AS (SELECT 1) SELECT * FROM public.t",
		one(want{kind: policy.KindSelect, reads: rels(qrel("public", "t"))})},
	{"cte/DML target is a table even when a CTE has its name", "WITH t AS (SELECT 1), d AS (DELETE FROM t) SELECT * FROM t",
		one(want{kind: policy.KindSelect, writes: true, contains: []policy.Kind{policy.KindDelete}, allRows: true, written: rels(rel("t"))})},
	{"cte/INSERT target shadowed by the query's CTE", "INSERT INTO t WITH t AS (SELECT 1) SELECT * FROM t",
		one(want{kind: policy.KindInsert, writes: true, written: rels(rel("t"))})},

	// --- SELECT INTO, CREATE TABLE AS -------------------------------------
	{"into/SELECT INTO", "SELECT * INTO x FROM t",
		one(want{kind: policy.KindSelect, command: "SELECT INTO", writes: true, reads: rels(rel("t")), written: rels(rel("x"))})},
	{"into/SELECT INTO TEMP", "SELECT 1 INTO TEMP x",
		one(want{kind: policy.KindSelect, command: "SELECT INTO", writes: true, written: rels(rel("x"))})},
	{"into/CREATE TABLE AS", "CREATE TABLE x AS SELECT * FROM secrets",
		one(want{kind: policy.KindDDL, command: "CREATE TABLE AS", writes: true, written: rels(rel("x")),
			inner: &want{kind: policy.KindSelect, reads: rels(rel("secrets"))}})},
	{"into/CREATE MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW s.mv AS SELECT * FROM secrets",
		one(want{kind: policy.KindDDL, command: "CREATE MATERIALIZED VIEW", writes: true, written: rels(qrel("s", "mv")),
			inner: &want{kind: policy.KindSelect, reads: rels(rel("secrets"))}})},
	{"into/CREATE VIEW", "CREATE VIEW v AS SELECT * FROM secrets",
		one(want{kind: policy.KindDDL, command: "CREATE VIEW", writes: true, written: rels(rel("v")),
			inner: &want{kind: policy.KindSelect, reads: rels(rel("secrets"))}})},

	// --- Locking ----------------------------------------------------------
	{"lock/FOR UPDATE", "SELECT * FROM t FOR UPDATE",
		one(want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))})},
	{"lock/FOR SHARE", "SELECT * FROM t FOR SHARE",
		one(want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))})},
	{"lock/FOR NO KEY UPDATE SKIP LOCKED", "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED",
		one(want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))})},
	{"lock/FOR UPDATE in a subquery", "SELECT * FROM (SELECT * FROM t FOR UPDATE) x",
		one(want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))})},
	{"lock/FOR UPDATE OF an alias reads no relation of that name", "SELECT * FROM x AS a FOR UPDATE OF a",
		one(want{kind: policy.KindSelect, locks: true, reads: rels(rel("x"))})},
	{"lock/LOCK TABLE default mode", "LOCK TABLE t",
		one(want{kind: policy.KindLock, command: "LOCK TABLE", locks: true, reads: rels(rel("t"))})},
	{"lock/LOCK TABLE two tables in SHARE MODE", "LOCK TABLE a, s.b IN SHARE MODE",
		one(want{kind: policy.KindLock, locks: true, reads: rels(rel("a"), qrel("s", "b"))})},
	{"lock/LOCK TABLE ACCESS SHARE takes no reader-blocking lock", "LOCK TABLE t IN ACCESS SHARE MODE",
		one(want{kind: policy.KindLock, reads: rels(rel("t"))})},

	// --- EXPLAIN ----------------------------------------------------------
	{"explain/without ANALYZE does not write", "EXPLAIN DELETE FROM t",
		one(want{kind: policy.KindExplain, command: "EXPLAIN",
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/VERBOSE does not execute", "EXPLAIN (VERBOSE) DELETE FROM t",
		one(want{kind: policy.KindExplain, inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/ANALYZE", "EXPLAIN ANALYZE DELETE FROM t",
		one(want{kind: policy.KindExplain, writes: true, allRows: true, executes: true,
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/ANALYSE spelling", "EXPLAIN ANALYSE DELETE FROM t",
		one(want{kind: policy.KindExplain, writes: true, allRows: true, executes: true,
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE)", "EXPLAIN (ANALYZE) UPDATE t SET a = 1 WHERE id = 1",
		one(want{kind: policy.KindExplain, writes: true, executes: true,
			inner: &want{kind: policy.KindUpdate, writes: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE true)", "EXPLAIN (ANALYZE true) DELETE FROM t",
		one(want{kind: policy.KindExplain, writes: true, allRows: true, executes: true,
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE 'on') after another option", "EXPLAIN (FORMAT JSON, ANALYZE 'on') INSERT INTO t VALUES (1)",
		one(want{kind: policy.KindExplain, writes: true, executes: true,
			inner: &want{kind: policy.KindInsert, writes: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE 1)", "EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 3",
		one(want{kind: policy.KindExplain, writes: true, executes: true,
			inner: &want{kind: policy.KindDelete, writes: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE off)", "EXPLAIN (ANALYZE off) DELETE FROM t",
		one(want{kind: policy.KindExplain, inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE false)", "EXPLAIN (ANALYZE false) DELETE FROM t",
		one(want{kind: policy.KindExplain, inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/(ANALYZE 0)", "EXPLAIN (ANALYZE 0) DELETE FROM t",
		one(want{kind: policy.KindExplain, inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"explain/ANALYZE of a writing function", "EXPLAIN ANALYZE SELECT nextval('s')",
		one(want{kind: policy.KindExplain, writes: true, executes: true,
			inner: &want{kind: policy.KindSelect, writes: true, written: rels(rel("s")), functions: fns(builtin("nextval"))}})},
	{"explain/ANALYZE of FOR UPDATE locks", "EXPLAIN (ANALYZE) SELECT * FROM t FOR UPDATE",
		one(want{kind: policy.KindExplain, locks: true, executes: true,
			inner: &want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))}})},
	{"explain/ANALYZE of a user function is run-time", "EXPLAIN ANALYZE SELECT f()",
		one(want{kind: policy.KindExplain, executes: true, runTime: []string{"user function f"},
			inner: &want{kind: policy.KindSelect, runTime: []string{"user function f"}, functions: fns(userFn("", "f"))}})},
	{"explain/ANALYZE CREATE TABLE AS", "EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
		one(want{kind: policy.KindExplain, writes: true, executes: true,
			inner: &want{kind: policy.KindDDL, command: "CREATE TABLE AS", writes: true, written: rels(rel("x")),
				inner: &selectNothing}})},

	// --- Prepared statements ----------------------------------------------
	{"prepare/PREPARE DELETE", "PREPARE p AS DELETE FROM t",
		one(want{kind: policy.KindPrepare, command: "PREPARE", name: "p", writes: true, allRows: true,
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"prepare/PREPARE with parameter types", "PREPARE p(int) AS DELETE FROM t WHERE id = $1",
		one(want{kind: policy.KindPrepare, name: "p", writes: true,
			inner: &want{kind: policy.KindDelete, writes: true, written: rels(rel("t"))}})},
	{"prepare/PREPARE FOR UPDATE locks", "PREPARE q AS SELECT * FROM t FOR UPDATE",
		one(want{kind: policy.KindPrepare, name: "q", locks: true,
			inner: &want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))}})},
	{"prepare/EXECUTE", "EXECUTE p(1)",
		one(want{kind: policy.KindExecute, command: "EXECUTE", name: "p"})},
	{"prepare/EXECUTE with a writing argument", "EXECUTE p(nextval('s'))",
		one(want{kind: policy.KindExecute, name: "p", writes: true, written: rels(rel("s")), functions: fns(builtin("nextval"))})},
	{"prepare/DEALLOCATE", "DEALLOCATE p",
		one(want{kind: policy.KindDeallocate, command: "DEALLOCATE", name: "p"})},
	{"prepare/DEALLOCATE PREPARE", "DEALLOCATE PREPARE p",
		one(want{kind: policy.KindDeallocate, name: "p"})},
	{"prepare/DEALLOCATE ALL has no name", "DEALLOCATE ALL",
		one(want{kind: policy.KindDeallocate})},

	// --- Cursors ----------------------------------------------------------
	{"cursor/DECLARE FOR UPDATE", "DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE",
		one(want{kind: policy.KindDeclare, command: "DECLARE CURSOR", name: "c", locks: true,
			inner: &want{kind: policy.KindSelect, locks: true, reads: rels(rel("t"))}})},
	{"cursor/DECLARE of a writing query", "DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT nextval('s')",
		one(want{kind: policy.KindDeclare, name: "c", writes: true,
			inner: &want{kind: policy.KindSelect, writes: true, written: rels(rel("s")), functions: fns(builtin("nextval"))}})},
	{"cursor/FETCH", "FETCH 5 FROM c",
		one(want{kind: policy.KindFetch, command: "FETCH", name: "c"})},
	{"cursor/FETCH quoted name", `FETCH FORWARD 10 FROM "C"`,
		one(want{kind: policy.KindFetch, name: "C"})},
	{"cursor/MOVE", "MOVE NEXT IN c",
		one(want{kind: policy.KindFetch, command: "MOVE", name: "c"})},
	{"cursor/CLOSE", "CLOSE c",
		one(want{kind: policy.KindClose, name: "c"})},
	{"cursor/CLOSE ALL has no name", "CLOSE ALL",
		one(want{kind: policy.KindClose})},

	// --- Code the gateway cannot see --------------------------------------
	{"runtime/DO block", "DO $$ BEGIN DELETE FROM t; END $$",
		one(want{kind: policy.KindDo, command: "DO", writes: true, runTime: []string{"DO block"}})},
	{"runtime/DO with LANGUAGE", "DO LANGUAGE plpgsql $body$ BEGIN PERFORM 1; END $body$",
		one(want{kind: policy.KindDo, writes: true, runTime: []string{"DO"}})},
	{"runtime/CALL", "CALL proc()",
		one(want{kind: policy.KindCall, command: "CALL", writes: true, runTime: []string{"CALL proc", "user function proc"}, functions: fns(userFn("", "proc"))})},
	{"runtime/CALL qualified", "CALL s.proc(1)",
		one(want{kind: policy.KindCall, writes: true, runTime: []string{"CALL s.proc", "user function s.proc"}, functions: fns(userFn("s", "proc"))})},
	{"runtime/user function in SELECT", "SELECT myfunc(1)",
		one(want{kind: policy.KindSelect, runTime: []string{"user function myfunc"}, functions: fns(userFn("", "myfunc"))})},
	{"runtime/user functions qualified and not", "SELECT myschema.f(1), f(2)",
		one(want{kind: policy.KindSelect, runTime: []string{"user function myschema.f", "user function f"}, functions: fns(userFn("myschema", "f"), userFn("", "f"))})},
	{"runtime/user function in FROM", "SELECT * FROM ROWS FROM (generate_series(1, 2), myf())",
		one(want{kind: policy.KindSelect, runTime: []string{"user function myf"}, functions: fns(builtin("generate_series"), userFn("", "myf"))})},
	{"runtime/query_to_xml runs SQL text", "SELECT query_to_xml('select * from secrets', true, true, '')",
		one(want{kind: policy.KindSelect, runTime: []string{"function query_to_xml runs SQL text"}, functions: fns(builtin("query_to_xml"))})},
	{"runtime/pg_catalog.query_to_xml", "SELECT pg_catalog.query_to_xml('x', true, true, '')",
		one(want{kind: policy.KindSelect, runTime: []string{"query_to_xml"}, functions: fns(pgCatalog("query_to_xml"))})},
	{"runtime/table_to_xml", "SELECT table_to_xml('secrets', true, true, '')",
		one(want{kind: policy.KindSelect, runTime: []string{"table_to_xml"}, functions: fns(builtin("table_to_xml"))})},
	{"runtime/LOAD", "LOAD 'evil'",
		one(want{kind: policy.KindLoad, command: "LOAD", runTime: []string{"LOAD"}})},

	// --- Operators --------------------------------------------------------
	{"operator/built-in operators", "SELECT a || b, j -> 'k', j ->> 'k', j @> '{}', a ~ 'x', a !~~* b, a % 3 FROM t WHERE a LIKE 'x%' AND b IN (1, 2) AND c IS DISTINCT FROM d",
		one(want{kind: policy.KindSelect, reads: rels(rel("t"))})},
	{"operator/pg_catalog.+", "SELECT 1 OPERATOR(pg_catalog.+) 1",
		one(selectNothing)},
	{"operator/user operator in a schema", "SELECT 1 OPERATOR(public.===) 1",
		one(want{kind: policy.KindSelect, runTime: []string{"user operator public.==="}})},
	{"operator/unknown operator", "SELECT 1 === 2",
		one(want{kind: policy.KindSelect, runTime: []string{"user operator ==="}})},
	{"operator/unknown operator with ANY array", "SELECT 1 === ANY (ARRAY[1])",
		one(want{kind: policy.KindSelect, runTime: []string{"user operator ==="}})},

	// --- Built-in or not --------------------------------------------------
	{"builtin/lower and pg_catalog.upper", "SELECT lower('A'), pg_catalog.upper('a'), PG_CATALOG.lower('b')",
		one(want{kind: policy.KindSelect, functions: fns(builtin("lower"), pgCatalog("upper"), pgCatalog("lower"))})},
	{"builtin/public.lower is not built in", "SELECT public.lower('a')",
		one(want{kind: policy.KindSelect, runTime: []string{"user function public.lower"}, functions: fns(userFn("public", "lower"))})},
	{"builtin/quoted upper-case name is not built in", `SELECT "lower"('a'), "LOWER"('a')`,
		one(want{kind: policy.KindSelect, runTime: []string{"user function LOWER"}, functions: fns(builtin("lower"), userFn("", "LOWER"))})},
	{"builtin/public.nextval is a user function, not a write", "SELECT public.nextval('s')",
		one(want{kind: policy.KindSelect, runTime: []string{"user function public.nextval"}, functions: fns(userFn("public", "nextval"))})},
	{"builtin/aggregates and subqueries", "SELECT count(*) FROM t WHERE a IN (SELECT b FROM u WHERE c = (SELECT max(d) FROM v))",
		one(want{kind: policy.KindSelect, reads: rels(rel("t"), rel("u"), rel("v")), functions: fns(builtin("count"), builtin("max"))})},
	{"attribute/(t).f may call the user function f(t)", "SELECT (t).f FROM t",
		one(want{kind: policy.KindSelect, reads: rels(rel("t")), runTime: []string{"f"}})},
	{"attribute/s.nextval calls nextval(s)", "SELECT s.nextval FROM s",
		one(want{kind: policy.KindSelect, writes: true, reads: rels(rel("s")), functions: fns(builtin("nextval"))})},
	{"attribute/(t).nextval calls nextval(t)", "SELECT (t).nextval FROM t",
		one(want{kind: policy.KindSelect, writes: true, reads: rels(rel("t")), functions: fns(builtin("nextval"))})},
	{"builtin/generate_series in FROM", "SELECT * FROM generate_series(1, 10)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("generate_series"))})},

	// --- Writes hidden in functions ---------------------------------------
	{"fnwrite/nextval", "SELECT nextval('s')",
		one(want{kind: policy.KindSelect, writes: true, written: rels(rel("s")), functions: fns(builtin("nextval"))})},
	{"fnwrite/nextval of a quoted qualified name", `SELECT nextval('Public."Seq"')`,
		one(want{kind: policy.KindSelect, writes: true, written: rels(qrel("public", "Seq")), functions: fns(builtin("nextval"))})},
	{"fnwrite/nextval of an OID names no sequence", "SELECT nextval(42)",
		one(want{kind: policy.KindSelect, writes: true, functions: fns(builtin("nextval"))})},
	{"fnwrite/nextval with regclass cast", `SELECT nextval('"S"'::regclass)`,
		one(want{kind: policy.KindSelect, writes: true, written: rels(rel("S")), functions: fns(builtin("nextval"))})},
	{"fnwrite/pg_catalog.nextval", "SELECT pg_catalog.nextval('s')",
		one(want{kind: policy.KindSelect, writes: true, written: rels(rel("s")), functions: fns(pgCatalog("nextval"))})},
	{"fnwrite/setval", "SELECT setval('Public.S2', 1)",
		one(want{kind: policy.KindSelect, writes: true, written: rels(qrel("public", "s2")), functions: fns(builtin("setval"))})},
	{"fnwrite/lo_import", "SELECT lo_import('/etc/passwd')",
		one(want{kind: policy.KindSelect, writes: true, functions: fns(builtin("lo_import"))})},
	{"fnwrite/nextval in VALUES", "VALUES (nextval('s'))",
		one(want{kind: policy.KindSelect, writes: true, written: rels(rel("s")), functions: fns(builtin("nextval"))})},
	{"fnwrite/nextval in COPY WHERE", "COPY t FROM STDIN WHERE a > nextval('s')",
		one(want{kind: policy.KindCopy, command: "COPY FROM", writes: true, written: rels(rel("t"), rel("s")), functions: fns(builtin("nextval"))})},

	// --- set_config -------------------------------------------------------
	{"set_config/search_path", "SELECT set_config('search_path', 'x', false)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "search_path", Value: "x", Known: true, Via: "set_config"})})},
	{"set_config/local", "SELECT set_config('Search_Path', 'x', true)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "search_path", Value: "x", Known: true, Local: true, Via: "set_config"})})},
	{"set_config/computed name", "SELECT set_config('search' || '_path', 'x', false)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "*", Value: "x", Known: true, Via: "set_config"})})},
	{"set_config/empty name counts as computed", "SELECT set_config('', 'x', false)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "*", Value: "x", Known: true, Via: "set_config"})})},
	{"set_config/UPDATE pg_settings", "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
		one(want{kind: policy.KindUpdate, writes: true, written: rels(catalogRel("pg_settings")),
			settings: sets(policy.Setting{Name: "*", Via: "UPDATE pg_settings"})})},
	{"set_config/UPDATE pg_catalog.pg_settings", "UPDATE pg_catalog.pg_settings SET setting = 'x, public' WHERE name = 'search_path'",
		one(want{kind: policy.KindUpdate, writes: true, written: rels(qrel("pg_catalog", "pg_settings")),
			settings: sets(policy.Setting{Name: "*", Via: "UPDATE pg_settings"})})},
	{"set_config/UPDATE public.pg_settings is a table", "UPDATE public.pg_settings SET setting = 'off' WHERE true",
		one(want{kind: policy.KindUpdate, writes: true, written: rels(qrel("public", "pg_settings"))})},
	{"set_config/name from a column", "SELECT set_config(name, 'x', false) FROM pg_settings",
		one(want{kind: policy.KindSelect, reads: rels(catalogRel("pg_settings")), functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "*", Value: "x", Known: true, Via: "set_config"})})},
	{"set_config/computed value", "SELECT set_config('role', current_user, true)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "role", Local: true, Via: "set_config"})})},
	{"set_config/unicode-escaped name", `SELECT set_config(U&'\0072ole', 'x', false)`,
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "role", Value: "x", Known: true, Via: "set_config"})})},
	{"set_config/pg_catalog qualified", "SELECT pg_catalog.set_config('ROLE', 'bob', false)",
		one(want{kind: policy.KindSelect, functions: fns(pgCatalog("set_config")),
			settings: sets(policy.Setting{Name: "role", Value: "bob", Known: true, Via: "set_config"})})},
	{"set_config/in FROM", "SELECT * FROM set_config('role', 'bob', false)",
		one(want{kind: policy.KindSelect, functions: fns(builtin("set_config")),
			settings: sets(policy.Setting{Name: "role", Value: "bob", Known: true, Via: "set_config"})})},
	{"set_config/public.set_config is a user function", "SELECT public.set_config('role', 'bob', false)",
		one(want{kind: policy.KindSelect, runTime: []string{"user function public.set_config"}, functions: fns(userFn("public", "set_config"))})},

	// --- SET, RESET, DISCARD ----------------------------------------------
	{"set/ROLE", "SET ROLE bob",
		one(want{kind: policy.KindSet, command: "SET", settings: sets(policy.Setting{Name: "role", Value: "bob", Known: true, Via: "SET"})})},
	{"set/LOCAL ROLE", "SET LOCAL ROLE bob",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "role", Value: "bob", Known: true, Local: true, Via: "SET"})})},
	{"set/SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION bob",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "session_authorization", Value: "bob", Known: true, Via: "SET"})})},
	{"set/SESSION AUTHORIZATION DEFAULT", "SET SESSION AUTHORIZATION DEFAULT",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "session_authorization", Reset: true, Via: "SET"})})},
	{"set/search_path keeps quoting", `SET search_path = a, "B"`,
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Value: `a, "B"`, Known: true, Via: "SET"})})},
	{"set/search_path string elements are quoted like the server does", `SET search_path = 'a', 'B', "$user"`,
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Value: `a, "B", "$user"`, Known: true, Via: "SET"})})},
	{"set/search_path unquoted folds", "SET Search_Path TO Public",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Value: "public", Known: true, Via: "SET"})})},
	{"set/SCHEMA is search_path", "SET SCHEMA 'x'",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Value: "x", Known: true, Via: "SET"})})},
	{"set/LOCAL search_path", "SET LOCAL search_path = a",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Value: "a", Known: true, Local: true, Via: "SET"})})},
	{"set/TO DEFAULT", "SET search_path TO DEFAULT",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Reset: true, Via: "SET"})})},
	{"set/FROM CURRENT", "SET search_path FROM CURRENT",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "search_path", Via: "SET"})})},
	{"set/TIME ZONE", "SET TIME ZONE 'UTC'",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "timezone", Value: "UTC", Known: true, Via: "SET"})})},
	{"set/quoted mixed-case name", `SET "Standard_Conforming_Strings" = off`,
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "standard_conforming_strings", Value: "off", Known: true, Via: "SET"})})},
	{"reset/one", "RESET search_path",
		one(want{kind: policy.KindReset, command: "RESET", settings: sets(policy.Setting{Name: "search_path", Reset: true, Via: "RESET"})})},
	{"reset/ROLE", "RESET ROLE",
		one(want{kind: policy.KindReset, settings: sets(policy.Setting{Name: "role", Reset: true, Via: "RESET"})})},
	{"reset/ALL", "RESET ALL",
		one(want{kind: policy.KindReset, settings: sets(policy.Setting{Name: "all", Reset: true, Via: "RESET"})})},
	{"discard/ALL", "DISCARD ALL",
		one(want{kind: policy.KindDiscard, command: "DISCARD", settings: sets(policy.Setting{Name: "all", Reset: true, Via: "DISCARD"})})},
	{"discard/PLANS changes no setting", "DISCARD PLANS",
		one(want{kind: policy.KindDiscard})},
	{"show/SHOW", "SHOW search_path",
		one(want{kind: policy.KindShow, command: "SHOW"})},

	// --- Transactions -----------------------------------------------------
	{"tx/BEGIN READ WRITE", "BEGIN READ WRITE",
		one(want{kind: policy.KindTransaction, command: "BEGIN",
			settings: sets(policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "BEGIN"})})},
	{"tx/START TRANSACTION with two modes", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
		one(want{kind: policy.KindTransaction, command: "START TRANSACTION", settings: sets(
			policy.Setting{Name: "transaction_isolation", Value: "serializable", Known: true, Local: true, Via: "BEGIN"},
			policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "BEGIN"})})},
	{"tx/BEGIN READ ONLY", "BEGIN TRANSACTION READ ONLY",
		one(want{kind: policy.KindTransaction,
			settings: sets(policy.Setting{Name: "transaction_read_only", Value: "on", Known: true, Local: true, Via: "BEGIN"})})},
	{"tx/SET TRANSACTION READ WRITE", "SET TRANSACTION READ WRITE",
		one(want{kind: policy.KindSet,
			settings: sets(policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Local: true, Via: "SET TRANSACTION"})})},
	{"tx/SET SESSION CHARACTERISTICS READ WRITE", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
		one(want{kind: policy.KindSet,
			settings: sets(policy.Setting{Name: "default_transaction_read_only", Value: "off", Known: true, Via: "SET SESSION CHARACTERISTICS"})})},
	{"tx/SET transaction_read_only directly", "SET transaction_read_only = off",
		one(want{kind: policy.KindSet, settings: sets(policy.Setting{Name: "transaction_read_only", Value: "off", Known: true, Via: "SET"})})},
	{"tx/COMMIT", "COMMIT", one(want{kind: policy.KindTransaction, command: "COMMIT"})},
	{"tx/END is COMMIT", "END", one(want{kind: policy.KindTransaction, command: "COMMIT"})},
	{"tx/ABORT is ROLLBACK", "ABORT", one(want{kind: policy.KindTransaction, command: "ROLLBACK"})},
	{"tx/SAVEPOINT", "SAVEPOINT s", one(want{kind: policy.KindTransaction, command: "SAVEPOINT"})},
	{"tx/COMMIT PREPARED writes", "COMMIT PREPARED 'x'", one(want{kind: policy.KindTransaction, command: "COMMIT PREPARED", writes: true})},

	// --- COPY -------------------------------------------------------------
	{"copy/FROM STDIN", "COPY t FROM STDIN",
		one(want{kind: policy.KindCopy, command: "COPY FROM", writes: true, written: rels(rel("t"))})},
	{"copy/FROM STDIN with columns and options", "COPY s.t (a, b) FROM STDIN WITH (FORMAT csv)",
		one(want{kind: policy.KindCopy, command: "COPY FROM", writes: true, written: rels(qrel("s", "t"))})},
	{"copy/TO STDOUT reads", "COPY t TO STDOUT",
		one(want{kind: policy.KindCopy, command: "COPY TO", reads: rels(rel("t"))})},
	{"copy/query TO STDOUT", "COPY (SELECT * FROM s) TO STDOUT",
		one(want{kind: policy.KindCopy, command: "COPY TO", inner: &want{kind: policy.KindSelect, reads: rels(rel("s"))}})},
	{"copy/DELETE RETURNING TO STDOUT writes", "COPY (DELETE FROM t RETURNING *) TO STDOUT",
		one(want{kind: policy.KindCopy, command: "COPY TO", writes: true, allRows: true,
			inner: &want{kind: policy.KindDelete, writes: true, allRows: true, written: rels(rel("t"))}})},
	{"copy/FROM PROGRAM", "COPY t FROM PROGRAM 'rm -rf /'",
		one(want{kind: policy.KindCopy, writes: true, runTime: []string{"program"}, written: rels(rel("t"))})},
	{"copy/TO PROGRAM", "COPY t TO PROGRAM 'cat'",
		one(want{kind: policy.KindCopy, writes: true, runTime: []string{"program"}, reads: rels(rel("t"))})},
	{"copy/FROM a server file", "COPY t FROM '/etc/passwd'",
		one(want{kind: policy.KindCopy, writes: true, runTime: []string{"file"}, written: rels(rel("t"))})},
	{"copy/TO a server file", "COPY t TO '/tmp/x'",
		one(want{kind: policy.KindCopy, writes: true, runTime: []string{"file"}, reads: rels(rel("t"))})},

	// --- DCL --------------------------------------------------------------
	{"dcl/GRANT on a table", "GRANT SELECT ON t TO bob",
		one(want{kind: policy.KindDCL, command: "GRANT", writes: true, written: rels(rel("t"))})},
	{"dcl/REVOKE on a table", "REVOKE ALL ON s.t FROM bob",
		one(want{kind: policy.KindDCL, command: "REVOKE", writes: true, written: rels(qrel("s", "t"))})},
	{"dcl/GRANT on a schema", "GRANT ALL ON SCHEMA public TO bob",
		one(want{kind: policy.KindDCL, command: "GRANT", writes: true})},
	{"dcl/GRANT a role", "GRANT admin TO bob",
		one(want{kind: policy.KindDCL, command: "GRANT", writes: true})},
	{"dcl/REVOKE a role", "REVOKE admin FROM bob",
		one(want{kind: policy.KindDCL, command: "REVOKE", writes: true})},
	{"dcl/CREATE ROLE", "CREATE ROLE r SUPERUSER",
		one(want{kind: policy.KindDCL, command: "CREATE ROLE", writes: true})},
	{"dcl/CREATE USER", "CREATE USER u WITH PASSWORD 'x'",
		one(want{kind: policy.KindDCL, command: "CREATE ROLE", writes: true})},
	{"dcl/ALTER ROLE", "ALTER ROLE r PASSWORD 'x'",
		one(want{kind: policy.KindDCL, command: "ALTER ROLE", writes: true})},
	{"dcl/ALTER USER", "ALTER USER u SUPERUSER",
		one(want{kind: policy.KindDCL, command: "ALTER ROLE", writes: true})},
	{"dcl/ALTER ROLE SET", "ALTER ROLE r SET search_path = x",
		one(want{kind: policy.KindDCL, command: "ALTER ROLE SET", writes: true})},
	{"dcl/DROP ROLE", "DROP ROLE r",
		one(want{kind: policy.KindDCL, command: "DROP ROLE", writes: true})},
	{"dcl/ALTER DEFAULT PRIVILEGES", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
		one(want{kind: policy.KindDCL, writes: true})},
	{"dcl/CREATE POLICY", "CREATE POLICY p ON t USING (true)",
		one(want{kind: policy.KindDCL, command: "CREATE POLICY", writes: true, written: rels(rel("t"))})},

	// --- DDL --------------------------------------------------------------
	{"ddl/DROP TABLE two tables", "DROP TABLE a.b, c",
		one(want{kind: policy.KindDDL, command: "DROP TABLE", writes: true, written: rels(qrel("a", "b"), rel("c"))})},
	{"ddl/DROP INDEX quoted", `DROP INDEX IF EXISTS "I"`,
		one(want{kind: policy.KindDDL, command: "DROP INDEX", writes: true, written: rels(rel("I"))})},
	{"ddl/DROP SEQUENCE", "DROP SEQUENCE s",
		one(want{kind: policy.KindDDL, command: "DROP SEQUENCE", writes: true, written: rels(rel("s"))})},
	{"ddl/DROP FUNCTION drops no relation", "DROP FUNCTION f()",
		one(want{kind: policy.KindDDL, command: "DROP FUNCTION", writes: true})},
	{"ddl/DROP SCHEMA", "DROP SCHEMA s CASCADE",
		one(want{kind: policy.KindDDL, command: "DROP SCHEMA", writes: true})},
	{"ddl/CREATE TABLE", "CREATE TABLE s.t (a int)",
		one(want{kind: policy.KindDDL, command: "CREATE TABLE", writes: true, written: rels(qrel("s", "t"))})},
	{"ddl/ALTER TABLE", "ALTER TABLE t ADD COLUMN b int",
		one(want{kind: policy.KindDDL, command: "ALTER TABLE", writes: true, written: rels(rel("t"))})},
	{"ddl/ALTER TABLE RENAME", "ALTER TABLE s.t RENAME TO u",
		one(want{kind: policy.KindDDL, writes: true, written: rels(qrel("s", "t"))})},
	{"ddl/CREATE INDEX", "CREATE INDEX i ON t (a)",
		one(want{kind: policy.KindDDL, command: "CREATE INDEX", writes: true, written: rels(rel("t"))})},
	{"ddl/CREATE FUNCTION body is not analysed", "CREATE FUNCTION f() RETURNS int AS $$ DELETE FROM t RETURNING 1 $$ LANGUAGE sql",
		one(want{kind: policy.KindDDL, command: "CREATE FUNCTION", writes: true})},
	{"ddl/CREATE SCHEMA with elements", "CREATE SCHEMA s CREATE TABLE t (a int) CREATE VIEW v AS SELECT * FROM secrets",
		one(want{kind: policy.KindDDL, command: "CREATE SCHEMA", writes: true, reads: rels(rel("secrets")), written: rels(rel("t"), rel("v"))})},
	{"ddl/COMMENT ON TABLE", "COMMENT ON TABLE s.secrets IS 'x'",
		one(want{kind: policy.KindDDL, command: "COMMENT", writes: true, written: rels(qrel("s", "secrets"))})},
	{"ddl/COMMENT ON FUNCTION", "COMMENT ON FUNCTION f() IS 'x'",
		one(want{kind: policy.KindDDL, command: "COMMENT", writes: true})},
	{"ddl/SECURITY LABEL", "SECURITY LABEL ON TABLE t IS 'x'",
		one(want{kind: policy.KindDDL, command: "SECURITY LABEL", writes: true, written: rels(rel("t"))})},
	{"ddl/ALTER SYSTEM", "ALTER SYSTEM SET work_mem = '1GB'",
		one(want{kind: policy.KindDDL, command: "ALTER SYSTEM", writes: true})},
	{"ddl/CREATE EXTENSION", "CREATE EXTENSION dblink",
		one(want{kind: policy.KindDDL, command: "CREATE EXTENSION", writes: true})},
	{"truncate/two tables", "TRUNCATE a, b.c",
		one(want{kind: policy.KindTruncate, command: "TRUNCATE TABLE", writes: true, written: rels(rel("a"), qrel("b", "c"))})},
	{"truncate/TABLE ONLY", "TRUNCATE TABLE ONLY t RESTART IDENTITY",
		one(want{kind: policy.KindTruncate, writes: true, written: rels(rel("t"))})},

	// --- LISTEN, NOTIFY ---------------------------------------------------
	{"listen/LISTEN", "LISTEN ch", one(want{kind: policy.KindListen, command: "LISTEN", name: "ch"})},
	{"listen/LISTEN quoted", `LISTEN "Ch"`, one(want{kind: policy.KindListen, name: "Ch"})},
	{"listen/NOTIFY with payload", "NOTIFY ch, 'x'", one(want{kind: policy.KindNotify, command: "NOTIFY", name: "ch"})},
	{"listen/UNLISTEN", "UNLISTEN ch", one(want{kind: policy.KindUnlisten, name: "ch"})},
	{"listen/UNLISTEN * has no name", "UNLISTEN *", one(want{kind: policy.KindUnlisten})},

	// --- Maintenance ------------------------------------------------------
	{"maint/VACUUM a table", "VACUUM t",
		one(want{kind: policy.KindMaintenance, command: "VACUUM", writes: true, written: rels(rel("t"))})},
	{"maint/VACUUM everything", "VACUUM",
		one(want{kind: policy.KindMaintenance, command: "VACUUM", writes: true})},
	{"maint/VACUUM with options", "VACUUM (FULL, ANALYZE) s.t",
		one(want{kind: policy.KindMaintenance, command: "VACUUM", writes: true, written: rels(qrel("s", "t"))})},
	{"maint/ANALYZE", "ANALYZE t",
		one(want{kind: policy.KindMaintenance, command: "ANALYZE", writes: true, written: rels(rel("t"))})},
	{"maint/REINDEX", "REINDEX TABLE t",
		one(want{kind: policy.KindMaintenance, command: "REINDEX", writes: true, written: rels(rel("t"))})},
	{"maint/REFRESH MATERIALIZED VIEW", "REFRESH MATERIALIZED VIEW mv",
		one(want{kind: policy.KindMaintenance, command: "REFRESH MATERIALIZED VIEW", writes: true, written: rels(rel("mv"))})},
	{"maint/CHECKPOINT", "CHECKPOINT",
		one(want{kind: policy.KindMaintenance, command: "CHECKPOINT", writes: true})},

	// --- Relation names ---------------------------------------------------
	{"relation/pg_authid is a catalog", "SELECT * FROM pg_authid",
		one(want{kind: policy.KindSelect, reads: rels(catalogRel("pg_authid"))})},
	{"relation/PG_AUTHID folds to the catalog", "SELECT * FROM PG_AUTHID",
		one(want{kind: policy.KindSelect, reads: rels(catalogRel("pg_authid"))})},
	{"relation/quoted Pg_Authid is not the catalog", `SELECT * FROM "Pg_Authid"`,
		one(want{kind: policy.KindSelect, reads: rels(rel("Pg_Authid"))})},
	{"relation/public.pg_authid is not the catalog", "SELECT * FROM public.pg_authid",
		one(want{kind: policy.KindSelect, reads: rels(qrel("public", "pg_authid"))})},
	{"relation/pg_catalog.pg_authid keeps its schema", "SELECT * FROM pg_catalog.pg_authid",
		one(want{kind: policy.KindSelect, reads: rels(qrel("pg_catalog", "pg_authid"))})},
	// n.oid may call the built-in oid(n) in attribute notation.
	{"relation/catalog join", "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
		one(want{kind: policy.KindSelect, reads: rels(catalogRel("pg_class"), catalogRel("pg_namespace")), functions: fns(builtin("oid"))})},
	{"relation/schema-qualified", "SELECT * FROM information_schema.tables",
		one(want{kind: policy.KindSelect, reads: rels(qrel("information_schema", "tables"))})},
	{"relation/TABLE command", "TABLE secrets",
		one(want{kind: policy.KindSelect, reads: rels(rel("secrets"))})},
	{"relation/joins and LATERAL", "SELECT * FROM a JOIN b USING (id) LEFT JOIN LATERAL (SELECT * FROM c WHERE c.id = a.id) x ON true",
		one(want{kind: policy.KindSelect, reads: rels(rel("a"), rel("b"), rel("c"))})},
	{"relation/scalar subquery and EXISTS", "SELECT (SELECT max(x) FROM s), EXISTS (SELECT 1 FROM u)",
		one(want{kind: policy.KindSelect, reads: rels(rel("s"), rel("u")), functions: fns(builtin("max"))})},
	{"relation/duplicates are listed once", "SELECT * FROM t a, t b WHERE a.id IN (SELECT id FROM t)",
		one(want{kind: policy.KindSelect, reads: rels(rel("t"))})},

	// --- DML --------------------------------------------------------------
	{"dml/INSERT ON CONFLICT DO UPDATE", "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
		one(want{kind: policy.KindInsert, command: "INSERT", writes: true, written: rels(rel("t"))})},
	{"dml/INSERT SELECT", "INSERT INTO t (a) SELECT a FROM u",
		one(want{kind: policy.KindInsert, writes: true, reads: rels(rel("u")), written: rels(rel("t"))})},
	{"dml/INSERT qualified RETURNING", "INSERT INTO s.t VALUES (1) RETURNING *",
		one(want{kind: policy.KindInsert, writes: true, written: rels(qrel("s", "t"))})},
	{"dml/MERGE", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
		one(want{kind: policy.KindMerge, command: "MERGE", writes: true, reads: rels(rel("s")), written: rels(rel("t"))})},
	{"dml/MERGE USING a subquery", "MERGE INTO t USING (SELECT * FROM s) AS src ON t.id = src.id WHEN MATCHED THEN UPDATE SET a = src.a",
		one(want{kind: policy.KindMerge, writes: true, reads: rels(rel("s")), written: rels(rel("t"))})},
	{"dml/UPDATE without WHERE", "UPDATE t SET a = 1",
		one(want{kind: policy.KindUpdate, command: "UPDATE", writes: true, allRows: true, written: rels(rel("t"))})},
	{"dml/UPDATE without WHERE reading a subquery", "UPDATE t SET a = (SELECT b FROM u LIMIT 1)",
		one(want{kind: policy.KindUpdate, writes: true, allRows: true, reads: rels(rel("u")), written: rels(rel("t"))})},
	{"dml/UPDATE FROM", "UPDATE t SET a = s.a FROM s WHERE t.id = s.id",
		one(want{kind: policy.KindUpdate, writes: true, reads: rels(rel("s")), written: rels(rel("t"))})},
	{"dml/UPDATE WHERE CURRENT OF", "UPDATE t SET a = 1 WHERE CURRENT OF c",
		one(want{kind: policy.KindUpdate, writes: true, written: rels(rel("t"))})},
	{"dml/DELETE with WHERE", "DELETE FROM t WHERE id = 1",
		one(want{kind: policy.KindDelete, writes: true, written: rels(rel("t"))})},
	{"dml/DELETE with a subquery reading another table", "DELETE FROM t WHERE id IN (SELECT id FROM other)",
		one(want{kind: policy.KindDelete, writes: true, reads: rels(rel("other")), written: rels(rel("t"))})},
	{"dml/DELETE USING", "DELETE FROM t USING u WHERE t.id = u.id",
		one(want{kind: policy.KindDelete, writes: true, reads: rels(rel("u")), written: rels(rel("t"))})},
}

func TestAnalyze(t *testing.T) {
	a := New(Limits{}, 0)
	for _, c := range analyzeCases {
		t.Run(c.name, func(t *testing.T) {
			sts, err := a.Analyze(c.sql)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", c.sql, err)
			}
			checkStatements(t, c.sql, sts, c.want)
		})
	}
}

// TestAnalyzeCached runs the cases through one caching analyzer, twice
// each and interleaved with copies that differ in integer literals (which
// share analyses through templates): a cached answer must be the same as a
// fresh one.
func TestAnalyzeCached(t *testing.T) {
	digits := regexp.MustCompile(`\b[0-9]+\b`)
	a := New(Limits{}, 8<<20)
	for round := range 2 {
		for _, c := range analyzeCases {
			t.Run(fmt.Sprintf("round%d/%s", round, c.name), func(t *testing.T) {
				if variant := digits.ReplaceAllString(c.sql, "7"); variant != c.sql {
					// Primes the template cache; its own result is not
					// checked here.
					_, _ = a.Analyze(variant)
				}
				sts, err := a.Analyze(c.sql)
				if err != nil {
					t.Fatalf("Analyze(%q): %v", c.sql, err)
				}
				checkStatements(t, c.sql, sts, c.want)
			})
		}
	}
}

// TestAnalyzeEmpty checks texts without statements.
func TestAnalyzeEmpty(t *testing.T) {
	a := New(Limits{}, 1<<20)
	for _, sql := range []string{"", " ", ";", ";;", "-- only a comment", "/* c */ ;", "/* a /* b */ */", "\n\t\r"} {
		t.Run(fmt.Sprintf("%q", sql), func(t *testing.T) {
			sts, err := a.Analyze(sql)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", sql, err)
			}
			if len(sts) != 0 {
				t.Errorf("Analyze(%q) = %d statements, want none: %s", sql, len(sts), describe(sts))
			}
		})
	}
}

// TestAnalyzeErrors checks that texts the parser rejects are *Errors with
// a reason.
func TestAnalyzeErrors(t *testing.T) {
	for _, c := range []struct {
		name, sql, reason string
	}{
		{"missing FROM target", "SELECT * FROM", "syntax error"},
		{"garbage", "DELET FROM t", "syntax error"},
		{"CR-ended comment leaves a statement without a semicolon", "SELECT 1 -- c\rDROP TABLE x", "syntax error"},
		{"unterminated string", "SELECT 'abc", "syntax error"},
		{"unterminated quoted identifier", `SELECT "abc`, "syntax error"},
		{"unterminated dollar quote", "SELECT $$abc", "syntax error"},
		{"unterminated block comment", "SELECT 1 /* /* */", "syntax error"},
		{"trailing junk after a number", "SELECT 12abc", "syntax error"},
		{"second statement broken", "SELECT 1; DELETE FROM", "syntax error"},
		{"NUL byte", "SELECT 1\x00; DROP TABLE t", "NUL"},
		{"NUL byte alone", "\x00", "NUL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cacheBytes := range []int64{0, 1 << 20} {
				sts, err := New(Limits{}, cacheBytes).Analyze(c.sql)
				var aerr *Error
				if !errors.As(err, &aerr) {
					t.Fatalf("Analyze(%q) = %s, %v; want an *analysis.Error", c.sql, describe(sts), err)
				}
				if !strings.Contains(aerr.Reason, c.reason) {
					t.Errorf("Analyze(%q): reason %q does not contain %q", c.sql, aerr.Reason, c.reason)
				}
				if sts != nil {
					t.Errorf("Analyze(%q) returned statements with its error: %s", c.sql, describe(sts))
				}
			}
		})
	}
}

// TestAnalyzeStatementText checks Statement.SQL: each statement's own
// text, trimmed.
func TestAnalyzeStatementText(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want []string
	}{
		{"  SELECT 1;  ", []string{"SELECT 1"}},
		{"SELECT 1;\n  DELETE FROM t WHERE a = 2 ;\n", []string{"SELECT 1", "DELETE FROM t WHERE a = 2"}},
		{"SELECT ';' ; SELECT $$;$$", []string{"SELECT ';'", "SELECT $$;$$"}},
	} {
		t.Run(c.sql, func(t *testing.T) {
			sts, err := New(Limits{}, 0).Analyze(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range sts {
				got = append(got, st.SQL)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("statement texts of %q = %q, want %q", c.sql, got, c.want)
			}
		})
	}
}

// TestAnalyzeTree checks that each statement can give its parse tree back.
func TestAnalyzeTree(t *testing.T) {
	a := New(Limits{}, 1<<20)
	for _, sql := range []string{"SELECT 1; DELETE FROM t", "SELECT * FROM t WHERE id = 5", "SELECT * FROM t WHERE id = 6"} {
		sts, err := a.Analyze(sql)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range sts {
			raw, err := st.Tree()
			if err != nil {
				t.Fatalf("%q: statement %d: Tree(): %v", sql, i, err)
			}
			if raw == nil || raw.Stmt == nil {
				t.Fatalf("%q: statement %d: Tree() returned no statement", sql, i)
			}
		}
		if len(sts) == 2 {
			raw, _ := sts[1].Tree()
			if raw.Stmt.GetDeleteStmt() == nil {
				t.Errorf("%q: the second statement's tree is not the DELETE: %v", sql, raw.Stmt)
			}
		}
	}
}

// checkStatements compares the analysis of sql with what the case wants.
func checkStatements(t *testing.T, sql string, got []*policy.Statement, want []want) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Analyze(%q) = %d statements, want %d:\n%s", sql, len(got), len(want), describe(got))
	}
	for i := range want {
		for _, problem := range compare(got[i], &want[i]) {
			t.Errorf("Analyze(%q): statement %d: %s\n  got: %s", sql, i, problem, describe(got[i:i+1]))
		}
	}
}

// compare lists how st differs from w.
func compare(st *policy.Statement, w *want) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if st == nil {
		return []string{"missing statement"}
	}
	if st.Kind == "" || st.Command == "" {
		add("empty Kind %q or Command %q", st.Kind, st.Command)
	}
	if st.Kind != w.kind {
		add("Kind = %q, want %q", st.Kind, w.kind)
	}
	if w.command != "" && st.Command != w.command {
		add("Command = %q, want %q", st.Command, w.command)
	}
	if w.sql != "" && st.SQL != w.sql {
		add("SQL = %q, want %q", st.SQL, w.sql)
	}
	if st.Writes != w.writes {
		add("Writes = %v, want %v", st.Writes, w.writes)
	}
	if st.Locks != w.locks {
		add("Locks = %v, want %v", st.Locks, w.locks)
	}
	if st.AllRows != w.allRows {
		add("AllRows = %v, want %v", st.AllRows, w.allRows)
	}
	if st.Executes != w.executes {
		add("Executes = %v, want %v", st.Executes, w.executes)
	}
	if st.Name != w.name {
		add("Name = %q, want %q", st.Name, w.name)
	}
	if !equalSlices(st.Contains, w.contains) {
		add("Contains = %q, want %q", st.Contains, w.contains)
	}
	if !sameRunTime(st.RunTime, w.runTime) {
		add("RunTime = %q, want entries containing %q", st.RunTime, w.runTime)
	}
	if !equalSlices(st.Reads, w.reads) {
		add("Reads = %+v, want %+v", st.Reads, w.reads)
	}
	if !equalSlices(st.Written, w.written) {
		add("Written = %+v, want %+v", st.Written, w.written)
	}
	if !equalSlices(st.Functions, w.functions) {
		add("Functions = %+v, want %+v", st.Functions, w.functions)
	}
	if !equalSlices(st.Settings, w.settings) {
		add("Settings = %+v, want %+v", st.Settings, w.settings)
	}
	switch {
	case w.inner == nil && st.Inner != nil:
		add("Inner = %s, want none", describe([]*policy.Statement{st.Inner}))
	case w.inner != nil && st.Inner == nil:
		add("Inner is missing, want a %q statement", w.inner.kind)
	case w.inner != nil:
		for _, p := range compare(st.Inner, w.inner) {
			add("Inner: %s", p)
		}
	}
	return problems
}

func sameRunTime(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			return false
		}
	}
	return true
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describe renders statements for failure messages.
func describe(sts []*policy.Statement) string {
	var b strings.Builder
	for i, st := range sts {
		if i > 0 {
			b.WriteString("\n")
		}
		describeOne(&b, st)
	}
	return b.String()
}

func describeOne(b *strings.Builder, st *policy.Statement) {
	if st == nil {
		b.WriteString("<nil>")
		return
	}
	fmt.Fprintf(b, "{Kind:%s Command:%q SQL:%q Writes:%v Locks:%v AllRows:%v Contains:%q RunTime:%q Reads:%+v Written:%+v Functions:%+v Settings:%+v Name:%q Executes:%v",
		st.Kind, st.Command, st.SQL, st.Writes, st.Locks, st.AllRows, st.Contains, st.RunTime, st.Reads, st.Written, st.Functions, st.Settings, st.Name, st.Executes)
	if st.Inner != nil {
		b.WriteString(" Inner:")
		describeOne(b, st.Inner)
	}
	b.WriteString("}")
}
