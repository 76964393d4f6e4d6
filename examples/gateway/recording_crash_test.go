package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/session"
)

// TestRecordingSurvivesKill runs `pgwarden serve` recording to a
// directory while a client inserts numbered rows in a loop (by turns a
// simple query with the number in its SQL and a prepared statement with
// the number as a parameter), kills the gateway with SIGKILL mid-session,
// and checks that every row that reached the database has its statement
// event on disk: the write-ahead promise. `pgwarden verify` reports the
// killed session's ledger not sealed (exit 1; 0 with --allow-open), before
// and after the journal's recovery seals it.
func TestRecordingSurvivesKill(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	path := f.writeConfig(t, f.config("recording: {dir: rec, key: \"${PGW_TEST_RECORDING_KEY}\"}\n"))
	sp := startServe(t, ctx, bin, path, "PGW_TEST_RECORDING_KEY="+testRecordingKey)

	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", sp.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var done atomic.Int64
	loopErr := make(chan error, 1)
	go func() {
		for i := int64(1); ; i++ {
			var err error
			if i%2 == 1 {
				_, err = conn.Exec(ctx, fmt.Sprintf("INSERT INTO t (n, s) VALUES (%d, 'crash')", i), pgx.QueryExecModeSimpleProtocol)
			} else {
				_, err = conn.Exec(ctx, "INSERT INTO t (n, s) VALUES ($1, 'crash')", int32(i))
			}
			if err != nil {
				loopErr <- err
				return
			}
			done.Store(i)
		}
	}()
	for done.Load() < 60 {
		select {
		case err := <-loopErr:
			t.Fatalf("the client stopped before the kill: %v", err)
		case <-ctx.Done():
			t.Fatal("the client made no progress")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := sp.cmd.Process.Kill(); err != nil { // SIGKILL, mid-session
		t.Fatal(err)
	}
	if err := <-sp.exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("serve exited with %v, want killed", err)
	}
	if err := <-loopErr; err == nil {
		t.Fatal("the client's loop ended without an error")
	}

	// The rows in the database.
	super, err := pgx.Connect(ctx, f.cluster.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())
	rows, err := super.Query(ctx, "SELECT n FROM t WHERE s = 'crash' ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	inDB, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if len(inDB) < 60 {
		t.Fatalf("%d rows in the database, want at least 60", len(inDB))
	}

	// The binary's verify, with the key from the environment as serve had.
	verify := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, append([]string{"verify", "--config", path}, args...)...)
		cmd.Env = append(os.Environ(), "PGW_TEST_RECORDING_KEY="+testRecordingKey)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	// Before any gateway opens the directory again, the killed session's
	// ledger is not sealed.
	code, stdout, stderr := verify()
	if code != exitError || !strings.Contains(stdout, "  NOT SEALED (running or crashed): the record stops after entry ") {
		t.Errorf("verify after the kill: exit %d, stdout %q, stderr %q; want 1 and NOT SEALED", code, stdout, stderr)
	}
	if code, stdout, _ := verify("--allow-open"); code != exitOK {
		t.Errorf("verify --allow-open after the kill: exit %d, stdout %q", code, stdout)
	}

	// The statement events on disk (opening the journal to record, as
	// the next gateway does, recovers the killed session's ledger).
	rec := filepath.Join(f.dir, "rec")
	j := openJournal(t, rec)
	list, err := j.Sessions(ctx, session.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions = %+v, %v; want one", list, err)
	}
	id := list[0].ID
	events, err := j.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[int32]bool{}
	for _, ev := range events {
		st := ev.Statement
		if st == nil || st.Verdict != "allow" {
			continue
		}
		switch {
		case st.Stage == "query" && strings.HasSuffix(st.SQL, ", 'crash')"):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(st.SQL, "INSERT INTO t (n, s) VALUES ("), ", 'crash')"))
			if err != nil {
				t.Fatalf("statement %q: %v", st.SQL, err)
			}
			recorded[int32(n)] = true
		case st.Stage == "bind" && len(st.Params) == 1 && st.Params[0] != nil:
			// pgx sends an int32 in binary: \x and 8 hex digits.
			b, err := hex.DecodeString(strings.TrimPrefix(*st.Params[0], `\x`))
			if err != nil || len(b) != 4 {
				t.Fatalf("bind parameter %q", *st.Params[0])
			}
			recorded[int32(b[0])<<24|int32(b[1])<<16|int32(b[2])<<8|int32(b[3])] = true
		}
	}
	for _, n := range inDB {
		if !recorded[n] {
			t.Errorf("row %d is in the database, but its statement is not on disk", n)
		}
	}
	t.Logf("%d rows in the database, %d inserts recorded", len(inDB), len(recorded))
	if recovered, err := j.Recovered(ctx, id); err != nil || !recovered {
		t.Errorf("Recovered = %v, %v; want the killed session's ledger sealed at recovery", recovered, err)
	}

	code, stdout, stderr = verify()
	if code != exitError || !strings.HasPrefix(stdout, id+"  NOT SEALED (running or crashed): sealed at recovery; the record stops after entry ") {
		t.Errorf("verify after the recovery: exit %d, stdout %q, stderr %q; want 1 and NOT SEALED", code, stdout, stderr)
	}
	if code, stdout, _ := verify("--allow-open"); code != exitOK {
		t.Errorf("verify --allow-open after the kill: exit %d, stdout %q", code, stdout)
	}
	texts := readDir(t, rec)
	texts["serve's stderr"] = sp.stderr.String()
	checkNoSecrets(t, texts, "carol-secret", "app-user-secret", testAdminToken, testRecordingKey, f.cluster.Password)
}
