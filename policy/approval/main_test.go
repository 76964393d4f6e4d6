package approval_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/policy/approval"
)

// pg is the cluster holding the approvals database. A missing PostgreSQL
// installation fails the package; it never skips.
var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{Database: approvalsDB}, &pg))
}

const (
	approvalsDB = "approvals"
	// gatewayRole is the role stores connect as: not a superuser, with
	// CREATE on the database's public schema.
	gatewayRole     = "gateway"
	gatewayPassword = "gw-approvals-secret-41c7-e2b9"
)

var (
	setupOnce sync.Once
	setupErr  error
	// su is a superuser pool, for looking behind the stores' backs.
	su *pgxpool.Pool
)

func setup(t testing.TB) *pgxpool.Pool {
	t.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		setupErr = pg.Exec(ctx, approvalsDB, fmt.Sprintf(`
			CREATE ROLE %[1]s LOGIN PASSWORD '%[2]s';
			GRANT CREATE ON SCHEMA public TO %[1]s;`, gatewayRole, gatewayPassword))
		if setupErr == nil {
			su, setupErr = pgxpool.New(ctx, pg.SuperConnString(approvalsDB))
		}
	})
	if setupErr != nil {
		t.Fatalf("creating the fixture: %v", setupErr)
	}
	return su
}

func gatewayDSN() string { return pg.ConnString(gatewayRole, gatewayPassword, approvalsDB) }

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var tableSeq atomic.Int64

// tableFor names a table of its own for t.
func tableFor(t testing.TB) string {
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	if len(name) > 30 {
		name = name[len(name)-30:]
	}
	return fmt.Sprintf("ap_%d_%s", tableSeq.Add(1), strings.Trim(name, "_"))
}

// openPostgres opens a store as the gateway role on a table of the
// test's own (unless opts names one), and closes it when the test ends,
// checking that its logs never showed the password.
func openPostgres(t testing.TB, opts approval.PostgresOptions) *approval.Postgres {
	t.Helper()
	setup(t)
	if opts.Table == "" {
		opts.Table = tableFor(t)
	}
	logs := &testlog.Buffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := approval.OpenPostgres(testContext(t), gatewayDSN(), opts)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if strings.Contains(logs.String(), gatewayPassword) {
			t.Error("the logs hold the password")
		}
	})
	return s
}
