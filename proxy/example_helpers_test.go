package proxy_test

// The plumbing of the examples: the PostgreSQL server they protect is the
// package's test cluster (pg), with a database "shop" of their own.

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

var exampleShop = sync.OnceValue(func() error {
	ctx := context.Background()
	if err := pg.Exec(ctx, "postgres", "CREATE DATABASE shop"); err != nil {
		return err
	}
	return pg.Exec(ctx, "shop", `
		CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, paid boolean NOT NULL DEFAULT false);
		INSERT INTO orders VALUES (1, 'apple', true), (2, 'pear', false), (3, 'plum', true);
		CREATE TABLE secrets (id int PRIMARY KEY, secret text);
		CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
		INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.org');`)
})

// exampleServer returns the address of the PostgreSQL server the
// examples protect, with its database shop, after giving the gateway's
// role (created if need be) password and the rights to use shop's
// tables.
func exampleServer(role, password string) string {
	if err := exampleShop(); err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := pg.Exec(ctx, "postgres", fmt.Sprintf(`
		DO $$ BEGIN
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN; END IF;
		END $$;
		ALTER ROLE %[1]s PASSWORD '%[2]s';`, role, password)); err != nil {
		panic(err)
	}
	if err := pg.Exec(ctx, "shop", fmt.Sprintf(
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %s", role)); err != nil {
		panic(err)
	}
	return pg.Addr()
}

// exampleGateway starts the gateway of the Proxy example on a loopback
// port: alice, an analyst, logs in with her password and reads shop as
// app_ro, read-only, and never the secrets table. configure, when not
// nil, changes the proxy before it serves. It returns the proxy and the
// address clients connect to; Close the proxy when done.
func exampleGateway(configure func(*proxy.Proxy)) (*proxy.Proxy, string) {
	users, err := auth.NewStatic(auth.User{Name: "alice", Password: session.NewSecret("alice-password"), Groups: []string{"analysts"}})
	if err != nil {
		panic(err)
	}
	creds, err := credstore.NewStatic(credstore.StaticEntry{User: "app_ro", Password: session.NewSecret("app-ro-password"),
		Groups: []string{"analysts"}})
	if err != nil {
		panic(err)
	}
	p := &proxy.Proxy{
		Authenticator: users,
		Credentials:   creds,
		Policy: policy.FirstMatch(
			policy.When(policy.InGroup("analysts"), policy.ReadOnly{}),
			policy.BlockTables("public.secrets"),
			policy.Default("default", policy.Allow, ""),
		),
		Upstream: proxy.Upstream{Address: exampleServer("app_ro", "app-ro-password")},
	}
	if configure != nil {
		configure(p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go p.Serve(ln)
	return p, ln.Addr().String()
}
