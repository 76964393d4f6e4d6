package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// recordingFixture is a cluster prepared for the recording tests: the
// database app with the tables t (n int, s text) and secrets, the role
// app_user, and the database audit for the PostgreSQL store.
type recordingFixture struct {
	cluster *pgtest.Cluster
	// dir is the configuration file's directory.
	dir string
}

// newRecordingFixture starts and prepares the cluster.
func newRecordingFixture(t *testing.T, ctx context.Context) *recordingFixture {
	t.Helper()
	cluster := startCluster(t)
	if err := cluster.Exec(ctx, "app", `CREATE ROLE app_user LOGIN PASSWORD 'app-user-secret';
		CREATE TABLE t (n int, s text); CREATE TABLE secrets (v text);
		GRANT SELECT, INSERT ON t TO app_user; GRANT SELECT ON secrets TO app_user;`); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Exec(ctx, "app", "CREATE DATABASE audit"); err != nil {
		t.Fatal(err)
	}
	return &recordingFixture{cluster: cluster, dir: t.TempDir()}
}

// config returns a configuration for the fixture's cluster with the
// recording section recording (and the admin API, for the tests' waits).
func (f *recordingFixture) config(recording string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {address: %s}
auth:
  users:
    - {name: carol, password: carol-secret, groups: [dev]}
credentials:
  static:
    - {user: app_user, password: app-user-secret, groups: [dev]}
policy:
  default: allow
  rules:
    - {name: no-secrets, tables: [secrets], reason: Secrets stay secret.}
admin: {listen: "127.0.0.1:0", token: %s, revocations_file: revocations.json}
log: {format: json, level: debug}
%s`, f.cluster.Addr(), testAdminToken, recording)
}

// writeConfig writes text as the fixture's configuration file.
func (f *recordingFixture) writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(f.dir, "pgwarden.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// workload is what runSession did, to check the recording against.
type workload struct {
	copied int64
}

// runSession runs, as carol, a session with a simple query, a prepared
// statement with parameters, a query with a parameter, COPY, a failing
// statement and a refused one, with a pause of pause between the first
// two; then it closes the connection.
func runSession(t *testing.T, ctx context.Context, addr string, pause time.Duration) workload {
	t.Helper()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable&application_name=rec-test", addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	if _, err := conn.Prepare(ctx, "ins", "INSERT INTO t (n, s) VALUES ($1, $2)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ins", 1, "one"); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT s FROM t WHERE n = $1", 1).Scan(&s); err != nil || s != "one" {
		t.Fatalf("SELECT s: %q, %v", s, err)
	}
	rows := [][]any{{10, "ten"}, {11, nil}, {12, "twelve"}}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"n", "s"}, pgx.CopyFromRows(rows))
	if err != nil || n != 3 {
		t.Fatalf("COPY: %d, %v", n, err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1/0", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "22012" {
		t.Fatalf("SELECT 1/0: %v, want 22012", err)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM secrets", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "42501" {
		t.Fatalf("SELECT * FROM secrets: %v, want 42501", err)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return workload{copied: n}
}

// openJournal opens the file store at dir with the tests' key and returns
// it closed: the Archive methods work after Close, and nothing holds the
// directory's lock.
func openJournal(t *testing.T, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, session.NewSecret(testRecordingKey), journal.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return j
}

// checkNoSecrets fails when any of secrets appears in texts (named by
// their keys).
func checkNoSecrets(t *testing.T, texts map[string]string, secrets ...string) {
	t.Helper()
	for name, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q", name, s)
			}
		}
	}
}

// readDir returns the content of every file under dir, by path.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecordingServed serves a gateway that records to a directory and to
// PostgreSQL (session.Multi), runs a session (simple query, prepared
// statement with parameters, COPY, an error, a refused statement) and
// checks that the record is complete, that `pgwarden sessions`, `replay`
// and `verify` read it back from either store, and that no secret
// reaches the record, the logs or the commands' output.
func TestRecordingServed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	auditDSN := f.cluster.SuperConnString("audit")
	path := f.writeConfig(t, f.config(fmt.Sprintf("recording: {dir: rec, postgres: %s, key: %s}\n",
		yamlQuote(auditDSN), testRecordingKey)))
	tg := startTestGatewayFile(t, path, testAdminToken)
	if len(tg.g.stores) != 2 {
		t.Fatalf("stores = %v, want the journal and the PostgreSQL store", tg.g.stores)
	}
	started := time.Now()
	w := runSession(t, ctx, tg.addr, 300*time.Millisecond)
	tg.waitSessions(t, 0)
	// Both stores can be read while the gateway runs. (The session leaves
	// the proxy's list a moment before its end is recorded: wait for it.)
	for _, store := range []string{"dir", "postgres"} {
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, stdout, stderr := runCLI([]string{"sessions", "--config", path, "--store", store}, "")
			if code == exitOK && strings.Contains(stdout, "(client-exit)") && strings.Contains(stdout, "\n1 sessions\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("sessions --store %s while the gateway runs: exit %d, stdout %q, stderr %q", store, code, stdout, stderr)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	tg.stop()

	// The record is complete: every statement, in order, with its
	// decision; a result for each statement that ran.
	j := openJournal(t, filepath.Join(f.dir, "rec"))
	list, err := j.Sessions(ctx, session.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %+v, %v; want one", list, err)
	}
	id := list[0].ID
	events, err := j.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	nStmts := checkRecordedSession(t, events, w)
	count := fmt.Sprint(nStmts)

	// pgwarden sessions, from either store.
	for _, store := range []string{"dir", "postgres"} {
		code, stdout, stderr := runCLI([]string{"sessions", "--config", path, "--store", store}, "")
		if code != exitOK {
			t.Fatalf("sessions --store %s: exit %d, stderr %s", store, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || lines[2] != "1 sessions" {
			t.Fatalf("sessions --store %s:\n%s", store, stdout)
		}
		fields := strings.Fields(lines[1])
		want := []string{id, "", "", "(client-exit)", "carol", "carol", "carol", "app", count, "1"}
		if len(fields) != len(want) {
			t.Fatalf("sessions --store %s row = %q, want %d fields", store, lines[1], len(want))
		}
		for i, wf := range want {
			if wf != "" && fields[i] != wf {
				t.Errorf("sessions --store %s: field %d = %q, want %q (row %q)", store, i, fields[i], wf, lines[1])
			}
		}
	}
	// Filters and --json.
	for _, c := range []struct {
		args []string
		n    int
	}{
		{nil, 1},
		{[]string{"--subject", "carol"}, 1},
		{[]string{"--subject", "dave"}, 0},
		{[]string{"--table", "secrets"}, 1},
		{[]string{"--table", "t"}, 1},
		{[]string{"--table", "nope"}, 0},
		{[]string{"--verdict", "block"}, 1},
		{[]string{"--verdict", "terminate"}, 0},
		{[]string{"--since", "1h"}, 1},
		{[]string{"--since", started.Add(time.Minute).Format(time.RFC3339)}, 0},
		{[]string{"--until", "2000-01-01"}, 0},
		{[]string{"--store", "postgres", "--verdict", "block", "--subject", "carol"}, 1},
	} {
		code, stdout, stderr := runCLI(append([]string{"sessions", "--config", path, "--json"}, c.args...), "")
		var out struct{ Sessions []recordedSessionJSON }
		if code != exitOK || json.Unmarshal([]byte(stdout), &out) != nil || len(out.Sessions) != c.n {
			t.Errorf("sessions --json %q: exit %d, %d sessions, want %d\n%s%s", c.args, code, len(out.Sessions), c.n, stdout, stderr)
			continue
		}
		if c.n == 1 {
			s := out.Sessions[0]
			if s.ID != id || s.Subject != "carol" || s.Issuer != "static" || s.Chain == nil || s.User != "carol" ||
				s.Database != "app" || s.UpstreamUser != "app_user" || s.EndReason != session.EndClientExit ||
				s.Statements != nStmts || s.Refused != 1 || s.StartedAt.IsZero() || s.EndedAt.Before(s.StartedAt) {
				t.Errorf("sessions --json %q = %+v", c.args, s)
			}
		}
	}
	for _, args := range [][]string{{"--verdict", "deny"}, {"--since", "yesterday"}, {"--store", "s3"}, {"extra"}} {
		if code, _, _ := runCLI(append([]string{"sessions", "--config", path}, args...), ""); code != exitUsage {
			t.Errorf("sessions %q: exit %d, want %d", args, code, exitUsage)
		}
	}

	// pgwarden replay: the same timeline from either store, in order.
	code, timeline, stderr := runCLI([]string{"replay", "--config", path, id}, "")
	if code != exitOK || stderr != "" {
		t.Fatalf("replay: exit %d, stderr %s", code, stderr)
	}
	checkTimeline(t, timeline)
	code, fromPG, stderr := runCLI([]string{"replay", id, "--store", "postgres", "--config", path}, "")
	if code != exitOK || fromPG != timeline {
		t.Errorf("replay --store postgres: exit %d, stderr %s; the timeline differs:\n%s", code, stderr, fromPG)
	}
	// --speed waits as the session did: the 300ms pause, 2 times faster.
	begin := time.Now()
	if code, _, stderr := runCLI([]string{"replay", "--config", path, "--speed", "2", id}, ""); code != exitOK {
		t.Errorf("replay --speed 2: exit %d, stderr %s", code, stderr)
	}
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Errorf("replay --speed 2 took %s; want at least 150ms (a 300ms pause at twice the speed)", d)
	}
	for _, args := range [][]string{{}, {id, id}, {"--speed", "-1", id}} {
		if code, _, _ := runCLI(append([]string{"replay", "--config", path}, args...), ""); code != exitUsage {
			t.Errorf("replay %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, stderr := runCLI([]string{"replay", "--config", path, "0123456789abcdef"}, ""); code != exitError || !strings.Contains(stderr, "0123456789abcdef") {
		t.Errorf("replay of an unknown session: exit %d, stderr %q", code, stderr)
	}

	// pgwarden verify: intact in both stores.
	for _, store := range []string{"dir", "postgres"} {
		code, stdout, stderr := runCLI([]string{"verify", "--config", path, "--store", store}, "")
		if code != exitOK || stdout != id+"  OK\n1 sessions: 1 intact, 0 not sealed, 0 tampered or unreadable\n" {
			t.Errorf("verify --store %s: exit %d, stdout %q, stderr %q", store, code, stdout, stderr)
		}
	}
	if code, stdout, _ := runCLI([]string{"verify", "--config", path, id}, ""); code != exitOK || !strings.HasPrefix(stdout, id+"  OK\n") {
		t.Errorf("verify %s: exit %d, stdout %q", id, code, stdout)
	}
	if code, stdout, _ := runCLI([]string{"verify", "--config", path, "0123456789abcdef"}, ""); code != exitError || !strings.Contains(stdout, "0123456789abcdef  ERROR") {
		t.Errorf("verify of an unknown session: exit %d, stdout %q", code, stdout)
	}

	// No secret in the record (either store), the logs or the output.
	texts := readDir(t, filepath.Join(f.dir, "rec"))
	texts["the gateway's logs"] = tg.logs.String()
	texts["replay"] = timeline
	texts["the PostgreSQL store"] = dumpAuditTable(t, ctx, auditDSN)
	checkNoSecrets(t, texts, "carol-secret", "app-user-secret", testAdminToken, testRecordingKey, f.cluster.Password)
}

// checkRecordedSession checks the events of runSession's session and
// returns the number of statement events.
func checkRecordedSession(t *testing.T, events []session.Event, w workload) int64 {
	t.Helper()
	if len(events) < 2 || events[0].Kind != session.KindSessionStart || events[len(events)-1].Kind != session.KindSessionEnd {
		t.Fatalf("events do not start with session.start and end with session.end: %+v", events)
	}
	info := events[0].Start.Info
	if info.Identity.Subject != "carol" || info.User != "carol" || info.Database != "app" || info.UpstreamUser != "app_user" ||
		info.ApplicationName != "rec-test" || info.ClientAddr == "" {
		t.Errorf("session.start = %+v", info)
	}
	var stmts []*session.StatementEvent
	results := map[int64][]*session.ResultEvent{}
	var credentials []session.CredentialAction
	for _, ev := range events {
		switch {
		case ev.Statement != nil:
			stmts = append(stmts, ev.Statement)
		case ev.Result != nil:
			results[ev.Result.Seq] = append(results[ev.Result.Seq], ev.Result)
		case ev.Credential != nil:
			credentials = append(credentials, ev.Credential.Action)
		}
	}
	if end := events[len(events)-1].End; end.Reason != session.EndClientExit || end.Statements != int64(len(stmts)) {
		t.Errorf("session.end = %+v, want client-exit after %d statements", end, len(stmts))
	}
	if !slices.Contains(credentials, session.CredentialUsed) {
		t.Errorf("credential events = %q, want used", credentials)
	}
	type want struct {
		stage, sql, verdict string
		params              []string
		tag, code           string
	}
	wants := []want{
		{stage: "query", sql: "SELECT 1", verdict: "allow", tag: "SELECT 1"},
		{stage: "parse", sql: "INSERT INTO t (n, s) VALUES ($1, $2)", verdict: "allow"},
		{stage: "bind", sql: "INSERT INTO t (n, s) VALUES ($1, $2)", verdict: "allow", params: []string{"1", "one"}, tag: "INSERT 0 1"},
		{stage: "parse", sql: "SELECT s FROM t WHERE n = $1", verdict: "allow"},
		{stage: "bind", sql: "SELECT s FROM t WHERE n = $1", verdict: "allow", params: []string{"1"}, tag: "SELECT 1"},
		{stage: "query", sql: `copy "t" ( "n", "s" ) from stdin binary;`, verdict: "allow", tag: fmt.Sprintf("COPY %d", w.copied)},
		{stage: "query", sql: "SELECT 1/0", verdict: "allow", code: "22012"},
		{stage: "query", sql: "SELECT * FROM secrets", verdict: "block"},
	}
	// pgx may describe statements (Parse without Bind) before it binds
	// them; keep the statements that match the list, in order.
	i := 0
	var parseSeq int64
	for _, st := range stmts {
		if st.Stage == "parse" {
			parseSeq = st.Seq
		}
		if i == len(wants) {
			break
		}
		wt := wants[i]
		if st.Stage != wt.stage || !strings.EqualFold(st.SQL, wt.sql) {
			continue
		}
		i++
		if st.Verdict != wt.verdict {
			t.Errorf("statement %q (%s): verdict %q, want %q", st.SQL, st.Stage, st.Verdict, wt.verdict)
		}
		if wt.verdict == "block" && (st.Rule != "no-secrets" || st.Reason != "Secrets stay secret.") {
			t.Errorf("refused statement = %+v", st)
		}
		if wt.params != nil {
			var got []string
			for _, p := range st.Params {
				if p == nil {
					got = append(got, "NULL")
				} else {
					got = append(got, *p)
				}
			}
			if !slices.Equal(got, wt.params) && !binaryParams(st.Params, len(wt.params)) {
				t.Errorf("statement %q: params %q, want %q", st.SQL, got, wt.params)
			}
		}
		rs := results[st.Seq]
		if st.Stage == "bind" && len(rs) == 0 {
			// The proxy files an Execute's result under its Parse (see
			// TestKnownBugExtendedResultSeq).
			rs = results[parseSeq]
		}
		switch {
		case wt.tag != "" && (len(rs) != 1 || rs[0].Tag != wt.tag || rs[0].ErrorCode != ""):
			t.Errorf("statement %q (%s): results %+v, want tag %q", st.SQL, st.Stage, rs, wt.tag)
		case wt.code != "" && (len(rs) != 1 || rs[0].ErrorCode != wt.code):
			t.Errorf("statement %q: results %+v, want error %s", st.SQL, rs, wt.code)
		case wt.verdict == "block" && (len(rs) > 1 || len(rs) == 1 && rs[0].ErrorCode != session.CodeInsufficientPrivilege):
			t.Errorf("refused statement %q has results %+v, want at most its 42501", st.SQL, rs)
		}
	}
	if i != len(wants) {
		var got []string
		for _, st := range stmts {
			got = append(got, st.Stage+": "+st.SQL)
		}
		t.Errorf("statement %d (%+v) not recorded in order; recorded:\n%s", i, wants[i], strings.Join(got, "\n"))
	}
	return int64(len(stmts))
}

// binaryParams reports whether params are n values sent in binary (pgx
// sends integers so): "\x" and hex.
func binaryParams(params []*string, n int) bool {
	if len(params) != n {
		return false
	}
	for _, p := range params {
		if p != nil && !strings.HasPrefix(*p, `\x`) && !strings.HasPrefix(*p, "o") {
			return false
		}
	}
	return true
}

// checkTimeline checks replay's output for runSession's session.
func checkTimeline(t *testing.T, timeline string) {
	t.Helper()
	in := []string{
		"session start: carol (issuer static) by scram-sha-256",
		"from 127.0.0.1:",
		"without TLS",
		"database app as user carol, application rec-test",
		"upstream role app_user",
		"credential used: role app_user",
		"query: ALLOW (rule default)",
		"| SELECT 1",
		"result: SELECT 1, 1 rows",
		"parse statement \"ins\": ALLOW",
		"| INSERT INTO t (n, s) VALUES ($1, $2)",
		"bind statement \"ins\": ALLOW",
		"params: $1 = ",
		"result: INSERT 0 1",
		"| SELECT s FROM t WHERE n = $1",
		"result: COPY 3",
		"| SELECT 1/0",
		"result: ERROR 22012: division by zero",
		"query: BLOCK (rule no-secrets): Secrets stay secret.",
		"| SELECT * FROM secrets",
		"tables: secrets",
		"credential released: role app_user",
		"session end: client-exit after ",
	}
	at := 0
	for _, s := range in {
		i := strings.Index(timeline[at:], s)
		if i < 0 {
			t.Errorf("the timeline has no %q after offset %d:\n%s", s, at, timeline)
			return
		}
		at += i + len(s)
	}
}

// dumpAuditTable returns every row of the PostgreSQL store's table as
// text.
func dumpAuditTable(t *testing.T, ctx context.Context, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var dump string
	if err := conn.QueryRow(ctx, "SELECT string_agg(e::text, E'\\n') FROM pgwarden_events e").Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump, "SELECT 1/0") {
		t.Fatalf("the PostgreSQL store does not have the session:\n%s", dump)
	}
	return dump
}
