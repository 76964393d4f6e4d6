package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/evloop"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/internal/sockio"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// Upstream says where the PostgreSQL server is and how to reach it.
type Upstream struct {
	// Address is "host:port", or the absolute path of the server's Unix
	// socket (for example /var/run/postgresql/.s.PGSQL.5432). Empty: every
	// session fails with FATAL 08001.
	Address string
	// TLS, when not nil, is required on the upstream connection and
	// configures it: set RootCAs and ServerName to verify the server (the
	// example gateway's verify-full), or InsecureSkipVerify for encryption
	// without verification (require). nil means no TLS, and then the gateway
	// refuses to send a cleartext password to the server.
	TLS *tls.Config
	// ConnectTimeout bounds connecting and logging in. Default 10s.
	ConnectTimeout time.Duration
	// DialFunc, when set, opens the network connections to the server,
	// including those that carry cancel requests.
	DialFunc func(ctx context.Context, network, address string) (net.Conn, error)
}

const defaultConnectTimeout = 10 * time.Second

// hostPort splits Address into what pgconn calls host and port.
func (u *Upstream) hostPort() (string, uint16, error) {
	if u.Address == "" {
		return "", 0, errors.New("no upstream address configured")
	}
	if strings.HasPrefix(u.Address, "/") {
		dir, file := filepath.Split(u.Address)
		if p, ok := strings.CutPrefix(file, ".s.PGSQL."); ok {
			port, err := strconv.ParseUint(p, 10, 16)
			if err == nil {
				return filepath.Clean(dir), uint16(port), nil
			}
		}
		return "", 0, fmt.Errorf("upstream socket %q is not of the form /dir/.s.PGSQL.<port>", u.Address)
	}
	host, p, err := net.SplitHostPort(u.Address)
	if err != nil {
		return "", 0, fmt.Errorf("upstream address %q: %w", u.Address, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("upstream address %q: bad port", u.Address)
	}
	return host, uint16(port), nil
}

// upstreamConn is an authenticated upstream session, taken over from pgconn.
type upstreamConn struct {
	conn net.Conn
	// tlsSock is the socket under conn when conn is TLS, which the event
	// loop can take over (see takeOver); nil without TLS.
	tlsSock *handoverConn
	// loopSock is the socket once on the event loop.
	loopSock *evloop.Conn
	pid      uint32
	secret   []byte
	params   map[string]string
	tx       byte
	// searchPath lists the existing schemas of the session's search_path
	// at login.
	searchPath []string
}

// connect logs in to the server as cred, for the client's database, with
// the client's allowed startup parameters.
// prepare, when not nil, runs on the new connection before the gateway
// takes it over (it reads what the session needs from the catalog).
func (u *Upstream) connect(ctx context.Context, cred credstore.Credential, database string, params map[string]string, setup policy.Setup, maxMessage int, prepare func(context.Context, *pgconn.PgConn) error) (*upstreamConn, error) {
	host, port, err := u.hostPort()
	if err != nil {
		return nil, err
	}
	// ParseConfig reads PG* environment variables; every setting that
	// matters is overwritten below so that the environment cannot redirect
	// or weaken the connection.
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, fmt.Errorf("upstream config: %w", err)
	}
	cfg.Host, cfg.Port = host, port
	cfg.Fallbacks = nil
	cfg.Database = database
	cfg.User = cred.User
	cfg.Password = cred.Password.Reveal()
	cfg.TLSConfig = u.TLS
	cfg.SSLNegotiation = "postgres"
	cfg.ConnectTimeout = u.ConnectTimeout
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	dial := cfg.DialFunc
	if u.DialFunc != nil {
		dial = u.DialFunc
	}
	var sock *handoverConn // the last socket dialed (pgconn dials once: no fallbacks)
	cfg.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		sock = &handoverConn{Conn: sockio.Wrap(c)}
		return sock, nil
	}
	cfg.RuntimeParams = params
	if setup.ReadOnly {
		cfg.RuntimeParams = maps.Clone(params)
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.KerberosSrvName, cfg.KerberosSpn = "", ""
	cfg.ValidateConnect, cfg.AfterConnect, cfg.AfterNetConnect = nil, nil, nil
	cfg.OnNotice, cfg.OnNotification, cfg.OAuthTokenProvider = nil, nil, nil
	cfg.MinProtocolVersion, cfg.MaxProtocolVersion = "3.0", "3.0"
	cfg.MaxProtocolMessageBodyLen = maxMessage
	// Never hand the password to a server that asks for it in clear over
	// an unencrypted connection.
	cfg.RequireAuth = "scram-sha-256,md5,none"
	if u.TLS != nil {
		cfg.RequireAuth += ",password"
		cfg.ChannelBinding = "prefer"
	}

	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := checkParsing(pc.ParameterStatus); err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	// The schemas unqualified names resolve to (see policy.Query.SearchPath),
	// with every name qualified: the client may have set the search_path.
	res, err := pc.Exec(ctx, "SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))").ReadAll()
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		pc.Close(context.Background())
		return nil, fmt.Errorf("reading the search path: %w", err)
	}
	searchPath := []string{}
	for _, row := range res[0].Rows {
		searchPath = append(searchPath, string(row[0]))
	}
	if prepare != nil {
		if err := prepare(ctx, pc); err != nil {
			pc.Close(context.Background())
			return nil, err
		}
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, err
	}
	up := &upstreamConn{conn: hc.Conn, pid: hc.PID, secret: hc.SecretKey, params: hc.ParameterStatuses, tx: hc.TxStatus, searchPath: searchPath}
	switch {
	case hc.Conn == net.Conn(sock):
		up.conn = sock.Conn // plaintext: the socket itself
	case sock != nil:
		if _, ok := hc.Conn.(*tls.Conn); ok {
			up.tlsSock = sock
		}
	}
	return up, nil
}

// errParsingSettings is the login failure when the server's settings would
// make it read statements differently from the gateway.
var errParsingSettings = errors.New("the server's standard_conforming_strings or client_encoding differs from what the gateway's parser assumes")

// checkParsing checks the server-reported settings the gateway's parser
// depends on: standard_conforming_strings must be on, and the client
// encoding UTF8 or SQL_ASCII.
func checkParsing(param func(string) string) error {
	if !parsingSafe("standard_conforming_strings", param("standard_conforming_strings")) ||
		!parsingSafe("client_encoding", param("client_encoding")) {
		return errParsingSettings
	}
	return nil
}

// parsingSafe reports whether a reported parameter value keeps the
// server's reading of statements the same as the gateway's; parameters
// other than these two do not matter.
func parsingSafe(name, value string) bool {
	switch name {
	case "standard_conforming_strings":
		return value == "on"
	case "client_encoding":
		return judge.SafeClientEncoding(value)
	}
	return true
}

// upstreamError maps an upstream connection failure to what the client
// sees: errors the server reports about the client's own request (unknown
// database, bad parameter value, too many connections) pass through;
// authentication failures of the gateway's credential and network errors
// become a generic message that reveals neither the role nor the address.
func upstreamError(err error) *session.Error {
	if errors.Is(err, errParsingSettings) {
		return &session.Error{Code: session.CodeConnectionRejected,
			Message: "the gateway refuses this database: " + errParsingSettings.Error()}
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if strings.HasPrefix(pgErr.Code, "28") {
			return &session.Error{Code: session.CodeConnectionRejected,
				Message: "the database server rejected the gateway's credential for this session",
				Hint:    "The gateway's operator must check its credential configuration."}
		}
		return &session.Error{Code: pgErr.Code, Message: pgErr.Message, Detail: pgErr.Detail, Hint: pgErr.Hint}
	}
	return &session.Error{Code: session.CodeUnableToConnect,
		Message: "the gateway could not connect to the database server"}
}

// cancel sends a CancelRequest for the upstream session, over TLS when the
// upstream uses TLS.
func (u *Upstream) cancel(ctx context.Context, pid uint32, secret []byte) error {
	host, port, err := u.hostPort()
	if err != nil {
		return err
	}
	network, address := pgconn.NetworkAddress(host, port)
	dial := u.DialFunc
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, network, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if u.TLS != nil {
		var req [8]byte
		binary.BigEndian.PutUint32(req[0:], 8)
		binary.BigEndian.PutUint32(req[4:], wire.CodeSSLRequest)
		if _, err := conn.Write(req[:]); err != nil {
			return err
		}
		var resp [1]byte
		// Read exactly one byte: nothing the server sends before the
		// handshake may be buffered (CVE-2021-23222).
		if _, err := io.ReadFull(conn, resp[:]); err != nil {
			return err
		}
		if resp[0] != 'S' {
			return errors.New("upstream refused TLS for the cancel request")
		}
		tc := tls.Client(conn, u.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	msg := make([]byte, 12+len(secret))
	binary.BigEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.BigEndian.PutUint32(msg[4:], wire.CodeCancelRequest)
	binary.BigEndian.PutUint32(msg[8:], pid)
	copy(msg[12:], secret)
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when it has read the request; wait
	// for that so the request is not cut off.
	_, _ = conn.Read(make([]byte, 1))
	return nil
}
