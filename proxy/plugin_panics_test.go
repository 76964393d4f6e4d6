package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// TestPluginPanicsFailClosed: a panic in a plugin (a bug in the host's
// code) fails closed the way that plugin's error does, and the gateway
// goes on serving other sessions. The panic's text never reaches the
// client.
func TestPluginPanicsFailClosed(t *testing.T) {
	const secret = "panic-text-with-alice@example.com"
	ctx := testContext(t)
	alive := func(t *testing.T, g *gateway) {
		t.Helper()
		conn := connect(t, g.dsn("bob", bobPassword))
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("after the panic, a new session: %v", err)
		}
	}
	noPanicText := func(t *testing.T, err error) {
		t.Helper()
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the client read the panic: %v", err)
		}
	}

	t.Run("policy", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Policy = policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
				if strings.Contains(q.SQL, "boom") {
					panic(secret)
				}
				return policy.Decision{Verdict: policy.Allow}, nil
			})
		})
		conn := connect(t, g.dsn("alice", alicePassword))
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			_, err := conn.Exec(ctx, "SELECT 'boom'", mode)
			if why := rulesRefusal(err, "policy-error"); why != "" {
				t.Errorf("a statement the policy panicked on: %s", why)
			}
			noPanicText(t, err)
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil {
				t.Fatalf("the same session after the policy's panic: %v", err)
			}
		}
		alive(t, g)
	})

	t.Run("masker", func(t *testing.T) {
		maskFixture(t)
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Masks = mask.Rules{{Column: "public.mask_people.email", Masker: mask.MaskerFunc(
				func([]byte, mask.Cell) ([]byte, bool, error) { panic(secret) })}}
		})
		conn := connect(t, g.dsn("alice", alicePassword))
		_, err := rowsText(t, conn, pgx.QueryExecModeExec, "SELECT email FROM ONLY mask_people WHERE id = 1")
		if code := pgCode(err); code != "XX000" {
			t.Errorf("a masker's panic: %v, want FATAL XX000", err)
		}
		noPanicText(t, err)
		alive(t, g)
	})

	t.Run("recorder", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			p.Recorder = session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
				if ev.Kind == session.KindStatement && ev.Statement != nil && strings.Contains(ev.Statement.SQL, "boom") {
					panic(secret)
				}
				return nil
			})
		})
		conn := connect(t, g.dsn("alice", alicePassword))
		_, err := conn.Exec(ctx, "SELECT 'boom'")
		if err == nil {
			t.Fatal("a statement the recorder panicked on ran")
		}
		noPanicText(t, err)
		if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("the session went on after its recorder failed")
		}
		alive(t, g)
	})

	t.Run("credential store", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) {
			static := p.Credentials
			p.Credentials = credstore.Func(func(ctx context.Context, info *session.Info) (credstore.Credential, error) {
				if info.Identity.Subject == "alice" {
					panic(secret)
				}
				return static.Credential(ctx, info)
			})
		})
		_, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
		if code := pgCode(err); code != "28000" {
			t.Errorf("login with a panicking store: %v, want FATAL 28000", err)
		}
		noPanicText(t, err)
		alive(t, g)
	})
}
