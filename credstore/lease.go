package credstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/session"
)

// Lease is a just-in-time database role issued to one session. It is a
// plain value (JSON), never holding the role's password.
type Lease struct {
	// Role is the role's name; it identifies the lease.
	Role string `json:"role"`
	// Gateway is the GatewayID of the Dynamic store that issued it.
	Gateway string `json:"gateway"`
	// Database is the session's database.
	Database string `json:"database"`
	// Identity is who the role was issued to, with the delegation chain
	// (its raw claims are not kept).
	Identity session.Identity `json:"identity"`
	// Templates are the roles the lease is a member of.
	Templates []string `json:"templates"`
	// IssuedAt and ExpiresAt bound the lease (VALID UNTIL is ExpiresAt).
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// EndedAt is when the role was dropped; zero while the lease is active.
	EndedAt time.Time `json:"ended_at,omitzero"`
	// EndReason says why it ended: session-ended, expired, revoked,
	// leftover (found after a restart), create-failed.
	EndReason string `json:"end_reason,omitempty"`
}

// Active reports whether the lease has not ended.
func (l Lease) Active() bool { return l.EndedAt.IsZero() }

// LeaseStore keeps leases across gateway restarts, so that roles a
// crashed gateway left behind are found and dropped. Put inserts or
// replaces the lease with the same Role; List returns every lease kept.
// Implementations must be safe for concurrent use and durable when Put
// returns. See the package documentation for the contract.
type LeaseStore interface {
	// Put inserts l, or replaces the lease with the same Role.
	Put(ctx context.Context, l Lease) error
	// List returns every lease kept, in a new slice.
	List(ctx context.Context) ([]Lease, error)
}

// FileLeases is a LeaseStore in a local JSON file, rewritten atomically
// (write, fsync, rename) on every Put. For a single gateway; several
// gateways share a table (see DynamicConfig.Leases).
type FileLeases struct {
	path string
	mu   sync.Mutex
}

// NewFileLeases returns a store in the file at path, created on the first
// Put; its directory must exist.
func NewFileLeases(path string) *FileLeases { return &FileLeases{path: path} }

// List reads the file.
func (f *FileLeases) List(ctx context.Context) ([]Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()
}

func (f *FileLeases) read() ([]Lease, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ls []Lease
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("credstore: lease file %s: %w", f.path, err)
	}
	return ls, nil
}

// Put replaces the lease with l's Role, or adds l, and writes the file.
// Ended leases older than 30 days are dropped from the file.
func (f *FileLeases) Put(ctx context.Context, l Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls, err := f.read()
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-30 * 24 * time.Hour)
	ls = slices.DeleteFunc(ls, func(o Lease) bool {
		return o.Role == l.Role || (!o.Active() && o.EndedAt.Before(cutoff))
	})
	ls = append(ls, l)
	b, err := json.MarshalIndent(ls, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".leases-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// tableLeases keeps leases in the table pgwarden_leases of the admin
// connection's database.
type tableLeases struct{ pool *pgxpool.Pool }

const leaseTable = `CREATE TABLE IF NOT EXISTS pgwarden_leases (
	role       text PRIMARY KEY,
	gateway    text NOT NULL,
	lease      jsonb NOT NULL,
	ended_at   timestamptz
)`

func newTableLeases(ctx context.Context, pool *pgxpool.Pool) (*tableLeases, error) {
	if _, err := pool.Exec(ctx, leaseTable); err != nil {
		return nil, fmt.Errorf("credstore: creating the lease table: %w", err)
	}
	return &tableLeases{pool: pool}, nil
}

func (t *tableLeases) Put(ctx context.Context, l Lease) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	var ended *time.Time
	if !l.Active() {
		ended = &l.EndedAt
	}
	_, err = t.pool.Exec(ctx, `INSERT INTO pgwarden_leases (role, gateway, lease, ended_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (role) DO UPDATE SET gateway = EXCLUDED.gateway, lease = EXCLUDED.lease, ended_at = EXCLUDED.ended_at`,
		l.Role, l.Gateway, b, ended)
	return err
}

func (t *tableLeases) List(ctx context.Context) ([]Lease, error) {
	rows, err := t.pool.Query(ctx, `SELECT lease FROM pgwarden_leases ORDER BY (lease->>'issued_at')`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lease, error) {
		var b []byte
		var l Lease
		if err := r.Scan(&b); err != nil {
			return l, err
		}
		return l, json.Unmarshal(b, &l)
	})
}
