package proxy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/proxy"
)

// TestMaskerErrorsDoNotReachTheClient: a masker that fails ends the session
// (the rows are never sent), and its error, which here quotes the value it
// failed on, stays out of what the client reads, in rows and in COPY.
func TestMaskerErrorsDoNotReachTheClient(t *testing.T) {
	maskFixture(t)
	careless := mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) {
		return dst, false, fmt.Errorf("cannot mask %q", c.Value)
	})
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Masks = mask.Rules{{Column: "public.mask_people.email", Masker: careless}}
	})
	ctx := testContext(t)
	check := func(t *testing.T, err error) {
		t.Helper()
		pgErr, ok := errors.AsType[*pgconn.PgError](err)
		if !ok || pgErr.Code != "XX000" || pgErr.Severity != "FATAL" {
			t.Fatalf("want FATAL XX000 ending the session, got %v", err)
		}
		text := pgErr.Message + " " + pgErr.Detail + " " + pgErr.Hint
		for _, s := range maskSecrets {
			if strings.Contains(text, s) {
				t.Fatalf("the client read the masker's error with the value %q: %s", s, text)
			}
		}
		if !strings.Contains(pgErr.Detail, "column 1") {
			t.Errorf("detail %q does not say which column", pgErr.Detail)
		}
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			conn := connect(t, g.dsn("alice", alicePassword))
			_, err := rowsText(t, conn, m.mode, "SELECT email FROM ONLY mask_people WHERE id = 1")
			check(t, err)
		})
	}
	t.Run("copy", func(t *testing.T) {
		conn := connect(t, g.dsn("alice", alicePassword))
		var b strings.Builder
		_, err := conn.PgConn().CopyTo(ctx, &b, "COPY (SELECT email FROM ONLY mask_people WHERE id = 1) TO STDOUT")
		check(t, err)
		for _, s := range maskSecrets {
			if strings.Contains(b.String(), s) {
				t.Fatalf("COPY sent %q", s)
			}
		}
	})
}
