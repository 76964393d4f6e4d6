package compat

// pgbench, the real binary (libpq), in its three query modes.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The pgbench scripts: a parameterized select, a select of the masked
// column, and a DELETE the policy refuses.
const (
	pgbenchSelect = `\set id random(1, 3)
SELECT name FROM compat_items WHERE id = :id;
`
	pgbenchMasked = `\set id random(1, 2)
SELECT id, email FROM compat_customers WHERE id = :id;
`
	pgbenchDelete = `\set id %d
DELETE FROM compat_items WHERE id = :id;
`
)

// runPgbench runs pgbench with -M simple, extended and prepared: 40
// transactions of the two select scripts on two connections must all
// succeed, and a script with a DELETE must be aborted with the refusal
// (pgbench prints the server's message, not its SQLSTATE). pgbench does not
// show results, so it has no masked values to compare; doc.go's cases are
// the other clients'.
func runPgbench(t *testing.T, h *harness, l login, base int) {
	bin := libpqProgram(t, "pgbench")
	dir := t.TempDir()
	env := h.libpqEnv(l)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	selectScript := write("select.sql", pgbenchSelect)
	maskedScript := write("masked.sql", pgbenchMasked)
	deleteScript := write("delete.sql", fmt.Sprintf(pgbenchDelete, base+50))

	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			t.Run("select", func(t *testing.T) {
				r := runProgram(t, h, env, dir, bin, "-n", "-M", mode, "-c", "2", "-t", "20",
					"-f", selectScript+"@1", "-f", maskedScript+"@1")
				if r.exitCode != 0 ||
					!strings.Contains(r.stdout, "number of transactions actually processed: 40/40\n") ||
					!strings.Contains(r.stdout, "number of failed transactions: 0 (0.000%)\n") {
					t.Errorf("pgbench -M %s: %s\nwant 40/40 transactions processed, 0 failed, exit status 0", mode, r.describe(h))
				}
				checkNoPlaintext(t, "pgbench's output", r.stdout+r.stderr)
			})
			t.Run("delete-refused", func(t *testing.T) {
				r := runProgram(t, h, env, dir, bin, "-n", "-M", mode, "-c", "1", "-t", "1", "-f", deleteScript)
				// In prepared mode the refusal comes at the PREPARE, which
				// pgbench reports before it aborts on the missing statement.
				if r.exitCode == 0 || !strings.Contains(r.stderr, "aborted") ||
					!strings.Contains(r.stderr, `ERROR:  pgwarden: statement refused by rule "`+noDeletes+`"`) ||
					!strings.Contains(r.stdout, "number of transactions actually processed: 0/1\n") {
					t.Errorf("pgbench -M %s: %s\nwant the client aborted on the refusal naming %q, 0/1 transactions, a non-zero exit status", mode, r.describe(h), noDeletes)
				}
			})
		})
	}
}
