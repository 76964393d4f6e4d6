package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// dynamicSection is a credentials.dynamic section with every key set, to
// append under "credentials:".
const dynamicSection = `  dynamic:
    admin_dsn: "${PGW_TEST_ADMIN_DSN}"
    templates:
      - {groups: [analysts], roles: [app_read]}
      - {subjects: [bob, ci-bot], roles: [app_read, app_write]}
    ttl: 15m
    prefix: jit_
    connection_limit: 2
    gateway_id: gw-1
    lease_store: {file: state/leases.json}
    allow_privileged_templates: false
    sweep_interval: 30s
`

// adminSection is an admin section with every key set.
const adminSection = `admin:
  listen: 127.0.0.1:7480
  token: "${PGW_TEST_ADMIN_TOKEN}"
  revocations_file: state/revocations.json
`

// testAdminToken is the admin token of the tests.
const testAdminToken = "admin-token-0123456789abcdef"

// withDynamic returns minimal with the credentials.dynamic section
// dynamic added (after the static entries).
func withDynamic(dynamic string) string {
	return strings.Replace(minimal, "policy:\n", dynamic+"policy:\n", 1)
}

// TestLoadDynamicAndAdmin loads credentials.dynamic and admin with every
// key set.
func TestLoadDynamicAndAdmin(t *testing.T) {
	t.Setenv("PGW_TEST_ADMIN_DSN", "host=db.internal user=pgwarden password=Adm1n-Passw0rd dbname=app")
	t.Setenv("PGW_TEST_ADMIN_TOKEN", testAdminToken)
	path := writeFile(t, withDynamic(dynamicSection)+adminSection)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(otherWarnings(cfg)) != 0 {
		t.Errorf("warnings = %q, want none", otherWarnings(cfg))
	}
	d := cfg.Credentials.Dynamic
	if d == nil || d.AdminDSN.Reveal() != "host=db.internal user=pgwarden password=Adm1n-Passw0rd dbname=app" {
		t.Fatalf("credentials.dynamic = %+v", d)
	}
	if got := d.LeaseStore.File; got != envString(filepath.Join(filepath.Dir(path), "state/leases.json")) {
		t.Errorf("lease_store.file = %q, want it relative to the config file", got)
	}
	if cfg.Admin == nil || cfg.Admin.Listen != "127.0.0.1:7480" || cfg.Admin.Token.Reveal() != testAdminToken ||
		cfg.Admin.RevocationsFile != envString(filepath.Join(filepath.Dir(path), "state/revocations.json")) {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	leases := credstore.NewFileLeases("x")
	dc := dynamicStoreConfig(cfg, leases, slog.New(slog.DiscardHandler))
	if dc.AdminDSN.Reveal() != d.AdminDSN.Reveal() || dc.TTL != 15*time.Minute || dc.Prefix != "jit_" ||
		dc.ConnectionLimit != 2 || dc.GatewayID != "gw-1" || dc.Leases != leases || dc.AllowPrivilegedTemplates ||
		dc.SweepInterval != 30*time.Second || dc.Logger == nil {
		t.Errorf("DynamicConfig = %+v", dc)
	}
	if len(dc.Templates) != 2 || dc.Templates[0].Groups[0] != "analysts" || dc.Templates[0].Roles[0] != "app_read" ||
		len(dc.Templates[1].Subjects) != 2 || len(dc.Templates[1].Roles) != 2 || dc.Templates[1].Groups != nil {
		t.Errorf("templates = %+v", dc.Templates)
	}
	// The configuration prints without the admin DSN's password or the
	// token. (Not with %s on the whole config: see
	// TestKnownBugSecretPrintedByBadVerb.)
	dump := fmt.Sprintf("%v\n%+v\n%#v\n", cfg, cfg, cfg) + sprintAll(*d) + sprintAll(*cfg.Admin) + sprintAll(dc)
	for _, s := range []string{"Adm1n-Passw0rd", testAdminToken} {
		if strings.Contains(dump, s) {
			t.Errorf("printing the config shows %q", s)
		}
	}
}

// TestDynamicAndAdminDefaults checks the defaults of the new sections,
// and that dynamic credentials alone are enough.
func TestDynamicAndAdminDefaults(t *testing.T) {
	text := strings.Replace(minimal, "  static:\n    - {user: app_ro, password: app-secret, groups: [analysts]}\n",
		"  dynamic:\n    admin_dsn: postgres://pgwarden@127.0.0.1/app\n    templates: [{roles: [app_read]}]\n", 1) +
		"admin: {token: " + testAdminToken + "}\n"
	cfg, err := loadConfig(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if len(otherWarnings(cfg)) != 1 || !strings.Contains(otherWarnings(cfg)[0], "line 12: admin: no revocations_file: identities revoked through the admin API get back in when the gateway restarts") {
		t.Errorf("warnings = %q, want one about the revocations file (alice matches the template)", otherWarnings(cfg))
	}
	if cfg.Credentials.Static != nil || cfg.Credentials.Dynamic.LeaseStore != nil {
		t.Errorf("credentials = %+v", cfg.Credentials)
	}
	if cfg.Admin.Listen != defaultAdminListen || cfg.Admin.RevocationsFile != "" {
		t.Errorf("admin = %+v, want listen %q", cfg.Admin, defaultAdminListen)
	}
	host, _ := os.Hostname()
	dc := dynamicStoreConfig(cfg, nil, nil)
	if dc.TTL != time.Hour || dc.Prefix != "pgw_" || dc.ConnectionLimit != 1 || dc.GatewayID != host ||
		dc.Leases != nil || dc.AllowPrivilegedTemplates || dc.SweepInterval != time.Minute {
		t.Errorf("defaults = %+v", dc)
	}
	if len(dc.Templates) != 1 || dc.Templates[0].Groups != nil || dc.Templates[0].Subjects != nil {
		t.Errorf("templates = %+v", dc.Templates)
	}
}

// TestDynamicWarnings checks the warnings about settings that are allowed
// but probably not intended.
func TestDynamicWarnings(t *testing.T) {
	text := strings.Replace(minimal, "{user: app_ro, password: app-secret, groups: [analysts]}", "{user: app_ro, password: app-secret}", 1)
	text = strings.Replace(text, "policy:\n", `  dynamic:
    admin_dsn: host=127.0.0.1
    allow_privileged_templates: true
    templates:
      - {roles: [app_read]}
      - {groups: [ops], roles: [app_ops]}
policy:
`, 1) + "admin:\n  listen: 0.0.0.0:6480\n  token: " + testAdminToken + "\n"
	cfg, err := loadConfig(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"line 8: credentials.static[0]: this entry matches every identity, so credentials.dynamic is never used",
		"line 11: credentials.dynamic.allow_privileged_templates: template roles may be superuser",
		"line 13: credentials.dynamic.templates[0]: this template matches every identity, so the templates after it are never used",
		"line 18: admin.listen: the admin API is not on loopback and has no TLS",
		"line 17: admin: no revocations_file",
	}
	if len(otherWarnings(cfg)) != len(want) {
		t.Fatalf("warnings = %q, want %d", otherWarnings(cfg), len(want))
	}
	for _, w := range want {
		found := false
		for _, got := range otherWarnings(cfg) {
			found = found || strings.Contains(got, w)
		}
		if !found {
			t.Errorf("no warning %q in %q", w, otherWarnings(cfg))
		}
	}

	// A user that neither a static entry nor a template is for is warned
	// about.
	text = strings.Replace(withDynamic("  dynamic:\n    admin_dsn: host=127.0.0.1\n    templates: [{groups: [ops], roles: [r]}]\n"),
		"groups: [analysts]}\ncredentials", "groups: [sales]}\ncredentials", 1)
	cfg, err = loadConfig(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if len(otherWarnings(cfg)) != 1 || !strings.Contains(otherWarnings(cfg)[0], "auth.users[0]: this user matches no credentials.static entry or credentials.dynamic template") {
		t.Errorf("warnings = %q", otherWarnings(cfg))
	}
}

// TestDynamicAndAdminErrors checks each mistake in the new sections is
// refused with its key path and line.
func TestDynamicAndAdminErrors(t *testing.T) {
	dyn := func(body string) string { return withDynamic("  dynamic:\n" + body) }
	const dsn = "    admin_dsn: host=127.0.0.1\n"
	const tmpl = "    templates: [{roles: [app_read]}]\n"
	tests := []struct {
		name, text string
		want       []string
	}{
		{"no admin_dsn", dyn(tmpl), []string{"line 9: credentials.dynamic.admin_dsn: is required"}},
		{"no templates", dyn(dsn), []string{"line 9: credentials.dynamic.templates: at least one template is required"}},
		{"empty templates", dyn(dsn + "    templates: []\n"), []string{"line 11: credentials.dynamic.templates: at least one template is required"}},
		{"template without roles", dyn(dsn + "    templates: [{groups: [analysts]}]\n"),
			[]string{"line 11: credentials.dynamic.templates[0].roles: at least one role is required"}},
		{"empty role", dyn(dsn + "    templates: [{roles: ['']}]\n"), []string{"line 11: credentials.dynamic.templates[0].roles[0]: is empty"}},
		{"unknown template key", dyn(dsn + "    templates: [{role: [x]}]\n"),
			[]string{"line 11: credentials.dynamic.templates[0].role: unknown key role (see the YAML reference)"}},
		{"zero ttl", dyn(dsn + tmpl + "    ttl: 0s\n"), []string{"line 12: credentials.dynamic.ttl: must be at least 1s"}},
		{"short ttl", dyn(dsn + tmpl + "    ttl: 500ms\n"), []string{"line 12: credentials.dynamic.ttl: must be at least 1s"}},
		{"negative ttl", dyn(dsn + tmpl + "    ttl: -1h\n"), []string{"line 12: credentials.dynamic.ttl: negative duration"}},
		{"uppercase prefix", dyn(dsn + tmpl + "    prefix: JIT_\n"), []string{"line 12: credentials.dynamic.prefix: must start with a lowercase letter"}},
		{"prefix with a dash", dyn(dsn + tmpl + "    prefix: jit-\n"), []string{"line 12: credentials.dynamic.prefix: must be lowercase letters, digits and underscores"}},
		{"prefix with a digit first", dyn(dsn + tmpl + "    prefix: 9x\n"), []string{"line 12: credentials.dynamic.prefix: must start with a lowercase letter"}},
		{"reserved prefix", dyn(dsn + tmpl + "    prefix: pg_jit_\n"), []string{"line 12: credentials.dynamic.prefix: must not start with pg_"}},
		{"long prefix", dyn(dsn + tmpl + "    prefix: " + strings.Repeat("a", 41) + "\n"), []string{"line 12: credentials.dynamic.prefix: must be at most 40 bytes"}},
		{"negative connection limit", dyn(dsn + tmpl + "    connection_limit: -1\n"), []string{"line 12: credentials.dynamic.connection_limit: must not be negative"}},
		{"lease store without file", dyn(dsn + tmpl + "    lease_store: {}\n"), []string{"line 12: credentials.dynamic.lease_store.file: is required"}},
		{"lease store table", dyn(dsn + tmpl + "    lease_store: {table: x}\n"), []string{"line 12: credentials.dynamic.lease_store.table: unknown key table"}},
		{"bad boolean", dyn(dsn + tmpl + "    allow_privileged_templates: yes please\n"), []string{"line 12: credentials.dynamic.allow_privileged_templates: not a boolean"}},
		{"bad sweep interval", dyn(dsn + tmpl + "    sweep_interval: often\n"), []string{"line 12: credentials.dynamic.sweep_interval: invalid duration"}},
		{"no credentials at all", strings.Replace(minimal, "  static:\n    - {user: app_ro, password: app-secret, groups: [analysts]}\n", "  static: []\n", 1),
			[]string{"credentials.static: no database credentials are configured (credentials.static or credentials.dynamic)"}},
		{"admin without token", minimal + "admin: {listen: 127.0.0.1:6480}\n", []string{"line 11: admin.token: is required"}},
		{"empty admin section", minimal + "admin: {}\n", []string{"line 11: admin.token: is required"}},
		{"short admin token", minimal + "admin: {token: short-token}\n", []string{"line 11: admin.token: must be at least 16 characters"}},
		{"admin token with a space", minimal + "admin: {token: 'admin token 0123456789'}\n", []string{"line 11: admin.token: must not contain spaces"}},
		{"bad admin listen", minimal + "admin: {listen: localhost, token: " + testAdminToken + "}\n", []string{"line 11: admin.listen: is not host:port"}},
		{"admin on the proxy's address", minimal + "listen: 127.0.0.1:6480\nadmin: {token: " + testAdminToken + "}\n",
			[]string{"line 12: admin.listen: is the same address as listen"}},
		{"admin on the default proxy address", minimal + "admin: {listen: 127.0.0.1:6432, token: " + testAdminToken + "}\n",
			[]string{"line 11: admin.listen: is the same address as listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			_, err := loadConfig(path)
			if err == nil {
				t.Fatalf("loadConfig succeeded; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestDynamicAndAdminSecretsStayOutOfErrors puts passwords and tokens
// where they are refused, and checks no part of them reaches the error.
func TestDynamicAndAdminSecretsStayOutOfErrors(t *testing.T) {
	const secret = "Hunter2-Sup3rSecret"
	t.Setenv("PGW_SECRET", secret)
	tmpl := "    templates: [{roles: [app_read]}]\n"
	tests := []struct{ name, text string }{
		{"bad admin DSN", withDynamic("  dynamic:\n    admin_dsn: \"postgres://u:" + secret + "@[bad\"\n" + tmpl)},
		{"bad admin DSN keywords", withDynamic("  dynamic:\n    admin_dsn: \"password=" + secret + " port=notaport\"\n" + tmpl)},
		{"admin DSN as a list", withDynamic("  dynamic:\n    admin_dsn: [" + secret + "]\n" + tmpl)},
		{"short token", minimal + "admin: {token: Hunter2-Sup3r}\n"},
		{"token with a space", minimal + "admin: {token: \"" + secret + " x\"}\n"},
		{"token as a mapping", minimal + "admin: {token: {x: " + secret + "}}\n"},
		{"token in place of the listen address", minimal + "admin: {listen: \"${PGW_SECRET}\", token: " + testAdminToken + "}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, tc.text))
			if err == nil {
				t.Fatal("loadConfig succeeded; want an error")
			}
			for _, part := range []string{secret, secret[:7], "Sup3r"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error contains %q: %v", part, err)
				}
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error names no line: %v", err)
			}
		})
	}
}

// TestCheckDoesNotConnect checks `pgwarden check` accepts a configuration
// with dynamic credentials without connecting to the admin database (its
// address here refuses connections), and that it still checks the lease
// file's directory.
func TestCheckDoesNotConnect(t *testing.T) {
	dynamic := "  dynamic:\n    admin_dsn: host=127.0.0.1 port=1 user=nobody password=Sekrit-DSN-pw\n    templates: [{roles: [app_read]}]\n"
	code, stdout, stderr := runCLI([]string{"check", "--config", writeFile(t, withDynamic(dynamic))}, "")
	if code != exitOK || stdout != "config OK\n" {
		t.Errorf("check: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	missing := withDynamic(dynamic + "    lease_store: {file: no/such/dir/leases.json}\n")
	code, _, stderr = runCLI([]string{"check", "--config", writeFile(t, missing)}, "")
	if code != exitError || !strings.Contains(stderr, "line 12: credentials.dynamic.lease_store.file: the file's directory:") {
		t.Errorf("check with a missing lease directory: exit %d, stderr %q", code, stderr)
	}
	for content, want := range map[string]string{
		"":                       "line 11: admin.revocations_file: the file's directory:",
		"{not json}":             "line 11: admin.revocations_file: ",
		`[{"issuer": "static"}]`: "revocation 1 has no subject",
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "missing", "revocations.json")
		if content != "" {
			file = filepath.Join(dir, "revocations.json")
			os.WriteFile(file, []byte(content), 0o600)
		}
		text := minimal + "admin: {token: " + testAdminToken + ", revocations_file: " + yamlQuote(file) + "}\n"
		code, _, stderr := runCLI([]string{"check", "--config", writeFile(t, text)}, "")
		if code != exitError || !strings.Contains(stderr, want) {
			t.Errorf("check with revocations file %q: exit %d, stderr %q; want %q", content, code, stderr, want)
		}
	}
	// serve connects, and fails with the key path.
	code, _, stderr = runCLI([]string{"serve", "--config", writeFile(t, withDynamic(dynamic))}, "")
	if code != exitError || !strings.Contains(stderr, "line 9: credentials.dynamic: credstore: admin connection:") ||
		strings.Contains(stderr, "Sekrit") {
		t.Errorf("serve with an unreachable admin database: exit %d, stderr %q", code, stderr)
	}
}

// TestFirstCredential checks the composite store: the first store that
// has a credential for the identity decides; errors other than
// ErrNoCredential stop the search.
func TestFirstCredential(t *testing.T) {
	store := func(user string, forSubject string, err error) credstore.Store {
		return credstore.Func(func(_ context.Context, info *session.Info) (credstore.Credential, error) {
			if err != nil {
				return credstore.Credential{}, err
			}
			if info.Identity.Subject != forSubject {
				return credstore.Credential{}, credstore.ErrNoCredential
			}
			return credstore.Credential{User: user}, nil
		})
	}
	broken := errors.New("broken")
	f := firstCredential{store("static_a", "alice", nil), store("dynamic_b", "bob", nil), store("never", "carol", broken)}
	for subject, want := range map[string]string{"alice": "static_a", "bob": "dynamic_b"} {
		c, err := f.Credential(t.Context(), &session.Info{Identity: session.Identity{Subject: subject}})
		if err != nil || c.User != want {
			t.Errorf("%s: %q, %v; want %q", subject, c.User, err, want)
		}
	}
	if _, err := f.Credential(t.Context(), &session.Info{Identity: session.Identity{Subject: "dave"}}); !errors.Is(err, broken) {
		t.Errorf("dave: %v, want the third store's error", err)
	}
	if _, err := (firstCredential{}).Credential(t.Context(), &session.Info{}); !errors.Is(err, credstore.ErrNoCredential) {
		t.Errorf("empty: %v, want ErrNoCredential", err)
	}
}

// TestReadAdminToken checks where `pgwarden review` reads the token from,
// and its usage errors.
func TestReadAdminToken(t *testing.T) {
	t.Setenv(adminTokenEnv, "from-the-environment")
	if tok, err := readAdminToken(""); err != nil || tok != "from-the-environment" {
		t.Errorf("from the environment: %q, %v", tok, err)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(testAdminToken+"\r\n"), 0o600)
	if tok, err := readAdminToken(file); err != nil || tok != testAdminToken {
		t.Errorf("from a file: %q, %v", tok, err)
	}
	os.WriteFile(file, []byte("\n"), 0o600)
	if _, err := readAdminToken(file); err == nil {
		t.Error("empty file accepted")
	}
	t.Setenv(adminTokenEnv, "")
	code, _, stderr := runCLI([]string{"review"}, "")
	if code != exitUsage || !strings.Contains(stderr, "no admin token") {
		t.Errorf("review without a token: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI([]string{"review", "--token-file", file, "--admin", "ftp://x"}, "")
	if code != exitUsage || !strings.Contains(stderr, "--admin must be an http") {
		t.Errorf("review with a bad URL: exit %d, stderr %q", code, stderr)
	}
}
