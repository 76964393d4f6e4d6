package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/proxy"
)

// callInt4pl calls int4pl(a, b) through the gateway with a FunctionCall
// message (the fast-path interface) and returns the answer up to
// ReadyForQuery.
func callInt4pl(t *testing.T, g *gateway, a, b byte) []pgproto3.BackendMessage {
	t.Helper()
	pc := connectRaw(t, g.dsn("alice", alicePassword))
	res := pc.ExecParams(testContext(t), "select 'int4pl'::regproc::oid", nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	fe, conn := hijack(t, pc)
	defer conn.Close()
	fe.Send(&pgproto3.FunctionCall{Function: parseOID(t, res.Rows[0][0]),
		ArgFormatCodes: []uint16{1}, Arguments: [][]byte{{0, 0, 0, a}, {0, 0, 0, b}}, ResultFormatCode: 1})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	return receiveUntilReady(t, fe)
}

func TestFunctionCallIsRelayed(t *testing.T) {
	g := startGateway(t, nil)
	msgs := callInt4pl(t, g, 2, 3)
	r, ok := msgs[0].(*pgproto3.FunctionCallResponse)
	if len(msgs) != 2 || !ok || string(r.Result) != "\x00\x00\x00\x05" {
		t.Fatalf("int4pl(2, 3) through the gateway: %#v", msgs)
	}
}

func TestParameterStatusAndNoticesAreRelayed(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	var notices []string
	cfg, err := pgconn.ParseConfig(g.dsn("alice", alicePassword, "application_name=relay-test", "timezone=Europe/Paris"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	if pc.ParameterStatus("server_version") == "" || pc.ParameterStatus("application_name") != "relay-test" ||
		pc.ParameterStatus("TimeZone") != "Europe/Paris" {
		t.Fatalf("parameters: server_version %q application_name %q TimeZone %q", pc.ParameterStatus("server_version"),
			pc.ParameterStatus("application_name"), pc.ParameterStatus("TimeZone"))
	}
	if err := execErr(ctx, pc, "set timezone = 'Asia/Tokyo'; do $$ begin raise notice 'hello from the server'; end $$"); err != nil {
		t.Fatal(err)
	}
	if pc.ParameterStatus("TimeZone") != "Asia/Tokyo" {
		t.Fatalf("a ParameterStatus after SET was not relayed: %q", pc.ParameterStatus("TimeZone"))
	}
	if len(notices) != 1 || notices[0] != "hello from the server" {
		t.Fatalf("notices %q", notices)
	}
}

func TestServerEndingTheSessionReachesTheClient(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	victim := connectRaw(t, g.dsn("alice", alicePassword))
	res := victim.ExecParams(ctx, "select pg_backend_pid()", nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	admin, err := pgconn.Connect(ctx, pg.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if err := execErr(ctx, admin, "select pg_terminate_backend("+string(res.Rows[0][0])+")"); err != nil {
		t.Fatal(err)
	}
	err = execErr(ctx, victim, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" || !strings.Contains(pgErr.Message, "administrator command") {
		t.Fatalf("err = %v, want the server's FATAL 57P01", err)
	}
	waitFor(t, func() bool { return len(g.Sessions()) == 0 })
}

func TestUpstreamConnectionLostMidSession(t *testing.T) {
	addr := fakeServer(t, nil) // closes the connection on the first query
	g := startGateway(t, func(p *proxy.Proxy) { p.Upstream.Address = addr })
	c := connectRaw(t, g.dsn("alice", alicePassword))
	err := execErr(testContext(t), c, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "08006" || pgErr.Severity != "FATAL" {
		t.Fatalf("err = %v, want FATAL 08006", err)
	}
}
