package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/evloop"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// authMessageLimit bounds a client message during authentication (password,
// token, SASL data).
const authMessageLimit = 64 << 10

// clientConn is a client connection in its startup phase: TLS negotiation,
// the startup packet, authentication, and the upstream login.
type clientConn struct {
	p        *Proxy
	raw      net.Conn
	conn     net.Conn // raw, or the TLS connection over it
	rd       *wire.Reader
	tls      *tls.ConnectionState
	endpoint []byte // tls-server-end-point channel binding data
	log      *slog.Logger
	// tlsSock is the socket under the TLS connection, which the event loop
	// can take over (see takeOver); nil without TLS.
	tlsSock *handoverConn
	// loopSock is the client socket once on the event loop.
	loopSock *evloop.Conn
}

// send writes encoded messages to the client, unbuffered (the startup
// phase sends few, and each must arrive before the client answers).
func (cc *clientConn) send(b []byte) error {
	_, err := cc.conn.Write(b)
	return err
}

// fatal sends a FATAL error to the client, best effort.
func (cc *clientConn) fatal(e *session.Error) {
	cc.conn.SetWriteDeadline(time.Now().Add(time.Second))
	cc.send(appendError(nil, severityFatal, e))
}

// serveConn runs a client connection from accept to close.
func (p *Proxy) serveConn(raw net.Conn) {
	lim := p.Limits.effective()
	cc := &clientConn{p: p, raw: raw, conn: raw, rd: wire.NewReader(raw, authMessageLimit),
		log: p.logger().With("client", raw.RemoteAddr().String())}
	handedOver := false
	defer func() {
		p.trackConn(raw, false)
		if !handedOver {
			cc.conn.Close()
		}
	}()

	if lim.StartupTimeout > 0 {
		raw.SetDeadline(time.Now().Add(lim.StartupTimeout))
	}
	st, cancelKey, ok := cc.readStartup()
	if !ok {
		return
	}
	if cancelKey != nil {
		p.forwardCancel(*cancelKey)
		return
	}
	req, perr := checkStartup(st, p.StartupParameters)
	if perr != nil {
		cc.log.Info("pgwarden: startup refused", "code", perr.Code, "reason", perr.Message)
		cc.fatal(perr)
		return
	}
	cc.log = cc.log.With("user", req.user, "database", req.database)
	if p.TLS != nil && cc.tls == nil && !p.AllowPlaintext {
		cc.log.Info("pgwarden: plaintext connection refused")
		cc.fatal(&session.Error{Code: session.CodeInvalidAuthorization,
			Message: "the gateway requires TLS", Hint: "Connect with sslmode=require or stronger."})
		return
	}
	if p.closing.Load() {
		cc.fatal(pgError(session.CodeCannotConnectNow, "the gateway is shutting down"))
		return
	}
	if !p.admit(lim.MaxSessions) {
		cc.log.Warn("pgwarden: too many sessions", "max", lim.MaxSessions)
		cc.fatal(pgError(session.CodeTooManyConnections, "sorry, too many clients already"))
		return
	}
	admitted := true
	defer func() {
		if admitted {
			p.unadmit()
		}
	}()
	if req.newerMinor || len(req.unsupportedOptions) > 0 {
		msg := pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: req.unsupportedOptions}
		b, _ := msg.Encode(nil)
		if cc.send(b) != nil {
			return
		}
	}

	ctx := p.loginContext()
	if lim.AuthTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.AuthTimeout)
		defer cancel()
		raw.SetDeadline(time.Now().Add(lim.AuthTimeout))
	} else {
		raw.SetDeadline(time.Time{})
	}
	s, ferr := cc.login(ctx, req, lim)
	if ferr != nil {
		if !errors.Is(ferr, errClientGone) {
			cc.fatal(ferr)
		}
		return
	}
	raw.SetDeadline(time.Time{})
	handedOver, admitted = true, false
	s.run()
}

// errClientGone marks a failure where the client went away: nothing is sent.
var errClientGone = &session.Error{Code: session.CodeConnectionFailure, Message: "client closed the connection"}

// readStartup reads startup packets until the startup message or a cancel
// request, negotiating TLS on the way. It reports failures to the client.
func (cc *clientConn) readStartup() (*wire.Startup, *wire.CancelKey, bool) {
	sslTried, gssTried := false, false
	for {
		pkt, err := cc.rd.ReadStartup()
		if err != nil {
			if !errors.Is(err, io.EOF) && !isTimeoutOrClosed(err) {
				cc.log.Info("pgwarden: invalid startup packet", "err", err)
				cc.fatal(pgError(session.CodeProtocolViolation, "invalid startup packet"))
			}
			return nil, nil, false
		}
		switch code := wire.RequestCode(pkt); code {
		case wire.CodeSSLRequest:
			if len(pkt) != 4 || sslTried || cc.tls != nil {
				cc.fatal(pgError(session.CodeProtocolViolation, "unexpected or malformed SSLRequest"))
				return nil, nil, false
			}
			sslTried = true
			if cc.p.TLS == nil {
				if cc.send([]byte{'N'}) != nil {
					return nil, nil, false
				}
				continue
			}
			// Bytes after an SSLRequest and before the handshake would be
			// taken as if they had come over TLS (CVE-2021-23214).
			if cc.rd.Buffered() != 0 {
				cc.log.Warn("pgwarden: unencrypted data after SSLRequest; refused")
				cc.fatal(pgError(session.CodeProtocolViolation, "received unencrypted data after SSL request"))
				return nil, nil, false
			}
			if cc.send([]byte{'S'}) != nil {
				return nil, nil, false
			}
			var endpoint []byte
			cc.tlsSock = &handoverConn{Conn: cc.raw}
			tc := tls.Server(cc.tlsSock, cc.p.serverTLS(&endpoint))
			if err := tc.Handshake(); err != nil {
				cc.log.Info("pgwarden: TLS handshake failed", "err", err)
				return nil, nil, false
			}
			if err := cc.rd.Reset(tc); err != nil {
				return nil, nil, false
			}
			state := tc.ConnectionState()
			cc.conn, cc.tls, cc.endpoint = tc, &state, endpoint
		case wire.CodeGSSENCRequest:
			if len(pkt) != 4 || gssTried || cc.tls != nil {
				cc.fatal(pgError(session.CodeProtocolViolation, "unexpected or malformed GSSENCRequest"))
				return nil, nil, false
			}
			gssTried = true
			if cc.send([]byte{'N'}) != nil {
				return nil, nil, false
			}
		case wire.CodeCancelRequest:
			key, err := wire.ParseCancelRequest(pkt)
			if err != nil {
				return nil, nil, false
			}
			return nil, &key, true
		default:
			st, err := wire.ParseStartup(pkt)
			if err != nil {
				cc.log.Info("pgwarden: invalid startup packet", "err", err)
				cc.fatal(pgError(session.CodeProtocolViolation, "invalid startup packet layout"))
				return nil, nil, false
			}
			return st, nil, true
		}
	}
}

// login authenticates the client, gets its credential and logs in upstream.
// On success the client has been sent AuthenticationOk and everything up to
// its first ReadyForQuery, and the session is registered.
func (cc *clientConn) login(ctx context.Context, req *startupRequest, lim Limits) (*clientSession, *session.Error) {
	p := cc.p
	if p.Authenticator == nil {
		cc.log.Warn("pgwarden: no authenticator configured; client refused")
		return nil, pgError(session.CodeInvalidAuthorization, "the gateway has no authenticator configured; nobody can connect")
	}
	conv := &conversation{cc: cc}
	areq := &auth.Request{User: req.user, Database: req.database, Params: req.params,
		ClientAddr: cc.raw.RemoteAddr().String(), TLS: cc.tls, Method: req.authMethod, Client: conv}
	id, err := authenticate(ctx, p.Authenticator, areq)
	if err != nil {
		return nil, cc.authFailure(req, err)
	}
	if id.Subject == "" {
		cc.log.Error("pgwarden: authenticator returned an identity without a subject; refused")
		return nil, pgError(session.CodeInvalidAuthorization, "authentication failed")
	}
	if !id.ExpiresAt.IsZero() && !time.Now().Before(id.ExpiresAt) {
		return nil, pgError(session.CodeInvalidAuthorization, "the presented credential has expired")
	}
	if sus, ok := p.suspendedFor(id); ok {
		cc.log.Info("pgwarden: suspended identity refused", "subject", id.Subject, "rule", sus.rule)
		return nil, suspendedError(sus)
	}
	info := &session.Info{
		ID:              newSessionID(),
		Identity:        id,
		ClientAddr:      areq.ClientAddr,
		TLS:             tlsInfo(cc.tls),
		User:            req.user,
		Database:        req.database,
		ApplicationName: req.params["application_name"],
		Params:          req.params,
		StartedAt:       time.Now(),
	}
	cc.log = cc.log.With("session", info.ID, "subject", id.Subject)

	if p.Credentials == nil {
		cc.log.Warn("pgwarden: no credential store configured; client refused")
		return nil, pgError(session.CodeInvalidAuthorization, "the gateway has no credential store configured")
	}
	cred, err := credential(ctx, p.Credentials, info)
	if err != nil {
		if errors.Is(err, credstore.ErrNoCredential) {
			cc.log.Info("pgwarden: no credential for identity")
			return nil, pgError(session.CodeInvalidAuthorization,
				fmt.Sprintf("no database credential for user %q", req.user))
		}
		cc.log.Error("pgwarden: credential store failed", "err", err)
		return nil, clientError(err, session.CodeInvalidAuthorization, "could not obtain a database credential")
	}
	release := func(reason session.EndReason) {
		if cred.Release != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cred.Release(rctx, reason); err != nil {
				cc.log.Error("pgwarden: releasing the credential failed", "err", err)
			}
		}
	}
	info.UpstreamUser, info.Lease = cred.User, cred.Lease

	var setup policy.Setup
	if p.Policy != nil {
		setup = policy.SetupFor(p.Policy, &policy.Query{Session: info, Time: time.Now()})
	}
	upParams := identityParams(info, req.params)
	var masking *sessionMasking
	var prepare func(context.Context, *pgconn.PgConn) error
	if active, anyActive := activeRules(p.Masks, info.Identity.Groups); anyActive {
		prepare = func(ctx context.Context, pc *pgconn.PgConn) error {
			cat, err := loadMaskCatalog(ctx, pc, p.Masks, active)
			if err != nil {
				return err
			}
			masking = newSessionMasking(cat, p.Masks, active)
			return nil
		}
	}
	up, err := p.Upstream.connect(ctx, cred, req.database, upParams, setup, lim.MaxUpstreamMessageSize, prepare)
	if err != nil {
		release(session.EndUpstreamClosed)
		cc.log.Error("pgwarden: upstream login failed", "err", err)
		return nil, upstreamError(err)
	}
	loop := cc.takeOver(up)
	s := newClientSession(cc, info, up, cred, release, lim)
	s.loop, s.clientSock, s.upSock = loop, cc.loopSock, up.loopSock
	s.setup = setup
	s.masking = masking
	s.identity = upParams
	s.rechecks = areq.Rechecks()
	if ferr := s.start(ctx, cc.raw); ferr != nil {
		up.conn.Close()
		release(s.reason)
		if loop != nil {
			p.releaseLoop()
		}
		return nil, ferr
	}
	return s, nil
}

// authFailure maps an authentication error to what the client sees, and
// logs it (authenticators never put secrets in errors).
func (cc *clientConn) authFailure(req *startupRequest, err error) *session.Error {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrNotApplicable):
		cc.log.Info("pgwarden: authentication failed", "err", err)
		return pgError(session.CodeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", req.user))
	case errors.Is(err, auth.ErrCleartextRefused):
		cc.log.Info("pgwarden: cleartext password refused without TLS")
		return &session.Error{Code: session.CodeInvalidAuthorization,
			Message: "this authentication method requires TLS", Hint: "Connect with sslmode=require or stronger."}
	case errors.Is(err, auth.ErrExchange):
		cc.log.Info("pgwarden: malformed authentication exchange", "err", err)
		return pgError(session.CodeProtocolViolation, "invalid authentication exchange")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// Clients such as psql hang up when asked for a password they do
		// not have yet, and come back with it.
		cc.log.Debug("pgwarden: client left during authentication")
		return errClientGone
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		cc.log.Info("pgwarden: authentication timed out")
		return pgError(session.CodeQueryCanceled, "canceling authentication due to timeout")
	}
	cc.log.Warn("pgwarden: authentication error", "err", err)
	return clientError(err, session.CodeInvalidAuthorization, "authentication failed")
}

func isTimeoutOrClosed(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// newSessionID returns 16 random bytes in hex.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func tlsInfo(cs *tls.ConnectionState) *session.TLSInfo {
	if cs == nil {
		return nil
	}
	ti := &session.TLSInfo{Version: tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite), ServerName: cs.ServerName}
	if len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
		ti.PeerSubject = cs.PeerCertificates[0].Subject.String()
	}
	return ti
}

// admit counts a connection against MaxSessions (0: no limit).
func (p *Proxy) admit(max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if max > 0 && p.active >= max {
		return false
	}
	p.active++
	return true
}

func (p *Proxy) unadmit() {
	p.mu.Lock()
	p.active--
	p.mu.Unlock()
}
