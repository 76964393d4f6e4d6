package credstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/session"
)

// pg is the PostgreSQL cluster the tests of this package talk to. A
// missing PostgreSQL installation fails the package; it never skips.
var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, pgtest.Options{Database: "app"}, &pg))
}

// The fixture, created once by setup.
const (
	// adminRole is the role Dynamic stores connect as: CREATEROLE, not a
	// superuser.
	adminRole     = "credadmin"
	adminPassword = "credadmin-upstream-secret-7f3a"
	// staticRole is a fixed login role (member of app_reader), for the
	// Static store's conformance run.
	staticRole     = "static_app"
	staticPassword = "static-app-upstream-secret-19c2"
	// lockedDB is a database the admin role cannot connect to.
	lockedDB = "locked"
)

// fixtureSQL runs in the postgres database as the superuser.
var fixtureSQL = fmt.Sprintf(`
	CREATE ROLE %[1]s LOGIN CREATEROLE PASSWORD '%[2]s';
	CREATE ROLE app_reader NOLOGIN;
	CREATE ROLE app_writer NOLOGIN;
	CREATE ROLE app_mutable NOLOGIN;
	CREATE ROLE danger_admin NOLOGIN CREATEROLE;
	CREATE ROLE super_role NOLOGIN SUPERUSER;
	CREATE ROLE danger_member NOLOGIN IN ROLE pg_execute_server_program;
	CREATE ROLE danger_super_member NOLOGIN IN ROLE super_role;
	CREATE ROLE priv_bypass NOLOGIN BYPASSRLS;
	CREATE ROLE priv_via_bypass NOLOGIN IN ROLE priv_bypass;
	CREATE ROLE priv_repl NOLOGIN REPLICATION;
	CREATE ROLE priv_via_repl NOLOGIN IN ROLE priv_repl;
	CREATE ROLE priv_createdb NOLOGIN CREATEDB;
	CREATE ROLE priv_nested NOLOGIN IN ROLE danger_admin;
	CREATE ROLE priv_chain NOLOGIN IN ROLE priv_nested;
	CREATE ROLE priv_files NOLOGIN IN ROLE pg_read_server_files, pg_write_server_files;
	CREATE ROLE priv_owner NOLOGIN;
	CREATE ROLE %[3]s LOGIN PASSWORD '%[4]s' IN ROLE app_reader;
	CREATE TABLE owned_elsewhere (id int);
	ALTER TABLE owned_elsewhere OWNER TO priv_owner;
`, adminRole, adminPassword, staticRole, staticPassword)

// fixtureAppSQL runs in the app database as the superuser.
var fixtureAppSQL = fmt.Sprintf(`
	CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL);
	INSERT INTO orders VALUES (1, 'apple'), (2, 'pear');
	GRANT SELECT ON orders TO app_reader, app_mutable;
	GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO app_writer;
	GRANT CREATE ON SCHEMA public TO app_writer, %[1]s;
	CREATE TABLE owned_here (id int);
	ALTER TABLE owned_here OWNER TO priv_owner;
`, adminRole)

var (
	setupOnce sync.Once
	setupErr  error
	// su is a superuser pool on the app database, for looking at the
	// catalog behind the store's back.
	su *pgxpool.Pool
)

// setup creates the fixture once per test binary and returns the
// superuser pool.
func setup(t testing.TB) *pgxpool.Pool {
	t.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		steps := []struct{ db, sql string }{
			{"postgres", fixtureSQL},
			{"postgres", "CREATE DATABASE " + lockedDB},
			{"postgres", "REVOKE CONNECT ON DATABASE " + lockedDB + " FROM PUBLIC"},
			{"app", fixtureAppSQL},
		}
		for _, s := range steps {
			if setupErr = pg.Exec(ctx, s.db, s.sql); setupErr != nil {
				return
			}
		}
		su, setupErr = pgxpool.New(ctx, pg.SuperConnString("app"))
	})
	if setupErr != nil {
		t.Fatalf("creating the fixture: %v", setupErr)
	}
	return su
}

// adminDSN reaches the app database as the admin role.
func adminDSN() session.Secret {
	return session.NewSecret(pg.ConnString(adminRole, adminPassword, "app"))
}

// testContext bounds one test's calls generously: a hang fails instead of
// stalling the suite (it is not a timing assertion).
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logBuffer is a concurrent log buffer.
type logBuffer = testlog.Buffer

// dyn is a Dynamic store under test with its captured logs.
type dyn struct {
	*credstore.Dynamic
	logs *logBuffer
}

// fillConfig completes cfg with the test defaults: the admin DSN, a
// reader template for everyone, a GatewayID unique to the test (so that
// tests sharing the lease table never sweep each other's leases), and a
// Logger into a buffer.
func fillConfig(t testing.TB, cfg *credstore.DynamicConfig) *logBuffer {
	if cfg.AdminDSN.IsZero() {
		cfg.AdminDSN = adminDSN()
	}
	if cfg.Templates == nil {
		cfg.Templates = []credstore.Template{{Roles: []string{"app_reader"}}}
	}
	if cfg.GatewayID == "" {
		cfg.GatewayID = "gw-" + t.Name()
	}
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return logs
}

// newDynamic starts a Dynamic store (see fillConfig) and closes it when
// the test ends.
func newDynamic(t testing.TB, cfg credstore.DynamicConfig) *dyn {
	t.Helper()
	setup(t)
	logs := fillConfig(t, &cfg)
	d, err := credstore.NewDynamic(testContext(t), cfg)
	if err != nil {
		t.Fatalf("NewDynamic: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &dyn{Dynamic: d, logs: logs}
}

// infoFor is the session of subject (in groups) on the app database.
func infoFor(subject string, groups ...string) *session.Info {
	return &session.Info{ID: "s-" + subject, Identity: session.Identity{Subject: subject, Issuer: "test", Groups: groups},
		User: subject, Database: "app"}
}

// issue asks d for a credential and fails the test without one.
func issue(t testing.TB, d credstore.Store, info *session.Info) credstore.Credential {
	t.Helper()
	cred, err := d.Credential(testContext(t), info)
	if err != nil {
		t.Fatalf("Credential(%s): %v", info.Identity.Subject, err)
	}
	return cred
}

// login connects to database as cred.
func login(ctx context.Context, cred credstore.Credential, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(pg.ConnString(cred.User, cred.Password.Reveal(), database))
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// verifyLogin proves cred logs in to the app database as itself and reads
// orders (through its template role).
func verifyLogin(ctx context.Context, cred credstore.Credential) error {
	conn, err := login(ctx, cred, "app")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user string
	var n int
	if err := conn.QueryRow(ctx, "SELECT current_user, (SELECT count(*) FROM orders)").Scan(&user, &n); err != nil {
		return err
	}
	if user != cred.User || n != 2 {
		return fmt.Errorf("logged in as %q reading %d orders, want %q and 2", user, n, cred.User)
	}
	return nil
}

// role is a row of pg_roles.
type role struct {
	Login, Inherit, Super, CreateRole, CreateDB, BypassRLS, Replication bool
	ConnLimit                                                           int
	ValidUntil                                                          *time.Time
}

// lookupRole reads pg_roles; ok is false when there is no such role.
func lookupRole(t testing.TB, name string) (r role, ok bool) {
	t.Helper()
	err := setup(t).QueryRow(testContext(t), `SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb,
		rolbypassrls, rolreplication, rolconnlimit, rolvaliduntil FROM pg_roles WHERE rolname = $1`, name).
		Scan(&r.Login, &r.Inherit, &r.Super, &r.CreateRole, &r.CreateDB, &r.BypassRLS, &r.Replication, &r.ConnLimit, &r.ValidUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false
	}
	if err != nil {
		t.Fatalf("reading pg_roles for %q: %v", name, err)
	}
	return r, true
}

// roleExists reports whether pg_roles has name.
func roleExists(t testing.TB, name string) bool {
	t.Helper()
	_, ok := lookupRole(t, name)
	return ok
}

// memberOf lists, sorted, the roles name is a direct member of
// (pg_auth_members).
func memberOf(t testing.TB, name string) []string {
	t.Helper()
	return queryStrings(t, `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
		JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1 ORDER BY 1`, name)
}

// membersOf lists, sorted, the direct members of name.
func membersOf(t testing.TB, name string) []string {
	t.Helper()
	return queryStrings(t, `SELECT u.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
		JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = $1 ORDER BY 1`, name)
}

// rolesLike lists the roles whose name starts with prefix.
func rolesLike(t testing.TB, prefix string) []string {
	t.Helper()
	return queryStrings(t, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1`, prefix)
}

func queryStrings(t testing.TB, sql string, args ...any) []string {
	t.Helper()
	rows, err := setup(t).Query(testContext(t), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// leaseOf finds role's lease in d's store.
func leaseOf(t testing.TB, d *credstore.Dynamic, role string) credstore.Lease {
	t.Helper()
	ls, err := d.Leases(testContext(t))
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	i := slices.IndexFunc(ls, func(l credstore.Lease) bool { return l.Role == role })
	if i < 0 {
		t.Fatalf("no lease for %q in the store", role)
	}
	return ls[i]
}

// waitNoBackend waits until no backend runs as role.
func waitNoBackend(t testing.TB, role string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := setup(t).QueryRow(testContext(t), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still run as %q", n, role)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoSecret fails t if where shows password (never printing it).
func checkNoSecret(t testing.TB, where, text, password string) {
	t.Helper()
	if password == "" {
		t.Fatal("no password to look for")
	}
	if strings.Contains(text, password) {
		t.Errorf("%s holds the password", where)
	}
}
