package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRecordingFailModes records to PostgreSQL, drops the store's table
// in the middle of a session, and checks recording.fail: with closed (the
// default) the next statement is refused and the session ends; with
// best_effort the session goes on, and each lost event is logged.
func TestRecordingFailModes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	auditDSN := f.cluster.SuperConnString("audit")
	for _, mode := range []string{"closed", "best_effort"} {
		t.Run(mode, func(t *testing.T) {
			path := f.writeConfig(t, f.config(fmt.Sprintf("recording: {postgres: %s, key: %s, fail: %s}\n",
				yamlQuote(auditDSN), testRecordingKey, mode)))
			tg := startTestGatewayFile(t, path, testAdminToken)
			conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", tg.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			if err := f.cluster.Exec(ctx, "audit", "DROP TABLE pgwarden_events"); err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, "SELECT 2", pgx.QueryExecModeSimpleProtocol)
			switch mode {
			case "closed":
				if pgCode(err) != "58000" {
					t.Errorf("statement after the store failed: %v; want 58000 (the session cannot be recorded)", err)
				}
				if _, err := conn.Exec(ctx, "SELECT 3", pgx.QueryExecModeSimpleProtocol); err == nil {
					t.Error("the session went on after its recording failed")
				}
			case "best_effort":
				if err != nil {
					t.Fatalf("statement after the store failed: %v; want it to run (best_effort)", err)
				}
				if _, err := conn.Exec(ctx, "SELECT 3", pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Errorf("the session did not go on: %v", err)
				}
				if !strings.Contains(tg.logs.String(), "an event was not recorded; the session goes on (recording.fail: best_effort)") {
					t.Errorf("no warning about the lost events:\n%s", tg.logs.String())
				}
			}
			conn.Close(ctx)
			tg.waitSessions(t, 0)
			tg.stop()
			tg.checkLogs(t, "carol-secret", "app-user-secret", testRecordingKey, f.cluster.Password)
			// The store's table is created again for the next case.
			if err := f.cluster.Exec(ctx, "audit", "DROP TABLE IF EXISTS pgwarden_events"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRecordingStoreUnreachable builds a gateway whose PostgreSQL store
// cannot be reached: the error names the key and not the password.
func TestRecordingStoreUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	const password = "Unreachable-Passw0rd"
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=recorder password=%s dbname=audit connect_timeout=2", addr.Port, password)
	cfg, err := loadConfig(writeFile(t, minimal+"recording: {postgres: "+yamlQuote(dsn)+", key: "+testRecordingKey+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	g, err := buildProxy(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		g.Close()
		t.Fatal("buildProxy succeeded with an unreachable store")
	}
	if !strings.Contains(err.Error(), "line 11: recording.postgres:") {
		t.Errorf("error = %v; want it to name recording.postgres", err)
	}
	for _, s := range []string{password, testRecordingKey} {
		if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
			t.Errorf("the error or the logs show the secret %q: %v\n%s", s, err, logs.String())
		}
	}
}
