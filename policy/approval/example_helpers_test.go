package approval_test

// The plumbing of the examples: the database they share requests in is
// the package's test cluster (pg), with a role of their own.

import (
	"context"
	"fmt"
	"sync"
)

const (
	exampleRole     = "example_gateway"
	examplePassword = "example-gateway-secret-7c1d"
)

var exampleRoleOnce = sync.OnceValue(func() error {
	return pg.Exec(context.Background(), approvalsDB, fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN PASSWORD '%[2]s';
		GRANT CREATE ON SCHEMA public TO %[1]s;`, exampleRole, examplePassword))
})

// exampleApprovalsDSN returns the connection string of the database the
// examples' gateways share, with its tables of approvals dropped (so
// that each run of an example starts afresh).
func exampleApprovalsDSN() string {
	if err := exampleRoleOnce(); err != nil {
		panic(err)
	}
	if err := pg.Exec(context.Background(), approvalsDB,
		"DROP TABLE IF EXISTS pgwarden_approvals, pgwarden_approvals_grants"); err != nil {
		panic(err)
	}
	return pg.ConnString(exampleRole, examplePassword, approvalsDB)
}
