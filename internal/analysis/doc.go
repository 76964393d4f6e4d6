// Package analysis reads SQL with PostgreSQL's own grammar (libpg_query,
// through pg_query_go) and summarises each statement as a policy.Statement:
// its kind, whether it writes, the relations it reads and writes, the
// functions it calls and the settings it changes. Results are cached by
// exact text in a cache bounded by bytes.
//
// The analyzer fails closed: text it cannot parse, or will not hand to the
// parser because it is too large or too deeply nested, is an *Error, and the
// gateway refuses the statement.
package analysis
