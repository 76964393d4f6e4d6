package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/internal/pgtest"
)

// startWatched starts cmd, closes w (the child's end of an output pipe, so
// that the parent sees EOF when the child exits), and kills the child at
// cleanup if it is still running. The channel receives cmd.Wait's result.
func startWatched(t *testing.T, cmd *exec.Cmd, w *os.File) <-chan error {
	t.Helper()
	err := cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	return exited
}

// buildBinary builds the pgwarden binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgwarden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServe runs `pgwarden serve` against a TLS-enabled cluster
// (upstream.tls verify-full with the cluster's CA), with JSON logs, and
// checks the graceful shutdown: after SIGTERM an open transaction may
// finish, then its session ends with 57P01, new connections are refused and
// the process exits 0.
func TestServe(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cluster := pgtest.New(t, pgtest.Options{TLS: true, Database: "app"})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, "app", `CREATE ROLE app_user LOGIN PASSWORD 'app-user-secret';
		CREATE TABLE t (n int); GRANT SELECT, INSERT ON t TO app_user;`); err != nil {
		t.Fatal(err)
	}

	path := writeFile(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstream:
  address: %s
  tls: verify-full
  ca: %s
auth:
  users:
    - {name: carol, password: carol-secret, groups: [dev]}
credentials:
  static:
    - {user: app_user, password: "${PGW_TEST_APP_PASSWORD}", groups: [dev]}
policy:
  default: allow
log:
  format: json
`, cluster.Addr(), cluster.CAFile))

	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "PGW_TEST_APP_PASSWORD=app-user-secret")
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderrW
	exited := startWatched(t, cmd, stderrW)

	logs := make(chan map[string]any, 100)
	go readJSONLogs(stderr, logs)
	addr := ""
	for addr == "" {
		select {
		case rec, ok := <-logs:
			if !ok {
				t.Fatal("serve exited before serving")
			}
			if rec["msg"] == "pgwarden: serving" {
				addr, _ = rec["addr"].(string)
			}
		case <-ctx.Done():
			t.Fatal("serve did not log its address")
		}
	}

	dsn := fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", addr)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, ctx, logs, "pgwarden: shutting down; a second signal closes all sessions at once")

	// New clients are refused; the open transaction goes on and commits.
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Error("connected after the shutdown began")
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 2); err != nil {
		t.Fatalf("statement in the open transaction: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "57P01" {
		t.Errorf("query after commit: %v; want FATAL 57P01", err)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("serve still running after the sessions ended")
	}
	if err := cluster.Exec(ctx, "app", "DO $$ BEGIN IF (SELECT count(*) FROM t) <> 2 THEN RAISE 'rows lost'; END IF; END $$"); err != nil {
		t.Errorf("committed rows: %v", err)
	}
}

// readJSONLogs sends the JSON log records read from r to out while out
// has room, and closes out at the end of r.
func readJSONLogs(r io.Reader, out chan<- map[string]any) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		// Drop records nobody waits for rather than block the server on
		// a full stderr pipe.
		select {
		case out <- rec:
		default:
		}
	}
}

// waitForLog waits for a log record with the message msg.
func waitForLog(t *testing.T, ctx context.Context, logs <-chan map[string]any, msg string) {
	t.Helper()
	for {
		select {
		case rec, ok := <-logs:
			if !ok {
				t.Fatalf("no log %q before serve exited", msg)
			}
			if rec["msg"] == msg {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no log %q", msg)
		}
	}
}
