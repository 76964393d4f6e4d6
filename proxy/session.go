package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/evloop"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// relayBuffer is the size of each direction's write buffer.
const relayBuffer = 16 << 10

// clientSession is an authenticated client connected to its upstream
// session. Two goroutines relay it: the frontend relay (client to server)
// runs on the connection's goroutine, the backend relay (server to client)
// on its own. They share the pipeline of requests awaiting answers.
type clientSession struct {
	p    *Proxy
	info *session.Info
	log  *slog.Logger
	lim  Limits
	rec  session.Recorder
	// recording is false when rec is session.Discard, to skip building
	// events nobody keeps.
	recording bool
	recMu     sync.Mutex // events of a session are recorded one at a time
	// appNames are the names the client gave with SET application_name
	// (see keepIdentityInAppName).
	appNames appNames

	client net.Conn
	cr     *wire.Reader
	cw     clientWriter

	up   *upstreamConn
	ur   *wire.Reader
	uw   *bufio.Writer
	key  gatewayKey
	pipe *pipeline

	// Frontend relay state.
	statements   map[string]*statement // prepared statements by name (see preparedStatement)
	query        policy.Query          // reused for every Decide call
	names        judge.Names           // SQL-level names and search path (see judge)
	stale        bool                  // a run-time statement was sent since the last verification (see barrier)
	setup        policy.Setup          // what the policy asked of the upstream session
	identity     map[string]string     // the upstream startup parameters, identity settings included (see identityParams)
	rechecks     []auth.Recheck        // the Authenticator's re-validations
	bindParams   []wire.BindParam      // reused to decode Binds
	policyParams []policy.Param        // reused to hand Bind parameters to the policy
	bindJudged   statement             // reused to judge a Bind
	seq          atomic.Int64          // statements sent so far
	lastStmt     atomic.Int64          // unix nanoseconds of the last statement

	tel sessionTelemetry // traces and metrics (see telemetry.go)

	loop       *evloop.Loop // relays the session, when not nil (see relay_loop.go)
	clientSock *evloop.Conn // the client's socket on the loop (under TLS, if any)
	upSock     *evloop.Conn // the server's socket on the loop; nil: the backend relay runs on a goroutine

	masking *sessionMasking // nil when no masking rule applies (see masking.go)
	hold    holding         // the approval the frontend relay waits for (see approval.go)
	maskTx  bool            // backend relay: the transaction read masked columns (see masking.go)

	// Backend relay state.
	cur        *op            // the front of the pipeline, once looked up
	portals    byName[portal] // open portals, as the server has them
	skipToSync bool
	txStatus   atomic.Uint32 // 'I', 'T' or 'E'

	ctx      context.Context // ends when the session ends
	cancel   context.CancelFunc
	draining atomic.Bool
	drainErr atomic.Pointer[session.Error]
	endOnce  sync.Once
	// saidTerminate: the session ends on the client's Terminate message.
	saidTerminate atomic.Bool
	reason        session.EndReason
	endFatal      *session.Error
	expiry        *time.Timer
	// credentialExpired: the expiry timer is the credential's, not the
	// identity's.
	credentialExpired bool

	cred    credstore.Credential
	release func(session.EndReason)
	backend chan struct{} // closed when the backend relay returned
}

// clientWriter is the buffered writer to the client. The backend relay
// writes to it; end writes the final FATAL from whichever goroutine ends the
// session. Writes are whole messages under the lock, so they never
// interleave.
type clientWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error // sticky: the first write error, or net.ErrClosed once ended
}

func (cw *clientWriter) write(b []byte) error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.err != nil {
		return cw.err
	}
	_, cw.err = cw.w.Write(b)
	return cw.err
}

func (cw *clientWriter) flush() error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.err != nil {
		return cw.err
	}
	cw.err = cw.w.Flush()
	return cw.err
}

func newClientSession(cc *clientConn, info *session.Info, up *upstreamConn, cred credstore.Credential, release func(session.EndReason), lim Limits) *clientSession {
	rec := cc.p.recorder()
	s := &clientSession{
		p: cc.p, info: info, log: cc.log, lim: lim, rec: rec, recording: rec != session.Discard,
		client: cc.conn, cr: cc.rd,
		up: up, ur: wire.NewReader(up.conn, lim.MaxUpstreamMessageSize), uw: bufio.NewWriterSize(up.conn, relayBuffer),
		pipe:       newPipeline(lim.MaxPipeline),
		statements: map[string]*statement{},
		cred:       cred, release: release,
		backend: make(chan struct{}),
	}
	s.cw.w = bufio.NewWriterSize(cc.conn, relayBuffer)
	s.cr.SetMaxBody(lim.MaxMessageSize)
	s.txStatus.Store(uint32(up.tx))
	s.names.SearchPath = up.searchPath
	s.names.Protocol = s.protocolStatement
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.telInit() // telemetry
	return s
}

// start records the session's start, registers it and tells the client it
// is in: AuthenticationOk, the server's parameters, the gateway's
// BackendKeyData and ReadyForQuery. From then on the session registry, not
// the list of connections in their startup, tracks raw.
func (s *clientSession) start(ctx context.Context, raw net.Conn) *session.Error {
	if s.recording {
		ev := session.Event{Kind: session.KindSessionStart, SessionID: s.info.ID, Time: s.info.StartedAt,
			Start: &session.StartEvent{Info: *s.info.Clone()}}
		if err := s.rec.Record(ctx, ev); err != nil {
			s.log.Error("pgwarden: recording the session start failed; session refused", "err", err)
			s.reason = session.EndRecorderFailed
			return pgError(session.CodeSystemError, "the gateway could not record the session")
		}
	}
	s.p.mu.Lock()
	if s.p.closing.Load() {
		s.p.mu.Unlock()
		return s.refusedAfterStart(session.EndShutdown, pgError(session.CodeAdminShutdown, "terminating connection because the gateway is shutting down"))
	}
	if sus, ok := s.p.suspendedLocked(s.info.Identity); ok {
		// Suspended or revoked while this session logged in.
		s.p.mu.Unlock()
		reason := session.EndTerminated
		if sus.revoked {
			reason = session.EndRevoked
		}
		return s.refusedAfterStart(reason, suspendedError(sus))
	}
	s.p.registerLocked(s)
	delete(s.p.conns, raw)
	s.p.mu.Unlock()
	s.telStart() // telemetry: the session's span and pgwarden.sessions.active
	if s.cred.Lease != "" {
		s.recordCredential(session.CredentialIssued)
	} else {
		s.recordCredential(session.CredentialUsed)
	}

	buf, _ := (&pgproto3.AuthenticationOk{}).Encode(nil)
	for name, value := range s.up.params {
		if name == settingAppName {
			buf = append(buf, clientAppNameStatus(s.info.ApplicationName)...)
			continue
		}
		buf, _ = (&pgproto3.ParameterStatus{Name: name, Value: value}).Encode(buf)
	}
	buf, _ = (&pgproto3.BackendKeyData{ProcessID: s.key.pid, SecretKey: s.key.secret[:]}).Encode(buf)
	buf, _ = (&pgproto3.ReadyForQuery{TxStatus: s.up.tx}).Encode(buf)
	if err := s.cw.write(buf); err != nil || s.cw.flush() != nil {
		s.end(session.EndClientExit, nil)
	}
	s.log.Info("pgwarden: session started", "upstream_user", s.info.UpstreamUser)
	return nil
}

// refusedAfterStart closes the record of a session refused after its start
// was recorded, and returns fatal.
func (s *clientSession) refusedAfterStart(reason session.EndReason, fatal *session.Error) *session.Error {
	s.reason = reason
	if s.recording {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ev := session.Event{Kind: session.KindSessionEnd, SessionID: s.info.ID, Time: time.Now(),
			End: &session.EndEvent{Reason: reason, ErrorCode: fatal.Code, Message: fatal.Message}}
		if err := s.rec.Record(ctx, ev); err != nil {
			s.log.Error("pgwarden: recording the session end failed", "err", err)
		}
	}
	return fatal
}

// run relays the session until it ends, then cleans up. It runs on the
// connection's goroutine.
func (s *clientSession) run() {
	if at := s.expiresAt(); !at.IsZero() {
		msg := "terminating connection because its database credential expired"
		s.credentialExpired = true
		if at.Equal(s.info.Identity.ExpiresAt) {
			msg = fmt.Sprintf("terminating connection because its identity's %s expired", proofName(s.info.Identity.Method))
			s.credentialExpired = false
		}
		s.expiry = time.AfterFunc(time.Until(at), func() {
			s.end(session.EndExpired, pgError(session.CodeInvalidAuthorization, msg))
		})
	}
	for _, rc := range s.rechecks {
		go s.recheck(rc)
	}
	if s.relayOnLoop() {
		s.finish()
		return
	}
	go func() {
		defer close(s.backend)
		s.relayBackend()
	}()
	s.relayFrontend()
	<-s.backend
	s.finish()
}

// expiresAt is when the identity's proof or the database credential expire,
// whichever is first (zero: never).
func (s *clientSession) expiresAt() time.Time {
	a, b := s.info.Identity.ExpiresAt, s.cred.ExpiresAt
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// end ends the session once: it sends the client fatal (when not nil) after
// whatever the backend relay had buffered, shuts down the sending side of
// the client connection, and wakes both relays so that they return. The
// frontend relay then says goodbye to the server, and finish closes the
// client connection. Safe from any goroutine.
func (s *clientSession) end(reason session.EndReason, fatal *session.Error) {
	s.endOnce.Do(func() {
		s.reason, s.endFatal = reason, fatal
		// Unblock a backend relay stuck writing to a client that does not
		// read, and a frontend relay stuck writing to the server.
		s.client.SetWriteDeadline(time.Now().Add(time.Second))
		s.up.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		s.cw.mu.Lock()
		if s.cw.err == nil {
			if fatal != nil {
				s.cw.w.Write(appendError(nil, severityFatal, fatal))
			}
			s.cw.w.Flush()
		}
		s.cw.err = net.ErrClosed
		s.cw.mu.Unlock()
		// Half-close rather than close: closing with unread client bytes
		// would reset the connection and could destroy the FATAL before
		// the client read it. finish drains and closes.
		if cw, ok := s.client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		s.cancel() // before the deadline below: see armReadDeadline
		s.client.SetReadDeadline(time.Now())
		s.cancelRunning()
		s.pipe.close()
		// The backend relay may be blocked reading a server that is
		// busy; the frontend relay closes the upstream when it returns,
		// this deadline is the backstop.
		s.up.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	})
}

// cancelRunning asks the server to cancel what the session still has in
// flight, when it ends with a statement sent and not answered. PostgreSQL
// notices a closed connection only when it next writes to it: without the
// cancel, the last statement of a terminated, revoked, expired or vanished
// session (a pg_sleep, a long UPDATE) would run on to its end. A client's
// own Terminate message is the exception: PostgreSQL runs what came before
// it, and so does the gateway. The cancel is sent in the background,
// bounded by cancelTimeout; Close and Shutdown wait for it. A cancel that
// arrives after the statement ended finds the connection idle or gone, and
// does nothing.
func (s *clientSession) cancelRunning() {
	if s.pipe.pending() == 0 || s.up.pid == 0 || s.saidTerminate.Load() {
		return
	}
	s.p.wg.Add(1)
	go func() {
		defer s.p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		defer cancel()
		if err := s.p.Upstream.cancel(ctx, s.up.pid, s.up.secret); err != nil {
			s.log.Warn("pgwarden: cancelling the statement of an ended session failed", "err", err)
			return
		}
		s.log.Info("pgwarden: the statement of an ended session was cancelled")
	}()
}

// armReadDeadline sets the client read deadline (the idle timeout), unless
// the session has ended: end cancels the context before it sets a deadline
// in the past, so a deadline set here after that is put back.
func (s *clientSession) armReadDeadline(t time.Time) {
	s.client.SetReadDeadline(t)
	if s.ctx.Err() != nil {
		s.client.SetReadDeadline(time.Now())
	}
}

// drainAndClose closes the client connection after reading (and dropping)
// what the client still sends, for a bounded time, so that the close does
// not reset the connection before the client read the last error.
func (s *clientSession) drainAndClose() {
	s.client.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(s.client, 4<<20))
	s.client.Close()
}

// finish runs after both relays returned.
func (s *clientSession) finish() {
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.up.conn.Close()
	s.drainAndClose()
	s.p.unregister(s)
	s.release(s.reason)
	switch {
	case s.reason == session.EndRevoked:
		s.recordCredential(session.CredentialRevoked)
	case s.reason == session.EndExpired && s.credentialExpired:
		s.recordCredential(session.CredentialExpired)
	default:
		s.recordCredential(session.CredentialReleased)
	}
	ev := session.EndEvent{Reason: s.reason, Statements: s.seq.Load()}
	if s.endFatal != nil {
		ev.ErrorCode, ev.Message = s.endFatal.Code, s.endFatal.Message
	}
	s.telFinish() // telemetry: ends the session's span and the spans left open
	if s.recording {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.rec.Record(ctx, session.Event{Kind: session.KindSessionEnd, SessionID: s.info.ID,
			Time: time.Now(), End: &ev}); err != nil {
			s.log.Error("pgwarden: recording the session end failed", "err", err)
		}
		cancel()
	}
	s.log.Info("pgwarden: session ended", "reason", s.reason, "statements", ev.Statements,
		"duration", time.Since(s.info.StartedAt).Round(time.Millisecond))
}

// drain asks the session to end with fatal as soon as it is idle (no
// request pending, no transaction open), now if it already is.
func (s *clientSession) drain(fatal *session.Error) {
	s.drainErr.Store(fatal)
	s.draining.Store(true)
	if s.idle() {
		s.end(session.EndShutdown, fatal)
	}
}

// idle reports whether no request is pending and no transaction is open.
func (s *clientSession) idle() bool {
	return s.pipe.pending() == 0 && s.txStatus.Load() == 'I'
}

func (s *clientSession) status() SessionStatus {
	st := SessionStatus{Info: *s.info.Clone(), Statements: s.seq.Load()}
	if t := s.lastStmt.Load(); t != 0 {
		st.LastStatement = time.Unix(0, t)
	}
	switch {
	case s.pipe.pending() > 0:
		st.State = "active"
	case s.txStatus.Load() == 'T':
		st.State = "idle in transaction"
	case s.txStatus.Load() == 'E':
		st.State = "idle in failed transaction"
	default:
		st.State = "idle"
	}
	return st
}

// record sends an event to the recorder. A failure ends the session (fail
// closed) and is reported as false.
func (s *clientSession) record(ev session.Event) bool {
	if !s.recording {
		return true
	}
	// Hand the loop over before waiting: for the recorder (the disk), or
	// for the other relay's Record, which may be waiting for it.
	if !session.IsQuick(s.rec, ev.Kind) || !s.recMu.TryLock() {
		s.blocking()
		s.recMu.Lock()
	}
	err := s.rec.Record(s.ctx, ev)
	s.recMu.Unlock()
	if err != nil {
		s.log.Error("pgwarden: recording failed; ending the session", "err", err)
		s.end(session.EndRecorderFailed, pgError(session.CodeSystemError,
			"terminating connection because the gateway could not record it"))
		return false
	}
	return true
}

// proofName names what proves an identity authenticated by method, for
// messages.
func proofName(method string) string {
	switch method {
	case "oidc", "oauthbearer":
		return "token"
	case "saml":
		return "SAML assertion"
	case "client-cert":
		return "client certificate"
	}
	return "credential"
}

// recheck runs an Authenticator's re-validation every rc.Interval until
// the session ends; a failure ends the session (fail closed).
func (s *clientSession) recheck(rc auth.Recheck) {
	t := time.NewTicker(rc.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, min(rc.Interval, 30*time.Second))
		err := rc.Check(ctx)
		cancel()
		switch {
		case err == nil:
			continue
		case s.ctx.Err() != nil:
			return
		case errors.Is(err, auth.ErrInvalidCredentials):
			s.log.Info("pgwarden: identity no longer valid; session ended", "err", err)
			s.end(session.EndRevoked, pgError(session.CodeInvalidAuthorization,
				fmt.Sprintf("terminating connection because the identity provider no longer accepts its %s", proofName(s.info.Identity.Method))))
		default:
			s.log.Warn("pgwarden: identity could not be re-validated; session ended", "err", err)
			s.end(session.EndRevoked, pgError(session.CodeInvalidAuthorization,
				fmt.Sprintf("terminating connection because the gateway could not re-validate its %s with the identity provider", proofName(s.info.Identity.Method))))
		}
		return
	}
}

// recordCredential records a credential lifecycle event (best effort at
// the end: the session is over either way).
func (s *clientSession) recordCredential(action session.CredentialAction) {
	if !s.recording {
		return
	}
	ev := session.Event{Kind: session.KindCredential, SessionID: s.info.ID, Time: time.Now(),
		Credential: &session.CredentialEvent{Action: action, User: s.cred.User, Lease: s.cred.Lease, ExpiresAt: s.cred.ExpiresAt}}
	if action == session.CredentialIssued || action == session.CredentialUsed {
		s.record(ev)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.rec.Record(ctx, ev); err != nil {
		s.log.Error("pgwarden: recording the credential's end failed", "err", err)
	}
}
