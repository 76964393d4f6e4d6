package proxy_test

// Revocation at the gateway (Proxy.Revoke) through the gateway against the
// real cluster and a real OpenID Provider (internal/devidp): revoking an
// agent of a delegation chain ends the sessions it takes part in (its own
// child agents' included) at once, leaves the person's own sessions alone,
// keeps new logins out before any upstream connection, and Unrevoke lets
// them back in.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// revokeMessage is the FATAL message of a session ended by Revoke.
const revokeMessage = "pgwarden: session terminated: its identity was revoked"

// revokeBudget is how long a revoked session may take to get its FATAL:
// Revoke ends the sessions before it returns, so this is ample.
const revokeBudget = time.Second

// revokeBlockedRead starts reading from c (waiting for a notification, as
// a client blocked on its socket does) and returns the channel that gets
// the read's error.
func revokeBlockedRead(t testing.TB, c *pgconn.PgConn) <-chan error {
	t.Helper()
	ch := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go func() { ch <- c.WaitForNotification(ctx) }()
	return ch
}

// revokeWaitBlocked waits until deadline for the blocked read's error and
// checks it is the revocation FATAL.
func revokeWaitBlocked(t testing.TB, what string, ch <-chan error, deadline time.Time, reason string) {
	t.Helper()
	select {
	case err := <-ch:
		revokeWantFatal(t, what, err, reason)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%s: no FATAL on the blocked read within %v of Revoke", what, revokeBudget)
	}
}

// revokeWaitNextQuery sends "select 1" on c until it fails or deadline
// passes, and checks that the failure is the revocation FATAL. No query
// may succeed after Revoke returned: the sessions are ended before it
// returns.
func revokeWaitNextQuery(t testing.TB, what string, c *pgconn.PgConn, deadline time.Time, reason string) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		err := execErr(ctx, c, "select 1")
		if err != nil {
			revokeWantFatal(t, what, err, reason)
			return
		}
		t.Errorf("%s: a query succeeded after Revoke returned", what)
		if time.Now().After(deadline) {
			t.Fatalf("%s: no FATAL within %v of Revoke", what, revokeBudget)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// revokeWantFatal fails t unless err is the FATAL 28000 of a revocation
// with reason as its detail.
func revokeWantFatal(t testing.TB, what string, err error, reason string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("%s: %v, want FATAL 28000 %q", what, err, revokeMessage)
	}
	if pgErr.Severity != "FATAL" || pgErr.Code != "28000" || pgErr.Message != revokeMessage || pgErr.Detail != reason {
		t.Fatalf("%s: %s %s %q (detail %q), want FATAL 28000 %q (detail %q)",
			what, pgErr.Severity, pgErr.Code, pgErr.Message, pgErr.Detail, revokeMessage, reason)
	}
}

// revokeWantRefused fails t unless connecting with cfg is refused with
// FATAL 28000 saying the identity is revoked, before any upstream
// connection.
func revokeWantRefused(t testing.TB, ig *identGateway, what string, cfg *pgx.ConnConfig, reason string) {
	t.Helper()
	before := ig.dials.Load()
	conn, err := pgx.ConnectConfig(testContext(t), cfg)
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("%s: a revoked identity logged in", what)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || pgErr.Code != "28000" ||
		!strings.Contains(pgErr.Message, "revoked") || pgErr.Detail != reason {
		t.Fatalf("%s: %v, want FATAL 28000 saying it is revoked (detail %q)", what, err, reason)
	}
	if n := ig.dials.Load() - before; n != 0 {
		t.Fatalf("%s: the refused login opened %d upstream connections", what, n)
	}
}

// revokeWantRecordedEnd checks the recording of a session ended by Revoke:
// session.end with reason revoked and the FATAL, and the credential event
// revoked before it.
func revokeWantRecordedEnd(t testing.TB, rec *eventLog, what, id string) {
	t.Helper()
	end := identWaitEnd(t, rec, id)
	if end.Reason != session.EndRevoked || end.ErrorCode != "28000" || end.Message != revokeMessage {
		t.Fatalf("%s: recorded end %+v, want reason %q with FATAL 28000 %q", what, end, session.EndRevoked, revokeMessage)
	}
	var actions []session.CredentialAction
	first := session.CredentialUsed // a shared credential; a lease is issued
	for _, ev := range rec.snapshot() {
		if ev.Kind == session.KindCredential && ev.SessionID == id {
			actions = append(actions, ev.Credential.Action)
			if ev.Credential.Lease != "" {
				first = session.CredentialIssued
			}
		}
	}
	if want := []session.CredentialAction{first, session.CredentialRevoked}; !slices.Equal(actions, want) {
		t.Fatalf("%s: recorded credential events %v, want %v", what, actions, want)
	}
}

// revokeAlive fails t unless conn still runs queries.
func revokeAlive(t testing.TB, what string, conn *pgx.Conn) {
	t.Helper()
	var n int
	if err := conn.QueryRow(testContext(t), "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("%s: the session no longer works: %d, %v", what, n, err)
	}
}

// revokeWantRevocations fails t unless Revocations lists exactly want
// (compared without Since, which must be recent).
func revokeWantRevocations(t testing.TB, g *proxy.Proxy, want ...proxy.Revocation) {
	t.Helper()
	got := g.Revocations()
	for i := range got {
		if got[i].Since.IsZero() || time.Since(got[i].Since) > time.Minute || time.Until(got[i].Since) > time.Second {
			t.Errorf("revocation %+v: Since is not the time of Revoke", got[i])
		}
		got[i].Since = time.Time{}
	}
	cmp := func(a, b proxy.Revocation) int {
		return strings.Compare(a.Issuer+"\x00"+a.Subject, b.Issuer+"\x00"+b.Subject)
	}
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("Revocations() = %+v, want %+v", got, want)
	}
}

// TestRevokeNestedAgents: alice's token, alice→ci-job and
// alice→ci-job→agent each have a session. Revoking ci-job (in any issuer,
// then in the IdP's issuer) ends the ci-job and agent sessions with FATAL
// 28000 within a second, recorded as revoked, leaves alice's own session
// working, refuses new logins of the chain before any upstream connection,
// and Unrevoke lets them in again.
func TestRevokeNestedAgents(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	iss := idp.Issuer()
	toks, err := idp.Chain(ctx, "alice", "ci-job", "agent")
	if err != nil {
		t.Fatal(err)
	}
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.AllowPlaintext = false })
	for _, tok := range toks {
		ig.secret(tok)
	}
	aliceTok, ciTok, agentTok := toks[0], toks[1], toks[2]

	own := identConnect(t, ig.config(t, aliceTok))
	ci := identConnect(t, ig.config(t, ciTok))
	agent := identConnect(t, ig.config(t, agentTok))
	ownID := identQuerySettings(t, own).sessionID
	ciSettings := identQuerySettings(t, ci)
	agentSettings := identQuerySettings(t, agent)
	identWantChain(t, agentSettings.chain, []identHop{{"alice", iss}, {"ci-job", iss}, {"agent", iss}})
	if n := len(ig.Sessions()); n != 3 {
		t.Fatalf("%d live sessions, want 3", n)
	}
	top := t // connections that outlive a subtest

	t.Run("any issuer", func(t *testing.T) {
		blocked := revokeBlockedRead(t, ci.PgConn())
		time.Sleep(50 * time.Millisecond) // let the read block
		start := time.Now()
		n, err := ig.Revoke("", "ci-job", "offboarded")
		deadline := start.Add(revokeBudget)
		if err != nil || n != 2 {
			t.Fatalf("Revoke(\"\", ci-job) = %d, %v; want 2 sessions ended (ci-job's and its child agent's)", n, err)
		}
		revokeWaitBlocked(t, "the ci-job session (blocked read)", blocked, deadline, "offboarded")
		revokeWaitNextQuery(t, "the agent session (next query)", agent.PgConn(), deadline, "offboarded")

		revokeWantRecordedEnd(t, ig.rec, "the ci-job session", ciSettings.sessionID)
		revokeWantRecordedEnd(t, ig.rec, "the agent session", agentSettings.sessionID)

		// The person's own session is not part of the revoked chain.
		revokeAlive(t, "alice's own session", own)
		if live := ig.Sessions(); len(live) != 1 || live[0].Info.ID != ownID {
			t.Fatalf("live sessions after Revoke: %+v, want alice's own only", live)
		}

		revokeWantRefused(t, ig, "the agent token", ig.config(t, agentTok), "offboarded")
		revokeWantRefused(t, ig, "the ci-job token", ig.config(t, ciTok), "offboarded")
		// Over OAUTHBEARER too.
		revokeWantRefused(t, ig, "the agent token over OAUTHBEARER", oidcBearer(ig.config(t, ""), agentTok, true), "offboarded")
		// alice herself still logs in.
		revokeAlive(t, "a new session of alice's own token", identConnect(t, ig.config(t, aliceTok)))

		revokeWantRevocations(t, ig.Proxy, proxy.Revocation{Subject: "ci-job", Reason: "offboarded"})

		if !ig.Unrevoke("", "ci-job") {
			t.Fatal("Unrevoke(\"\", ci-job) = false after Revoke")
		}
		if ig.Unrevoke("", "ci-job") {
			t.Fatal("a second Unrevoke(\"\", ci-job) = true")
		}
		revokeWantRevocations(t, ig.Proxy)
		agent = identConnect(top, ig.config(t, agentTok))
		revokeAlive(t, "the agent token after Unrevoke", agent)
		agentSettings = identQuerySettings(t, agent)
	})

	t.Run("the IdP's issuer", func(t *testing.T) {
		// A revocation in another issuer is not about these tokens.
		const other = "https://idp.other.example"
		if n, err := ig.Revoke(other, "ci-job", "elsewhere"); err != nil || n != 0 {
			t.Fatalf("Revoke(other issuer, ci-job) = %d, %v; want 0 sessions ended", n, err)
		}
		revokeAlive(t, "the agent session after a revocation in another issuer", agent)
		revokeAlive(t, "a new agent session after a revocation in another issuer", identConnect(t, ig.config(t, agentTok)))
		if !ig.Unrevoke(other, "ci-job") {
			t.Fatal("Unrevoke(other issuer, ci-job) = false")
		}

		// A new alice→ci-job session beside the agent's, plus the one
		// opened just above: three sessions involve ci-job.
		ci := identConnect(t, ig.config(t, ciTok))
		ciSettings := identQuerySettings(t, ci)
		blocked := revokeBlockedRead(t, agent.PgConn())
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		n, err := ig.Revoke(iss, "ci-job", "compromised")
		deadline := start.Add(revokeBudget)
		if err != nil || n != 3 {
			t.Fatalf("Revoke(issuer, ci-job) = %d, %v; want 3 sessions ended", n, err)
		}
		revokeWaitBlocked(t, "the agent session (blocked read)", blocked, deadline, "compromised")
		revokeWaitNextQuery(t, "the ci-job session (next query)", ci.PgConn(), deadline, "compromised")
		revokeWantRecordedEnd(t, ig.rec, "the agent session", agentSettings.sessionID)
		revokeWantRecordedEnd(t, ig.rec, "the ci-job session", ciSettings.sessionID)
		revokeAlive(t, "alice's own session", own)

		revokeWantRefused(t, ig, "the agent token", ig.config(t, agentTok), "compromised")
		revokeWantRefused(t, ig, "the ci-job token", ig.config(t, ciTok), "compromised")
		revokeWantRevocations(t, ig.Proxy, proxy.Revocation{Issuer: iss, Subject: "ci-job", Reason: "compromised"})

		// Unrevoke needs the same issuer and subject.
		if ig.Unrevoke("", "ci-job") {
			t.Fatal("Unrevoke(\"\", ci-job) lifted a revocation made in the IdP's issuer")
		}
		revokeWantRefused(t, ig, "the agent token after Unrevoke with another issuer", ig.config(t, agentTok), "compromised")
		if !ig.Unrevoke(iss, "ci-job") {
			t.Fatal("Unrevoke(issuer, ci-job) = false after Revoke")
		}
		revokeAlive(t, "the agent token after Unrevoke", identConnect(t, ig.config(t, agentTok)))
	})

	t.Run("the person", func(t *testing.T) {
		// Revoking the person ends every session of her chain: her own and
		// her agents'.
		waitFor(t, func() bool { return len(ig.Sessions()) == 1 }) // the subtests' sessions are gone
		agent := identConnect(t, ig.config(t, agentTok))
		n, err := ig.Revoke(iss, "alice", "left the company")
		deadline := time.Now().Add(revokeBudget)
		if err != nil || n != 2 {
			t.Fatalf("Revoke(issuer, alice) = %d, %v; want 2 sessions ended (hers and her agent's)", n, err)
		}
		revokeWaitNextQuery(t, "alice's own session", own.PgConn(), deadline, "left the company")
		revokeWaitNextQuery(t, "the agent session", agent.PgConn(), deadline, "left the company")
		revokeWantRefused(t, ig, "the agent token", ig.config(t, agentTok), "left the company")
		revokeWantRefused(t, ig, "alice's token", ig.config(t, aliceTok), "left the company")
		waitFor(t, func() bool { return len(ig.Sessions()) == 0 })
		if !ig.Unrevoke(iss, "alice") {
			t.Fatal("Unrevoke(issuer, alice) = false")
		}
		revokeAlive(t, "alice's token after Unrevoke", identConnect(t, ig.config(t, aliceTok)))
	})
}

// TestRevokeArguments: Revoke needs a subject; revoking a subject nobody
// uses ends nothing (but keeps it out until Unrevoke).
func TestRevokeArguments(t *testing.T) {
	g := startGateway(t, nil)
	conn := connect(t, g.dsn("alice", alicePassword))

	for _, issuer := range []string{"", "static", "https://idp.example"} {
		n, err := g.Revoke(issuer, "", "no one")
		if err == nil || n != 0 {
			t.Errorf("Revoke(%q, \"\") = %d, %v; want an error", issuer, n, err)
		}
	}
	if rs := g.Revocations(); len(rs) != 0 {
		t.Fatalf("a refused Revoke left revocations: %+v", rs)
	}
	if g.Unrevoke("", "") {
		t.Fatal("Unrevoke(\"\", \"\") = true after refused Revokes")
	}

	n, err := g.Revoke("", "nobody", "never seen")
	if err != nil || n != 0 {
		t.Fatalf("Revoke(\"\", nobody) = %d, %v; want 0, nil", n, err)
	}
	revokeAlive(t, "alice's session after revoking nobody", conn)
	revokeWantRevocations(t, g.Proxy, proxy.Revocation{Subject: "nobody", Reason: "never seen"})
	// bob's subject is not "nobody": he still gets in.
	revokeAlive(t, "bob", connect(t, g.dsn("bob", bobPassword)))
	if !g.Unrevoke("", "nobody") {
		t.Fatal("Unrevoke(\"\", nobody) = false")
	}
	if g.Unrevoke("", "alice") {
		t.Fatal("Unrevoke of a subject never revoked = true")
	}
	revokeWantRevocations(t, g.Proxy)
}

// TestRevokedDuringLoginRecordsTheEnd: an identity revoked while its
// session is being recorded as started (after the login checked for
// revocations, before the session is registered) is refused by start's
// second check, and the recording closes the session it opened.
func TestRevokedDuringLoginRecordsTheEnd(t *testing.T) {
	g := startGateway(t, nil)
	entered := make(chan string, 1)
	proceed := make(chan struct{})
	var once sync.Once
	g.rec.mu.Lock()
	g.rec.fail = func(ev session.Event) error {
		if ev.Kind == session.KindSessionStart {
			// Hold the session.start until the test revoked alice.
			once.Do(func() {
				entered <- ev.SessionID
				<-proceed
			})
		}
		return nil
	}
	g.rec.mu.Unlock()

	ctx := testContext(t)
	login := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, g.dsn("alice", alicePassword))
		if err == nil {
			conn.Close(context.Background())
		}
		login <- err
	}()
	var id string
	select {
	case id = <-entered:
	case <-time.After(30 * time.Second):
		close(proceed)
		t.Fatal("the login did not reach session.start")
	}
	n, err := g.Revoke("", "alice", "revoked during login")
	close(proceed)
	if err != nil || n != 0 {
		t.Fatalf("Revoke during the login = %d, %v; want 0 (not registered yet)", n, err)
	}
	err = <-login
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" || !strings.Contains(pgErr.Message, "revoked") {
		t.Fatalf("the login revoked midway: %v, want FATAL 28000 saying it is revoked", err)
	}
	// The recording: session.start was recorded; its session.end must
	// follow.
	started := false
	deadline := time.Now().Add(time.Second)
	for {
		ended := false
		for _, ev := range g.rec.snapshot() {
			started = started || (ev.Kind == session.KindSessionStart && ev.SessionID == id)
			ended = ended || (ev.Kind == session.KindSessionEnd && ev.SessionID == id)
		}
		if !started {
			t.Fatalf("no session.start recorded for session %s", id)
		}
		if ended {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s: session.start recorded, the login refused (revoked), and no session.end recorded within a second: "+
				"the recording shows a session that never ends", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRevokeCountsOnlyLiveSessions: a session already ended stays
// registered while the gateway drains its client; a second Revoke does not
// count it again, and Sessions does not list it.
func TestRevokeCountsOnlyLiveSessions(t *testing.T) {
	g := startGateway(t, nil)
	connect(t, g.dsn("alice", alicePassword)) // a client that does not read: it has not seen the FATAL yet
	if n, err := g.Revoke("", "alice", "first"); err != nil || n != 1 {
		t.Fatalf("the first Revoke = %d, %v; want 1", n, err)
	}
	if n, err := g.Revoke("static", "alice", "second"); err != nil || n != 0 {
		t.Errorf("a second Revoke right after the first = %d, %v; want 0 (the session was ended by the first)", n, err)
	}
	if live := g.Sessions(); len(live) != 0 {
		t.Errorf("Sessions() right after Revoke lists %d sessions (state %q), want none: the revoked session is over", len(live), live[0].State)
	}
}
