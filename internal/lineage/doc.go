// Package lineage works out, from a statement's PostgreSQL parse tree,
// where the values of its results come from: which masked columns each
// output carries (through aliases, expressions, subqueries, CTEs, set
// operations, whole-row references), which masked columns decide the
// result without appearing in it (inference: WHERE, JOIN, ORDER BY, GROUP
// BY, DISTINCT, windows), and which flow into stored data. The proxy masks
// or refuses on that basis.
//
// The analysis over-approximates: a column reference that may name a
// masked column counts as one. A statement it cannot follow is refused
// (Plan.Refusal), never let through.
package lineage
