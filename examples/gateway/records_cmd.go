package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// The sessions, replay and verify commands read the recording section's
// stores back: the file store (recording.dir) or the PostgreSQL store
// (recording.postgres), chosen with --store.

// recordsTimeout bounds the work of sessions, verify and replay (not
// replay's waiting with --speed).
const recordsTimeout = 5 * time.Minute

// recordsFlags are the flags sessions, replay and verify share.
type recordsFlags struct {
	// fs is the command's flag set; commands add their own flags to it.
	fs *flag.FlagSet
	// config is --config: the configuration file.
	config *string
	// store is --store: dir, postgres, or empty for the default.
	store *string
}

// newRecordsFlags returns the flag set of the named command with --config
// and --store.
func newRecordsFlags(name string) *recordsFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &recordsFlags{
		fs:     fs,
		config: fs.String("config", "", "configuration `file` (YAML) with a recording section"),
		store:  fs.String("store", "", "read the `store` dir (recording.dir) or postgres (recording.postgres); default: dir when recording.dir is set"),
	}
}

// parseInterspersed parses fs's flags from args, allowing positional
// arguments between them (`replay ID --speed 2`), and returns the
// positional arguments. It returns false, having printed the problem, on a
// usage error.
func parseInterspersed(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	fs.SetOutput(stderr)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, true
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), true
		}
		positional, args = append(positional, args[0]), args[1:]
	}
}

// archive is an open store of recordings, for reading.
type archive struct {
	session.Archive
	// name is the key path of the store: recording.dir or
	// recording.postgres.
	name keyPath
	// close closes the store.
	close func() error
}

// openArchive loads the configuration of f and opens the store --store
// names. On failure it has printed the problem and returns the exit code.
func openArchive(ctx context.Context, command string, f *recordsFlags, stderr io.Writer) (*archive, int) {
	if *f.config == "" {
		fmt.Fprintf(stderr, "pgwarden %s: --config is required\n", command)
		return nil, exitUsage
	}
	cfg, err := loadConfig(*f.config)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return nil, exitError
	}
	r := cfg.Recording
	if r == nil {
		fmt.Fprintf(stderr, "pgwarden %s: %s has no recording section: no session is recorded\n", command, *f.config)
		return nil, exitError
	}
	store := *f.store
	switch store {
	case "":
		store = "dir"
		if r.Dir == "" {
			store = "postgres"
		}
	case "dir", "postgres":
		if (store == "dir" && r.Dir == "") || (store == "postgres" && r.Postgres.IsZero()) {
			fmt.Fprintf(stderr, "pgwarden %s: --store %s: recording.%s is not set in %s\n", command, store, store, *f.config)
			return nil, exitUsage
		}
	default:
		fmt.Fprintf(stderr, "pgwarden %s: --store must be dir or postgres\n", command)
		return nil, exitUsage
	}
	// The stores log operational problems (a broken file, for example):
	// they go to stderr, as the gateway's own logs do.
	logger := newLogger(cfg, stderr)
	a, err := openReader(ctx, cfg, store, logger)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden %s: %v\n", command, err)
		return nil, exitError
	}
	return a, exitOK
}

// sessionsCommand lists the recorded sessions: an aligned table, or JSON
// with --json.
func sessionsCommand(args []string, stdout, stderr io.Writer) int {
	f := newRecordsFlags("sessions")
	subject := f.fs.String("subject", "", "only sessions whose identity involves `subject` (the subject or an actor of its delegation chain)")
	since := f.fs.String("since", "", "only sessions started at or after `time` (RFC 3339, a date such as 2026-11-25, or a duration ago such as 24h)")
	until := f.fs.String("until", "", "only sessions started before `time` (as --since)")
	table := f.fs.String("table", "", "only sessions with a statement on `table` (as the statements name it: table or schema.table)")
	verdict := f.fs.String("verdict", "", "only sessions with a statement decided `verdict` (allow, mask, approve, block, terminate)")
	asJSON := f.fs.Bool("json", false, "print JSON")
	if !parseFlags(f.fs, args, stderr) {
		return exitUsage
	}
	now := time.Now()
	filter := session.Filter{Subject: *subject, Table: *table, Verdict: *verdict}
	var err error
	if filter.Since, err = parseTimeFlag(*since, now); err != nil {
		fmt.Fprintf(stderr, "pgwarden sessions: --since: %v\n", err)
		return exitUsage
	}
	if filter.Until, err = parseTimeFlag(*until, now); err != nil {
		fmt.Fprintf(stderr, "pgwarden sessions: --until: %v\n", err)
		return exitUsage
	}
	if *verdict != "" {
		if _, ok := policy.ParseVerdict(*verdict); !ok {
			fmt.Fprintln(stderr, "pgwarden sessions: --verdict must be allow, mask, approve, block or terminate")
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordsTimeout)
	defer cancel()
	a, code := openArchive(ctx, "sessions", f, stderr)
	if a == nil {
		return code
	}
	defer a.close()
	list, err := a.Sessions(ctx, filter)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden sessions: reading %s: %v\n", a.name, err)
		return exitError
	}
	if *asJSON {
		out := make([]recordedSessionJSON, 0, len(list))
		for _, s := range list {
			out = append(out, recordedSessionOf(s))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"sessions": out})
		return exitOK
	}
	printSessions(stdout, list)
	return exitOK
}

// recordedSessionJSON is a recorded session in `pgwarden sessions --json`.
type recordedSessionJSON struct {
	ID      string      `json:"id"`
	Subject string      `json:"subject"`
	Issuer  string      `json:"issuer"`
	Chain   []actorJSON `json:"chain"`
	// User is the user name the client sent; Database its database.
	User         string    `json:"user"`
	Database     string    `json:"database"`
	ClientAddr   string    `json:"client_addr"`
	UpstreamUser string    `json:"upstream_user"`
	StartedAt    time.Time `json:"started_at"`
	// EndedAt and EndReason are absent for a session without a recorded
	// end (still running, or its gateway crashed).
	EndedAt    time.Time         `json:"ended_at,omitzero"`
	EndReason  session.EndReason `json:"end_reason,omitempty"`
	Statements int64             `json:"statements"`
	Refused    int64             `json:"refused"`
}

// recordedSessionOf converts a store's summary.
func recordedSessionOf(s session.Summary) recordedSessionJSON {
	return recordedSessionJSON{
		ID: s.ID, Subject: s.Identity.Subject, Issuer: s.Identity.Issuer, Chain: chainJSON(s.Identity),
		User: s.User, Database: s.Database, ClientAddr: s.ClientAddr, UpstreamUser: s.Upstream,
		StartedAt: utc(s.StartedAt), EndedAt: utc(s.EndedAt), EndReason: s.EndReason,
		Statements: s.Statements, Refused: s.Refused,
	}
}

// printSessions prints the sessions as an aligned table.
func printSessions(w io.Writer, list []session.Summary) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tENDED\tSUBJECT\tCHAIN\tUSER\tDATABASE\tSTATEMENTS\tREFUSED")
	for _, s := range list {
		ended := "- (no end recorded)"
		if !s.EndedAt.IsZero() || s.EndReason != "" {
			ended = reviewTime(s.EndedAt) + " (" + string(s.EndReason) + ")"
		}
		cells := []string{s.ID, reviewTime(s.StartedAt), ended, orDash(s.Identity.Subject), identityChain(s.Identity),
			orDash(s.User), orDash(s.Database), strconv.FormatInt(s.Statements, 10), strconv.FormatInt(s.Refused, 10)}
		for i, c := range cells {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	w.Write(buf.Bytes())
	fmt.Fprintf(w, "%d sessions\n", len(list))
}

// identityChain is "alice > ci-job > agent": the subject, then the actors
// of its delegation chain to the one on the wire ("alice" alone when the
// subject connected directly).
func identityChain(id session.Identity) string {
	if id.Subject == "" {
		return "-"
	}
	parts := []string{id.Subject}
	for _, a := range id.Chain {
		parts = append(parts, a.Subject)
	}
	return strings.Join(parts, " > ")
}

// parseTimeFlag parses a --since or --until value: RFC 3339, a date
// (midnight UTC), or a duration ago ("24h" is now minus 24 hours); empty
// is the zero time.
func parseTimeFlag(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want RFC 3339 (2026-11-25T10:00:00Z), a date (2026-11-25) or a duration ago (24h)")
}

// verifyCommand verifies the ledgers of every recorded session, or of the
// given ones: one line per session, and exit status 0 only when every
// ledger is intact and sealed (or, with --allow-open, not sealed).
func verifyCommand(args []string, stdout, stderr io.Writer) int {
	f := newRecordsFlags("verify")
	allowOpen := f.fs.Bool("allow-open", false, "accept ledgers that are not sealed (sessions still running, or whose gateway crashed)")
	ids, ok := parseInterspersed(f.fs, args, stderr)
	if !ok {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordsTimeout)
	defer cancel()
	a, code := openArchive(ctx, "verify", f, stderr)
	if a == nil {
		return code
	}
	defer a.close()
	if len(ids) == 0 {
		list, err := a.Sessions(ctx, session.Filter{})
		if err != nil {
			fmt.Fprintf(stderr, "pgwarden verify: reading %s: %v\n", a.name, err)
			return exitError
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
	}
	var intact, open, bad int
	for _, id := range ids {
		err := a.Verify(ctx, id)
		te, isTamper := errors.AsType[*session.TamperError](err)
		var line string
		switch {
		case err == nil && sealedAtRecovery(ctx, a, id):
			// Intact, but the journal sealed it when it was opened after
			// the gateway stopped: the session never recorded its end.
			open++
			n := countEvents(ctx, a, id)
			line = fmt.Sprintf("NOT SEALED (running or crashed): sealed at recovery; the record stops after entry %d%s without the session's end", n, describeEntry(ctx, a, id, n))
		case err == nil:
			intact++
			line = "OK"
		case session.IsNotSealed(err):
			open++
			line = fmt.Sprintf("NOT SEALED (running or crashed): the record stops after entry %d%s; its entries verify", te.Seq-1, describeEntry(ctx, a, id, te.Seq-1))
		case isTamper:
			bad++
			line = fmt.Sprintf("TAMPERED: entry %d%s: %s", te.Seq, describeEntry(ctx, a, id, te.Seq), te.Reason)
		default:
			bad++
			line = fmt.Sprintf("ERROR: %v", err)
		}
		fmt.Fprintf(stdout, "%s  %s\n", printable(id), printable(line))
	}
	fmt.Fprintf(stdout, "%d sessions: %d intact, %d not sealed, %d tampered or unreadable\n", len(ids), intact, open, bad)
	if bad > 0 || (open > 0 && !*allowOpen) {
		return exitError
	}
	return exitOK
}

// recoveredReporter is implemented by the file store: it tells a ledger
// sealed at the session's end from one sealed when the journal was opened
// after its gateway stopped.
type recoveredReporter interface {
	Recovered(ctx context.Context, id string) (bool, error)
}

// sealedAtRecovery reports whether session id's intact ledger was sealed
// at recovery rather than at the session's end.
func sealedAtRecovery(ctx context.Context, a *archive, id string) bool {
	r, ok := a.Archive.(recoveredReporter)
	if !ok {
		return false
	}
	recovered, err := r.Recovered(ctx, id)
	return err == nil && recovered
}

// countEvents returns the number of events of session id that can be
// read.
func countEvents(ctx context.Context, a *archive, id string) int64 {
	events, _ := a.Events(ctx, id)
	return int64(len(events))
}

// describeEntry names the event stored as entry seq of session id, as
// " (statement #3 at 2026-11-25T10:00:01Z)" (the time the event itself
// says), or "" when it cannot be read.
func describeEntry(ctx context.Context, a *archive, id string, seq int64) string {
	events, err := a.Events(ctx, id)
	if err != nil || seq < 1 || seq > int64(len(events)) {
		return ""
	}
	ev := events[seq-1]
	return " (" + eventLabel(ev) + " at " + reviewTime(ev.Time) + ")"
}

// eventLabel names an event: "session.start", "statement #3", "result of
// statement #3", "credential released", "session.end".
func eventLabel(ev session.Event) string {
	switch {
	case ev.Statement != nil:
		return fmt.Sprintf("statement #%d", ev.Statement.Seq)
	case ev.Result != nil:
		return fmt.Sprintf("result of statement #%d", ev.Result.Seq)
	case ev.Credential != nil:
		return "credential " + string(ev.Credential.Action)
	case ev.Approval != nil:
		return "approval " + string(ev.Approval.Action)
	}
	return orDash(string(ev.Kind))
}

// replayCommand prints a recorded session as a readable timeline; with
// --speed it waits between events as they happened, that many times
// faster.
func replayCommand(args []string, stdout, stderr io.Writer) int {
	f := newRecordsFlags("replay")
	speed := f.fs.Float64("speed", 0, "wait between events as they happened, `X` times faster (1: real time); 0: no waiting")
	ids, ok := parseInterspersed(f.fs, args, stderr)
	if !ok {
		return exitUsage
	}
	if len(ids) != 1 {
		fmt.Fprintln(stderr, "pgwarden replay: give one session id (see pgwarden sessions)")
		return exitUsage
	}
	if *speed < 0 {
		fmt.Fprintln(stderr, "pgwarden replay: --speed must be positive (or 0: no waiting)")
		return exitUsage
	}
	id := ids[0]
	ctx, cancel := context.WithTimeout(context.Background(), recordsTimeout)
	defer cancel()
	a, code := openArchive(ctx, "replay", f, stderr)
	if a == nil {
		return code
	}
	defer a.close()
	events, err := a.Events(ctx, id)
	if _, unreadable := errors.AsType[*session.TamperError](err); err != nil && (!unreadable || len(events) == 0) {
		fmt.Fprintf(stderr, "pgwarden replay: reading session %s from %s: %v\n", printable(id), a.name, err)
		return exitError
	}
	if len(events) == 0 {
		fmt.Fprintf(stderr, "pgwarden replay: %s has no session %s\n", a.name, printable(id))
		return exitError
	}
	status := exitOK
	verr := a.Verify(ctx, id)
	switch te, isTamper := errors.AsType[*session.TamperError](verr); {
	case verr == nil && sealedAtRecovery(ctx, a, id):
		fmt.Fprintln(stderr, "pgwarden replay: note: the gateway stopped while the session ran: its record was sealed at recovery and has no end")
	case verr == nil:
	case session.IsNotSealed(verr):
		fmt.Fprintln(stderr, "pgwarden replay: note: the ledger is not sealed: the session is running, or its gateway stopped before recording its end")
	case isTamper:
		fmt.Fprintf(stderr, "pgwarden replay: WARNING: the record does not verify from entry %d (%s): what follows may have been altered\n", te.Seq, te.Reason)
		status = exitError
	default:
		fmt.Fprintf(stderr, "pgwarden replay: WARNING: the record could not be verified: %v\n", verr)
		status = exitError
	}
	if err != nil {
		// A line that cannot be read ends the events: the timeline
		// stops before it.
		fmt.Fprintf(stderr, "pgwarden replay: WARNING: the timeline stops at an entry that cannot be read: %v\n", err)
		status = exitError
	}
	sleep := func(d time.Duration) {
		if *speed > 0 && d > 0 {
			time.Sleep(time.Duration(float64(d) / *speed))
		}
	}
	printTimeline(stdout, events, sleep)
	return status
}

// printTimeline prints events, calling wait with the time between one
// event and the next before printing the next.
func printTimeline(w io.Writer, events []session.Event, wait func(time.Duration)) {
	start := events[0].Time
	if events[0].Start != nil && !events[0].Start.Info.StartedAt.IsZero() {
		start = events[0].Start.Info.StartedAt
	}
	fmt.Fprintf(w, "session %s, started %s\n", printable(events[0].SessionID), reviewTime(start))
	sql := map[int64]string{} // statement seq -> its SQL, for results
	for i, ev := range events {
		if i > 0 {
			wait(ev.Time.Sub(events[i-1].Time))
		}
		offset := fmt.Sprintf("+%9.3fs  ", ev.Time.Sub(start).Seconds())
		indent := strings.Repeat(" ", len(offset))
		lines := describeEvent(ev, sql)
		for j, l := range lines {
			prefix := indent
			if j == 0 {
				prefix = offset
			}
			fmt.Fprintln(w, prefix+l)
		}
	}
}

// describeEvent returns the timeline's lines for ev (already made
// printable). sql keeps the statements' SQL by seq.
func describeEvent(ev session.Event, sql map[int64]string) []string {
	switch {
	case ev.Start != nil:
		return startLines(&ev.Start.Info)
	case ev.Statement != nil:
		return statementLines(ev.Statement, sql)
	case ev.Result != nil:
		return []string{resultLine(ev.Result)}
	case ev.Credential != nil:
		c := ev.Credential
		line := fmt.Sprintf("credential %s: role %s", c.Action, c.User)
		if c.Lease != "" {
			line += ", lease " + c.Lease
		}
		if !c.ExpiresAt.IsZero() {
			line += ", expires " + reviewTime(c.ExpiresAt)
		}
		return []string{printable(line)}
	case ev.Approval != nil:
		return []string{approvalLine(ev.Approval)}
	case ev.End != nil:
		e := ev.End
		line := fmt.Sprintf("session end: %s after %d statements", e.Reason, e.Statements)
		if e.ErrorCode != "" || e.Message != "" {
			line += fmt.Sprintf("; the client was sent FATAL %s: %s", e.ErrorCode, e.Message)
		}
		return []string{printable(line)}
	}
	return []string{printable(fmt.Sprintf("%s (no details)", ev.Kind))}
}

// startLines describes a session's start.
func startLines(info *session.Info) []string {
	id := info.Identity
	who := id.Subject
	if id.Issuer != "" {
		who += " (issuer " + id.Issuer + ")"
	}
	if id.Method != "" {
		who += " by " + id.Method
	}
	lines := []string{"session start: " + who}
	if len(id.Chain) > 0 {
		lines = append(lines, "  through "+identityChain(id))
	}
	if len(id.Groups) > 0 {
		lines = append(lines, "  groups "+strings.Join(id.Groups, ", "))
	}
	tlsText := "without TLS"
	if t := info.TLS; t != nil {
		tlsText = t.Version + " " + t.CipherSuite
		if t.PeerSubject != "" {
			tlsText += ", client certificate " + t.PeerSubject
		}
	}
	lines = append(lines, fmt.Sprintf("  from %s, %s", orDash(info.ClientAddr), tlsText))
	db := fmt.Sprintf("  database %s as user %s", orDash(info.Database), orDash(info.User))
	if info.ApplicationName != "" {
		db += ", application " + info.ApplicationName
	}
	lines = append(lines, db)
	up := "  upstream role " + orDash(info.UpstreamUser)
	if info.Lease != "" {
		up += ", lease " + info.Lease
	}
	lines = append(lines, up)
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return lines
}

// statementLines describes a statement event: its number, stage and
// decision, its SQL (one line per line of SQL) and its parameters.
func statementLines(st *session.StatementEvent, sql map[int64]string) []string {
	head := fmt.Sprintf("#%d %s", st.Seq, orDash(st.Stage))
	if st.Name != "" {
		head += " statement " + strconv.Quote(st.Name)
	}
	if st.Portal != "" {
		head += " portal " + strconv.Quote(st.Portal)
	}
	if st.FunctionOID != 0 {
		head += fmt.Sprintf(" function %d", st.FunctionOID)
	}
	decision := strings.ToUpper(st.Verdict)
	if st.Rule != "" {
		decision += " (rule " + st.Rule + ")"
	}
	if st.Reason != "" {
		decision += ": " + st.Reason
	}
	lines := []string{printable(head + ": " + decision)}
	if st.SQL != "" {
		sql[st.Seq] = st.SQL
		text := strings.ReplaceAll(strings.ReplaceAll(st.SQL, "\r\n", "\n"), "\t", "    ")
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			lines = append(lines, "  | "+printable(l))
		}
	}
	if len(st.Params) > 0 {
		params := make([]string, len(st.Params))
		for i, p := range st.Params {
			v := "NULL"
			if p != nil {
				v = "'" + strings.ReplaceAll(*p, "'", "''") + "'"
			}
			params[i] = fmt.Sprintf("$%d = %s", i+1, v)
		}
		lines = append(lines, "  params: "+printable(strings.Join(params, ", ")))
	}
	if len(st.Tables) > 0 {
		lines = append(lines, "  tables: "+printable(strings.Join(st.Tables, ", ")))
	}
	return lines
}

// resultLine describes a result event.
func resultLine(r *session.ResultEvent) string {
	line := fmt.Sprintf("#%d result: ", r.Seq)
	switch {
	case r.ErrorCode != "":
		line += fmt.Sprintf("ERROR %s: %s", r.ErrorCode, r.ErrorMessage)
	case r.Tag != "":
		line += r.Tag
	default:
		line += "(empty)"
	}
	line += fmt.Sprintf(", %d rows, %s", r.Rows, r.Duration.Round(time.Microsecond))
	return printable(line)
}

// openReader opens the store of the recording section named store ("dir"
// or "postgres") for reading. The file store is opened read-only: it may
// be read while a gateway records to it, and nothing is recovered (a
// session its gateway left open stays "not sealed").
func openReader(ctx context.Context, cfg *config, store string, logger *slog.Logger) (*archive, error) {
	if store == "dir" {
		// Say which key is at fault when nothing was recorded there.
		if _, err := os.Stat(string(cfg.Recording.Dir)); err != nil {
			return nil, cfg.problemAt("recording.dir", "%w", err)
		}
		j, err := journal.OpenReadOnly(string(cfg.Recording.Dir), cfg.Recording.Key.Secret)
		if err != nil {
			return nil, cfg.problemAt("recording.dir", "%w", err)
		}
		return &archive{Archive: j, name: "recording.dir", close: j.Close}, nil
	}
	stores, err := openStores(ctx, cfg, logger, store)
	if err != nil {
		return nil, err
	}
	s := stores[0]
	return &archive{Archive: s.store, name: s.path, close: s.store.Close}, nil
}
