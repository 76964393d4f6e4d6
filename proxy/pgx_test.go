package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connect opens a pgx connection through the gateway, closed at cleanup.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testContext(t), dsn)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgCode returns the SQLSTATE of err, or "" if it is not a server error.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestPgxSimpleExtendedAndPreparedQueries(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))

	var user string
	if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil || user != rwRole {
		t.Fatalf("current_user = %q, %v; want the gateway's role %q", user, err, rwRole)
	}
	var sum int
	if err := conn.QueryRow(ctx, "select $1::int + $2::int", 40, 2).Scan(&sum); err != nil || sum != 42 {
		t.Fatalf("extended protocol: %d, %v", sum, err)
	}
	if err := conn.QueryRow(ctx, "select $1::int * 2", pgx.QueryExecModeSimpleProtocol, 21).Scan(&sum); err != nil || sum != 42 {
		t.Fatalf("simple protocol with arguments: %d, %v", sum, err)
	}
	if _, err := conn.Prepare(ctx, "double", "select $1::int * 2"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := conn.QueryRow(ctx, "double", i).Scan(&sum); err != nil || sum != 2*i {
			t.Fatalf("prepared statement run %d: %d, %v", i, sum, err)
		}
	}
	if err := conn.Deallocate(ctx, "double"); err != nil {
		t.Fatal(err)
	}
	// Several statements in one simple query; an empty query.
	res, err := conn.PgConn().Exec(ctx, "select 1; ; select 2, 3").ReadAll()
	if err != nil || len(res) != 2 || len(res[1].Rows) != 1 || len(res[1].Rows[0]) != 2 {
		t.Fatalf("multi-statement query: %d results, %v", len(res), err)
	}
	if _, err := conn.PgConn().Exec(ctx, "").ReadAll(); err != nil {
		t.Fatalf("empty query: %v", err)
	}
	// An error does not end the session.
	if _, err := conn.Exec(ctx, "select 1/0"); pgCode(err) != "22012" {
		t.Fatalf("division by zero: %v", err)
	}
	if err := conn.QueryRow(ctx, "select 7").Scan(&sum); err != nil || sum != 7 {
		t.Fatalf("after an error: %d, %v", sum, err)
	}
}

func TestPgxBatchPipeline(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	if _, err := conn.Exec(ctx, "create temp table pipe(n int)"); err != nil {
		t.Fatal(err)
	}
	batch := &pgx.Batch{}
	for i := range 50 {
		batch.Queue("insert into pipe values ($1)", i)
	}
	batch.Queue("select count(*), sum(n) from pipe")
	br := conn.SendBatch(ctx, batch)
	for range 50 {
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	var count, sum int
	if err := br.QueryRow().Scan(&count, &sum); err != nil || count != 50 || sum != 49*50/2 {
		t.Fatalf("count %d sum %d, %v", count, sum, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}

	// A raw pipeline with several syncs, and an error in the middle segment:
	// the server skips to the next Sync, and the gateway must follow.
	pipe := conn.PgConn().StartPipeline(ctx)
	pipe.SendQueryParams("select 1", nil, nil, nil, nil)
	pipe.SendPipelineSync()
	pipe.SendQueryParams("select 1/0", nil, nil, nil, nil)
	pipe.SendQueryParams("select 2", nil, nil, nil, nil)
	pipe.SendPipelineSync()
	pipe.SendQueryParams("select 3", nil, nil, nil, nil)
	pipe.SendPipelineSync()
	if err := pipe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		r, err := pipe.GetResults()
		if err != nil {
			got = append(got, "error "+pgCode(err))
			continue
		}
		if r == nil {
			break
		}
		switch r := r.(type) {
		case *pgconn.ResultReader:
			res := r.Read()
			if res.Err != nil {
				got = append(got, "error "+pgCode(res.Err))
			} else {
				got = append(got, string(res.Rows[0][0]))
			}
		case *pgconn.PipelineSync:
			got = append(got, "sync")
			if len(got) >= 6 {
				// The last sync: Close would wait for more.
			}
		}
		if len(got) == 6 {
			break
		}
	}
	if err := pipe.Close(); err != nil && pgCode(err) != "22012" {
		t.Fatal(err)
	}
	want := "1 sync error 22012 sync 3 sync"
	if strings.Join(got, " ") != want {
		t.Fatalf("pipeline answers %q, want %q", strings.Join(got, " "), want)
	}
	var n int
	if err := conn.QueryRow(ctx, "select 4").Scan(&n); err != nil || n != 4 {
		t.Fatalf("after the pipeline: %d, %v", n, err)
	}
}

func TestPgxCopyFromAndTo(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	if _, err := conn.Exec(ctx, "create temp table copied(id int, name text)"); err != nil {
		t.Fatal(err)
	}
	const rows = 20000
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"copied"}, []string{"id", "name"},
		pgx.CopyFromSlice(rows, func(i int) ([]any, error) { return []any{i, fmt.Sprintf("name %d", i)}, nil }))
	if err != nil || n != rows {
		t.Fatalf("CopyFrom: %d, %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "copy (select * from copied order by id) to stdout")
	if err != nil || tag.RowsAffected() != rows {
		t.Fatalf("CopyTo: %v, %v", tag, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != rows || lines[rows-1] != fmt.Sprintf("%d\tname %d", rows-1, rows-1) {
		t.Fatalf("CopyTo returned %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	// A COPY FROM that fails halfway: the session carries on.
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("1\tok\nnot-a-number\tbad\n"), "copy copied from stdin")
	if pgCode(err) != "22P02" {
		t.Fatalf("bad COPY data: %v", err)
	}
	var count int
	if err := conn.QueryRow(ctx, "select count(*) from copied").Scan(&count); err != nil || count != rows {
		t.Fatalf("after the failed COPY: %d, %v", count, err)
	}
}

func TestPgxListenNotify(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	listener := connect(t, g.dsn("alice", alicePassword))
	notifier := connect(t, g.dsn("bob", bobPassword))
	if _, err := listener.Exec(ctx, "listen pgwarden_test"); err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.Exec(ctx, "select pg_notify('pgwarden_test', 'hello through the gateway')"); err != nil {
		t.Fatal(err)
	}
	n, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Channel != "pgwarden_test" || n.Payload != "hello through the gateway" {
		t.Fatalf("notification %+v", n)
	}
}

func TestPgxLargeObjects(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	los := tx.LargeObjects()
	oid, err := los.Create(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := los.Open(ctx, oid, pgx.LargeObjectModeRead|pgx.LargeObjectModeWrite)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("large object "), 10000)
	if _, err := lo.Write(payload); err != nil {
		t.Fatal(err)
	}
	if _, err := lo.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := lo.Read(got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes, equal %v, %v", len(got), bytes.Equal(got, payload), err)
	}
	if err := los.Unlink(ctx, oid); err != nil {
		t.Fatal(err)
	}
}

func TestPgxMillionRowResult(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	start := time.Now()
	rows, err := conn.Query(ctx, "select g, md5(g::text) from generate_series(1, 1000000) g")
	if err != nil {
		t.Fatal(err)
	}
	var count, sum int64
	for rows.Next() {
		var n int64
		var h string
		if err := rows.Scan(&n, &h); err != nil {
			t.Fatal(err)
		}
		count++
		sum += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != 1000000 || sum != 1000000*1000001/2 {
		t.Fatalf("got %d rows summing to %d", count, sum)
	}
	t.Logf("1,000,000 rows through the gateway in %v", time.Since(start).Round(time.Millisecond))
}
