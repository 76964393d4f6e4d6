package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	j := openT(t, dir, Options{}, hooks{})
	id := sid(1)
	evs := script(id, "alice", t0, "select * from orders", "DELETE FROM orders", "select 1")
	record(t, j, evs...)
	ctx := context.Background()

	got, err := j.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, evs) {
		t.Fatalf("Events differ from what was recorded:\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, evs))
	}
	if err := j.Verify(ctx, id); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rec, err := j.Recovered(ctx, id); err != nil || rec {
		t.Fatalf("Recovered = %v, %v; want false", rec, err)
	}

	sums, err := j.Sessions(ctx, session.Filter{})
	if err != nil || len(sums) != 1 {
		t.Fatalf("Sessions = %v, %v", sums, err)
	}
	s := sums[0]
	info := evs[0].Start.Info
	if s.ID != id || s.User != "alice" || s.Database != "shop" || s.ClientAddr != info.ClientAddr ||
		s.Upstream != "app_ro" || !s.StartedAt.Equal(t0) || !s.EndedAt.Equal(evs[len(evs)-1].Time) ||
		s.EndReason != session.EndClientExit || s.Statements != 3 || s.Refused != 1 ||
		jsonOf(t, s.Identity) != jsonOf(t, info.Identity) {
		t.Fatalf("summary: %+v", s)
	}

	// The file format: one entry a line, the seal last, the file and the
	// directory private.
	path := filepath.Join(dir, id+".jsonl")
	ls := lines(t, path)
	if len(ls) != len(evs)+1 {
		t.Fatalf("%d lines for %d events", len(ls), len(evs))
	}
	var entries []session.LedgerEntry
	for i, l := range ls {
		var e session.LedgerEntry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		if e.Session != id || e.Seq != int64(i+1) || e.Sealed != (i == len(evs)) {
			t.Fatalf("line %d: %+v", i+1, e)
		}
		entries = append(entries, e)
	}
	if err := session.VerifyLedger(testKey, id, entries); err != nil {
		t.Fatalf("VerifyLedger of the file's lines: %v", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v", st.Mode().Perm())
	}
	st := j.Stats()
	if st.Events != int64(len(evs)) || st.Durable != int64(len(evs)) || st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}

	// The session is over: its file is closed, and never reopened.
	if err := j.Record(ctx, evs[2]); err == nil {
		t.Fatal("an event after session.end was recorded")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(ctx, evs[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	j2 := openT(t, dir, Options{}, hooks{})
	if err := j2.Record(ctx, evs[0]); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("recording a session whose file exists: %v", err)
	}
	if err := j2.Verify(ctx, id); err != nil {
		t.Fatalf("Verify after reopening: %v", err)
	}
}

func TestSessionsFilter(t *testing.T) {
	j := openT(t, t.TempDir(), Options{}, hooks{})
	record(t, j, script(sid(3), "carol", t0.Add(2*time.Hour), "select * from public.invoices")...)
	record(t, j, script(sid(1), "alice", t0, "select * from orders", "delete from orders")...)
	record(t, j, script(sid(2), "bob", t0.Add(time.Hour), `SELECT * FROM "Customers" WHERE id = 1`)...)
	// A session that is still running.
	record(t, j, script(sid(4), "alice", t0.Add(3*time.Hour), "select 1")[:3]...)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    session.Filter
		want []string
	}{
		{"all, oldest first", session.Filter{}, []string{sid(1), sid(2), sid(3), sid(4)}},
		{"subject", session.Filter{Subject: "alice"}, []string{sid(1), sid(4)}},
		{"an agent of the chain", session.Filter{Subject: "agent-bob"}, []string{sid(2)}},
		{"nobody", session.Filter{Subject: "mallory"}, nil},
		{"since", session.Filter{Since: t0.Add(time.Hour)}, []string{sid(2), sid(3), sid(4)}},
		{"until", session.Filter{Until: t0.Add(time.Hour)}, []string{sid(1)}},
		{"table by SQL text", session.Filter{Table: "orders"}, []string{sid(1)}},
		{"quoted table, any case", session.Filter{Table: "customers"}, []string{sid(2)}},
		{"qualified table", session.Filter{Table: "public.invoices"}, []string{sid(3)}},
		{"a prefix is not a table", session.Filter{Table: "order"}, nil},
		{"verdict", session.Filter{Verdict: "block"}, []string{sid(1)}},
		{"verdict and subject", session.Filter{Verdict: "block", Subject: "bob"}, nil},
	} {
		sums, err := j.Sessions(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range sums {
			ids = append(ids, s.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
	sums, _ := j.Sessions(ctx, session.Filter{Since: t0.Add(3 * time.Hour)})
	if len(sums) != 1 || !sums[0].EndedAt.IsZero() || sums[0].EndReason != "" || sums[0].Statements != 1 {
		t.Fatalf("running session: %+v", sums)
	}
}

// Statement events that name their tables are matched by them, not by
// the SQL text.
func TestTouchesTables(t *testing.T) {
	st := &statementView{SQL: "select * from v", Tables: []string{"public.orders", "Audit.Log"}}
	for table, want := range map[string]bool{
		"public.orders": true, "orders": true, "ORDERS": true, "audit.log": true, "log": true,
		"other.orders": false, "v": false, "public": false, "rders": false,
	} {
		if got := touches(table, st); got != want {
			t.Errorf("touches(%q) = %v", table, got)
		}
	}
	if !touches("t", &statementView{SQL: "select t.a from t"}) || touches("t", &statementView{SQL: "select tt from x"}) {
		t.Error("the SQL fallback is wrong")
	}
}

func TestInvalidSessionIDs(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	ctx := context.Background()
	for _, id := range []string{"", "../escape", "a/b", ".hidden", "-rf", "UPPER", "a.b", "x\x00", strings.Repeat("a", 129)} {
		ev := session.Event{Kind: session.KindSessionStart, SessionID: id, Start: &session.StartEvent{}}
		if err := j.Record(ctx, ev); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Record(%q): %v", id, err)
		}
		if err := j.Verify(ctx, id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Verify(%q): %v", id, err)
		}
		if _, err := j.Events(ctx, id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Events(%q): %v", id, err)
		}
	}
	for _, name := range dirNames(t, dir) {
		if _, isSeg := parseSegName(name); name != lockName && !isSeg {
			t.Fatalf("a file was created: %s", name)
		}
	}
	if _, err := j.Events(ctx, sid(9)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Events of an unknown session: %v", err)
	}
}

func TestOneJournalPerDirectory(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	if _, err := open(dir, testKey, Options{Logger: quietLog()}, hooks{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Open: %v", err)
	}
	j.Close()
	openT(t, dir, Options{}, hooks{})
	if _, err := Open(t.TempDir(), session.Secret{}, Options{}); err == nil {
		t.Fatal("Open without a key")
	}
}

// tamperFixture records sessions a and b (sealed) and returns the journal's
// directory, the ids and the number of lines of a's file.
func tamperFixture(t *testing.T) (dir, a, b string, n int) {
	dir = t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	a, b = sid(0xa), sid(0xb)
	record(t, j, script(a, "alice", t0, "select * from orders", "delete from orders", "select 2")...)
	record(t, j, script(b, "bob", t0, "select * from orders", "delete from orders", "select 2")...)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, a, b, len(lines(t, filepath.Join(dir, a+ext)))
}

func TestTamperDetection(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// edit changes the files; Verify(a) must then name entry seq.
		edit func(t *testing.T, pa, pb string, n int) (seq int64, why string)
		key  session.Secret
		// noOpen reads the files without opening (recovering) the
		// directory: recovery seals a truncated ledger, as after a crash.
		noOpen bool
	}{
		{"one byte of an event", func(t *testing.T, pa, _ string, n int) (int64, string) {
			ls := lines(t, pa)
			ls[4] = bytes.Replace(ls[4], []byte("orders"), []byte("ordera"), 1) // line 5: the refused delete
			writeLines(t, pa, ls)
			return 5, "edited"
		}, session.Secret{}, false},
		{"one byte that breaks the JSON", func(t *testing.T, pa, _ string, n int) (int64, string) {
			b, _ := os.ReadFile(pa)
			i := bytes.Index(b, []byte(`"seq":5`))
			b[i] = '{'
			os.WriteFile(pa, b, 0o600)
			return 5, "not a ledger entry"
		}, session.Secret{}, false},
		{"a reformatted line", func(t *testing.T, pa, _ string, n int) (int64, string) {
			ls := lines(t, pa)
			ls[1] = bytes.Replace(ls[1], []byte(`"seq":2`), []byte(`"seq": 2`), 1)
			writeLines(t, pa, ls)
			return 2, "reformatted"
		}, session.Secret{}, false},
		{"a removed event", func(t *testing.T, pa, _ string, n int) (int64, string) {
			ls := lines(t, pa)
			writeLines(t, pa, append(ls[:4:4], ls[5:]...))
			return 5, "missing"
		}, session.Secret{}, false},
		{"two lines reordered", func(t *testing.T, pa, _ string, n int) (int64, string) {
			ls := lines(t, pa)
			ls[5], ls[6] = ls[6], ls[5]
			writeLines(t, pa, ls)
			return 6, "out of order"
		}, session.Secret{}, false},
		{"a duplicated line", func(t *testing.T, pa, _ string, n int) (int64, string) {
			ls := lines(t, pa)
			writeLines(t, pa, append(ls[:3:3], append([][]byte{ls[2]}, ls[3:]...)...))
			return 4, "missing or out of order"
		}, session.Secret{}, false},
		{"the seal removed", func(t *testing.T, pa, _ string, n int) (int64, string) {
			writeLines(t, pa, lines(t, pa)[:n-1])
			return int64(n), "not sealed"
		}, session.Secret{}, true},
		{"the last two lines removed", func(t *testing.T, pa, _ string, n int) (int64, string) {
			writeLines(t, pa, lines(t, pa)[:n-2])
			return int64(n - 1), "not sealed"
		}, session.Secret{}, true},
		{"cut mid-line", func(t *testing.T, pa, _ string, n int) (int64, string) {
			b, _ := os.ReadFile(pa)
			os.WriteFile(pa, b[:len(b)-10], 0o600)
			return int64(n), "torn line"
		}, session.Secret{}, true},
		{"content after the seal", func(t *testing.T, pa, _ string, n int) (int64, string) {
			f, _ := os.OpenFile(pa, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(`{"x":1}`)
			f.Close()
			return int64(n + 1), "follows the seal"
		}, session.Secret{}, false},
		{"two sessions' files swapped", func(t *testing.T, pa, pb string, n int) (int64, string) {
			tmp := pa + ".tmp"
			os.Rename(pa, tmp)
			os.Rename(pb, pa)
			os.Rename(tmp, pb)
			return 1, "belongs to session"
		}, session.Secret{}, false},
		{"a line copied from another session", func(t *testing.T, pa, pb string, n int) (int64, string) {
			la, lb := lines(t, pa), lines(t, pb)
			la[3] = lb[3]
			writeLines(t, pa, la)
			return 4, "belongs to session"
		}, session.Secret{}, false},
		{"a line from another session, renamed", func(t *testing.T, pa, pb string, n int) (int64, string) {
			la, lb := lines(t, pa), lines(t, pb)
			la[3] = bytes.ReplaceAll(lb[3], []byte(sid(0xb)), []byte(sid(0xa)))
			writeLines(t, pa, la)
			return 4, "does not follow"
		}, session.Secret{}, false},
		{"another key", func(t *testing.T, pa, pb string, n int) (int64, string) {
			return 1, "does not follow"
		}, session.NewSecret("another key"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, a, b, n := tamperFixture(t)
			seq, why := tc.edit(t, filepath.Join(dir, a+ext), filepath.Join(dir, b+ext), n)
			key := testKey
			if !tc.key.IsZero() {
				key = tc.key
			}
			// Reopening runs recovery, which must not "repair" tampering
			// (except the truncations it cannot tell from a crash: see
			// TestRecoveryCannotTellTruncationFromCrash).
			j := &Journal{dir: dir, key: key}
			if !tc.noOpen {
				var err error
				if j, err = open(dir, key, Options{Logger: quietLog()}, hooks{}); err != nil {
					t.Fatal(err)
				}
				defer j.Close()
			}
			wantTamper(t, j.Verify(ctx, a), a, seq, why)
			all, err := j.VerifyAll(ctx)
			if err != nil || len(all) != 2 {
				t.Fatalf("VerifyAll: %v %v", all, err)
			}
			wantTamper(t, all[a], a, seq, why)
		})
	}
}

// Truncating a ledger's tail while the gateway is down, then starting it,
// looks like a crash: recovery seals what is left. Recovered tells, and the
// log says what was sealed; the ledger alone cannot (see the package
// documentation).
func TestRecoveryCannotTellTruncationFromCrash(t *testing.T) {
	dir, a, _, n := tamperFixture(t)
	pa := filepath.Join(dir, a+ext)
	writeLines(t, pa, lines(t, pa)[:n-3]) // the credential release, the end and the seal
	var logged bytes.Buffer
	j := openT(t, dir, Options{Logger: slogTo(&logged)}, hooks{})
	ctx := context.Background()
	if err := j.Verify(ctx, a); err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
	if rec, err := j.Recovered(ctx, a); !rec || err != nil {
		t.Fatalf("Recovered = %v, %v", rec, err)
	}
	if !strings.Contains(logged.String(), a) || !strings.Contains(logged.String(), "entries="+itoa(n-3)) {
		t.Fatalf("recovery was not logged: %s", logged.String())
	}
}

// A crash: sessions left open, a torn last line. Open cuts the torn line,
// seals the ledgers, and every acknowledged event is there.
func TestRecoverAfterCrash(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	a, b, c := sid(1), sid(2), sid(3)
	sa := script(a, "alice", t0, "select 1", "select 2")
	sb := script(b, "bob", t0, "select 1")
	record(t, j, sa[:5]...)
	record(t, j, sb[:1]...)
	record(t, j, script(c, "carol", t0, "select 1")...) // ended: left alone
	// Abandon the journal as a crash would: Close seals nothing, so what it
	// leaves is what a crash leaves (it also lets the next Open lock the
	// directory; TestCrashRecoveryKilled kills a real process).
	j.Close()
	pa := filepath.Join(dir, a+ext)
	before, _ := os.ReadFile(pa)
	torn := []byte(`{"session":"` + a + `","seq":6,"prev":"00`)
	os.WriteFile(pa, append(before, torn...), 0o600)
	cBefore, _ := os.ReadFile(filepath.Join(dir, c+ext))
	// An empty file: the session's first write never happened.
	d := sid(4)
	os.WriteFile(filepath.Join(dir, d+ext), nil, 0o600)

	ctx := context.Background()
	wantTamper(t, (&Journal{dir: dir, key: testKey}).Verify(ctx, a), a, 6, "torn line")

	j2 := openT(t, dir, Options{}, hooks{})
	after, _ := os.ReadFile(pa)
	if !bytes.HasPrefix(after, before) || bytes.Contains(after, torn) || len(lines(t, pa)) != 6 {
		t.Fatalf("recovery did not cut the torn line and seal:\n%s", after)
	}
	for _, tc := range []struct {
		id        string
		events    []session.Event
		recovered bool
	}{{a, sa[:5], true}, {b, sb[:1], true}, {c, script(c, "carol", t0, "select 1"), false}, {d, nil, true}} {
		if err := j2.Verify(ctx, tc.id); err != nil {
			t.Errorf("Verify(%s): %v", tc.id, err)
		}
		if rec, err := j2.Recovered(ctx, tc.id); rec != tc.recovered || err != nil {
			t.Errorf("Recovered(%s) = %v, %v", tc.id, rec, err)
		}
		got, err := j2.Events(ctx, tc.id)
		if err != nil || jsonOf(t, got) != jsonOf(t, append([]session.Event{}, tc.events...)) {
			t.Errorf("Events(%s) = %d events, %v; want %d", tc.id, len(got), err, len(tc.events))
		}
	}
	if cAfter, _ := os.ReadFile(filepath.Join(dir, c+ext)); !bytes.Equal(cAfter, cBefore) {
		t.Fatal("recovery changed a sealed ledger")
	}
	sums, _ := j2.Sessions(ctx, session.Filter{Subject: "alice"})
	if len(sums) != 1 || sums[0].EndReason != "" || sums[0].Statements != 2 {
		t.Fatalf("summary of a recovered session: %+v", sums)
	}
	// Recovery is idempotent.
	j2.Close()
	j3 := openT(t, dir, Options{}, hooks{})
	if again, _ := os.ReadFile(pa); !bytes.Equal(again, after) {
		t.Fatal("a second recovery changed the file")
	}
	if err := j3.Record(ctx, sa[5]); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a recovered session was reopened: %v", err)
	}
}

// Recovery leaves alone a ledger that does not verify, whatever its tail.
func TestRecoveryLeavesTamperedLedgers(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	a := sid(1)
	record(t, j, script(a, "alice", t0, "select 1", "select 2")[:5]...)
	j.Close()
	pa := filepath.Join(dir, a+ext)
	ls := lines(t, pa)
	ls[1] = bytes.Replace(ls[1], []byte("issued"), []byte("revoked"), 1)
	writeLines(t, pa, ls)
	f, _ := os.OpenFile(pa, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"torn`)
	f.Close()
	before, _ := os.ReadFile(pa)
	j2 := openT(t, dir, Options{}, hooks{})
	if after, _ := os.ReadFile(pa); !bytes.Equal(after, before) {
		t.Fatal("recovery changed a tampered ledger")
	}
	wantTamper(t, j2.Verify(context.Background(), a), a, 2, "edited")
}

// Close seals nothing: a running session is "not sealed" until the next
// Open recovers it.
func TestCloseLeavesOpenSessionsUnsealed(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	a := sid(1)
	record(t, j, script(a, "alice", t0, "select 1")[:3]...)
	if err := j.Verify(context.Background(), a); !session.IsNotSealed(err) {
		t.Fatalf("Verify of a running session: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Verify(context.Background(), a); !session.IsNotSealed(err) {
		t.Fatalf("Verify after Close: %v", err)
	}
	j2 := openT(t, dir, Options{}, hooks{})
	if rec, err := j2.Recovered(context.Background(), a); !rec || err != nil {
		t.Fatalf("Recovered = %v, %v", rec, err)
	}
}

// A durable Record returns only once the write-ahead log is synced, and
// its line is in the log (and in its session's file) before the sync;
// other events are in the file and the log when Record returns, without a
// sync. Sessions' files are never synced on the way.
func TestDurableWaitsForSync(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var syncs, fileSyncs atomic.Int64
	var sawLog atomic.Value
	h := hooks{walSync: func(f *os.File) error {
		sawLog.Store(string(walData(t, f.Name())))
		syncs.Add(1)
		<-release
		return fdatasync(f)
	}, fileSync: func(f *os.File) error { fileSyncs.Add(1); return fdatasync(f) }}
	notDurable := func(k session.EventKind) bool { return k == session.KindSessionStart }
	j := openT(t, dir, Options{Durable: notDurable}, h)
	a := sid(1)
	evs := script(a, "alice", t0, "select 1")
	ctx := context.Background()

	returned := make(chan error, 1)
	go func() { returned <- j.Record(ctx, evs[0]) }()
	select {
	case err := <-returned:
		t.Fatalf("a durable Record returned before its sync: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(filepath.Join(dir, a+ext))
	if s, _ := sawLog.Load().(string); s != string(file) || strings.Count(s, "\n") != 1 || !strings.Contains(s, `session.start`) {
		t.Fatalf("the log at sync time: %q (the file: %q)", s, file)
	}

	// The credential event is not durable: no sync, but it is written to
	// the file and the log.
	n := syncs.Load()
	record(t, j, evs[1])
	if syncs.Load() != n {
		t.Fatal("a non-durable event was synced")
	}
	if ls := lines(t, filepath.Join(dir, a+ext)); len(ls) != 2 || !bytes.Contains(ls[1], []byte(`"credential"`)) {
		t.Fatalf("the non-durable event is not in the file when Record returns: %q", ls)
	}
	if seg := bytes.Split(bytes.TrimSuffix(walData(t, j.segPath(j.wal.cur.num)), []byte("\n")), []byte("\n")); len(seg) != 2 || !bytes.Equal(seg[1], lines(t, filepath.Join(dir, a+ext))[1]) {
		t.Fatalf("the non-durable event is not in the log when Record returns: %q", seg)
	}
	// Statements are durable whatever Durable says.
	record(t, j, evs[2])
	if syncs.Load() != n+1 {
		t.Fatal("a statement was not synced")
	}
	// So is the seal.
	record(t, j, evs[3:]...)
	if syncs.Load() != n+2 {
		t.Fatalf("%d syncs for the result, the release and the end", syncs.Load()-n-1)
	}
	if err := j.Verify(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); fileSyncs.Load() != 0 || st.Commits != syncs.Load() || st.Syncs != st.Commits {
		t.Fatalf("%d syncs of sessions' files before Close; stats %+v, %d log syncs", fileSyncs.Load(), st, syncs.Load())
	}
	// Close checkpoints: the session's file is synced, the log removed.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSyncs.Load() != 1 {
		t.Fatalf("Close synced %d files", fileSyncs.Load())
	}
	wantNoSegments(t, dir)
}

// A Record whose context ends before its sync fails.
func TestDurableRecordHonoursContext(t *testing.T) {
	release := make(chan struct{})
	j := openT(t, t.TempDir(), Options{}, hooks{walSync: func(*os.File) error { <-release; return nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := j.Record(ctx, script(sid(1), "alice", t0)[0])
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record = %v", err)
	}
}

// 32 sessions × 100 events, concurrently: every event is recorded, and the
// sessions share commits: one fdatasync of the log per commit, far fewer
// than events, and no session's file synced before Close.
func TestConcurrentSessionsShareCommits(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{{"no wait", Options{}}, {"2ms window", Options{GroupCommit: 2 * time.Millisecond}}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// A device that takes 200µs per fdatasync (the real ones run
			// in the other tests and the benchmarks).
			var walSyncs, fileSyncs atomic.Int64
			j := openT(t, dir, tc.opts, hooks{
				walSync: func(*os.File) error {
					walSyncs.Add(1)
					time.Sleep(200 * time.Microsecond)
					return nil
				},
				fileSync: func(*os.File) error { fileSyncs.Add(1); return nil },
			})
			const sessions, events = 32, 100
			sqls := make([]string, events-5) // start, two credentials, end; one result
			for i := range sqls {
				sqls[i] = "delete from t"
			}
			sqls[0] = "select 1"
			var wg sync.WaitGroup
			for s := range sessions {
				wg.Go(func() {
					for _, ev := range script(sid(s), "u", t0, sqls...) {
						if err := j.Record(context.Background(), ev); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			st := j.Stats()
			t.Logf("%+v: %.3f commits and %.3f syncs per event", st,
				float64(st.Commits)/float64(st.Events), float64(st.Syncs)/float64(st.Events))
			if st.Events != sessions*events || st.Durable != st.Events {
				t.Fatalf("stats %+v", st)
			}
			if st.Commits != walSyncs.Load() || st.Syncs != st.Commits || fileSyncs.Load() != 0 {
				t.Fatalf("stats %+v: %d fdatasyncs of the log, %d of sessions' files", st, walSyncs.Load(), fileSyncs.Load())
			}
			if st.Commits*4 > st.Durable {
				t.Fatalf("little group commit: %d commits for %d durable events", st.Commits, st.Durable)
			}
			all, err := j.VerifyAll(context.Background())
			if err != nil || len(all) != sessions {
				t.Fatalf("VerifyAll: %d sessions, %v", len(all), err)
			}
			for id, err := range all {
				if err != nil {
					t.Errorf("%s: %v", id, err)
				}
				if n := len(lines(t, filepath.Join(dir, id+ext))); n != events+1 {
					t.Errorf("%s: %d lines", id, n)
				}
			}
		})
	}
}

// Close waits for Records in progress and syncs every open file.
func TestCloseDuringRecords(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	var wg sync.WaitGroup
	var acked [8]atomic.Int64
	for s := range 8 {
		wg.Go(func() {
			for _, ev := range script(sid(s), "u", t0, make([]string, 200)...) {
				if err := j.Record(context.Background(), ev); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				acked[s].Add(1)
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	wantNoSegments(t, dir)
	j2 := openT(t, dir, Options{}, hooks{})
	for s := range 8 {
		evs, err := j2.Events(context.Background(), sid(s))
		if err != nil && acked[s].Load() > 0 {
			t.Fatal(err)
		}
		if int64(len(evs)) != acked[s].Load() {
			t.Errorf("session %d: %d events, %d acknowledged", s, len(evs), acked[s].Load())
		}
		if acked[s].Load() > 0 {
			if err := j2.Verify(context.Background(), sid(s)); err != nil {
				t.Error(err)
			}
		}
	}
}

// A reader can open the directory while a gateway records to it.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{}, hooks{})
	a, b := sid(1), sid(2)
	record(t, j, script(a, "alice", t0, "select 1")...)
	record(t, j, script(b, "bob", t0, "select 1")[:2]...)
	r, err := OpenReadOnly(dir, testKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Record(ctx, script(sid(3), "x", t0)[0]); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Record: %v", err)
	}
	all, err := r.VerifyAll(ctx)
	if err != nil || len(all) != 2 || all[a] != nil || !session.IsNotSealed(all[b]) {
		t.Fatalf("VerifyAll = %v, %v", all, err)
	}
	if sums, err := r.Sessions(ctx, session.Filter{}); err != nil || len(sums) != 2 {
		t.Fatalf("Sessions = %v, %v", sums, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(filepath.Join(dir, "nope"), testKey); err == nil {
		t.Fatal("OpenReadOnly of a missing directory")
	}
}

// The journal writes its new entries by hand (appendNewLine): the bytes
// must be json.Marshal's, which the package documents and readers expect,
// whatever the event holds.
func TestNewLineIsMarshal(t *testing.T) {
	key := session.NewSecret("line-test-key")
	tricky := []string{"select 1", `<script>&amp;</script>`, "line\u2028sep\u2029para", `quote " and \ backslash`,
		"tab\tnew\nline\r", "ünïcödé ✓ 😀", "invalid \xff\xfe utf-8", "nul \x00 byte", strings.Repeat("x", 5000)}
	for _, id := range []string{sid(1), "a", strings.Repeat("z", maxID)} {
		l, err := session.NewLedger(key, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, text := range tricky {
			ev := session.Event{Kind: session.KindStatement, SessionID: id, Time: t0.Add(time.Duration(i) * time.Nanosecond),
				Statement: &session.StatementEvent{Seq: int64(i + 1), Protocol: session.ProtocolExtended, SQL: text,
					Params: []*string{&text, nil}, Verdict: "allow", Rule: text}}
			e, err := l.Append(ev)
			if err != nil {
				t.Fatal(err)
			}
			checkNewLine(t, e)
		}
		seal, err := l.Seal()
		if err != nil {
			t.Fatal(err)
		}
		checkNewLine(t, seal)
	}
	// An id or hash that would need escaping goes through json.Marshal.
	checkNewLine(t, session.LedgerEntry{Session: `"<odd>"`, Seq: 1, Prev: "ABC", Hash: "\u2028", Event: []byte(`{"kind":"x"}`)})
}

func checkNewLine(t *testing.T, e session.LedgerEntry) {
	t.Helper()
	want, err := appendLine(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendNewLine([]byte("prefix"), e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("appendNewLine:\n%s\njson.Marshal:\n%s", got, want)
	}
}

// A Record that gave up waiting (its ctx ended) leaves its commit running:
// Close waits for that commit's end before it closes the log under it.
func TestCloseWaitsForAnAbandonedCommit(t *testing.T) {
	release := make(chan struct{})
	synced := make(chan struct{})
	j := openT(t, t.TempDir(), Options{}, hooks{walSync: func(f *os.File) error {
		<-release
		defer close(synced)
		return fdatasync(f)
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := j.Record(ctx, script(sid(1), "alice", t0)[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record = %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- j.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a commit was still syncing the log", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	select {
	case <-synced:
	default:
		t.Fatal("Close returned before the commit's fdatasync did")
	}
}
