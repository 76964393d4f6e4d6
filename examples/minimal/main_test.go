package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/scramhash"
	"github.com/pgwarden/pgwarden/internal/testcert"
)

// TestMinimalGateway builds the example, runs it as its README says, and
// talks to it with pgx: TLS with full verification, SCRAM, masked e-mail,
// refused writes, a wrong password, and a graceful stop on SIGTERM.
func TestMinimalGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster := pgtest.New(t, pgtest.Options{Database: "shop"})
	setup := `CREATE ROLE app_ro LOGIN PASSWORD 'upstream-secret';
CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.org');
GRANT SELECT, INSERT ON customers TO app_ro;`
	if err := cluster.Exec(ctx, "shop", setup); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ca, err := testcert.NewAuthority("minimal example CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("localhost", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := ca.WriteCertFile(caFile); err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	verifier, err := scramhash.Verifier("login-secret")
	if err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(dir, "minimal")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	var logs strings.Builder
	gw := exec.Command(bin)
	gw.Env = append(os.Environ(),
		"TLS_CERT="+filepath.Join(dir, "tls.crt"), "TLS_KEY="+filepath.Join(dir, "tls.key"),
		"LOGIN_USER=alice", "LOGIN_VERIFIER="+verifier,
		"DB_USER=app_ro", "DB_PASSWORD=upstream-secret", "DB_ADDR="+cluster.Addr(),
		"LISTEN_ADDR="+addr)
	gw.Stdout, gw.Stderr = &logs, &logs
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	t.Cleanup(func() {
		_ = gw.Process.Kill()
		if t.Failed() {
			t.Logf("gateway output:\n%s", logs.String())
		}
	})

	_, port, _ := net.SplitHostPort(addr)
	connString := func(password string) string {
		return fmt.Sprintf("host=localhost port=%s user=alice password=%s dbname=shop sslmode=verify-full sslrootcert=%s", port, password, caFile)
	}
	conn := connectWhenUp(ctx, t, connString("login-secret"), exited)
	defer conn.Close(ctx)

	rows, err := conn.Query(ctx, "SELECT name, email FROM customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name, email string
		err := r.Scan(&name, &email)
		return name + " " + email, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Alice ***@example.com", "Bob ***@example.org"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("masked select = %q, want %q", got, want)
	}

	_, err = conn.Exec(ctx, "INSERT INTO customers VALUES (3, 'Eve', 'eve@example.net')")
	if code := sqlState(err); code != "42501" {
		t.Errorf("INSERT through the read-only gateway: error %v (SQLSTATE %q), want 42501", err, code)
	}
	if err := cluster.Exec(ctx, "shop", "DO $$ BEGIN IF (SELECT count(*) FROM customers) <> 2 THEN RAISE 'the refused INSERT ran'; END IF; END $$"); err != nil {
		t.Error(err)
	}

	if bad, err := pgx.Connect(ctx, connString("wrong")); err == nil {
		bad.Close(ctx)
		t.Error("a wrong password logged in")
	} else if code := sqlState(err); code != "28P01" {
		t.Errorf("wrong password: %v (SQLSTATE %q), want 28P01", err, code)
	}

	// SIGTERM: the idle session is ended with 57P01 and the program exits 0.
	if err := gw.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gateway exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("gateway did not stop after SIGTERM")
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	if err == nil {
		t.Error("the session survived the gateway's shutdown")
	}
}

// connectWhenUp connects once the gateway listens, or fails when it exits.
func connectWhenUp(ctx context.Context, t *testing.T, connString string, exited <-chan error) *pgx.Conn {
	t.Helper()
	for {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			return conn
		}
		select {
		case err := <-exited:
			t.Fatalf("gateway exited: %v", err)
		case <-ctx.Done():
			t.Fatalf("gateway never accepted a connection: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
