package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
	"github.com/pgwarden/pgwarden/session/pgstore"
)

// recordingStore is a store of the recording section: it records the
// proxy's events and reads them back.
type recordingStore interface {
	session.Recorder
	session.Archive
	io.Closer
}

// namedStore is an open store and the key path that configured it.
type namedStore struct {
	// path is recording.dir or recording.postgres.
	path keyPath
	// store is the open store.
	store recordingStore
}

// buildRecorder opens the stores of the recording section (the
// PostgreSQL one connects, bounded by ctx) and returns the recorder the
// proxy gets, with the stores to close after the proxy. Without a
// recording section it returns session.Discard. When connect is false
// (`pgwarden check`), nothing is opened: recording.dir's parent directory
// is checked, and the recorder is session.Discard.
func buildRecorder(ctx context.Context, cfg *config, logger *slog.Logger, connect bool) (session.Recorder, []namedStore, error) {
	r := cfg.Recording
	if r == nil {
		return session.Discard, nil, nil
	}
	if r.Dir != "" {
		if err := checkRecordingDir(string(r.Dir)); err != nil {
			return nil, nil, cfg.problemAt("recording.dir", "%w", err)
		}
	}
	if !connect {
		return session.Discard, nil, nil
	}
	stores, err := openStores(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	recorders := make([]session.Recorder, len(stores))
	for i, s := range stores {
		recorders[i] = s.store
	}
	rec := recorders[0]
	if len(recorders) > 1 {
		rec = session.Multi(recorders...)
	}
	if r.Fail == recordingFailBestEffort {
		rec = session.BestEffort(rec, func(ev session.Event, err error) {
			// The stores' errors name sessions and files, never the key
			// or the connection string.
			logger.Warn("pgwarden: an event was not recorded; the session goes on (recording.fail: best_effort)",
				"session", ev.SessionID, "kind", string(ev.Kind), "err", err)
		})
	}
	return rec, stores, nil
}

// openStores opens the stores the recording section names, the file store
// first, to record. only, when given, is "dir" or "postgres": the one
// store to open.
func openStores(ctx context.Context, cfg *config, logger *slog.Logger, only ...string) ([]namedStore, error) {
	r := cfg.Recording
	want := func(name string) bool { return len(only) == 0 || only[0] == name }
	var stores []namedStore
	fail := func(err error) ([]namedStore, error) {
		closeStores(stores)
		return nil, err
	}
	if r.Dir != "" && want("dir") {
		j, err := journal.Open(string(r.Dir), r.Key.Secret, journal.Options{Logger: logger, Durable: writeAhead})
		if errors.Is(err, journal.ErrLocked) {
			return fail(cfg.problemAt("recording.dir", "%w: another gateway records to it (give each gateway its own directory)", err))
		}
		if err != nil {
			return fail(cfg.problemAt("recording.dir", "%w", err))
		}
		stores = append(stores, namedStore{path: "recording.dir", store: j})
	}
	if !r.Postgres.IsZero() && want("postgres") {
		s, err := pgstore.Open(ctx, r.Postgres.Secret, r.Key.Secret, pgstore.Options{Logger: logger, Durable: writeAhead})
		if err != nil {
			// pgstore's errors never quote the connection string.
			return fail(cfg.problemAt("recording.postgres", "%w", err))
		}
		stores = append(stores, namedStore{path: "recording.postgres", store: s})
	}
	return stores, nil
}

// closeStores closes stores and returns their failures, joined.
func closeStores(stores []namedStore) error {
	var errs []error
	for _, s := range stores {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.path, err))
		}
	}
	return errors.Join(errs...)
}

// checkRecordingDir checks that dir is a directory, or can be created as
// one in an existing directory.
func checkRecordingDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s is not a directory", dir)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	parent := filepath.Dir(dir)
	fi, err = os.Stat(parent)
	if err != nil {
		return fmt.Errorf("the directory's parent: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", parent)
	}
	return nil
}

// recordingStores names the stores the gateway records to, for its log:
// "recording.dir,recording.postgres", or "none".
func (g *gateway) recordingStores() string {
	if len(g.stores) == 0 {
		return "none"
	}
	names := make([]string, len(g.stores))
	for i, s := range g.stores {
		names[i] = string(s.path)
	}
	return strings.Join(names, ",")
}

// writeAhead makes the stores wait for the disk (or the audit database's
// commit) only for statement and approval events (and the seal): the
// write-ahead promise is that a statement is stored before it reaches the
// server, and a decision (and a session's approval of a statement)
// before it is applied. Approval events are rare, and wait for a person
// anyway. Results, credential events and the session's start and end are
// written at once and reach the disk with the next sync; the file store
// loses none of them when the gateway process crashes, only on a power
// failure.
func writeAhead(k session.EventKind) bool {
	return k == session.KindStatement || k == session.KindApproval
}
