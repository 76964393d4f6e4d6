package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The write-ahead log: every Record's lines go to its session's file and,
// the same bytes, to the current segment of one log that all sessions
// share. A commit is one fdatasync of that segment, whatever the number of
// sessions; a checkpoint syncs the sessions' files a segment covers and
// removes the segment. See the package documentation.

const (
	walPrefix = "wal-"
	walExt    = ".log"
	// syncers is the most fdatasyncs of sessions' files a checkpoint runs
	// at once.
	syncers = 8
	// zeroChunk is how far ahead of its end a segment is laid with zeros:
	// lines are written over zeros, so that a commit's fdatasync flushes
	// data and has no file size to record (on ext4, about half the cost
	// of an fdatasync after an append). Recovery reads a segment up to
	// the first line that starts with a zero byte.
	zeroChunk = 1 << 20
)

// zeros is zeroChunk zero bytes.
var zeros = make([]byte, zeroChunk)

// segName is the name of segment n: never a session's file (<id>.jsonl)
// nor the lock.
func segName(n uint64) string { return fmt.Sprintf("%s%016x%s", walPrefix, n, walExt) }

// parseSegName returns the number of the segment called name.
func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, walPrefix)
	if !ok {
		return 0, false
	}
	if hex, ok = strings.CutSuffix(hex, walExt); !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	if err != nil || segName(n) != name {
		return 0, false
	}
	return n, true
}

func (j *Journal) segPath(n uint64) string { return filepath.Join(j.dir, segName(n)) }

// segment is one file of the log.
type segment struct {
	num  uint64
	f    *os.File
	size int64 // the bytes of lines written
	// laid is how much of the file is written: lines, then zeros (see
	// zeroChunk).
	laid int64
	// ids are the sessions whose files received bytes while the segment
	// was current: the files a checkpoint of the segment syncs.
	ids map[string]struct{}
}

// wal is the log's state. Lock order: a session's file.mu, then wal.mu;
// never j.mu or a file.mu while holding wal.mu.
type wal struct {
	mu sync.Mutex
	// cur is the segment appends go to; spare, once the checkpointer has
	// created it (its directory entry synced), replaces cur at the next
	// commit.
	cur, spare *segment
	// pos is the log's length: the bytes appended since Open, across
	// segments. A Record waits for the commit that covers its end.
	pos int64
	// cpBusy is set from a checkpoint's request until its end: one
	// checkpoint at a time, segments removed in order.
	cpBusy bool
	// kept are segments a failed checkpoint (or the log's failure) left
	// for the next Open. Once one is kept, no segment is removed until
	// then: a file whose fdatasync failed may have lost pages that a later
	// fdatasync would not report.
	kept []string
	// err is set when the log broke (a failed write or fdatasync); every
	// later Record fails with it. broken mirrors it for Record's fast
	// check.
	err    error
	broken atomic.Bool
}

// createSegment creates segment j.nextSeg (0600) and syncs the directory,
// so that the segment survives a crash before any commit relies on it.
// Only Open and the checkpointer call it.
func (j *Journal) createSegment() (*segment, error) {
	n := j.nextSeg
	f, err := os.OpenFile(j.segPath(n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: creating a write-ahead log segment: %w", err)
	}
	if _, err := f.WriteAt(zeros, 0); err != nil {
		f.Close()
		os.Remove(j.segPath(n))
		return nil, fmt.Errorf("journal: creating a write-ahead log segment: %w", err)
	}
	if err := j.syncDir(); err != nil {
		f.Close()
		os.Remove(j.segPath(n))
		return nil, err
	}
	j.nextSeg++
	return &segment{num: n, f: f, laid: zeroChunk, ids: map[string]struct{}{}}, nil
}

// walErr is the log's error once it broke.
func (j *Journal) walErr() error {
	if !j.wal.broken.Load() {
		return nil
	}
	j.wal.mu.Lock()
	defer j.wal.mu.Unlock()
	return j.wal.err
}

// breakWAL marks the log broken (w.mu is not held) and returns its error.
func (j *Journal) breakWAL(err error) error {
	w := &j.wal
	w.mu.Lock()
	defer w.mu.Unlock()
	return j.breakWALLocked(err)
}

func (j *Journal) breakWALLocked(err error) error {
	w := &j.wal
	if w.err == nil {
		w.err = fmt.Errorf("journal: the write-ahead log failed; the journal is broken (every Record fails until it is reopened): %w", err)
		w.broken.Store(true)
		j.log.Error("pgwarden: the recording journal's write-ahead log failed; every later event fails", "dir", j.dir, "err", err)
	}
	return w.err
}

// walAppend appends a Record's lines (already in session id's file) to
// the current segment and returns the log position a commit must reach
// for them to be durable.
func (j *Journal) walAppend(id string, b []byte) (int64, error) {
	w := &j.wal
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	s := w.cur
	s.ids[id] = struct{}{}
	var n int
	var err error
	for s.laid < s.size+int64(len(b)) && err == nil {
		// Lay the next zeros; the next commit's fdatasync records the
		// file's new size, once per zeroChunk.
		if _, err = s.f.WriteAt(zeros, s.laid); err == nil {
			s.laid += zeroChunk
		}
	}
	switch {
	case err != nil:
	case j.hooks.walWrite != nil:
		n, err = j.hooks.walWrite(s.f, b, s.size)
	default:
		n, err = s.f.WriteAt(b, s.size)
	}
	s.size += int64(n)
	w.pos += int64(n)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(b))
	}
	if err != nil {
		// A torn line at the log's end: recovery ignores it.
		return 0, j.breakWALLocked(err)
	}
	if s.size >= j.segSize {
		j.requestCheckpoint()
	}
	return w.pos, nil
}

// requestCheckpoint asks the checkpointer for a checkpoint of the current
// segment, unless one is under way. w.mu is held.
func (j *Journal) requestCheckpoint() {
	w := &j.wal
	if w.cpBusy || w.err != nil {
		return
	}
	w.cpBusy = true
	j.cpReq <- struct{}{} // never blocks: one request per cpBusy
}

// committer runs the commits nobody waits for: the one that switches the
// log to the checkpointer's new segment (see checkpointer), and asks for a
// checkpoint every CheckpointInterval. Durable Records run their own
// commits (see awaitCommit).
func (j *Journal) committer() {
	defer close(j.done)
	tick := time.NewTicker(j.cpEvery)
	defer tick.Stop()
	for {
		select {
		case <-j.kick:
		case <-tick.C:
			w := &j.wal
			w.mu.Lock()
			if w.cur.size > 0 {
				j.requestCheckpoint()
			}
			w.mu.Unlock()
			continue
		case <-j.stop:
			// Close waited for every Record: no one is waiting.
			return
		}
		for {
			end := j.lead()
			if end == nil {
				break
			}
			<-end // a running commit ends without waiting for anyone
		}
		j.commit()
		j.endCommit()
	}
}

// gather waits up to the GroupCommit window for more durable Records,
// ending early when every open session is waiting.
func (j *Journal) gather() {
	t := time.NewTimer(j.group)
	defer t.Stop()
	for {
		j.mu.Lock()
		all := j.waiting.Load() >= int64(len(j.open))
		j.mu.Unlock()
		if all {
			return
		}
		select {
		case <-t.C:
			return
		case <-j.stop:
			return
		case <-j.arrive:
		}
	}
}

// commit makes the log durable up to its current end (one fdatasync of the
// current segment), and returns the log's error when it is broken. When
// the checkpointer has a new segment ready, commit makes it current first:
// the old segment's last commit is this one, and the checkpointer gets it.
// Only the leader of a commit calls it (see lead): one runs at a time.
func (j *Journal) commit() error {
	w := &j.wal
	w.mu.Lock()
	seg, end, err := w.cur, w.pos, w.err
	var old *segment
	if w.spare != nil && err == nil {
		old = seg
		w.cur, w.spare = w.spare, nil
	}
	w.mu.Unlock()

	// Every byte past the last commit is in seg: a segment stops being
	// current only at a commit that syncs it to its end.
	if err == nil && end > j.synced.Load() {
		j.commits.Add(1)
		j.syncs.Add(1)
		sync := fdatasync
		if j.hooks.walSync != nil {
			sync = j.hooks.walSync
		}
		if serr := sync(seg.f); serr != nil {
			// After a failed fdatasync the kernel may have dropped the
			// log's pages: nothing appended since the last commit is
			// known to be durable, and never will be.
			err = j.breakWAL(serr)
		} else {
			j.synced.Store(end)
		}
	}
	if old != nil {
		if err == nil {
			j.cpOld <- old // never blocks: the checkpointer waits for it
		} else {
			w.mu.Lock()
			w.kept = append(w.kept, segName(old.num))
			w.mu.Unlock()
			old.f.Close()
		}
	}
	return err
}

// checkpointer runs the checkpoints the committer and Records ask for:
// it creates the next segment (and syncs the directory) while commits go
// on, hands it to the committer, then checkpoints the old one.
func (j *Journal) checkpointer() {
	defer close(j.cpDone)
	w := &j.wal
	for {
		select {
		case <-j.cpReq:
		case <-j.stop:
			return
		}
		seg, err := j.createSegment()
		if err != nil {
			j.log.Error("pgwarden: the journal could not start a new write-ahead log segment; the current one grows, retrying in a second",
				"dir", j.dir, "err", err)
			select {
			case <-time.After(time.Second):
			case <-j.stop:
				return
			}
			w.mu.Lock()
			w.cpBusy = false
			if w.cur.size >= j.segSize {
				j.requestCheckpoint()
			}
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		w.spare = seg
		w.mu.Unlock()
		j.wake()
		var old *segment
		select {
		case old = <-j.cpOld:
		case <-j.stop:
			return // Close checkpoints the spare, and the old segment if the committer handed it over
		}
		j.checkpoint(old)
		w.mu.Lock()
		w.cpBusy = false
		if w.cur.size >= j.segSize {
			j.requestCheckpoint()
		}
		w.mu.Unlock()
	}
}

// checkpoint makes segment old's content durable in the sessions' files,
// then removes it: it fdatasyncs every session's file that received bytes
// while old was current (open or closed since: reopened read-only by
// path), fsyncs the directory (the files created meanwhile), removes the
// segment and fsyncs the directory again. When a sync fails, the segment
// is kept for the next Open to recover from, and the sessions whose file
// failed are broken.
func (j *Journal) checkpoint(old *segment) {
	err := j.syncSessions(old.ids)
	if err == nil {
		err = j.syncDir()
	}
	old.f.Close()
	w := &j.wal
	w.mu.Lock()
	keep := len(w.kept) > 0
	if err != nil || keep {
		w.kept = append(w.kept, segName(old.num))
	}
	w.mu.Unlock()
	if err != nil {
		j.log.Error("pgwarden: a checkpoint of the recording journal failed; its write-ahead log segment, and every later one, is kept for the next start to recover from",
			"segment", segName(old.num), "err", err)
		return
	}
	if keep {
		return
	}
	if err := os.Remove(j.segPath(old.num)); err != nil {
		j.log.Error("pgwarden: the journal could not remove a checkpointed write-ahead log segment", "err", err)
		return
	}
	j.checkpoints.Add(1)
	// Were this lost, a crash would leave a segment whose entries the
	// files already hold: recovery skips them.
	if err := j.syncDir(); err != nil {
		j.log.Warn("pgwarden: syncing the journal directory after a checkpoint failed", "err", err)
	}
}

// syncSessions fdatasyncs the files of the sessions ids, a few at a time,
// through read-only descriptors (fdatasync flushes the file, whatever the
// descriptor). A session whose file fails to sync is broken.
func (j *Journal) syncSessions(ids map[string]struct{}) error {
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	slices.Sort(list)
	errs := make([]error, len(list))
	sem := make(chan struct{}, syncers)
	var wg sync.WaitGroup
	for i, id := range list {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = j.syncSession(id)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (j *Journal) syncSession(id string) error {
	f, err := os.Open(j.path(id))
	if err != nil {
		// Removed while recorded: its content is in the log, which is
		// kept.
		j.breakSession(id, err)
		return fmt.Errorf("journal: session %s: %w", id, err)
	}
	defer f.Close()
	j.syncs.Add(1)
	if err := j.fileSync(f); err != nil {
		j.breakSession(id, err)
		j.log.Error("pgwarden: a session's recording failed", "session", id, "err", err)
		return fmt.Errorf("journal: session %s: %w", id, err)
	}
	return nil
}

// walLeft returns, once the committer and the checkpointer have stopped,
// the segments whose sessions' files Close must sync (oldest first), the
// spare segment, the segments already kept and the log's error.
func (j *Journal) walLeft() (segs []*segment, spare *segment, kept []string, err error) {
	select {
	case old := <-j.cpOld:
		segs = append(segs, old)
	default:
	}
	w := &j.wal
	w.mu.Lock()
	defer w.mu.Unlock()
	segs = append(segs, w.cur)
	return segs, w.spare, slices.Clone(w.kept), w.err
}
