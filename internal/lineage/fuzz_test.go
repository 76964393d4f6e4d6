package lineage

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// FuzzLineage runs the analysis over whatever PostgreSQL's parser accepts:
// it must never panic (a recovered panic would refuse the statement, and
// hide a bug).
func FuzzLineage(f *testing.F) {
	for _, s := range []string{
		"SELECT email FROM users",
		"WITH RECURSIVE r(x) AS (SELECT email FROM users UNION ALL SELECT x FROM r) SELECT * FROM r",
		"SELECT (SELECT u FROM users u LIMIT 1).email",
		"SELECT * FROM users NATURAL JOIN other, LATERAL (SELECT ssn) s",
		"INSERT INTO t SELECT * FROM users ON CONFLICT (id) DO UPDATE SET x = excluded.email RETURNING *",
		"COPY (SELECT ssn FROM users) TO STDOUT WITH (FORMAT csv, HEADER, QUOTE '''')",
		"SELECT xmltable.* FROM users, XMLTABLE('/r' PASSING email COLUMNS a text)",
		"DECLARE c CURSOR FOR SELECT ROW(id, email) FROM users; FETCH c",
		"SELECT id FROM users GROUP BY GROUPING SETS ((email), (ssn))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if len(sql) > 4096 {
			return
		}
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		for _, raw := range tree.Stmts {
			p := Analyze(raw.Stmt, testCatalog{})
			if strings.HasPrefix(p.Refusal, "the gateway could not work out") {
				t.Fatalf("panic in the analysis of %q: %s", sql, p.Refusal)
			}
		}
	})
}
