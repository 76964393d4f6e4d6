package proxy_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

func TestUpstreamDownIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	g := startGateway(t, func(p *proxy.Proxy) { p.Upstream.Address = closed })
	_, err = pgx.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "08001" || !strings.Contains(err.Error(), "could not connect to the database server") {
		t.Fatalf("err = %v, want SQLSTATE 08001 saying the server is unreachable", err)
	}
	if strings.Contains(err.Error(), closed) {
		t.Fatalf("the error reveals the upstream address: %v", err)
	}
}

func TestUpstreamMD5Credential(t *testing.T) {
	g := startGateway(t, nil)
	conn := connect(t, g.dsn("bob", bobPassword))
	var user string
	if err := conn.QueryRow(testContext(t), "select current_user").Scan(&user); err != nil || user != md5Role {
		t.Fatalf("current_user %q, %v", user, err)
	}
}

func TestUpstreamTLSVerifyFull(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Upstream.TLS = &tls.Config{RootCAs: pg.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	})
	conn := connect(t, g.dsn("alice", alicePassword))
	var ssl bool
	if err := conn.QueryRow(testContext(t), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("the upstream connection is not TLS: %v, %v", ssl, err)
	}

	// A server whose certificate does not verify is refused.
	bad := startGateway(t, func(p *proxy.Proxy) {
		p.Upstream.TLS = &tls.Config{RootCAs: pg.CA.Pool(), ServerName: "db.example.com"}
	})
	if _, err := pgx.Connect(testContext(t), bad.dsn("alice", alicePassword)); pgCode(err) != "08001" {
		t.Fatalf("unverifiable upstream certificate: %v", err)
	}
}

func TestUpstreamRejectingTheGatewayCredential(t *testing.T) {
	const wrong = "not-the-upstream-password"
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Credentials = &credstore.Static{Entries: []credstore.StaticEntry{{User: rwRole, Password: session.NewSecret(wrong)}}}
	})
	_, err := pgx.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "08004" {
		t.Fatalf("err = %v, want SQLSTATE 08004", err)
	}
	if strings.Contains(err.Error(), rwRole) || strings.Contains(err.Error(), wrong) {
		t.Fatalf("the client error reveals the gateway's credential: %v", err)
	}
}

func TestUpstreamErrorsAboutTheClientsRequestPassThrough(t *testing.T) {
	g := startGateway(t, nil)
	_, err := pgx.Connect(testContext(t), strings.Replace(g.dsn("alice", alicePassword), "dbname=app", "dbname=nosuchdb", 1))
	if pgCode(err) != "3D000" {
		t.Fatalf("unknown database: %v, want SQLSTATE 3D000", err)
	}
}
