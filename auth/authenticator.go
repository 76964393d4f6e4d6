package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Authenticator decides who a connecting client is. See the package
// documentation for the contract.
type Authenticator interface {
	// Authenticate runs the exchange with the client (req.Client) and
	// returns the identity it proved, or an error saying why not.
	Authenticate(ctx context.Context, req *Request) (session.Identity, error)
}

// Func adapts a function to an Authenticator.
type Func func(ctx context.Context, req *Request) (session.Identity, error)

// Authenticate calls f(ctx, req).
func (f Func) Authenticate(ctx context.Context, req *Request) (session.Identity, error) {
	return f(ctx, req)
}

// Request is what an Authenticator knows about a connecting client. The
// proxy fills it after the startup packet was read and checked.
type Request struct {
	// User is the user name from the startup packet (never empty).
	User string
	// Database is the database asked for, canonicalised (never empty).
	Database string
	// Params are the other startup parameters that were allowed.
	Params map[string]string
	// ClientAddr is the client's network address.
	ClientAddr string
	// TLS is the client-facing TLS state; nil when the client did not use TLS.
	TLS *tls.ConnectionState
	// Method is the authentication exchange the client asked for in its
	// startup packet with the gateway parameter pgwarden.auth: MethodPassword,
	// MethodOAuthBearer, or empty when it did not say. The PostgreSQL
	// protocol lets the server ask for one exchange per connection, so a
	// client that can do several says which it wants this way.
	Method string
	// Client runs the authentication exchange with the client. The
	// Authenticator chooses the exchange; it must finish it before returning
	// an identity.
	Client Conversation

	rechecks []Recheck
}

// Values of Request.Method.
const (
	// MethodPassword asks for a password or token in clear (over TLS).
	MethodPassword = "password"
	// MethodOAuthBearer asks for SASL OAUTHBEARER (RFC 7628), PostgreSQL
	// 18's "oauth" method.
	MethodOAuthBearer = "oauthbearer"
)

// Recheck is a re-validation of an authenticated identity that the proxy
// runs every Interval for as long as the session lives (for example, token
// introspection). An error ends the session: one wrapping
// ErrInvalidCredentials means the proof was revoked; any other means it
// could not be confirmed, and the session ends too (fail closed).
type Recheck struct {
	// Interval is how often Check runs; at least a second.
	Interval time.Duration
	// Check re-validates the identity.
	Check func(ctx context.Context) error
}

// RecheckEvery asks the proxy to run check every interval during the
// session that this request authenticates, if authentication succeeds.
// Intervals under a second are raised to a second.
func (r *Request) RecheckEvery(interval time.Duration, check func(ctx context.Context) error) {
	r.rechecks = append(r.rechecks, Recheck{Interval: max(interval, time.Second), Check: check})
}

// Rechecks returns the re-validations the Authenticator asked for.
func (r *Request) Rechecks() []Recheck { return r.rechecks }

// Conversation is the authentication exchange with the client, on the wire.
// The proxy implements it; an Authenticator drives it. It is only valid
// during Authenticate, and must not be used from several goroutines.
type Conversation interface {
	// CleartextPassword asks the client for its password in clear
	// (AuthenticationCleartextPassword) and returns what it sent. Without
	// TLS the proxy refuses, unless the host allowed cleartext over
	// plaintext connections explicitly: the error is then ErrCleartextRefused.
	CleartextPassword(ctx context.Context) (session.Secret, error)

	// SASLStart offers the SASL mechanisms (AuthenticationSASL) and returns
	// the mechanism the client chose, which is one of mechanisms, and its
	// initial response (possibly empty). Offering OAUTHBEARER, whose bearer
	// token travels in clear, follows the rule of CleartextPassword: without
	// TLS it fails with ErrCleartextRefused unless the host allowed it.
	SASLStart(ctx context.Context, mechanisms []string) (mechanism string, initial []byte, err error)
	// SASLContinue sends a challenge (AuthenticationSASLContinue) and returns
	// the client's response.
	SASLContinue(ctx context.Context, challenge []byte) ([]byte, error)
	// SASLFinal sends the server's final data (AuthenticationSASLFinal). The
	// proxy sends AuthenticationOk later, once the upstream session is ready.
	SASLFinal(ctx context.Context, data []byte) error

	// TLSServerEndPoint returns the tls-server-end-point channel binding
	// data (RFC 5929) of the client-facing TLS connection, or nil when there
	// is none (no TLS, or a certificate the proxy cannot identify).
	TLSServerEndPoint() []byte
}

var (
	// ErrInvalidCredentials means the client's password, token or proof is
	// wrong, or the user is unknown (the two are not told apart). The proxy
	// answers FATAL 28P01.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrCleartextRefused means a cleartext secret was asked for over a
	// connection without TLS, and the host did not allow that.
	ErrCleartextRefused = errors.New("auth: cleartext password refused without TLS")
	// ErrExchange means the client broke the authentication exchange (a
	// malformed or unexpected message). The proxy answers FATAL 08P01.
	ErrExchange = errors.New("auth: malformed authentication exchange")
	// ErrNotApplicable means the Authenticator does not handle this client
	// (no client certificate, a secret that is not its kind of token) and
	// exchanged nothing that decides against it. Chain passes such a client
	// to its next member; on its own it is failed authentication.
	ErrNotApplicable = errors.New("auth: authenticator does not apply to this client")
)
