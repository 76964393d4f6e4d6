// Package compat is the client compatibility matrix: real PostgreSQL clients
// (pgx, lib/pq, psql, pgbench, node-postgres, psycopg 2 and 3, the PostgreSQL
// JDBC driver) run the same cases through a pgwarden gateway that has a
// policy and masking on, over TLS with full certificate verification, once
// with a SCRAM-SHA-256 password and once with an OIDC access token as the
// password. A client that fails a case is a gateway bug to fix, never a case
// to drop.
//
// The tests start everything they need: a PostgreSQL cluster
// (internal/pgtest), a certificate authority (internal/testcert), the
// development OpenID provider (internal/devidp) and the proxy, composed in
// process. `make test` (and `make compat`) installs the clients that are
// missing: Debian's python3-psycopg2, python3-psycopg and
// libpostgresql-jdbc-java, and node-postgres from npm (.ci/compat-deps).
//
// # The contract between the harness and a client program
//
// The programs under clients/ (node, python, java) are run by the harness
// with this environment:
//
//	PGW_HOST, PGW_PORT   the gateway; PGW_HOST matches its certificate
//	PGW_DATABASE         the database
//	PGW_SSLROOTCERT      PEM file of the CA; clients verify the server fully
//	                     (libpq's sslmode=verify-full or its equivalent)
//	PGW_MODE             "scram" or "token"
//	PGW_USER             the login name
//	PGW_PASSWORD         the SCRAM password, or the access token (a JWT)
//	PGW_ID_BASE          an integer; rows the client writes use ids
//	                     PGW_ID_BASE+1 .. PGW_ID_BASE+99, so runs never collide
//
// The harness creates, before any client runs:
//
//	compat_items(id int primary key, name text)
//	    (1,'alpha'), (2,'beta'), (3,'gamma')
//	compat_customers(id int primary key, email text)
//	    (1,'alice@example.com'), (2,'bob@example.org')
//
// compat_customers.email is masked for everyone with mask.Email(true), so a
// client reads '***@example.com' and '***@example.org'. The policy refuses
// every DELETE with the rule "no-deletes" (ERROR, SQLSTATE 42501, the message
// names the rule) and allows what the cases below need.
//
// A program runs these cases in order and prints one line per case on
// stdout: "ok <case>", "FAIL <case>: <why>", or "skip <case>: <why>" (only
// for what the client has no API for; the harness decides whether a skip is
// acceptable). It exits 0 only when no case failed. Anything else goes to
// stderr.
//
//	connect        connect and authenticate over TLS with full verification
//	simple         simple protocol: SELECT name FROM compat_items ORDER BY id
//	               returns alpha, beta, gamma
//	parameterized  extended protocol: SELECT name FROM compat_items WHERE id = $1
//	               with 2 returns beta; SELECT $1::int + 1 with 41 returns 42
//	transaction    BEGIN; INSERT INTO compat_items VALUES (base+1, 'tx');
//	               DELETE FROM compat_items WHERE id = base+1 fails with
//	               SQLSTATE 42501 naming no-deletes; ROLLBACK; then
//	               SELECT count(*) FROM compat_items WHERE id = base+1 returns 0
//	               on the same connection
//	masked         SELECT id, email FROM compat_customers ORDER BY id returns
//	               (1,'***@example.com'), (2,'***@example.org'), and the
//	               parameterized SELECT email FROM compat_customers WHERE id = $1
//	               with 1 returns '***@example.com'; no plaintext address
//	               appears anywhere in what the client received
//	copy           BEGIN; COPY compat_items (id, name) FROM STDIN with rows
//	               (base+2,'copy-a') and (base+3,'copy-b'); SELECT count(*)
//	               FROM compat_items WHERE id > base returns 2; ROLLBACK; then
//	               COPY (SELECT id, email FROM compat_customers ORDER BY id)
//	               TO STDOUT returns "1\t***@example.com\n2\t***@example.org\n"
package compat
