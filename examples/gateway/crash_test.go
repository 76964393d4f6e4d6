package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
)

// servedProcess is a `pgwarden serve` process.
type servedProcess struct {
	cmd      *exec.Cmd
	exited   <-chan error
	addr     string // the proxy's address
	adminURL string
	stderr   *syncBuffer // everything it logged
}

// startServe runs `pgwarden serve --config path` with env added to the
// environment, and waits until both the proxy and the admin API serve
// (the configuration logs JSON).
func startServe(t *testing.T, ctx context.Context, bin, path string, env ...string) *servedProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cmd.Stderr = w
	sp := &servedProcess{cmd: cmd, stderr: &syncBuffer{}}
	sp.exited = startWatched(t, cmd, w)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's stderr:\n%s", sp.stderr.String())
		}
	})
	logs := make(chan map[string]any, 100)
	go func() {
		defer close(logs)
		sc := bufio.NewScanner(io.TeeReader(r, sp.stderr))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				select {
				case logs <- rec:
				default:
				}
			}
		}
	}()
	for sp.addr == "" || sp.adminURL == "" {
		select {
		case rec, ok := <-logs:
			if !ok {
				t.Fatalf("serve exited before serving:\n%s", sp.stderr.String())
			}
			switch rec["msg"] {
			case "pgwarden: serving":
				sp.addr, _ = rec["addr"].(string)
			case "pgwarden: admin API serving":
				sp.adminURL, _ = rec["addr"].(string)
			}
		case <-ctx.Done():
			t.Fatalf("serve did not log its addresses:\n%s", sp.stderr.String())
		}
	}
	go func() {
		for range logs { // keep reading, so the process never blocks on stderr
		}
	}()
	return sp
}

// review returns the access review from the process's admin API.
func (sp *servedProcess) review(t *testing.T, token string) *reviewReport {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", sp.adminURL+"/leases", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report reviewReport
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /leases: %d, %v", resp.StatusCode, err)
	}
	return &report
}

// readLeaseFile reads the lease file and returns the lease of role.
func readLeaseFile(t *testing.T, path, role string) credstore.Lease {
	t.Helper()
	ls, err := credstore.NewFileLeases(path).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Role == role {
			return l
		}
	}
	t.Fatalf("no lease for %s in %s: %+v", role, path, ls)
	return credstore.Lease{}
}

// roleExists asks the cluster whether role exists.
func roleExists(t *testing.T, ctx context.Context, dsn, role string) bool {
	t.Helper()
	var gone bool
	if err := conn2Super(ctx, dsn, role, &gone); err != nil {
		t.Fatal(err)
	}
	return !gone
}

// TestServeCrashLeftoverRole runs `pgwarden serve` with dynamic
// credentials (leases in a file) and its admin API, gets a just-in-time
// role, kills the gateway with SIGKILL (no cleanup can run), checks the
// role is still there, starts `pgwarden serve` again with the same
// configuration and checks it drops the role and records the lease as
// ended with reason "leftover".
func TestServeCrashLeftoverRole(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cluster := startCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, "app", `CREATE TABLE t (n int);
		CREATE ROLE app_read NOLOGIN; GRANT SELECT ON t TO app_read;`); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
  users:
    - {name: carol, password: carol-secret, groups: [analysts]}
credentials:
  dynamic:
    admin_dsn: "${PGW_TEST_ADMIN_DSN}"
    templates:
      - {groups: [analysts], roles: [app_read]}
    gateway_id: crash-test
    lease_store: {file: leases.json}
policy: {default: allow}
admin: {listen: "127.0.0.1:0", token: "${PGW_TEST_ADMIN_TOKEN}"}
log: {format: json}
`, cluster.Addr()))
	leaseFile := filepath.Join(filepath.Dir(path), "leases.json")
	superDSN := cluster.SuperConnString("app")
	env := []string{"PGW_TEST_ADMIN_DSN=" + superDSN, "PGW_TEST_ADMIN_TOKEN=" + testAdminToken}

	first := startServe(t, ctx, bin, path, env...)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", first.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var role string
	if err := conn.QueryRow(ctx, "SELECT current_user FROM (SELECT count(*) FROM t) c").Scan(&role); err != nil {
		t.Fatal(err)
	}
	// serve serves the admin API: the lease is in the review.
	if r := leaseRow(t, first.review(t, testAdminToken), role); !r.Active || r.Subject != "carol" || r.Gateway != "crash-test" {
		t.Errorf("lease row = %+v", r)
	}
	if l := readLeaseFile(t, leaseFile, role); !l.Active() {
		t.Fatalf("lease before the crash = %+v, want active", l)
	}

	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	if err := <-first.exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("serve exited with %v, want killed", err)
	}
	if !roleExists(t, ctx, superDSN, role) {
		t.Fatal("the role is gone after SIGKILL; the test cannot tell a restart's cleanup from it")
	}
	if l := readLeaseFile(t, leaseFile, role); !l.Active() {
		t.Fatalf("lease after the crash = %+v, want still active", l)
	}

	second := startServe(t, ctx, bin, path, env...)
	for roleExists(t, ctx, superDSN, role) {
		select {
		case <-ctx.Done():
			t.Fatalf("the leftover role %s still exists after the restart", role)
		case <-time.After(100 * time.Millisecond):
		}
	}
	l := readLeaseFile(t, leaseFile, role)
	if l.Active() || l.EndReason != "leftover" || l.Identity.Subject != "carol" {
		t.Errorf("lease after the restart = %+v, want ended, reason leftover", l)
	}
	if r := leaseRow(t, second.review(t, testAdminToken), role); r.Active || r.EndReason != "leftover" {
		t.Errorf("lease row after the restart = %+v", r)
	}

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-second.exited; err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
	}
	for _, sp := range []*servedProcess{first, second} {
		logs := sp.stderr.String()
		for _, secret := range []string{testAdminToken, cluster.Password, "carol-secret"} {
			if strings.Contains(logs, secret) {
				t.Errorf("serve logged the secret %q", secret)
			}
		}
	}
	if !strings.Contains(second.stderr.String(), `"reason":"leftover"`) {
		t.Errorf("the restart did not log the leftover lease's end")
	}
}
