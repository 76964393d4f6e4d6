package proxy_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/proxy"
)

func TestMaxSessions(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxSessions = 2 })
	connectRaw(t, g.dsn("alice", alicePassword))
	second := connectRaw(t, g.dsn("alice", alicePassword))
	_, err := pgconn.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "53300" {
		t.Fatalf("third session: %v, want SQLSTATE 53300", err)
	}
	second.Close(testContext(t))
	waitFor(t, func() bool { return len(g.Sessions()) == 1 })
	// The closed session's admission is given back: a new one gets in (the
	// refused third one may still be on its way out on a loaded host).
	waitFor(t, func() bool {
		c, err := pgconn.Connect(testContext(t), g.dsn("alice", alicePassword))
		if err != nil {
			return false
		}
		c.Close(testContext(t))
		return true
	})
}

// dialRaw opens a plain TCP connection to the gateway.
func dialRaw(t testing.TB, g *gateway) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readFatal reads messages until the gateway closes the connection and
// returns the last ErrorResponse (nil if none).
func readFatal(t testing.TB, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	fe := pgproto3.NewFrontend(c, io.Discard)
	var last *pgproto3.ErrorResponse
	for {
		m, err := fe.Receive()
		if err != nil {
			return last
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			copied := *e
			last = &copied
		}
	}
}

func startupBytes(t testing.TB, params map[string]string) []byte {
	t.Helper()
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStartupTimeoutClosesSilentConnections(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.StartupTimeout = 200 * time.Millisecond })
	c := dialRaw(t, g)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection that sent nothing was kept open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the gateway did not close the silent connection")
	}
}

func TestAuthTimeout(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.AuthTimeout = 300 * time.Millisecond })
	c := dialRaw(t, g)
	c.Write(startupBytes(t, map[string]string{"user": "alice", "database": "app"}))
	// Read the SASL request, answer nothing.
	e := readFatal(t, c)
	if e == nil || e.Code != "57014" || e.Severity != "FATAL" {
		t.Fatalf("got %+v, want FATAL 57014", e)
	}
}

func TestIdleTimeout(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.IdleTimeout = 400 * time.Millisecond })
	ctx := testContext(t)
	c := connectRaw(t, g.dsn("alice", alicePassword))
	// A statement that runs longer than the idle timeout is not idleness.
	if err := execErr(ctx, c, "select pg_sleep(0.8)"); err != nil {
		t.Fatalf("a long statement was cut: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	err := execErr(ctx, c, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P05" {
		t.Fatalf("after idling: %v, want FATAL 57P05", err)
	}
}

func TestMaxMessageSize(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxMessageSize = 1 << 20 })
	conn := connect(t, g.dsn("alice", alicePassword))
	_, err := conn.Exec(testContext(t), "select '"+strings.Repeat("x", 2<<20)+"'", pgx.QueryExecModeSimpleProtocol)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "54000" || pgErr.Severity != "FATAL" {
		t.Fatalf("oversize query: %v, want FATAL 54000", err)
	}
	// Others are unaffected.
	connect(t, g.dsn("alice", alicePassword))
}

func TestDeepPipelinesWaitForAnswers(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 4 })
	fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	defer conn.Close()
	const n = 500
	for range n {
		fe.Send(&pgproto3.Query{String: "select 1"})
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msgs := receiveUntilReady(t, fe)
		if len(msgs) != 4 { // RowDescription, DataRow, CommandComplete, ReadyForQuery
			t.Fatalf("answer %d: %d messages", i, len(msgs))
		}
	}
}
