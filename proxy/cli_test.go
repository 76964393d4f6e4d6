package proxy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runClient runs a PostgreSQL command-line client and returns its output.
func runClient(t testing.TB, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make test installs it): %v", name, err)
	}
	cmd := exec.CommandContext(testContext(t), path, args...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGAPPNAME=pgwarden-test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPsqlCopyAndLargeObjects(t *testing.T) {
	g := startGateway(t, nil)
	dir := t.TempDir()
	dsn := g.tlsDSN("alice", alicePassword)
	runClient(t, "psql", dsn, "-v", "ON_ERROR_STOP=1", "-c", "drop table if exists psql_copy; create table psql_copy(id int, note text)")

	in := filepath.Join(dir, "in.csv")
	var csv bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&csv, "%d,\"note, number %d\"\n", i, i)
	}
	if err := os.WriteFile(in, csv.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.csv")
	runClient(t, "psql", dsn, "-v", "ON_ERROR_STOP=1",
		"-c", fmt.Sprintf(`\copy psql_copy from '%s' with (format csv)`, in),
		"-c", fmt.Sprintf(`\copy (select * from psql_copy order by id) to '%s' with (format csv)`, out))
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, csv.Bytes()) {
		t.Fatalf("\\copy round trip differs: %d bytes in, %d bytes out", csv.Len(), len(got))
	}

	// psql's \lo_import and \lo_export use libpq's large-object functions,
	// which call the server with FunctionCall messages.
	blob := filepath.Join(dir, "blob.bin")
	payload := bytes.Repeat([]byte{0, 1, 2, 250, 'x'}, 40000)
	if err := os.WriteFile(blob, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	res := runClient(t, "psql", dsn, "-v", "ON_ERROR_STOP=1", "-c", `\lo_import `+blob)
	var oid uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(res), "lo_import %d", &oid); err != nil {
		t.Fatalf("lo_import output %q: %v", res, err)
	}
	exported := filepath.Join(dir, "blob.out")
	runClient(t, "psql", dsn, "-v", "ON_ERROR_STOP=1", "-c", fmt.Sprintf(`\lo_export %d %s`, oid, exported),
		"-c", fmt.Sprintf(`\lo_unlink %d`, oid))
	back, err := os.ReadFile(exported)
	if err != nil || !bytes.Equal(back, payload) {
		t.Fatalf("large object round trip: %d bytes back, %v", len(back), err)
	}
}

func TestPgbenchAllQueryModes(t *testing.T) {
	g := startGateway(t, nil)
	dsn := g.dsn("alice", alicePassword)
	// Initialisation runs DDL, COPY FROM STDIN and VACUUM through the gateway.
	runClient(t, "pgbench", "-i", "-s", "1", "-q", dsn)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			out := runClient(t, "pgbench", "-n", "-M", mode, "-c", "4", "-j", "2", "-t", "250", dsn)
			if !strings.Contains(out, "number of transactions actually processed: 1000/1000") ||
				!strings.Contains(out, "number of failed transactions: 0") {
				t.Fatalf("pgbench -M %s:\n%s", mode, out)
			}
		})
	}
}
