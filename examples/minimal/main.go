// Command minimal is the smallest useful pgwarden gateway: one login checked
// with SCRAM-SHA-256, one database credential the client never sees, TLS,
// reads only, and customers' e-mail addresses masked. Its configuration
// comes from the environment (see README.md).
package main

import (
	"context"
	"crypto/tls"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

func main() {
	cert, err := tls.LoadX509KeyPair(os.Getenv("TLS_CERT"), os.Getenv("TLS_KEY"))
	must(err)
	users, err := auth.NewStatic(auth.User{Name: os.Getenv("LOGIN_USER"), Verifier: os.Getenv("LOGIN_VERIFIER")})
	must(err)
	creds, err := credstore.NewStatic(credstore.StaticEntry{User: os.Getenv("DB_USER"), Password: session.NewSecret(os.Getenv("DB_PASSWORD"))})
	must(err)
	p := &proxy.Proxy{
		Addr:          os.Getenv("LISTEN_ADDR"), // empty: 127.0.0.1:6432
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}},
		Authenticator: users,
		Credentials:   creds,
		Policy:        policy.FirstMatch(policy.ReadOnly{}, policy.Default("reads", policy.Allow, "")),
		Masks:         mask.Rules{{Column: "public.customers.email", Masker: mask.Email(true)}},
		Upstream:      proxy.Upstream{Address: os.Getenv("DB_ADDR")},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- p.ListenAndServe() }()
	select {
	case err := <-served:
		log.Fatal(err)
	case <-ctx.Done(): // let sessions finish their transactions, for at most 30s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(p.Shutdown(ctx))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
