package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// A gateway in front of a PostgreSQL server: clients log in as alice with
// SCRAM-SHA-256, the gateway logs in to the server as app_ro (a password
// the client never sees), and every statement is put to the policy. A
// refused statement gets ERROR 42501, and the session stays usable.
func ExampleProxy() {
	users, err := auth.NewStatic(auth.User{
		Name: "alice", Password: session.NewSecret("alice-password"), Groups: []string{"analysts"},
	})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := credstore.NewStatic(credstore.StaticEntry{
		User: "app_ro", Password: session.NewSecret("app-ro-password"), Groups: []string{"analysts"},
	})
	if err != nil {
		log.Fatal(err)
	}
	p := &proxy.Proxy{
		Authenticator: users,
		Credentials:   creds,
		Policy: policy.FirstMatch(
			policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
			policy.BlockTables("public.secrets"),
			policy.Default("default", policy.Allow, ""),
		),
		// The server, e.g. "db.internal:5432"; here the examples' own.
		Upstream: proxy.Upstream{Address: exampleServer("app_ro", "app-ro-password")},
	}
	// p.ListenAndServe() listens on p.Addr; here, any free loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go p.Serve(ln)
	defer p.Close()

	// A client: psql, a libpq program, or here pgx.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://alice:alice-password@"+ln.Addr().String()+"/shop?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	var paid int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders WHERE paid").Scan(&paid); err != nil {
		log.Fatal(err)
	}
	fmt.Println("paid orders:", paid)

	for _, sql := range []string{"DELETE FROM orders", "SELECT * FROM secrets"} {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			fmt.Printf("%s %s: %s\n  %s\n", pgErr.Severity, pgErr.Code, pgErr.Message, pgErr.Detail)
		}
	}

	// Still usable; and the server knows who the session is for.
	var role, subject string
	if err := conn.QueryRow(ctx, "SELECT current_user, current_setting('pgwarden.subject')").Scan(&role, &subject); err != nil {
		log.Fatal(err)
	}
	fmt.Println(role, "for", subject)
	// Output:
	// paid orders: 2
	// ERROR 42501: pgwarden: statement refused by rule "read-only"
	//   This session is read-only: DELETE changes data.
	// ERROR 42501: pgwarden: statement refused by rule "block-tables"
	//   Access to secrets is not allowed.
	// app_ro for alice
}

// Sessions lists the live sessions, for an admin API: who, as which
// role, doing what.
func ExampleProxy_Sessions() {
	p, addr := exampleGateway(nil) // the gateway of the Proxy example
	defer p.Close()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://alice:alice-password@"+addr+"/shop?sslmode=disable&application_name=report")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		log.Fatal(err)
	}

	for _, s := range p.Sessions() {
		fmt.Println(s.Info.Identity.Subject, s.Info.UpstreamUser, s.Info.Database, s.Info.ApplicationName, s.State, s.Statements)
	}
	// Output: alice app_ro shop report idle 1
}

// Terminate ends a session: the client gets FATAL 57P01 with the
// message, the server session is closed, and the credential released.
func ExampleProxy_Terminate() {
	p, addr := exampleGateway(nil) // the gateway of the Proxy example
	defer p.Close()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://alice:alice-password@"+addr+"/shop?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	for _, s := range p.Sessions() {
		if err := p.Terminate(s.Info.ID, "the analysts' access ends at 18:00"); err != nil {
			log.Fatal(err)
		}
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		fmt.Println(pgErr.Severity, pgErr.Code, pgErr.Message)
	}
	fmt.Println(errors.Is(p.Terminate("no-such-session", ""), proxy.ErrSessionNotFound))
	// Output:
	// FATAL 57P01 the analysts' access ends at 18:00
	// true
}

// Shutdown stops accepting, lets sessions finish, then ends them.
func ExampleProxy_Shutdown() {
	p := &proxy.Proxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()

	if err := p.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(errors.Is(<-served, proxy.ErrProxyClosed))
	// Output: true
}
