package proxy_test

// Just-in-time database credentials (credstore.Dynamic) through the
// gateway against the real cluster: each session logs in upstream as a
// role created for it (VALID UNTIL, member of a least-privilege template),
// whose password the client never sees, and which is dropped when the
// session ends, when the lease's TTL ends the session, or when the
// identity is revoked.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// The roles and table of the just-in-time tests. The admin role has
// CREATEROLE and nothing else; the template role may only read jit_items.
const (
	jitAdminRole     = "jit_admin"
	jitAdminPassword = "jit-admin-secret"
	jitTemplate      = "jit_reader"
	jitPrefix        = "pgwjit_"
	jitItems         = 3 // rows in jit_items
)

var (
	jitFixtureOnce sync.Once
	jitFixtureErr  error
)

// jitFixture creates, once per test binary, the admin role, the template
// role and the table it may read.
func jitFixture(t testing.TB) {
	t.Helper()
	setupRoles(t)
	jitFixtureOnce.Do(func() {
		ctx := context.Background()
		jitFixtureErr = pg.Exec(ctx, "postgres", fmt.Sprintf(`
			CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s';
			CREATE ROLE %s NOLOGIN;`, jitAdminRole, jitAdminPassword, jitTemplate))
		if jitFixtureErr == nil {
			jitFixtureErr = pg.Exec(ctx, "app", fmt.Sprintf(`
				CREATE TABLE jit_items(id int PRIMARY KEY, name text);
				INSERT INTO jit_items VALUES (1, 'one'), (2, 'two'), (3, 'three');
				GRANT SELECT ON jit_items TO %s;`, jitTemplate))
		}
	})
	if jitFixtureErr != nil {
		t.Fatalf("creating the just-in-time fixture: %v", jitFixtureErr)
	}
}

// newJITDynamic returns a Dynamic store with a lease file in a temporary
// directory, closed at cleanup (register it before the gateway that uses
// it, so that the gateway closes first).
func newJITDynamic(t testing.TB, ttl time.Duration, log *slog.Logger) (d *credstore.Dynamic, leaseFile string) {
	t.Helper()
	jitFixture(t)
	leaseFile = filepath.Join(t.TempDir(), "leases.json")
	d, err := credstore.NewDynamic(context.Background(), credstore.DynamicConfig{
		AdminDSN:  session.NewSecret(pg.ConnString(jitAdminRole, jitAdminPassword, "app")),
		Templates: []credstore.Template{{Groups: []string{"analysts"}, Roles: []string{jitTemplate}}},
		TTL:       ttl,
		Prefix:    jitPrefix,
		Leases:    credstore.NewFileLeases(leaseFile),
		GatewayID: "proxy-test",
		Logger:    log,
	})
	if err != nil {
		t.Fatalf("NewDynamic: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the Dynamic store: %v", err)
		}
	})
	return d, leaseFile
}

// jitGateway is a gateway whose credential store is a Dynamic, wrapped so
// that the test learns every credential issued (to check that its
// password goes nowhere but upstream). Its log (the gateway's and the
// store's) and its recording are checked for the passwords when the test
// ends.
type jitGateway struct {
	*identGateway
	dyn       *credstore.Dynamic
	leaseFile string

	mu    sync.Mutex
	creds []credstore.Credential
}

// startJITGateway starts a gateway (see startGateway) whose credentials
// come from a Dynamic store with ttl; a, when not nil, replaces the
// harness's static users.
func startJITGateway(t testing.TB, ttl time.Duration, a auth.Authenticator, configure func(*proxy.Proxy)) *jitGateway {
	t.Helper()
	ig := &identGateway{logs: &identLog{}}
	// Cleanups run last registered first: the gateway closes, then the
	// store ends what is left, then the log and the recording are checked.
	t.Cleanup(func() { ig.checkNoSecrets(t) })
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(ig.logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	jg := &jitGateway{identGateway: ig}
	jg.dyn, jg.leaseFile = newJITDynamic(t, ttl, logger)
	ig.gateway = startGateway(t, func(p *proxy.Proxy) {
		p.Logger = logger
		p.Credentials = credstore.Func(jg.credential)
		if a != nil {
			p.Authenticator = a
		}
		if configure != nil {
			configure(p)
		}
	})
	return jg
}

func (jg *jitGateway) credential(ctx context.Context, info *session.Info) (credstore.Credential, error) {
	c, err := jg.dyn.Credential(ctx, info)
	if err == nil {
		jg.secret(c.Password.Reveal())
		jg.mu.Lock()
		jg.creds = append(jg.creds, c)
		jg.mu.Unlock()
	}
	return c, err
}

// issued returns the credentials issued so far.
func (jg *jitGateway) issued() []credstore.Credential {
	jg.mu.Lock()
	defer jg.mu.Unlock()
	return slices.Clone(jg.creds)
}

// credentialFor returns the credential issued for role.
func (jg *jitGateway) credentialFor(t testing.TB, role string) credstore.Credential {
	t.Helper()
	for _, c := range jg.issued() {
		if c.User == role {
			return c
		}
	}
	t.Fatalf("no credential was issued for role %q", role)
	return credstore.Credential{}
}

// lease returns the lease of role from the store.
func (jg *jitGateway) lease(t testing.TB, role string) credstore.Lease {
	t.Helper()
	ls, err := jg.dyn.Leases(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Role == role {
			return l
		}
	}
	t.Fatalf("no lease for role %q in the store", role)
	return credstore.Lease{}
}

// jitWaitLeaseEnded waits (polling, with a generous bound) until the
// lease of role is ended in the store, and returns it.
func (jg *jitGateway) waitLeaseEnded(t testing.TB, role string) credstore.Lease {
	t.Helper()
	var l credstore.Lease
	waitFor(t, func() bool { l = jg.lease(t, role); return !l.Active() })
	return l
}

// jitSuper is a superuser connection to the app database, for looking at
// pg_roles beside the gateway.
func jitSuper(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testContext(t), pg.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// jitRole is a role's row in pg_roles.
type jitRole struct {
	exists     bool
	canLogin   bool
	validUntil *time.Time
	connLimit  int
	member     bool // of the template role
}

func jitLookupRole(t testing.TB, su *pgx.Conn, role string) jitRole {
	t.Helper()
	var r jitRole
	err := su.QueryRow(testContext(t), `SELECT rolcanlogin, rolvaliduntil, rolconnlimit, pg_has_role(oid, $2::text, 'MEMBER')
		FROM pg_roles WHERE rolname = $1`, role, jitTemplate).Scan(&r.canLogin, &r.validUntil, &r.connLimit, &r.member)
	if errors.Is(err, pgx.ErrNoRows) {
		return r
	}
	if err != nil {
		t.Fatalf("looking up role %q: %v", role, err)
	}
	r.exists = true
	return r
}

// jitWaitRoleGone waits (polling, with a generous bound) until role is no
// longer in pg_roles.
func jitWaitRoleGone(t testing.TB, su *pgx.Conn, role string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for jitLookupRole(t, su, role).exists {
		if time.Now().After(deadline) {
			t.Fatalf("role %q is still in pg_roles 10s after its session ended", role)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jitWhoAmI returns the session's current_user, session_user and id.
func jitWhoAmI(t testing.TB, conn *pgx.Conn) (current, sessionUser, id string) {
	t.Helper()
	err := conn.QueryRow(testContext(t), "SELECT current_user, session_user, current_setting('pgwarden.session_id')").
		Scan(&current, &sessionUser, &id)
	if err != nil {
		t.Fatalf("SELECT current_user: %v", err)
	}
	return current, sessionUser, id
}

// jitCredentialEvents returns the session's credential events, in order,
// and whether the last of them came before its session.end.
func jitCredentialEvents(rec *eventLog, id string) (evs []session.CredentialEvent, beforeEnd bool) {
	beforeEnd = true
	for _, ev := range rec.snapshot() {
		if ev.SessionID != id {
			continue
		}
		switch ev.Kind {
		case session.KindCredential:
			evs = append(evs, *ev.Credential)
		case session.KindSessionEnd:
			beforeEnd = len(evs) > 0
			return evs, beforeEnd
		}
	}
	return evs, false
}

// jitWantCredentialEvents fails t unless session id recorded a credential
// issued for role then ended with action, before its session.end.
func jitWantCredentialEvents(t testing.TB, rec *eventLog, id string, cred credstore.Credential, action session.CredentialAction) {
	t.Helper()
	identWaitEnd(t, rec, id)
	evs, beforeEnd := jitCredentialEvents(rec, id)
	if len(evs) != 2 || evs[0].Action != session.CredentialIssued || evs[1].Action != action || !beforeEnd {
		t.Fatalf("credential events %+v (before session.end: %v), want issued then %s before session.end", evs, beforeEnd, action)
	}
	for _, ev := range evs {
		if ev.User != cred.User || ev.Lease != cred.User || !ev.ExpiresAt.Equal(cred.ExpiresAt) {
			t.Fatalf("credential event %+v, want user and lease %q, expiring at %s", ev, cred.User, cred.ExpiresAt)
		}
	}
}

// jitTap keeps every byte that crosses the client's connection.
type jitTap struct {
	mu             sync.Mutex
	received, sent bytes.Buffer
}

type jitTapConn struct {
	net.Conn
	tap *jitTap
}

func (c *jitTapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.tap.mu.Lock()
	c.tap.received.Write(p[:n])
	c.tap.mu.Unlock()
	return n, err
}

func (c *jitTapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.tap.mu.Lock()
	c.tap.sent.Write(p[:n])
	c.tap.mu.Unlock()
	return n, err
}

// contains reports whether s crossed the connection, either way.
func (tap *jitTap) contains(s string) bool {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return bytes.Contains(tap.received.Bytes(), []byte(s)) || bytes.Contains(tap.sent.Bytes(), []byte(s))
}

// jitTapped is a pgx configuration for dsn (without TLS, so that the tap
// sees the protocol) whose connection is tapped.
func jitTapped(t testing.TB, dsn string, tap *jitTap) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &jitTapConn{Conn: c, tap: tap}, nil
	}
	return cfg
}

// TestJITCredentialThroughTheGateway: a client logs in (static SCRAM user)
// and the gateway logs in upstream as a role created for the session:
// prefixed, VALID UNTIL the lease's end, member of the template, able to
// read what the template reads and nothing more. Its password never
// crosses the client's connection, and is in neither the log, the
// recording nor the lease store. The recording has the credential issued
// and released, and the role is dropped when the client disconnects.
func TestJITCredentialThroughTheGateway(t *testing.T) {
	ctx := testContext(t)
	jg := startJITGateway(t, time.Hour, nil, nil)
	su := jitSuper(t)
	tap := &jitTap{}
	conn, err := pgx.ConnectConfig(ctx, jitTapped(t, jg.dsn("alice", alicePassword), tap))
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	defer conn.Close(context.Background())
	loggedIn := time.Now()

	role, sessionUser, id := jitWhoAmI(t, conn)
	if !strings.HasPrefix(role, jitPrefix) || sessionUser != role {
		t.Fatalf("current_user, session_user = %q, %q; want one role named %s…", role, sessionUser, jitPrefix)
	}
	if n := len(jg.issued()); n != 1 {
		t.Fatalf("%d credentials issued for one session", n)
	}
	cred := jg.credentialFor(t, role)
	if cred.Lease != role || cred.Password.IsZero() || cred.Release == nil {
		t.Fatalf("the credential: lease %q, password set %v, release set %v", cred.Lease, !cred.Password.IsZero(), cred.Release != nil)
	}
	if d := cred.ExpiresAt.Sub(loggedIn); d < time.Hour-time.Minute || d > time.Hour {
		t.Fatalf("the credential expires %v after the login, want the TTL (1h)", d)
	}

	// The template's grants, and nothing more.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM jit_items").Scan(&n); err != nil || n != jitItems {
		t.Fatalf("reading jit_items as the lease: %d rows, %v", n, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO jit_items VALUES (99, 'not allowed')"); pgCode(err) != "42501" {
		t.Fatalf("writing jit_items as the lease: %v, want the server's permission denied (42501)", err)
	}

	r := jitLookupRole(t, su, role)
	if !r.exists || !r.canLogin || r.validUntil == nil || !r.member || r.connLimit != 1 {
		t.Fatalf("pg_roles for %q: %+v, want a login role with VALID UNTIL, CONNECTION LIMIT 1, member of %s", role, r, jitTemplate)
	}
	if !r.validUntil.Equal(cred.ExpiresAt) {
		t.Fatalf("rolvaliduntil %s, want the credential's expiry %s", r.validUntil, cred.ExpiresAt)
	}

	start := identStart(t, jg.rec, id)
	if start.Info.UpstreamUser != role || start.Info.Lease != role {
		t.Fatalf("recorded session: upstream user %q, lease %q; want %q", start.Info.UpstreamUser, start.Info.Lease, role)
	}
	l := jg.lease(t, role)
	if !l.Active() || l.Identity.Subject != "alice" || l.Database != "app" || !slices.Equal(l.Templates, []string{jitTemplate}) ||
		!l.ExpiresAt.Equal(cred.ExpiresAt) {
		t.Fatalf("the lease while the session runs: %+v", l)
	}

	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	jitWantCredentialEvents(t, jg.rec, id, cred, session.CredentialReleased)
	if end := identWaitEnd(t, jg.rec, id); end.Reason != session.EndClientExit {
		t.Fatalf("recorded end %+v, want %s", end, session.EndClientExit)
	}
	jitWaitRoleGone(t, su, role)
	if l := jg.waitLeaseEnded(t, role); l.EndReason != "session-ended" {
		t.Fatalf("the lease after the session: %+v, want ended with session-ended", l)
	}

	// Where the password is not.
	secret := cred.Password.Reveal()
	if !tap.contains(role) {
		t.Fatal("bad test: the tap did not see the role name in the query results")
	}
	if tap.contains(secret) {
		t.Fatal("the role's password crossed the client's connection")
	}
	if b, err := os.ReadFile(jg.leaseFile); err != nil {
		t.Fatal(err)
	} else if bytes.Contains(b, []byte(secret)) {
		t.Fatal("the lease file contains the role's password")
	}
	if !strings.Contains(jg.logs.String(), role) {
		t.Fatal("bad test: the captured log does not mention the lease")
	}
	// The log and the recording are checked again once the gateway closed.
	events, _ := json.Marshal(jg.rec.snapshot())
	if strings.Contains(jg.logs.String(), secret) || bytes.Contains(events, []byte(secret)) {
		t.Fatal("the role's password is in the gateway's log or recording")
	}
}

// TestJITCredentialExpiryEndsTheSession: a lease with a TTL of 3 seconds
// ends its session with FATAL 28000 when it expires (not before), the
// recording says the credential expired, and the role is dropped.
func TestJITCredentialExpiryEndsTheSession(t *testing.T) {
	t.Parallel() // it waits for the lease to expire: let it overlap
	jg := startJITGateway(t, 3*time.Second, nil, nil)
	su := jitSuper(t)
	conn := connect(t, jg.dsn("alice", alicePassword))
	role, _, id := jitWhoAmI(t, conn)
	cred := jg.credentialFor(t, role)
	if time.Until(cred.ExpiresAt) > 3*time.Second {
		t.Fatalf("the credential expires at %s, more than the TTL from now", cred.ExpiresAt)
	}

	pgErr := identWaitFatal(t, conn.PgConn())
	const fatal = "terminating connection because its database credential expired"
	if pgErr.Code != "28000" || pgErr.Message != fatal {
		t.Fatalf("session end: %s %q, want FATAL 28000 %q", pgErr.Code, pgErr.Message, fatal)
	}
	// The wall clock may be stepped; allow a little.
	if now := time.Now(); now.Before(cred.ExpiresAt.Add(-100 * time.Millisecond)) {
		t.Fatalf("the session ended at %s, before its credential expired at %s", now, cred.ExpiresAt)
	}
	if end := identWaitEnd(t, jg.rec, id); end.Reason != session.EndExpired || end.ErrorCode != "28000" || end.Message != fatal {
		t.Fatalf("recorded end %+v, want reason %q with FATAL 28000 %q", end, session.EndExpired, fatal)
	}
	jitWantCredentialEvents(t, jg.rec, id, cred, session.CredentialExpired)
	jitWaitRoleGone(t, su, role)
	l := jg.waitLeaseEnded(t, role)
	t.Logf("the expired lease ended with reason %q", l.EndReason)
}

// TestJITRevocationEndsTheLease: revoking an agent of a delegation chain
// ends the session of its child agent and drops that session's role; the
// person's own session and role are untouched; the revoked chain gets no
// new lease; after Unrevoke it gets a new role.
func TestJITRevocationEndsTheLease(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	iss := idp.Issuer()
	toks, err := idp.Chain(ctx, "alice", "ci-job", "agent")
	if err != nil {
		t.Fatal(err)
	}
	jg := startJITGateway(t, time.Hour, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.AllowPlaintext = false })
	for _, tok := range toks {
		jg.secret(tok)
	}
	su := jitSuper(t)
	own := identConnect(t, jg.config(t, toks[0]))
	agent := identConnect(t, jg.config(t, toks[2]))
	ownRole, _, _ := jitWhoAmI(t, own)
	agentRole, _, agentID := jitWhoAmI(t, agent)
	if ownRole == agentRole || !strings.HasPrefix(agentRole, jitPrefix) || !strings.HasPrefix(ownRole, jitPrefix) {
		t.Fatalf("roles %q and %q: want one lease per session", ownRole, agentRole)
	}
	l := jg.lease(t, agentRole)
	if l.Identity.Subject != "alice" || !slices.Equal(l.Identity.Chain, []session.Actor{{Subject: "ci-job", Issuer: iss}, {Subject: "agent", Issuer: iss}}) {
		t.Fatalf("the agent's lease names %q via %+v, want alice via ci-job, agent", l.Identity.Subject, l.Identity.Chain)
	}

	n, err := jg.Revoke("", "ci-job", "offboarded")
	if err != nil || n != 1 {
		t.Fatalf("Revoke(\"\", ci-job) = %d, %v; want the agent's session ended", n, err)
	}
	revokeWaitNextQuery(t, "the agent session", agent.PgConn(), time.Now().Add(revokeBudget), "offboarded")
	revokeWantRecordedEnd(t, jg.rec, "the agent session", agentID)
	jitWantCredentialEvents(t, jg.rec, agentID, jg.credentialFor(t, agentRole), session.CredentialRevoked)
	jitWaitRoleGone(t, su, agentRole)
	jg.waitLeaseEnded(t, agentRole)

	// alice's own session keeps its role.
	revokeAlive(t, "alice's own session", own)
	if r := jitLookupRole(t, su, ownRole); !r.exists || !r.canLogin {
		t.Fatalf("alice's own role after revoking ci-job: %+v", r)
	}
	if !jg.lease(t, ownRole).Active() {
		t.Fatal("alice's own lease ended with the revocation of ci-job")
	}

	// The revoked chain gets no new lease.
	issued := len(jg.issued())
	revokeWantRefused(t, jg.identGateway, "the agent token", jg.config(t, toks[2]), "offboarded")
	if len(jg.issued()) != issued {
		t.Fatal("a revoked identity was issued a credential")
	}

	if !jg.Unrevoke("", "ci-job") {
		t.Fatal("Unrevoke(\"\", ci-job) = false")
	}
	again := identConnect(t, jg.config(t, toks[2]))
	if role, _, _ := jitWhoAmI(t, again); role == agentRole || !strings.HasPrefix(role, jitPrefix) {
		t.Fatalf("the agent after Unrevoke runs as %q, want a new lease (not %q)", role, agentRole)
	}
}

// TestJITLeaseEndReasonAfterRevoke: the lease of a session ended by
// Revoke is recorded in the lease store as "revoked", so that the access
// review can tell it from a lease that ended with its session.
func TestJITLeaseEndReasonAfterRevoke(t *testing.T) {
	jg := startJITGateway(t, time.Hour, nil, nil)
	su := jitSuper(t)
	conn := connect(t, jg.dsn("alice", alicePassword))
	role, _, id := jitWhoAmI(t, conn)
	if n, err := jg.Revoke("", "alice", "offboarded"); err != nil || n != 1 {
		t.Fatalf("Revoke(\"\", alice) = %d, %v", n, err)
	}
	jitWantCredentialEvents(t, jg.rec, id, jg.credentialFor(t, role), session.CredentialRevoked)
	jitWaitRoleGone(t, su, role)
	if l := jg.waitLeaseEnded(t, role); l.EndReason != "revoked" {
		t.Fatalf("the lease of a revoked session ended with reason %q in the lease store, want %q", l.EndReason, "revoked")
	}
}

// BenchmarkSessionSetupJIT is the time to open a session through the
// gateway (connect, first query "select 1", close) with a static credential
// and with a just-in-time one (a role created per session; its drop runs
// after the client closed, and the benchmark does not wait for it).
//
//	go test ./proxy -run XXX -bench SessionSetupJIT -benchtime 100x
func BenchmarkSessionSetupJIT(b *testing.B) {
	quiet := func(p *proxy.Proxy) {
		p.Recorder = nil
		p.Logger = slog.New(slog.DiscardHandler)
	}
	static := startGateway(b, quiet)
	d, _ := newJITDynamic(b, time.Hour, slog.New(slog.DiscardHandler))
	jit := startGateway(b, func(p *proxy.Proxy) {
		quiet(p)
		p.Credentials = d
	})
	for _, target := range []struct {
		name string
		g    *gateway
	}{{"static", static}, {"jit", jit}} {
		cfg, err := pgconn.ParseConfig(target.g.dsn("alice", alicePassword))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(target.name, func(b *testing.B) {
			ctx := testContext(b)
			for b.Loop() {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := execErr(ctx, c, "select 1"); err != nil {
					b.Fatal(err)
				}
				if err := c.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
