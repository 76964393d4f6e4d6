package proxy_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// pg is the PostgreSQL cluster every test in this package talks to.
var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzing() {
		// Fuzz targets exercise the relay in memory; fuzz workers need
		// no database.
		os.Exit(m.Run())
	}
	os.Exit(pgtest.Main(m, pgtest.Options{
		TLS:      true,
		Database: "app",
		HBA:      []string{"host all app_md5 127.0.0.1/32 md5"},
	}, &pg))
}

// fuzzing reports whether this process runs fuzz targets (go test -fuzz,
// or one of its workers).
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// Upstream roles the gateway logs in as. Clients never see these passwords.
const (
	rwRole     = "app_rw"
	rwPassword = "app-rw-upstream-secret"
	md5Role    = "app_md5"
	md5Pass    = "app-md5-upstream-secret"
)

// Client identities (static SCRAM users of the gateway).
const (
	alicePassword = "alice-client-secret"
	bobPassword   = "bob-client-secret"
)

var rolesOnce sync.Once

// setupRoles creates the upstream roles once per test binary.
func setupRoles(t testing.TB) {
	t.Helper()
	var err error
	rolesOnce.Do(func() {
		ctx := context.Background()
		err = pg.Exec(ctx, "postgres", fmt.Sprintf(`
			CREATE ROLE %s LOGIN PASSWORD '%s';
			SET password_encryption = 'md5';
			CREATE ROLE %s LOGIN PASSWORD '%s';
			ALTER DATABASE app OWNER TO %s;
			GRANT ALL ON DATABASE app TO %s;`, rwRole, rwPassword, md5Role, md5Pass, rwRole, md5Role))
		if err == nil {
			err = pg.Exec(ctx, "app", fmt.Sprintf(`GRANT ALL ON SCHEMA public TO %s, %s;`, rwRole, md5Role))
		}
	})
	if err != nil {
		t.Fatalf("setting up roles: %v", err)
	}
}

// gateway is a Proxy under test, serving on a loopback port.
type gateway struct {
	*proxy.Proxy
	addr  string
	port  string
	dials atomic.Int64 // upstream network connections opened
	rec   *eventLog
	serve chan error
}

var serverCert = sync.OnceValues(func() (*testcert.Leaf, error) {
	return pg.CA.Issue("pgwarden test gateway", "localhost", "127.0.0.1")
})

// startGateway starts a gateway with alice (group analysts, upstream
// app_rw) and bob (group ops, upstream app_md5 over MD5), allow-all, TLS
// offered but not required. configure may change anything before Serve.
func startGateway(t testing.TB, configure func(*proxy.Proxy)) *gateway {
	t.Helper()
	setupRoles(t)
	users, err := auth.NewStatic(
		auth.User{Name: "alice", Password: session.NewSecret(alicePassword), Groups: []string{"analysts"}},
		auth.User{Name: "bob", Password: session.NewSecret(bobPassword), Groups: []string{"ops"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := credstore.NewStatic(
		credstore.StaticEntry{User: rwRole, Password: session.NewSecret(rwPassword), Groups: []string{"analysts"}},
		credstore.StaticEntry{User: md5Role, Password: session.NewSecret(md5Pass), Groups: []string{"ops"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := serverCert()
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{rec: &eventLog{}, serve: make(chan error, 1)}
	dialer := &net.Dialer{}
	g.Proxy = &proxy.Proxy{
		Authenticator: users,
		Credentials:   creds,
		Policy:        policy.AllowAll(),
		Recorder:      g.rec,
		Upstream: proxy.Upstream{
			Address: pg.Addr(),
			DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
				g.dials.Add(1)
				return dialer.DialContext(ctx, network, address)
			},
		},
		TLS:            serverTLS(leaf),
		AllowPlaintext: true,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if goroutineRelayForced() {
		proxy.UseGoroutineRelay(g.Proxy)
	}
	if configure != nil {
		configure(g.Proxy)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	_, g.port, _ = net.SplitHostPort(g.addr)
	go func() { g.serve <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Close()
		select {
		case err := <-g.serve:
			if err != proxy.ErrProxyClosed {
				t.Errorf("Serve returned %v, want ErrProxyClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
		g.rec.checkNoSecrets(t)
	})
	return g
}

// goroutineRelayForced reports whether PGWARDEN_TEST_RELAY=goroutines asks
// the tests to relay every session on goroutines (make test runs the
// package both ways; on Linux sessions use the event loop otherwise).
func goroutineRelayForced() bool { return os.Getenv("PGWARDEN_TEST_RELAY") == "goroutines" }

// dsn is a libpq connection string for the gateway, without TLS.
func (g *gateway) dsn(user, password string, extra ...string) string {
	parts := []string{"host=127.0.0.1", "port=" + g.port, "user=" + user, "password=" + password, "dbname=app", "sslmode=disable"}
	return strings.Join(append(parts, extra...), " ")
}

// tlsDSN is a libpq connection string that verifies the gateway's
// certificate.
func (g *gateway) tlsDSN(user, password string, extra ...string) string {
	parts := []string{"host=localhost", "port=" + g.port, "user=" + user, "password=" + password, "dbname=app",
		"sslmode=verify-full", "sslrootcert=" + pg.CAFile}
	return strings.Join(append(parts, extra...), " ")
}

// eventLog is a Recorder that keeps every event.
type eventLog struct {
	mu     sync.Mutex
	events []session.Event
	fail   func(session.Event) error
}

func (l *eventLog) Record(_ context.Context, ev session.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		if err := l.fail(ev); err != nil {
			return err
		}
	}
	l.events = append(l.events, ev)
	return nil
}

func (l *eventLog) snapshot() []session.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]session.Event(nil), l.events...)
}

// checkNoSecrets fails t if any recorded event contains a password.
func (l *eventLog) checkNoSecrets(t testing.TB) {
	t.Helper()
	b, err := json.Marshal(l.snapshot())
	if err != nil {
		t.Errorf("marshal events: %v", err)
		return
	}
	for _, secret := range []string{rwPassword, md5Pass, alicePassword, bobPassword} {
		if strings.Contains(string(b), secret) {
			t.Errorf("a recorded event contains a password")
		}
	}
}

// testContext is a context for one test step, with a generous bound so a
// hang fails instead of stalling the suite (it is not a timing assertion).
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
