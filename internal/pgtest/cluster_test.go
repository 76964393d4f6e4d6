package pgtest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// connect opens a pgconn connection for dsn, failing t on error, and
// closes it at cleanup.
func connect(t *testing.T, dsn string) *pgconn.PgConn {
	t.Helper()
	conn, err := tryConnect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %q: %v", redact(dsn), err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func tryConnect(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgconn.ConnectConfig(ctx, cfg)
}

// redact hides the password in a DSN for log output.
func redact(dsn string) string {
	i := strings.Index(dsn, "password=")
	if i < 0 {
		return dsn
	}
	j := strings.Index(dsn[i:], "' ")
	if j < 0 {
		return dsn[:i] + "password=***"
	}
	return dsn[:i] + "password=***" + dsn[i+j+1:]
}

// queryValue runs a single-row, single-column query and returns the value.
func queryValue(t *testing.T, conn *pgconn.PgConn, sql string) string {
	t.Helper()
	results, err := conn.Exec(t.Context(), sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		t.Fatalf("%s: unexpected result shape %+v", sql, results)
	}
	return string(results[0].Rows[0][0])
}

func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

func TestClusterTLSLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	if c.Host != "127.0.0.1" || c.Port <= 0 || c.User != Superuser || len(c.Password) < 16 {
		t.Fatalf("unexpected cluster fields: host %q port %d user %q password length %d", c.Host, c.Port, c.User, len(c.Password))
	}
	if !strings.HasPrefix(filepath.Base(c.Dir), rootDirPrefix) {
		t.Errorf("Dir %q lacks prefix %q", c.Dir, rootDirPrefix)
	}
	if owner, err := readPIDFile(filepath.Join(c.Dir, ownerPIDFile)); err != nil || owner != os.Getpid() {
		t.Errorf("owner.pid = %d, %v; want %d", owner, err, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "pwfile")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("password file still present: %v", err)
	}
	if c.CA == nil || c.CAFile == "" {
		t.Fatal("TLS cluster without CA")
	}
	checkOwnership(t, c)

	t.Run("scram over tcp", func(t *testing.T) {
		conn := connect(t, c.SuperConnString(""))
		if got := queryValue(t, conn, "select 1"); got != "1" {
			t.Errorf("select 1 = %q", got)
		}
		if got := queryValue(t, conn, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()"); got != "false" {
			t.Errorf("sslmode=disable connection has ssl = %q", got)
		}
		if got := queryValue(t, conn, "select auth_method from pg_hba_file_rules where address = '127.0.0.1'"); got != "scram-sha-256" {
			t.Errorf("127.0.0.1 auth method = %q", got)
		}
	})

	t.Run("verify-full", func(t *testing.T) {
		dsn := c.TLSConnString(c.User, c.Password, "postgres")
		if !strings.Contains(dsn, "host='localhost'") || !strings.Contains(dsn, "sslmode='verify-full'") {
			t.Fatalf("unexpected TLS DSN %q", redact(dsn))
		}
		conn := connect(t, dsn)
		if got := queryValue(t, conn, "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()"); got != "true" {
			t.Errorf("ssl = %q, want true", got)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		conn, err := tryConnect(t.Context(), c.ConnString(c.User, "not-the-password", "postgres"))
		if err == nil {
			conn.Close(t.Context())
			t.Fatal("connected with a wrong password")
		}
		if code := sqlState(err); code != "28P01" {
			t.Fatalf("SQLSTATE %q (%v), want 28P01", code, err)
		}
	})

	t.Run("exec errors", func(t *testing.T) {
		err := c.Exec(t.Context(), "", "create table t(x int); insert into t values (1); select 1/0")
		if code := sqlState(err); code != "22012" {
			t.Fatalf("Exec error = %v (SQLSTATE %q), want 22012", err, code)
		}
		// The implicit transaction rolled back, so t does not exist.
		err = c.Exec(t.Context(), "postgres", "select * from t")
		if code := sqlState(err); code != "42P01" {
			t.Fatalf("Exec error = %v (SQLSTATE %q), want 42P01", err, code)
		}
	})

	pid := c.PID()
	if !processAlive(pid) {
		t.Fatalf("postmaster %d not alive before Stop", pid)
	}
	start := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(start))
	if processAlive(pid) {
		t.Errorf("postmaster %d still alive after Stop", pid)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir still exists after Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if tail := c.LogTail(5); !strings.Contains(tail, "shut down") {
		t.Errorf("LogTail after Stop lacks shutdown message:\n%s", tail)
	}
	if _, err := tryConnect(t.Context(), c.SuperConnString("")); err == nil {
		t.Error("connected after Stop")
	}
}

// checkOwnership verifies that, when running as root, the cluster files
// belong to the postgres OS user and the key is private.
func checkOwnership(t *testing.T, c *Cluster) {
	t.Helper()
	key, err := os.Stat(filepath.Join(c.DataDir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if key.Mode().Perm() != 0o600 {
		t.Errorf("server.key mode %v", key.Mode().Perm())
	}
	if os.Geteuid() != 0 {
		return
	}
	for _, p := range []string{c.Dir, c.DataDir, c.SocketDir, filepath.Join(c.DataDir, "server.key"), filepath.Join(c.DataDir, "pg_hba.conf")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != c.id.uid || uid == 0 {
			t.Errorf("%s owned by uid %d, want %d", p, uid, c.id.uid)
		}
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	c := New(t, Options{
		HBA:      []string{"host all trusted_role 127.0.0.1/32 trust"},
		Settings: map[string]string{"work_mem": "7MB", "max_connections": "50"},
		Database: `we"ird db`,
	})
	if err := c.Exec(t.Context(), "", "create role trusted_role login"); err != nil {
		t.Fatal(err)
	}
	// The HBA line precedes the SCRAM default, so no password is needed.
	conn := connect(t, c.ConnString("trusted_role", "", `we"ird db`))
	if got := queryValue(t, conn, "show work_mem"); got != "7MB" {
		t.Errorf("work_mem = %q", got)
	}
	if got := queryValue(t, conn, "show max_connections"); got != "50" {
		t.Errorf("max_connections = %q (caller settings must override defaults)", got)
	}
	if got := queryValue(t, conn, "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"); got != Superuser {
		t.Errorf("database owner = %q", got)
	}
	if got := queryValue(t, conn, "show fsync"); got != "off" {
		t.Errorf("fsync = %q", got)
	}
	if c.CA != nil || c.CAFile != "" {
		t.Error("non-TLS cluster has a CA")
	}
}

func TestSharedClusterQuoting(t *testing.T) {
	t.Parallel()
	if shared == nil {
		t.Fatal("TestMain did not set the shared cluster")
	}
	// Unique per run: the shared cluster outlives -count iterations.
	user := `o'brien\x ` + strconv.FormatInt(time.Now().UnixNano(), 36)
	password := `p a'ss\word "q"`
	sql := "create role " + quoteIdent(user) + " login password " + quoteLiteral(password) +
		"; grant connect on database " + quoteIdent("shared db") + " to " + quoteIdent(user)
	if err := shared.Exec(t.Context(), "", sql); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, shared.ConnString(user, password, "shared db"))
	if got := queryValue(t, conn, "select current_user || '@' || current_database()"); got != user+"@shared db" {
		t.Errorf("connected as %q", got)
	}
}

// quoteLiteral quotes an SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func TestConnStringParses(t *testing.T) {
	c := &Cluster{Host: "127.0.0.1", Port: 6543, CAFile: "/tmp/x y/ca.crt"}
	cfg, err := pgconn.ParseConfig(c.ConnString(`a b'c\`, `p'w\ "x"`, `d b`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 6543 || cfg.User != `a b'c\` || cfg.Password != `p'w\ "x"` || cfg.Database != "d b" || cfg.TLSConfig != nil {
		t.Errorf("round trip mismatch: host %q port %d user %q password %q db %q tls %v",
			cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database, cfg.TLSConfig != nil)
	}
	if got := c.Addr(); got != "127.0.0.1:6543" {
		t.Errorf("Addr = %q", got)
	}
}

func TestBinDir(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if !hasServerBinaries(dir) {
		t.Fatalf("BinDir %q lacks initdb/postgres", dir)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{HBA: []string{"host all all 0.0.0.0/0 trust\nlocal all all trust"}},
		{Settings: map[string]string{"a=b": "c"}},
		{Settings: map[string]string{"": "c"}},
	} {
		if _, err := Start(t.Context(), opts); err == nil {
			t.Errorf("Start(%+v) succeeded", opts)
		}
	}
}

func TestStartRetriesOnPortClash(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	var calls int
	pick := func() (int, error) {
		calls++
		if calls == 1 {
			return busyPort, nil
		}
		return freePort()
	}
	c, err := startCluster(t.Context(), Options{}, pick)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	if calls != 2 || c.Port == busyPort {
		t.Errorf("port picked %d times, final port %d (busy %d)", calls, c.Port, busyPort)
	}
	if log := c.LogTail(100); !strings.Contains(log, "could not bind") {
		t.Errorf("log lacks the bind failure of the first attempt:\n%s", log)
	}
	if err := c.Exec(t.Context(), "", "select 1"); err != nil {
		t.Error(err)
	}
}

func TestStartFailureCleansUp(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	var calls int
	pick := func() (int, error) { calls++; return busyPort, nil }

	_, err = startCluster(t.Context(), Options{}, pick)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("err = %v, want errPortInUse", err)
	}
	if calls != maxLaunchAttempts {
		t.Errorf("%d launch attempts, want %d", calls, maxLaunchAttempts)
	}
	if !strings.Contains(err.Error(), "could not bind") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	// The error names the log file, which lives in the cluster root.
	_, rest, _ := strings.Cut(err.Error(), "lines of ")
	logPath, _, _ := strings.Cut(rest, " ---")
	dir := filepath.Dir(logPath)
	if !strings.HasPrefix(filepath.Base(dir), rootDirPrefix) {
		t.Fatalf("error does not name the cluster log: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Start left %s behind (%v)", dir, err)
	}
}
