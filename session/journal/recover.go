package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/pgwarden/pgwarden/session"
)

// walLine is a whole line of the write-ahead log that is a ledger entry as
// the journal writes it: the entry, and the line's bytes with its newline.
type walLine struct {
	e    session.LedgerEntry
	line []byte
}

// recoverLog restores, from the write-ahead log a previous run left (it
// crashed, or could not checkpoint), what the sessions' files lost, then
// removes the log. It returns the highest segment number it found (0:
// none). Only I/O errors are returned; content that does not verify is
// logged and never written to a file.
func (j *Journal) recoverLog() (uint64, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	var nums []uint64
	var last uint64
	for _, de := range des {
		n, ok := parseSegName(de.Name())
		if !ok {
			continue
		}
		last = max(last, n)
		if de.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return last, nil
	}
	slices.Sort(nums) // the order they were written in
	groups := map[string][]walLine{}
	for _, n := range nums {
		if err := j.readSegment(n, groups); err != nil {
			return 0, err
		}
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	changed := false
	for _, id := range ids {
		c, err := j.restoreFile(id, groups[id])
		if err != nil {
			return 0, fmt.Errorf("journal: recovering session %s from the write-ahead log: %w", id, err)
		}
		changed = changed || c
	}
	if changed {
		if err := j.dirf.Sync(); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
	}
	for _, n := range nums {
		if err := os.Remove(j.segPath(n)); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
	}
	if err := j.dirf.Sync(); err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	return last, nil
}

// readSegment adds segment n's entries to groups, by session, in order.
// A torn last line (a write cut short) or an invalid last line was never
// acknowledged: it is ignored. An invalid line before others (the disk or
// someone changed the log) is logged and skipped: the entries of the
// sessions it held cannot be restored past it, because each session's
// next entry then fails the chain check in restoreFile, while the other
// sessions' entries still can.
func (j *Journal) readSegment(n uint64, groups map[string][]walLine) error {
	name := segName(n)
	f, err := os.Open(j.segPath(n))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	type badLine struct {
		off  int64
		why  string
		size int
	}
	var bad *badLine
	for {
		line, err := readLogLine(br)
		if err == io.EOF {
			if len(line) > 0 && bad == nil {
				j.log.Info("pgwarden: ignored a torn last line of the recording journal's write-ahead log (a write cut short, never acknowledged)",
					"segment", name, "offset", off, "bytes", len(line))
				return nil
			}
			break
		}
		if err != nil {
			return fmt.Errorf("journal: reading %s: %w", name, err)
		}
		if bad != nil {
			j.log.Error("pgwarden: a line of the recording journal's write-ahead log is not a ledger entry; skipped (the entries that follow it in its session are not restored)",
				"segment", name, "offset", bad.off, "bytes", bad.size, "why", bad.why)
			bad = nil
		}
		e, why := parseLine(line[:len(line)-1])
		if why == "" && !validID(e.Session) {
			why = "names no valid session"
		}
		if why != "" {
			bad = &badLine{off: off, why: why, size: len(line)}
		} else {
			groups[e.Session] = append(groups[e.Session], walLine{e: e, line: line})
		}
		off += int64(len(line))
	}
	if bad != nil {
		j.log.Info("pgwarden: ignored an invalid last line of the recording journal's write-ahead log (never acknowledged)",
			"segment", name, "offset", bad.off, "bytes", bad.size, "why", bad.why)
	}
	return nil
}

// readLogLine reads a segment's next line, with its "\n". A segment's
// lines are written over zeros (see zeroChunk): its written part ends at
// the first zero byte, and readLogLine then returns io.EOF, with the bytes
// of the line before the zero (a write cut short) if any.
func readLogLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			return append(line, chunk[:i]...), io.EOF
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// restoreFile restores session id's file from its log lines wl (in
// order): it keeps the file's verified prefix (its whole lines that are
// ledger entries as the journal writes them and verify, in order, with
// the key), cuts what follows (a torn tail, or what a power loss left of
// writes it did not sync), and appends, byte for byte, the log's lines
// that continue the chain, stopping at the first that does not verify. A
// missing file is created. It reports whether it changed the file (which
// it synced).
//
// Only the part of a file written since its last checkpoint can have been
// lost, and the log holds all of it; so a file whose verified prefix stops
// before the log's first entry of the session was changed by someone (cut,
// edited, removed): it is left as it is, and logged.
func (j *Journal) restoreFile(id string, wl []walLine) (bool, error) {
	path := j.path(id)
	first := wl[0].e.Seq
	var entries []session.LedgerEntry
	var size int64
	var fd *os.File
	st, err := os.Lstat(path)
	switch {
	case err == nil && !st.Mode().IsRegular():
		j.log.Error("pgwarden: a recorded session's file is not a regular file; left as it is", "session", id)
		return false, nil
	case err == nil:
		if fd, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			return false, err
		}
		defer fd.Close()
		lf, err := parse(fd, id)
		if err != nil {
			return false, err
		}
		if st, err = fd.Stat(); err != nil {
			return false, err
		}
		entries, size = lf.entries, st.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	n := verifiedPrefix(j.key, id, entries)
	var off int64
	for _, e := range entries[:n] {
		b, err := json.Marshal(e)
		if err != nil {
			return false, err
		}
		off += int64(len(b)) + 1 // parse read it as exactly these bytes
	}
	if int64(n)+1 < first {
		j.log.Error("pgwarden: a recorded session's file stops verifying before what the write-ahead log holds of it (it was changed); left as it is",
			"session", id, "verified_entries", n, "log_from_entry", first, "exists", fd != nil)
		return false, nil
	}
	if n > 0 && entries[n-1].Sealed {
		return false, nil // complete; anything after the seal is not the log's to judge
	}
	var cand []walLine
	for _, l := range wl {
		if l.e.Seq > int64(n) {
			cand = append(cand, l)
			if l.e.Sealed {
				break
			}
		}
	}
	keep := len(cand)
	if keep > 0 {
		chain := slices.Clip(entries[:n])
		for _, l := range cand {
			chain = append(chain, l.e)
		}
		if verr := session.VerifyLedger(j.key, id, chain); verr != nil && !session.IsNotSealed(verr) {
			keep = 0
			var te *session.TamperError
			if errors.As(verr, &te) {
				keep = max(0, min(len(cand), int(te.Seq)-1-n))
			}
			j.log.Error("pgwarden: an entry of the recording journal's write-ahead log does not verify; it and what follows are not restored",
				"session", id, "err", verr)
		}
	}
	if keep == 0 && (len(cand) > 0 || size == off) {
		// Nothing to restore; a file whose log entries do not verify is
		// not cut either (the next step seals or reports it).
		return false, nil
	}
	created := fd == nil
	if created {
		if fd, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return false, err
		}
		defer fd.Close()
	}
	if size > off {
		if err := fd.Truncate(off); err != nil {
			return false, err
		}
	}
	var buf []byte
	for _, l := range cand[:keep] {
		buf = append(buf, l.line...)
	}
	if _, err := fd.WriteAt(buf, off); err != nil {
		return false, err
	}
	if err := j.fileSync(fd); err != nil {
		return false, err
	}
	j.log.Warn("pgwarden: restored a recorded session's file from the write-ahead log (the gateway stopped without closing the journal)",
		"session", id, "kept_entries", n, "restored_entries", keep, "cut_bytes", size-off, "created", created)
	return true, nil
}

// verifiedPrefix is the number of entries, from the first, that verify as
// session id's ledger with key.
func verifiedPrefix(key session.Secret, id string, entries []session.LedgerEntry) int {
	err := session.VerifyLedger(key, id, entries)
	if err == nil || session.IsNotSealed(err) {
		return len(entries)
	}
	var te *session.TamperError
	if errors.As(err, &te) && te.Seq >= 1 {
		return min(int(te.Seq)-1, len(entries))
	}
	return 0
}
