package pgstore_test

// The plumbing of the examples: their audit database is the package's
// test cluster (pg), with a role of their own.

import (
	"context"
	"fmt"
	"sync"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

const (
	exampleRole     = "example_recorder"
	examplePassword = "example-recorder-secret-2b8e"
)

var exampleRoleOnce = sync.OnceValue(func() error {
	return pg.Exec(context.Background(), auditDB, fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN PASSWORD '%[2]s';
		GRANT CREATE ON SCHEMA public TO %[1]s;`, exampleRole, examplePassword))
})

// exampleAuditDSN returns the connection string of the examples' audit
// database, with its table of events dropped (so that each run of an
// example starts afresh).
func exampleAuditDSN() session.Secret {
	if err := exampleRoleOnce(); err != nil {
		panic(err)
	}
	if err := pg.Exec(context.Background(), auditDB, "DROP TABLE IF EXISTS "+pgstore.DefaultTable); err != nil {
		panic(err)
	}
	return session.NewSecret(pg.ConnString(exampleRole, examplePassword, auditDB))
}
