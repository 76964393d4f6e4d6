package compat

// psql, the real binary (libpq), with PGSSLMODE=verify-full.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libpqProgram returns the path of a PostgreSQL client program: the one
// next to the server binaries of the cluster, or else the one on PATH. A
// missing program fails t.
func libpqProgram(t testing.TB, name string) string {
	t.Helper()
	if pg.BinDir != "" {
		p := filepath.Join(pg.BinDir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (neither in %s nor on PATH): install PostgreSQL's client programs (make deps)", name, pg.BinDir)
	}
	return p
}

// programResult is what a client program did.
type programResult struct {
	stdout, stderr string
	exitCode       int
}

// runProgram runs name with args in dir (empty: the current directory) and
// env, and returns its output; it fails t only when the program cannot be
// started at all.
func runProgram(t testing.TB, h *harness, env []string, dir, name string, args ...string) programResult {
	t.Helper()
	cmd := exec.CommandContext(testContext(t), name, args...)
	cmd.Env = env
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := programResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.exitCode = exitErr.ExitCode()
	default:
		t.Fatalf("running %s: %s", name, h.redact(err.Error()))
	}
	return r
}

// describe is the result for a failure message, redacted.
func (r programResult) describe(h *harness) string {
	return h.redact(fmt.Sprintf("exit status %d\n--- stdout:\n%s--- stderr:\n%s", r.exitCode, r.stdout, r.stderr))
}

// runPsql runs the cases with psql. psql 15 speaks only the simple
// protocol (\bind arrived in psql 16): its parameterized cases are SQL
// PREPARE and EXECUTE, which the gateway judges and masks through what the
// session prepared.
func runPsql(t *testing.T, h *harness, l login, base int) {
	bin := libpqProgram(t, "psql")
	dir := t.TempDir()
	env := h.libpqEnv(l)
	// psql runs one -c or -f after the other on one connection, quietly
	// (-q: no command tags), unaligned (-A), tuples only (-t).
	psql := func(t *testing.T, args ...string) programResult {
		t.Helper()
		return runProgram(t, h, env, dir, bin, append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	}
	expect := func(t *testing.T, r programResult, want string) {
		t.Helper()
		if r.exitCode != 0 || r.stdout != want || r.stderr != "" {
			t.Errorf("psql: %s\nwant stdout %q, no stderr, exit status 0", r.describe(h), want)
		}
	}
	script := func(t *testing.T, name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if !t.Run("connect", func(t *testing.T) {
		r := psql(t, "-c", `\conninfo`, "-c", sqlWhoAmI)
		if r.exitCode != 0 {
			t.Fatalf("psql: %s", r.describe(h))
		}
		if !strings.Contains(r.stdout, "SSL connection (protocol: TLS") {
			t.Errorf("\\conninfo does not show a TLS connection: %s", r.describe(h))
		}
		if !strings.HasSuffix(r.stdout, "\n"+l.subject+"\n") {
			t.Errorf("pgwarden.subject is not %q: %s", l.subject, r.describe(h))
		}
	}) {
		return
	}

	t.Run("simple", func(t *testing.T) {
		expect(t, psql(t, "-c", sqlNames), "alpha\nbeta\ngamma\n")
	})

	t.Run("parameterized", func(t *testing.T) {
		expect(t, psql(t,
			"-c", "PREPARE compat_name(int) AS "+sqlNameByID,
			"-c", "EXECUTE compat_name(2)",
			"-c", "PREPARE compat_plus(int) AS "+sqlPlusOne,
			"-c", "EXECUTE compat_plus(41)",
		), "beta\n42\n")
	})

	t.Run("transaction", func(t *testing.T) {
		f := script(t, "transaction.sql", fmt.Sprintf(`\set ON_ERROR_STOP 0
\set VERBOSITY verbose
BEGIN;
INSERT INTO compat_items VALUES (%[1]d, 'tx');
DELETE FROM compat_items WHERE id = %[1]d;
ROLLBACK;
SELECT count(*) FROM compat_items WHERE id = %[1]d;
`, base+1))
		r := psql(t, "-f", f)
		if r.exitCode != 0 || r.stdout != "0\n" {
			t.Errorf("psql: %s\nwant stdout \"0\\n\" (the count after ROLLBACK), exit status 0", r.describe(h))
		}
		// With VERBOSITY verbose psql prints the SQLSTATE:
		// psql:…/transaction.sql:5: ERROR:  42501: pgwarden: statement refused by rule "no-deletes"
		if strings.Count(r.stderr, "ERROR:") != 1 || !strings.Contains(r.stderr, "transaction.sql:5: ERROR:  42501: ") ||
			!strings.Contains(r.stderr, `"`+noDeletes+`"`) {
			t.Errorf("want exactly one error, for the DELETE (line 5), with SQLSTATE 42501 naming %q: %s", noDeletes, r.describe(h))
		}
	})

	t.Run("masked", func(t *testing.T) {
		r := psql(t,
			"-c", sqlCustomers,
			"-c", "PREPARE compat_email(int) AS "+sqlEmailByID,
			"-c", "EXECUTE compat_email(1)",
		)
		expect(t, r, "1|"+maskedEmails[0]+"\n2|"+maskedEmails[1]+"\n"+maskedEmails[0]+"\n")
		checkNoPlaintext(t, "psql's output", r.stdout+r.stderr)
	})

	t.Run("copy", func(t *testing.T) {
		data := script(t, "rows.txt", fmt.Sprintf("%d\tcopy-a\n%d\tcopy-b\n", base+2, base+3))
		f := script(t, "copy.sql", fmt.Sprintf(`BEGIN;
\copy compat_items (id, name) from '%[2]s'
SELECT count(*) FROM compat_items WHERE id > %[1]d;
ROLLBACK;
SELECT count(*) FROM compat_items WHERE id > %[1]d;
\copy (SELECT id, email FROM compat_customers ORDER BY id) to stdout
`, base, data))
		r := psql(t, "-f", f)
		expect(t, r, "2\n0\n"+wantCopyOut)
		checkNoPlaintext(t, "psql's output", r.stdout+r.stderr)
	})
}
