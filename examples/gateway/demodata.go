package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/session"
)

// demoRole is the database role the gateway logs in as for the demo.
const demoRole = "demo_app"

// demoUserCount and demoOrderCount are the sample table sizes.
const (
	demoUserCount  = 10
	demoOrderCount = 30
)

// demoSchema creates the sample tables. The people are famous computer
// scientists with made-up e-mail addresses and SSNs from the 9xx range,
// which are never issued: masking them is what a policy would do.
const demoSchema = `
CREATE TABLE users (
    id serial PRIMARY KEY,
    name text,
    email text,
    ssn text
);
INSERT INTO users (name, email, ssn) VALUES
    ('Ada Lovelace',      'ada@example.com',      '900-12-0001'),
    ('Alan Turing',       'alan@example.com',     '900-12-0002'),
    ('Grace Hopper',      'grace@example.com',    '900-12-0003'),
    ('Edsger Dijkstra',   'edsger@example.com',   '900-12-0004'),
    ('Barbara Liskov',    'barbara@example.com',  '900-12-0005'),
    ('Donald Knuth',      'donald@example.com',   '900-12-0006'),
    ('Margaret Hamilton', 'margaret@example.com', '900-12-0007'),
    ('Ken Thompson',      'ken@example.com',      '900-12-0008'),
    ('Frances Allen',     'frances@example.com',  '900-12-0009'),
    ('John McCarthy',     'john@example.com',     '900-12-0010');

CREATE TABLE orders (
    id serial PRIMARY KEY,
    user_id int REFERENCES users,
    amount numeric(10,2),
    created_at timestamptz DEFAULT now()
);
INSERT INTO orders (user_id, amount, created_at)
SELECT 1 + i % 10,
       round((5 + (i * 37) % 240 + (i % 4) * 0.25)::numeric, 2),
       now() - i * interval '19 hours'
FROM generate_series(0, 29) AS i;
`

// loadSampleData creates the sample schema and the role demoRole with
// password appPassword (sent to the server as a SCRAM verifier, never in
// clear), and returns the server's version.
func loadSampleData(ctx context.Context, c *pgtest.Cluster, appPassword session.Secret) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, c.SuperConnString(demoDatabase))
	if err != nil {
		return "", fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	verifier, err := auth.Verifier(appPassword)
	if err != nil {
		return "", err
	}
	sql := demoSchema + fmt.Sprintf(`
CREATE ROLE %[1]s LOGIN PASSWORD %[2]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, orders TO %[1]s;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %[1]s;
`, demoRole, sqlLiteral(verifier))
	results, err := conn.Exec(ctx, sql).ReadAll()
	for _, r := range results {
		if err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return "", fmt.Errorf("creating the sample data: %w", err)
	}
	version := conn.ParameterStatus("server_version")
	if f := strings.Fields(version); len(f) > 0 {
		version = f[0]
	}
	return version, nil
}

// sqlLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on).
func sqlLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
