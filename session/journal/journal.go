package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Options tune a Journal. The zero value is safe: every event durable,
// fsync as soon as the committer is free, logs to slog.Default().
type Options struct {
	// GroupCommit is the longest a durable Record waits for others to share
	// its fsync. Zero: the committer syncs as soon as it is free, batching
	// whatever queued while it was busy (with one session, an event costs
	// one fsync; with many, they share). A positive value adds up to that
	// much latency to every durable event, to batch more; the wait ends
	// early when every open session is waiting.
	GroupCommit time.Duration
	// Durable says which events must be on disk (fsynced) before Record
	// returns; nil means every event. Statement events are durable
	// whatever it says (the write-ahead promise: a statement is on disk
	// before it reaches the server), and so is the seal that follows
	// session.end. The other events are written to the file before Record
	// returns (a crash of the gateway process loses none of them) and
	// reach the disk with the next fsync of their file.
	Durable func(session.EventKind) bool
	// Logger receives operational logs (recoveries, broken files). nil
	// means slog.Default().
	Logger *slog.Logger
}

// hooks are test seams; Open uses none.
type hooks struct {
	// fileSync replaces fdatasync(2) of a session's file.
	fileSync func(*os.File) error
	// batchSync replaces the whole sync of a batch (files and directory),
	// for example with syncfs(2).
	batchSync func(dir *os.File, files []*os.File) error
	// sequential makes the committer sync a batch's files one after the
	// other instead of in parallel.
	sequential bool
}

// Journal is a file store of session recordings: a session.Recorder that
// writes each session's ledger to its own file, and a session.Archive that
// reads them back. It is safe for concurrent use.
type Journal struct {
	dir     string
	key     session.Secret
	durable func(session.EventKind) bool
	group   time.Duration
	log     *slog.Logger
	hooks   hooks
	dirf    *os.File // the directory: fsynced after files are created
	lock    *os.File // holds the directory's lock while open

	readOnly bool // OpenReadOnly: no lock, no committer, no Record

	mu       sync.Mutex
	open     map[string]*file // sessions being recorded
	closed   bool
	queue    []*waiter // durable Records waiting for the next commit
	dirDirty bool      // a file was created since the directory's last fsync
	inflight sync.WaitGroup

	kick chan struct{} // wakes the committer (capacity 1)
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the committer exits

	events, commits, syncs, acked atomic.Int64
}

// file is one open session: its ledger and its file.
type file struct {
	id string

	mu     sync.Mutex // serialises a session's appends
	f      *os.File   // nil until the first event
	ledger *session.Ledger
	sealed bool
	err    error // set when the file is broken: every later Record fails
}

// waiter is a durable Record waiting for its file to be synced.
type waiter struct {
	f     *file
	close bool // the ledger is sealed: close the file once synced
	done  chan error
}

// Errors.
var (
	// ErrClosed is returned by Record after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrInvalidID is returned for a session id that cannot name a file:
	// ids are 1 to 128 of a-z, 0-9, '_' and '-', not starting with '-'.
	ErrInvalidID = errors.New("journal: invalid session id")
	// ErrLocked is returned by Open when another Journal (in this process
	// or another) has the directory open.
	ErrLocked = errors.New("journal: the directory is in use by another journal")
	// ErrReadOnly is returned by Record on a journal opened with
	// OpenReadOnly.
	ErrReadOnly = errors.New("journal: opened read-only")
)

const (
	ext      = ".jsonl"
	lockName = "journal.lock"
	maxID    = 128
)

// validID reports whether id can name a session's file: never a path,
// never hidden, never an option to a command.
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxID || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if !validID(id) {
		return fmt.Errorf("%w %q", ErrInvalidID, id)
	}
	return nil
}

func (j *Journal) path(id string) string { return filepath.Join(j.dir, id+ext) }

// Open opens the journal in dir, creating the directory (0700) if needed,
// and recovers the sessions a previous run left open: each ledger that is
// not sealed loses its torn last line, if any (a write cut short, never
// acknowledged), and is sealed (see Recovered). Files whose whole lines do
// not verify are left as they are and logged: Verify reports them. The key
// must not be empty; it is the recording key every ledger is chained with.
// Only one Journal at a time may have a directory open.
func Open(dir string, key session.Secret, opts Options) (*Journal, error) {
	return open(dir, key, opts, hooks{})
}

// OpenReadOnly opens the journal in dir to read it (the Archive methods)
// while a gateway may be recording to it: it takes no lock, recovers
// nothing, and its Record fails with ErrReadOnly. Sessions still being
// recorded, or left open by a crash, verify as "not sealed"
// (session.IsNotSealed) until the recording journal seals them.
func OpenReadOnly(dir string, key session.Secret) (*Journal, error) {
	if key.IsZero() {
		return nil, errors.New("journal: a recording key is required")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("journal: %s is not a directory", dir)
	}
	return &Journal{dir: dir, key: key, log: slog.Default(), readOnly: true, closed: true}, nil
}

func open(dir string, key session.Secret, opts Options, h hooks) (*Journal, error) {
	if key.IsZero() {
		return nil, errors.New("journal: a recording key is required")
	}
	if dir == "" {
		return nil, errors.New("journal: a directory is required")
	}
	j := &Journal{
		dir: dir, key: key, durable: opts.Durable, group: opts.GroupCommit, log: opts.Logger, hooks: h,
		open: map[string]*file{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if j.log == nil {
		j.log = slog.Default()
	}
	if j.durable == nil {
		j.durable = func(session.EventKind) bool { return true }
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("journal: %s is not a directory", dir)
	} else if st.Mode().Perm()&0o077 != 0 {
		j.log.Warn("pgwarden: the journal directory is readable by others; recordings should be private (chmod 700)",
			"dir", dir, "mode", st.Mode().Perm())
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	j.lock = lock
	j.dirf, err = os.Open(dir)
	if err != nil {
		unlockDir(lock)
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := j.recoverAll(); err != nil {
		j.dirf.Close()
		unlockDir(lock)
		return nil, err
	}
	go j.committer()
	return j, nil
}

// Record appends ev to its session's ledger (session.Recorder). A durable
// event (see Options.Durable) is on disk when Record returns nil; any other
// is in the file. The first event of a session creates its file (a session
// whose file already exists is refused: files are never reopened); the
// session.end event is followed by the seal, and the file is closed.
//
// An error means the event is not known to be durable: the proxy then
// ends the session (fail closed). After a write or fsync error the
// session's file is broken and every later event of the session fails; the
// next Open recovers the file. When ctx ends first, the event may still
// reach the disk and appear in the record.
func (j *Journal) Record(ctx context.Context, ev session.Event) error {
	if err := checkID(ev.SessionID); err != nil {
		return err
	}
	end := ev.Kind == session.KindSessionEnd
	if j.readOnly {
		return ErrReadOnly
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.inflight.Add(1)
	defer j.inflight.Done()
	f := j.open[ev.SessionID]
	if f == nil {
		f = &file{id: ev.SessionID}
		j.open[ev.SessionID] = f
	}
	j.mu.Unlock()

	f.mu.Lock()
	if f.err != nil {
		err := f.err
		if end {
			j.forget(f)
		}
		f.mu.Unlock()
		return err
	}
	if f.sealed {
		f.mu.Unlock()
		return fmt.Errorf("journal: session %s: %w", f.id, session.ErrLedgerSealed)
	}
	if f.f == nil {
		if err := j.create(f); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	line, err := j.lines(f, ev, end)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if _, err := f.f.Write(line); err != nil {
		f.err = fmt.Errorf("journal: session %s: writing its file failed; the file is broken: %w", f.id, err)
		j.log.Error("pgwarden: a session's recording failed", "session", f.id, "err", err)
		err := f.err
		if end {
			j.forget(f)
		}
		f.mu.Unlock()
		return err
	}
	f.mu.Unlock()
	j.events.Add(1)

	if !end && ev.Kind != session.KindStatement && !j.durable(ev.Kind) {
		return nil
	}
	w := &waiter{f: f, close: end, done: make(chan error, 1)}
	j.mu.Lock()
	j.queue = append(j.queue, w)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("journal: session %s: the event is not known to be on disk: %w", f.id, ctx.Err())
	}
}

// create creates f's file. f.mu is held.
func (j *Journal) create(f *file) error {
	l, err := session.NewLedger(j.key, f.id)
	if err != nil {
		return err
	}
	fd, err := os.OpenFile(j.path(f.id), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("journal: session %s is already recorded (its file exists): %w", f.id, fs.ErrExist)
		} else {
			err = fmt.Errorf("journal: session %s: %w", f.id, err)
		}
		j.mu.Lock()
		if j.open[f.id] == f {
			delete(j.open, f.id)
		}
		j.mu.Unlock()
		return err
	}
	f.f, f.ledger = fd, l
	j.mu.Lock()
	j.dirDirty = true
	j.mu.Unlock()
	return nil
}

// lines appends ev (and the seal, at the end) to f's ledger and returns
// the lines to write. f.mu is held.
func (j *Journal) lines(f *file, ev session.Event, end bool) ([]byte, error) {
	e, err := f.ledger.Append(ev)
	if err != nil {
		return nil, fmt.Errorf("journal: session %s: %w", f.id, err)
	}
	buf, err := appendLine(nil, e)
	if err != nil {
		return nil, err
	}
	if end {
		seal, err := f.ledger.Seal()
		if err != nil {
			return nil, err
		}
		if buf, err = appendLine(buf, seal); err != nil {
			return nil, err
		}
		f.sealed = true
	}
	return buf, nil
}

func appendLine(buf []byte, e session.LedgerEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(append(buf, b...), '\n'), nil
}

// forget closes f's file and drops it from the open sessions. f.mu is
// held.
func (j *Journal) forget(f *file) {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	j.mu.Lock()
	if j.open[f.id] == f {
		delete(j.open, f.id)
	}
	j.mu.Unlock()
}

// committer syncs what durable Records wait for, one batch at a time.
func (j *Journal) committer() {
	defer close(j.done)
	for {
		select {
		case <-j.kick:
		case <-j.stop:
			j.commitQueued()
			return
		}
		if j.group > 0 {
			j.gather()
		}
		j.commitQueued()
	}
}

// gather waits up to the GroupCommit window for more durable Records,
// ending early when every open session is waiting.
func (j *Journal) gather() {
	t := time.NewTimer(j.group)
	defer t.Stop()
	for {
		j.mu.Lock()
		all := len(j.queue) >= len(j.open)
		j.mu.Unlock()
		if all {
			return
		}
		select {
		case <-t.C:
			return
		case <-j.stop:
			return
		case <-j.kick:
		}
	}
}

// commitQueued syncs every file the queued waiters wait for, then wakes
// them.
func (j *Journal) commitQueued() {
	j.mu.Lock()
	batch, dirty := j.queue, j.dirDirty
	j.queue, j.dirDirty = nil, false
	j.mu.Unlock()
	if len(batch) == 0 && !dirty {
		return
	}
	files := make([]*file, 0, len(batch))
	errs := map[*file]error{}
	for _, w := range batch {
		if _, ok := errs[w.f]; !ok {
			errs[w.f] = nil
			files = append(files, w.f)
		}
	}
	j.syncFiles(files, dirty, errs)
	j.commits.Add(1)
	for _, w := range batch {
		err := errs[w.f]
		if w.close {
			w.f.mu.Lock()
			if err != nil && w.f.err == nil {
				w.f.err = err
			}
			j.forget(w.f)
			w.f.mu.Unlock()
		}
		if err == nil {
			j.acked.Add(1)
		}
		w.done <- err
	}
}

// syncFiles makes files (and the directory, when dirty) durable, recording
// each file's error in errs and marking it broken: after a failed fsync
// the kernel may have dropped the dirty pages, and a later fsync would
// succeed without them.
func (j *Journal) syncFiles(files []*file, dirty bool, errs map[*file]error) {
	fds := make([]*os.File, len(files))
	for i, f := range files {
		f.mu.Lock()
		fds[i] = f.f
		if f.err != nil {
			errs[f] = f.err
			fds[i] = nil
		}
		f.mu.Unlock()
	}
	if j.hooks.batchSync != nil {
		var live []*os.File
		for _, fd := range fds {
			if fd != nil {
				live = append(live, fd)
			}
		}
		j.syncs.Add(1)
		if err := j.hooks.batchSync(j.dirf, live); err != nil {
			for i, f := range files {
				if fds[i] != nil {
					errs[f] = j.broke(f, err)
				}
			}
		}
		return
	}
	fileSync := j.fileSync
	results := make([]error, len(fds))
	var wg sync.WaitGroup
	run := func(i int) {
		if fds[i] != nil {
			j.syncs.Add(1)
			results[i] = fileSync(fds[i])
		}
	}
	if j.hooks.sequential || len(fds) == 1 {
		for i := range fds {
			run(i)
		}
	} else {
		for i := range fds {
			wg.Go(func() { run(i) })
		}
	}
	var dirErr error
	if dirty {
		j.syncs.Add(1)
		dirErr = j.dirf.Sync()
		if dirErr != nil {
			j.log.Error("pgwarden: syncing the journal directory failed", "dir", j.dir, "err", dirErr)
		}
	}
	wg.Wait()
	for i, f := range files {
		if fds[i] == nil {
			continue
		}
		if err := results[i]; err != nil {
			errs[f] = j.broke(f, err)
		} else if dirErr != nil {
			// The file may not survive a crash: its directory entry is
			// not known to be on disk. Fail the waiters, but the file is
			// intact.
			errs[f] = fmt.Errorf("journal: syncing the directory failed: %w", dirErr)
		}
	}
}

// fileSync makes a session's file durable: fdatasync(2) where there is
// one (the file's data and size, not its times), fsync elsewhere.
func (j *Journal) fileSync(f *os.File) error {
	if j.hooks.fileSync != nil {
		return j.hooks.fileSync(f)
	}
	return fdatasync(f)
}

// broke marks f broken after a failed fsync and returns the error.
func (j *Journal) broke(f *file, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = fmt.Errorf("journal: session %s: fsync failed; the file is broken: %w", f.id, err)
		j.log.Error("pgwarden: a session's recording failed", "session", f.id, "err", err)
	}
	return f.err
}

// Close stops recording: later Records fail with ErrClosed. It waits for
// the Records in progress, syncs every open session's file and closes it.
// It seals nothing: a session still open stays unsealed (Verify reports it
// "not sealed") until the next Open recovers it, exactly as after a crash.
// The Archive methods keep working after Close.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	j.inflight.Wait()
	close(j.stop)
	<-j.done

	j.mu.Lock()
	open := j.open
	j.open = map[string]*file{}
	j.mu.Unlock()
	var errs []error
	for _, f := range open {
		f.mu.Lock()
		if f.f != nil && f.err == nil {
			j.syncs.Add(1)
			if err := j.fileSync(f.f); err != nil {
				errs = append(errs, fmt.Errorf("journal: session %s: %w", f.id, err))
			}
		}
		if f.f != nil {
			if err := f.f.Close(); err != nil {
				errs = append(errs, err)
			}
			f.f = nil
		}
		f.mu.Unlock()
	}
	j.syncs.Add(1)
	if err := j.dirf.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("journal: %w", err))
	}
	j.dirf.Close()
	unlockDir(j.lock)
	return errors.Join(errs...)
}

// Stats are a Journal's counters since Open.
type Stats struct {
	// Events is the number of events appended.
	Events int64
	// Durable is the number of durable Records acknowledged.
	Durable int64
	// Commits is the number of group commits: rounds of syncs, each
	// acknowledging every durable Record that was waiting.
	Commits int64
	// Syncs is the number of sync system calls (fdatasync of a session's
	// file, fsync of the directory).
	Syncs int64
	// Open is the number of sessions being recorded.
	Open int
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	n := len(j.open)
	j.mu.Unlock()
	return Stats{Events: j.events.Load(), Durable: j.acked.Load(), Commits: j.commits.Load(), Syncs: j.syncs.Load(), Open: n}
}

var (
	_ session.Recorder = (*Journal)(nil)
	_ session.Archive  = (*Journal)(nil)
)
