package analysis

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgwarden/pgwarden/policy"
)

// Error is why a text could not be analysed. Reason is safe to show to the
// client (it quotes nothing but the parser's own message).
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "cannot analyse the statement: " + e.Reason }

// Analyzer analyses SQL text. It is safe for concurrent use.
type Analyzer struct {
	limits Limits
	cache  *cache // by exact text
	shared *cache // by template (see templateOf)
}

// New returns an Analyzer with the given limits that caches up to
// cacheBytes of results (0 disables the cache).
func New(limits Limits, cacheBytes int64) *Analyzer {
	a := &Analyzer{limits: limits}
	if cacheBytes > 0 {
		a.cache = newCache(cacheBytes * 3 / 4)
		a.shared = newCache(cacheBytes / 4)
	}
	return a
}

// Analyze returns the statements of sql. The result is shared: callers must
// not modify it. An empty text (or one of only comments and semicolons)
// has no statements.
func (a *Analyzer) Analyze(sql string) ([]*policy.Statement, error) {
	if a.cache == nil {
		sts, _, err := a.analyze(sql)
		return sts, err
	}
	if len(sql) > a.limits.maxBytes() {
		// Before the caches: texts of one template differ in length.
		return nil, a.limits.precheck(sql)
	}
	if sts, ok := a.cache.get(sql); ok {
		return sts, nil
	}
	var buf [256]byte
	var template []byte
	templated := false
	if len(sql) <= 4096 {
		template, templated = appendTemplate(buf[:0], sql)
	}
	if templated {
		if sts, ok := a.shared.getBytes(template); ok {
			// Same analysis, but this text's own SQL and tree: the
			// statement and the slice in one allocation.
			one := &struct {
				st  policy.Statement
				sts [1]*policy.Statement
			}{st: *sts[0]}
			one.st.SQL = trimStatement(sql)
			one.sts[0] = &one.st
			return one.sts[:], nil
		}
	}
	sts, cost, err := a.analyze(sql)
	if err != nil {
		return nil, err
	}
	if templated && shareable(sts) {
		a.shared.put(string(template), sts, cost)
	} else {
		a.cache.put(sql, sts, cost)
	}
	return sts, nil
}

func (a *Analyzer) analyze(sql string) (sts []*policy.Statement, cost int64, err error) {
	if err := a.limits.precheck(sql); err != nil {
		return nil, 0, err
	}
	if strings.IndexByte(sql, 0) >= 0 {
		return nil, 0, &Error{Reason: "the statement contains a NUL byte"}
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, 0, &Error{Reason: parseErrorReason(err)}
	}
	defer func() {
		// The walker trusts the parser's trees; should one surprise it,
		// refuse rather than crash the session.
		if r := recover(); r != nil {
			sts, err = nil, &Error{Reason: fmt.Sprintf("internal analysis error: %v", r)}
		}
	}()
	for _, raw := range tree.Stmts {
		text := statementText(sql, raw)
		if len(tree.Stmts) == 1 {
			text = trimStatement(sql)
		}
		sts = append(sts, classify(raw.Stmt, text))
	}
	// The summaries, not the tree, stay in memory.
	cost = int64(len(sql))*2 + int64(len(sts))*512
	for _, st := range sts {
		for s := st; s != nil; s = s.Inner {
			cost += int64(len(s.Reads)+len(s.Written)+len(s.Functions)+len(s.Settings)+len(s.RunTime)) * 64
		}
	}
	return sts, cost, nil
}

// trimStatement returns the text of a single-statement sql without
// surrounding space and trailing semicolons.
func trimStatement(sql string) string {
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n"))
}

// parseErrorReason turns a pg_query error into the words for the client.
func parseErrorReason(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "recursion") || strings.Contains(msg, "stack depth") {
		return "the statement is nested too deeply"
	}
	return "syntax error: " + msg
}

// statementText cuts one statement out of a multi-statement text.
func statementText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.StmtLocation)
	if start < 0 || start > len(sql) {
		return sql
	}
	end := len(sql)
	if raw.StmtLen > 0 && start+int(raw.StmtLen) <= len(sql) {
		end = start + int(raw.StmtLen)
	}
	return strings.TrimSpace(sql[start:end])
}
