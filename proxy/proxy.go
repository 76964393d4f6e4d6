package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/internal/evloop"
	"github.com/pgwarden/pgwarden/internal/sockio"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// DefaultAddr is where ListenAndServe listens when Addr is empty: loopback
// only.
const DefaultAddr = "127.0.0.1:6432"

// Proxy is a PostgreSQL gateway. Configure it by setting its exported fields
// before the first call to Serve or ListenAndServe, and do not change them
// afterwards. The zero value is safe and useless: with no Authenticator
// nobody gets in, with no Credentials nobody reaches the server, with no
// Policy every statement is refused.
type Proxy struct {
	// Addr is the TCP address ListenAndServe listens on; empty means
	// DefaultAddr.
	Addr string

	// Authenticator decides who a client is. nil refuses every client
	// (FATAL 28000).
	Authenticator auth.Authenticator
	// Credentials gives the database credential for an identity. nil
	// refuses every client (FATAL 28000).
	Credentials credstore.Store
	// Policy decides about every statement. nil refuses every statement
	// (ERROR 42501, rule "no-policy").
	Policy policy.Policy
	// Recorder receives every session's events. nil is session.Discard.
	Recorder session.Recorder
	// Approver decides about the statements the Policy sends for a
	// person's approval (verdict Approve; see package policy): held on the
	// live session, or deferred. nil refuses them.
	Approver policy.Approver
	// Masks are the masking rules: the values of the columns they name
	// never reach a client they apply to unmasked, through any query (see
	// Masking in the package documentation); a statement the gateway
	// cannot mask soundly is refused. Empty masks nothing. Serve refuses
	// to start with invalid rules.
	Masks mask.Rules

	// Upstream is the PostgreSQL server.
	Upstream Upstream

	// TLS, when not nil, is offered to clients (the answer to SSLRequest is
	// 'S'); when nil, clients are told 'N' and use plaintext.
	TLS *tls.Config
	// AllowPlaintext lets clients connect without TLS even when TLS is set.
	// By default a client that does not use TLS is refused when TLS is
	// available.
	AllowPlaintext bool
	// AllowCleartextPasswordWithoutTLS lets an Authenticator ask for a
	// cleartext secret (a password or token) over a connection without TLS.
	// Only for loopback development.
	AllowCleartextPasswordWithoutTLS bool
	// StartupParameters are allowed in the client's startup packet in
	// addition to DefaultStartupParameters, and forwarded to the server
	// (for example "search_path" or "options"). Names are case-insensitive.
	StartupParameters []string

	// Limits bound what clients can make the gateway do.
	Limits Limits

	// Logger receives operational logs (never secrets). nil means
	// slog.Default().
	Logger *slog.Logger

	// TracerProvider makes the spans of sessions and statements (see
	// Telemetry in the package documentation). nil means
	// otel.GetTracerProvider(), which makes no spans unless the program
	// installed a provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the gateway's metrics (see Telemetry in the
	// package documentation). nil means otel.GetMeterProvider(), which
	// records nothing unless the program installed a provider.
	MeterProvider metric.MeterProvider

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[net.Conn]struct{} // accepted, not yet sessions
	// logins is the parent of the contexts that logins in progress give
	// the Authenticator and the credential Store; endAll cancels it.
	logins     context.Context
	stopLogins context.CancelFunc
	sessions   map[string]*clientSession
	byKey      map[uint32]*clientSession
	active     int // connections counted against MaxSessions
	closing    atomic.Bool
	wg         sync.WaitGroup // connection goroutines
	tlsOnce    sync.Once
	tlsLeaf    []byte // tls-server-end-point data when the certificate is fixed

	analyzerOnce sync.Once
	analysis     *analysis.Analyzer
	suspended    map[suspensionKey]suspension // delegation chains kept out (see suspend)

	// telemetryOnce makes tel, the tracer and instruments (see telemetry).
	telemetryOnce sync.Once
	tel           *telemetry

	// loop relays the sessions whose sockets it can take over (see
	// relayOnLoop); loopUsers counts them.
	loop      *evloop.Loop
	loopUsers int
	// goroutineRelay keeps every session on the goroutine relays (tests).
	goroutineRelay bool
}

func (p *Proxy) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Proxy) recorder() session.Recorder {
	if p.Recorder != nil && p.Recorder != session.Discard {
		return guardedRecorder{p.Recorder}
	}
	return session.Discard
}

// ListenAndServe listens on p.Addr (DefaultAddr when empty) and serves. It
// always returns a non-nil error; after Shutdown or Close, ErrProxyClosed.
func (p *Proxy) ListenAndServe() error {
	if p.closing.Load() {
		return ErrProxyClosed
	}
	addr := p.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return p.Serve(ln)
}

// Serve accepts client connections on ln and serves each in its own
// goroutine. It closes ln when it returns, which is always with a non-nil
// error; after Shutdown or Close, ErrProxyClosed. Serve may be called with
// several listeners at once.
func (p *Proxy) Serve(ln net.Listener) error {
	if err := p.Masks.Validate(); err != nil {
		ln.Close()
		return fmt.Errorf("proxy: %w", err)
	}
	if !p.trackListener(&ln, true) {
		ln.Close()
		return ErrProxyClosed
	}
	defer p.trackListener(&ln, false)
	defer ln.Close()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.closing.Load() {
				return ErrProxyClosed
			}
			if isTemporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.logger().Warn("pgwarden: accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c = sockio.Wrap(c)
		if !p.trackConn(c, true) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serveConn(c)
		}()
	}
}

// isTemporaryAccept reports whether a later Accept may succeed: the process
// ran out of file descriptors, or a connection was aborted before it was
// accepted.
func isTemporaryAccept(err error) bool {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED)
}

func (p *Proxy) trackListener(ln *net.Listener, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closing.Load() {
			return false
		}
		if p.listeners == nil {
			p.listeners = map[*net.Listener]struct{}{}
		}
		p.listeners[ln] = struct{}{}
	} else {
		delete(p.listeners, ln)
	}
	return true
}

func (p *Proxy) trackConn(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closing.Load() {
			return false
		}
		if p.conns == nil {
			p.conns = map[net.Conn]struct{}{}
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

// closeListeners stops accepting; it is the first step of Shutdown and Close.
func (p *Proxy) closeListeners() {
	p.closing.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for ln := range p.listeners {
		(*ln).Close()
	}
}

// Shutdown stops the proxy gracefully: it stops accepting connections,
// lets every session finish what it is doing (its running statement and its
// open transaction), and ends each session with FATAL 57P01 as soon as it is
// idle. When ctx ends first, the sessions still running are ended the same
// way at once (their running statements cancelled on the server), and
// Shutdown returns ctx's error once they are gone.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.closeListeners()
	shutdownErr := &session.Error{Code: session.CodeAdminShutdown,
		Message: "terminating connection because the gateway is shutting down"}
	for _, s := range p.liveSessions() {
		s.drain(shutdownErr)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.idle() {
			p.wg.Wait()
			return nil
		}
		select {
		case <-ctx.Done():
			p.endAll(session.EndShutdown, shutdownErr)
			p.wg.Wait()
			return ctx.Err()
		case <-tick.C:
			// Connections still in their startup are refused when they
			// finish it; sessions that became idle end themselves.
			for _, s := range p.liveSessions() {
				s.drain(shutdownErr)
			}
		}
	}
}

// Close stops the proxy at once: it stops accepting, ends every session with
// FATAL 57P01 and closes connections still in their startup, and returns once
// every connection is closed.
func (p *Proxy) Close() error {
	p.closeListeners()
	p.endAll(session.EndShutdown, &session.Error{Code: session.CodeAdminShutdown,
		Message: "terminating connection because the gateway is shutting down"})
	p.wg.Wait()
	return nil
}

func (p *Proxy) endAll(reason session.EndReason, fatal *session.Error) {
	p.mu.Lock()
	for c := range p.conns {
		c.SetDeadline(time.Now())
	}
	p.loginContextLocked()
	p.stopLogins()
	p.mu.Unlock()
	for _, s := range p.liveSessions() {
		s.end(reason, fatal)
	}
}

// loginContext is the parent of a login's context: canceled when the
// proxy ends every connection (Close, or Shutdown out of time), so that an
// Authenticator or Store waiting on it gives up at once.
func (p *Proxy) loginContext() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loginContextLocked()
}

func (p *Proxy) loginContextLocked() context.Context {
	if p.logins == nil {
		p.logins, p.stopLogins = context.WithCancel(context.Background())
	}
	return p.logins
}

func (p *Proxy) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) == 0 && len(p.sessions) == 0
}

// liveSessions returns the registered sessions that have not ended (an
// ended session stays registered while it closes its connections).
func (p *Proxy) liveSessions() []*clientSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*clientSession, 0, len(p.sessions))
	for _, s := range p.sessions {
		if s.ctx.Err() == nil {
			out = append(out, s)
		}
	}
	return out
}

// SessionStatus describes a live session.
type SessionStatus struct {
	// Info is a copy of the session's description.
	Info session.Info
	// State is "idle", "active" (statements are running),
	// "idle in transaction" or "idle in failed transaction".
	State string
	// Statements is how many statements the client sent so far.
	Statements int64
	// LastStatement is when the client last sent a statement (zero: none).
	LastStatement time.Time
}

// Sessions returns the live sessions, in no particular order.
func (p *Proxy) Sessions() []SessionStatus {
	live := p.liveSessions()
	out := make([]SessionStatus, 0, len(live))
	for _, s := range live {
		out = append(out, s.status())
	}
	return out
}

// Terminate ends the session with the given id: the client gets FATAL 57P01
// with message (a default when empty), the statement it is running is
// cancelled on the server, the upstream session is closed, and its
// credential released. It returns ErrSessionNotFound when no live
// session has that id.
func (p *Proxy) Terminate(id, message string) error {
	p.mu.Lock()
	s := p.sessions[id]
	p.mu.Unlock()
	if s == nil || s.ctx.Err() != nil {
		// Unknown, or ended and closing its connections (Sessions no
		// longer lists it either).
		return ErrSessionNotFound
	}
	if message == "" {
		message = "terminating connection due to administrator command"
	}
	s.end(session.EndTerminated, pgError(session.CodeAdminShutdown, message))
	return nil
}
