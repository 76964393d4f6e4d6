package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-11-24T10:30:00Z":      time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC),
		"2026-11-24T10:30:00.5Z":    time.Date(2026, 11, 24, 10, 30, 0, 5e8, time.UTC),
		"2026-11-24":                time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC),
		"24h":                       now.Add(-24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"2026-11-24T10:30:00+02:00": time.Date(2026, 11, 24, 8, 30, 0, 0, time.UTC),
	} {
		got, err := parseTimeFlag(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeFlag(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "2026-13-01", "10"} {
		if _, err := parseTimeFlag(in, now); err == nil {
			t.Errorf("parseTimeFlag(%q) succeeded", in)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	f := newRecordsFlags("replay")
	speed := f.fs.Float64("speed", 0, "")
	args, ok := parseInterspersed(f.fs, []string{"--config", "c.yaml", "abc", "--speed", "2", "--", "--def"}, &strings.Builder{})
	if !ok || *f.config != "c.yaml" || *speed != 2 || !slices.Equal(args, []string{"abc", "--def"}) {
		t.Errorf("args %q, ok %v, config %q, speed %v", args, ok, *f.config, *speed)
	}
	if _, ok := parseInterspersed(newRecordsFlags("verify").fs, []string{"id", "--nope"}, &strings.Builder{}); ok {
		t.Error("an unknown flag after an argument was accepted")
	}
}

// TestRecordsCommandsUsage checks the usage errors of sessions, replay
// and verify, and a configuration without a recording section.
func TestRecordsCommandsUsage(t *testing.T) {
	for _, cmd := range []string{"sessions", "replay", "verify"} {
		args := []string{cmd}
		if cmd == "replay" {
			args = append(args, "0123")
		}
		if code, _, stderr := runCLI(args, ""); code != exitUsage || !strings.Contains(stderr, "--config is required") {
			t.Errorf("%s without --config: exit %d, stderr %q", cmd, code, stderr)
		}
		code, _, stderr := runCLI(append(args, "--config", writeFile(t, minimal)), "")
		if code != exitError || !strings.Contains(stderr, "has no recording section") {
			t.Errorf("%s without a recording section: exit %d, stderr %q", cmd, code, stderr)
		}
		withDir := writeFile(t, minimal+"recording: {dir: rec, key: "+testRecordingKey+"}\n")
		code, _, stderr = runCLI(append(args, "--config", withDir, "--store", "postgres"), "")
		if code != exitUsage || !strings.Contains(stderr, "recording.postgres is not set") {
			t.Errorf("%s --store postgres without it: exit %d, stderr %q", cmd, code, stderr)
		}
		// A directory nothing was recorded to is not created.
		code, _, stderr = runCLI(append(args, "--config", withDir), "")
		if code != exitError || !strings.Contains(stderr, "line 11: recording.dir:") || !strings.Contains(stderr, "no such file or directory") {
			t.Errorf("%s with no recording.dir yet: exit %d, stderr %q", cmd, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(withDir), "rec")); !os.IsNotExist(err) {
			t.Errorf("%s created recording.dir (stat: %v)", cmd, err)
		}
	}
}

// TestTimeline prints a synthetic session: a delegated identity over TLS,
// a refused Bind with a NULL parameter, multi-line SQL with control
// characters, and checks the waits between events.
func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	p1 := "x'y"
	info := session.Info{ID: "s1", ClientAddr: "10.0.0.1:5000", User: "alice", Database: "app",
		UpstreamUser: "pgw_1", Lease: "pgw_1", StartedAt: t0,
		TLS:      &session.TLSInfo{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256"},
		Identity: session.Identity{Subject: "alice", Issuer: "https://idp", Method: "oauthbearer", Chain: []session.Actor{{Subject: "ci-job"}, {Subject: "agent"}}}}
	events := []session.Event{
		{Kind: session.KindSessionStart, SessionID: "s1", Time: t0, Start: &session.StartEvent{Info: info}},
		{Kind: session.KindCredential, SessionID: "s1", Time: t0.Add(10 * time.Millisecond),
			Credential: &session.CredentialEvent{Action: session.CredentialIssued, User: "pgw_1", Lease: "pgw_1", ExpiresAt: t0.Add(time.Hour)}},
		{Kind: session.KindStatement, SessionID: "s1", Time: t0.Add(2 * time.Second),
			Statement: &session.StatementEvent{Seq: 1, Stage: "query", SQL: "SELECT 1;\n\tSELECT '\x1b[31m'", Verdict: "allow", Rule: "default"}},
		{Kind: session.KindResult, SessionID: "s1", Time: t0.Add(2*time.Second + time.Millisecond),
			Result: &session.ResultEvent{Seq: 1, Tag: "SELECT 1", Rows: 1, Duration: time.Millisecond}},
		{Kind: session.KindStatement, SessionID: "s1", Time: t0.Add(3 * time.Second),
			Statement: &session.StatementEvent{Seq: 2, Stage: "bind", Name: "s", SQL: "DELETE FROM t WHERE a = $1 AND b = $2",
				Params: []*string{&p1, nil}, Verdict: "block", Rule: "ro", Reason: "Read-only.", Tables: []string{"public.t"}}},
		{Kind: session.KindSessionEnd, SessionID: "s1", Time: t0.Add(4 * time.Second),
			End: &session.EndEvent{Reason: session.EndRevoked, ErrorCode: "28000", Message: "revoked", Statements: 2}},
	}
	var out strings.Builder
	var waits []time.Duration
	printTimeline(&out, events, func(d time.Duration) { waits = append(waits, d) })
	want := `session s1, started 2026-11-25T10:00:00Z
+    0.000s  session start: alice (issuer https://idp) by oauthbearer
               through alice > ci-job > agent
               from 10.0.0.1:5000, TLS 1.3 TLS_AES_128_GCM_SHA256
               database app as user alice
               upstream role pgw_1, lease pgw_1
+    0.010s  credential issued: role pgw_1, lease pgw_1, expires 2026-11-25T11:00:00Z
+    2.000s  #1 query: ALLOW (rule default)
               | SELECT 1;
               |     SELECT '?[31m'
+    2.001s  #1 result: SELECT 1, 1 rows, 1ms
+    3.000s  #2 bind statement "s": BLOCK (rule ro): Read-only.
               | DELETE FROM t WHERE a = $1 AND b = $2
               params: $1 = 'x''y', $2 = NULL
               tables: public.t
+    4.000s  session end: revoked after 2 statements; the client was sent FATAL 28000: revoked
`
	if out.String() != want {
		t.Errorf("timeline:\n%s\nwant:\n%s", out.String(), want)
	}
	wantWaits := []time.Duration{10 * time.Millisecond, 1990 * time.Millisecond, time.Millisecond, 999 * time.Millisecond, time.Second}
	if !slices.Equal(waits, wantWaits) {
		t.Errorf("waits = %v, want %v", waits, wantWaits)
	}
}
