package pgtest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Exec runs sql in database as the superuser over a new TCP connection,
// using the simple query protocol (so sql may hold several statements,
// which run in one implicit transaction unless they contain their own
// transaction control). It reads every result and returns the first error,
// wrapped; a *pgconn.PgError is reachable with errors.As. An empty database
// means "postgres".
func (c *Cluster) Exec(ctx context.Context, database, sql string) error {
	cfg, err := pgconn.ParseConfig(c.SuperConnString(database))
	if err != nil {
		return fmt.Errorf("pgtest: exec: parse connection string: %w", err)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgtest: exec: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()

	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return fmt.Errorf("pgtest: exec: %w", err)
	}
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("pgtest: exec: %w", r.Err)
		}
	}
	return nil
}
