package proxy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/mask"
)

// maskCatalog is what a session knows of the relations that hold masked
// values: the masked tables, their partitions and inheritance children, and
// the views (and views of views) over them, read from the server's catalog
// when the session starts. Column taints hold only the rules that apply to
// the session's identity. It is read-only once loaded, and read by both
// relay directions.
type maskCatalog struct {
	rules  mask.Rules
	byOID  map[uint32]*maskedRelation
	byName map[string][]*maskedRelation // by relation name, any schema
	// known are the names of every relation outside the system schemas
	// when the catalog was read, by name and by schema.name: a relation
	// created since may be a view over a masked table the gateway does not
	// know about.
	known map[string]bool
	// userCode are the names of functions and operators defined in the
	// database (not built in): a call by such a name may run code that
	// reads masked columns. triggered are the relations with user
	// triggers (by name and schema.name).
	userCode  map[string]bool
	triggered map[string]bool
	// tables is set when a rule that applies names a table (as opposed to
	// rules for every result only).
	tables bool
	// loaded is when the catalog was read.
	loaded time.Time
}

// maskedRelation is one relation holding masked values.
type maskedRelation struct {
	oid          uint32
	schema, name string
	kind         string // "table", "child" or "view"
	cols         []lineage.Column
	attnums      []int16
	def          string // a view's definition
}

// column returns the relation's column with attribute number attnum.
func (r *maskedRelation) column(attnum int16) (lineage.Column, bool) {
	for i, a := range r.attnums {
		if a == attnum {
			return r.cols[i], true
		}
	}
	return lineage.Column{}, false
}

// Relation implements lineage.Catalog. An unqualified name counts every
// relation of that name in any schema, so that a search path the gateway
// misjudged can only mask more.
func (c *maskCatalog) Relation(schema, name string) (lineage.Relation, bool) {
	var found []*maskedRelation
	for _, r := range c.byName[name] {
		if schema == "" || r.schema == schema {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return lineage.Relation{}, false
	case 1:
		return lineage.Relation{Columns: found[0].cols}, true
	}
	// Several candidates: every column carries what any of them carries.
	var t lineage.Taint
	for _, r := range found {
		for _, col := range r.cols {
			t = t.Union(col.Taint)
		}
	}
	return lineage.Relation{Columns: []lineage.Column{{Unknown: true, Taint: t, Derived: true}}}, true
}

// names reports whether the catalog knows a relation of that name.
func (c *maskCatalog) names(name string) bool { return len(c.byName[name]) > 0 }

// activeRules returns, for each rule, whether it applies to an identity in
// groups; and whether any does.
func activeRules(rules mask.Rules, groups []string) ([]bool, bool) {
	active := make([]bool, len(rules))
	anyActive := false
	for i, r := range rules {
		active[i] = !r.Exempt(groups)
		anyActive = anyActive || active[i]
	}
	return active, anyActive
}

// catalogQuery finds the masked tables, then everything that inherits from
// them or is a view over them, recursively, with their columns.
const catalogQuery = `WITH RECURSIVE
targets(nsp, rel) AS (VALUES %s),
edges(child, parent, how) AS (
  SELECT i.inhrelid, i.inhparent, 'child'::pg_catalog.text FROM pg_catalog.pg_inherits i
  UNION ALL
  SELECT w.ev_class, d.refobjid, 'view'::pg_catalog.text FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite w ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND d.objid OPERATOR(pg_catalog.=) w.oid
   WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
     AND w.ev_class OPERATOR(pg_catalog.<>) d.refobjid),
fnviews(oid) AS (
  SELECT DISTINCT w.ev_class FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite w ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND d.objid OPERATOR(pg_catalog.=) w.oid
   WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
     AND d.refobjid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid),
rels(oid, root, how, depth) AS (
  SELECT c.oid, c.oid, 'table'::pg_catalog.text, 0 FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN targets t ON t.nsp OPERATOR(pg_catalog.=) n.nspname::pg_catalog.text
     AND t.rel OPERATOR(pg_catalog.=) c.relname::pg_catalog.text
  UNION
  SELECT f.oid, f.oid, 'fnview'::pg_catalog.text, 0 FROM fnviews f
  UNION
  SELECT e.child, r.root,
         CASE WHEN r.how OPERATOR(pg_catalog.=) 'table'::pg_catalog.text OR r.how OPERATOR(pg_catalog.=) 'child'::pg_catalog.text
              THEN e.how ELSE 'view'::pg_catalog.text END,
         r.depth OPERATOR(pg_catalog.+) 1
    FROM edges e JOIN rels r ON e.parent OPERATOR(pg_catalog.=) r.oid WHERE r.depth OPERATOR(pg_catalog.<) 32)
SELECT r.oid, r.root, r.how, pg_catalog.min(r.depth) OVER (PARTITION BY r.oid), n.nspname, c.relname, a.attnum, a.attname,
       CASE WHEN r.how OPERATOR(pg_catalog.=) 'view'::pg_catalog.text THEN pg_catalog.pg_get_viewdef(r.oid) END
  FROM (SELECT DISTINCT oid, root, how, depth FROM rels) r
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.oid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.oid
   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
 ORDER BY 4, 1, 2, 7`

// namesQuery lists, with a tag: the relations a statement may read outside
// the system schemas ('r', schema, name), the names of functions and
// operators defined in the database beyond the built-in ones ('f', 'o'),
// and the relations with user triggers ('t', schema, name). Every operator
// and function is qualified: it runs on the client's session, whose
// search_path the client chose.
const namesQuery = `SELECT 'r'::pg_catalog.text, n.nspname::pg_catalog.text, c.relname::pg_catalog.text
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'v', 'm', 'p', 'f']::pg_catalog."char"[])
   AND NOT n.nspname OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog', 'information_schema']::pg_catalog.name[])
UNION ALL
SELECT 'f'::pg_catalog.text, '', p.proname::pg_catalog.text FROM pg_catalog.pg_proc p
 WHERE p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
UNION ALL
SELECT 'o'::pg_catalog.text, '', o.oprname::pg_catalog.text FROM pg_catalog.pg_operator o
 WHERE o.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
UNION ALL
SELECT 't'::pg_catalog.text, n.nspname::pg_catalog.text, c.relname::pg_catalog.text
  FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE NOT g.tgisinternal`

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// catalogQueries returns the queries whose rows build a session's catalog
// (see buildMaskCatalog): the known relation names, and the masked
// relations with their columns. nil when no active rule names a table.
func catalogQueries(rules mask.Rules, active []bool) []string {
	seen := map[string]bool{}
	var values []string
	for i, r := range rules {
		if !active[i] {
			continue
		}
		schema, table, _ := r.Target()
		key := schema + "." + table
		if table != "" && !seen[key] {
			seen[key] = true
			values = append(values, "("+quoteLiteral(schema)+","+quoteLiteral(table)+")")
		}
	}
	if len(values) == 0 {
		return nil
	}
	return []string{namesQuery, fmt.Sprintf(catalogQuery, strings.Join(values, ","))}
}

// loadMaskCatalog reads the catalog for the rules active for a session, on
// a connection the gateway has not taken over yet.
func loadMaskCatalog(ctx context.Context, pc *pgconn.PgConn, rules mask.Rules, active []bool) (*maskCatalog, error) {
	var results [][][]string
	for _, q := range catalogQueries(rules, active) {
		res, err := pc.Exec(ctx, q).ReadAll()
		if err == nil && len(res) == 1 {
			err = res[0].Err
		}
		if err != nil {
			return nil, fmt.Errorf("reading the catalog for masking: %w", err)
		}
		var rows [][]string
		for _, row := range res[0].Rows {
			r := make([]string, len(row))
			for i, v := range row {
				r[i] = string(v)
			}
			rows = append(rows, r)
		}
		results = append(results, rows)
	}
	return buildMaskCatalog(rules, active, results), nil
}

// buildMaskCatalog builds a catalog from the rows of catalogQueries.
func buildMaskCatalog(rules mask.Rules, active []bool, results [][][]string) *maskCatalog {
	c := &maskCatalog{rules: rules, byOID: map[uint32]*maskedRelation{}, byName: map[string][]*maskedRelation{},
		known: map[string]bool{}, userCode: map[string]bool{}, triggered: map[string]bool{}}
	if len(results) != 2 {
		return c
	}
	c.tables, c.loaded = true, time.Now()
	for _, row := range results[0] {
		if len(row) != 3 {
			continue
		}
		switch row[0] {
		case "r":
			c.known[row[2]], c.known[row[1]+"."+row[2]] = true, true
		case "f", "o":
			c.userCode[row[2]] = true
		case "t":
			c.triggered[row[2]], c.triggered[row[1]+"."+row[2]] = true, true
		}
	}
	type rootCols struct{ schema, name string }
	roots := map[uint32]rootCols{}
	var views []*maskedRelation
	for _, row := range results[1] {
		if len(row) != 9 {
			continue
		}
		oid, _ := strconv.ParseUint(row[0], 10, 32)
		root, _ := strconv.ParseUint(row[1], 10, 32)
		how := row[2]
		schema, name := row[4], row[5]
		attnum, _ := strconv.ParseInt(row[6], 10, 16)
		attname := row[7]
		if how == "table" {
			roots[uint32(oid)] = rootCols{schema, name}
		}
		rel := c.byOID[uint32(oid)]
		if rel == nil {
			rel = &maskedRelation{oid: uint32(oid), schema: schema, name: name, kind: how, def: row[8]}
			c.byOID[rel.oid] = rel
			c.byName[name] = append(c.byName[name], rel)
			if how == "view" {
				views = append(views, rel)
			}
		}
		if how == "view" && rel.kind != "view" || how == "fnview" && rel.kind != "fnview" {
			continue // also a table, child or a view over a function: decided by what it was first
		}
		rc := roots[uint32(root)]
		taint := columnRules(rules, active, rc.schema, rc.name, attname)
		if how == "fnview" {
			// A view calling functions the gateway cannot see into:
			// every column may carry any masked value.
			taint = allActive(active)
		}
		i := indexOf(rel.attnums, int16(attnum))
		if i < 0 {
			rel.attnums = append(rel.attnums, int16(attnum))
			rel.cols = append(rel.cols, lineage.Column{Name: attname, Named: true})
			i = len(rel.cols) - 1
		}
		rel.cols[i].Taint = rel.cols[i].Taint.Union(taint)
		if how == "fnview" {
			rel.cols[i].Derived = true
		}
	}
	// Views: the lineage of their definitions, in the order found
	// (shallower first), over what is known so far. A definition the
	// gateway cannot follow taints every column with everything below.
	for _, v := range views {
		if v.kind == "view" {
			c.viewLineage(v, rules, active)
		}
	}
	return c
}

// viewLineage sets a view's columns from its definition.
func (c *maskCatalog) viewLineage(v *maskedRelation, rules mask.Rules, active []bool) {
	fallback := func() {
		var all lineage.Taint
		for i := range rules {
			if active[i] {
				all = all.Union(lineage.Taint{i})
			}
		}
		for i := range v.cols {
			v.cols[i].Taint, v.cols[i].Derived = all, true
		}
	}
	tree, err := pg_query.Parse(v.def)
	if err != nil || len(tree.Stmts) != 1 {
		fallback()
		return
	}
	plan := lineage.Analyze(tree.Stmts[0].Stmt, c)
	if plan.Refusal != "" || len(plan.Outputs) != len(v.cols) {
		fallback()
		return
	}
	for i := range v.cols {
		o := plan.Outputs[i]
		if o.Unknown {
			fallback()
			return
		}
		// A view's own WHERE over masked columns was its owner's choice:
		// only what its columns carry counts.
		v.cols[i].Taint, v.cols[i].Derived = o.Taint, o.Derived
	}
}

// allActive returns every active rule.
func allActive(active []bool) lineage.Taint {
	var t lineage.Taint
	for i, a := range active {
		if a {
			t = append(t, i)
		}
	}
	return t
}

// columnRules returns the active rules that mask schema.table.column.
func columnRules(rules mask.Rules, active []bool, schema, table, column string) lineage.Taint {
	var t lineage.Taint
	for i, r := range rules {
		if !active[i] {
			continue
		}
		s, tb, col := r.Target()
		if s == schema && tb == table && (col == "" || col == column) {
			t = t.Union(lineage.Taint{i})
		}
	}
	return t
}

func indexOf(s []int16, v int16) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
