package proxy_test

// Identities from identity providers, through the gateway against the real
// cluster: delegation chains from a real OpenID Provider (internal/devidp)
// reaching the database and the policy, psql with a token as its password,
// identity settings that clients cannot overwrite, and client
// certificates. The token-specific tests (OAUTHBEARER, refused tokens, key
// rotation, expiry, introspection) are in oidc_test.go, SAML in
// saml_identity_test.go.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// The introspection client the gateway authenticates as at the IdP.
const (
	identIntrospector       = "pgwarden-rs"
	identIntrospectorSecret = "identity-test-introspection-secret"
)

// identIdP starts a real OpenID Provider on loopback with alice (a person
// in group analysts, which the harness's credential store maps to app_rw),
// the agents ci-job, agent and sub-agent, and the gateway's introspection
// client. change may alter the configuration first.
func identIdP(t testing.TB, change func(*devidp.Config)) *devidp.Provider {
	t.Helper()
	cfg := devidp.Config{
		TokenLifetime: time.Hour,
		Users: []devidp.User{
			{Subject: "alice", Name: "Alice A.", Email: "alice@example.test", Groups: []string{"analysts"}},
		},
		Clients: []devidp.Client{
			{ID: "ci-job", Secret: "identity-test-ci-secret", Groups: []string{"analysts"}},
			{ID: "agent", Secret: "identity-test-agent-secret"},
			{ID: "sub-agent", Secret: "identity-test-sub-agent-secret"},
		},
		Introspectors: []devidp.Client{{ID: identIntrospector, Secret: identIntrospectorSecret}},
	}
	if change != nil {
		change(&cfg)
	}
	p, err := devidp.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// identOIDC builds the gateway's OIDC authenticator for idp; change may
// alter the configuration first.
func identOIDC(t testing.TB, idp *devidp.Provider, change func(*auth.OIDCConfig)) *auth.OIDC {
	t.Helper()
	cfg := auth.OIDCConfig{Issuer: idp.Issuer(), Audience: idp.Audience()}
	if change != nil {
		change(&cfg)
	}
	a, err := auth.NewOIDC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// identLog is a concurrent log buffer.
type identLog = testlog.Buffer

// identGateway is a gateway whose logs are kept, and which checks when the
// test ends (after the gateway closed) that neither its log nor its
// recording contains any of the secrets (tokens, assertions) the test
// handed it.
type identGateway struct {
	*gateway
	logs    *identLog
	mu      sync.Mutex
	secrets []string
}

// startIdentGateway starts a gateway (see startGateway) that authenticates
// with a, logging to a buffer as well as to the test's output.
func startIdentGateway(t testing.TB, a auth.Authenticator, configure func(*proxy.Proxy)) *identGateway {
	t.Helper()
	ig := &identGateway{logs: &identLog{}}
	ig.secret(identIntrospectorSecret)
	// Registered before startGateway's cleanup, so it runs after the
	// gateway closed and logged its last words.
	t.Cleanup(func() { ig.checkNoSecrets(t) })
	ig.gateway = startGateway(t, func(p *proxy.Proxy) {
		p.Authenticator = a
		p.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(ig.logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug}))
		if configure != nil {
			configure(p)
		}
	})
	return ig
}

// secret registers s as something the gateway must never log or record,
// and returns it.
func (ig *identGateway) secret(s string) string {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	ig.secrets = append(ig.secrets, s)
	return s
}

// checkNoSecrets fails t if the log or the recording holds a registered
// secret, or the signature of a registered token.
func (ig *identGateway) checkNoSecrets(t testing.TB) {
	t.Helper()
	logs := ig.logs.String()
	events, err := json.Marshal(ig.rec.snapshot())
	if err != nil {
		t.Errorf("marshal events: %v", err)
		return
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	for i, s := range ig.secrets {
		needles := []string{s}
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			needles = append(needles, parts[2]) // a JWT's signature
		}
		for _, n := range needles {
			if strings.Contains(logs, n) {
				t.Errorf("the gateway's log contains secret #%d (%d bytes)", i, len(s))
			}
			if strings.Contains(string(events), n) {
				t.Errorf("the gateway's recording contains secret #%d (%d bytes)", i, len(s))
			}
		}
	}
}

// config is a pgx configuration for the gateway that verifies its
// certificate (sslmode=verify-full) and presents password, which may be a
// token or a base64 SAML assertion (set directly, so that no connection
// string quoting is involved).
func (ig *identGateway) config(t testing.TB, password string, extra ...string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(ig.tlsDSN("alice", "unused", extra...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = password
	return cfg
}

// identConnect connects with cfg, closing at cleanup.
func identConnect(t testing.TB, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(testContext(t), cfg)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// identSettings returns the session's identity settings as the server has
// them, and its application_name as pg_stat_activity shows it.
type identSettings struct {
	subject, issuer, chain, sessionID, appName string
}

func identQuerySettings(t testing.TB, conn *pgx.Conn) identSettings {
	t.Helper()
	var s identSettings
	err := conn.QueryRow(testContext(t), `SELECT current_setting('pgwarden.subject'), current_setting('pgwarden.issuer'),
		current_setting('pgwarden.chain'), current_setting('pgwarden.session_id'),
		(SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid())`).
		Scan(&s.subject, &s.issuer, &s.chain, &s.sessionID, &s.appName)
	if err != nil {
		t.Fatalf("reading the identity settings: %v", err)
	}
	return s
}

// identHop is an entry of pgwarden.chain.
type identHop struct {
	Sub string `json:"sub"`
	Iss string `json:"iss,omitempty"`
}

// identWantChain fails t unless the JSON chain is want.
func identWantChain(t testing.TB, chainJSON string, want []identHop) {
	t.Helper()
	var got []identHop
	if err := json.Unmarshal([]byte(chainJSON), &got); err != nil {
		t.Fatalf("pgwarden.chain %q is not a JSON array of hops: %v", chainJSON, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pgwarden.chain = %s, want %+v", chainJSON, want)
	}
}

// identStart returns the recorded session.start of session id.
func identStart(t testing.TB, rec *eventLog, id string) *session.StartEvent {
	t.Helper()
	for _, ev := range rec.snapshot() {
		if ev.Kind == session.KindSessionStart && ev.SessionID == id {
			return ev.Start
		}
	}
	t.Fatalf("no session.start recorded for session %s", id)
	return nil
}

// identWaitEnd waits (polling, with a generous bound) for the recorded
// session.end of session id.
func identWaitEnd(t testing.TB, rec *eventLog, id string) *session.EndEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, ev := range rec.snapshot() {
			if ev.Kind == session.KindSessionEnd && ev.SessionID == id {
				return ev.End
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session.end recorded for session %s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// identWaitFatal waits, without sending anything, for the FATAL the
// gateway sends an idle connection when it ends the session, and returns
// it. The bound is generous; it is not a timing assertion.
func identWaitFatal(t testing.TB, c *pgconn.PgConn) *pgconn.PgError {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := c.WaitForNotification(ctx)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" {
		t.Fatalf("waiting for the session to end: %v, want a FATAL from the gateway", err)
	}
	return pgErr
}

// identRefused fails t unless err is a refused login with SQLSTATE code
// (28P01 or 28000: the gateway's answers to a client that did not prove
// who it is).
func identRefused(t testing.TB, what string, err error, code string) {
	t.Helper()
	if code != "28P01" && code != "28000" {
		t.Fatalf("bad test: %s is not a login refusal code", code)
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.Errorf("%s: the login succeeded", what)
	case !errors.As(err, &pgErr):
		t.Errorf("%s: %v, want FATAL %s from the gateway", what, err, code)
	case pgErr.Severity != "FATAL" || pgErr.Code != code:
		t.Errorf("%s: %s %s %q, want FATAL %s", what, pgErr.Severity, pgErr.Code, pgErr.Message, code)
	}
}

var (
	identFixtureOnce sync.Once
	identFixtureErr  error
)

// identFixture creates, once per test binary, the table and functions the
// identity tests use; every name starts with identity_.
func identFixture(t testing.TB) {
	t.Helper()
	setupRoles(t)
	identFixtureOnce.Do(func() {
		identFixtureErr = pg.Exec(context.Background(), "app", `
			DROP TABLE IF EXISTS identity_notes;
			CREATE TABLE identity_notes(
				note    text,
				subject text DEFAULT current_setting('pgwarden.subject', true),
				chain   text DEFAULT current_setting('pgwarden.chain', true));
			GRANT SELECT, INSERT ON identity_notes TO app_rw;
			CREATE OR REPLACE FUNCTION identity_rename_app() RETURNS text
				LANGUAGE plpgsql SECURITY INVOKER
				AS $$ BEGIN RETURN set_config('application_name', 'innocent', false); END $$;
			CREATE OR REPLACE FUNCTION identity_become(who text) RETURNS text
				LANGUAGE plpgsql SECURITY INVOKER
				AS $$ BEGIN RETURN set_config('pgwarden.' || 'subject', who, false); END $$;
			GRANT EXECUTE ON FUNCTION identity_rename_app(), identity_become(text) TO app_rw;`)
	})
	if identFixtureErr != nil {
		t.Fatalf("creating the identity fixture: %v", identFixtureErr)
	}
}

// TestIdentityDelegationChain: a person's token exchanged by three agents
// in turn (RFC 8693, from the real OP) is presented by the last agent: the
// database sees the person as pgwarden.subject and the whole chain, the
// server's application_name names the person and the presenter, the policy
// sees the chain's depth, and the recording has it.
func TestIdentityDelegationChain(t *testing.T) {
	identFixture(t)
	ctx := testContext(t)
	idp := identIdP(t, nil)
	toks, err := idp.Chain(ctx, "alice", "ci-job", "agent", "sub-agent")
	if err != nil {
		t.Fatal(err)
	}
	// Agents more than two hops from a person may only read.
	pol := policy.FirstMatch(
		policy.Rule{Name: "deep-agents-read-only", When: policy.All(policy.ChainDepth(3, -1), policy.Writes()),
			Verdict: policy.Block, Reason: "Agents more than two hops from a person may only read."},
		policy.AllowAll(),
	)
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) {
		p.Policy = pol
		p.AllowPlaintext = false
	})
	for _, tok := range toks {
		ig.secret(tok)
	}

	conn := identConnect(t, ig.config(t, toks[3], "application_name=report-tool"))
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("the client connection is not TLS")
	}
	got := identQuerySettings(t, conn)
	iss := idp.Issuer()
	if got.subject != "alice" || got.issuer != iss {
		t.Fatalf("pgwarden.subject, pgwarden.issuer = %q, %q; want alice, %q", got.subject, got.issuer, iss)
	}
	identWantChain(t, got.chain, []identHop{{"alice", iss}, {"ci-job", iss}, {"agent", iss}, {"sub-agent", iss}})
	if want := "pgwarden:alice via sub-agent"; !strings.HasPrefix(got.appName, want) {
		t.Fatalf("application_name in pg_stat_activity = %q, want it to start with %q", got.appName, want)
	}
	if want := "pgwarden:alice via sub-agent | report-tool"; got.appName != want {
		t.Fatalf("application_name in pg_stat_activity = %q, want %q", got.appName, want)
	}
	// The client sees the name it chose.
	if v := conn.PgConn().ParameterStatus("application_name"); v != "report-tool" {
		t.Fatalf("the client's application_name ParameterStatus is %q, want report-tool", v)
	}

	// The policy sees the chain: three hops may only read.
	_, err = conn.Exec(ctx, "INSERT INTO identity_notes(note) VALUES ('from sub-agent')")
	rulesWantRefusal(t, err, "deep-agents-read-only")
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM identity_notes WHERE note = 'from sub-agent'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("reading after the refused write: %d rows, %v", n, err)
	}

	// The recording has the chain.
	start := identStart(t, ig.rec, got.sessionID)
	id := start.Info.Identity
	wantActors := []session.Actor{{Subject: "ci-job", Issuer: iss}, {Subject: "agent", Issuer: iss}, {Subject: "sub-agent", Issuer: iss}}
	if id.Subject != "alice" || id.Issuer != iss || id.Method != "oidc" || !reflect.DeepEqual(id.Chain, wantActors) {
		t.Fatalf("recorded identity: subject %q issuer %q method %q chain %+v; want alice via %+v",
			id.Subject, id.Issuer, id.Method, id.Chain, wantActors)
	}
	if start.Info.TLS == nil || start.Info.UpstreamUser != rwRole {
		t.Fatalf("recorded session: TLS %+v, upstream user %q", start.Info.TLS, start.Info.UpstreamUser)
	}

	// One hop (ci-job acting for alice) may write; what it writes carries
	// the identity the gateway set.
	one := identConnect(t, ig.config(t, toks[1]))
	if _, err := one.Exec(ctx, "INSERT INTO identity_notes(note) VALUES ('from ci-job')"); err != nil {
		t.Fatalf("a one-hop agent's write: %v", err)
	}
	var subject, chain string
	if err := one.QueryRow(ctx, "SELECT subject, chain FROM identity_notes WHERE note = 'from ci-job' ORDER BY ctid DESC LIMIT 1").
		Scan(&subject, &chain); err != nil {
		t.Fatal(err)
	}
	if subject != "alice" {
		t.Fatalf("the row's subject default is %q, want alice", subject)
	}
	identWantChain(t, chain, []identHop{{"alice", iss}, {"ci-job", iss}})
	if s := identQuerySettings(t, one); s.appName != "pgwarden:alice via ci-job" {
		t.Fatalf("one hop: application_name %q", s.appName)
	}

	// The person herself: no "via".
	direct := identConnect(t, ig.config(t, toks[0]))
	s := identQuerySettings(t, direct)
	if s.appName != "pgwarden:alice" {
		t.Fatalf("no agent: application_name %q", s.appName)
	}
	identWantChain(t, s.chain, []identHop{{"alice", iss}})
	if _, err := direct.Exec(ctx, "INSERT INTO identity_notes(note) VALUES ('from alice')"); err != nil {
		t.Fatalf("the person's write: %v", err)
	}
}

// TestIdentityPsqlWithTokenAsPassword runs the real psql with a token in
// PGPASSWORD over verify-full TLS.
func TestIdentityPsqlWithTokenAsPassword(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	toks, err := idp.Chain(ctx, "alice", "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.AllowPlaintext = false })
	ig.secret(toks[0])
	t.Setenv("PGPASSWORD", ig.secret(toks[1]))
	dsn := fmt.Sprintf("host=localhost port=%s user=alice dbname=app sslmode=verify-full sslrootcert=%s", ig.port, pg.CAFile)
	out := runClient(t, "psql", dsn, "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c",
		`SELECT current_setting('pgwarden.subject'), current_setting('pgwarden.chain'), current_user,
			(SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()),
			current_setting('pgwarden.session_id')`)
	fields := strings.Split(strings.TrimSpace(out), "\t")
	if len(fields) != 5 {
		t.Fatalf("psql output %q", out)
	}
	iss := idp.Issuer()
	if fields[0] != "alice" || fields[2] != rwRole || fields[3] != "pgwarden:alice via ci-job | pgwarden-test" {
		t.Fatalf("psql: subject %q, current_user %q, application_name %q", fields[0], fields[2], fields[3])
	}
	identWantChain(t, fields[1], []identHop{{"alice", iss}, {"ci-job", iss}})
	start := identStart(t, ig.rec, fields[4])
	if start.Info.TLS == nil || start.Info.Identity.Method != "oidc" {
		t.Fatalf("psql's session: TLS %+v, method %q", start.Info.TLS, start.Info.Identity.Method)
	}
}

// TestIdentitySettingsCannotBeOverwritten: the settings that carry the
// identity to the server cannot be changed by statements, startup
// parameters, or code the gateway cannot see.
func TestIdentitySettingsCannotBeOverwritten(t *testing.T) {
	identFixture(t)
	ctx := testContext(t)
	idp := identIdP(t, nil)
	toks, err := idp.Chain(ctx, "alice", "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	// Allow-all allows DO blocks and any function; the startup parameter
	// options is allowed, so that -c can be tried too.
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) {
		p.StartupParameters = []string{"options"}
	})
	ig.secret(toks[0])
	token := ig.secret(toks[1])
	iss := idp.Issuer()
	wantIntact := func(t *testing.T, conn *pgx.Conn) {
		t.Helper()
		s := identQuerySettings(t, conn)
		if s.subject != "alice" || s.issuer != iss || s.appName != "pgwarden:alice via ci-job" {
			t.Fatalf("identity settings changed: subject %q issuer %q application_name %q", s.subject, s.issuer, s.appName)
		}
		identWantChain(t, s.chain, []identHop{{"alice", iss}, {"ci-job", iss}})
	}

	t.Run("statements", func(t *testing.T) {
		refused := []string{
			"SET application_name = 'x'; SELECT 1",
			"SET pgwarden.subject = 'mallory'",
			"SET \"PGWARDEN\".subject = 'mallory'",
			"SET pgwarden.session_id = 'other'",
			"SELECT set_config('pgwarden.subject', 'mallory', false)",
			"SELECT pg_catalog.set_config('application_name', 'x', false)",
			"SELECT set_config('pgwarden.chain', '[]', true)",
		}
		for _, m := range rulesModes {
			t.Run(m.name, func(t *testing.T) {
				conn := identConnect(t, ig.config(t, token))
				for _, sql := range refused {
					_, err := rulesRun(ctx, conn, m.mode, sql)
					if why := rulesRefusal(err, "identity-settings"); why != "" {
						t.Errorf("%q: want ERROR 42501 refused by rule %q; got %s", sql, "identity-settings", why)
					}
					rulesAlive(t, ctx, conn, m.mode)
				}
				// SET LOCAL in a transaction.
				if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
				_, err := rulesRun(ctx, conn, m.mode, "SET LOCAL pgwarden.chain = '[]'")
				rulesWantRefusal(t, err, "identity-settings")
				if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
					t.Fatal(err)
				}
				// A name computed at run time: refused too (the gateway
				// cannot tell which setting it is).
				for _, sql := range []string{"SELECT set_config(lower('PGWARDEN.SUBJECT'), 'mallory', false)"} {
					_, err := rulesRun(ctx, conn, m.mode, sql)
					if rulesRefusal(err, "identity-settings") != "" && rulesRefusal(err, "parser-settings") != "" {
						t.Errorf("%q: want a refusal by the gateway; got %v", sql, err)
					}
					rulesAlive(t, ctx, conn, m.mode)
				}
				// RESET puts back the login value: allowed.
				for _, sql := range []string{"RESET application_name", "RESET pgwarden.subject", "RESET ALL"} {
					if _, err := rulesRun(ctx, conn, m.mode, sql); err != nil {
						t.Errorf("%q: %v", sql, err)
					}
				}
				wantIntact(t, conn)
			})
		}
	})

	// A lone SET application_name (pgjdbc sends one after login) runs with
	// the identity kept in front of the client's name; the client sees its
	// own name, as without the gateway.
	t.Run("SET application_name", func(t *testing.T) {
		for _, m := range rulesModes {
			t.Run(m.name, func(t *testing.T) {
				conn := identConnect(t, ig.config(t, token))
				appName := func() string {
					t.Helper()
					return identQuerySettings(t, conn).appName
				}
				for _, c := range []struct{ sql, client, server string }{
					{"SET application_name = 'PostgreSQL JDBC Driver'", "PostgreSQL JDBC Driver", "pgwarden:alice via ci-job | PostgreSQL JDBC Driver"},
					{"SET SESSION application_name TO 'pgwarden:mallory'", "pgwarden:mallory", "pgwarden:alice via ci-job | pgwarden:mallory"},
					{"set application_name = 'it''s'", "it's", "pgwarden:alice via ci-job | it's"},
				} {
					if _, err := rulesRun(ctx, conn, m.mode, c.sql); err != nil {
						t.Fatalf("%q: %v", c.sql, err)
					}
					if got := appName(); got != c.server {
						t.Errorf("%q: the server's application_name = %q, want %q", c.sql, got, c.server)
					}
					if got := conn.PgConn().ParameterStatus("application_name"); got != c.client {
						t.Errorf("%q: the client's ParameterStatus application_name = %q, want %q", c.sql, got, c.client)
					}
				}
				// SET LOCAL lasts until the transaction ends.
				if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
				if _, err := rulesRun(ctx, conn, m.mode, "SET LOCAL application_name = 'batch'"); err != nil {
					t.Fatal(err)
				}
				if got := appName(); got != "pgwarden:alice via ci-job | batch" {
					t.Errorf("after SET LOCAL: %q", got)
				}
				if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
					t.Fatal(err)
				}
				if got := appName(); got != "pgwarden:alice via ci-job | it's" {
					t.Errorf("after ROLLBACK: %q", got)
				}
				if _, err := rulesRun(ctx, conn, m.mode, "RESET application_name"); err != nil {
					t.Fatal(err)
				}
				if got := conn.PgConn().ParameterStatus("application_name"); got != "" {
					t.Errorf("after RESET, the client's application_name = %q, want its login value (none)", got)
				}
				wantIntact(t, conn)
			})
		}
	})

	t.Run("startup parameters", func(t *testing.T) {
		for _, name := range []string{"pgwarden.subject", "PGWARDEN.CHAIN", "pgwarden.issuer", "pgwarden.session_id", "pgwarden.anything"} {
			cfg := ig.config(t, token)
			cfg.RuntimeParams[name] = "mallory"
			before := ig.dials.Load()
			_, err := pgx.ConnectConfig(ctx, cfg)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "reserved") {
				t.Errorf("startup parameter %s: %v, want FATAL 42501 saying it is reserved", name, err)
			}
			if ig.dials.Load() != before {
				t.Errorf("startup parameter %s: the gateway connected upstream", name)
			}
		}
	})

	t.Run("options", func(t *testing.T) {
		// pgwarden.* in options is refused at startup.
		cfg := ig.config(t, token)
		cfg.RuntimeParams["options"] = "-c pgwarden.subject=mallory --pgwarden.chain=[]"
		if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
			conn.Close(context.Background())
			t.Fatal("options naming pgwarden.* settings were accepted")
		} else if code := pgCode(err); code != "42501" {
			t.Fatalf("options naming identity settings: %v, want FATAL 42501", err)
		}
		// application_name in options is overridden by the gateway's.
		cfg = ig.config(t, token)
		cfg.RuntimeParams["options"] = "-c application_name=mallory"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		wantIntact(t, conn)
	})

	t.Run("DO block", func(t *testing.T) {
		conn := identConnect(t, ig.config(t, token))
		// The setting's name is built at run time, out of the analysis'
		// sight: the server runs it, and the gateway notices after.
		if _, err := conn.Exec(ctx, `DO $$ BEGIN PERFORM set_config('pgwarden.' || 'subject', 'mallory', false); END $$`); err != nil {
			t.Fatalf("the DO block: %v", err)
		}
		identWantSessionEnded(t, ctx, conn)
	})

	t.Run("DO block calling set_config directly", func(t *testing.T) {
		conn := identConnect(t, ig.config(t, token))
		_, err := conn.Exec(ctx, `DO $$ BEGIN PERFORM set_config('pgwarden.subject', 'mallory', false); END $$`)
		if err != nil {
			// Refused up front is as good as ended after.
			t.Logf("the DO block was refused: %v", err)
			rulesWantRefusal(t, err, "identity-settings")
			wantIntact(t, conn)
			return
		}
		identWantSessionEnded(t, ctx, conn)
	})

	t.Run("DO block in a transaction", func(t *testing.T) {
		// Transaction-local, but the transaction goes on: the next
		// statement finds the change.
		conn := identConnect(t, ig.config(t, token))
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `DO $$ BEGIN PERFORM set_config('pgwarden.' || 'chain', '[]', true); END $$`); err != nil {
			t.Fatalf("the DO block: %v", err)
		}
		identWantSessionEnded(t, ctx, conn)
	})

	t.Run("function setting pgwarden.subject", func(t *testing.T) {
		conn := identConnect(t, ig.config(t, token))
		var v string
		if err := conn.QueryRow(ctx, "SELECT identity_become('mallory')").Scan(&v); err != nil {
			t.Fatalf("the function call: %v", err)
		}
		identWantSessionEnded(t, ctx, conn)
	})

	t.Run("function setting application_name", func(t *testing.T) {
		conn := identConnect(t, ig.config(t, token))
		// The server reports the change (ParameterStatus) with the answer:
		// the gateway ends the session then, or at the next statement.
		var v string
		err := conn.QueryRow(ctx, "SELECT identity_rename_app()").Scan(&v)
		if err == nil {
			t.Log("the function's answer arrived; the session ends at the next statement")
			identWantSessionEnded(t, ctx, conn)
			return
		}
		identWantIdentityFatal(t, err)
	})
}

// identWantSessionEnded checks that the next statement on conn gets the
// FATAL 42501 with which the gateway ends a session whose identity
// settings changed.
func identWantSessionEnded(t testing.TB, ctx context.Context, conn *pgx.Conn) {
	t.Helper()
	var n int
	err := conn.QueryRow(ctx, "SELECT 1").Scan(&n)
	identWantIdentityFatal(t, err)
	if !conn.IsClosed() {
		t.Fatal("the connection is still open after the FATAL")
	}
}

func identWantIdentityFatal(t testing.TB, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || pgErr.Code != "42501" ||
		!(strings.Contains(pgErr.Message, "identity") || strings.Contains(pgErr.Message, "application_name")) {
		t.Fatalf("err = %v, want FATAL 42501 about the identity settings", err)
	}
}

// TestIdentityClientCertificate: a client certificate with a SPIFFE ID
// logs in without a password; without a certificate, the OIDC token path
// of the same chain still works.
func TestIdentityClientCertificate(t *testing.T) {
	ctx := testContext(t)
	clientCA, err := testcert.NewAuthority("pgwarden identity test client CA")
	if err != nil {
		t.Fatal(err)
	}
	job, err := clientCA.IssueClient(testcert.ClientOptions{CommonName: "ci job", OrganizationalUnits: []string{"analysts"},
		URIs: []string{"spiffe://example.org/ci/job"}})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := clientCA.IssueClient(testcert.ClientOptions{CommonName: "intruder", OrganizationalUnits: []string{"analysts"},
		URIs: []string{"spiffe://evil.example/ci/job"}})
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testcert.NewAuthority("not trusted by the gateway")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := otherCA.IssueClient(testcert.ClientOptions{CommonName: "ci job", OrganizationalUnits: []string{"analysts"},
		URIs: []string{"spiffe://example.org/ci/job"}})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := auth.NewClientCert(auth.ClientCertConfig{TrustDomains: []string{"example.org"}, GroupsFromOU: true})
	if err != nil {
		t.Fatal(err)
	}
	idp := identIdP(t, nil)
	ig := startIdentGateway(t, auth.Chain(certs, identOIDC(t, idp, nil)), func(p *proxy.Proxy) {
		p.TLS = p.TLS.Clone()
		p.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		p.TLS.ClientCAs = clientCA.Pool()
		p.AllowPlaintext = false
	})
	withCert := func(leaf *testcert.Leaf) *pgx.ConnConfig {
		cfg := ig.config(t, "") // no password: none is asked for
		cfg.TLSConfig.Certificates = []tls.Certificate{leaf.Certificate}
		return cfg
	}

	conn := identConnect(t, withCert(job))
	s := identQuerySettings(t, conn)
	if s.subject != "spiffe://example.org/ci/job" || s.issuer != "spiffe://example.org" ||
		s.appName != "pgwarden:spiffe://example.org/ci/job" {
		t.Fatalf("client certificate: subject %q issuer %q application_name %q", s.subject, s.issuer, s.appName)
	}
	identWantChain(t, s.chain, []identHop{{"spiffe://example.org/ci/job", "spiffe://example.org"}})
	start := identStart(t, ig.rec, s.sessionID)
	if id := start.Info.Identity; id.Method != "client-cert" || id.ExpiresAt.IsZero() || start.Info.UpstreamUser != rwRole {
		t.Fatalf("recorded identity %+v, upstream %q", id, start.Info.UpstreamUser)
	}

	// Without a certificate, the token.
	tok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	plain := identConnect(t, ig.config(t, ig.secret(tok)))
	if s := identQuerySettings(t, plain); s.subject != "alice" || s.issuer != idp.Issuer() {
		t.Fatalf("token without a certificate: subject %q issuer %q", s.subject, s.issuer)
	}

	before := ig.dials.Load()
	// A SPIFFE ID from another trust domain, from the trusted CA.
	_, err = pgx.ConnectConfig(ctx, withCert(foreign))
	identRefused(t, "SPIFFE ID from another trust domain", err, "28P01")
	// A certificate the gateway's CA did not issue fails the handshake.
	if _, err := pgx.ConnectConfig(ctx, withCert(untrusted)); err == nil {
		t.Error("a certificate from an untrusted CA got in")
	}
	if ig.dials.Load() != before {
		t.Error("refused certificates opened upstream connections")
	}
}

// TestStartupOptionsCannotNameIdentitySettings: pgwarden.* settings given
// with -c in the options startup parameter (when the operator allows
// options) are refused like pgwarden.* startup parameters, not forwarded.
func TestStartupOptionsCannotNameIdentitySettings(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	tok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.StartupParameters = []string{"options"} })
	cfg := ig.config(t, ig.secret(tok))
	cfg.RuntimeParams["options"] = "-c pgwarden.subject=mallory -c pgwarden.role=admin"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		defer conn.Close(context.Background())
		var role string
		if err := conn.QueryRow(ctx, "SELECT coalesce(current_setting('pgwarden.role', true), '')").Scan(&role); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("options=-c pgwarden.subject=mallory -c pgwarden.role=admin was accepted at startup "+
			"(the server has pgwarden.role = %q); a pgwarden.* startup parameter is refused with 42501", role)
	}
	if pgCode(err) != "42501" {
		t.Fatalf("err = %v, want FATAL 42501", err)
	}
}
