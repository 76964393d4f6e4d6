package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

var testKey = session.NewSecret("journal-test-recording-key")

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openT opens a journal in dir with test hooks and closes it at the end of
// the test.
func openT(t testing.TB, dir string, opts Options, h hooks) *Journal {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLog()
	}
	j, err := open(dir, testKey, opts, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// script is a whole session: start, credential, statements with results
// (one refused), credential released, end. Times are fixed, so that the
// ledger's bytes are too.
func script(id, subject string, start time.Time, sqls ...string) []session.Event {
	claims, _ := session.NewClaims([]byte(`{"tenant":"acme","acr":"mfa"}`))
	info := session.Info{
		ID: id, ClientAddr: "10.0.0.7:51234", User: subject, Database: "shop", ApplicationName: "psql",
		Params: map[string]string{"search_path": "public"}, UpstreamUser: "app_ro", StartedAt: start,
		TLS: &session.TLSInfo{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256"},
		Identity: session.Identity{Subject: subject, Issuer: "https://idp.example", Groups: []string{"eng"},
			Method: "oauth", Chain: []session.Actor{{Subject: "agent-" + subject, Issuer: "agents"}}, Claims: claims},
	}
	at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Millisecond) }
	evs := []session.Event{
		{Kind: session.KindSessionStart, SessionID: id, Time: start, Start: &session.StartEvent{Info: info}},
		{Kind: session.KindCredential, SessionID: id, Time: at(1), Credential: &session.CredentialEvent{
			Action: session.CredentialIssued, User: "app_ro", Lease: "lease-1", ExpiresAt: start.Add(time.Hour)}},
	}
	for i, q := range sqls {
		seq := int64(i + 1)
		verdict, reason := "allow", ""
		if strings.HasPrefix(strings.ToLower(q), "delete") {
			verdict, reason = "block", "deletes are not allowed <here> & now"
		}
		evs = append(evs, session.Event{Kind: session.KindStatement, SessionID: id, Time: at(10 + 2*i),
			Statement: &session.StatementEvent{Seq: seq, Protocol: session.ProtocolSimple, SQL: q, Verdict: verdict,
				Rule: "r1", Reason: reason}})
		if verdict == "allow" {
			evs = append(evs, session.Event{Kind: session.KindResult, SessionID: id, Time: at(11 + 2*i),
				Result: &session.ResultEvent{Seq: seq, Tag: "SELECT 3", Rows: 3, Duration: 1500 * time.Microsecond}})
		}
	}
	n := len(sqls)
	evs = append(evs,
		session.Event{Kind: session.KindCredential, SessionID: id, Time: at(100), Credential: &session.CredentialEvent{
			Action: session.CredentialReleased, User: "app_ro", Lease: "lease-1"}},
		session.Event{Kind: session.KindSessionEnd, SessionID: id, Time: at(101), End: &session.EndEvent{
			Reason: session.EndClientExit, Statements: int64(n)}},
	)
	return evs
}

func record(t testing.TB, j *Journal, evs ...session.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := j.Record(context.Background(), ev); err != nil {
			t.Fatalf("Record %s: %v", ev.Kind, err)
		}
	}
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lines reads a file's lines (without their newlines).
func lines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.Split(b[:len(b)-1], []byte("\n"))
}

// walData returns a write-ahead log segment's written part: its lines,
// without the zeros laid ahead of them.
func walData(t testing.TB, path string) []byte {
	t.Helper()
	b := readFile(t, path)
	for i := 0; i < len(b); {
		if b[i] == 0 {
			return b[:i]
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b
		}
		i += j + 1
	}
	return b
}

func writeLines(t testing.TB, path string, ls [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range ls {
		b = append(append(b, l...), '\n')
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantTamper fails unless err is a *session.TamperError for session id at
// entry seq whose reason contains why.
func wantTamper(t testing.TB, err error, id string, seq int64, why string) {
	t.Helper()
	var te *session.TamperError
	if !errors.As(err, &te) {
		t.Fatalf("want a *TamperError at entry %d (%s), got %v", seq, why, err)
	}
	if te.Session != id || te.Seq != seq || !strings.Contains(te.Reason, why) {
		t.Fatalf("want a *TamperError for %s at entry %d (%s), got %s at %d: %q", id, seq, why, te.Session, te.Seq, te.Reason)
	}
}

func sid(i int) string { return fmt.Sprintf("%032x", 0xabc000+i) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func itoa(n int) string { return fmt.Sprint(n) }

// dirNames lists the names in dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// segmentsIn lists the write-ahead log segments in dir.
func segmentsIn(t testing.TB, dir string) []string {
	t.Helper()
	var segs []string
	for _, name := range dirNames(t, dir) {
		if _, ok := parseSegName(name); ok {
			segs = append(segs, name)
		}
	}
	return segs
}

// wantNoSegments fails unless dir holds only sessions' files and the lock
// (a journal closed cleanly).
func wantNoSegments(t testing.TB, dir string) {
	t.Helper()
	for _, name := range dirNames(t, dir) {
		if name != lockName && !strings.HasSuffix(name, ext) {
			t.Fatalf("%s is left in the journal's directory: %v", name, dirNames(t, dir))
		}
	}
}

// crash abandons j as a crash of its process would: no commit, no
// checkpoint, nothing synced or removed; its descriptors are closed and
// its lock released, so that the directory can be opened again. (A
// checkpoint under way finishes first, as if the crash came after it.)
func crash(t testing.TB, j *Journal) {
	t.Helper()
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.inflight.Wait()
	j.leaders.Wait()
	close(j.stop)
	<-j.done
	<-j.cpDone
	for _, f := range j.open {
		if f.f != nil {
			f.f.Close()
		}
	}
	select {
	case old := <-j.cpOld:
		old.f.Close()
	default:
	}
	if j.wal.cur != nil {
		j.wal.cur.f.Close()
	}
	if j.wal.spare != nil {
		j.wal.spare.f.Close()
	}
	j.dirf.Close()
	unlockDir(j.lock)
}
