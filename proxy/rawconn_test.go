package proxy_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// hijack takes over an authenticated pgconn connection through the gateway,
// to speak raw protocol messages on it.
func hijack(t testing.TB, pc *pgconn.PgConn) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	if err := pc.SyncConn(testContext(t)); err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	hc.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	return pgproto3.NewFrontend(hc.Conn, hc.Conn), hc.Conn
}

// receiveUntilReady reads messages up to and including ReadyForQuery,
// copying them (pgproto3 reuses its message values).
func receiveUntilReady(t testing.TB, fe *pgproto3.Frontend) []pgproto3.BackendMessage {
	t.Helper()
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		copied := copyBackend(t, m, b)
		out = append(out, copied)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return out
		}
	}
}

func copyBackend(t testing.TB, m pgproto3.BackendMessage, encoded []byte) pgproto3.BackendMessage {
	t.Helper()
	var c pgproto3.BackendMessage
	switch m.(type) {
	case *pgproto3.ErrorResponse:
		c = &pgproto3.ErrorResponse{}
	case *pgproto3.ReadyForQuery:
		c = &pgproto3.ReadyForQuery{}
	case *pgproto3.FunctionCallResponse:
		c = &pgproto3.FunctionCallResponse{}
	default:
		return m
	}
	if err := c.Decode(encoded[5:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func parseOID(t testing.TB, text []byte) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(string(text), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}
