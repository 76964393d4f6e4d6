package analysis

import (
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite builtin_functions.txt from the test cluster")

// TestBuiltinFunctions checks that the embedded list of built-in function
// names is exactly pg_catalog's: a missing name would make a built-in look
// like a user function (refused as run-time), an extra one would make a
// user function look built in.
func TestBuiltinFunctions(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	conn, err := pgconn.Connect(t.Context(), c.SuperConnString(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	names := catalogNames(t, conn, "builtin_functions.txt",
		"SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace ORDER BY 1")
	rels := catalogNames(t, conn, "catalog_relations.txt",
		"SELECT relname FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace ORDER BY 1")
	ops := catalogNames(t, conn, "builtin_operators.txt",
		"SELECT DISTINCT oprname FROM pg_operator WHERE oid < 16384 ORDER BY 1")
	oids := catalogNames(t, conn, "builtin_oids.txt",
		"SELECT oid::text || ' ' || proname FROM pg_proc WHERE oid < 16384 ORDER BY oid")
	if *update {
		return
	}
	if embedded := strings.Fields(builtinOperatorNames); !slices.Equal(ops, embedded) {
		t.Errorf("builtin_operators.txt differs from the server's pg_operator; run go test -run TestBuiltinFunctions -update")
	}
	for _, line := range oids {
		oid, name, _ := strings.Cut(line, " ")
		n, err := strconv.ParseUint(oid, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := BuiltinFunction(uint32(n)); !ok || got != name {
			t.Errorf("BuiltinFunction(%d) = %q, %v; want %q (run go test -run TestBuiltinFunctions -update)", n, got, ok, name)
		}
	}
	if embedded := strings.Fields(catalogRelationNames); !slices.Equal(rels, embedded) {
		t.Errorf("catalog_relations.txt differs from the server's pg_catalog (%d names, server %d); run go test -run TestBuiltinFunctions -update", len(embedded), len(rels))
	}
	embedded := strings.Fields(builtinFunctionNames)
	if !slices.Equal(names, embedded) {
		for _, n := range names {
			if !builtinFunctions[n] {
				t.Errorf("pg_catalog.%s is missing from builtin_functions.txt", n)
			}
		}
		t.Fatalf("builtin_functions.txt differs from the server's pg_catalog (%d names, server %d); run go test -run TestBuiltinFunctions -update", len(embedded), len(names))
	}
	for name := range writingFunctions {
		if !builtinFunctions[name] {
			t.Errorf("writing function %s is not in pg_catalog", name)
		}
	}
	for name := range sqlRunningFunctions {
		if !builtinFunctions[name] {
			t.Errorf("SQL-running function %s is not in pg_catalog", name)
		}
	}
}

// catalogNames runs sql and returns the first column; with -update it
// writes them to file.
func catalogNames(t *testing.T, conn *pgconn.PgConn, file, sql string) []string {
	t.Helper()
	res := conn.ExecParams(t.Context(), sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var names []string
	for _, row := range res.Rows {
		names = append(names, string(row[0]))
	}
	if *update {
		if err := os.WriteFile(file, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
