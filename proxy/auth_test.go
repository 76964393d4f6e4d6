package proxy_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

func TestBadPasswordIsRefusedBeforeAnyUpstreamConnection(t *testing.T) {
	g := startGateway(t, nil)
	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong"},
		{"nobody", "whatever"}, // unknown users get the same answer
	} {
		_, err := pgx.Connect(testContext(t), g.dsn(tc.user, tc.password))
		if pgCode(err) != "28P01" {
			t.Fatalf("%s: err = %v, want SQLSTATE 28P01", tc.user, err)
		}
		if want := `password authentication failed for user "` + tc.user + `"`; !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not say %q", tc.user, err, want)
		}
	}
	if n := g.dials.Load(); n != 0 {
		t.Fatalf("the gateway opened %d upstream connections for failed logins", n)
	}
}

func TestZeroProxyRefusesEveryone(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { *p = proxy.Proxy{Logger: p.Logger} })
	_, err := pgx.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "28000" {
		t.Fatalf("err = %v, want SQLSTATE 28000", err)
	}
	if g.dials.Load() != 0 {
		t.Fatal("the zero proxy connected upstream")
	}
}

func TestNoCredentialStoreRefuses(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Credentials = nil })
	_, err := pgx.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "28000" {
		t.Fatalf("err = %v, want SQLSTATE 28000", err)
	}
}

func TestChannelBindingOverTLS(t *testing.T) {
	var method atomic.Value
	g := startGateway(t, func(p *proxy.Proxy) {
		inner := p.Authenticator
		p.Authenticator = auth.Func(func(ctx context.Context, req *auth.Request) (session.Identity, error) {
			id, err := inner.Authenticate(ctx, req)
			method.Store(id.Method)
			return id, err
		})
	})
	out := runClient(t, "psql", g.tlsDSN("alice", alicePassword, "channel_binding=require"), "-At", "-c", "select 1")
	if strings.TrimSpace(out) != "1" || method.Load() != "scram-sha-256-plus" {
		t.Fatalf("psql with channel_binding=require: %q, method %q", out, method.Load())
	}
	conn := connect(t, g.tlsDSN("alice", alicePassword, "channel_binding=require"))
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok || method.Load() != "scram-sha-256-plus" {
		t.Fatalf("pgx: TLS %v, method %q", ok, method.Load())
	}
	// Without TLS there is nothing to bind to: plain SCRAM.
	connect(t, g.dsn("alice", alicePassword))
	if method.Load() != "scram-sha-256" {
		t.Fatalf("plaintext: method %q", method.Load())
	}
}

func TestClientTLSVerifyFull(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.AllowPlaintext = false })
	conn := connect(t, g.tlsDSN("alice", alicePassword))
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("the client connection is not TLS")
	}
	sessions := g.Sessions()
	if len(sessions) != 1 || sessions[0].Info.TLS == nil || sessions[0].Info.TLS.Version == "" {
		t.Fatalf("sessions %+v", sessions)
	}
	// With TLS available and plaintext not allowed, a plaintext client is
	// refused before it can send a password.
	_, err := pgx.Connect(testContext(t), g.dsn("alice", alicePassword))
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plaintext client: %v", err)
	}
	// A client that verifies the name refuses a certificate for another.
	_, err = pgx.Connect(testContext(t), strings.Replace(g.tlsDSN("alice", alicePassword), "host=localhost", "host=127.0.0.2", 1))
	if err == nil {
		t.Fatal("verify-full accepted a certificate for the wrong host")
	}
}

func TestCleartextSecretsOnlyOverTLS(t *testing.T) {
	tokenAuth := auth.Func(func(ctx context.Context, req *auth.Request) (session.Identity, error) {
		secret, err := req.Client.CleartextPassword(ctx)
		if err != nil {
			return session.Identity{}, err
		}
		if secret.Reveal() != "token-123" {
			return session.Identity{}, auth.ErrInvalidCredentials
		}
		return session.Identity{Subject: req.User, Issuer: "test", Groups: []string{"analysts"}}, nil
	})
	g := startGateway(t, func(p *proxy.Proxy) { p.Authenticator = tokenAuth })
	_, err := pgx.Connect(testContext(t), g.dsn("alice", "token-123"))
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("cleartext over plaintext: %v", err)
	}
	connect(t, g.tlsDSN("alice", "token-123"))
	if _, err := pgx.Connect(testContext(t), g.tlsDSN("alice", "token-456")); pgCode(err) != "28P01" {
		t.Fatalf("wrong token: %v", err)
	}
}
