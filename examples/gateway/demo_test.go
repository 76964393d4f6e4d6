package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	bannerRE = regexp.MustCompile(`^pgwarden demo is running \(PostgreSQL \d+(\.\d+)* behind pgwarden on 127\.0\.0\.1:(\d+)\)\.$`)
	psqlRE   = regexp.MustCompile(`^  PGPASSWORD='([A-Za-z0-9_-]+)' psql "(host=127\.0\.0\.1 port=(\d+) dbname=demo user=alice sslmode=verify-full sslrootcert=(\S+)/ca\.crt)"$`)
)

// TestDemo builds the binary, runs `pgwarden demo` on a free port, uses the
// printed command with psql and the printed parameters with pgx, then
// interrupts it and checks that it exits cleanly and removes its files.
func TestDemo(t *testing.T) {
	t.Parallel()
	// Built once: the commands below run under a deadline, and a build (a
	// link, at least) on a loaded machine can take most of it.
	bin := buildBinary(t)
	cmd := exec.Command(bin, "demo", "--listen", "127.0.0.1:0")
	// An os.Pipe rather than StdoutPipe: Wait runs concurrently with the
	// reads and must not close the read end under them.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = stdoutW
	var stderr syncBuffer
	cmd.Stderr = &stderr
	var demoDir string
	t.Cleanup(func() { // runs after startWatched's cleanup has stopped the demo
		if demoDir != "" {
			os.RemoveAll(demoDir)
		}
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr.String())
		}
	})
	exited := startWatched(t, cmd, stdoutW)

	lines := readBanner(t, stdout, 11, 45*time.Second)
	m := bannerRE.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("first line %q does not match %s", lines[0], bannerRE)
	}
	port := m[2]
	if lines[1] != "Connect with:" {
		t.Errorf("second line = %q", lines[1])
	}
	p := psqlRE.FindStringSubmatch(lines[2])
	if p == nil {
		t.Fatalf("psql line %q does not match %s", lines[2], psqlRE)
	}
	password, conninfo, demoDir := p[1], p[2], p[4]
	if p[3] != port {
		t.Errorf("psql port %s, banner port %s", p[3], port)
	}
	if !strings.HasPrefix(lines[3], "Or with OIDC tokens minted by the demo's development identity provider at http://127.0.0.1:") ||
		!strings.Contains(lines[4], "never for production") {
		t.Errorf("token lines = %q, %q", lines[3], lines[4])
	}
	tokenRE := regexp.MustCompile(`^  PGPASSWORD="\$\(cat (\S+)\)" psql "host=127\.0\.0\.1 port=(\d+) dbname=demo user=token sslmode=verify-full sslrootcert=\S+/ca\.crt"$`)
	for _, i := range []int{5, 7} {
		if m := tokenRE.FindStringSubmatch(lines[i]); m == nil || m[2] != port || filepath.Dir(m[1]) != demoDir {
			t.Errorf("token command %q does not match %s", lines[i], tokenRE)
		}
	}
	if !strings.HasPrefix(lines[8], "Try: select name, email, ssn from users;") {
		t.Errorf("masking hint = %q", lines[8])
	}
	if want := "Config: " + filepath.Join(demoDir, "pgwarden.yaml"); lines[9] != want {
		t.Errorf("config line = %q, want %q", lines[8], want)
	}
	if want := "Press Ctrl-C to stop; the database and all demo files are removed."; lines[10] != want {
		t.Errorf("last line = %q, want %q", lines[10], want)
	}
	configText, err := os.ReadFile(filepath.Join(demoDir, "pgwarden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(configText), password) {
		t.Error("the config file holds alice's password instead of a verifier")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The printed command, as a person would paste it.
	psql := exec.CommandContext(ctx, "sh", "-c", lines[2]+` -X -At -c "select count(*) from users"`)
	out, err := psql.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "10" {
		t.Fatalf("psql: %v, output %q; want 10", err, out)
	}

	// The masking hint, as printed: addresses keep only their domain, SSNs
	// their last four digits; no plaintext reaches psql.
	hint := strings.SplitN(lines[8], ";", 2)[0] + ";"
	hint = strings.TrimPrefix(hint, "Try: ")
	out, err = exec.CommandContext(ctx, "sh", "-c", lines[2]+` -X -At -c "`+hint+`"`).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "Ada Lovelace|***@example.com|***0001\n") || strings.Contains(string(out), "ada@") || strings.Contains(string(out), "900-12") {
		t.Errorf("masked select %q: %v, output %q; want e-mail and SSN masked", hint, err, out)
	}

	// The printed token commands: alice's own token, and her sub-agent's
	// after the delegation chain; the database sees who, through whom.
	out, err = exec.CommandContext(ctx, "sh", "-c", lines[5]+` -X -At -c "select current_setting('pgwarden.subject') || ' ' || application_name from pg_stat_activity where pid = pg_backend_pid()"`).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "alice pgwarden:alice | psql" {
		t.Errorf("psql with alice's token: %v, output %q", err, out)
	}
	out, err = exec.CommandContext(ctx, "sh", "-c", lines[7]+` -X -At -c "select pg_catalog.json_array_length(current_setting('pgwarden.chain')::json)" -c "insert into orders (user_id, amount) values (1, 1)"`).CombinedOutput()
	if !strings.HasPrefix(string(out), "4\n") || !strings.Contains(string(out), "deep-agents-only-read") {
		t.Errorf("psql with the sub-agent's token: %v, output %q; want a 4-entry chain and the insert refused", err, out)
	}

	// The extended protocol, through pgx with the printed parameters.
	conn, err := pgx.Connect(ctx, conninfo+" password="+password)
	if err != nil {
		t.Fatalf("pgx connect: %v", err)
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", 2).Scan(&name); err != nil || name != "Alan Turing" {
		t.Errorf("select by id: %q, %v; want Alan Turing", name, err)
	}
	var id int
	if err := conn.QueryRow(ctx, "INSERT INTO orders (user_id, amount) VALUES ($1, $2) RETURNING id", 3, "12.50").Scan(&id); err != nil || id != demoOrderCount+1 {
		t.Errorf("insert: id %d, %v; want %d", id, err, demoOrderCount+1)
	}
	var total int
	// The demo policy refuses an unbounded DELETE, naming the rule.
	_, err = conn.Exec(ctx, "DELETE FROM orders")
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "no-unbounded-writes") {
		t.Errorf("DELETE without WHERE through the demo: %v; want 42501 by rule no-unbounded-writes", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE user_id = $1", 3).Scan(&total); err != nil || total != demoOrderCount/demoUserCount+1 {
		t.Errorf("orders of user 3: %d, %v; want %d", total, err, demoOrderCount/demoUserCount+1)
	}
	conn.Close(ctx)

	// The sessions are recorded, and the recordings verify while the demo
	// runs.
	out, err = exec.CommandContext(ctx, bin, "sessions", "--config", filepath.Join(demoDir, "pgwarden.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alice") || !strings.Contains(string(out), "sub-agent") {
		t.Errorf("pgwarden sessions on the demo: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, "verify", "--allow-open", "--config", filepath.Join(demoDir, "pgwarden.yaml")).CombinedOutput()
	if err != nil {
		t.Errorf("pgwarden verify on the demo: %v\n%s", err, out)
	}

	// A wrong password is refused.
	if c, err := pgx.Connect(ctx, conninfo+" password=wrong"); err == nil {
		c.Close(ctx)
		t.Error("connected with a wrong password")
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo exited with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo still running 30s after SIGINT")
	}
	if _, err := os.Stat(demoDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo directory %s still exists (%v)", demoDir, err)
	}
	// The logs never show a password.
	for _, secret := range append([]string{password}, regexp.MustCompile(`password: "([^"]+)"`).FindStringSubmatch(string(configText))[1:]...) {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("the demo's log shows a password:\n%s", stderr.String())
		}
	}
}

// readBanner reads n lines from r, failing the test after timeout.
func readBanner(t *testing.T, r io.Reader, n int, timeout time.Duration) []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(r)
		for len(lines) < n && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()
	select {
	case lines := <-got:
		if len(lines) < n {
			t.Fatalf("demo printed %d lines before closing stdout: %q", len(lines), lines)
		}
		return lines
	case <-time.After(timeout):
		t.Fatalf("no banner after %s", timeout)
		return nil
	}
}
