package proxy

import "time"

// Limits bounds what one client can make the gateway do. The zero value of
// each field means its default; a negative value turns that limit off.
type Limits struct {
	// MaxSessions is the number of client sessions served at once (counted
	// from the startup packet). Past it a client gets FATAL 53300.
	// Default 1000.
	MaxSessions int
	// MaxMessageSize is the largest message a client may send, in bytes
	// (body length). A longer one ends the session with FATAL 54000 before
	// anything is allocated for it. Default 64 MiB.
	MaxMessageSize int
	// MaxUpstreamMessageSize is the largest message accepted from the
	// server. Default 1 GiB, PostgreSQL's own limit.
	MaxUpstreamMessageSize int
	// StartupTimeout bounds the time from accepting a connection to a
	// complete startup packet (TLS handshake included). Default 10s.
	StartupTimeout time.Duration
	// AuthTimeout bounds authentication, the credential lookup and the
	// upstream login together. Default 60s, as PostgreSQL's
	// authentication_timeout.
	AuthTimeout time.Duration
	// IdleTimeout ends a session that has sent nothing for this long while
	// it has no statement running (FATAL 57P05). Default: none.
	IdleTimeout time.Duration
	// MaxPipeline is the number of requests a client may have waiting for
	// the server's answer; past it the gateway stops reading from the client
	// until answers arrive. Default 65536.
	MaxPipeline int
	// MaxPreparedStatements is the number of named prepared statements and
	// portals a session may have at once. Past it a Parse or Bind is refused
	// with ERROR 54000. Default 100000.
	MaxPreparedStatements int
	// MaxStatementSize is the longest SQL text the gateway analyses, in
	// bytes; a longer one is refused (rule "analysis"), since the gateway
	// cannot judge what it does not parse. Default 1 MiB.
	MaxStatementSize int
	// AnalysisCacheSize bounds the memory, in bytes, of the cache of
	// analysed statements (shared by all sessions, keyed by exact text).
	// Default 32 MiB; negative disables the cache.
	AnalysisCacheSize int64
}

const (
	defaultMaxSessions           = 1000
	defaultMaxMessageSize        = 64 << 20
	defaultMaxUpstreamMessage    = 1 << 30
	defaultStartupTimeout        = 10 * time.Second
	defaultAuthTimeout           = 60 * time.Second
	defaultMaxPipeline           = 1 << 16
	defaultMaxPreparedStatements = 100000
	defaultMaxStatementSize      = 1 << 20
	defaultAnalysisCacheSize     = 32 << 20
)

// effective returns l with defaults filled in; a negative value becomes 0
// (no limit) for the counts and durations that allow it.
func (l Limits) effective() Limits {
	pick := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	pickDur := func(v, def time.Duration) time.Duration {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	return Limits{
		MaxSessions:            pick(l.MaxSessions, defaultMaxSessions),
		MaxMessageSize:         pick(l.MaxMessageSize, defaultMaxMessageSize),
		MaxUpstreamMessageSize: pick(l.MaxUpstreamMessageSize, defaultMaxUpstreamMessage),
		StartupTimeout:         pickDur(l.StartupTimeout, defaultStartupTimeout),
		AuthTimeout:            pickDur(l.AuthTimeout, defaultAuthTimeout),
		IdleTimeout:            pickDur(l.IdleTimeout, 0),
		MaxPipeline:            pick(l.MaxPipeline, defaultMaxPipeline),
		MaxPreparedStatements:  pick(l.MaxPreparedStatements, defaultMaxPreparedStatements),
		MaxStatementSize:       pick(l.MaxStatementSize, defaultMaxStatementSize),
		AnalysisCacheSize:      int64(pickDur(time.Duration(l.AnalysisCacheSize), defaultAnalysisCacheSize)),
	}
}
