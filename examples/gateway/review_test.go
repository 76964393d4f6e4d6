package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/internal/devidp"
)

// leaseRow returns the report's lease row for role.
func leaseRow(t *testing.T, report *reviewReport, role string) reviewRow {
	t.Helper()
	for _, r := range report.Rows {
		if r.Kind == rowLease && r.Role == role {
			return r
		}
	}
	t.Fatalf("no lease row for %s in %+v", role, report.Rows)
	return reviewRow{}
}

// chainSubjects returns the subjects of a chain.
func chainSubjects(chain []actorJSON) []string {
	var out []string
	for _, a := range chain {
		out = append(out, a.Subject)
	}
	return out
}

// TestReviewDynamic serves a gateway with dynamic credentials (leases in
// the admin database's table), OIDC identities with a delegation chain and
// a superuser static credential, and checks the session list, the access
// review (chain, templates, staleness, over-privilege through the admin
// connection), `pgwarden review` as a table and as JSON, and that revoking
// an agent of the chain ends the session and its lease with reason
// "revoked".
func TestReviewDynamic(t *testing.T) {
	t.Parallel()
	cluster := startCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, "app", `CREATE TABLE t (n int); INSERT INTO t VALUES (1);
		CREATE ROLE app_read NOLOGIN; GRANT SELECT ON t TO app_read;
		CREATE ROLE app_build NOLOGIN CREATEDB; GRANT SELECT ON t TO app_build;
		CREATE ROLE app_super LOGIN SUPERUSER PASSWORD 'app-super-secret';`); err != nil {
		t.Fatal(err)
	}
	idp, err := devidp.Start(t.Context(), devidp.Config{
		Users: []devidp.User{
			{Subject: "alice", Groups: []string{"analysts"}},
			{Subject: "bob", Groups: []string{"builders"}},
		},
		Clients: []devidp.Client{{ID: "ci-job"}, {ID: "agent"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	adminDSN := cluster.SuperConnString("app")
	tg := startTestGateway(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
  users:
    - {name: dave, password: dave-secret, groups: [ops]}
  oidc: {issuer: %s, audience: %s}
  allow_cleartext_without_tls: true
credentials:
  static:
    - {user: app_super, password: app-super-secret, groups: [ops]}
  dynamic:
    admin_dsn: %s
    templates:
      - {groups: [analysts], roles: [app_read]}
      - {groups: [builders], roles: [app_build]}
    ttl: 10m
    gateway_id: review-test
policy: {default: allow}
admin: {listen: "127.0.0.1:0", token: %s}
`, cluster.Addr(), yamlQuote(idp.Issuer()), yamlQuote(idp.Audience()), yamlQuote(adminDSN), testAdminToken), testAdminToken)

	// alice's access, delegated to ci-job, then to agent.
	tokens, err := idp.Chain(ctx, "alice", "ci-job", "agent")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tg.connect(ctx, "token", tokens[2], "app")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var role string
	if err := conn.QueryRow(ctx, "SELECT current_user FROM t").Scan(&role); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(role, "pgw_") {
		t.Fatalf("current_user = %q, want a pgw_ lease", role)
	}
	bobToken, err := idp.PersonToken(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bobConn, err := tg.connect(ctx, "token", bobToken, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer bobConn.Close(context.Background())
	var bobRole string
	if err := bobConn.QueryRow(ctx, "SELECT current_user").Scan(&bobRole); err != nil {
		t.Fatal(err)
	}

	// The session list shows the chain and the lease.
	var alice sessionJSON
	for _, s := range tg.waitSessions(t, 2) {
		if s.Subject == "alice" {
			alice = s
		}
	}
	if !slices.Equal(chainSubjects(alice.Chain), []string{"ci-job", "agent"}) || alice.Lease != role || alice.UpstreamUser != role {
		t.Errorf("alice's session = %+v; want chain ci-job > agent and lease %s", alice, role)
	}

	// Idle for 2s: stale with stale=1s, not with the default 1h.
	time.Sleep(2 * time.Second)
	var report reviewReport
	tg.get(t, "/leases?stale=1s", &report)
	r := leaseRow(t, &report, role)
	if !r.Active || r.Subject != "alice" || r.Issuer != idp.Issuer() || !slices.Equal(chainSubjects(r.Chain), []string{"ci-job", "agent"}) ||
		!slices.Equal(r.Templates, []string{"app_read"}) || r.Gateway != "review-test" || r.Database != "app" ||
		r.SessionID != alice.ID || r.LastStatementAt.IsZero() || r.IssuedAt.IsZero() ||
		r.ExpiresAt.Sub(r.IssuedAt) != 10*time.Minute || !r.Stale || r.OverPrivileged || r.CheckError != "" {
		t.Errorf("alice's lease row = %+v; want active, chain ci-job > agent, app_read, stale, not over-privileged", r)
	}
	b := leaseRow(t, &report, bobRole)
	// CREATEDB is not inherited, but a member can SET ROLE to use it. The
	// template's reason is not repeated.
	if !b.OverPrivileged || !slices.Equal(b.Reasons, []string{"createdb (through app_build)"}) || b.CheckError != "" {
		t.Errorf("bob's lease row = %+v; want over-privileged: createdb (through app_build), once", b)
	}
	var super reviewRow
	for _, row := range report.Rows {
		if row.Kind == rowStatic && row.Role == "app_super" {
			super = row
		}
	}
	if !super.OverPrivileged || !slices.Contains(super.Reasons, "superuser") || super.CheckError != "" {
		t.Errorf("app_super row = %+v; want over-privileged: superuser", super)
	}
	report = reviewReport{} // json.Unmarshal would keep the old rows' fields
	tg.get(t, "/leases", &report)
	if r := leaseRow(t, &report, role); r.Stale {
		t.Errorf("with the default threshold, alice's lease row is stale: %+v", r)
	}

	// pgwarden review: a table, and JSON.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI([]string{"review", "--admin", tg.adminURL, "--token-file", tokenFile, "--stale", "1s"}, "")
	if code != exitOK {
		t.Fatalf("pgwarden review: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "Access review at ") || !strings.Contains(lines[0], "2 leases (2 active), 1 static credentials") ||
		!strings.HasPrefix(lines[1], "KIND ") {
		t.Fatalf("pgwarden review printed:\n%s", stdout)
	}
	flags := strings.Index(lines[1], "FLAGS")
	for _, want := range []struct{ line, has string }{
		{role, "alice > ci-job > agent"}, {role, "app_read"}, {role, "STALE"},
		{bobRole, "OVER-PRIVILEGED: createdb"},
		{"app_super", "OVER-PRIVILEGED: superuser"}, {"app_super", "groups=ops"},
	} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, " "+want.line+" ") })
		if i < 0 || !strings.Contains(lines[i], want.has) {
			t.Errorf("no line with %s and %q in:\n%s", want.line, want.has, stdout)
		} else if strings.Contains(want.has, "OVER") || want.has == "STALE" {
			// The flags start in the FLAGS column.
			if got := strings.Index(lines[i], want.has[:5]); got < flags {
				t.Errorf("flags of %s not aligned under FLAGS:\n%s", want.line, stdout)
			}
		}
	}
	if strings.Contains(stdout, "OVER-PRIVILEGED") && strings.Contains(lines[slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, role) })], "OVER-PRIVILEGED") {
		t.Errorf("alice's lease is flagged over-privileged:\n%s", stdout)
	}
	code, stdout, stderr = runCLI([]string{"review", "--admin", tg.adminURL + "/", "--token-file", tokenFile, "--json", "--stale", "1s"}, "")
	var fromJSON reviewReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &fromJSON) != nil {
		t.Fatalf("pgwarden review --json: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	if r := leaseRow(t, &fromJSON, role); !r.Stale || !slices.Equal(chainSubjects(r.Chain), []string{"ci-job", "agent"}) || fromJSON.StaleAfter != "1s" {
		t.Errorf("JSON lease row = %+v", r)
	}
	os.WriteFile(tokenFile, []byte("wrong-token-0123456789\n"), 0o600)
	if code, _, stderr := runCLI([]string{"review", "--admin", tg.adminURL, "--token-file", tokenFile}, ""); code != exitError ||
		!strings.Contains(stderr, "401 Unauthorized") || strings.Contains(stderr, "wrong-token") {
		t.Errorf("review with a wrong token: exit %d, stderr %q", code, stderr)
	}

	// Revoking bob's lease ends his session and the lease, not bob.
	if status, _ := tg.call(t, "POST", "/leases/pgw_nosuchrole/revoke", "Bearer "+testAdminToken, nil); status != 404 {
		t.Errorf("revoke an unknown lease: %d, want 404", status)
	}
	status, body := tg.call(t, "POST", "/leases/"+bobRole+"/revoke", "Bearer "+testAdminToken, map[string]string{"reason": "stale"})
	if status != 200 || strings.Join(strings.Fields(string(body)), "") != `{"session_ended":true}` {
		t.Fatalf("revoke bob's lease: %d %s", status, body)
	}
	if _, err := bobConn.Exec(ctx, "SELECT 1"); pgCode(err) != "28000" {
		t.Errorf("bob's session after revoking its lease: %v; want FATAL 28000", err)
	}
	if exists := roleExists(t, ctx, cluster.SuperConnString("app"), bobRole); exists {
		t.Error("bob's revoked lease's role still exists when the API answered")
	}
	report = reviewReport{}
	tg.get(t, "/leases", &report)
	if r := leaseRow(t, &report, bobRole); r.Active || r.EndReason != "revoked" {
		t.Errorf("bob's lease after revoking it = %+v", r)
	}
	bobConn2, err := tg.connect(ctx, "token", bobToken, "app")
	if err != nil {
		t.Fatalf("bob's login after his lease was revoked: %v", err)
	}
	bobConn2.Close(ctx)

	// Revoking an agent of the chain ends alice's session and its lease.
	status, body = tg.call(t, "POST", "/revocations", "Bearer "+testAdminToken, map[string]string{"subject": "ci-job", "reason": "compromised"})
	if status != 200 || !strings.Contains(string(body), `"ended": 1`) {
		t.Fatalf("revoke ci-job: %d %s", status, body)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); pgCode(err) != "28000" {
		t.Errorf("alice's session after revoking ci-job: %v; want FATAL 28000", err)
	}
	report = reviewReport{}
	tg.get(t, "/leases?stale=1s", &report)
	if r := leaseRow(t, &report, role); r.Active || r.EndReason != "revoked" || r.EndedAt.IsZero() || r.Stale || r.SessionID != "" {
		t.Errorf("alice's lease after the revocation = %+v; want ended, reason revoked", r)
	}
	if roleExists(t, ctx, cluster.SuperConnString("app"), role) {
		t.Error("the revoked lease's role still exists when the API answered")
	}
	if _, err := tg.connect(ctx, "token", tokens[1], "app"); pgCode(err) != "28000" {
		t.Errorf("ci-job's own token after the revocation: %v; want FATAL 28000", err)
	}
	tg.checkLogs(t, "app-super-secret", tokens[2], cluster.Password)
}

// conn2Super reports in gone whether role no longer exists, asking as the
// superuser.
func conn2Super(ctx context.Context, dsn, role string, gone *bool) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
		return err
	}
	*gone = n == 0
	return nil
}
