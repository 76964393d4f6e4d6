// Package targets starts the things the benchmark connects pgbench to:
// PostgreSQL itself (direct), the pgwarden gateway, pgbouncer and the floor
// (a byte relay on the gateway's event loop), each as a [Target].
package targets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// readyTimeout bounds how long a started proxy may take to accept a
	// login.
	readyTimeout = 20 * time.Second
	// stopGrace is how long a proxy may take to exit after its stop signal.
	stopGrace = 10 * time.Second
)

// Target names.
const (
	NameDirect    = "direct"
	NamePgwarden  = "pgwarden"
	NamePgbouncer = "pgbouncer"
	// NameFloor is the byte forwarder with no protocol handling (see
	// StartForwarder).
	NameFloor = "floor"
)

// Target is an address pgbench connects to, with the login to use there.
type Target struct {
	// Name is "direct", "pgwarden", "pgbouncer" or "floor".
	Name     string
	Host     string
	Port     int
	User     string
	Password string
	Database string
	// Software describes the software behind the target, for the record.
	Software string

	// proc is the proxy process; nil for a direct connection.
	proc *Process
	// dir is the target's temporary directory; "" if it has none.
	dir string
}

// Direct returns the target for connecting straight to PostgreSQL.
func Direct(host string, port int, user, password, database, software string) *Target {
	return &Target{Name: NameDirect, Host: host, Port: port, User: user, Password: password, Database: database, Software: software}
}

// Addr returns host:port.
func (t *Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// HasProcess reports whether the target is a proxy process whose CPU time
// can be measured.
func (t *Target) HasProcess() bool { return t.proc != nil }

// CPUTime returns the CPU time used so far by the target's process; it is
// an error to call it on a target without one.
func (t *Target) CPUTime() (time.Duration, error) {
	if t.proc == nil {
		return 0, fmt.Errorf("%s: no process to measure", t.Name)
	}
	if done, err := t.proc.Exited(); done {
		return 0, fmt.Errorf("%s exited (%v); log tail:\n%s", t.Name, err, t.proc.LogTail(20))
	}
	return t.proc.CPUTime()
}

// Dir returns the target's temporary directory, or "".
func (t *Target) Dir() string { return t.dir }

// LogTail returns the last n lines of the target process's output, or "".
func (t *Target) LogTail(n int) string {
	if t.proc == nil {
		return ""
	}
	return t.proc.LogTail(n)
}

// Close stops the target's process and, unless keep is set, removes its
// temporary directory. It is safe to call more than once and on nil.
func (t *Target) Close(keep bool) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.proc != nil {
		errs = append(errs, t.proc.Stop(stopGrace))
	}
	if t.dir != "" && !keep {
		if err := os.RemoveAll(t.dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove %s: %w", t.Name, t.dir, err))
		}
	}
	return errors.Join(errs...)
}

// ConnString returns a keyword/value connection string for the target with
// sslmode=disable.
func (t *Target) ConnString() string {
	pairs := [][2]string{
		{"host", t.Host}, {"port", strconv.Itoa(t.Port)}, {"user", t.User},
		{"password", t.Password}, {"dbname", t.Database}, {"sslmode", "disable"},
	}
	var b strings.Builder
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	for i, kv := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0] + "='" + q.Replace(kv[1]) + "'")
	}
	return b.String()
}

// waitReady waits until a client can log in through t and run a query,
// failing early if the target's process exits.
func (t *Target) waitReady(ctx context.Context) error {
	cfg, err := pgconn.ParseConfig(t.ConnString())
	if err != nil {
		return fmt.Errorf("%s: %w", t.Name, err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		if t.proc != nil {
			if done, werr := t.proc.Exited(); done {
				return fmt.Errorf("%s exited during start-up (%v); log tail:\n%s", t.Name, werr, t.proc.LogTail(20))
			}
		}
		err := tryLogin(ctx, cfg)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept a login at %s within %v: %w; log tail:\n%s",
				t.Name, t.Addr(), readyTimeout, err, t.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tryLogin connects with cfg, runs SELECT 1 and disconnects.
func tryLogin(ctx context.Context, cfg *pgconn.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	return err
}

// FreePort asks the kernel for a currently unused loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// CleanEnv returns this process's environment without PG* variables, which
// could redirect a client or a proxy.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}
