package proxy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// TestRecordingWithholdsPasswordsInStatements: a statement that may carry
// a password (CREATE/ALTER ROLE, user mappings, foreign servers) is
// recorded with its constants replaced by $n, on every protocol path,
// allowed or refused.
func TestRecordingWithholdsPasswordsInStatements(t *testing.T) {
	const secret = "hunter2-not-recorded"
	g := startGateway(t, func(p *proxy.Proxy) {
		// Refused: the server never sees them; the recording does.
		p.Policy = policy.BlockAll("The test refuses everything.")
	})
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	cases := []struct{ sql, recorded string }{
		{"ALTER ROLE bob PASSWORD '" + secret + "'", "ALTER ROLE bob PASSWORD $1"},
		{"create user carol login password '" + secret + "' valid until '2030-01-01'", "create user carol login password $1 valid until $2"},
		{"ALTER USER bob WITH ENCRYPTED PASSWORD $$" + secret + "$$", "ALTER USER bob WITH ENCRYPTED PASSWORD $1"},
		{"CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '" + secret + "')", "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user $1, password $2)"},
		{"SELECT 1; ALTER ROLE bob PASSWORD '" + secret + "'", "SELECT $1; ALTER ROLE bob PASSWORD $2"},
		{"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password '" + secret + "')", "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password $1)"},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		for _, c := range cases {
			if strings.HasPrefix(c.sql, "SELECT 1;") && mode != pgx.QueryExecModeSimpleProtocol {
				continue // one statement per Parse
			}
			if _, err := conn.Exec(ctx, c.sql, mode); pgCode(err) != "42501" {
				t.Fatalf("%s: %v, want the policy's refusal", c.sql, err)
			}
			var got []string
			for _, ev := range g.rec.snapshot() {
				if ev.Kind == session.KindStatement && ev.Statement != nil && strings.Contains(ev.Statement.SQL, c.recorded) {
					got = append(got, ev.Statement.SQL)
				}
			}
			if len(got) == 0 {
				t.Errorf("%s: no statement recorded as %q", c.sql, c.recorded)
			}
		}
	}
	b, err := json.Marshal(g.rec.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the recording holds the password:\n%s", b)
	}
}
