package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/internal/pgtest"
)

// testGateway is a gateway served in-process by serveUntilSignal, as
// `pgwarden serve` does, with its admin API.
type testGateway struct {
	g        *gateway
	addr     string // the proxy's address
	adminURL string // http://host:port
	token    string
	logs     *syncBuffer
	// stop shuts the gateway down as a SIGTERM would and checks that it
	// stopped cleanly; the test's cleanup calls it too (it runs once).
	stop func()
}

// startTestGateway loads text as a configuration (admin section
// included), builds the gateway and serves it until the test ends; then
// it shuts it down as a SIGTERM would and checks that it stopped cleanly.
func startTestGateway(t *testing.T, text, token string) *testGateway {
	t.Helper()
	return startTestGatewayFile(t, writeFile(t, text), token)
}

// startTestGatewayFile is startTestGateway with the configuration file at
// path (relative paths in it are relative to its directory).
func startTestGatewayFile(t *testing.T, path, token string) *testGateway {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, w := range cfg.warnings {
		logger.Warn("config: " + w)
	}
	g, err := buildProxy(t.Context(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, adminLn, err := listen(cfg)
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- serveUntilSignal(g, ln, adminLn, sigs, logger) }()
	stop := sync.OnceFunc(func() {
		sigs <- syscall.SIGTERM
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serveUntilSignal: %v", err)
			}
		case <-time.After(shutdownGrace + 10*time.Second):
			t.Error("the gateway did not stop")
		}
	})
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return &testGateway{g: g, addr: ln.Addr().String(), adminURL: "http://" + adminLn.Addr().String(), token: token, logs: logs, stop: stop}
}

// call sends a request to the admin API with the bearer token auth (none
// when empty) and returns the status and the body.
func (tg *testGateway) call(t *testing.T, method, path, auth string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, tg.adminURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// get calls the admin API with the right token, wants 200 and decodes the
// answer into out.
func (tg *testGateway) get(t *testing.T, path string, out any) {
	t.Helper()
	status, body := tg.call(t, http.MethodGet, path, "Bearer "+tg.token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// sessions returns GET /sessions.
func (tg *testGateway) sessions(t *testing.T) []sessionJSON {
	t.Helper()
	var out struct{ Sessions []sessionJSON }
	tg.get(t, "/sessions", &out)
	return out.Sessions
}

// waitSessions polls GET /sessions until it lists n sessions.
func (tg *testGateway) waitSessions(t *testing.T, n int) []sessionJSON {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ss := tg.sessions(t)
		if len(ss) == n {
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /sessions lists %d sessions, want %d: %+v", len(ss), n, ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connect logs in to the gateway.
func (tg *testGateway) connect(ctx context.Context, user, password, database string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable",
		url.PathEscape(user), url.PathEscape(password), tg.addr, database))
}

// checkLogs fails when the gateway's logs show any of secrets.
func (tg *testGateway) checkLogs(t *testing.T, secrets ...string) {
	t.Helper()
	logs := tg.logs.String()
	for _, s := range append(secrets, tg.token) {
		if strings.Contains(logs, s) {
			t.Errorf("the gateway's logs show the secret %q", s)
		}
	}
}

// pgCode returns err's SQLSTATE, "" when it has none.
func pgCode(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

// startCluster starts a throwaway cluster with the database app.
func startCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	return pgtest.New(t, pgtest.Options{Database: "app"})
}

// TestAdminAPI serves a gateway with static credentials and checks the
// admin API: authentication, the session list, terminate, revoke and
// unrevoke, and the access review of static credentials (a superuser one
// flagged, checked by logging in as it: there is no admin connection).
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	cluster := startCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, "app", `CREATE ROLE app_user LOGIN PASSWORD 'app-user-secret';
		CREATE ROLE app_super LOGIN SUPERUSER PASSWORD 'app-super-secret';`); err != nil {
		t.Fatal(err)
	}
	revocationsFile := filepath.Join(t.TempDir(), "revocations.json")
	configText := fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
  users:
    - {name: carol, password: carol-secret, groups: [dev]}
    - {name: dave, password: dave-secret, groups: [ops]}
credentials:
  static:
    - {user: app_user, password: app-user-secret, groups: [dev]}
    - {user: app_super, password: app-super-secret, groups: [ops]}
policy: {default: allow}
admin: {listen: "127.0.0.1:0", token: %s, revocations_file: %s}
`, cluster.Addr(), testAdminToken, yamlQuote(revocationsFile))
	tg := startTestGateway(t, configText, testAdminToken)

	// Authentication: every route, known or not, wants the token.
	for _, c := range []struct{ method, path, auth string }{
		{"GET", "/sessions", ""},
		{"GET", "/sessions", "Bearer wrong-token-0123456789abc"},
		{"GET", "/sessions", "Bearer " + testAdminToken[:len(testAdminToken)-1]},
		{"GET", "/sessions", "Bearer " + testAdminToken + "x"},
		{"GET", "/sessions", "Basic " + testAdminToken},
		{"GET", "/sessions", testAdminToken},
		{"GET", "/leases", "Bearer"},
		{"POST", "/revocations", ""},
		{"DELETE", "/revocations?subject=carol", "Bearer nope"},
		{"GET", "/no/such/path", ""},
	} {
		status, body := tg.call(t, c.method, c.path, c.auth, nil)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "unauthorized") {
			t.Errorf("%s %s with %q: %d %s; want 401", c.method, c.path, c.auth, status, body)
		}
	}
	if status, _ := tg.call(t, "GET", "/sessions", "bearer "+testAdminToken, nil); status != http.StatusOK {
		t.Errorf("lowercase bearer: %d, want 200", status)
	}
	if status, _ := tg.call(t, "PUT", "/sessions", "Bearer "+testAdminToken, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /sessions: %d, want 405", status)
	}
	if status, _ := tg.call(t, "GET", "/nope", "Bearer "+testAdminToken, nil); status != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", status)
	}

	// A live session is listed.
	conn, err := tg.connect(ctx, "carol", "carol-secret", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	ss := tg.waitSessions(t, 1)
	s := ss[0]
	if s.Subject != "carol" || s.Issuer != "static" || s.Chain == nil || len(s.Chain) != 0 || s.UpstreamUser != "app_user" ||
		s.Lease != "" || s.Database != "app" || s.User != "carol" || s.State != "idle" || s.Statements < 1 ||
		s.LastStatementAt.IsZero() || s.StartedAt.IsZero() || s.ID == "" {
		t.Errorf("session = %+v", s)
	}

	// Terminate.
	if status, body := tg.call(t, "POST", "/sessions/no-such-id/terminate", "Bearer "+testAdminToken, nil); status != http.StatusNotFound {
		t.Errorf("terminate an unknown session: %d %s", status, body)
	}
	status, body := tg.call(t, "POST", "/sessions/"+s.ID+"/terminate", "Bearer "+testAdminToken, map[string]string{"message": "bye from the admin"})
	if status != http.StatusOK || !strings.Contains(string(body), s.ID) {
		t.Fatalf("terminate: %d %s", status, body)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	if pgCode(err) != "57P01" || !strings.Contains(err.Error(), "bye from the admin") {
		t.Errorf("statement after terminate: %v; want FATAL 57P01 with the message", err)
	}
	tg.waitSessions(t, 0)

	// Revoke: the live session ends, new logins are refused.
	conn2, err := tg.connect(ctx, "carol", "carol-secret", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(context.Background())
	tg.waitSessions(t, 1)
	for _, bad := range []any{map[string]string{"issuer": "static"}, map[string]string{"subject": "carol", "colour": "red"}} {
		if status, body := tg.call(t, "POST", "/revocations", "Bearer "+testAdminToken, bad); status != http.StatusBadRequest {
			t.Errorf("POST /revocations %v: %d %s; want 400", bad, status, body)
		}
	}
	status, body = tg.call(t, "POST", "/revocations", "Bearer "+testAdminToken,
		map[string]string{"issuer": "static", "subject": "carol", "reason": "offboarded"})
	if status != http.StatusOK || strings.Join(strings.Fields(string(body)), "") != `{"ended":1}` {
		t.Fatalf("revoke: %d %s; want {\"ended\": 1}", status, body)
	}
	if _, err := conn2.Exec(ctx, "SELECT 1"); pgCode(err) != "28000" {
		t.Errorf("statement after revoke: %v; want FATAL 28000", err)
	}
	if _, err := tg.connect(ctx, "carol", "carol-secret", "app"); pgCode(err) != "28000" || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("login after revoke: %v; want FATAL 28000 ... revoked", err)
	}
	var revs struct{ Revocations []revocationJSON }
	tg.get(t, "/revocations", &revs)
	if len(revs.Revocations) != 1 || revs.Revocations[0].Issuer != "static" || revs.Revocations[0].Subject != "carol" ||
		revs.Revocations[0].Reason != "offboarded" || revs.Revocations[0].Since.IsZero() {
		t.Errorf("revocations = %+v", revs.Revocations)
	}
	// The revocation is saved: a gateway started with the same
	// configuration (as after a restart) keeps carol out.
	saved, err := os.ReadFile(revocationsFile)
	if err != nil || !strings.Contains(string(saved), `"subject": "carol"`) {
		t.Errorf("revocations file: %v\n%s", err, saved)
	}
	restarted := startTestGateway(t, configText, testAdminToken)
	var restartedRevs struct{ Revocations []revocationJSON }
	restarted.get(t, "/revocations", &restartedRevs)
	if len(restartedRevs.Revocations) != 1 || restartedRevs.Revocations[0].Subject != "carol" ||
		!restartedRevs.Revocations[0].Since.Equal(revs.Revocations[0].Since) {
		t.Errorf("revocations after a restart = %+v, want carol's since %s", restartedRevs.Revocations, revs.Revocations[0].Since)
	}
	if _, err := restarted.connect(ctx, "carol", "carol-secret", "app"); pgCode(err) != "28000" {
		t.Errorf("login to the restarted gateway: %v; want FATAL 28000", err)
	}

	// Unrevoke: logins work again.
	if status, _ := tg.call(t, "DELETE", "/revocations?issuer=static", "Bearer "+testAdminToken, nil); status != http.StatusBadRequest {
		t.Errorf("DELETE without subject: %d, want 400", status)
	}
	if status, _ := tg.call(t, "DELETE", "/revocations?issuer=other&subject=carol", "Bearer "+testAdminToken, nil); status != http.StatusNotFound {
		t.Errorf("DELETE another issuer's revocation: %d, want 404", status)
	}
	if status, body := tg.call(t, "DELETE", "/revocations?issuer=static&subject=carol", "Bearer "+testAdminToken, nil); status != http.StatusOK {
		t.Fatalf("unrevoke: %d %s", status, body)
	}
	if status, _ := tg.call(t, "DELETE", "/revocations?issuer=static&subject=carol", "Bearer "+testAdminToken, nil); status != http.StatusNotFound {
		t.Errorf("second unrevoke: %d, want 404", status)
	}
	revs.Revocations = nil
	tg.get(t, "/revocations", &revs)
	if len(revs.Revocations) != 0 {
		t.Errorf("revocations after unrevoke = %+v", revs.Revocations)
	}
	if saved, err := os.ReadFile(revocationsFile); err != nil || strings.TrimSpace(string(saved)) != "[]" {
		t.Errorf("revocations file after unrevoke: %v %q", err, saved)
	}
	conn3, err := tg.connect(ctx, "carol", "carol-secret", "app")
	if err != nil {
		t.Fatalf("login after unrevoke: %v", err)
	}
	defer conn3.Close(context.Background())

	// The access review, static credentials only: app_super is flagged.
	var report reviewReport
	tg.get(t, "/leases", &report)
	if report.StaleAfter != "1h0m0s" || report.GeneratedAt.IsZero() {
		t.Errorf("report = %+v", report)
	}
	rows := map[string]reviewRow{}
	for _, r := range report.Rows {
		rows[r.Kind+" "+r.Role] = r
	}
	if len(report.Rows) != 3 {
		t.Errorf("rows = %+v; want 2 static credentials and carol's session", report.Rows)
	}
	if r := rows["static app_super"]; !r.OverPrivileged || !slices.Contains(r.Reasons, "superuser") || r.CheckError != "" ||
		!slices.Equal(r.Groups, []string{"ops"}) {
		t.Errorf("app_super row = %+v; want over-privileged: superuser", r)
	}
	if r := rows["static app_user"]; r.OverPrivileged || r.CheckError != "" || r.Sessions != 1 || !r.Active {
		t.Errorf("app_user row = %+v; want not over-privileged, one session", r)
	}
	if r := rows["session app_user"]; r.Subject != "carol" || r.OverPrivileged || r.Stale || r.SessionID == "" || r.IdleFor == "" {
		t.Errorf("carol's session row = %+v", r)
	}
	if status, _ := tg.call(t, "GET", "/leases?stale=-1s", "Bearer "+testAdminToken, nil); status != http.StatusBadRequest {
		t.Errorf("stale=-1s: %d, want 400", status)
	}
	tg.checkLogs(t, "app-user-secret", "app-super-secret", "carol-secret")
}
