package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFile writes a configuration file into a new temporary directory
// and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgwarden.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// minimal is the smallest valid configuration; tests append to it.
const minimal = `upstream:
  address: 127.0.0.1:5432
auth:
  users:
    - {name: alice, password: alice-secret, groups: [analysts]}
credentials:
  static:
    - {user: app_ro, password: app-secret, groups: [analysts]}
policy:
  default: allow
`

const fullConfig = `# A configuration that sets every key.
listen: 0.0.0.0:7432
tls:
  cert: certs/server.crt
  key: /etc/pgwarden/server.key
  allow_plaintext: true
upstream:
  address: db.internal:5433
  tls: verify-full
  ca: ca.pem
  connect_timeout: 5s
auth:
  users:
    - {name: alice, password: alice-secret, groups: [analysts]}
    - name: bob
      scram: "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
      groups: [ops, analysts]
  allow_cleartext_without_tls: true
credentials:
  static:
    - {user: app_ro, password: app-ro-secret, groups: [analysts], subjects: []}
    - {user: app_ops, password: app-ops-secret, subjects: [bob]}
policy:
  default: block
startup_parameters: [search_path, options]
limits:
  max_sessions: 50
  max_message_size: 16MiB
  max_upstream_message_size: 512MB
  startup_timeout: 3s
  auth_timeout: 1m
  idle_timeout: 15m
log:
  level: debug
  format: json
`

func TestLoadFullConfig(t *testing.T) {
	path := writeFile(t, fullConfig)
	dir := filepath.Dir(path)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, envString("0.0.0.0:7432")},
		{"tls.cert", cfg.TLS.Cert, envString(filepath.Join(dir, "certs/server.crt"))},
		{"tls.key", cfg.TLS.Key, envString("/etc/pgwarden/server.key")},
		{"tls.allow_plaintext", cfg.TLS.AllowPlaintext, envBool(true)},
		{"upstream.address", cfg.Upstream.Address, envString("db.internal:5433")},
		{"upstream.tls", cfg.Upstream.TLS, envString("verify-full")},
		{"upstream.ca", cfg.Upstream.CA, envString(filepath.Join(dir, "ca.pem"))},
		{"upstream.connect_timeout", cfg.Upstream.ConnectTimeout, envDuration(5 * time.Second)},
		{"users", len(cfg.Auth.Users), 2},
		{"alice", cfg.Auth.Users[0].Password.Reveal(), "alice-secret"},
		{"bob groups", cfg.Auth.Users[1].Groups, []envString{"ops", "analysts"}},
		{"allow_cleartext_without_tls", cfg.Auth.AllowCleartextWithoutTLS, envBool(true)},
		{"credentials", len(cfg.Credentials.Static), 2},
		{"credential password", cfg.Credentials.Static[1].Password.Reveal(), "app-ops-secret"},
		{"credential subjects", cfg.Credentials.Static[1].Subjects, []envString{"bob"}},
		{"policy", cfg.Policy.Default, "block"},
		{"startup_parameters", cfg.StartupParameters, []envString{"search_path", "options"}},
		{"max_sessions", cfg.Limits.MaxSessions, envInt(50)},
		{"max_message_size", cfg.Limits.MaxMessageSize, envSize(16 << 20)},
		{"max_upstream_message_size", cfg.Limits.MaxUpstreamMessageSize, envSize(512e6)},
		{"startup_timeout", cfg.Limits.StartupTimeout, envDuration(3 * time.Second)},
		{"auth_timeout", cfg.Limits.AuthTimeout, envDuration(time.Minute)},
		{"idle_timeout", cfg.Limits.IdleTimeout, envDuration(15 * time.Minute)},
		{"log.level", cfg.Log.Level, envString("debug")},
		{"log.format", cfg.Log.Format, envString("json")},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	// The configuration prints without its passwords.
	for _, s := range []string{"alice-secret", "app-ro-secret", "app-ops-secret"} {
		if dump := strings.Join([]string{
			sprintAll(cfg), sprintAll(cfg.Auth.Users), sprintAll(cfg.Credentials.Static),
		}, "\n"); strings.Contains(dump, s) {
			t.Errorf("printing the config shows %q:\n%s", s, dump)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != defaultListen {
		t.Errorf("listen = %q, want %q", cfg.Listen, defaultListen)
	}
	if cfg.TLS != nil {
		t.Errorf("tls = %+v, want nil", cfg.TLS)
	}
	if cfg.Upstream.TLS != upstreamTLSDisable {
		t.Errorf("upstream.tls = %q for a loopback address, want disable", cfg.Upstream.TLS)
	}
	if cfg.Log.Level != "info" || cfg.Log.Format != "text" {
		t.Errorf("log = %+v, want info/text", cfg.Log)
	}
	// Without a recording section, sessions are not recorded: the one
	// warning.
	if len(cfg.warnings) != 1 || cfg.warnings[0] != "recording: "+noRecordingWarning {
		t.Errorf("warnings = %q, want only %q", cfg.warnings, noRecordingWarning)
	}
	if cfg.Recording != nil || cfg.Telemetry != nil {
		t.Errorf("recording = %+v, telemetry = %+v; want nil", cfg.Recording, cfg.Telemetry)
	}
}

func TestUpstreamTLSDefault(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5432":                    upstreamTLSDisable,
		"127.10.0.1:5432":                   upstreamTLSDisable,
		"localhost:5432":                    upstreamTLSDisable,
		"[::1]:5432":                        upstreamTLSDisable,
		"/var/run/postgresql/.s.PGSQL.5432": upstreamTLSDisable,
		"db.example.com:5432":               upstreamTLSVerifyFull,
		"10.0.0.7:5432":                     upstreamTLSVerifyFull,
	} {
		text := strings.Replace(minimal, "127.0.0.1:5432", `"`+addr+`"`, 1)
		cfg, err := loadConfig(writeFile(t, text))
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if string(cfg.Upstream.TLS) != want {
			t.Errorf("%s: upstream.tls = %q, want %q", addr, cfg.Upstream.TLS, want)
		}
	}
}

func TestAbsentPolicyBlocks(t *testing.T) {
	text := strings.Replace(minimal, "policy:\n  default: allow\n", "", 1)
	cfg, err := loadConfig(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy == nil || cfg.Policy.Default != "block" {
		t.Fatalf("policy = %+v, want default block", cfg.Policy)
	}
	if len(otherWarnings(cfg)) != 1 || !strings.Contains(otherWarnings(cfg)[0], "every statement is refused") {
		t.Errorf("warnings = %q, want one about the missing policy", otherWarnings(cfg))
	}
}

// TestLoadErrors checks that each mistake is refused with a message that
// names the key path and the line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // substrings of the error
	}{
		{
			name: "unknown top-level key",
			text: minimal + "listne: 127.0.0.1:6432\n",
			want: []string{"line 11: listne: unknown key listne (see the YAML reference)"},
		},
		{
			name: "unknown nested key",
			text: "tls:\n  cert: a.crt\n  key: a.key\n  ciphers: [x]\n" + minimal,
			want: []string{"line 4: tls.ciphers: unknown key ciphers"},
		},
		{
			name: "unknown key in a flow mapping",
			text: strings.Replace(minimal, "groups: [analysts]}", "group: analysts}", 1),
			want: []string{"line 5: auth.users[0].group: unknown key group (see the YAML reference)"},
		},
		{
			name: "duplicate key",
			text: minimal + "log:\n  level: info\n  level: debug\n",
			want: []string{`line 13: log.level: mapping key "level" already defined at line 12`},
		},
		{
			name: "bad upstream tls",
			text: strings.Replace(minimal, "address: 127.0.0.1:5432", "address: 127.0.0.1:5432\n  tls: verify-ca", 1),
			want: []string{"line 3: upstream.tls: must be disable, require or verify-full"},
		},
		{
			name: "bad policy default",
			text: strings.Replace(minimal, "default: allow", "default: deny", 1),
			want: []string{"line 10: policy.default: must be allow or block"},
		},
		{
			name: "empty policy",
			text: strings.Replace(minimal, "  default: allow\n", "  default:\n", 1),
			want: []string{"line 10: policy.default: is required"},
		},
		{
			name: "bad log level and format",
			text: minimal + "log:\n  level: verbose\n  format: xml\n",
			want: []string{"2 problems:\n  line 12: log.level: must be debug, info, warn or error\n  line 13: log.format: must be text or json"},
		},
		{
			name: "missing upstream address",
			text: strings.Replace(minimal, "  address: 127.0.0.1:5432\n", "  connect_timeout: 5s\n", 1),
			want: []string{"line 1: upstream.address: is required"},
		},
		{
			name: "missing upstream section",
			text: strings.Replace(minimal, "upstream:\n  address: 127.0.0.1:5432\n", "", 1),
			want: []string{"config ", ": upstream.address: is required"},
		},
		{
			name: "bad upstream address",
			text: strings.Replace(minimal, "127.0.0.1:5432", "db.example.com", 1),
			want: []string{"line 2: upstream.address: is not host:port"},
		},
		{
			name: "bad socket path",
			text: strings.Replace(minimal, "127.0.0.1:5432", "/run/postgresql/socket", 1),
			want: []string{"line 2: upstream.address:", "/dir/.s.PGSQL.<port>"},
		},
		{
			name: "tls on a socket",
			text: strings.Replace(minimal, "127.0.0.1:5432", "/run/postgresql/.s.PGSQL.5432\n  tls: require", 1),
			want: []string{"line 3: upstream.tls: must be disable for a Unix socket"},
		},
		{
			name: "ca without verify-full",
			text: strings.Replace(minimal, "127.0.0.1:5432", "127.0.0.1:5432\n  ca: ca.pem", 1),
			want: []string{"line 3: upstream.ca: is only used with upstream.tls: verify-full (upstream.tls is disable)"},
		},
		{
			name: "tls cert without key",
			text: "tls:\n  cert: server.crt\n" + minimal,
			want: []string{"line 1: tls.key: is required"},
		},
		{
			name: "user without password or scram",
			text: strings.Replace(minimal, "{name: alice, password: alice-secret, groups: [analysts]}", "{name: alice, groups: [analysts]}", 1),
			want: []string{"line 5: auth.users[0]: password or scram is required"},
		},
		{
			name: "user with password and scram",
			text: strings.Replace(minimal, "password: alice-secret,", "password: alice-secret, scram: x,", 1),
			want: []string{"line 5: auth.users[0]: give either password or scram, not both"},
		},
		{
			name: "duplicate user",
			text: strings.Replace(minimal, "    - {name: alice, password: alice-secret, groups: [analysts]}\n",
				"    - {name: alice, password: alice-secret, groups: [analysts]}\n    - {name: alice, password: other-secret}\n", 1),
			want: []string{"line 6: auth.users[1].name: this user is already listed at auth.users[0]"},
		},
		{
			name: "no users",
			text: strings.Replace(minimal, "  users:\n    - {name: alice, password: alice-secret, groups: [analysts]}\n", "  users: []\n", 1),
			want: []string{"line 3: auth: no users, oidc, client_certs or saml are configured"},
		},
		{
			name: "credential without password",
			text: strings.Replace(minimal, "{user: app_ro, password: app-secret, groups: [analysts]}", "{user: app_ro, groups: [analysts]}", 1),
			want: []string{"line 8: credentials.static[0].password: is required"},
		},
		{
			name: "bad size",
			text: minimal + "limits:\n  max_message_size: 64 megabytes\n",
			want: []string{"line 12: limits.max_message_size: invalid size"},
		},
		{
			name: "size too large for the protocol",
			text: minimal + "limits:\n  max_upstream_message_size: 4GiB\n",
			want: []string{"line 12: limits.max_upstream_message_size: must be at most 2GiB-1"},
		},
		{
			name: "duration without unit",
			text: minimal + "limits:\n  idle_timeout: 10\n",
			want: []string{"line 12: limits.idle_timeout: invalid duration"},
		},
		{
			name: "negative duration",
			text: minimal + "limits:\n  auth_timeout: -5s\n",
			want: []string{`line 12: limits.auth_timeout: negative duration`},
		},
		{
			name: "bad boolean",
			text: "tls:\n  cert: a\n  key: b\n  allow_plaintext: sometimes\n" + minimal,
			want: []string{"line 4: tls.allow_plaintext: not a boolean"},
		},
		{
			name: "list where a value is expected",
			text: minimal + "listen: [a, b]\n",
			want: []string{"line 11: listen: expected a single value, not a list"},
		},
		{
			name: "not a mapping",
			text: minimal + "limits: 10\n",
			want: []string{"line 11: limits: must be a mapping, not an integer"},
		},
		{
			name: "wrong type in a flow mapping",
			text: minimal + "  rules: [{name: a, min_chain_depth: two}]\n",
			want: []string{"line 11: policy.rules[0]: must be an integer, not text"},
		},
		{
			name: "negative chain depth",
			text: minimal + "  rules: [{name: a, min_chain_depth: -1}]\n",
			want: []string{"policy.rules[0].min_chain_depth: must be 0 or more"},
		},
		{
			name: "reserved startup parameter",
			text: minimal + "startup_parameters: [search_path, replication]\n",
			want: []string{"line 11: startup_parameters[1]: user, database and replication cannot be allowed here"},
		},
		{
			name: "syntax error",
			text: minimal + "log:\n\tlevel: info\n",
			want: []string{"line 12: found character that cannot start any token"},
		},
		{
			name: "two documents",
			text: minimal + "---\nlisten: 127.0.0.1:1\n",
			want: []string{"only one YAML document is allowed"},
		},
		{
			name: "several problems at once",
			text: "upstream:\n  tls: maybe\nauth:\n  users:\n    - {name: ''}\n",
			want: []string{"problems:", "upstream.address: is required", "auth.users[0].name: is required",
				"credentials.static: no database credentials"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			_, err := loadConfig(path)
			if err == nil {
				t.Fatalf("loadConfig succeeded; want an error containing %q", tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config "+path+": ") {
				t.Errorf("error does not start with %q: %s", "config "+path+": ", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("PGW_ADDR", "db.example.com:6543")
	t.Setenv("PGW_APP_PASSWORD", "from-the-env")
	t.Setenv("PGW_GROUP", "analysts")
	t.Setenv("PGW_TIMEOUT", "7s")
	t.Setenv("PGW_SIZE", "2MiB")
	t.Setenv("PGW_MAX", "12")
	t.Setenv("PGW_YAML", "x\nlisten: 0.0.0.0:1\n[a, {b: c}]: &d *e # not a comment")
	t.Setenv("PGW_DOLLAR", "${PGW_APP_PASSWORD}")
	t.Setenv("PGW_EMPTY", "")
	text := `upstream:
  address: ${PGW_ADDR}
  connect_timeout: ${PGW_TIMEOUT}
auth:
  users:
    - name: alice
      password: "${PGW_YAML}"
      groups: ["${PGW_GROUP}", "lit$$eral", "$HOME", "a$b$", "${PGW_EMPTY}x"]
    - name: "${PGW_DOLLAR}"
      password: 'pa$$word'
credentials:
  static:
    - {user: app, password: "${PGW_APP_PASSWORD}", groups: ["${PGW_GROUP}"]}
policy:
  default: allow
limits:
  max_sessions: ${PGW_MAX}
  max_message_size: ${PGW_SIZE}
`
	cfg, err := loadConfig(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := cfg.Auth.Users[0], cfg.Auth.Users[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"address", cfg.Upstream.Address, envString("db.example.com:6543")},
		{"connect_timeout", cfg.Upstream.ConnectTimeout, envDuration(7 * time.Second)},
		// YAML-looking text from the environment stays one plain string.
		{"yaml-looking password", alice.Password.Reveal(), "x\nlisten: 0.0.0.0:1\n[a, {b: c}]: &d *e # not a comment"},
		{"listen unchanged", cfg.Listen, envString(defaultListen)},
		{"groups", alice.Groups, []envString{"analysts", "lit$eral", "$HOME", "a$b$", "x"}},
		// A value is expanded once: ${...} coming from a variable stays.
		{"no second expansion", bob.Name, envString("${PGW_APP_PASSWORD}")},
		{"$$ in single quotes", bob.Password.Reveal(), "pa$word"},
		{"credential password", cfg.Credentials.Static[0].Password.Reveal(), "from-the-env"},
		{"credential groups", cfg.Credentials.Static[0].Groups, []envString{"analysts"}},
		{"max_sessions", cfg.Limits.MaxSessions, envInt(12)},
		{"max_message_size", cfg.Limits.MaxMessageSize, envSize(2 << 20)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestEnvExpansionErrors(t *testing.T) {
	t.Setenv("PGW_SET", "1")
	tests := []struct {
		name, text string
		want       []string
	}{
		{
			name: "unset variable",
			text: strings.Replace(minimal, "password: app-secret", "password: \"${PGW_SURELY_UNSET_VAR}\"", 1),
			want: []string{"line 8: credentials.static[0].password: environment variable PGW_SURELY_UNSET_VAR is not set"},
		},
		{
			name: "unset variable in a block mapping",
			text: minimal + "log:\n  format: ${PGW_SET}\n  level: ${PGW_LEVEL_UNSET}\n",
			want: []string{"line 13: log.level: environment variable PGW_LEVEL_UNSET is not set"},
		},
		{
			name: "unterminated reference",
			text: minimal + "listen: \"${PGW_SET\"\n",
			want: []string{"line 11: listen: unterminated ${"},
		},
		{
			name: "invalid name",
			text: minimal + "listen: \"${1X}\"\n",
			want: []string{"line 11: listen: invalid environment variable reference"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantLoadError(t, tc.text, tc.want...) })
	}
}

// TestErrorsDoNotRevealSecrets writes passwords where they do not belong
// or in a form that is refused, and checks that no part of them reaches
// the error.
func TestErrorsDoNotRevealSecrets(t *testing.T) {
	const secret = "Hunter2-Sup3rSecret"
	t.Setenv("PGW_SECRET", secret)
	tests := []struct {
		name, text string
	}{
		{"password given as a list", strings.Replace(minimal, "password: app-secret", "password: ["+secret+"]", 1)},
		{"password given as a mapping", strings.Replace(minimal, "password: app-secret", "password: {x: "+secret+"}", 1)},
		{"password in place of a list", strings.Replace(minimal, "  static:\n    - {user: app_ro, password: app-secret, groups: [analysts]}\n", "  static: "+secret+"\n", 1)},
		{"password in place of a section", minimal + "limits: " + secret + "\n"},
		{"password in place of a number", minimal + "limits:\n  max_sessions: " + secret + "\n"},
		{"password from the environment in place of a number", minimal + "limits:\n  max_sessions: ${PGW_SECRET}\n"},
		{"password in place of a size", minimal + "limits:\n  max_message_size: \"${PGW_SECRET}\"\n"},
		{"password in place of a boolean", minimal + "auth:\n  allow_cleartext_without_tls: " + secret + "\n"},
		{"password in the scram key", strings.Replace(minimal, "password: alice-secret", "scram: "+secret, 1)},
		{"password with a bad ${", strings.Replace(minimal, "password: app-secret", `password: "`+secret+`${"`, 1)},
		{"password with a bad name", strings.Replace(minimal, "password: app-secret", `password: "${`+secret+`}"`, 1)},
		{"password and scram", strings.Replace(minimal, "password: alice-secret", "password: "+secret+", scram: "+secret, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, tc.text))
			if err == nil {
				t.Fatal("loadConfig succeeded; want an error")
			}
			msg := err.Error()
			// yaml.v3 would quote the first 7 characters of a bad value.
			for _, part := range []string{secret, secret[:7], secret[:4], "Sup3r"} {
				if strings.Contains(msg, part) {
					t.Errorf("error contains %q: %s", part, msg)
				}
			}
			if !strings.Contains(msg, "line ") {
				t.Errorf("error does not name a line: %s", msg)
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "B_2": "beta", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"":                "",
		"plain":           "plain",
		"${A}":            "alpha",
		"x${A}y${B_2}z":   "xalphaybetaz",
		"$$":              "$",
		"$${A}":           "${A}",
		"$$$${A}":         "$${A}",
		"$$${A}":          "$alpha",
		"$":               "$",
		"a$":              "a$",
		"$A":              "$A",
		"cost: $5":        "cost: $5",
		"${EMPTY}":        "",
		"SCRAM-SHA-256$4": "SCRAM-SHA-256$4",
	} {
		got, err := expandEnv(in, lookup)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${MISSING}": "environment variable MISSING is not set",
		"${A":        "unterminated ${",
		"${}":        "invalid environment variable reference",
		"${A-B}":     "invalid environment variable reference",
		"${9A}":      "invalid environment variable reference",
	} {
		_, err := expandEnv(in, lookup)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expandEnv(%q) error = %v; want %q", in, err, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0":        0,
		"1048576":  1 << 20,
		"512B":     512,
		"4KiB":     4 << 10,
		"64MiB":    64 << 20,
		"64 MiB":   64 << 20,
		"1GiB":     1 << 30,
		"3KB":      3000,
		"5MB":      5e6,
		"2GB":      2e9,
		" 7 GiB ":  7 << 30,
		"100000GB": 100000e9,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "+1", "1.5GiB", "64mib", "64kB", "64 M", "1TiB", "ten", "99999999999999GiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
}

// TestExampleConfig loads the example file shipped with the gateway.
func TestExampleConfig(t *testing.T) {
	t.Setenv("APP_RO_PASSWORD", "app-ro-secret")
	t.Setenv("APP_OPS_PASSWORD", "app-ops-secret")
	t.Setenv("BOB_PASSWORD", "bob-secret")
	t.Setenv("IDP_INTROSPECTION_SECRET", "introspection-secret")
	cfg, err := loadConfig("pgwarden.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Credentials.Static[0].Password.Reveal(); got != "app-ro-secret" {
		t.Errorf("credentials.static[0].password = %q, want the environment's value", got)
	}
}

// commentedBlock is a commented-out block of the example configuration:
// the line it starts with, and the prefix of its following lines.
type commentedBlock struct{ start, body string }

// loadExampleUncommented loads pgwarden.example.yaml with blocks
// uncommented (written, with certificates, to a temporary directory), and
// returns the configuration and its path.
func loadExampleUncommented(t *testing.T, blocks ...commentedBlock) (*config, string) {
	t.Helper()
	data, err := os.ReadFile("pgwarden.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, block := range blocks {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, block.start) })
		if i < 0 {
			t.Fatalf("no %q in the example", block.start)
		}
		for j := i; j < len(lines) && (j == i || strings.HasPrefix(lines[j], block.body)); j++ {
			lines[j] = strings.Replace(lines[j], "# ", "", 1)
		}
	}
	path := filepath.Join(t.TempDir(), "pgwarden.yaml")
	writeCerts(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// TestExampleConfigCommentedSections uncomments the example's
// credentials.dynamic, admin, recording and telemetry sections and loads
// the result.
func TestExampleConfigCommentedSections(t *testing.T) {
	t.Setenv("APP_RO_PASSWORD", "app-ro-secret")
	t.Setenv("APP_OPS_PASSWORD", "app-ops-secret")
	t.Setenv("BOB_PASSWORD", "bob-secret")
	t.Setenv("IDP_INTROSPECTION_SECRET", "introspection-secret")
	t.Setenv("PGWARDEN_ADMIN_DSN", "host=127.0.0.1 user=pgwarden_admin dbname=app")
	t.Setenv("PGWARDEN_ADMIN_TOKEN", testAdminToken)
	t.Setenv("PGWARDEN_AUDIT_DSN", "host=127.0.0.1 user=pgwarden_recorder dbname=audit")
	t.Setenv("PGWARDEN_RECORDING_KEY", testRecordingKey)
	cfg, path := loadExampleUncommented(t, commentedBlock{"  # dynamic:", "  #   "}, commentedBlock{"# admin:", "#   "},
		commentedBlock{"# recording:", "#   "}, commentedBlock{"# telemetry:", "#   "})
	d := cfg.Credentials.Dynamic
	if d == nil || len(d.Templates) != 2 || d.LeaseStore == nil || d.GatewayID != "gw-1" || d.AdminDSN.IsZero() {
		t.Errorf("credentials.dynamic = %+v", d)
	}
	if cfg.Admin == nil || cfg.Admin.Listen != "127.0.0.1:6480" || cfg.Admin.Token.Reveal() != testAdminToken || cfg.Admin.RevocationsFile == "" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	r, tel := cfg.Recording, cfg.Telemetry
	if r == nil || r.Dir != envString(filepath.Join(filepath.Dir(path), "recordings")) || r.Postgres.IsZero() ||
		r.Key.Reveal() != testRecordingKey || r.Fail != recordingFailClosed {
		t.Errorf("recording = %+v", r)
	}
	if tel == nil || tel.OTLP == nil || tel.OTLP.Endpoint != "127.0.0.1:4318" || !bool(tel.OTLP.Insecure) ||
		!cfg.prometheusEnabled() || !tel.Prometheus.requireToken() {
		t.Errorf("telemetry = %+v", tel)
	}
	if len(cfg.warnings) != 0 {
		t.Errorf("warnings = %q, want none", cfg.warnings)
	}
	if _, err := checkProxy(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("checkProxy: %v", err)
	}
}

// sprintAll formats v every way fmt can.
func sprintAll(v any) string {
	return fmt.Sprintf("%v\n%+v\n%#v\n%s", v, v, v, v)
}

// wantLoadError checks that the configuration text is refused with an
// error containing each of want.
func wantLoadError(t *testing.T, text string, want ...string) {
	t.Helper()
	_, err := loadConfig(writeFile(t, text))
	if err == nil {
		t.Fatalf("loadConfig succeeded; want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}
