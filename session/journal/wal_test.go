package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// ledgerBytes are the bytes a journal writes for evs, followed by a seal:
// the file of a session that ended with evs, or of one recovery sealed
// after them.
func ledgerBytes(t testing.TB, id string, evs []session.Event) []byte {
	t.Helper()
	l, err := session.NewLedger(testKey, id)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for _, ev := range evs {
		e, err := l.Append(ev)
		if err != nil {
			t.Fatal(err)
		}
		buf, _ = appendLine(buf, e)
	}
	seal, _ := l.Seal()
	buf, _ = appendLine(buf, seal)
	return buf
}

// statementsOnly makes only statements (and the seal) durable, as the
// example gateway does.
func statementsOnly(session.EventKind) bool { return false }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond for up to 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkpointNow checkpoints the current segment and waits for the
// checkpoint's end.
func checkpointNow(t testing.TB, j *Journal) {
	t.Helper()
	n := j.Stats().Checkpoints
	j.wal.mu.Lock()
	j.requestCheckpoint()
	j.wal.mu.Unlock()
	waitFor(t, "the checkpoint", func() bool { return j.Stats().Checkpoints > n })
}

// queued is the number of durable Records waiting for a commit, beside
// the one leading the running commit (the tests' commits are Records').
func queued(j *Journal) int {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	n := int(j.waiting.Load())
	if j.committing {
		n--
	}
	return n
}

func TestSegmentNames(t *testing.T) {
	for _, n := range []uint64{0, 1, 0xabc, 1<<64 - 1} {
		name := segName(n)
		if got, ok := parseSegName(name); !ok || got != n {
			t.Errorf("parseSegName(%q) = %d, %v", name, got, ok)
		}
		if strings.HasSuffix(name, ext) || name == lockName || validID(strings.TrimSuffix(name, ext)) && strings.HasSuffix(name, ext) {
			t.Errorf("%s could be a session's file", name)
		}
	}
	for _, name := range []string{"wal-1.log", "wal-000000000000000G.log", "wal-00000000000000AB.log", "wal-0000000000000001.jsonl",
		"xwal-0000000000000001.log", "wal-0000000000000001.log.tmp", lockName, sid(1) + ext} {
		if _, ok := parseSegName(name); ok {
			t.Errorf("%q parsed as a segment", name)
		}
	}
}

// Sessions that record concurrently share a commit: while one commit's
// fdatasync runs, the durable Records of 7 other sessions queue, and the
// next commit acknowledges all 7 with exactly one fdatasync of the log.
func TestOneSyncPerBatch(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var walSyncs, fileSyncs atomic.Int64
	j := openT(t, dir, Options{Durable: statementsOnly}, hooks{
		walSync: func(f *os.File) error {
			if walSyncs.Add(1) == 1 {
				<-release
			}
			return fdatasync(f)
		},
		fileSync: func(f *os.File) error { fileSyncs.Add(1); return fdatasync(f) },
	})
	const sessions = 8
	evs := make([][]session.Event, sessions)
	for s := range sessions {
		evs[s] = script(sid(s), "u", t0, "select 1")
		record(t, j, evs[s][:2]...) // start, credential: not durable, no commit
	}
	if n := walSyncs.Load(); n != 0 {
		t.Fatalf("%d commits for events that are not durable", n)
	}
	errs := make(chan error, sessions)
	go func() { errs <- j.Record(context.Background(), evs[0][2]) }()
	waitFor(t, "the first commit", func() bool { return walSyncs.Load() == 1 })
	for s := 1; s < sessions; s++ {
		go func() { errs <- j.Record(context.Background(), evs[s][2]) }()
	}
	waitFor(t, "7 durable Records to queue", func() bool { return queued(j) == sessions-1 })
	if n := walSyncs.Load(); n != 1 {
		t.Fatalf("%d commits while the first one runs", n)
	}
	close(release)
	for range sessions {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := j.Stats()
	if walSyncs.Load() != 2 || st.Commits != 2 || st.Syncs != 2 || st.Durable != sessions || fileSyncs.Load() != 0 {
		t.Fatalf("%d fdatasyncs of the log and %d of files for two batches; stats %+v", walSyncs.Load(), fileSyncs.Load(), st)
	}
}

// The same with real fdatasyncs and no choreography: 8 sessions × 25
// statements share commits, one fdatasync of the log each (never two at
// once).
func TestSharedCommitsRealSync(t *testing.T) {
	dir := t.TempDir()
	var walSyncs, inSync, overlap atomic.Int64
	// A short window: a commit waits for every session (or 5ms).
	j := openT(t, dir, Options{GroupCommit: 5 * time.Millisecond}, hooks{walSync: func(f *os.File) error {
		walSyncs.Add(1)
		if inSync.Add(1) > 1 {
			overlap.Add(1)
		}
		defer inSync.Add(-1)
		return fdatasync(f)
	}})
	const sessions, statements = 8, 25
	var wg sync.WaitGroup
	for s := range sessions {
		record(t, j, script(sid(s), "u", t0)[0])
		wg.Go(func() {
			for i := range statements {
				ev := session.Event{Kind: session.KindStatement, SessionID: sid(s), Time: t0,
					Statement: &session.StatementEvent{Seq: int64(i + 1), SQL: "select 1", Verdict: "allow"}}
				if err := j.Record(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := j.Stats()
	n := walSyncs.Load()
	t.Logf("%d statements of %d sessions: %d commits (%.2f fdatasyncs per statement)", sessions*statements, sessions, n,
		float64(n-sessions)/float64(sessions*statements))
	if st.Commits != n || st.Syncs != n || overlap.Load() != 0 {
		t.Fatalf("stats %+v, %d fdatasyncs of the log, %d overlapping", st, n, overlap.Load())
	}
	if n-sessions > sessions*statements/3 {
		t.Fatalf("%d commits for %d statements of %d concurrent sessions", n-sessions, sessions*statements, sessions)
	}
}

// A power loss: events acknowledged, the journal never closed, and the
// sessions' files lose what was not synced (deleted, cut at a line, cut
// mid-line, their tail zeroed) while the log keeps what its commits
// synced. Open restores every acknowledged event: each file is byte for
// byte the file of a run that never crashed (sealed by recovery where the
// session was still open).
func TestPowerLossRestoresFromTheLog(t *testing.T) {
	sqls := []string{"select 1", "delete from orders", "select 2", "select 3"}
	scripts := map[string][]session.Event{}
	recorded := map[string]int{ // events recorded of each session
		sid(1): -1, // all: sealed; its file is lost
		sid(2): 9,  // cut back to 4 lines
		sid(3): 7,  // cut mid-line 6
		sid(4): 8,  // lines 7 and 8 zeroed
		sid(5): -1, // untouched
		sid(6): 5,  // untouched
		sid(7): 1,  // lost: the file was created, then the directory lost it
	}
	for id, n := range recorded {
		scripts[id] = script(id, "alice", t0, sqls...)
		if n < 0 {
			recorded[id] = len(scripts[id])
		}
	}
	run := func(dir string) *Journal {
		var logged bytes.Buffer
		j := openT(t, dir, Options{Durable: statementsOnly, Logger: slogTo(&logged)}, hooks{})
		var wg sync.WaitGroup
		for id, evs := range scripts {
			wg.Go(func() { record(t, j, evs[:recorded[id]]...) })
		}
		wg.Wait()
		return j
	}

	// The run that never crashed, closed and opened again (which seals the
	// sessions still open).
	ref := t.TempDir()
	if err := run(ref).Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, ref, Options{}, hooks{}).Close()

	dir := t.TempDir()
	j := run(dir)
	segs := segmentsIn(t, dir)
	crash(t, j)
	path := func(n int) string { return filepath.Join(dir, sid(n)+ext) }
	os.Remove(path(1))
	os.Remove(path(7))
	writeLines(t, path(2), lines(t, path(2))[:4])
	b3 := readFile(t, path(3))
	l3 := lines(t, path(3))
	cut := len(bytes.Join(l3[:5], []byte("\n"))) + 1 + len(l3[5])/2
	os.WriteFile(path(3), b3[:cut], 0o600)
	b4 := readFile(t, path(4))
	l4 := lines(t, path(4))
	at := len(b4) - len(l4[7]) - len(l4[6]) - 2
	os.WriteFile(path(4), append(b4[:at:at], make([]byte, len(b4)-at)...), 0o600)

	var logged bytes.Buffer
	j2 := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
	ctx := context.Background()
	for id, evs := range scripts {
		got := readFile(t, filepath.Join(dir, id+ext))
		if want := readFile(t, filepath.Join(ref, id+ext)); !bytes.Equal(got, want) {
			t.Errorf("session %s after recovery:\n%s\nwant\n%s", id, got, want)
		}
		if want := ledgerBytes(t, id, evs[:recorded[id]]); !bytes.Equal(got, want) {
			t.Errorf("session %s is not its ledger", id)
		}
		if err := j2.Verify(ctx, id); err != nil {
			t.Errorf("Verify(%s): %v", id, err)
		}
		if got, err := j2.Events(ctx, id); err != nil || jsonOf(t, got) != jsonOf(t, evs[:recorded[id]]) {
			t.Errorf("Events(%s): %d events, %v", id, len(got), err)
		}
	}
	for _, n := range []int{1, 2, 3, 4, 7} {
		if !strings.Contains(logged.String(), "session="+sid(n)) {
			t.Errorf("the restoration of session %d was not logged:\n%s", n, logged.String())
		}
	}
	for _, s := range segs {
		if _, err := os.Stat(filepath.Join(dir, s)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("segment %s survived recovery: %v", s, err)
		}
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	wantNoSegments(t, dir)
}

// The log's torn or invalid last line (a write cut short, never
// acknowledged) is ignored; the whole lines before it are restored.
func TestTornLogTail(t *testing.T) {
	a := sid(1)
	evs := script(a, "alice", t0, "select 1", "select 2", "select 3")
	next := ledgerBytes(t, a, evs[:7]) // line 7 is the next entry
	line7 := bytes.SplitAfter(next, []byte("\n"))[6]
	for _, tail := range []struct{ name, bytes string }{
		{"torn", string(line7[:len(line7)/2])},
		{"zeroed", strings.Repeat("\x00", len(line7)-1) + "\n"},
		{"edited", strings.Replace(string(line7), "select 3", "select 4", 1)},
	} {
		t.Run(tail.name, func(t *testing.T) {
			dir := t.TempDir()
			j := openT(t, dir, Options{}, hooks{})
			record(t, j, evs[:6]...)
			seg := j.segPath(j.wal.cur.num)
			crash(t, j)
			f, _ := os.OpenFile(seg, os.O_WRONLY, 0)
			f.WriteAt([]byte(tail.bytes), int64(len(walData(t, seg))))
			f.Close()
			pa := filepath.Join(dir, a+ext)
			writeLines(t, pa, lines(t, pa)[:2])

			var logged bytes.Buffer
			j2 := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
			if got, want := readFile(t, pa), ledgerBytes(t, a, evs[:6]); !bytes.Equal(got, want) {
				t.Fatalf("after recovery:\n%s\nwant\n%s", got, want)
			}
			if err := j2.Verify(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			// Zeros are where the log was not written yet: nothing to log.
			if tail.name == "torn" && !strings.Contains(logged.String(), "last line") {
				t.Fatalf("the ignored line was not logged:\n%s", logged.String())
			}
		})
	}
}

// A line of the log that is not what the journal wrote is never written to
// a session's file: an edited entry (it does not verify) stops its
// session's restoration there; a line that is not an entry, in the
// middle, is skipped (the other sessions' entries after it are restored);
// an entry forged for a session that has no file creates none.
func TestForgedLogLines(t *testing.T) {
	dir := t.TempDir()
	a, b, z := sid(1), sid(2), sid(3)
	sa := script(a, "alice", t0, "select 1", "select 2", "select 3")
	sb := script(b, "bob", t0, "select 1", "select 2", "select 3")
	j := openT(t, dir, Options{}, hooks{})
	record(t, j, sa[:8]...)
	seg := j.segPath(j.wal.cur.num)
	split := len(walData(t, seg)) // a's lines, then b's
	record(t, j, sb[:8]...)
	crash(t, j)

	log := walData(t, seg)
	head, tail := bytes.Clone(log[:split]), log[split:]
	ls := bytes.SplitAfter(head, []byte("\n"))
	if !bytes.Contains(ls[4], []byte(`"seq":5`)) || !bytes.Contains(ls[4], []byte("select 2")) {
		t.Fatalf("line 5 of the log: %s", ls[4])
	}
	ls[4] = bytes.Replace(ls[4], []byte("select 2"), []byte("select 9"), 1) // canonical, but edited
	forged, _ := appendLine(nil, session.LedgerEntry{Session: z, Seq: 1, Prev: strings.Repeat("0", 64),
		Hash: strings.Repeat("1", 64), Event: json.RawMessage(`{"kind":"session.start"}`)})
	edited := slices.Concat(bytes.Join(ls, nil), []byte("{\"not\": \"an entry\"}\n"), forged, tail)
	if err := os.WriteFile(seg, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	pa, pb := filepath.Join(dir, a+ext), filepath.Join(dir, b+ext)
	writeLines(t, pa, lines(t, pa)[:3])
	os.Remove(pb)

	var logged bytes.Buffer
	j2 := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
	ctx := context.Background()
	// a: line 4 restored, the edited line 5 (and what follows) not; sealed.
	if got, want := readFile(t, pa), ledgerBytes(t, a, sa[:4]); !bytes.Equal(got, want) {
		t.Fatalf("session a:\n%s\nwant\n%s", got, want)
	}
	if rec, err := j2.Recovered(ctx, a); !rec || err != nil {
		t.Fatalf("Recovered(a) = %v, %v", rec, err)
	}
	// b: restored whole, after the line that is not an entry.
	if got, want := readFile(t, pb), ledgerBytes(t, b, sb[:8]); !bytes.Equal(got, want) {
		t.Fatalf("session b:\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, z+ext)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a forged entry created a file: %v", err)
	}
	for _, want := range []string{"does not verify", "session=" + z, "not a ledger entry; skipped"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logged.String())
		}
	}
}

// Checkpoints: with tiny segments the log rotates again and again; old
// segments are removed once the files they cover are synced (a session's
// file too when the session ended and its file was closed meanwhile), at
// most two segments exist at a time, everything stays readable, and Close
// leaves no segment.
func TestCheckpointRotation(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	synced := map[string]int{}
	j := openT(t, dir, Options{WALSegmentSize: 4 << 10}, hooks{fileSync: func(f *os.File) error {
		mu.Lock()
		synced[filepath.Base(f.Name())]++
		mu.Unlock()
		return fdatasync(f)
	}})
	ctx := context.Background()
	// A session that ends at once: its file is closed before any
	// checkpoint of its segment.
	first := script(sid(0), "u", t0, "select 1")
	record(t, j, first...)

	var maxSegs atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(len(segmentsIn(t, dir))); n > maxSegs.Load() {
				maxSegs.Store(n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	sqls := make([]string, 30)
	for i := range sqls {
		sqls[i] = "select * from orders where id = " + itoa(i)
	}
	var wg sync.WaitGroup
	for s := 1; s <= 6; s++ {
		wg.Go(func() {
			evs := script(sid(s), "u", t0, sqls...)
			if s%2 == 0 {
				evs = evs[:40] // left open
			}
			for _, ev := range evs {
				if err := j.Record(ctx, ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "a few checkpoints", func() bool { return j.Stats().Checkpoints >= 3 })
	close(stop)
	watch.Wait()
	st := j.Stats()
	t.Logf("stats %+v; at most %d segments at a time", st, maxSegs.Load())
	if maxSegs.Load() > 2 {
		t.Fatalf("%d segments at once", maxSegs.Load())
	}
	mu.Lock()
	n0 := synced[sid(0)+ext]
	mu.Unlock()
	if n0 != 1 {
		t.Fatalf("the closed session's file was synced %d times by the checkpoints", n0)
	}
	all, err := j.VerifyAll(ctx)
	if err != nil || len(all) != 7 {
		t.Fatalf("VerifyAll = %v, %v", all, err)
	}
	for id, err := range all {
		if open := strings.HasSuffix(id, "2") || strings.HasSuffix(id, "4") || strings.HasSuffix(id, "6"); open != session.IsNotSealed(err) || !open && err != nil {
			t.Errorf("Verify(%s) = %v", id, err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wantNoSegments(t, dir)
	j2 := openT(t, dir, Options{}, hooks{})
	for s := 1; s <= 6; s++ {
		if err := j2.Verify(ctx, sid(s)); err != nil {
			t.Errorf("Verify(%s) after reopening: %v", sid(s), err)
		}
	}
}

// A segment that holds events is checkpointed after CheckpointInterval
// even when it is small.
func TestCheckpointInterval(t *testing.T) {
	dir := t.TempDir()
	var files atomic.Int64
	j := openT(t, dir, Options{CheckpointInterval: 20 * time.Millisecond}, hooks{fileSync: func(f *os.File) error {
		files.Add(1)
		return fdatasync(f)
	}})
	first := segmentsIn(t, dir)
	record(t, j, script(sid(1), "u", t0)[:2]...)
	waitFor(t, "a checkpoint", func() bool { return j.Stats().Checkpoints >= 1 })
	if files.Load() != 1 {
		t.Fatalf("%d files synced", files.Load())
	}
	if segs := segmentsIn(t, dir); len(segs) != 1 || slices.Equal(segs, first) {
		t.Fatalf("segments %v, then %v", first, segs)
	}
	// An empty segment is not checkpointed.
	time.Sleep(100 * time.Millisecond)
	if n := j.Stats().Checkpoints; n != 1 {
		t.Fatalf("%d checkpoints of an empty segment", n-1)
	}
}

// After checkpoints, a crash: the files lose what they received since they
// were last synced, and the log's remaining segments restore it. A file
// cut before what the log holds of its session was changed by someone:
// recovery does not restore it (and logs it).
func TestRecoveryAfterCheckpoints(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	sqls := make([]string, 25)
	for i := range sqls {
		sqls[i] = "select " + itoa(i)
	}
	const sessions = 4
	evs := make([][]session.Event, sessions)
	for s := range sessions {
		evs[s] = script(sid(s), "u", t0, sqls...)[:45]
	}
	for _, part := range [][2]int{{0, 35}, {35, 45}} {
		var wg sync.WaitGroup
		for s := range sessions {
			wg.Go(func() { record(t, j, evs[s][part[0]:part[1]]...) })
		}
		wg.Wait()
		if part[0] == 0 {
			checkpointNow(t, j)
		}
	}
	crash(t, j)
	segs := segmentsIn(t, dir)

	// What the log still holds: the first entry of each session.
	firstInLog := map[string]int64{}
	for _, s := range segs {
		for _, l := range bytes.SplitAfter(readFile(t, filepath.Join(dir, s)), []byte("\n")) {
			if e, why := parseLine(bytes.TrimSuffix(l, []byte("\n"))); why == "" {
				if _, ok := firstInLog[e.Session]; !ok {
					firstInLog[e.Session] = e.Seq
				}
			}
		}
	}
	t.Logf("segments %v; first entries in the log %v", segs, firstInLog)
	if len(firstInLog) != sessions || firstInLog[sid(0)] != 36 {
		t.Fatalf("the log holds %v; want what followed the checkpoint", firstInLog)
	}
	tampered := ""
	for s := range sessions {
		id := sid(s)
		first, ok := firstInLog[id]
		if !ok {
			continue
		}
		p := filepath.Join(dir, id+ext)
		keep := int(first - 1) // what the checkpoints synced
		if tampered == "" && first > 2 {
			tampered, keep = id, int(first-2)
		}
		writeLines(t, p, lines(t, p)[:keep])
	}
	if len(firstInLog) == 0 {
		t.Fatal("the log holds nothing")
	}
	var logged bytes.Buffer
	j2 := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
	for s := range sessions {
		id := sid(s)
		got := readFile(t, filepath.Join(dir, id+ext))
		if id == tampered {
			if want := ledgerBytes(t, id, evs[s][:firstInLog[id]-2]); !bytes.Equal(got, want) {
				t.Errorf("the changed file of %s was restored", id)
			}
			if !strings.Contains(logged.String(), "stops verifying before what the write-ahead log holds") {
				t.Errorf("the changed file was not logged:\n%s", logged.String())
			}
			continue
		}
		if want := ledgerBytes(t, id, evs[s]); !bytes.Equal(got, want) {
			t.Errorf("session %s:\n%s\nwant\n%s", id, got, want)
		}
		if err := j2.Verify(context.Background(), id); err != nil {
			t.Error(err)
		}
	}
}

// A failed fdatasync of a session's file at a checkpoint breaks that
// session (its later events fail), not the others; the segment is kept
// (Close says so), and the next Open recovers from it.
func TestCheckpointSyncFailureBreaksTheSession(t *testing.T) {
	dir := t.TempDir()
	a, b := sid(1), sid(2)
	eio := errors.New("EIO")
	j := openT(t, dir, Options{WALSegmentSize: 1}, hooks{fileSync: func(f *os.File) error {
		if strings.Contains(f.Name(), a) {
			return eio
		}
		return fdatasync(f)
	}})
	sa, sb := script(a, "alice", t0, "select 1"), script(b, "bob", t0, "select 1")
	ctx := context.Background()
	record(t, j, sa[0])
	waitFor(t, "the failed checkpoint", func() bool {
		j.wal.mu.Lock()
		defer j.wal.mu.Unlock()
		return len(j.wal.kept) > 0
	})
	for _, ev := range sa[1:] {
		if err := j.Record(ctx, ev); !errors.Is(err, eio) {
			t.Fatalf("Record on a broken file: %v", err)
		}
	}
	record(t, j, sb...)
	if j.Stats().Open != 0 {
		t.Fatalf("the broken session is still open: %+v", j.Stats())
	}
	err := j.Close()
	if err == nil || !strings.Contains(err.Error(), "kept the write-ahead log segments") {
		t.Fatalf("Close = %v", err)
	}
	if len(segmentsIn(t, dir)) == 0 {
		t.Fatal("no segment was kept")
	}
	j2 := openT(t, dir, Options{}, hooks{})
	for _, id := range []string{a, b} {
		if err := j2.Verify(ctx, id); err != nil {
			t.Fatalf("Verify(%s): %v", id, err)
		}
	}
	if rec, _ := j2.Recovered(ctx, a); !rec {
		t.Fatal("the broken session was not recovered")
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	wantNoSegments(t, dir)
}

// A failed write or fdatasync of the log fails the Records waiting for it
// and breaks the journal: every later Record fails, whatever its session
// (fail closed). Close keeps the log; the next Open recovers every file.
func TestLogFailureBreaksTheJournal(t *testing.T) {
	eio := errors.New("EIO")
	for _, tc := range []struct {
		name string
		h    func(fail *atomic.Bool) hooks
	}{
		{"fdatasync", func(fail *atomic.Bool) hooks {
			return hooks{walSync: func(f *os.File) error {
				if fail.Load() {
					return eio
				}
				return fdatasync(f)
			}}
		}},
		{"write", func(fail *atomic.Bool) hooks {
			return hooks{walWrite: func(f *os.File, b []byte, off int64) (int, error) {
				if fail.Load() {
					n, _ := f.WriteAt(b[:len(b)/2], off)
					return n, eio
				}
				return f.WriteAt(b, off)
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var fail atomic.Bool
			j := openT(t, dir, Options{Durable: statementsOnly}, tc.h(&fail))
			a, b := sid(1), sid(2)
			sa, sb := script(a, "alice", t0, "select 1"), script(b, "bob", t0, "select 1")
			ctx := context.Background()
			record(t, j, sa[:2]...)
			record(t, j, sb[:2]...)
			fail.Store(true)
			if err := j.Record(ctx, sa[2]); !errors.Is(err, eio) { // a statement
				t.Fatalf("Record with a failing log: %v", err)
			}
			fail.Store(false)
			for _, ev := range []session.Event{sa[3], sb[2], sb[3], script(sid(3), "carol", t0)[0]} {
				if err := j.Record(ctx, ev); !errors.Is(err, eio) {
					t.Fatalf("Record %s of %s after the log failed: %v", ev.Kind, ev.SessionID, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, sid(3)+ext)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a broken journal created a file")
			}
			if err := j.Close(); !errors.Is(err, eio) {
				t.Fatalf("Close = %v", err)
			}
			if len(segmentsIn(t, dir)) == 0 {
				t.Fatal("Close removed the log of a broken journal")
			}
			j2 := openT(t, dir, Options{}, hooks{})
			for id, evs := range map[string][]session.Event{a: sa[:2], b: sb[:2]} {
				if err := j2.Verify(ctx, id); err != nil {
					t.Errorf("Verify(%s): %v", id, err)
				}
				got, err := j2.Events(ctx, id)
				// The event whose Record failed may be there (it was
				// written to the file): it is not known to be durable.
				if err != nil || len(got) < len(evs) || jsonOf(t, got[:len(evs)]) != jsonOf(t, evs) {
					t.Errorf("Events(%s) = %d events, %v", id, len(got), err)
				}
			}
		})
	}
}

// A segment is written over zeros laid a chunk at a time: lines that cross
// from one chunk into the next, across several chunks, are all recovered,
// and the zeros after the last line are the log's end, not a torn line.
func TestLogAcrossZeroChunks(t *testing.T) {
	dir := t.TempDir()
	a := sid(1)
	big := strings.Repeat("x", zeroChunk/3+17) // three lines and a bit per chunk
	sqls := make([]string, 10)
	for i := range sqls {
		sqls[i] = fmt.Sprintf("select %d, '%s'", i, big)
	}
	evs := script(a, "alice", t0, sqls...)
	j := openT(t, dir, Options{}, hooks{})
	seg := j.segPath(j.wal.cur.num)
	record(t, j, evs[:len(evs)-1]...) // all but the end: the session is open
	crash(t, j)
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	data := walData(t, seg)
	if st.Size() <= zeroChunk || st.Size()%zeroChunk != 0 || st.Size()-int64(len(data)) > zeroChunk {
		t.Fatalf("segment of %d bytes for %d bytes of lines: zeros not laid a chunk at a time", st.Size(), len(data))
	}
	pa := filepath.Join(dir, a+ext)
	writeLines(t, pa, lines(t, pa)[:1]) // what a power loss could leave

	var logged bytes.Buffer
	j2 := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
	// Every event is back, and the session, left open, was sealed.
	want := ledgerBytes(t, a, evs[:len(evs)-1])
	if got := readFile(t, pa); !bytes.HasPrefix(got, want) || bytes.Count(got, []byte("\n")) != len(evs) {
		t.Fatalf("after recovery: %d bytes (%d lines), want the %d bytes of %d events and a seal",
			len(got), bytes.Count(got, []byte("\n")), len(want), len(evs)-1)
	}
	for _, damaged := range []string{"torn last line", "invalid last line", "not a ledger entry"} {
		if strings.Contains(logged.String(), damaged) {
			t.Fatalf("recovery took the zeros for a damaged line:\n%s", logged.String())
		}
	}
	if err := j2.Verify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}
