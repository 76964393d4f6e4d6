package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/session"
)

// liveSession is the ledger of a session being recorded.
type liveSession struct {
	id string
	// mu orders a session's Records (the proxy never calls them
	// concurrently; this makes sure).
	mu     sync.Mutex
	ledger *session.Ledger
	// last is the last entry queued; a Record whose entry could not be
	// queued resumes the ledger after it.
	last    session.LedgerEntry
	hasLast bool

	errMu sync.Mutex
	err   error // set when a write of the session's entries failed
}

func (l *liveSession) failure() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

func (l *liveSession) setFailure(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

// item is what one Record queues: the event's entry (and the seal after
// a session's end). Its entries are always written by the same COPY.
type item struct {
	ls      *liveSession
	entries []session.LedgerEntry
	kind    session.EventKind
	done    chan error // nil unless Record waits for the commit
}

// Record chains ev to its session's ledger and queues the entry for the
// writer. For a durable event (Options.Durable) it returns once the batch
// holding the entry is committed; the session's end is followed by its
// seal, committed with it.
//
// An error means the event may not be recorded. Once a write of a
// session's entries has failed, every later Record of that session fails
// too, so that its record never has a silent hole: what was committed
// verifies as a ledger that is not sealed.
func (s *Store) Record(ctx context.Context, ev session.Event) error {
	if ev.SessionID == "" {
		return errors.New("pgstore: the event has no session id")
	}
	if s.key.IsZero() {
		return errors.New("pgstore: recording needs the recording key")
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("pgstore: session %s: %w", ev.SessionID, err)
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	ls, err := s.session(ev.SessionID)
	if err != nil {
		s.closeMu.RUnlock()
		return err
	}
	end := ev.Kind == session.KindSessionEnd
	if end {
		defer s.forget(ls)
	}
	it, err := s.enqueue(ctx, ls, ev, end)
	s.closeMu.RUnlock()
	if err != nil || it.done == nil {
		return err
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("pgstore: session %s: waiting for the commit: %w", ev.SessionID, context.Cause(ctx))
	}
}

// enqueue appends ev (and the seal, at the end) to the session's ledger and
// queues the entries.
func (s *Store) enqueue(ctx context.Context, ls *liveSession, ev session.Event, end bool) (*item, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.failure(); err != nil {
		return nil, err
	}
	it := &item{ls: ls, kind: ev.Kind}
	e, err := ls.ledger.Append(ev)
	if err != nil {
		return nil, fmt.Errorf("pgstore: session %s: %w", ls.id, err)
	}
	it.entries = append(it.entries, e)
	if end {
		seal, err := ls.ledger.Seal()
		if err != nil {
			s.rewind(ls)
			return nil, fmt.Errorf("pgstore: session %s: %w", ls.id, err)
		}
		it.entries = append(it.entries, seal)
	}
	if s.opts.Durable == nil || s.opts.Durable(ev.Kind) {
		it.done = make(chan error, 1)
	}
	select {
	case s.queue <- it:
	case <-ctx.Done():
		// Nothing was queued: take the entries back, so that the
		// session's next event follows the last one queued.
		s.rewind(ls)
		return nil, fmt.Errorf("pgstore: session %s: queueing the event: %w", ls.id, context.Cause(ctx))
	}
	ls.last, ls.hasLast = it.entries[len(it.entries)-1], true
	return it, nil
}

// rewind resets a session's ledger to just after the last entry queued.
func (s *Store) rewind(ls *liveSession) {
	var err error
	if ls.hasLast {
		ls.ledger, err = session.ResumeLedger(s.key, ls.last)
	} else {
		ls.ledger, err = session.NewLedger(s.key, ls.id)
	}
	if err != nil { // cannot happen: the key was checked
		ls.setFailure(err)
	}
}

// session returns the live session id, starting its ledger if needed.
func (s *Store) session(id string) (*liveSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ls := s.live[id]; ls != nil {
		return ls, nil
	}
	l, err := session.NewLedger(s.key, id)
	if err != nil {
		return nil, err
	}
	ls := &liveSession{id: id, ledger: l}
	s.live[id] = ls
	return ls, nil
}

// forget drops an ended session.
func (s *Store) forget(ls *liveSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[ls.id] == ls {
		delete(s.live, ls.id)
	}
}

// writer collects queued entries from every session into batches and
// writes each with one COPY, until Close; then it writes what is left.
func (s *Store) writer() {
	defer close(s.done)
	var carry *item // received, but did not fit the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-s.quit:
				s.drain()
				return
			}
		}
		batch, n := []*item{first}, len(first.entries)
		take := func(it *item) bool {
			if n+len(it.entries) > s.opts.MaxBatch {
				carry = it
				return false
			}
			batch, n = append(batch, it), n+len(it.entries)
			return true
		}
		if s.opts.MaxDelay > 0 && n < s.opts.MaxBatch {
			timer := time.NewTimer(s.opts.MaxDelay)
		wait:
			for n < s.opts.MaxBatch {
				select {
				case it := <-s.queue:
					if !take(it) {
						break wait
					}
				case <-timer.C:
					break wait
				case <-s.quit:
					break wait
				}
			}
			timer.Stop()
		}
	more:
		for carry == nil && n < s.opts.MaxBatch {
			select {
			case it := <-s.queue:
				take(it)
			default:
				break more
			}
		}
		s.write(batch)
	}
}

// drain writes everything still queued (no Record can queue any more).
func (s *Store) drain() {
	for {
		var batch []*item
		n := 0
	fill:
		for n < s.opts.MaxBatch {
			select {
			case it := <-s.queue:
				batch, n = append(batch, it), n+len(it.entries)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		if err := s.write(batch); err != nil {
			s.lastErr = err
		}
	}
}

// write copies the entries of batch to the table and tells each item's
// Record how it went. When the server refuses a batch of several sessions
// (a statement error, not a lost connection), each session's entries are
// tried on their own, so that one session cannot fail the others.
// It returns the last failure.
func (s *Store) write(batch []*item) error {
	var ok []*item
	for _, it := range batch {
		if err := it.ls.failure(); err != nil {
			s.finish(it, err)
			continue
		}
		ok = append(ok, it)
	}
	if len(ok) == 0 {
		return nil
	}
	err := s.copy(ok)
	var pgErr *pgconn.PgError
	if err != nil && errors.As(err, &pgErr) && perRow(pgErr.Code) && sessionsIn(ok) > 1 {
		s.log.Warn("pgstore: the server refused a batch; writing its sessions one by one",
			"entries", countEntries(ok), "code", pgErr.Code)
		var last error
		for _, group := range bySession(ok) {
			if err := s.copyAndFinish(group); err != nil {
				last = err
			}
		}
		return last
	}
	s.finishAll(ok, err)
	return err
}

func (s *Store) copyAndFinish(items []*item) error {
	err := s.copy(items)
	s.finishAll(items, err)
	return err
}

// finishAll reports err (nil: committed) to every item.
func (s *Store) finishAll(items []*item, err error) {
	if err != nil {
		s.log.Error("pgstore: writing entries failed; their sessions are no longer recorded",
			"sessions", sessionsIn(items), "entries", countEntries(items), "err", err)
	}
	for _, it := range items {
		s.finish(it, err)
	}
}

// errFailedBefore marks the error of a session whose write failed earlier.
var errFailedBefore = errors.New("pgstore: the session is no longer recorded: a write of its entries failed")

// finish reports err to it's Record; a failure fails the session.
func (s *Store) finish(it *item, err error) {
	if err != nil {
		s.failed.Add(int64(len(it.entries)))
		if !errors.Is(err, errFailedBefore) {
			err = fmt.Errorf("pgstore: session %s: writing its entries: %w", it.ls.id, err)
			it.ls.setFailure(fmt.Errorf("%w (%w)", errFailedBefore, err))
		}
	}
	if it.done != nil {
		it.done <- err
	}
}

var columns = []string{"session", "seq", "kind", "sealed", "prev", "hash", "event"}

// copy writes items' entries with one COPY, which commits on its own.
func (s *Store) copy(items []*item) error {
	rows := make([][]any, 0, countEntries(items))
	for _, it := range items {
		for _, e := range it.entries {
			var kind, event any
			if !e.Sealed {
				kind, event = string(it.kind), string(e.Event)
			}
			rows = append(rows, []any{e.Session, e.Seq, kind, e.Sealed, e.Prev, e.Hash, event})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	s.batches.Add(1)
	n := int64(len(rows))
	for {
		l := s.largest.Load()
		if n <= l || s.largest.CompareAndSwap(l, n) {
			break
		}
	}
	if _, err := s.wpool.CopyFrom(ctx, s.ident, columns, pgx.CopyFromRows(rows)); err != nil {
		return s.scrub(err)
	}
	s.entries.Add(n)
	return nil
}

// perRow reports whether SQLSTATE code can come from one row rather than
// the whole batch: a data exception or an integrity constraint violation
// (say, entries of a session another gateway already recorded).
func perRow(code string) bool {
	return len(code) == 5 && (code[:2] == "22" || code[:2] == "23")
}

func countEntries(items []*item) int {
	n := 0
	for _, it := range items {
		n += len(it.entries)
	}
	return n
}

func sessionsIn(items []*item) int {
	ids := map[*liveSession]bool{}
	for _, it := range items {
		ids[it.ls] = true
	}
	return len(ids)
}

// bySession groups items per session, keeping their order.
func bySession(items []*item) [][]*item {
	var groups [][]*item
	at := map[*liveSession]int{}
	for _, it := range items {
		i, ok := at[it.ls]
		if !ok {
			i = len(groups)
			at[it.ls] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	return groups
}
