package analysis

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	a := New(Limits{}, 0)
	cases := []struct {
		sql, want string
		// secrets must not appear in the result.
		secrets []string
	}{
		{sql: "select * from accounts where id = 42 and name = 'alice'", want: "select * from accounts where id = $1 and name = $2",
			secrets: []string{"42", "alice"}},
		{sql: "select * from t where a = $1 and b = 'x'", want: "select * from t where a = $1 and b = $2"},
		{sql: "select 1; select 'two'", want: "select $1; select $2", secrets: []string{"two"}},
		// pg_query keeps comments; they may hold anything.
		{sql: "select 1 /* token=s3cr3t */ -- pw=hunter2\n", want: "select $1", secrets: []string{"s3cr3t", "hunter2"}},
		{sql: "select/* a */1", want: "select $1"},
		// pg_query leaves the literals of some utility statements.
		{sql: "prepare p as select 'prepared-secret'", want: "prepare p as select $1", secrets: []string{"prepared-secret"}},
		{sql: "copy t from '/etc/secret-file'", want: "copy t from $1", secrets: []string{"secret-file"}},
		{sql: "create role r password 'role-secret'", secrets: []string{"role-secret"}},
		{sql: "do $$ begin raise notice 'in-do'; end $$", want: "do $1", secrets: []string{"in-do"}},
		{sql: "do $body$ select 'x' $body$", secrets: []string{"select"}},
		{sql: "select E'esc\\'aped', B'101', X'ff', U&'d\\0061ta', 1.5e3", secrets: []string{"esc", "aped", "101", "ff", "0061", "1.5e3"}},
		{sql: "select 'con'\n'tinued'", secrets: []string{"con", "tinued"}},
		// Not SQL the server accepts: the lexer alone.
		{sql: "selec 'typo-secret' frm t", want: "selec $1 frm t", secrets: []string{"typo-secret"}},
		{sql: "set app.key = 'set-secret'", secrets: []string{"set-secret"}},
	}
	for _, c := range cases {
		got, err := a.Normalize(c.sql)
		if err != nil {
			t.Errorf("Normalize(%q): %v", c.sql, err)
			continue
		}
		if c.want != "" && got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.sql, got, c.want)
		}
		for _, s := range c.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Normalize(%q) = %q, which contains %q", c.sql, got, s)
			}
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	a := New(Limits{MaxBytes: 100}, 0)
	for _, sql := range []string{
		"select 'unterminated",
		"select 1 /* unterminated comment",
		"select $$unterminated",
		"select 'a\x00b'",
		"select '" + strings.Repeat("x", 200) + "'",
		strings.Repeat("(", 300),
	} {
		if got, err := a.Normalize(sql); err == nil {
			t.Errorf("Normalize(%.40q) = %q, want an error", sql, got)
		}
	}
}
