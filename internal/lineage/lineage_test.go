package lineage

import (
	"slices"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// testCatalog: public.users(id, name, email [rule 0], ssn [rule 1]) and a
// view public.user_emails whose every column carries rule 0.
type testCatalog struct{}

func (testCatalog) Relation(schema, name string) (Relation, bool) {
	if schema != "" && schema != "public" {
		return Relation{}, false
	}
	switch name {
	case "users":
		return Relation{Columns: []Column{{Name: "id"}, {Name: "name"}, {Name: "email", Taint: Taint{0}}, {Name: "ssn", Taint: Taint{1}}}}, true
	case "user_emails":
		return Relation{Columns: []Column{{Name: "id", Taint: Taint{0}, Derived: true}, {Name: "email", Taint: Taint{0}, Derived: true}}}, true
	}
	return Relation{}, false
}

func plan(t *testing.T, sql string) *Plan {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return Analyze(tree.Stmts[0].Stmt, testCatalog{})
}

// outs renders outputs as "name:rules[d]" for comparison.
func outs(p *Plan) string {
	var b []string
	for _, c := range p.Outputs {
		s := c.Name + ":"
		if c.Unknown {
			s = "?:"
		}
		for _, r := range c.Taint {
			s += string(rune('0' + r))
		}
		if c.Derived {
			s += "d"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

// checkOutputs checks that each statement is not refused and has the
// outputs want describes (see outs).
func checkOutputs(t *testing.T, cases []struct{ sql, want string }) {
	t.Helper()
	for _, c := range cases {
		p := plan(t, c.sql)
		if p.Refusal != "" {
			t.Errorf("%s: refused: %s", c.sql, p.Refusal)
			continue
		}
		if got := outs(p); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.sql, got, c.want)
		}
	}
}

func TestOutputsCarryTheirColumns(t *testing.T) {
	cases := []struct{ sql, want string }{
		{"SELECT email FROM users", "email:0"},
		{"SELECT email AS contact, id FROM users", "contact:0 id:"},
		{"SELECT * FROM users", "id: name: email:0 ssn:1"},
		{"TABLE users", "id: name: email:0 ssn:1"},
		{"SELECT u.* FROM users u", "id: name: email:0 ssn:1"},
		{"SELECT upper(email) FROM users", "upper:0d"},
		{"SELECT email::varchar(3) AS e FROM users", "e:0d"},
		{"SELECT count(email) FROM users", "count:0d"},
		{"SELECT u FROM users u", "u:01d"},
		{"SELECT row_to_json(u) FROM users u", "row_to_json:01d"},
		{"SELECT json_build_object('e', email) FROM users", "json_build_object:0d"},
		{"SELECT xmlelement(name e, ssn) FROM users", "xmlelement:1d"},
		{"SELECT ROW(id, email) FROM users", "row:0d"},
		{"SELECT x FROM (SELECT email AS x FROM users) s", "x:0"},
		{"SELECT s.y FROM (SELECT email FROM users) s(y)", "y:0"},
		{"WITH c AS (SELECT email FROM users) SELECT email FROM c", "email:0"},
		{"WITH c(e) AS (SELECT email FROM users) SELECT * FROM c", "e:0"},
		{"SELECT (SELECT email FROM users LIMIT 1)", "email:0d"},
		{"SELECT email FROM users UNION ALL SELECT name FROM users", "email:0"},
		{"SELECT name FROM users UNION ALL SELECT email FROM users", "name:0"},
		{"SELECT 1 AS email", "email:"},
		{"SELECT email FROM other", "email:"},
		{"SELECT * FROM other, users", "?: id: name: email:0 ssn:1"},
		{"SELECT * FROM user_emails", "id:0d email:0d"},
		{"SELECT a.email FROM users a JOIN other b ON a.id = b.id", "email:0"},
		{"SELECT v FROM unnest(ARRAY(SELECT email FROM users)) AS v", "v:0d"},
		{"SELECT t.* FROM (SELECT email FROM users UNION ALL SELECT 'x') t", "email:0"},
		{"SELECT id FROM users", "id:"},
		{"SELECT array_agg(ssn) FILTER (WHERE id > 1) FROM users", "array_agg:1d"},
		{"SELECT row_number() OVER (ORDER BY email) FROM users", "row_number:0d"},
	}
	checkOutputs(t, cases)
}

func TestInferenceIsFound(t *testing.T) {
	cases := []struct {
		sql  string
		want Taint
	}{
		{"SELECT id FROM users WHERE email LIKE 'a%'", Taint{0}},
		{"SELECT id FROM users ORDER BY ssn", Taint{1}},
		{"SELECT email AS e FROM users ORDER BY e", Taint{0}},
		{"SELECT email FROM users ORDER BY 1", Taint{0}},
		{"SELECT count(*) FROM users GROUP BY email", Taint{0}},
		{"SELECT DISTINCT email FROM users", Taint{0}},
		{"SELECT DISTINCT ON (ssn) id FROM users", Taint{1}},
		{"SELECT o.id FROM other o JOIN users u ON u.email = o.mail", Taint{0}},
		{"SELECT o.id FROM other o NATURAL JOIN users u", Taint{0, 1}},
		{"SELECT id FROM other WHERE mail IN (SELECT email FROM users)", Taint{0}},
		{"SELECT id FROM other WHERE EXISTS (SELECT 1 FROM users WHERE ssn = '1')", Taint{1}},
		{"SELECT rank() OVER w FROM users WINDOW w AS (PARTITION BY email)", Taint{0}},
		{"SELECT email FROM users UNION SELECT 'x'", Taint{0}},
		{"SELECT email FROM users INTERSECT SELECT mail FROM other", Taint{0}},
		{"SELECT id FROM users HAVING max(ssn) > '5'", Taint{1}},
		{"EXPLAIN ANALYZE SELECT id FROM users WHERE email = 'x'", Taint{0}},
		{"DELETE FROM users WHERE email = 'x'", Taint{0}},
		{"UPDATE users SET name = 'x' WHERE ssn = '1'", Taint{1}},
		{"SELECT id FROM users", nil},
		{"SELECT email FROM users WHERE id = 3 ORDER BY id", nil},
		{"EXPLAIN SELECT id FROM users WHERE email = 'x'", Taint{0}}, // estimates come from the statistics
	}
	for _, c := range cases {
		p := plan(t, c.sql)
		if p.Refusal != "" {
			t.Errorf("%s: refused: %s", c.sql, p.Refusal)
			continue
		}
		if !slices.Equal(p.Inference, c.want) {
			t.Errorf("%s: inference %v, want %v", c.sql, p.Inference, c.want)
		}
	}
}

func TestFlowsAndRefusals(t *testing.T) {
	flows := []struct {
		sql  string
		want Taint
	}{
		{"INSERT INTO other SELECT email FROM users", Taint{0}},
		{"CREATE TABLE t AS SELECT ssn FROM users", Taint{1}},
		{"SELECT email INTO t FROM users", Taint{0}},
		{"UPDATE users SET name = email", Taint{0}},
		{"UPDATE users SET email = lower(email)", nil},
		{"UPDATE other SET mail = u.email FROM users u WHERE true", Taint{0}},
		{"INSERT INTO users (email) VALUES ('a@b.c')", nil},
		{"WITH d AS (DELETE FROM users RETURNING ssn) INSERT INTO other SELECT * FROM d", Taint{1}},
		{"SELECT pg_notify('ch', email) FROM users", Taint{0}},
		{"SELECT set_config('my.v', ssn, false) FROM users", Taint{1}},
		{"SELECT lo_from_bytea(0, convert_to(email, 'UTF8')) FROM users", Taint{0}},
		{"SELECT pg_notify('ch', name) FROM users", nil},
	}
	for _, c := range flows {
		p := plan(t, c.sql)
		if !slices.Equal(p.Flows, c.want) {
			t.Errorf("%s: flows %v, want %v (refusal %q)", c.sql, p.Flows, c.want, p.Refusal)
		}
	}
	refused := []string{
		"MERGE INTO other o USING users u ON o.id = u.id WHEN MATCHED THEN UPDATE SET mail = u.email",
		"CREATE VIEW leak AS SELECT email FROM users",
	}
	for _, sql := range refused {
		if p := plan(t, sql); p.Refusal == "" {
			t.Errorf("%s: not refused", sql)
		}
	}
}

func TestStatementsThatReturnRows(t *testing.T) {
	cases := []struct{ sql, want string }{
		{"UPDATE users SET name = 'x' WHERE id = 1 RETURNING email, id", "email:0 id:"},
		{"DELETE FROM users WHERE id = 1 RETURNING *", "id: name: email:0 ssn:1"},
		{"INSERT INTO users (id) VALUES (1) RETURNING ssn AS s", "s:1"},
		{"COPY users TO STDOUT", "id: name: email:0 ssn:1"},
		{"COPY users (ssn, id) TO STDOUT WITH (FORMAT csv)", "ssn:1 id:"},
		{"COPY (SELECT upper(email) FROM users) TO STDOUT", "upper:0d"},
		{"DECLARE c CURSOR FOR SELECT email FROM users", "email:0"},
		{"PREPARE p AS SELECT ssn FROM users WHERE id = $1", "ssn:1"},
	}
	checkOutputs(t, cases)
	if p := plan(t, "COPY users TO STDOUT (FORMAT binary)"); !p.CopyBinary || !p.Copy {
		t.Errorf("binary COPY not noticed: %+v", p)
	}
	if p := plan(t, "DECLARE c CURSOR FOR SELECT 1"); p.Cursor != "c" {
		t.Errorf("cursor name %q", p.Cursor)
	}
	if p := plan(t, "FETCH 10 FROM c"); p.Fetch != "c" {
		t.Errorf("fetch name %q", p.Fetch)
	}
	if p := plan(t, "EXECUTE p(1)"); p.Execute != "p" {
		t.Errorf("execute name %q", p.Execute)
	}
}

func TestTaintUnion(t *testing.T) {
	if got := (Taint{1, 3, 5}).Union(Taint{0, 3, 6}); !slices.Equal(got, Taint{0, 1, 3, 5, 6}) {
		t.Fatalf("union %v", got)
	}
	if got := Taint(nil).Union(Taint{2}); !slices.Equal(got, Taint{2}) {
		t.Fatalf("union %v", got)
	}
}
