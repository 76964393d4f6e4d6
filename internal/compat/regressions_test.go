package compat

// Gateway bugs the matrix found, each reproduced as small as it goes and
// kept as a regression test once fixed.

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestJDBCSetApplicationName: the PostgreSQL JDBC driver (pgjdbc
// 42.x, with its default assumeMinServerVersion) does not put
// application_name in its startup packet; right after logging in it sends,
// as simple Query messages,
//
//	SET extra_float_digits = 3
//	SET application_name = 'PostgreSQL JDBC Driver'
//
// (or the ApplicationName property instead of the driver's name;
// org.postgresql.core.v3.ConnectionFactoryImpl.runInitialQueries). The
// gateway refused the second with ERROR 42501, rule "identity-settings",
// and pgjdbc gave up the connection. Now the gateway runs a lone SET of
// application_name with the identity kept in front of the client's name
// (judge.AppNameSet, proxy/identity.go).
func TestJDBCSetApplicationName(t *testing.T) {
	h := setup(t)
	l := h.logins[modeSCRAM]
	ctx := testContext(t)
	cfg, err := pgx.ParseConfig(h.keywordDSN(l.user, ""))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = l.password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %s", h.redact(err.Error()))
	}
	defer conn.Close(context.Background())

	for _, sql := range []string{"SET extra_float_digits = 3", "SET application_name = 'PostgreSQL JDBC Driver'"} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s (what pgjdbc sends after login): %v", sql, err)
		}
	}
	// The identity must still be there, and the session usable.
	var appName, subject string
	err = conn.QueryRow(ctx, `SELECT (SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()),
		current_setting('pgwarden.subject')`).Scan(&appName, &subject)
	if err != nil {
		t.Fatalf("after the SET: %v", err)
	}
	if !strings.HasPrefix(appName, "pgwarden:"+l.subject) || subject != l.subject {
		t.Errorf("after the SET, application_name = %q and pgwarden.subject = %q; want the identity %q kept", appName, subject, l.subject)
	}
}
