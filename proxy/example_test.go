package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// A gateway in front of a PostgreSQL server: clients log in as alice with
// SCRAM-SHA-256, the gateway logs in to the server as app_ro, and every
// statement is put to the policy.
func ExampleProxy() {
	users, err := auth.NewStatic(auth.User{
		Name:     "alice",
		Verifier: "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		Groups:   []string{"analysts"},
	})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := credstore.NewStatic(credstore.StaticEntry{
		User: "app_ro", Password: session.NewSecret("from-your-secret-store"), Groups: []string{"analysts"},
	})
	if err != nil {
		log.Fatal(err)
	}
	p := &proxy.Proxy{
		Addr:          "127.0.0.1:6432",
		Authenticator: users,
		Credentials:   creds,
		Policy:        policy.AllowAll(),
		Upstream:      proxy.Upstream{Address: "127.0.0.1:5432"},
	}
	log.Fatal(p.ListenAndServe())
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
