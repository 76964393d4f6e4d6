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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Options tune a Journal. The zero value is safe: every event durable,
// the write-ahead log synced as soon as the previous commit ends, 64 MiB
// segments checkpointed at least every minute, logs to slog.Default().
type Options struct {
	// GroupCommit is the longest a durable Record waits for others to share
	// its commit (one fdatasync of the write-ahead log). Zero: a commit
	// starts as soon as the previous one ended, covering whatever was
	// appended meanwhile (with one session, an event costs one fdatasync;
	// with many, they share). A positive value adds up to that much
	// latency to every durable event, to batch more; the wait ends early
	// when every open session is waiting.
	GroupCommit time.Duration
	// Durable says which events must be on disk before Record returns;
	// nil means every event. Statement events are durable whatever it
	// says (the write-ahead promise: a statement is on disk before it
	// reaches the server), and so is the seal that follows session.end.
	// The other events are written (to the session's file and to the
	// write-ahead log) before Record returns, so a crash of the gateway
	// process loses none of them, and reach the disk with the next commit.
	Durable func(session.EventKind) bool
	// WALSegmentSize is the size at which the current write-ahead log
	// segment is checkpointed (see the package documentation). Zero or
	// less means 64 MiB.
	WALSegmentSize int64
	// CheckpointInterval is the longest a segment that holds events stays
	// current before it is checkpointed. Zero or less means one minute.
	CheckpointInterval time.Duration
	// Logger receives operational logs (recoveries, broken files). nil
	// means slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultWALSegmentSize     = 64 << 20
	DefaultCheckpointInterval = time.Minute
)

// hooks are test seams; Open uses none.
type hooks struct {
	// walSync replaces fdatasync(2) of a write-ahead log segment (a
	// commit).
	walSync func(*os.File) error
	// walWrite replaces the write(2) of a Record's lines to the
	// write-ahead log, at offset off.
	walWrite func(f *os.File, b []byte, off int64) (int, error)
	// fileSync replaces fdatasync(2) of a session's file (checkpoints,
	// Close, recovery).
	fileSync func(*os.File) error
}

// Journal is a file store of session recordings: a session.Recorder that
// writes each session's ledger to its own file, and a session.Archive that
// reads them back. It is safe for concurrent use.
type Journal struct {
	dir      string
	key      session.Secret
	durable  func(session.EventKind) bool
	group    time.Duration
	segSize  int64
	cpEvery  time.Duration
	log      *slog.Logger
	hooks    hooks
	dirf     *os.File // the directory: fsynced after files are created or removed
	lock     *os.File // holds the directory's lock while open
	readOnly bool     // OpenReadOnly: no lock, no committer, no Record

	mu       sync.Mutex
	open     map[string]*file // sessions being recorded
	closed   bool
	inflight sync.WaitGroup

	// A commit is started by the first durable Record that needs one (it
	// leads it), when none runs; the Records that need it, or the next
	// one, wait for commitEnd, and one of them leads the next.
	cmu        sync.Mutex
	committing bool
	commitEnd  chan struct{}  // closed when the running commit ends
	waiting    atomic.Int64   // durable Records waiting for a commit
	leaders    sync.WaitGroup // the goroutines of the commits Records started
	arrive     chan struct{}  // a durable Record began waiting (GroupCommit's gather)

	wal     wal
	synced  atomic.Int64  // the log position the last commit made durable
	nextSeg uint64        // the number of the next segment (the checkpointer's)
	cpReq   chan struct{} // asks the checkpointer for a checkpoint (capacity 1)
	cpOld   chan *segment // a commit hands the checkpointer the old segment
	kick    chan struct{} // wakes the committer, for a checkpoint's switch (capacity 1)
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the committer exits
	cpDone  chan struct{} // closed when the checkpointer exits

	events, commits, syncs, acked, checkpoints atomic.Int64
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
// and recovers the sessions a previous run left open: it restores from the
// write-ahead log that run left (if it crashed) what the sessions' files
// lost, byte for byte and only what verifies, and removes the log (see the
// package documentation); then each ledger that is not sealed loses its
// torn last line, if any (a write cut short, never acknowledged), and is
// sealed (see Recovered). Files whose whole lines do
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
		segSize: opts.WALSegmentSize, cpEvery: opts.CheckpointInterval,
		open:  map[string]*file{},
		cpReq: make(chan struct{}, 1), cpOld: make(chan *segment, 1),
		kick: make(chan struct{}, 1), arrive: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), cpDone: make(chan struct{}),
	}
	if j.log == nil {
		j.log = slog.Default()
	}
	if j.durable == nil {
		j.durable = func(session.EventKind) bool { return true }
	}
	if j.segSize <= 0 {
		j.segSize = DefaultWALSegmentSize
	}
	if j.cpEvery <= 0 {
		j.cpEvery = DefaultCheckpointInterval
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
	fail := func(err error) (*Journal, error) {
		j.dirf.Close()
		unlockDir(lock)
		return nil, err
	}
	last, err := j.recoverLog()
	if err != nil {
		return fail(err)
	}
	if err := j.recoverAll(); err != nil {
		return fail(err)
	}
	j.nextSeg = last + 1
	seg, err := j.createSegment()
	if err != nil {
		return fail(err)
	}
	j.wal.cur = seg
	j.syncs.Store(0) // Stats count from here
	go j.committer()
	go j.checkpointer()
	return j, nil
}

// Record appends ev to its session's ledger (session.Recorder): to the
// session's file and to the write-ahead log. A durable event (see
// Options.Durable) is on disk when Record returns nil; any other is in the
// file and the log. The first event of a session creates its file (a
// session whose file already exists is refused: files are never reopened);
// the session.end event is followed by the seal, and the file is closed.
//
// An error means the event is not known to be durable: the proxy then
// ends the session (fail closed). After a write error the session's file
// is broken and every later event of the session fails; after a write or
// fdatasync error of the write-ahead log the journal is broken and every
// later Record fails. The next Open recovers the files. When ctx ends
// first, the event may still reach the disk and appear in the record.
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
	if f.err == nil {
		f.err = j.walErr()
	}
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
	// The session's file first, then the log: a checkpoint that finds the
	// session among a segment's writers finds its bytes in the file.
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
	pos, err := j.walAppend(f.id, line)
	if err != nil {
		f.err = err
	}
	if end {
		// The seal is written: the file is done with (its bytes are in the
		// log until a checkpoint syncs it).
		j.forget(f)
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	j.events.Add(1)

	if !end && ev.Kind != session.KindStatement && !j.durable(ev.Kind) {
		return nil
	}
	if err := j.awaitCommit(ctx, pos); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("journal: session %s: the event is not known to be on disk: %w", f.id, err)
		}
		return err
	}
	j.acked.Add(1)
	return nil
}

// awaitCommit returns once the log is durable up to pos: at once when a
// commit since the append covered it, after the running commit when that
// one does, and otherwise after a commit it starts itself (it leads it),
// which covers every Record appended before it started. It returns the
// log's error when the log broke first, and ctx's when ctx ends first.
func (j *Journal) awaitCommit(ctx context.Context, pos int64) error {
	j.waiting.Add(1)
	defer j.waiting.Add(-1)
	if j.group > 0 {
		select {
		case j.arrive <- struct{}{}:
		default:
		}
	}
	for {
		if pos <= j.synced.Load() {
			return nil
		}
		if err := j.walErr(); err != nil {
			return err
		}
		end := j.lead()
		if end == nil {
			// The leader: the commit runs in a goroutine of its own, so
			// that this Record can return when ctx ends, even while an
			// fdatasync hangs. It usually runs on this thread at once,
			// as this Record waits.
			end = j.commitEnd
			j.leaders.Add(1)
			go func() {
				defer j.leaders.Done()
				if j.group > 0 {
					j.gather()
				}
				j.commit()
				j.endCommit()
			}()
		}
		select {
		case <-end:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lead makes the caller the leader of the next commit and returns nil, or,
// when a commit is running, returns the channel closed when it ends. A
// leader runs commit, then endCommit.
func (j *Journal) lead() <-chan struct{} {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	if j.committing {
		return j.commitEnd
	}
	j.committing = true
	j.commitEnd = make(chan struct{})
	return nil
}

// endCommit ends the leader's commit and wakes those waiting for it.
func (j *Journal) endCommit() {
	j.cmu.Lock()
	j.committing = false
	close(j.commitEnd)
	j.cmu.Unlock()
}

// Quick reports whether Record of an event of kind k returns without
// waiting for the disk: the events that are not durable (see
// Options.Durable; statement events and the session's end never are
// quick). Such a Record writes to the session's file and to the log, and
// returns (see session.QuickRecorder).
func (j *Journal) Quick(k session.EventKind) bool {
	return !j.readOnly && k != session.KindStatement && k != session.KindSessionEnd && !j.durable(k)
}

// wake wakes the committer, which runs a commit (see checkpointer).
func (j *Journal) wake() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// create creates f's file. f.mu is held. The file's directory entry is not
// synced here: the write-ahead log covers the file's content until a
// checkpoint syncs the file and the directory, and recovery recreates a
// file the directory lost.
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
	return nil
}

// lines appends ev (and the seal, at the end) to f's ledger and returns
// the lines to write. f.mu is held.
func (j *Journal) lines(f *file, ev session.Event, end bool) ([]byte, error) {
	e, err := f.ledger.Append(ev)
	if err != nil {
		return nil, fmt.Errorf("journal: session %s: %w", f.id, err)
	}
	buf, err := appendNewLine(nil, e)
	if err != nil {
		return nil, err
	}
	if end {
		seal, err := f.ledger.Seal()
		if err != nil {
			return nil, err
		}
		if buf, err = appendNewLine(buf, seal); err != nil {
			return nil, err
		}
		f.sealed = true
	}
	return buf, nil
}

// appendLine appends e's line: e as json.Marshal encodes it, and "\n".
func appendLine(buf []byte, e session.LedgerEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(append(buf, b...), '\n'), nil
}

// appendNewLine appends the line of an entry the ledger just made, whose
// event json.Marshal wrote (valid, compact, HTML characters escaped): the
// bytes appendLine would write (TestNewLineIsMarshal), without encoding
// the entry again, nor scanning its event again as json.Marshal does for
// a RawMessage. It falls back to appendLine for a session id or hash that
// would need escaping (never the case for the journal's own).
func appendNewLine(buf []byte, e session.LedgerEntry) ([]byte, error) {
	if !validID(e.Session) || !isHex(e.Prev) || !isHex(e.Hash) {
		return appendLine(buf, e)
	}
	buf = append(buf, `{"session":"`...)
	buf = append(buf, e.Session...)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendInt(buf, e.Seq, 10)
	buf = append(buf, `,"prev":"`...)
	buf = append(buf, e.Prev...)
	buf = append(buf, `","hash":"`...)
	buf = append(buf, e.Hash...)
	buf = append(buf, '"')
	if len(e.Event) > 0 {
		buf = append(buf, `,"event":`...)
		buf = append(buf, e.Event...)
	}
	if e.Sealed {
		buf = append(buf, `,"sealed":true`...)
	}
	return append(buf, "}\n"...), nil
}

// isHex reports whether s is lower-case hex, as the ledger writes hashes.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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

// breakSession marks session id's file broken, if it is still being
// recorded, after err (a failed fdatasync of its file).
func (j *Journal) breakSession(id string, err error) {
	j.mu.Lock()
	f := j.open[id]
	j.mu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = fmt.Errorf("journal: session %s: fdatasync failed; the file is broken: %w", id, err)
	}
	f.mu.Unlock()
}

// fileSync makes a session's file durable: fdatasync(2) where there is
// one (the file's data and size, not its times), fsync elsewhere.
func (j *Journal) fileSync(f *os.File) error {
	if j.hooks.fileSync != nil {
		return j.hooks.fileSync(f)
	}
	return fdatasync(f)
}

// syncDir fsyncs the directory (created and removed files).
func (j *Journal) syncDir() error {
	j.syncs.Add(1)
	if err := j.dirf.Sync(); err != nil {
		return fmt.Errorf("journal: syncing the directory %s: %w", j.dir, err)
	}
	return nil
}

// Close stops recording: later Records fail with ErrClosed. It waits for
// the Records in progress, then checkpoints everything: it syncs every
// session's file the write-ahead log still covers (the open sessions' and
// those sealed since the last checkpoint) and the directory, closes the
// files and removes the log's segments, so that a closed journal's
// directory holds only the sessions' files and journal.lock. It seals
// nothing: a session still open stays unsealed (Verify reports it "not
// sealed") until the next Open recovers it, exactly as after a crash.
//
// When a sync fails, or the log broke while recording, Close keeps the
// segments and returns an error: the next Open recovers from them. The
// Archive methods keep working after Close.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	j.inflight.Wait()
	j.leaders.Wait() // a commit whose Record gave up (its ctx ended) runs on
	close(j.stop)
	<-j.done
	<-j.cpDone

	j.mu.Lock()
	open := j.open
	j.open = map[string]*file{}
	j.mu.Unlock()
	for _, f := range open {
		f.mu.Lock()
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
		f.mu.Unlock()
	}

	segs, spare, kept, werr := j.walLeft()
	var errs []error
	ids := map[string]struct{}{}
	for _, s := range segs {
		for id := range s.ids {
			ids[id] = struct{}{}
		}
	}
	ok := werr == nil && len(kept) == 0
	if err := j.syncSessions(ids); err != nil {
		errs = append(errs, err)
		ok = false
	}
	if err := j.syncDir(); err != nil {
		errs = append(errs, err)
		ok = false
	}
	if spare != nil {
		// Never current: empty.
		spare.f.Close()
		if err := os.Remove(j.segPath(spare.num)); err != nil {
			errs = append(errs, fmt.Errorf("journal: %w", err))
		}
	}
	for _, s := range segs {
		s.f.Close()
	}
	if ok {
		for _, s := range segs {
			if err := os.Remove(j.segPath(s.num)); err != nil {
				errs = append(errs, fmt.Errorf("journal: %w", err))
			}
		}
		if err := j.syncDir(); err != nil {
			errs = append(errs, err)
		}
	} else {
		for _, s := range segs {
			kept = append(kept, segName(s.num))
		}
	}
	if werr != nil {
		errs = append(errs, werr)
	}
	if len(kept) > 0 {
		errs = append(errs, fmt.Errorf("journal: kept the write-ahead log segments %v (a write or sync failed): the next Open recovers from them", kept))
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
	// Commits is the number of commits: fdatasyncs of the write-ahead
	// log, each making every event appended before it durable and
	// acknowledging every durable Record that was waiting, whatever the
	// number of sessions.
	Commits int64
	// Syncs is the number of sync system calls: the commits, and the
	// checkpoints' (and Close's) fdatasyncs of sessions' files and fsyncs
	// of the directory.
	Syncs int64
	// Checkpoints is the number of write-ahead log segments checkpointed
	// (their sessions' files synced, the segment removed).
	Checkpoints int64
	// Open is the number of sessions being recorded.
	Open int
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	n := len(j.open)
	j.mu.Unlock()
	return Stats{Events: j.events.Load(), Durable: j.acked.Load(), Commits: j.commits.Load(), Syncs: j.syncs.Load(),
		Checkpoints: j.checkpoints.Load(), Open: n}
}

var (
	_ session.Recorder = (*Journal)(nil)
	_ session.Archive  = (*Journal)(nil)
)
