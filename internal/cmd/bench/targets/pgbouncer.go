package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pgbouncerOSUser is the account pgbouncer runs as when this program runs
// as root (pgbouncer refuses to run as root).
const pgbouncerOSUser = "postgres"

// PgbouncerOptions describes the pgbouncer to start.
type PgbouncerOptions struct {
	// ServerHost and ServerPort locate PostgreSQL.
	ServerHost string
	ServerPort int
	// User and Password are what clients log in to pgbouncer with.
	User, Password string
	// DBUser and DBPassword are what pgbouncer logs in to PostgreSQL with.
	DBUser, DBPassword string
	// Database is the database name, the same for clients and server.
	Database string
	// Progress receives progress messages (such as package installation).
	Progress io.Writer
}

// StartPgbouncer finds (or, as root, installs) pgbouncer, writes its
// configuration in a new temporary directory under /tmp, runs it in the
// foreground on a free loopback port in session pooling mode, and waits
// until a client can log in through it.
func StartPgbouncer(ctx context.Context, o PgbouncerOptions) (t *Target, err error) {
	bin, err := pgbouncerBinary(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = osUserCredential(pgbouncerOSUser); err != nil {
			return nil, fmt.Errorf("pgbouncer refuses to run as root and %w", err)
		}
	}

	// /tmp itself is world-traversable; the directory is private to the
	// account pgbouncer runs as.
	dir, err := os.MkdirTemp("/tmp", "pgwarden-bench-pgbouncer-*")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	t = &Target{Name: NamePgbouncer, Host: "127.0.0.1", User: o.User, Password: o.Password, Database: o.Database, dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close(false))
			t = nil
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return t, fmt.Errorf("pgbouncer: %w", err)
	}
	if t.Port, err = FreePort(); err != nil {
		return t, err
	}
	t.Software = pgbouncerVersion(bin)

	authFile := filepath.Join(dir, "userlist.txt")
	config := filepath.Join(dir, "pgbouncer.ini")
	files := map[string]string{
		authFile: fmt.Sprintf("%s %s\n", pgbouncerQuote(o.User), pgbouncerQuote(o.Password)),
		config:   pgbouncerConfig(t, o, dir, authFile),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return t, fmt.Errorf("pgbouncer: write %s: %w", path, err)
		}
	}
	// Create the output file before handing everything to pgbouncer's
	// account, so the chown below covers it too.
	stderrLog := filepath.Join(dir, "pgbouncer.stderr")
	if err := os.WriteFile(stderrLog, nil, 0o600); err != nil {
		return t, fmt.Errorf("pgbouncer: %w", err)
	}
	if cred != nil {
		for _, p := range []string{dir, authFile, config, stderrLog} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return t, fmt.Errorf("pgbouncer: chown %s to %s: %w", p, pgbouncerOSUser, err)
			}
		}
	}

	cmd := exec.Command(bin, config) // no -d: it stays in the foreground
	cmd.Dir = dir
	cmd.Env = CleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// SIGTERM is pgbouncer's immediate shutdown.
	if t.proc, err = startProcess("pgbouncer", cmd, stderrLog, syscall.SIGTERM); err != nil {
		return t, err
	}
	if err := t.waitReady(ctx); err != nil {
		return t, fmt.Errorf("%w\npgbouncer.log tail:\n%s", err, fileTail(filepath.Join(dir, "pgbouncer.log"), 20))
	}
	return t, nil
}

// pgbouncerConfig returns pgbouncer.ini.
func pgbouncerConfig(t *Target, o PgbouncerOptions, dir, authFile string) string {
	var b strings.Builder
	b.WriteString("; Written by internal/cmd/bench.\n")
	b.WriteString("[databases]\n")
	fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s user=%s password=%s\n",
		o.Database, o.ServerHost, o.ServerPort, o.Database, o.DBUser, o.DBPassword)
	b.WriteString("\n[pgbouncer]\n")
	fmt.Fprintf(&b, "listen_addr = %s\n", t.Host)
	fmt.Fprintf(&b, "listen_port = %d\n", t.Port)
	b.WriteString("unix_socket_dir =\n")
	b.WriteString("pool_mode = session\n")
	b.WriteString("auth_type = scram-sha-256\n")
	fmt.Fprintf(&b, "auth_file = %s\n", authFile)
	b.WriteString("max_client_conn = 200\n")
	b.WriteString("default_pool_size = 50\n")
	fmt.Fprintf(&b, "logfile = %s\n", filepath.Join(dir, "pgbouncer.log"))
	fmt.Fprintf(&b, "pidfile = %s\n", filepath.Join(dir, "pgbouncer.pid"))
	// Like the gateway at log level warn: no line per connection.
	b.WriteString("log_connections = 0\n")
	b.WriteString("log_disconnections = 0\n")
	return b.String()
}

// pgbouncerQuote double-quotes s for the auth file, doubling embedded
// double quotes.
func pgbouncerQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// pgbouncerBinary finds pgbouncer on PATH or in /usr/sbin; when it is
// missing and this program runs as root, it installs the distribution's
// package with apt-get.
func pgbouncerBinary(ctx context.Context, progress io.Writer) (string, error) {
	find := func() (string, bool) {
		if p, err := exec.LookPath("pgbouncer"); err == nil {
			return p, true
		}
		if fi, err := os.Stat("/usr/sbin/pgbouncer"); err == nil && fi.Mode().IsRegular() {
			return "/usr/sbin/pgbouncer", true
		}
		return "", false
	}
	if p, ok := find(); ok {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("pgbouncer not found on PATH or in /usr/sbin; install it (Debian: sudo apt-get install pgbouncer) or run as root to have it installed")
	}
	fmt.Fprintln(progress, "pgbouncer not found; installing it with apt-get")
	install := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout = progress
		cmd.Stderr = progress
		return cmd.Run()
	}
	if err := install("install", "-y", "pgbouncer"); err != nil {
		// The package lists may be missing or stale.
		if err := install("update"); err != nil {
			return "", fmt.Errorf("pgbouncer: apt-get update: %w", err)
		}
		if err := install("install", "-y", "pgbouncer"); err != nil {
			return "", fmt.Errorf("pgbouncer: apt-get install pgbouncer: %w", err)
		}
	}
	if p, ok := find(); ok {
		return p, nil
	}
	return "", errors.New("pgbouncer: installed the package but still cannot find the pgbouncer binary")
}

// pgbouncerVersion returns the first line of `pgbouncer --version`, or the
// binary's path.
func pgbouncerVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return bin
	}
	line, _, _ := bytes.Cut(out, []byte("\n"))
	return strings.TrimSpace(string(line))
}

// osUserCredential returns the credential of the named OS account,
// including its supplementary groups.
func osUserCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("cannot find the %q OS user to run it as: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: bad uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: bad gid %q", name, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("the %q OS user has uid 0", name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != uint32(gid) {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}
