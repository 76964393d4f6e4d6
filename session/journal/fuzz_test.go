package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

const fuzzID = "f0"

// fuzzLedger is a sealed ledger of session fuzzID, as the journal writes
// it.
func fuzzLedger(t testing.TB) []byte {
	l, err := session.NewLedger(testKey, fuzzID)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for _, ev := range script(fuzzID, "alice", t0, "select * from orders", "delete from orders") {
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

// FuzzReadJournal feeds the reader of journal files arbitrary content (the
// corpus starts from a valid ledger). It must never panic, and:
//   - Verify accepts only the ledger byte for byte: every line must be the
//     canonical encoding of its entry, and every field of every entry is
//     bound by the chain, so any other content is a *session.TamperError
//     (forging one needs the key).
//   - Recovery either leaves the file as it is or leaves a ledger that
//     verifies: the whole lines it read, then a seal.
func FuzzReadJournal(f *testing.F) {
	valid := fuzzLedger(f)
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(append([]byte{}, valid[:bytes.IndexByte(valid, '\n')+1]...), `{"sess`...))
	f.Add(bytes.Replace(valid, []byte(`"seq":3`), []byte(`"seq": 3`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := parse(bytes.NewReader(data), fuzzID)
		if err != nil {
			t.Fatal(err)
		}
		verr := lf.verify(testKey, fuzzID)
		var te *session.TamperError
		switch {
		case verr == nil && !bytes.Equal(data, valid):
			t.Fatalf("content that is not the ledger verifies:\n%q", data)
		case verr != nil && (!errors.As(verr, &te) || te.Session != fuzzID || te.Seq < 1):
			t.Fatalf("Verify = %v", verr)
		}
		summarize(fuzzID, lf, session.Filter{Subject: "alice", Table: "orders", Verdict: "block"})

		dir := t.TempDir()
		path := filepath.Join(dir, fuzzID+ext)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		j := &Journal{dir: dir, key: testKey, log: quietLog()}
		if _, err := j.Events(context.Background(), fuzzID); err != nil && !errors.As(err, &te) {
			t.Fatalf("Events = %v", err)
		}
		if err := j.recoverFile(fuzzID); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if bytes.Equal(after, data) {
			return
		}
		if err := j.Verify(context.Background(), fuzzID); err != nil {
			t.Fatalf("recovery changed the file, which does not verify: %v\n%q", err, after)
		}
		if rest := after[min(int(lf.whole), len(after)):]; !bytes.HasPrefix(after, data[:lf.whole]) ||
			bytes.IndexByte(rest, '\n') != len(rest)-1 {
			t.Fatalf("recovery did more than cut the torn line and add a seal:\n%q\n%q", data, after)
		}
	})
}

// FuzzRecoverLog feeds the write-ahead log's recovery an arbitrary segment
// (the corpus starts from a valid ledger's lines) and a session's file cut
// anywhere in that ledger, or missing. Whatever the segment holds,
// recovery writes to the file only the ledger's own lines, in order, and
// keeps the whole lines the file had: afterwards the file is as it was, or
// a prefix of whole lines of the ledger at least as long; and the segment
// is gone.
func FuzzRecoverLog(f *testing.F) {
	valid := fuzzLedger(f)
	f.Add(valid, uint16(0))
	f.Add(valid, uint16(len(valid)/2))
	f.Add(valid, uint16(0xffff))
	f.Add(valid[:len(valid)-9], uint16(100))
	f.Add(bytes.Replace(valid, []byte(`"seq":3`), []byte(`"seq": 3`), 1), uint16(0))
	f.Add(bytes.Replace(valid, []byte("orders"), []byte("ordera"), 1), uint16(40))
	f.Add(append([]byte("garbage\n"), valid...), uint16(0))
	f.Add([]byte("{}\n"), uint16(7))
	// Segments are written over zeros laid ahead (see zeroChunk).
	f.Add(append(bytes.Clone(valid), make([]byte, 300)...), uint16(40))
	f.Add(append(bytes.Clone(valid[:len(valid)-9]), make([]byte, 300)...), uint16(100))
	f.Fuzz(func(t *testing.T, log []byte, cut uint16) {
		dir := t.TempDir()
		path := filepath.Join(dir, fuzzID+ext)
		var before []byte
		missing := cut == 0xffff
		if !missing {
			before = valid[:int(cut)%(len(valid)+1)]
			if err := os.WriteFile(path, before, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, segName(1)), log, 0o600); err != nil {
			t.Fatal(err)
		}
		dirf, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer dirf.Close()
		j := &Journal{dir: dir, key: testKey, log: quietLog(), dirf: dirf}
		if last, err := j.recoverLog(); err != nil || last != 1 {
			t.Fatalf("recoverLog = %d, %v", last, err)
		}
		if segs := segmentsIn(t, dir); len(segs) != 0 {
			t.Fatalf("segments left: %v", segs)
		}
		after, err := os.ReadFile(path)
		if missing && errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !missing && bytes.Equal(after, before) {
			return
		}
		if !bytes.HasPrefix(valid, after) || len(after) == 0 || after[len(after)-1] != '\n' ||
			len(after) < bytes.LastIndexByte(before, '\n')+1 {
			t.Fatalf("recovery wrote what is not the ledger's, or lost its lines:\nfile %q\nlog  %q\nafter %q", before, log, after)
		}
	})
}
