package credstore_test

// The plumbing of the examples: the PostgreSQL server they issue roles
// on is the package's test cluster (pg), given roles of their own.

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// The examples' admin role: CREATEROLE, not a superuser.
const (
	exampleAdmin         = "example_admin"
	exampleAdminPassword = "example-admin-secret-41f0"
)

var exampleSetup = sync.OnceValue(func() error {
	// Idempotent: the tests' fixture may have made the template roles.
	return pg.Exec(context.Background(), "postgres", fmt.Sprintf(`
		DO $$ BEGIN
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_reader') THEN CREATE ROLE app_reader NOLOGIN; END IF;
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_writer') THEN CREATE ROLE app_writer NOLOGIN; END IF;
		END $$;
		CREATE ROLE %[1]s LOGIN CREATEROLE PASSWORD '%[2]s';
		GRANT app_reader, app_writer TO %[1]s WITH ADMIN OPTION;`, exampleAdmin, exampleAdminPassword))
})

// exampleAdminDSN returns the connection string of a role with CREATEROLE
// on the server the examples protect (from the environment, or a secret
// store, in a real gateway).
func exampleAdminDSN() session.Secret {
	if err := exampleSetup(); err != nil {
		panic(err)
	}
	return session.NewSecret(pg.ConnString(exampleAdmin, exampleAdminPassword, "app"))
}

// exampleLogsIn reports whether cred logs in to the app database, as the
// proxy would with it.
func exampleLogsIn(cred credstore.Credential) bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.ConnString(cred.User, cred.Password.Reveal(), "app"))
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx) == nil
}
