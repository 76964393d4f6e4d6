package compat

// The Go drivers, in process: pgx (github.com/jackc/pgx/v5) and lib/pq
// (github.com/lib/pq) through database/sql.

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
)

// The results the cases expect.
var (
	wantNames   = []string{"alpha", "beta", "gamma"}
	wantMasked  = []idEmail{{1, maskedEmails[0]}, {2, maskedEmails[1]}}
	wantCopyOut = "1\t" + maskedEmails[0] + "\n2\t" + maskedEmails[1] + "\n"
)

type idEmail struct {
	ID    int32
	Email string
}

// The statements of the cases.
const (
	sqlNames       = "SELECT name FROM compat_items ORDER BY id"
	sqlNameByID    = "SELECT name FROM compat_items WHERE id = $1"
	sqlPlusOne     = "SELECT $1::int + 1"
	sqlCustomers   = "SELECT id, email FROM compat_customers ORDER BY id"
	sqlEmailByID   = "SELECT email FROM compat_customers WHERE id = $1"
	sqlCountFrom   = "SELECT count(*) FROM compat_items WHERE id > $1"
	sqlCountID     = "SELECT count(*) FROM compat_items WHERE id = $1"
	sqlInsert      = "INSERT INTO compat_items VALUES ($1, 'tx')"
	sqlDelete      = "DELETE FROM compat_items WHERE id = $1"
	sqlCopyIn      = "COPY compat_items (id, name) FROM STDIN"
	sqlCopyOut     = "COPY (SELECT id, email FROM compat_customers ORDER BY id) TO STDOUT"
	sqlWhoAmI      = "SELECT current_setting('pgwarden.subject')"
	sqlCountAbsent = "SELECT count(*) FROM compat_items WHERE id = %d"
)

// quoteValue quotes a value of a keyword/value connection string.
func quoteValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// keywordDSN is a keyword/value connection string for the gateway that
// verifies its certificate fully; password may be empty.
func (h *harness) keywordDSN(user, password string) string {
	parts := []string{
		"host=" + quoteValue(h.host), "port=" + h.port, "dbname=" + database, "user=" + quoteValue(user),
		"sslmode=verify-full", "sslrootcert=" + quoteValue(h.caFile), "connect_timeout=30",
	}
	if password != "" {
		parts = append(parts, "password="+quoteValue(password))
	}
	return strings.Join(parts, " ")
}

// checkRefusedDelete fails t unless err is the policy's refusal: SQLSTATE
// 42501 naming the rule no-deletes.
func checkRefusedDelete(t testing.TB, h *harness, code, message string, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("the DELETE succeeded; want ERROR 42501 from the rule no-deletes")
	}
	if code != "42501" || !strings.Contains(message, noDeletes) {
		t.Fatalf("the DELETE failed with SQLSTATE %q, %q (%s); want 42501 naming %s", code, message, h.redact(err.Error()), noDeletes)
	}
}

// runPgx runs the cases with pgx: the simple protocol with
// QueryExecModeSimpleProtocol, the extended protocol with pgx's default
// (prepared and cached statements), COPY with CopyFrom (binary) and
// PgConn().CopyTo.
func runPgx(t *testing.T, h *harness, l login, base int) {
	var conn *pgx.Conn
	if !t.Run("connect", func(t *testing.T) {
		ctx := testContext(t)
		cfg, err := pgx.ParseConfig(h.keywordDSN(l.user, ""))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = l.password // set directly: no quoting involved
		conn, err = pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect: %s", h.redact(err.Error()))
		}
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Errorf("the connection is a %T, not TLS", conn.PgConn().Conn())
		}
		var subject string
		if err := conn.QueryRow(ctx, sqlWhoAmI).Scan(&subject); err != nil {
			t.Fatal(err)
		}
		if subject != l.subject {
			t.Errorf("pgwarden.subject = %q, want %q", subject, l.subject)
		}
	}) {
		if conn != nil {
			conn.Close(context.Background())
		}
		return
	}
	defer conn.Close(context.Background())

	t.Run("simple", func(t *testing.T) {
		ctx := testContext(t)
		rows, _ := conn.Query(ctx, sqlNames, pgx.QueryExecModeSimpleProtocol)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names, wantNames) {
			t.Errorf("names = %q, want %q", names, wantNames)
		}
	})

	t.Run("parameterized", func(t *testing.T) {
		ctx := testContext(t)
		// Twice: the second time pgx binds its cached prepared statement
		// without a Parse or a Describe.
		for i := range 2 {
			var name string
			if err := conn.QueryRow(ctx, sqlNameByID, 2).Scan(&name); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
			if name != "beta" {
				t.Errorf("run %d: name = %q, want beta", i+1, name)
			}
			var n int32
			if err := conn.QueryRow(ctx, sqlPlusOne, 41).Scan(&n); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
			if n != 42 {
				t.Errorf("run %d: $1::int + 1 with 41 = %d, want 42", i+1, n)
			}
		}
	})

	t.Run("transaction", func(t *testing.T) {
		ctx := testContext(t)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, sqlInsert, base+1); err != nil {
			t.Fatalf("INSERT: %v", err)
		}
		_, err = tx.Exec(ctx, sqlDelete, base+1)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			checkRefusedDelete(t, h, pgErr.Code, pgErr.Message, err)
		} else {
			checkRefusedDelete(t, h, "", "", err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("ROLLBACK: %v", err)
		}
		var n int64
		if err := conn.QueryRow(ctx, sqlCountID, base+1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("count after ROLLBACK = %d, want 0", n)
		}
	})

	t.Run("masked", func(t *testing.T) {
		ctx := testContext(t)
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			var raw bytes.Buffer
			rows, _ := conn.Query(ctx, sqlCustomers, mode)
			got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (idEmail, error) {
				for _, v := range row.RawValues() {
					raw.Write(v)
					raw.WriteByte(0)
				}
				return pgx.RowToStructByPos[idEmail](row)
			})
			if err != nil {
				t.Fatalf("%v: %v", mode, err)
			}
			if !reflect.DeepEqual(got, wantMasked) {
				t.Errorf("%v: rows = %v, want %v", mode, got, wantMasked)
			}
			checkNoPlaintext(t, fmt.Sprintf("%v: the raw values", mode), raw.String())
		}
		var email string
		if err := conn.QueryRow(ctx, sqlEmailByID, 1).Scan(&email); err != nil {
			t.Fatal(err)
		}
		if email != maskedEmails[0] {
			t.Errorf("email of 1 = %q, want %q", email, maskedEmails[0])
		}
	})

	t.Run("copy", func(t *testing.T) {
		ctx := testContext(t)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"compat_items"}, []string{"id", "name"},
			pgx.CopyFromRows([][]any{{int32(base + 2), "copy-a"}, {int32(base + 3), "copy-b"}}))
		if err != nil {
			t.Fatalf("CopyFrom: %v", err)
		}
		if n != 2 {
			t.Errorf("CopyFrom copied %d rows, want 2", n)
		}
		var count int64
		if err := tx.QueryRow(ctx, sqlCountFrom, base).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 2 {
			t.Errorf("count of the copied rows = %d, want 2", count)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("ROLLBACK: %v", err)
		}
		var out bytes.Buffer
		tag, err := conn.PgConn().CopyTo(ctx, &out, sqlCopyOut)
		if err != nil {
			t.Fatalf("CopyTo: %v", err)
		}
		if out.String() != wantCopyOut {
			checkNoPlaintext(t, "COPY TO STDOUT", out.String())
			t.Errorf("COPY TO STDOUT = %q, want %q", out.String(), wantCopyOut)
		}
		if tag.RowsAffected() != 2 {
			t.Errorf("COPY TO command tag %q, want 2 rows", tag)
		}
	})
}

// runLibPQ runs the cases with lib/pq through database/sql, on one
// connection: lib/pq sends a statement without arguments as a simple Query
// and one with arguments with the extended protocol (an unnamed statement).
// COPY FROM STDIN goes through a prepared COPY statement in a transaction.
// lib/pq has no API for COPY TO STDOUT, so that half of the copy case is
// skipped: a prepared COPY TO sends CopyFail on the CopyOutResponse and then
// fails on the CopyData that follows (copy.go, prepareCopyIn), and a Query
// fails on the CopyOutResponse (conn.go, simpleQuery), whatever the server.
func runLibPQ(t *testing.T, h *harness, l login, base int) {
	var (
		db   *sql.DB
		conn *sql.Conn
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
		if db != nil {
			db.Close()
		}
	}()
	if !t.Run("connect", func(t *testing.T) {
		ctx := testContext(t)
		connector, err := pq.NewConnector(h.keywordDSN(l.user, l.password))
		if err != nil {
			t.Fatalf("parsing the connection string: %s", h.redact(err.Error()))
		}
		db = sql.OpenDB(connector)
		conn, err = db.Conn(ctx)
		if err != nil {
			t.Fatalf("connect: %s", h.redact(err.Error()))
		}
		var subject string
		if err := conn.QueryRowContext(ctx, sqlWhoAmI).Scan(&subject); err != nil {
			t.Fatal(err)
		}
		if subject != l.subject {
			t.Errorf("pgwarden.subject = %q, want %q", subject, l.subject)
		}
	}) {
		return
	}

	t.Run("simple", func(t *testing.T) {
		ctx := testContext(t)
		names, err := sqlStrings(conn.QueryContext(ctx, sqlNames))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names, wantNames) {
			t.Errorf("names = %q, want %q", names, wantNames)
		}
	})

	t.Run("parameterized", func(t *testing.T) {
		ctx := testContext(t)
		var name string
		if err := conn.QueryRowContext(ctx, sqlNameByID, 2).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "beta" {
			t.Errorf("name = %q, want beta", name)
		}
		var n int
		if err := conn.QueryRowContext(ctx, sqlPlusOne, 41).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 42 {
			t.Errorf("$1::int + 1 with 41 = %d, want 42", n)
		}
	})

	t.Run("transaction", func(t *testing.T) {
		ctx := testContext(t)
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, sqlInsert, base+1); err != nil {
			t.Fatalf("INSERT: %v", err)
		}
		_, err = tx.ExecContext(ctx, sqlDelete, base+1)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) {
			checkRefusedDelete(t, h, string(pqErr.Code), pqErr.Message, err)
		} else {
			checkRefusedDelete(t, h, "", "", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("ROLLBACK: %v", err)
		}
		var n int
		if err := conn.QueryRowContext(ctx, sqlCountID, base+1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("count after ROLLBACK = %d, want 0", n)
		}
	})

	t.Run("masked", func(t *testing.T) {
		ctx := testContext(t)
		rows, err := conn.QueryContext(ctx, sqlCustomers) // simple protocol
		if err != nil {
			t.Fatal(err)
		}
		var got []idEmail
		for rows.Next() {
			var r idEmail
			var raw sql.RawBytes
			if err := rows.Scan(&r.ID, &raw); err != nil {
				t.Fatal(err)
			}
			checkNoPlaintext(t, "the raw value", string(raw))
			r.Email = string(raw)
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if !reflect.DeepEqual(got, wantMasked) {
			t.Errorf("rows = %v, want %v", got, wantMasked)
		}
		var email string
		if err := conn.QueryRowContext(ctx, sqlEmailByID, 1).Scan(&email); err != nil { // extended
			t.Fatal(err)
		}
		if email != maskedEmails[0] {
			t.Errorf("email of 1 = %q, want %q", email, maskedEmails[0])
		}
	})

	t.Run("copy", func(t *testing.T) {
		t.Run("from-stdin", func(t *testing.T) {
			ctx := testContext(t)
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			stmt, err := tx.PrepareContext(ctx, sqlCopyIn)
			if err != nil {
				t.Fatalf("COPY FROM STDIN: %v", err)
			}
			for _, r := range []struct {
				id   int
				name string
			}{{base + 2, "copy-a"}, {base + 3, "copy-b"}} {
				if _, err := stmt.ExecContext(ctx, r.id, r.name); err != nil {
					t.Fatalf("copying a row: %v", err)
				}
			}
			res, err := stmt.ExecContext(ctx)
			if err != nil {
				t.Fatalf("ending the COPY: %v", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 2 {
				t.Errorf("COPY copied %d rows (%v), want 2", n, err)
			}
			if err := stmt.Close(); err != nil {
				t.Fatal(err)
			}
			var count int
			if err := tx.QueryRowContext(ctx, sqlCountFrom, base).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != 2 {
				t.Errorf("count of the copied rows = %d, want 2", count)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatalf("ROLLBACK: %v", err)
			}
			if err := conn.QueryRowContext(ctx, fmt.Sprintf(sqlCountAbsent, base+2)).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != 0 {
				t.Errorf("count after ROLLBACK = %d, want 0", count)
			}
		})
		t.Run("to-stdout", func(t *testing.T) {
			t.Skip("lib/pq has no API for COPY TO STDOUT: a prepared COPY TO fails with " +
				"\"pq: unknown response for CopyFail\", a Query with \"pq: unknown response for simple query: CopyOutResponse\"")
		})
	})
}

// sqlStrings reads a one-column result of strings.
func sqlStrings(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
