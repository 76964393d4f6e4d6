package credstore

import (
	"context"
	"errors"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Store gives the gateway the database credential for a session. See the
// package documentation for the contract.
type Store interface {
	// Credential returns the credential the session logs in to the server
	// with, or ErrNoCredential.
	Credential(ctx context.Context, info *session.Info) (Credential, error)
}

// Func adapts a function to a Store.
type Func func(ctx context.Context, info *session.Info) (Credential, error)

// Credential calls f(ctx, info).
func (f Func) Credential(ctx context.Context, info *session.Info) (Credential, error) {
	return f(ctx, info)
}

// Credential is what the gateway logs in to PostgreSQL with. The client
// never sees it: not its password, and not on the wire.
type Credential struct {
	// User is the database role to log in as.
	User string
	// Password is the role's password (SCRAM-SHA-256, MD5 or cleartext,
	// whatever the server asks for).
	Password session.Secret
	// ExpiresAt, when not zero, is when the credential stops being valid; the
	// proxy ends the session then.
	ExpiresAt time.Time
	// Release, when not nil, is called once when the session that used the
	// credential ends (for example to end a lease), with the reason it
	// ended (also when the upstream login failed: session.EndUpstreamClosed).
	// Its error is logged.
	Release func(ctx context.Context, reason session.EndReason) error
	// Lease, when not empty, names the lease the credential belongs to (a
	// Dynamic store's role name), for recordings and access reviews.
	Lease string
}

// ErrNoCredential means the store has no credential for the session's
// identity: the client is refused with FATAL 28000.
var ErrNoCredential = errors.New("credstore: no database credential for this identity")
