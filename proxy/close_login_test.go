package proxy_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// TestCloseCancelsLogins: Close stops the proxy at once, so the context an
// Authenticator waits on (an identity provider that does not answer) is
// canceled by Close, not left to run to Limits.AuthTimeout.
func TestCloseCancelsLogins(t *testing.T) {
	entered := make(chan struct{})
	seen := make(chan error, 1)
	p := &proxy.Proxy{
		Authenticator: auth.Func(func(ctx context.Context, req *auth.Request) (session.Identity, error) {
			close(entered)
			<-ctx.Done()
			seen <- ctx.Err()
			return session.Identity{}, ctx.Err()
		}),
		Limits: proxy.Limits{AuthTimeout: time.Hour},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	go pgconn.Connect(ctx, "postgres://alice:secret@"+ln.Addr().String()+"/app?sslmode=disable")
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the authenticator was never called")
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case err := <-seen:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the authenticator's context ended with %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not cancel the authenticator's context")
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
}
