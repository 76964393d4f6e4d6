package session

import (
	"context"
	"time"
)

// Archive is where recorded sessions are read back: a file store's
// directory or a database. Implementations are safe for concurrent use.
type Archive interface {
	// Sessions lists the recorded sessions that match f, oldest first.
	Sessions(ctx context.Context, f Filter) ([]Summary, error)
	// Events returns the events of session id, in the order they were
	// recorded. It does not verify them: Verify does.
	Events(ctx context.Context, id string) ([]Event, error)
	// Verify checks the ledger of session id (see VerifyLedger): nil when
	// it is intact and sealed, a *TamperError otherwise.
	Verify(ctx context.Context, id string) error
}

// Filter selects recorded sessions; zero fields match everything.
type Filter struct {
	// Subject matches sessions whose identity involves it: the subject or
	// any actor of the delegation chain.
	Subject string
	// Since and Until bound the session's start.
	Since, Until time.Time
	// Table matches sessions with a statement touching this relation
	// (as the statement events name it: "schema.table" or "table").
	Table string
	// Verdict matches sessions with a statement decided so ("block", ...).
	Verdict string
}

// Summary describes a recorded session.
type Summary struct {
	// ID, Identity, User, Database, ClientAddr, Upstream (the role the
	// gateway logged in as) and StartedAt are from the session's Info.
	ID         string    `json:"id"`
	Identity   Identity  `json:"identity"`
	User       string    `json:"user"`
	Database   string    `json:"database"`
	ClientAddr string    `json:"client_addr"`
	Upstream   string    `json:"upstream_user"`
	StartedAt  time.Time `json:"started_at"`
	// EndedAt and EndReason are zero while the session runs (or when its
	// gateway stopped before recording its end).
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndReason EndReason `json:"end_reason,omitempty"`
	// Statements and Refused count the statement events.
	Statements int64 `json:"statements"`
	Refused    int64 `json:"refused"`
}
