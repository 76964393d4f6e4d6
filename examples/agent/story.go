package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// revokeReason is what the revoked sessions are told.
const revokeReason = "parent-agent finished its task; its delegation is withdrawn"

// storyResult is what the story established, for the test to check.
type storyResult struct {
	ParentChain []string // the parent's own session, as the database saw it
	Child       childReport
	ChildExit   int
	Approvals   []approvalOutcome
	Revoked     int      // sessions Proxy.Revoke ended
	ParentEnd   *pgError // how the parent's own session ended
	Lease       credstore.Lease
	RoleExists  bool // whether the child's role survived its session
	Recording   recordingFacts
}

// runStory tells the story on out: it builds the world and the gateway
// (their files in dir, which the caller owns), runs the child to its
// end, and replays the recording. Everything it started is stopped when
// it returns, also on error and when ctx ends (Ctrl-C).
func runStory(ctx context.Context, out io.Writer, dir string) (res *storyResult, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &story{n: newNarrator(out), res: &storyResult{}}
	if s.w, err = startWorld(ctx, dir); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.w.Close()) }()
	s.describeWorld()

	s.d = newDesk(s.n)
	if s.g, err = startGateway(ctx, s.w, filesIn(dir), s.d.notify); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.g.Close()) }()
	s.describeGateway(filesIn(dir))

	parentTok, parentConn, err := s.parentChecksIn(ctx)
	if err != nil {
		return nil, err
	}
	defer parentConn.Close(context.WithoutCancel(ctx))

	child, err := s.delegateAndStart(ctx, parentTok)
	if err != nil {
		return nil, err
	}
	defer child.stop()

	childID, err := s.childAtWork(ctx, child)
	if err != nil {
		return nil, err
	}
	if err := s.revokeParent(ctx, child, childID, parentConn); err != nil {
		return nil, err
	}
	s.n.Step("The recording of the child's session (session/journal: replay, then verify)")
	if s.res.Recording, err = replayChild(ctx, s.g.journal, childID, s.n); err != nil {
		return nil, err
	}
	return s.res, s.concludeRecording()
}

// story is the parent's state while it tells the story.
type story struct {
	n   *narrator
	w   *world
	g   *gateway
	d   *desk
	res *storyResult
}

// describeWorld says what the world is made of.
func (s *story) describeWorld() {
	w := s.w
	s.n.Step("The world (throwaway; in production: your database and your identity provider)")
	s.n.Say("PostgreSQL %s on %s: database %s, tables customers and orders, template role %s", w.version, w.cluster.Addr(), database, templateRole)
	s.n.Say("identity provider (development only) at %s: person %s, approver %s, agents %s and %s", w.idp.Issuer(), person, approverName, parentAgent, childAgent)
}

// describeGateway says how the embedded gateway is built.
func (s *story) describeGateway(files gatewayFiles) {
	n, g := s.n, s.g
	n.Step("The parent agent embeds pgwarden (proxy.Proxy) on %s, TLS only", g.addr)
	n.Say("authenticator  auth.OIDC: a token from %s, audience pgwarden, as the password", g.issuer)
	n.Say("credentials    credstore.Dynamic: a role per session, member of %s, dropped when the session ends", templateRole)
	n.Say("policy         strictest of: %s (hold for group %s), %s, dangerous functions refused, reads allowed", ruleApproval, approverGroup, ruleReadOnly)
	n.Say("masks          public.customers.email → email(keep_domain)")
	n.Say("approvals      approval.Memory; the parent keeps the approval desk")
	n.Say("recording      session/journal in %s (write-ahead, MAC-chained, sealed)", files.recordings)
	n.Say("gateway log    %s", files.log)
}

// parentChecksIn is alice's delegation to the parent, and the parent's
// own session through its gateway. It also sets up the approval desk with
// the identities it decides as.
func (s *story) parentChecksIn(ctx context.Context) (session.Secret, *pgx.Conn, error) {
	n, w, g := s.n, s.w, s.g
	n.Step("alice delegates to the parent agent (RFC 8693 token exchange at the IdP)")
	tok, err := delegateToParent(ctx, w.idp)
	if err != nil {
		return tok, nil, err
	}
	id, err := g.oidc.Verify(ctx, tok)
	if err != nil {
		return tok, nil, fmt.Errorf("verifying the parent's token: %w", err)
	}
	n.Say("the parent's token: sub=%s, act={sub: %s}; the gateway reads it as %s", id.Subject, id.Presenter().Subject, arrows(chainOf(id)))
	if err := s.d.setUp(ctx, g.approvals, g.oidc, w.idp, id); err != nil {
		return tok, nil, err
	}
	conn, err := connect(ctx, connString(g, w.caFile, parentAgent), tok)
	if err != nil {
		return tok, nil, fmt.Errorf("the parent's own session: %w", err)
	}
	var role string
	if s.res.ParentChain, role, err = whoIs(ctx, conn); err != nil {
		conn.Close(ctx)
		return tok, nil, fmt.Errorf("the parent's own session: %w", err)
	}
	n.Say("the parent checks in through its gateway: pgwarden.chain = %s, session_user = %s", arrows(s.res.ParentChain), role)
	return tok, conn, nil
}

// whoIs asks the database whom a session through the gateway acts for,
// and as which role.
func whoIs(ctx context.Context, conn *pgx.Conn) (chain []string, role string, err error) {
	var setting string
	if err := conn.QueryRow(ctx, "SELECT current_setting('pgwarden.chain'), session_user").Scan(&setting, &role); err != nil {
		return nil, "", err
	}
	chain, err = parseChain(setting)
	return chain, role, err
}

// delegateAndStart exchanges the parent's token for the child's and
// starts the child with it.
func (s *story) delegateAndStart(ctx context.Context, parentTok session.Secret) (*childProcess, error) {
	n, w, g := s.n, s.w, s.g
	n.Step("The parent delegates to its child (a second token exchange) and starts it")
	tok, err := delegateToChild(ctx, w.idp, parentTok)
	if err != nil {
		return nil, err
	}
	id, err := g.oidc.Verify(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("verifying the child's token: %w", err)
	}
	if got := chainOf(id); len(got) != 3 {
		return nil, fmt.Errorf("the child's token has the chain %v", got)
	}
	n.Say("the child's token: sub=%s, act={sub: %s, act={sub: %s}}: %s, until %s",
		id.Subject, id.Chain[1].Subject, id.Chain[0].Subject, arrows(chainOf(id)), id.ExpiresAt.Format(time.TimeOnly))
	cs := connString(g, w.caFile, childAgent)
	n.Say("the child gets %s=%q", gatewayEnv, cs)
	n.Say("and its token on standard input: no password, no database role, nothing else of the parent's")
	child, err := startChild(ctx, n, cs, tok)
	if err != nil {
		return nil, err
	}
	n.Say("child started (pid %d)", child.Pid())
	return child, nil
}

// childAtWork lets the approval desk decide until the child waits for
// more work, and returns the child's session id.
func (s *story) childAtWork(ctx context.Context, child *childProcess) (string, error) {
	s.n.Step("The child at work; its writes wait at the parent's approval desk")
	deskCtx, stopDesk := context.WithCancel(ctx)
	decided := make(chan []approvalOutcome, 1)
	go func() { decided <- s.d.run(deskCtx) }()
	id, err := child.waitUntilWaiting(ctx)
	stopDesk()
	s.res.Approvals = <-decided
	return id, err
}

// revokeParent shows the gateway's sessions, revokes the parent and
// checks what that ended: the child's session (the child exits), the
// parent's own, and the child's role.
func (s *story) revokeParent(ctx context.Context, child *childProcess, childID string, parentConn *pgx.Conn) error {
	n, g, res := s.n, s.g, s.res
	n.Step("The parent revokes itself: every session of its delegation chain ends")
	st, err := waitActive(ctx, g.proxy, childID)
	if err != nil {
		return err
	}
	s.showSessions()
	n.Say("Proxy.Revoke(issuer, %q, %q)", parentAgent, revokeReason)
	if res.Revoked, err = g.proxy.Revoke(g.issuer, parentAgent, revokeReason); err != nil {
		return fmt.Errorf("revoking: %w", err)
	}
	if res.ChildExit, res.Child, err = child.wait(); err != nil {
		return err
	}
	n.Say("Proxy.Revoke ended %d sessions; the child exited with status %d", res.Revoked, res.ChildExit)
	if res.ChildExit != 0 {
		return fmt.Errorf("the child exited with status %d", res.ChildExit)
	}
	return s.checkAftermath(ctx, parentConn, st.Info.Lease)
}

// showSessions lists the gateway's live sessions, the parent's first.
func (s *story) showSessions() {
	live := s.g.proxy.Sessions()
	slices.SortFunc(live, func(a, b proxy.SessionStatus) int { return a.Info.Identity.Depth() - b.Info.Identity.Depth() })
	for _, l := range live {
		s.n.Say("live session %s: %s as %s, %s", l.Info.ID, arrows(chainOf(l.Info.Identity)), l.Info.UpstreamUser, l.State)
	}
}

// checkAftermath checks that the parent's own session ended too, and
// that the child's lease ended and its role is gone.
func (s *story) checkAftermath(ctx context.Context, parentConn *pgx.Conn, lease string) error {
	n, res := s.n, s.res
	_, err := parentConn.Exec(ctx, "SELECT 1")
	if res.ParentEnd = asPgError(err); res.ParentEnd != nil {
		n.Say("the parent's own session: %s", describe(res.ParentEnd))
	}
	if res.Lease, err = waitLeaseEnded(ctx, s.g, lease); err != nil {
		return err
	}
	if res.RoleExists, err = s.w.roleExists(ctx, res.Lease.Role); err != nil {
		return err
	}
	n.Say("the child's lease %s: ended (%s); the role exists: %v", res.Lease.Role, res.Lease.EndReason, res.RoleExists)
	return nil
}

// concludeRecording says whether the recording holds, and fails the
// story when it does not.
func (s *story) concludeRecording() error {
	n, f := s.n, s.res.Recording
	if f.VerifyErr != "" {
		n.Say("Journal.Verify: %s", f.VerifyErr)
		return fmt.Errorf("the child's recording does not verify: %s", f.VerifyErr)
	}
	n.Say("Journal.Verify: intact and sealed (%d events, each MAC-chained to the one before)", f.Events)
	n.Say("recorded sessions involving %s (session.Filter{Subject: %q}): %d", parentAgent, parentAgent, f.Involving)
	return nil
}

// connect opens a session through the gateway with token as password.
func connect(ctx context.Context, connString string, token session.Secret) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, errors.New("invalid connection string")
	}
	cfg.Password = token.Reveal()
	return pgx.ConnectConfig(ctx, cfg)
}

// waitActive waits until the gateway shows session id running a
// statement (the child's wait), and returns it.
func waitActive(ctx context.Context, p *proxy.Proxy, id string) (proxy.SessionStatus, error) {
	var last proxy.SessionStatus
	err := poll(ctx, func() bool {
		for _, s := range p.Sessions() {
			if s.Info.ID == id {
				last = s
				return s.State == "active"
			}
		}
		return false
	})
	if err != nil {
		return last, fmt.Errorf("waiting for the child's session to run its wait: %w", err)
	}
	return last, nil
}

// waitLeaseEnded waits until the lease of role has ended (the gateway
// releases it as the session ends).
func waitLeaseEnded(ctx context.Context, g *gateway, role string) (credstore.Lease, error) {
	var l credstore.Lease
	var lerr error
	err := poll(ctx, func() bool {
		l, lerr = g.lease(ctx, role)
		return lerr == nil && !l.Active()
	})
	if err != nil {
		return l, fmt.Errorf("waiting for the child's lease to end: %w", errors.Join(err, lerr))
	}
	return l, nil
}

// poll calls done every 20ms until it returns true, for at most 15s.
func poll(ctx context.Context, done func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
