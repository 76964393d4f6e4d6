package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMasksFromYAML: policy.masks masks a column for one group and not
// another, with the masker, detectors and inference mode the YAML names.
func TestMasksFromYAML(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	if err := f.cluster.Exec(ctx, "app", `CREATE TABLE customers (id int, email text, card text, note text);
		INSERT INTO customers VALUES (1, 'alice@example.com', '4111 1111 1111 1111', 'call me at alice@example.com'),
		                             (2, 'bob@example.org', '5500 0000 0000 0004', 'nothing here');
		GRANT SELECT ON customers TO app_user;`); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(f.config(""), "policy:\n  default: allow\n", `policy:
  default: allow
  mask_key: 0123456789abcdef0123
  masks:
    - {column: public.customers.email, method: email, keep_domain: true, unless_groups: [support]}
    - {column: public.customers.card, method: partial, keep_last: 4, inference: allow}
    - {column: public.customers.note, method: redact, detectors: [email]}
`, 1)
	cfg = strings.Replace(cfg, "    - {name: carol, password: carol-secret, groups: [dev]}\n",
		"    - {name: carol, password: carol-secret, groups: [dev]}\n    - {name: sam, password: sam-secret, groups: [support, dev]}\n", 1)
	tg := startTestGatewayFile(t, f.writeConfig(t, cfg), testAdminToken)
	query := func(user, password, sql string) ([]string, error) {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/app?sslmode=disable", user, password, tg.addr))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a, b, c string
			if err := rows.Scan(&a, &b, &c); err != nil {
				return nil, err
			}
			out = append(out, a+"|"+b+"|"+c)
		}
		return out, rows.Err()
	}
	got, err := query("carol", "carol-secret", "SELECT email, card, note FROM customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	want := "***@example.com|***1111|***;***@example.org|***0004|nothing here"
	if strings.Join(got, ";") != want {
		t.Fatalf("carol: %q, want %q", strings.Join(got, ";"), want)
	}
	got, err = query("sam", "sam-secret", "SELECT email, card, note FROM customers WHERE id = 1")
	if err != nil || strings.Join(got, ";") != "alice@example.com|***1111|***" {
		t.Fatalf("sam (support): %q, %v", got, err)
	}
	// card allows inference; email does not.
	if _, err := query("carol", "carol-secret", "SELECT card, card, card FROM customers WHERE card LIKE '4%'"); err != nil {
		t.Fatalf("inference allowed on card: %v", err)
	}
	if _, err := query("carol", "carol-secret", "SELECT card, card, card FROM customers WHERE email LIKE 'a%'"); pgCode(err) != "42501" || !strings.Contains(err.Error(), "mask-inference") {
		t.Fatalf("inference on email: %v", err)
	}
}

func TestMasksConfigProblems(t *testing.T) {
	base := `listen: 127.0.0.1:7432
upstream: {address: 127.0.0.1:5432}
auth: {users: [{name: a, password: b}]}
credentials: {static: [{user: u, password: p}]}
policy:
  default: allow
`
	wantLoadError(t, base+"  masks: [{column: customers.email, method: redact}]\n", "policy.masks[0].column", "schema.table.column")
	wantLoadError(t, base+"  masks: [{column: public.c.e, table: public.c, method: redact}]\n", "policy.masks[0]", "exactly one")
	wantLoadError(t, base+"  masks: [{column: public.c.e, method: scramble}]\n", "policy.masks[0].method")
	wantLoadError(t, base+"  masks: [{column: public.c.e}]\n", "policy.masks[0].method", "required")
	wantLoadError(t, base+"  masks: [{column: public.c.e, method: hash}]\n", "policy.mask_key", "16 bytes")
	wantLoadError(t, base+"  masks: [{column: public.c.e, method: redact, detectors: [dna]}]\n", "policy.masks[0].detectors[0]")
	wantLoadError(t, base+"  masks: [{column: public.c.e, method: redact, inference: maybe}]\n", "policy.masks[0].inference")

	// A rule with verdict mask is accepted by the policy package but
	// refused by the gateway: said at load time.
	cfg, err := parseConfig([]byte(base+"  rules: [{name: m, verdict: mask, masks: [{column: public.t.c, masker: redact}]}]\n"), filepath.Join(t.TempDir(), "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cfg.warnings, func(w string) bool {
		return strings.Contains(w, "policy.rules[0]: verdict mask is refused by the gateway")
	}) {
		t.Errorf("warnings = %q", cfg.warnings)
	}
}

func TestCheckPrintsTheMaskPlan(t *testing.T) {
	path := writeFile(t, `listen: 127.0.0.1:7432
upstream: {address: 127.0.0.1:5432}
auth: {users: [{name: carol, password: b, groups: [dev]}, {name: sam, password: c, groups: [support]}]}
credentials: {static: [{user: u, password: p}]}
policy:
  default: allow
  masks:
    - {column: public.customers.email, method: email, keep_domain: true, unless_groups: [support]}
    - {column: public.customers.card, method: partial, keep_last: 4}
`)
	code, out, _ := runCLI([]string{"check", "--config", path, "--user", "carol", "SELECT id, email, upper(card) FROM customers"}, "")
	if code != exitOK || !strings.Contains(out, "email: email(keep_domain) (mask public.customers.email)") ||
		!strings.Contains(out, "upper: redact, computed (mask public.customers.card)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI([]string{"check", "--config", path, "--user", "carol", "SELECT id FROM customers WHERE email = 'x'"}, "")
	if code != exitRefused || !strings.Contains(out, `masking refuses it (rule "mask-inference")`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI([]string{"check", "--config", path, "--user", "sam", "SELECT id FROM customers WHERE email = 'x'"}, "")
	if code != exitOK || strings.Contains(out, "mask") {
		t.Fatalf("support is exempt from the email mask: exit %d:\n%s", code, out)
	}
}
