package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/auth"
)

// runCLI runs the command line args with stdin and returns the exit code,
// stdout and stderr.
func runCLI(args []string, stdin string) (int, string, string) {
	var stdout, stderr strings.Builder
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}} {
		code, _, stderr := runCLI(args, "")
		if code != exitUsage || !strings.Contains(stderr, "Usage:") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and the usage", args, code, stderr)
		}
		for _, cmd := range []string{"serve --config", "check --config", "hash-password", "demo [--listen", "review [--admin URL]",
			"approvals [--admin URL]", "approve ID", "deny ID", "sessions --config", "replay --config", "verify --config"} {
			if !strings.Contains(stderr, cmd) {
				t.Errorf("usage does not list %q", cmd)
			}
		}
	}
	if code, stdout, _ := runCLI([]string{"help"}, ""); code != exitOK || !strings.Contains(stdout, "Usage:") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
}

func TestCheckCommand(t *testing.T) {
	good := writeFile(t, minimal)
	code, stdout, stderr := runCLI([]string{"check", "--config", good}, "")
	if code != exitOK || stdout != "config OK\n" {
		t.Errorf("check good config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	bad := writeFile(t, minimal+"unknown_key: 1\n")
	code, stdout, stderr = runCLI([]string{"check", "--config", bad}, "")
	if code != exitError || stdout != "" || !strings.Contains(stderr, "line 11: unknown_key: unknown key unknown_key (see the YAML reference)") {
		t.Errorf("check bad config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// check also reads the files the configuration names.
	missing := writeFile(t, "tls: {cert: a.crt, key: a.key}\n"+minimal)
	code, _, stderr = runCLI([]string{"check", "--config", missing}, "")
	if code != exitError || !strings.Contains(stderr, "line 1: tls:") {
		t.Errorf("check with a missing certificate: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = runCLI([]string{"check", "--config", filepath.Join(t.TempDir(), "absent.yaml")}, "")
	if code != exitError || !strings.Contains(stderr, "absent.yaml") {
		t.Errorf("check absent file: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI([]string{"check"}, ""); code != exitUsage {
		t.Errorf("check without --config: exit %d, want %d", code, exitUsage)
	}
}

func TestServeCommandConfigError(t *testing.T) {
	bad := writeFile(t, "upstream: {}\n")
	code, _, stderr := runCLI([]string{"serve", "--config", bad}, "")
	if code != exitError || !strings.Contains(stderr, "upstream.address: is required") {
		t.Errorf("serve with a bad config: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI([]string{"serve", "extra"}, ""); code != exitUsage {
		t.Errorf("serve with an argument: exit %d, want %d", code, exitUsage)
	}
}

func TestHashPassword(t *testing.T) {
	code, stdout, stderr := runCLI([]string{"hash-password"}, "correct horse battery staple\r\n")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	verifier := strings.TrimSuffix(stdout, "\n")
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") || strings.Contains(stdout, "horse") {
		t.Fatalf("output %q is not a verifier", stdout)
	}
	if _, err := auth.NewStatic(auth.User{Name: "u", Verifier: verifier}); err != nil {
		t.Errorf("auth.NewStatic refuses the verifier: %v", err)
	}
	// The verifier works in a configuration file as written.
	text := strings.Replace(minimal, "password: alice-secret", `scram: "`+verifier+`"`, 1)
	if _, err := loadConfig(writeFile(t, text)); err != nil {
		t.Errorf("config with the verifier: %v", err)
	}

	if code, _, stderr := runCLI([]string{"hash-password"}, "\n"); code != exitError || !strings.Contains(stderr, "no password") {
		t.Errorf("empty password: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI([]string{"hash-password"}, ""); code != exitError {
		t.Errorf("no input: exit %d, want %d", code, exitError)
	}
}

func TestCheckCommandJudgesSQL(t *testing.T) {
	cfg := writeFile(t, strings.Replace(minimal, "policy:\n  default: allow\n", `policy:
  default: allow
  rules:
    - {name: analysts-read-only, groups: [analysts], read_only: true}
    - {name: no-secrets, tables: [public.secrets], reason: Secrets stay secret.}
    - name: ci-window
      subjects: [alice]
      outside: ["01:00-02:00 UTC"]
`, 1))
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"SELECT 1"}, exitOK, []string{`allow (rule "default")`}},
		{[]string{"SELECT * FROM secrets", "select * from PUBLIC.secrets"}, exitRefused,
			[]string{`SELECT * FROM secrets`, `  block (rule "no-secrets"): Secrets stay secret.`, `select * from PUBLIC.secrets`, `  block (rule "no-secrets"): Secrets stay secret.`}},
		{[]string{"--groups", "analysts", "DELETE FROM t WHERE id = 1"}, exitRefused,
			[]string{`block (rule "analysts-read-only"): This session is read-only: DELETE changes data.`}},
		{[]string{"--search-path", "hidden,public", "SELECT * FROM secrets"}, exitRefused, []string{`block (rule "no-secrets")`}},
		{[]string{"--search-path", "hidden", "SELECT * FROM secrets"}, exitOK, []string{`allow (rule "default")`}},
		{[]string{"--user", "alice", "--at", "2026-11-25T01:30:00Z", "SELECT 1"}, exitOK, []string{`allow (rule "default")`}},
		{[]string{"--user", "alice", "--at", "2026-11-25T03:00:00Z", "SELECT 1"}, exitRefused, []string{`block (rule "ci-window")`}},
		{[]string{"SELECT (("}, exitRefused, []string{`block (rule "analysis"): The gateway cannot analyse this statement: syntax error`}},
	} {
		code, stdout, stderr := runCLI(append([]string{"check", "--config", cfg}, c.args...), "")
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if code != c.code || len(lines) != len(c.want) {
			t.Errorf("check %q: exit %d, stdout %q, stderr %q; want exit %d and %d lines", c.args, code, stdout, stderr, c.code, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("check %q: line %d = %q; want prefix %q", c.args, i, lines[i], w)
			}
		}
	}
	if code, _, stderr := runCLI([]string{"check", "--config", cfg, "--user", "nobody", "SELECT 1"}, ""); code != exitUsage || !strings.Contains(stderr, "no user") {
		t.Errorf("unknown --user: exit %d, stderr %q", code, stderr)
	}
	bad := writeFile(t, strings.Replace(minimal, "policy:\n  default: allow\n", "policy:\n  default: allow\n  rules:\n    - {name: x, kinds: [selekt], verdict: maybe}\n", 1))
	code, _, stderr := runCLI([]string{"check", "--config", bad}, "")
	if code != exitError || !strings.Contains(stderr, "policy.rules[0].verdict: must be allow") || !strings.Contains(stderr, `policy.rules[0].kinds[0]: unknown statement kind "selekt"`) {
		t.Errorf("bad rules: exit %d, stderr %q", code, stderr)
	}
}

// TestCheckDelegationChain: check judges as a subject with a delegation
// chain, so rules on the chain can be tried offline; with several SQL
// texts, each decision follows its text.
func TestCheckDelegationChain(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, minimal+`  rules:
    - name: deep-agents-only-read
      min_chain_depth: 3
      writes: true
`)
	sql := []string{"insert into t values (1)", "select 1"}
	code, stdout, stderr := runCLI(append([]string{"check", "--config", cfg, "--subject", "alice", "--chain", "ci-job,agent,sub-agent"}, sql...), "")
	want := "insert into t values (1)\n  block (rule \"deep-agents-only-read\")\nselect 1\n  allow (rule \"default\")\n"
	if code != exitRefused || stdout != want {
		t.Errorf("three agents: exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitRefused, want)
	}
	code, stdout, _ = runCLI([]string{"check", "--config", cfg, "--subject", "alice", "--chain", "ci-job", sql[0]}, "")
	if code != exitOK || stdout != "allow (rule \"default\")\n" {
		t.Errorf("one agent: exit %d, stdout %q", code, stdout)
	}
	if code, _, _ := runCLI([]string{"check", "--config", cfg, "--subject", "a", "--user", "alice", "select 1"}, ""); code != exitUsage {
		t.Errorf("--user with --subject: exit %d, want %d", code, exitUsage)
	}
}
