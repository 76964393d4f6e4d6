package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgwarden/pgwarden/session"
)

// DefaultTable is the table a Store keeps entries in unless Options.Table
// names another.
const DefaultTable = "pgwarden_events"

// Defaults for Options.
const (
	DefaultMaxBatch     = 1000
	DefaultWriteTimeout = 30 * time.Second
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("pgstore: the store is closed")

// ErrNotFound is returned by Events and Verify for a session the table has
// no entry of.
var ErrNotFound = errors.New("pgstore: no such session")

// Options tune a Store; the zero value is ready to use.
type Options struct {
	// Table is the table's name, "name" or "schema.name" (lower-case
	// letters, digits and underscores). Default DefaultTable.
	Table string
	// Durable says which events Record waits for: it returns only once
	// their entry is committed. Record of any other event returns once the
	// entry is queued, and a later write failure fails the session's next
	// Record. Nil means every event is durable.
	Durable func(session.EventKind) bool
	// MaxBatch is the most entries written by one COPY (a session's end
	// and its seal always go together, so a batch may hold one more).
	// Default DefaultMaxBatch.
	MaxBatch int
	// MaxDelay is how long the writer waits for more entries after the
	// first of a batch. Zero (the default) writes as soon as the writer is
	// free: entries that arrive while a batch is written form the next one.
	MaxDelay time.Duration
	// WriteTimeout bounds one batch's COPY; a batch that takes longer
	// fails. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger receives write failures. Default slog.Default().
	Logger *slog.Logger
}

// Store records sessions in a PostgreSQL table and reads them back. It
// implements session.Recorder and session.Archive and is safe for
// concurrent use.
type Store struct {
	pool     *pgxpool.Pool // for reading (Sessions, Events, Verify)
	wpool    *pgxpool.Pool // the writer's own connection: no search can delay a Record
	key      session.Secret
	password string // the DSN's password, kept to scrub errors
	opts     Options
	log      *slog.Logger
	table    string         // quoted, possibly schema-qualified
	ident    pgx.Identifier // the same, for CopyFrom

	mu   sync.Mutex
	live map[string]*liveSession

	closeMu sync.RWMutex
	closed  bool
	queue   chan *item
	quit    chan struct{}
	done    chan struct{}
	lastErr error // the last write failure of the final flush (after done)

	batches, entries, failed, largest atomic.Int64
}

// Stats counts a Store's writes.
type Stats struct {
	// Batches is the number of COPY statements run (successful or not).
	Batches int64
	// Entries is the number of entries committed.
	Entries int64
	// Failed is the number of entries whose write failed.
	Failed int64
	// LargestBatch is the most entries one COPY carried.
	LargestBatch int64
	// Live is the number of sessions recording (started, not ended).
	Live int
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$`)

// Open connects to the audit database dsn names, creates the table if it
// is missing, and starts the writer. The key is the
// recording key entries are chained with; a Store opened without one can
// list and read recordings but neither record nor verify.
//
// The audit database should not be the database the gateway protects: the
// sessions it records must not be able to reach their own record.
func Open(ctx context.Context, dsn session.Secret, key session.Secret, opts Options) (*Store, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if !tableName.MatchString(opts.Table) {
		return nil, fmt.Errorf("pgstore: table name %q: use lower-case letters, digits and underscores, optionally schema-qualified", opts.Table)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxDelay < 0 {
		opts.MaxDelay = 0
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pc, err := pgxpool.ParseConfig(dsn.Reveal())
	if err != nil {
		// pgx's parse errors can quote the string: say less.
		return nil, errors.New("pgstore: the audit database's connection string is invalid")
	}
	s := &Store{key: key, password: pc.ConnConfig.Password, opts: opts, log: log,
		ident: pgx.Identifier(strings.Split(opts.Table, ".")),
		live:  map[string]*liveSession{},
		queue: make(chan *item, 4*opts.MaxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	s.table = s.ident.Sanitize()
	wc := pc.Copy()
	wc.MaxConns = 1
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, s.fail("connecting to the audit database", err)
	}
	if s.wpool, err = pgxpool.NewWithConfig(ctx, wc); err != nil {
		s.pool.Close()
		return nil, s.fail("connecting to the audit database", err)
	}
	if err := s.prepare(ctx); err != nil {
		s.pool.Close()
		s.wpool.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// prepare checks the database's encoding and creates the table if it is
// missing. Several gateways may open the same table at once: an advisory
// lock keeps them from racing each other.
func (s *Store) prepare(ctx context.Context) error {
	var enc string
	if err := s.pool.QueryRow(ctx, "SHOW server_encoding").Scan(&enc); err != nil {
		return s.fail("connecting to the audit database", err)
	}
	if enc != "UTF8" {
		return fmt.Errorf("pgstore: the audit database's encoding is %s; it must be UTF8", enc)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.table).Scan(&exists); err != nil {
		return s.fail("looking for the table", err)
	}
	if exists {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "pgstore:"+s.opts.Table); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(createTable, s.table))
		return err
	})
	if err != nil {
		return s.fail("creating the table", err)
	}
	return nil
}

// The table: one row per ledger entry. event is the event's JSON exactly
// as hashed (text, never jsonb, which would reformat it); kind repeats the
// event's kind, so that searches parse only the events they need (Verify
// checks it against the event). The primary key is the only index
// searches need: they walk it session by session.
const createTable = `CREATE TABLE IF NOT EXISTS %s (
	session     text        NOT NULL,
	seq         bigint      NOT NULL,
	kind        text,
	sealed      boolean     NOT NULL DEFAULT false,
	prev        text        NOT NULL,
	hash        text        NOT NULL,
	event       text,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (session, seq)
)`

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n := len(s.live)
	s.mu.Unlock()
	return Stats{Batches: s.batches.Load(), Entries: s.entries.Load(), Failed: s.failed.Load(),
		LargestBatch: s.largest.Load(), Live: n}
}

// Close writes the entries still queued, waits for them, stops the writer
// and closes the connections. Sessions still recording stay unsealed (end
// them first). It returns the last write failure of that final flush.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.closeMu.Unlock()
	<-s.done
	s.pool.Close()
	s.wpool.Close()
	return s.lastErr
}

// fail wraps a database error for the caller, without the DSN's password
// (pgx errors name the user, host and database, and should never show the
// password; this makes sure).
func (s *Store) fail(what string, err error) error {
	return fmt.Errorf("pgstore: %s: %w", what, s.scrub(err))
}

// scrub returns err, or when its text shows the DSN's password, an error
// with the same text but for the password.
func (s *Store) scrub(err error) error {
	if s.password != "" && strings.Contains(err.Error(), s.password) {
		return errors.New(strings.ReplaceAll(err.Error(), s.password, "REDACTED"))
	}
	return err
}
