package analysis

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Normalize returns sql with every literal replaced by a parameter symbol
// ($1, $2, ... numbered after the parameters sql already has) and its
// comments removed: the statement's shape without any of its values, for
// traces and logs.
//
// It uses pg_query's normalizer, then PostgreSQL's lexer on the result to
// replace what the normalizer leaves (it keeps comments, and the literals of
// some utility statements, such as PREPARE and COPY), and checks the
// outcome with the lexer again. Text the normalizer cannot parse (a
// statement the gateway refused as a syntax error) is normalized by the
// lexer alone. It refuses, as Analyze does before parsing, text over the
// limits or with a NUL byte, and text the lexer cannot read (an unterminated
// literal): callers must then show no text at all.
func (a *Analyzer) Normalize(sql string) (string, error) {
	if err := a.limits.precheck(sql); err != nil {
		return "", err
	}
	if strings.IndexByte(sql, 0) >= 0 {
		return "", &Error{Reason: "the statement contains a NUL byte"}
	}
	text := sql
	if n, err := pg_query.Normalize(sql); err == nil {
		text = n
	}
	out, err := scrubLiterals(text)
	if err != nil {
		return "", err
	}
	// The lexer must find nothing left to replace: whatever went wrong
	// above, no value leaves this function.
	if again, err := scrubLiterals(out); err != nil || again != out {
		return "", &Error{Reason: "the statement could not be normalized"}
	}
	return out, nil
}

// scrubLiterals replaces the literal tokens of sql with parameter symbols
// numbered after the highest parameter sql has, and its comments with a
// space, and trims the result.
func scrubLiterals(sql string) (string, error) {
	res, err := pg_query.Scan(sql)
	if err != nil {
		return "", &Error{Reason: "the statement could not be normalized"}
	}
	params := 0
	for _, t := range res.Tokens {
		if t.Token == pg_query.Token_PARAM && t.Start >= 0 && t.End <= int32(len(sql)) && t.Start < t.End {
			if n, err := strconv.Atoi(sql[t.Start+1 : t.End]); err == nil && n > params {
				params = n
			}
		}
	}
	var b strings.Builder
	last := 0
	for _, t := range res.Tokens {
		start, end := int(t.Start), int(t.End)
		if start < last || end > len(sql) || start > end {
			return "", &Error{Reason: "the statement could not be normalized"}
		}
		switch t.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
			b.WriteString(sql[last:start])
			params++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(params))
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			b.WriteString(sql[last:start])
			b.WriteByte(' ')
		default:
			continue
		}
		last = end
	}
	b.WriteString(sql[last:])
	return strings.TrimSpace(b.String()), nil
}
