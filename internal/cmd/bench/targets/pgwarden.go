package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PgwardenOptions describes the gateway to start.
type PgwardenOptions struct {
	// Binary is the pgwarden executable. If it does not exist, the gateway
	// is built from ./examples/gateway (relative to the working directory,
	// which must then be the module root) into the temporary directory.
	Binary string
	// Upstream is the PostgreSQL server's host:port.
	Upstream string
	// User and Password are the static user clients log in as.
	User, Password string
	// DBUser and DBPassword are the credential the gateway logs in with.
	DBUser, DBPassword string
	// Database is the database clients ask for.
	Database string
	// Procs, when positive, is the gateway's GOMAXPROCS (the number of
	// threads running Go code); 0 leaves Go's default, one per core.
	Procs int
	// Rules, when set, gives the gateway a policy with rules (read-only, a
	// blocked table, the dangerous functions, no DDL) instead of allowing
	// everything.
	Rules bool
	// Recording, when set, records every session to a file store in the
	// gateway's directory (write-ahead, group commit).
	Recording bool
	// Progress receives progress messages.
	Progress io.Writer
}

// StartPgwarden writes a configuration for the gateway in a new temporary
// directory, starts `pgwarden serve` on a free loopback port and waits
// until a client can log in through it.
func StartPgwarden(ctx context.Context, o PgwardenOptions) (t *Target, err error) {
	dir, err := os.MkdirTemp("", "pgwarden-bench-pgwarden-*")
	if err != nil {
		return nil, fmt.Errorf("pgwarden: %w", err)
	}
	t = &Target{Name: NamePgwarden, Host: "127.0.0.1", User: o.User, Password: o.Password, Database: o.Database, dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close(false))
			t = nil
		}
	}()

	bin, err := pgwardenBinary(ctx, o.Binary, dir, o.Progress)
	if err != nil {
		return t, err
	}
	t.Software = "pgwarden " + bin
	if filepath.Dir(bin) == dir {
		t.Software = "pgwarden (built from ./examples/gateway)"
	}
	if t.Port, err = FreePort(); err != nil {
		return t, err
	}
	config := filepath.Join(dir, "pgwarden.yaml")
	if err := os.WriteFile(config, []byte(pgwardenConfig(t, o)), 0o600); err != nil {
		return t, fmt.Errorf("pgwarden: write config: %w", err)
	}
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Dir = dir
	cmd.Env = CleanEnv()
	if o.Procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.Procs))
		t.Software += fmt.Sprintf(" (GOMAXPROCS=%d)", o.Procs)
	}
	if o.Rules {
		t.Software += ", policy: read-only + block rules"
	} else {
		t.Software += ", policy: allow-all"
	}
	if o.Recording {
		t.Software += ", recording: file store"
	}
	if t.proc, err = startProcess("pgwarden", cmd, filepath.Join(dir, "pgwarden.log"), syscall.SIGTERM); err != nil {
		return t, err
	}
	return t, t.waitReady(ctx)
}

// pgwardenConfig returns the gateway's YAML configuration: one static user,
// one credential for its group, allow everything or the rules of
// PgwardenOptions.Rules, warnings only, default limits.
func pgwardenConfig(t *Target, o PgwardenOptions) string {
	q := yamlQuote
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by internal/cmd/bench.\n")
	fmt.Fprintf(&b, "listen: %s\n", q(t.Addr()))
	fmt.Fprintf(&b, "upstream: {address: %s, tls: disable}\n", q(o.Upstream))
	fmt.Fprintf(&b, "auth:\n  users:\n    - {name: %s, password: %s, groups: [bench]}\n", q(o.User), q(o.Password))
	fmt.Fprintf(&b, "credentials:\n  static:\n    - {user: %s, password: %s, groups: [bench]}\n", q(o.DBUser), q(o.DBPassword))
	if o.Rules {
		// What a guarded read-only gateway runs: every statement is
		// analysed and put to each rule.
		b.WriteString(`policy:
  default: allow
  rules:
    - {name: read-only, read_only: true}
    - {name: no-secrets, tables: [public.secrets, "*.pg_authid"]}
    - {name: dangerous-functions, functions: [dangerous]}
    - {name: no-schema-changes, kinds: [ddl, dcl]}
`)
	} else {
		fmt.Fprintf(&b, "policy: {default: allow}\n")
	}
	if o.Recording {
		// A throwaway key: the recordings are removed with the directory.
		fmt.Fprintf(&b, "recording: {dir: recordings, key: %s}\n", q(strings.Repeat("bench-recording-key-", 3)))
	}
	fmt.Fprintf(&b, "log: {level: warn}\n")
	return b.String()
}

// yamlQuote returns s as a double-quoted YAML scalar. Go's quoting is valid
// YAML for printable ASCII, which is all this program writes. (The gateway
// expands ${VAR} in values, so secrets must not contain "${"; the random
// ones used here are hexadecimal.)
func yamlQuote(s string) string { return strconv.Quote(s) }

// pgwardenBinary returns path if it exists, and otherwise builds the
// gateway into dir and returns the result.
func pgwardenBinary(ctx context.Context, path, dir string, progress io.Writer) (string, error) {
	if path != "" {
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			return filepath.Abs(path)
		}
	}
	out := filepath.Join(dir, "pgwarden")
	fmt.Fprintf(progress, "%s not found; building ./examples/gateway into %s\n", path, out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./examples/gateway")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgwarden: go build ./examples/gateway (run from the module root): %w\n%s", err, b)
	}
	return out, nil
}
