package analysis

import "github.com/pgwarden/pgwarden/policy"

// Texts that differ only in integer literals, such as
//
//	SELECT abalance FROM pgbench_accounts WHERE aid = 17
//	SELECT abalance FROM pgbench_accounts WHERE aid = 90210
//
// have the same kinds, relations, functions and writes: an integer
// literal is one token of the same class whatever its digits, so the
// parser builds the same tree but for the constant's value. The analyzer
// shares their analysis through a second cache keyed by the text with its
// integer literals blanked (its template), so that clients that inline
// constants (the simple protocol) do not pay a parse per statement.
//
// This is not a fingerprint: strings, identifiers, comments, dollar-quoted
// bodies, decimals and every other token stay as they are, and a result
// is shared only when it cannot depend on a constant's value: one
// statement, nested ones included, changing no setting and running no
// EXPLAIN (whose options take values). Decisions are never cached.
//
// One difference remains, on the safe side: the grammar checks a few
// integers itself (float(p) needs p >= 1), so a text the parser would
// reject for such a value may get its sibling's analysis; the server
// rejects it all the same.

// templateOf returns sql with each integer literal replaced by a single
// '0' (so its length class is fixed), and whether it had any. An integer
// literal is a run of at most 9 digits (so it is an int32 whatever its
// value) that PostgreSQL's lexer reads as a whole integer token: not part of an identifier or parameter ($1), not followed
// by '.', 'e', an identifier character or another digit; and outside
// comments, quoted strings and identifiers, and dollar-quoted strings.
func templateOf(sql string) (string, bool) {
	b, found := appendTemplate(nil, sql)
	return string(b), found
}

// appendTemplate appends sql's template (see templateOf) to dst, and says
// whether sql had an integer literal; when it had none, what it appended
// is of no use. The analyzer looks the template up in a buffer of its own
// stack: no allocation when the template is known.
func appendTemplate(dst []byte, sql string) ([]byte, bool) {
	b := dst
	last, found := 0, false
	for i := 0; i < len(sql); {
		if end, kind := skipNonCode(sql, i); kind != notSkipped {
			i = end
			continue
		}
		c := sql[i]
		switch {
		case c == '$':
			// $n: a parameter; skip its digits.
			i++
			for i < len(sql) && sql[i] >= '0' && sql[i] <= '9' {
				i++
			}
		case isIdent(c) && !(c >= '0' && c <= '9'):
			for i < len(sql) && isIdent(sql[i]) {
				i++
			}
		case c >= '0' && c <= '9':
			start := i
			for i < len(sql) && sql[i] >= '0' && sql[i] <= '9' {
				i++
			}
			if (start > 0 && sql[start-1] == '.') || (i < len(sql) && (sql[i] == '.' || isIdent(sql[i]))) {
				// A decimal, an exponent, or trailing junk: leave the
				// whole run of number-ish characters as it is, an
				// exponent's sign included.
				for i < len(sql) && (isIdent(sql[i]) || sql[i] == '.' ||
					((sql[i] == '-' || sql[i] == '+') && (sql[i-1] == 'e' || sql[i-1] == 'E'))) {
					i++
				}
				continue
			}
			if i-start > 9 {
				// Past int32 the parser reads a numeric, not an integer
				// (and some places of the grammar take integers only).
				continue
			}
			b = append(b, sql[last:start]...)
			b = append(b, '0')
			last, found = i, true
		default:
			i++
		}
	}
	if !found {
		return b, false
	}
	return append(b, sql[last:]...), true
}

// shareable reports whether an analysis may be shared by every text of its
// template.
func shareable(sts []*policy.Statement) bool {
	if len(sts) != 1 {
		return false
	}
	for s := sts[0]; s != nil; s = s.Inner {
		if len(s.Settings) > 0 || s.Kind == policy.KindExplain {
			return false
		}
	}
	return true
}
