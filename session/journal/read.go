package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// ledgerFile is a session's file as read: the entries of its whole lines,
// up to the first line that is not an entry as the journal writes it.
type ledgerFile struct {
	entries []session.LedgerEntry
	// bad is the first whole line that is not a ledger entry in the
	// journal's canonical form; reading stopped there.
	bad *session.TamperError
	// whole is the length of the whole lines read; tail is the length of
	// a last line without its newline (a torn write).
	whole int64
	tail  int
}

// parse reads a session's file. It never fails on content, only on I/O:
// content it cannot read is reported in bad or tail. Every line must be
// exactly json.Marshal of the entry it decodes to, so that any change to
// the bytes of a file is a change to an entry's fields (which
// VerifyLedger detects), never a reformatting that passes unnoticed.
func parse(r io.Reader, id string) (*ledgerFile, error) {
	lf := &ledgerFile{}
	br := bufio.NewReaderSize(r, 64<<10)
	for seq := int64(1); ; seq++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			lf.tail = len(line)
			return lf, nil
		}
		if err != nil {
			return nil, err
		}
		e, why := parseLine(line[:len(line)-1])
		if why != "" {
			lf.bad = &session.TamperError{Session: id, Seq: seq, Reason: why}
			return lf, nil
		}
		lf.entries = append(lf.entries, e)
		lf.whole += int64(len(line))
	}
}

// parseLine decodes a line (without its newline) that must be exactly
// json.Marshal of a ledger entry; why says what is wrong with it, if
// anything.
func parseLine(body []byte) (e session.LedgerEntry, why string) {
	if err := json.Unmarshal(body, &e); err != nil {
		return e, "not a ledger entry: " + err.Error()
	}
	if canon, err := json.Marshal(e); err != nil || !bytes.Equal(canon, body) {
		return e, "not a ledger entry as the journal writes it (edited or reformatted)"
	}
	return e, ""
}

// verify checks a parsed file: nil when it is intact and sealed.
func (lf *ledgerFile) verify(key session.Secret, id string) error {
	err := session.VerifyLedger(key, id, lf.entries)
	if err != nil && !session.IsNotSealed(err) {
		return err // an entry before any unreadable line is wrong
	}
	if lf.bad != nil {
		return lf.bad
	}
	if lf.tail > 0 {
		next := int64(len(lf.entries) + 1)
		if err == nil {
			return &session.TamperError{Session: id, Seq: next, Reason: "content follows the seal"}
		}
		return &session.TamperError{Session: id, Seq: next,
			Reason: "torn line: a write was cut short (the gateway stopped mid-write) or the file was cut"}
	}
	return err
}

// read opens and parses session id's file.
func (j *Journal) read(id string) (*ledgerFile, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(j.path(id))
	if err != nil {
		return nil, fmt.Errorf("journal: session %s: %w", id, err)
	}
	defer f.Close()
	lf, err := parse(f, id)
	if err != nil {
		return nil, fmt.Errorf("journal: session %s: %w", id, err)
	}
	return lf, nil
}

// ids lists the sessions in the directory: regular files named
// <id>.jsonl (symbolic links and other names are ignored).
func (j *Journal) ids() ([]string, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var ids []string
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ext)
		if ok && de.Type().IsRegular() && validID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// recoverAll seals the ledgers a previous run left open.
func (j *Journal) recoverAll() error {
	ids, err := j.ids()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := j.recoverFile(id); err != nil {
			return err
		}
	}
	return nil
}

// recoverFile seals session id's ledger if it is not sealed and every
// whole line verifies, cutting a torn last line first. A file that does
// not verify is left as it is (Verify reports it). Only I/O errors are
// returned.
func (j *Journal) recoverFile(id string) error {
	path := j.path(id)
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("journal: recovering session %s: %w", id, err)
	}
	defer f.Close()
	lf, err := parse(f, id)
	if err != nil {
		return fmt.Errorf("journal: recovering session %s: %w", id, err)
	}
	if lf.bad != nil {
		j.log.Error("pgwarden: a recorded session does not verify; left as it is", "session", id, "err", lf.bad)
		return nil
	}
	verr := session.VerifyLedger(j.key, id, lf.entries)
	switch {
	case verr == nil && lf.tail == 0:
		return nil
	case verr == nil:
		j.log.Error("pgwarden: a recorded session has content after its seal; left as it is", "session", id)
		return nil
	case !session.IsNotSealed(verr):
		j.log.Error("pgwarden: a recorded session does not verify; left as it is", "session", id, "err", verr)
		return nil
	}
	if lf.tail > 0 {
		// A write cut short: never acknowledged, so never relied on.
		if err := f.Truncate(lf.whole); err != nil {
			return fmt.Errorf("journal: recovering session %s: %w", id, err)
		}
	}
	var l *session.Ledger
	if n := len(lf.entries); n > 0 {
		l, err = session.ResumeLedger(j.key, lf.entries[n-1])
	} else {
		l, err = session.NewLedger(j.key, id)
	}
	if err != nil {
		return err
	}
	seal, err := l.Seal()
	if err != nil {
		return err
	}
	line, err := appendLine(nil, seal)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(line, lf.whole); err != nil {
		return fmt.Errorf("journal: recovering session %s: %w", id, err)
	}
	if err := j.fileSync(f); err != nil {
		return fmt.Errorf("journal: recovering session %s: %w", id, err)
	}
	ended := len(lf.entries) > 0 && eventKind(lf.entries[len(lf.entries)-1].Event) == session.KindSessionEnd
	j.log.Warn("pgwarden: sealed a session its gateway left open (it stopped without closing the journal)",
		"session", id, "entries", len(lf.entries), "torn_bytes", lf.tail, "ended", ended)
	return nil
}

func eventKind(raw json.RawMessage) session.EventKind {
	var v struct {
		Kind session.EventKind `json:"kind"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Kind
}

// Verify checks session id's file (session.Archive): nil when its ledger
// is intact and sealed (including a ledger sealed by recovery: see
// Recovered); otherwise a *session.TamperError naming the first entry
// that is wrong. Beyond VerifyLedger's checks (an edited, removed,
// inserted or reordered entry, a missing seal, entries of another
// session), it reports a line that is not an entry as the journal writes
// it, content after the seal and a torn last line. A session still being
// recorded is "not sealed" (session.IsNotSealed).
func (j *Journal) Verify(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lf, err := j.read(id)
	if err != nil {
		return err
	}
	return lf.verify(j.key, id)
}

// VerifyAll verifies every session in the directory: the result maps
// each session id to Verify's answer (nil for an intact, sealed ledger).
// The error is for the directory itself.
func (j *Journal) VerifyAll(ctx context.Context) (map[string]error, error) {
	ids, err := j.ids()
	if err != nil {
		return nil, err
	}
	res := make(map[string]error, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res[id] = j.Verify(ctx, id)
	}
	return res, nil
}

// Recovered reports whether session id's ledger was sealed by recovery
// rather than at the session's end: its record stops before a
// session.end event, because the gateway stopped (crashed, or closed the
// journal) while the session ran, or because the session's file broke.
// Events acknowledged to the proxy are all there; what the session did
// afterwards (if anything) is not. The answer comes from the verified
// entries themselves (the journal seals a ledger only after session.end
// or at recovery), so it is as tamper-evident as the ledger: err is
// Verify's error when the ledger does not verify.
func (j *Journal) Recovered(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	lf, err := j.read(id)
	if err != nil {
		return false, err
	}
	if err := lf.verify(j.key, id); err != nil {
		return false, err
	}
	n := len(lf.entries) // the last is the seal
	return n < 2 || eventKind(lf.entries[n-2].Event) != session.KindSessionEnd, nil
}

// Events returns session id's events in the order they were recorded
// (session.Archive), without verifying them. A line that cannot be read
// ends the list: the events before it are returned with a
// *session.TamperError. A torn last line (a write in progress, or cut
// short) is not an event and is skipped. A session with no file is an
// error that matches fs.ErrNotExist.
func (j *Journal) Events(ctx context.Context, id string) ([]session.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lf, err := j.read(id)
	if err != nil {
		return nil, err
	}
	evs := make([]session.Event, 0, len(lf.entries))
	for _, e := range lf.entries {
		if e.Sealed {
			continue
		}
		var ev session.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			return evs, &session.TamperError{Session: id, Seq: e.Seq, Reason: "the event cannot be read: " + err.Error()}
		}
		evs = append(evs, ev)
	}
	if lf.bad != nil {
		return evs, lf.bad
	}
	return evs, nil
}

// eventView is what a summary needs of an event. The statement's tables
// are read from the JSON ("tables"), whichever version of
// session.StatementEvent wrote it.
type eventView struct {
	Kind       session.EventKind        `json:"kind"`
	Time       time.Time                `json:"time"`
	Start      *session.StartEvent      `json:"start"`
	Statement  *statementView           `json:"statement"`
	End        *session.EndEvent        `json:"end"`
	Credential *session.CredentialEvent `json:"credential"`
}

type statementView struct {
	SQL     string   `json:"sql"`
	Verdict string   `json:"verdict"`
	Tables  []string `json:"tables"`
}

// Sessions lists the recorded sessions that match f, oldest first
// (session.Archive). It reads every file: a listing costs a read of the
// directory's content. Entries that cannot be read are skipped (Verify
// reports them); a session with no session.start event is listed with
// what its other events say.
//
// f.Table matches a statement event's tables ("tables" in its JSON: a
// name as recorded, or an unqualified name matching any schema), case
// insensitively. For a statement event without tables (recorded before
// statements named them, or one the analyzer could not read) it falls
// back to the SQL text: the name as a whole word, quotes ignored, which
// can match a string literal or a column of the same name.
func (j *Journal) Sessions(ctx context.Context, f session.Filter) ([]session.Summary, error) {
	ids, err := j.ids()
	if err != nil {
		return nil, err
	}
	var out []session.Summary
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lf, err := j.read(id)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since the listing
			}
			return nil, err
		}
		if s, ok := summarize(id, lf, f); ok {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b session.Summary) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// summarize describes a session and reports whether it matches f.
func summarize(id string, lf *ledgerFile, f session.Filter) (session.Summary, bool) {
	s := session.Summary{ID: id}
	var first time.Time
	tableOK, verdictOK := f.Table == "", f.Verdict == ""
	for _, e := range lf.entries {
		if e.Sealed {
			continue
		}
		var ev eventView
		if json.Unmarshal(e.Event, &ev) != nil {
			continue
		}
		if first.IsZero() {
			first = ev.Time
		}
		switch {
		case ev.Kind == session.KindSessionStart && ev.Start != nil:
			info := ev.Start.Info
			s.Identity, s.User, s.Database, s.ClientAddr = info.Identity, info.User, info.Database, info.ClientAddr
			s.StartedAt = info.StartedAt
			if s.StartedAt.IsZero() {
				s.StartedAt = ev.Time
			}
			if info.UpstreamUser != "" {
				s.Upstream = info.UpstreamUser
			}
		case ev.Kind == session.KindStatement && ev.Statement != nil:
			st := ev.Statement
			s.Statements++
			if st.Verdict != "allow" && st.Verdict != "mask" { // masked statements run
				s.Refused++
			}
			if !verdictOK && st.Verdict == f.Verdict {
				verdictOK = true
			}
			if !tableOK && touches(f.Table, st) {
				tableOK = true
			}
		case ev.Kind == session.KindCredential && ev.Credential != nil:
			if s.Upstream == "" {
				s.Upstream = ev.Credential.User
			}
		case ev.Kind == session.KindSessionEnd && ev.End != nil:
			s.EndedAt, s.EndReason = ev.Time, ev.End.Reason
		}
	}
	if s.StartedAt.IsZero() {
		s.StartedAt = first
	}
	ok := tableOK && verdictOK &&
		(f.Subject == "" || s.Identity.Involves("", f.Subject)) &&
		(f.Since.IsZero() || !s.StartedAt.Before(f.Since)) &&
		(f.Until.IsZero() || s.StartedAt.Before(f.Until))
	return s, ok
}

// touches reports whether a statement touches table (see Sessions).
func touches(table string, st *statementView) bool {
	want := strings.ToLower(table)
	if len(st.Tables) > 0 {
		for _, t := range st.Tables {
			t = strings.ToLower(t)
			if t == want || !strings.Contains(want, ".") && strings.HasSuffix(t, "."+want) {
				return true
			}
		}
		return false
	}
	return mentions(strings.ReplaceAll(strings.ToLower(st.SQL), `"`, ""), want)
}

// mentions reports whether name occurs in sql as a whole word.
func mentions(sql, name string) bool {
	if name == "" {
		return false
	}
	for i := 0; ; {
		k := strings.Index(sql[i:], name)
		if k < 0 {
			return false
		}
		k += i
		end := k + len(name)
		if (k == 0 || !identByte(sql[k-1])) && (end == len(sql) || !identByte(sql[end])) {
			return true
		}
		i = k + 1
	}
}

func identByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
