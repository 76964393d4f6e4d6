package main

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// approveRule is a policy with one rule of verdict approve.
const approveRule = `policy:
  default: allow
  rules:
    - {name: deletes, kinds: [delete], verdict: approve, approve: {approvers: [approvers]}}
`

// withApprovals returns minimal with approveRule and the approvals
// section text.
func withApprovals(approvals string) string {
	return strings.Replace(minimal, "policy:\n  default: allow\n", approveRule, 1) + approvals
}

func TestApprovalsConfig(t *testing.T) {
	t.Parallel()
	// Defaults: memory, or postgres when a connection string is given.
	cfg, err := loadConfig(writeFile(t, withApprovals("approvals: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Approvals.Store != approvalsMemory {
		t.Errorf("store = %q, want memory", cfg.Approvals.Store)
	}
	cfg, err = loadConfig(writeFile(t, withApprovals(`approvals:
  postgres: "host=db user=gw password=approvals-db-secret dbname=approvals"
  table: gw.approvals
  webhook:
    url: https://hooks.example.com/T000/B000/webhook-url-secret
    headers: {Authorization: "Bearer webhook-header-secret", X-Team: dba}
    timeout: 2s
`)))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Approvals
	if a.Store != approvalsPostgres || a.Table != "gw.approvals" || len(a.Webhook.Headers) != 2 {
		t.Errorf("approvals = %+v", a)
	}
	// The secrets print as REDACTED.
	if s := sprintAll(a) + sprintAll(*a.Webhook); strings.Contains(s, "approvals-db-secret") ||
		strings.Contains(s, "webhook-url-secret") || strings.Contains(s, "webhook-header-secret") {
		t.Errorf("the approvals section prints a secret:\n%s", s)
	}
	if _, err := checkProxy(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("checkProxy: %v", err)
	}

	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"unknown store", "approvals: {store: s3}\n", []string{"line 13: approvals.store: must be memory or postgres"}},
		{"postgres store without dsn", "approvals: {store: postgres}\n", []string{"approvals.postgres: is required with store postgres"}},
		{"memory store with dsn", "approvals: {store: memory, postgres: \"host=db\"}\n", []string{"approvals.postgres: only applies to store postgres"}},
		{"bad dsn", "approvals: {postgres: \"postgres://gw:approvals-db-secret@db:notaport/x\"}\n", []string{"approvals.postgres: is not a valid connection string"}},
		{"table without postgres", "approvals: {table: approvals}\n", []string{"approvals.table: only applies to store postgres"}},
		{"bad table", "approvals: {postgres: \"host=db\", table: Approvals-Table}\n", []string{"approvals.table: must be name or schema.name"}},
		{"unknown key", "approvals: {stor: memory}\n", []string{"approvals.stor: unknown key stor"}},
		{"webhook without url", "approvals:\n  webhook: {timeout: 1s}\n", []string{"line 14: approvals.webhook.url: is required"}},
		{"webhook not a url", "approvals:\n  webhook: {url: \"hooks.example.com/x\"}\n", []string{"approvals.webhook.url: must be an https URL"}},
		{"webhook http off loopback", "approvals:\n  webhook: {url: \"http://hooks.example.com/webhook-url-secret\"}\n",
			[]string{"approvals.webhook.url: must be https (http is only accepted on loopback)"}},
		{"webhook with user info", "approvals:\n  webhook: {url: \"https://u:webhook-url-secret@hooks.example.com/\"}\n",
			[]string{"approvals.webhook.url: must not contain a user name or password"}},
		{"webhook bad header name", "approvals:\n  webhook: {url: \"https://hooks.example.com/\", headers: {\"X Token\": webhook-header-secret}}\n",
			[]string{"approvals.webhook.headers.X Token: is not a valid HTTP header name"}},
		{"webhook reserved header", "approvals:\n  webhook: {url: \"https://hooks.example.com/\", headers: {content-type: text/plain}}\n",
			[]string{"approvals.webhook.headers.content-type: is set by the gateway"}},
		{"webhook empty header", "approvals:\n  webhook: {url: \"https://hooks.example.com/\", headers: {X-Token: \"\"}}\n",
			[]string{"approvals.webhook.headers.X-Token: is empty"}},
		{"webhook timeout", "approvals:\n  webhook: {url: \"https://hooks.example.com/\", timeout: 1h}\n",
			[]string{"approvals.webhook.timeout: must be at most 1m0s"}},
		{"webhook negative timeout", "approvals:\n  webhook: {url: \"https://hooks.example.com/\", timeout: -1s}\n",
			[]string{"approvals.webhook.timeout"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, withApprovals(c.text)))
			if err == nil {
				t.Fatalf("loadConfig succeeded; want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{"approvals-db-secret", "webhook-url-secret", "webhook-header-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret %q:\n%v", secret, err)
				}
			}
		})
	}
}

func TestApprovalsConfigWarnings(t *testing.T) {
	t.Parallel()
	warnings := func(text string) []string {
		t.Helper()
		cfg, err := loadConfig(writeFile(t, text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.warnings
	}
	has := func(ws []string, want string) bool {
		return slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, want) })
	}
	// verdict approve without an approvals section: refused, and said so.
	ws := warnings(strings.Replace(minimal, "policy:\n  default: allow\n", approveRule, 1))
	if !has(ws, "line 12: policy.rules[0].verdict: is approve, but there is no approvals section: the gateway refuses these statements") {
		t.Errorf("warnings = %q", ws)
	}
	// An approvals section with nothing to approve.
	if ws := warnings(minimal + "approvals: {}\n"); !has(ws, "approvals: no policy rule has verdict approve") {
		t.Errorf("warnings = %q", ws)
	}
	// No approvers: anyone may decide.
	open := strings.Replace(withApprovals("approvals: {}\n"), "approve: {approvers: [approvers]}", "approve: {mode: defer}", 1)
	if ws := warnings(open); !has(ws, "policy.rules[0]: verdict approve without approve.approvers") {
		t.Errorf("warnings = %q", ws)
	}
	// Memory and no admin API: nobody can decide.
	if ws := warnings(withApprovals("approvals: {}\n")); !has(ws, "store memory and no admin section: nobody can decide") {
		t.Errorf("warnings = %q", ws)
	}
	// A read_only rule beside approve rules: approved writes would fail
	// on the read-only server session.
	readOnly := strings.Replace(withApprovals("approvals: {}\n"), "    - {name: deletes,", "    - {name: ro, read_only: true}\n    - {name: deletes,", 1)
	if ws := warnings(readOnly); !has(ws, "policy.rules[0].read_only: starts sessions read-only on the server, so a write that policy.rules[1] sends for approval fails there (SQLSTATE 25006)") {
		t.Errorf("warnings = %q", ws)
	}
	// With the admin API and approvers, no approvals warning.
	ws = warnings(withApprovals("approvals: {}\nadmin: {token: " + testAdminToken + ", revocations_file: r.json}\n"))
	if has(ws, "approvals") || has(ws, "approve") {
		t.Errorf("warnings = %q, want none about approvals", ws)
	}
}

// TestApproverAuth checks the approver credentials the admin API
// accepts, without a server: static users' passwords (SCRAM with
// auth.Static, both with a password and a verifier in the file), and the
// refusals.
func TestApproverAuth(t *testing.T) {
	t.Parallel()
	verifier, err := auth.Verifier(session.NewSecret("bob-secret"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(writeFile(t, `upstream: {address: 127.0.0.1:5432}
auth:
  users:
    - {name: alice, password: alice-secret, groups: [dev]}
    - {name: bob, scram: "`+verifier+`", groups: [approvers]}
credentials:
  static: [{user: app, password: app-secret}]
policy: {default: allow}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, approvers, err := buildAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	basic := func(user, password string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
	for _, c := range []struct {
		user, password string
		groups         []string
	}{{"alice", "alice-secret", []string{"dev"}}, {"bob", "bob-secret", []string{"approvers"}}} {
		id, err := approvers.identify(t.Context(), basic(c.user, c.password))
		if err != nil || id.Subject != c.user || id.Issuer != auth.StaticIssuer || !slices.Equal(id.Groups, c.groups) {
			t.Errorf("%s: %+v, %v", c.user, id, err)
		}
	}
	for _, c := range []struct {
		name, header string
		want         error
	}{
		{"wrong password", basic("bob", "alice-secret"), auth.ErrInvalidCredentials},
		{"unknown user", basic("mallory", "bob-secret"), auth.ErrInvalidCredentials},
		{"no header", "", errNoApproverCredentials},
		{"not base64", "Basic bob:bob-secret", errNoApproverCredentials},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("bob")), errNoApproverCredentials},
		{"bearer without oidc", "Bearer eyJ.eyJ.sig", errNoApproverCredentials},
		{"other scheme", "Digest bob", errNoApproverCredentials},
	} {
		_, err := approvers.identify(t.Context(), c.header)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret")) {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

// TestExampleConfigApprovals uncomments the example's rule with verdict
// approve, its approvals section and admin (to decide), and loads the
// result, without a warning about approvals.
func TestExampleConfigApprovals(t *testing.T) {
	for k, v := range map[string]string{"APP_RO_PASSWORD": "app-ro-secret", "APP_OPS_PASSWORD": "app-ops-secret",
		"BOB_PASSWORD": "bob-secret", "IDP_INTROSPECTION_SECRET": "introspection-secret", "PGWARDEN_ADMIN_TOKEN": testAdminToken,
		"PGWARDEN_APPROVALS_DSN": "host=127.0.0.1 user=pgwarden dbname=approvals", "PGWARDEN_APPROVALS_WEBHOOK": "https://hooks.example.com/x",
		"PGWARDEN_APPROVALS_WEBHOOK_TOKEN": "webhook-token"} {
		t.Setenv(k, v)
	}
	cfg, _ := loadExampleUncommented(t, commentedBlock{"# admin:", "#   "}, commentedBlock{"# approvals:", "#   "},
		commentedBlock{"    # - name: deletes-need-approval", "    #   "})
	a := cfg.Approvals
	if r := cfg.Policy.Rules[len(cfg.Policy.Rules)-1]; r.Name != "deletes-need-approval" || r.Verdict != "approve" || r.Approve == nil ||
		r.Approve.Grant != "30m" || !slices.Equal(r.Approve.Approvers, []string{"ops"}) {
		t.Errorf("the approve rule = %+v", r)
	}
	if a == nil || a.Store != approvalsPostgres || a.Table != "pgwarden_approvals" || a.Webhook == nil ||
		a.Webhook.Headers["Authorization"].Reveal() != "Bearer webhook-token" || time.Duration(a.Webhook.Timeout) != 5*time.Second {
		t.Errorf("approvals = %+v", a)
	}
	for _, w := range cfg.warnings {
		if strings.Contains(w, "approv") {
			t.Errorf("warning: %s", w)
		}
	}
	if _, err := checkProxy(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("checkProxy: %v", err)
	}
}
