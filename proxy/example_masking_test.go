package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

// Masks hide a column's values from the identities a rule applies to,
// whatever the statement: the masker rewrites each cell of the result.
// A statement that would reveal masked values otherwise (here, by
// filtering on them) is refused.
func ExampleProxy_masking() {
	p, addr := exampleGateway(func(p *proxy.Proxy) { // the gateway of the Proxy example, with masks
		p.Masks = mask.Rules{
			{Column: "public.customers.email", Masker: mask.Email(true), UnlessGroups: []string{"support"}},
		}
	})
	defer p.Close()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://alice:alice-password@"+addr+"/shop?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	rows, err := conn.Query(ctx, "SELECT c.name, c.email AS contact FROM customers c ORDER BY c.id")
	if err != nil {
		log.Fatal(err)
	}
	for rows.Next() {
		var name, contact string
		if err := rows.Scan(&name, &contact); err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, contact)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}

	_, err = conn.Exec(ctx, "SELECT name FROM customers WHERE email LIKE 'a%'")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		fmt.Println(pgErr.Code, pgErr.Message)
	}
	// Output:
	// Alice ***@example.com
	// Bob ***@example.org
	// 42501 pgwarden: statement refused by rule "mask-inference"
}
