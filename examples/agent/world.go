package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/session"
)

// The names of the story.
const (
	database      = "shop"
	person        = "alice"        // the person the agents act for
	approverName  = "bob"          // the person who decides approval requests
	approverGroup = "approvers"    // who may decide them
	analystGroup  = "analysts"     // alice's group, which selects the template role
	parentAgent   = "parent-agent" // the agent alice delegates to
	childAgent    = "child-agent"  // the agent the parent delegates to
	templateRole  = "agent_app"    // what a session's just-in-time role is a member of
	jitAdminRole  = "pgwarden_jit" // the role the gateway creates session roles with
)

// shopSchema is the sample database. The e-mail addresses are what the
// gateway masks; the agent role may read both tables and change orders,
// and nothing else.
const shopSchema = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
INSERT INTO customers VALUES
    (1, 'Ada Lovelace',    'ada@example.com'),
    (2, 'Alan Turing',     'alan@example.org'),
    (3, 'Grace Hopper',    'grace@example.net'),
    (4, 'Edsger Dijkstra', 'edsger@example.com');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,
                     status text NOT NULL DEFAULT 'new');
INSERT INTO orders (customer_id, amount, status) VALUES
    (1, 120.00, 'new'), (2, 35.50, 'new'), (3, 990.00, 'shipped'), (1, 12.25, 'new');
CREATE ROLE agent_app NOLOGIN;
GRANT SELECT ON customers, orders TO agent_app;
GRANT INSERT, UPDATE ON orders TO agent_app;
GRANT USAGE ON SEQUENCE orders_id_seq TO agent_app;
`

// plaintextEmails are the sample addresses, which no agent may see.
func plaintextEmails() []string {
	return []string{"ada@example.com", "alan@example.org", "grace@example.net", "edsger@example.com"}
}

// world is what the story needs that production already has: a
// database, an identity provider and a certificate for the gateway.
// Here they are throwaways, made by pgwarden's internal test packages.
type world struct {
	cluster    *pgtest.Cluster
	idp        *devidp.Provider
	caFile     string          // the CA certificate clients verify the gateway with
	serverCert tls.Certificate // the gateway's certificate
	jitAdmin   session.Secret  // connection string of jitAdminRole
	version    string          // PostgreSQL's version
}

// startWorld starts PostgreSQL with the sample data, the development
// identity provider, and makes the certificates (in dir). On error it
// removes what it made.
func startWorld(ctx context.Context, dir string) (_ *world, err error) {
	w := &world{}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Close())
		}
	}()
	if w.cluster, err = pgtest.Start(ctx, pgtest.Options{Database: database}); err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	if err := w.loadShop(ctx); err != nil {
		return nil, err
	}
	if err := w.makeCertificates(dir); err != nil {
		return nil, fmt.Errorf("making certificates: %w", err)
	}
	if w.idp, err = devidp.Start(context.WithoutCancel(ctx), idpConfig()); err != nil {
		return nil, fmt.Errorf("starting the identity provider: %w", err)
	}
	return w, nil
}

// idpConfig registers the people and the agents at the identity
// provider. alice is an approver too: that does not let her agents
// approve their own requests.
func idpConfig() devidp.Config {
	return devidp.Config{
		Users: []devidp.User{
			{Subject: person, Name: "Alice", Email: "alice@corp.invalid", Groups: []string{analystGroup, approverGroup}},
			{Subject: approverName, Name: "Bob", Email: "bob@corp.invalid", Groups: []string{approverGroup}},
		},
		Clients: []devidp.Client{{ID: parentAgent, Name: parentAgent}, {ID: childAgent, Name: childAgent}},
	}
}

// loadShop creates the sample tables, the template role, and the role the
// gateway creates session roles with (CREATEROLE, ADMIN of the template,
// nothing else; its password goes to the server as a SCRAM verifier).
func (w *world) loadShop(ctx context.Context) error {
	password, err := randomToken()
	if err != nil {
		return err
	}
	verifier, err := auth.Verifier(session.NewSecret(password))
	if err != nil {
		return err
	}
	sql := shopSchema + fmt.Sprintf(`
CREATE ROLE %[1]s LOGIN CREATEROLE PASSWORD '%[2]s';
GRANT %[3]s TO %[1]s WITH ADMIN OPTION;`, jitAdminRole, verifier, templateRole)
	if err := w.cluster.Exec(ctx, database, sql); err != nil {
		return fmt.Errorf("loading the sample data: %w", err)
	}
	w.jitAdmin = session.NewSecret(w.cluster.ConnString(jitAdminRole, password, database))
	return w.superQuery(ctx, func(conn *pgx.Conn) error {
		var v string
		err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
		w.version, _, _ = strings.Cut(v, " ")
		return err
	})
}

// makeCertificates creates a throwaway CA, writes its certificate to
// dir/ca.crt for the clients, and issues the gateway's certificate for
// 127.0.0.1 and localhost.
func (w *world) makeCertificates(dir string) error {
	ca, err := testcert.NewAuthority("pgwarden agent example CA")
	if err != nil {
		return err
	}
	w.caFile = filepath.Join(dir, "ca.crt")
	if err := ca.WriteCertFile(w.caFile); err != nil {
		return err
	}
	leaf, err := ca.Issue("localhost", "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	w.serverCert = leaf.Certificate
	return nil
}

// roleExists asks the server, as the superuser, whether role exists.
func (w *world) roleExists(ctx context.Context, role string) (bool, error) {
	var exists bool
	err := w.superQuery(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_roles WHERE rolname = $1", role).Scan(&exists)
	})
	return exists, err
}

// superQuery runs f on a new superuser connection to the shop database
// (directly, not through the gateway).
func (w *world) superQuery(ctx context.Context, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, w.cluster.SuperConnString(database))
	if err != nil {
		return fmt.Errorf("connecting as the superuser: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// Close stops the identity provider and the cluster (whose files go with
// it).
func (w *world) Close() error {
	if w.idp != nil {
		w.idp.Close()
	}
	if err := w.cluster.Stop(); err != nil {
		return fmt.Errorf("stopping PostgreSQL: %w", err)
	}
	return nil
}

// randomToken returns 32 random bytes, base64url: for passwords and keys.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
