package proxy_test

// Red-team tests of the event-loop relay (relay_loop.go, internal/evloop)
// through real clients against the real cluster: sessions that wait for
// each other on one loop, clients that stop reading or vanish, cancels,
// administrative ends, idle timeouts, slow plugins, COPY, LISTEN/NOTIFY.
// They pass with either relay (PGWARDEN_TEST_RELAY=goroutines); the
// assertions about the loop itself are skipped in that mode. Deadlines are
// failure guards only: nothing here measures speed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// rlGuard bounds a wait that only a bug makes long.
const rlGuard = 20 * time.Second

// rlWantLoop checks, unless every session is forced onto goroutines, that
// at least n sessions are relayed from the event loop.
func rlWantLoop(t testing.TB, g *gateway, n int) {
	t.Helper()
	if goroutineRelayForced() || runtime.GOOS != "linux" {
		return
	}
	if got := proxy.LoopSessions(g.Proxy); got < n {
		t.Fatalf("%d sessions on the event loop, want at least %d", got, n)
	}
}

// rlWaitLoopIdle waits until no session is on the loop and none is live.
func rlWaitLoopIdle(t testing.TB, g *gateway) {
	t.Helper()
	waitFor(t, func() bool { return proxy.LoopSessions(g.Proxy) == 0 && len(g.Sessions()) == 0 })
}

// rlSessionID returns the id of the live session whose application_name is
// app.
func rlSessionID(t testing.TB, g *gateway, app string) string {
	t.Helper()
	var id string
	waitFor(t, func() bool {
		for _, s := range g.Sessions() {
			if s.Info.ApplicationName == app {
				id = s.Info.ID
				return true
			}
		}
		return false
	})
	return id
}

// rlSessionGone reports whether no live session has application_name app.
func rlSessionGone(g *gateway, app string) bool {
	for _, s := range g.Sessions() {
		if s.Info.ApplicationName == app {
			return false
		}
	}
	return true
}

// rlAlive checks that conn still answers.
func rlAlive(t testing.TB, conn *pgx.Conn, what string) {
	t.Helper()
	var n int
	if err := conn.QueryRow(testContext(t), "select 6 * 7").Scan(&n); err != nil || n != 42 {
		t.Fatalf("%s: select 6 * 7 = %d, %v", what, n, err)
	}
}

// rlEncode concatenates encoded frontend messages.
func rlEncode(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// rlRows reads messages up to ReadyForQuery and returns the first column of
// every DataRow (copied: pgproto3 reuses its buffers).
func rlRows(t testing.TB, fe *pgproto3.Frontend) []string {
	t.Helper()
	var out []string
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %d rows: %v", len(out), err)
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			out = append(out, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			t.Fatalf("error %s: %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return out
		}
	}
}

// rlUpstreamRunning counts server backends (other than the caller's)
// running a statement that contains marker.
func rlUpstreamRunning(t testing.TB, marker string) int {
	t.Helper()
	ctx := testContext(t)
	c, err := pgconn.Connect(ctx, pg.SuperConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	res := c.ExecParams(ctx, "select count(*) from pg_stat_activity where pid <> pg_backend_pid() and state = 'active' and query like '%' || $1 || '%'",
		[][]byte{[]byte(marker)}, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	n, err := strconv.Atoi(string(res.Rows[0][0]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Many sessions at once, plaintext and TLS, each sending one extended-
// protocol pipeline far deeper than MaxPipeline in a single write (a Sync
// after every Execute, so that the server answers as it goes; see
// TestRedteamLoopPipelineFullWithoutSync): the frontend relay must
// stop and wait for the backend relay of the same session, which runs on
// the same loop. Every answer must come back, in order, to the right
// session.
func TestRedteamLoopPipelinesDeeperThanTheLimit(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 4 })
	const sessions, depth = 8, 300
	var wg sync.WaitGroup
	var opened sync.WaitGroup
	opened.Add(sessions)
	for i := range sessions {
		dsn := g.dsn("alice", alicePassword)
		switch i % 4 {
		case 1:
			dsn = g.dsn("bob", bobPassword)
		case 3:
			dsn = g.tlsDSN("alice", alicePassword)
		}
		fe, conn := hijack(t, connectRaw(t, dsn))
		opened.Done()
		wg.Add(1)
		go func() {
			defer wg.Done()
			opened.Wait() // every session is open: they run side by side
			msgs := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "select $1::int4 * 2 + " + strconv.Itoa(i)}}
			for j := range depth {
				msgs = append(msgs,
					&pgproto3.Bind{Parameters: [][]byte{[]byte(strconv.Itoa(j))}},
					&pgproto3.Execute{},
					&pgproto3.Sync{})
			}
			batch := rlEncode(t, msgs...)
			wrote := make(chan error, 1)
			go func() {
				_, err := conn.Write(batch)
				wrote <- err
			}()
			want := func(what string, ok bool, m pgproto3.BackendMessage) bool {
				if !ok {
					t.Errorf("session %d: %s: got %T %+v", i, what, m, m)
				}
				return ok
			}
			m, err := fe.Receive()
			if err != nil {
				t.Errorf("session %d: %v", i, err)
				return
			}
			if _, ok := m.(*pgproto3.ParseComplete); !want("ParseComplete", ok, m) {
				return
			}
			for j := range depth {
				m, err := fe.Receive()
				if err != nil {
					t.Errorf("session %d answer %d: %v", i, j, err)
					return
				}
				if _, ok := m.(*pgproto3.BindComplete); !want(fmt.Sprintf("answer %d BindComplete", j), ok, m) {
					return
				}
				if m, err = fe.Receive(); err != nil {
					t.Errorf("session %d answer %d: %v", i, j, err)
					return
				}
				dr, ok := m.(*pgproto3.DataRow)
				if !want(fmt.Sprintf("answer %d DataRow", j), ok, m) {
					return
				}
				if got, wantV := string(dr.Values[0]), strconv.Itoa(2*j+i); got != wantV {
					t.Errorf("session %d answer %d = %s, want %s (answers crossed?)", i, j, got, wantV)
					return
				}
				if m, err = fe.Receive(); err != nil {
					t.Errorf("session %d answer %d: %v", i, j, err)
					return
				}
				if _, ok := m.(*pgproto3.CommandComplete); !want(fmt.Sprintf("answer %d CommandComplete", j), ok, m) {
					return
				}
				if m, err = fe.Receive(); err != nil {
					t.Errorf("session %d answer %d: %v", i, j, err)
					return
				}
				if _, ok := m.(*pgproto3.ReadyForQuery); !want(fmt.Sprintf("answer %d ReadyForQuery", j), ok, m) {
					return
				}
			}
			if err := <-wrote; err != nil {
				t.Errorf("session %d: writing the pipeline: %v", i, err)
			}
		}()
	}
	opened.Wait()
	rlWantLoop(t, g, sessions)
	wg.Wait()
}

// A client that asks for a million rows and never reads them fills every
// buffer between it and the server, and its backend relay blocks writing
// to it. The other sessions on the loop, and new logins, must go on; the
// stuck session must still be ended by Terminate, its upstream statement
// stopped, and the loop released when everything is closed.
func TestRedteamLoopUnreadMillionRowsDoesNotStallOthers(t *testing.T) {
	g := startGateway(t, nil)
	const marker = "rl_unread_marker"
	fe, hog := hijack(t, connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-hog")))
	_ = fe
	hog.SetDeadline(time.Now().Add(time.Minute))
	if _, err := hog.Write(rlEncode(t, &pgproto3.Query{String: "select g, repeat('x', 200) as " + marker +
		" from generate_series(1, 1000000) g"})); err != nil {
		t.Fatal(err)
	}
	hogID := rlSessionID(t, g, "rl-hog")
	waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 1 })
	// Others are served meanwhile, plaintext and TLS, old and new sessions.
	other := connect(t, g.dsn("bob", bobPassword))
	var wg sync.WaitGroup
	for i := range 4 {
		dsn := g.dsn("alice", alicePassword)
		if i%2 == 1 {
			dsn = g.tlsDSN("alice", alicePassword)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(testContext(t), dsn)
			if err != nil {
				t.Errorf("login while a session is stuck: %v", err)
				return
			}
			defer conn.Close(context.Background())
			for j := range 30 {
				var n int
				if err := conn.QueryRow(testContext(t), "select $1::int + 1", j).Scan(&n); err != nil || n != j+1 {
					t.Errorf("session %d query %d: %d, %v", i, j, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rlAlive(t, other, "bob while alice's session is stuck")
	rlWantLoop(t, g, 2)
	if err := g.Terminate(hogID, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return rlSessionGone(g, "rl-hog") })
	waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 0 })
	rlAlive(t, other, "bob after the stuck session was terminated")
	hog.Close()
	other.Close(testContext(t))
	rlWaitLoopIdle(t, g)
}

// A client that pipelines thousands of queries with large answers and
// reads none of them: its backend relay blocks writing to it, and its
// frontend relay, its pipeline full, waits for the backend relay. Both
// relays of the session are stuck at once; the other sessions go on, and
// when the client finally reads, every answer is there, in order.
func TestRedteamLoopPipeliningClientThatDoesNotRead(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 8 })
	fe, greedy := hijack(t, connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-greedy")))
	greedy.SetDeadline(time.Now().Add(time.Minute))
	const queries = 2000
	var batch []pgproto3.FrontendMessage
	for k := range queries {
		batch = append(batch, &pgproto3.Query{String: fmt.Sprintf("select %d, repeat('q', 4000)", k)})
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := greedy.Write(rlEncode(t, batch...))
		wrote <- err
	}()
	// Wait until the session is blocked both ways: answers pile up unread,
	// so its statements stop (the pipeline stays full).
	waitFor(t, func() bool {
		for _, s := range g.Sessions() {
			if s.Info.ApplicationName == "rl-greedy" && s.State == "active" && s.Statements >= 8 {
				return true
			}
		}
		return false
	})
	other := connect(t, g.dsn("bob", bobPassword))
	otherTLS := connect(t, g.tlsDSN("alice", alicePassword))
	for j := range 50 {
		rlAlive(t, other, fmt.Sprintf("another session, query %d", j))
		rlAlive(t, otherTLS, fmt.Sprintf("another TLS session, query %d", j))
	}
	rlWantLoop(t, g, 3)
	for k := range queries {
		var first string
		rows := 0
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("answer %d: %v", k, err)
			}
			if dr, ok := m.(*pgproto3.DataRow); ok {
				first = string(dr.Values[0])
				if len(dr.Values[1]) != 4000 {
					t.Fatalf("answer %d: a %d-byte value, want 4000", k, len(dr.Values[1]))
				}
				rows++
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		if rows != 1 || first != strconv.Itoa(k) {
			t.Fatalf("answer %d: %d rows, first column %q", k, rows, first)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the pipeline: %v", err)
	}
}

// Clients that vanish in the middle of a large result, by closing or by
// resetting the connection, plaintext or TLS: each session must end, its
// statement must stop on the server, and the others must go on.
func TestRedteamLoopClientVanishesMidResult(t *testing.T) {
	g := startGateway(t, nil)
	other := connect(t, g.dsn("bob", bobPassword))
	for i, tc := range []struct {
		name  string
		tls   bool
		reset bool
	}{{"close", false, false}, {"reset", false, true}, {"tls-close", true, false}, {"tls-reset", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("rl_vanish_%d", i)
			app := "rl-vanish-" + tc.name
			dsn := g.dsn("alice", alicePassword, "application_name="+app)
			if tc.tls {
				dsn = g.tlsDSN("alice", alicePassword, "application_name="+app)
			}
			pc := connectRaw(t, dsn)
			// Under TLS the client's socket is under its TLS connection:
			// keep a handle on the socket to reset it.
			var sock *net.TCPConn
			if nc, ok := pc.Conn().(*net.TCPConn); ok {
				sock = nc
			}
			fe, conn := hijack(t, pc)
			if _, err := conn.Write(rlEncode(t, &pgproto3.Query{String: "select g, repeat('y', 100) as " + marker +
				" from generate_series(1, 1000000) g"})); err != nil {
				t.Fatal(err)
			}
			rows := 0
			for rows < 2000 {
				m, err := fe.Receive()
				if err != nil {
					t.Fatalf("after %d rows: %v", rows, err)
				}
				if _, ok := m.(*pgproto3.DataRow); ok {
					rows++
				}
			}
			if tc.reset && sock != nil {
				sock.SetLinger(0)
			}
			conn.Close()
			waitFor(t, func() bool { return rlSessionGone(g, app) })
			waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 0 })
			rlAlive(t, other, "another session")
		})
	}
	other.Close(testContext(t))
	rlWaitLoopIdle(t, g)
}

// Cancel requests for statements running on loop sessions, several at once,
// plaintext and TLS: each statement ends with 57014 and its session goes on.
func TestRedteamLoopCancelConcurrent(t *testing.T) {
	g := startGateway(t, nil)
	const sessions = 4
	conns := make([]*pgconn.PgConn, sessions)
	for i := range sessions {
		dsn := g.dsn("alice", alicePassword)
		if i%2 == 1 {
			dsn = g.tlsDSN("bob", bobPassword)
		}
		conns[i] = connectRaw(t, dsn)
	}
	rlWantLoop(t, g, sessions)
	const marker = "rl_cancel_marker"
	errs := make(chan error, sessions)
	for _, c := range conns {
		go func() {
			_, err := c.Exec(testContext(t), "select pg_sleep(30) as "+marker).ReadAll()
			errs <- err
		}()
	}
	waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == sessions })
	for _, c := range conns {
		go func() {
			if err := c.CancelRequest(testContext(t)); err != nil {
				t.Errorf("cancel request: %v", err)
			}
		}()
	}
	for range sessions {
		select {
		case err := <-errs:
			if pgCode(err) != "57014" {
				t.Errorf("cancelled statement: %v, want SQLSTATE 57014", err)
			}
		case <-time.After(rlGuard):
			t.Fatal("a statement was not cancelled")
		}
	}
	for i, c := range conns {
		if err := execErr(testContext(t), c, "select 1"); err != nil {
			t.Errorf("session %d after its cancel: %v", i, err)
		}
	}
}

// Terminate and Revoke while the sessions are busy on the loop: a long
// statement, a deep pipeline waiting for room, and an unread result. Each
// client gets its FATAL (or loses the connection when it was not reading),
// the server side stops, and the loop is released.
func TestRedteamLoopTerminateAndRevokeWhileBusy(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 2 })
	ctx := testContext(t)
	const marker = "rl_admin_marker"
	const hogMarker = "rl_admin_hog"
	sleeper := connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-sleeper"))
	bobSleeper := connectRaw(t, g.dsn("bob", bobPassword, "application_name=rl-bob"))
	_, bobTLS := hijack(t, connectRaw(t, g.tlsDSN("bob", bobPassword, "application_name=rl-bob-tls")))
	_, hog := hijack(t, connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-hog2")))
	rlWantLoop(t, g, 4)

	sleepErr := make(chan error, 1)
	go func() { sleepErr <- execErr(ctx, sleeper, "select pg_sleep(10) as "+marker) }()
	bobErr := make(chan error, 1)
	go func() { bobErr <- execErr(ctx, bobSleeper, "select pg_sleep(10) as "+marker) }()
	// A pipeline of sleeps deeper than the limit: the frontend relay waits
	// for room.
	var sleeps []pgproto3.FrontendMessage
	for range 6 {
		sleeps = append(sleeps, &pgproto3.Query{String: "select pg_sleep(3) as " + marker})
	}
	if _, err := bobTLS.Write(rlEncode(t, sleeps...)); err != nil {
		t.Fatal(err)
	}
	hog.Write(rlEncode(t, &pgproto3.Query{String: "select g, repeat('z', 200) as " + hogMarker +
		" from generate_series(1, 1000000) g"}))
	waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 3 && rlUpstreamRunning(t, hogMarker) == 1 })

	n, err := g.Revoke("", "bob", "red team")
	if err != nil || n != 2 {
		t.Fatalf("Revoke = %d, %v; want 2 sessions ended", n, err)
	}
	select {
	case err := <-bobErr:
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28000" || pgErr.Severity != "FATAL" {
			t.Errorf("bob's busy session after Revoke: %v, want FATAL 28000", err)
		}
	case <-time.After(rlGuard):
		t.Fatal("a revoked busy session never got its FATAL")
	}
	if e := readFatal(t, bobTLS); e == nil || e.Code != "28000" || e.Severity != "FATAL" {
		t.Errorf("bob's pipelining TLS session after Revoke: last error %+v, want FATAL 28000", e)
	}
	if err := g.Terminate(rlSessionID(t, g, "rl-sleeper"), ""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sleepErr:
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
			t.Errorf("terminated busy session: %v, want FATAL 57P01", err)
		}
	case <-time.After(rlGuard):
		t.Fatal("a terminated busy session never got its FATAL")
	}
	if err := g.Terminate(rlSessionID(t, g, "rl-hog2"), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(g.Sessions()) == 0 })
	// Ending a session cancels its running statement (cancelRunning): the
	// sleeps and the hog are gone from the server too.
	waitFor(t, func() bool { return rlUpstreamRunning(t, hogMarker) == 0 && rlUpstreamRunning(t, marker) == 0 })
	hog.Close()
	rlWaitLoopIdle(t, g)
	g.Unrevoke("", "bob")
	// Simple protocol: with MaxPipeline 2 an extended-protocol query
	// hangs (see TestRedteamLoopPipelineFullWithoutSync).
	if err := execErr(ctx, connectRaw(t, g.dsn("bob", bobPassword)), "select 1"); err != nil {
		t.Fatalf("bob after Unrevoke, on a new loop: %v", err)
	}
}

// Shutdown while sessions keep sending on the loop: each finishes what it
// is doing and gets FATAL 57P01 when idle; Shutdown returns and the loop
// is released.
func TestRedteamLoopShutdownWhileBusy(t *testing.T) {
	g := startGateway(t, nil)
	const sessions = 6
	conns := make([]*pgconn.PgConn, sessions)
	for i := range sessions {
		dsn := g.dsn("alice", alicePassword)
		if i%3 == 2 {
			dsn = g.tlsDSN("bob", bobPassword)
		}
		conns[i] = connectRaw(t, dsn)
	}
	rlWantLoop(t, g, sessions)
	var wg sync.WaitGroup
	var ran atomic.Int64
	started := make(chan struct{}, sessions)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				err := execErr(context.Background(), c, "select pg_sleep(0.01); select "+strconv.Itoa(j))
				if j == 0 {
					started <- struct{}{}
				}
				if err != nil {
					var pgErr *pgconn.PgError
					if errors.As(err, &pgErr) && pgErr.Code != "57P01" {
						t.Errorf("session %d: %v, want FATAL 57P01 (or a closed connection)", i, err)
					}
					if j == 0 {
						t.Errorf("session %d: the first statement failed: %v", i, err)
					}
					return
				}
				ran.Add(1)
				if j > 2000 {
					t.Errorf("session %d was never ended by Shutdown", i)
					return
				}
			}
		}()
	}
	for range sessions {
		<-started
	}
	ctx, cancel := context.WithTimeout(context.Background(), rlGuard)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	if ran.Load() < sessions {
		t.Fatalf("only %d statements ran", ran.Load())
	}
	if n := proxy.LoopSessions(g.Proxy); n != 0 {
		t.Fatalf("%d sessions still on the loop after Shutdown returned", n)
	}
	if err := <-g.serve; err != proxy.ErrProxyClosed {
		t.Fatalf("Serve returned %v", err)
	}
	g.serve <- proxy.ErrProxyClosed // for the cleanup check
}

// Close while sessions are busy in every way: a running statement, a
// pipeline waiting for room, an unread result, a COPY in progress, and an
// idle session. Close returns, every client loses its session, and no
// session is left on the loop.
func TestRedteamLoopCloseWhileBusy(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 2 })
	ctx := testContext(t)
	const marker = "rl_close_marker"
	const hogMarker = "rl_close_hog"
	idle := connectRaw(t, g.dsn("alice", alicePassword))
	sleeper := connectRaw(t, g.tlsDSN("alice", alicePassword))
	_, piper := hijack(t, connectRaw(t, g.dsn("bob", bobPassword)))
	copier := connectRaw(t, g.dsn("alice", alicePassword))
	_, hog := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	if err := execErr(ctx, copier, "create temp table rl_close_copy(n int)"); err != nil {
		t.Fatal(err)
	}
	rlWantLoop(t, g, 5)
	errs := make(chan error, 2)
	go func() { errs <- execErr(ctx, sleeper, "select pg_sleep(10) as "+marker) }()
	var sleeps []pgproto3.FrontendMessage
	for range 6 {
		sleeps = append(sleeps, &pgproto3.Query{String: "select pg_sleep(3) as " + marker})
	}
	if _, err := piper.Write(rlEncode(t, sleeps...)); err != nil {
		t.Fatal(err)
	}
	copyStarted := make(chan struct{})
	go func() {
		r, w := io.Pipe()
		go func() {
			w.Write([]byte("1\n2\n"))
			close(copyStarted)
			time.Sleep(30 * time.Second) // the COPY stays open
			w.Close()
		}()
		_, err := copier.CopyFrom(ctx, r, "copy rl_close_copy from stdin")
		r.CloseWithError(errors.New("done"))
		errs <- err
	}()
	hog.Write(rlEncode(t, &pgproto3.Query{String: "select g, repeat('z', 200) as " + hogMarker +
		" from generate_series(1, 1000000) g"}))
	waitFor(t, func() bool { return rlUpstreamRunning(t, marker) == 2 && rlUpstreamRunning(t, hogMarker) == 1 })
	<-copyStarted
	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(rlGuard):
		t.Fatal("Close did not return while sessions were busy")
	}
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a busy session's work succeeded after Close")
			}
		case <-time.After(rlGuard):
			t.Fatal("a busy client never learnt of the Close")
		}
	}
	if e := readFatal(t, piper); e == nil || e.Code != "57P01" {
		t.Errorf("the pipelining session after Close: last error %+v, want FATAL 57P01", e)
	}
	if err := execErr(ctx, idle, "select 1"); err == nil {
		t.Fatal("the idle session still works after Close")
	}
	if n := proxy.LoopSessions(g.Proxy); n != 0 {
		t.Fatalf("%d sessions on the loop after Close returned", n)
	}
	waitFor(t, func() bool { return rlUpstreamRunning(t, hogMarker) == 0 })
	hog.Close()
}

// The idle timeout on loop sessions: an idle one ends with 57P05, one
// running a statement longer than the timeout does not, and one that keeps
// talking does not.
func TestRedteamLoopIdleTimeout(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.IdleTimeout = 300 * time.Millisecond })
	ctx := testContext(t)
	idle := connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-idle"))
	busy := connectRaw(t, g.tlsDSN("alice", alicePassword))
	chatty := connectRaw(t, g.dsn("bob", bobPassword))
	rlWantLoop(t, g, 3)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := execErr(ctx, busy, "select pg_sleep(1)"); err != nil {
			t.Errorf("a statement longer than the idle timeout was cut: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			if err := execErr(ctx, chatty, "select pg_sleep(0.05)"); err != nil {
				t.Errorf("a session that kept talking was ended: %v", err)
				return
			}
		}
	}()
	waitFor(t, func() bool { return rlSessionGone(g, "rl-idle") })
	err := execErr(ctx, idle, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P05" {
		t.Fatalf("the idle session: %v, want FATAL 57P05", err)
	}
	wg.Wait()
}

// A policy that takes 50 ms to decide (a remote service, say: it does not
// tell the loop) for one session, while another session on the same loop
// keeps working: both finish, with the right answers.
func TestRedteamLoopSlowPolicyDoesNotStallOthers(t *testing.T) {
	var slowCalls atomic.Int64
	g := startGateway(t, func(p *proxy.Proxy) {
		allow := policy.AllowAll()
		p.Policy = policy.Func(func(ctx context.Context, q *policy.Query) (policy.Decision, error) {
			if strings.Contains(q.SQL, "rl_slow_policy") {
				slowCalls.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
			return allow.Decide(ctx, q)
		})
	})
	slow := connect(t, g.dsn("alice", alicePassword))
	fast := connect(t, g.dsn("alice", alicePassword))
	fastTLS := connect(t, g.tlsDSN("bob", bobPassword))
	rlWantLoop(t, g, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for j := range 10 {
			var n int
			// Extended protocol: the policy is asked at Parse and at Bind.
			if err := slow.QueryRow(testContext(t), "select $1::int + 1 as rl_slow_policy", j).Scan(&n); err != nil || n != j+1 {
				t.Errorf("slow session %d: %d, %v", j, n, err)
				return
			}
		}
	}()
	for _, c := range []*pgx.Conn{fast, fastTLS} {
		go func() {
			defer wg.Done()
			for j := range 150 {
				var n int
				if err := c.QueryRow(testContext(t), "select $1::int * 3", j).Scan(&n); err != nil || n != 3*j {
					t.Errorf("fast session %d: %d, %v", j, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if slowCalls.Load() < 10 {
		t.Fatalf("the slow policy was asked %d times; the test did not test it", slowCalls.Load())
	}
}

// COPY FROM STDIN and COPY TO STDOUT of many rows on loop sessions,
// several at once, plaintext and TLS.
func TestRedteamLoopCopyInAndOut(t *testing.T) {
	g := startGateway(t, nil)
	const sessions, rows = 4, 20000
	var wg sync.WaitGroup
	for i := range sessions {
		dsn := g.dsn("alice", alicePassword)
		if i%2 == 1 {
			dsn = g.tlsDSN("alice", alicePassword)
		}
		conn := connect(t, dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := testContext(t)
			table := fmt.Sprintf("rl_copy_%d", i)
			if _, err := conn.Exec(ctx, "create temp table "+table+"(n int, s text)"); err != nil {
				t.Errorf("session %d: %v", i, err)
				return
			}
			src := make([][]any, rows)
			for k := range src {
				src[k] = []any{k, strings.Repeat("c", k%97)}
			}
			n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"n", "s"}, pgx.CopyFromRows(src))
			if err != nil || n != rows {
				t.Errorf("session %d: CopyFrom = %d, %v", i, n, err)
				return
			}
			// Text COPY in through the raw protocol too.
			var text bytes.Buffer
			for k := range rows {
				fmt.Fprintf(&text, "%d\tt%d\n", rows+k, k)
			}
			if _, err := conn.PgConn().CopyFrom(ctx, &text, "copy "+table+" from stdin"); err != nil {
				t.Errorf("session %d: text COPY FROM: %v", i, err)
				return
			}
			var out bytes.Buffer
			tag, err := conn.PgConn().CopyTo(ctx, &out, "copy (select n, s from "+table+" order by n) to stdout")
			if err != nil || tag.RowsAffected() != 2*rows {
				t.Errorf("session %d: CopyTo = %v, %v", i, tag, err)
				return
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 2*rows {
				t.Errorf("session %d: %d lines copied out, want %d", i, len(lines), 2*rows)
				return
			}
			for _, k := range []int{0, 1, 96, rows - 1, rows, 2*rows - 1} {
				want := fmt.Sprintf("%d\t%s", k, strings.Repeat("c", k%97))
				if k >= rows {
					want = fmt.Sprintf("%d\tt%d", k, k-rows)
				}
				if lines[k] != want {
					t.Errorf("session %d: line %d = %q, want %q", i, k, lines[k], want)
				}
			}
		}()
	}
	rlWantLoop(t, g, sessions)
	wg.Wait()
}

// LISTEN on one loop session, NOTIFY from another: notifications arrive
// while the listener sends nothing (the backend relay forwards messages
// nobody asked for), all of them and in order, over TLS.
func TestRedteamLoopListenNotify(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	cfg, err := pgconn.ParseConfig(g.tlsDSN("alice", alicePassword))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var payloads []string
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		mu.Lock()
		payloads = append(payloads, n.Channel+":"+n.Payload)
		mu.Unlock()
	}
	listener, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	notifier := connectRaw(t, g.dsn("alice", alicePassword))
	if err := execErr(ctx, listener, "listen rl_channel"); err != nil {
		t.Fatal(err)
	}
	rlWantLoop(t, g, 2)
	const n = 20
	listenDone := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, rlGuard)
		defer cancel()
		for {
			mu.Lock()
			have := len(payloads)
			mu.Unlock()
			if have >= n {
				listenDone <- nil
				return
			}
			if err := listener.WaitForNotification(wctx); err != nil {
				listenDone <- err
				return
			}
		}
	}()
	for k := range n {
		if err := execErr(ctx, notifier, fmt.Sprintf("notify rl_channel, 'payload-%d'", k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-listenDone; err != nil {
		t.Fatalf("waiting for notifications: %v", err)
	}
	mu.Lock()
	got := append([]string(nil), payloads...)
	mu.Unlock()
	for k := range n {
		if want := fmt.Sprintf("rl_channel:payload-%d", k); k >= len(got) || got[k] != want {
			t.Fatalf("notifications %v; #%d want %q", got, k, want)
		}
	}
	// The listener's session still answers.
	if err := execErr(ctx, listener, "select 1"); err != nil {
		t.Fatalf("the listener after the notifications: %v", err)
	}
}

// A recorder that takes its time (waiting for a disk, say) with several
// sessions at once: every statement completes and is recorded.
func TestRedteamLoopSlowRecorder(t *testing.T) {
	var g *gateway
	var recorded atomic.Int64
	g = startGateway(t, func(p *proxy.Proxy) {
		inner := p.Recorder
		p.Recorder = session.RecorderFunc(func(ctx context.Context, ev session.Event) error {
			time.Sleep(3 * time.Millisecond)
			if ev.Kind == session.KindStatement {
				recorded.Add(1)
			}
			return inner.Record(ctx, ev)
		})
	})
	const sessions, statements = 6, 25
	var wg sync.WaitGroup
	for i := range sessions {
		dsn := g.dsn("alice", alicePassword)
		if i%3 == 2 {
			dsn = g.tlsDSN("bob", bobPassword)
		}
		conn := connect(t, dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range statements {
				var n int
				if err := conn.QueryRow(testContext(t), "select $1::int - 1", j).Scan(&n); err != nil || n != j-1 {
					t.Errorf("session %d statement %d: %d, %v", i, j, n, err)
					return
				}
			}
		}()
	}
	rlWantLoop(t, g, sessions)
	wg.Wait()
	if got := recorded.Load(); got < sessions*statements {
		t.Fatalf("%d statements recorded, want at least %d", got, sessions*statements)
	}
}

// Sessions come and go, one at a time and in bursts, so that the loop is
// started and stopped over and over (it stops with its last session): every
// session works, and the gateway process keeps no descriptors behind.
func TestRedteamLoopSessionChurnLeaksNothing(t *testing.T) {
	g := startGateway(t, nil)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	cycle := func(dsn string) error {
		ctx := testContext(t)
		c, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		return execErr(ctx, c, "select 1")
	}
	// Warm up (TLS session cache, the analyzer, ...).
	if err := cycle(g.tlsDSN("alice", alicePassword)); err != nil {
		t.Fatal(err)
	}
	rlWaitLoopIdle(t, g)
	base := fds()
	for i := range 20 {
		dsn := g.dsn("alice", alicePassword)
		if i%4 == 3 {
			dsn = g.tlsDSN("bob", bobPassword)
		}
		if err := cycle(dsn); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		rlWaitLoopIdle(t, g)
	}
	for burst := range 3 {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dsn := g.dsn("alice", alicePassword)
				if i%2 == 1 {
					dsn = g.tlsDSN("alice", alicePassword)
				}
				if err := cycle(dsn); err != nil {
					t.Errorf("burst %d session %d: %v", burst, i, err)
				}
			}()
		}
		wg.Wait()
		rlWaitLoopIdle(t, g)
	}
	// Descriptors close asynchronously (a shard's with its last runner).
	deadline := time.Now().Add(rlGuard)
	for fds() > base+4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after the churn, %d before: a leak", fds(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rlInjectConn appends early to the client's second password message
// (the last SCRAM message), so that a query reaches the gateway in the same
// segment as the end of authentication, before the gateway takes the socket
// over for the loop.
type rlInjectConn struct {
	net.Conn
	passwords int
	early     []byte
	injected  atomic.Bool
}

func (c *rlInjectConn) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == 'p' {
		c.passwords++
		if c.passwords == 2 {
			c.injected.Store(true)
			_, err := c.Conn.Write(append(append([]byte(nil), p...), c.early...))
			return len(p), err
		}
	}
	return c.Conn.Write(p)
}

// A client that pipelines a statement right behind its last password
// message (read by the gateway before the take-over, with the
// authentication), and one that sends messages split across many tiny
// writes: the bytes read before the take-over and all the pieces must
// reach the relay.
func TestRedteamLoopSplitAndEarlyBytes(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	cfg, err := pgconn.ParseConfig(g.dsn("alice", alicePassword))
	if err != nil {
		t.Fatal(err)
	}
	inj := &rlInjectConn{early: rlEncode(t, &pgproto3.Query{String: "select 'ear' || 'ly'"})}
	dialer := &net.Dialer{}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		inj.Conn = c
		return inj, nil
	}
	early, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with a query behind the password: %v", err)
	}
	if !inj.injected.Load() {
		t.Fatal("the query was never sent behind the password (not SCRAM?)")
	}
	hc, err := early.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	hc.Conn.SetDeadline(time.Now().Add(rlGuard))
	rlWantLoop(t, g, 1)
	if rows := rlRows(t, hc.Frontend); len(rows) != 1 || rows[0] != "early" {
		t.Fatalf("answer to the query sent behind the password: %q", rows)
	}

	fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	q := rlEncode(t, &pgproto3.Query{String: "select 'split' || 'ted'"})
	for k := range q {
		if _, err := conn.Write(q[k : k+1]); err != nil {
			t.Fatal(err)
		}
		if k%5 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if rows := rlRows(t, fe); len(rows) != 1 || rows[0] != "splitted" {
		t.Fatalf("answer to a query sent byte by byte: %q", rows)
	}
	// Many messages in two writes split mid-message.
	var many []byte
	for k := range 50 {
		many = append(many, rlEncode(t, &pgproto3.Query{String: "select " + strconv.Itoa(k)})...)
	}
	half := len(many)/2 + 3
	conn.Write(many[:half])
	time.Sleep(2 * time.Millisecond)
	conn.Write(many[half:])
	for k := range 50 {
		if rows := rlRows(t, fe); len(rows) != 1 || rows[0] != strconv.Itoa(k) {
			t.Fatalf("answer %d = %q", k, rows)
		}
	}
}

// When a client's pipeline reaches MaxPipeline the frontend relay waits
// for answers to make room. PostgreSQL holds its answers to extended-
// protocol messages (ParseComplete, ParameterDescription, RowDescription,
// BindComplete, rows, CommandComplete) until a Sync or a Flush, or until
// about 8 kB of them pile up: a pipeline with no Sync among its first
// MaxPipeline requests waited for answers the server would never send, and
// the session hung for ever (the server "active" in ClientRead; the idle
// timeout does not apply while requests are pending). With MaxPipeline 2 a
// single pgx QueryRow (Parse, Describe, Sync) hung; with 4, a Parse and
// three Bind/Execute pairs before the Sync. Found by this file (as
// TestRedteamLoopPipelineFullWithoutSync); the gateway now sends the
// server a Flush before it waits. Both relays.
func TestRedteamLoopPipelineFullWithoutSync(t *testing.T) {
	t.Run("pgx-query-with-limit-2", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 2 })
		conn := connect(t, g.dsn("alice", alicePassword))
		// A failure guard: the answer takes milliseconds when it comes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var n int
		if err := conn.QueryRow(ctx, "select 6 * 7").Scan(&n); err != nil || n != 42 {
			t.Fatalf("pgx QueryRow with MaxPipeline 2: %d, %v", n, err)
		}
	})
	t.Run("bind-execute-pipeline-with-limit-4", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 4 })
		fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
		msgs := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "select 1"}}
		for range 3 {
			msgs = append(msgs, &pgproto3.Bind{}, &pgproto3.Execute{})
		}
		msgs = append(msgs, &pgproto3.Sync{})
		if _, err := conn.Write(rlEncode(t, msgs...)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a failure guard
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("Parse, 3 x (Bind, Execute), Sync with MaxPipeline 4: no answer: %v", err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				return
			}
		}
	})
}

// A COPY FROM STDIN pipelined with the queries after it, past a small
// MaxPipeline: the frontend relay fills the pipeline while the server is in
// COPY (and the Flush it sends the server before waiting arrives there), and
// everything must still be answered, in order. (With MaxPipeline 1 the
// COPY hangs: TestRedteamLoopCopyDoneInAFullPipeline.)
func TestRedteamLoopCopyInPipelinedPastTheLimit(t *testing.T) {
	testCopyInPipelined(t, 2)
}

func testCopyInPipelined(t *testing.T, limit int) {
	t.Helper()
	g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = limit })
	fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	conn.Write(rlEncode(t, &pgproto3.Query{String: "create temp table rl_copy_pipe(n int)"}))
	rlRows(t, fe)
	msgs := []pgproto3.FrontendMessage{&pgproto3.Query{String: "copy rl_copy_pipe from stdin"}}
	const rows = 3000
	for k := range rows {
		msgs = append(msgs, &pgproto3.CopyData{Data: []byte(strconv.Itoa(k) + "\n")})
	}
	msgs = append(msgs, &pgproto3.CopyDone{})
	for k := range 6 {
		msgs = append(msgs, &pgproto3.Query{String: fmt.Sprintf("select count(*) + %d from rl_copy_pipe", k)})
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(rlEncode(t, msgs...))
		wrote <- err
	}()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second)) // a failure guard: answers take milliseconds
	if got := rlRows(t, fe); len(got) != 0 {
		t.Fatalf("COPY answered rows %q", got)
	}
	for k := range 6 {
		if got := rlRows(t, fe); len(got) != 1 || got[0] != strconv.Itoa(rows+k) {
			t.Fatalf("query %d after the COPY: %q, want %d", k, got, rows+k)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// rlOpaqueConn hides the socket under a dialer's connection (no
// syscall.Conn), as a dialer that tunnels or instruments it does: the
// event loop cannot take the upstream over, and the session's backend
// relay runs on a goroutine while its frontend relay runs on the loop.
type rlOpaqueConn struct{ c net.Conn }

func (o rlOpaqueConn) Read(p []byte) (int, error)         { return o.c.Read(p) }
func (o rlOpaqueConn) Write(p []byte) (int, error)        { return o.c.Write(p) }
func (o rlOpaqueConn) Close() error                       { return o.c.Close() }
func (o rlOpaqueConn) LocalAddr() net.Addr                { return o.c.LocalAddr() }
func (o rlOpaqueConn) RemoteAddr() net.Addr               { return o.c.RemoteAddr() }
func (o rlOpaqueConn) SetDeadline(t time.Time) error      { return o.c.SetDeadline(t) }
func (o rlOpaqueConn) SetReadDeadline(t time.Time) error  { return o.c.SetReadDeadline(t) }
func (o rlOpaqueConn) SetWriteDeadline(t time.Time) error { return o.c.SetWriteDeadline(t) }

// Sessions whose upstream the loop cannot take over (the backend relay on
// a goroutine calls Blocking and writes to the loop's client socket from
// outside the loop): pipelines past the limit, a client that does not
// read, a cancel, and a Terminate, side by side.
func TestRedteamLoopUpstreamNotASocket(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Limits.MaxPipeline = 4
		dialer := &net.Dialer{}
		p.Upstream.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rlOpaqueConn{c}, nil
		}
	})
	ctx := testContext(t)
	const hogMarker = "rl_opaque_hog"
	_, hog := hijack(t, connectRaw(t, g.dsn("alice", alicePassword, "application_name=rl-opaque-hog")))
	hog.Write(rlEncode(t, &pgproto3.Query{String: "select g, repeat('o', 200) as " + hogMarker +
		" from generate_series(1, 1000000) g"}))
	waitFor(t, func() bool { return rlUpstreamRunning(t, hogMarker) == 1 })
	canceled := connectRaw(t, g.tlsDSN("bob", bobPassword))
	rlWantLoop(t, g, 2)
	sleepErr := make(chan error, 1)
	go func() { sleepErr <- execErr(ctx, canceled, "select pg_sleep(30) as rl_opaque_sleep") }()
	waitFor(t, func() bool { return rlUpstreamRunning(t, "rl_opaque_sleep") == 1 })
	var wg sync.WaitGroup
	for i := range 4 {
		dsn := g.dsn("alice", alicePassword)
		if i%2 == 1 {
			dsn = g.tlsDSN("bob", bobPassword)
		}
		fe, conn := hijack(t, connectRaw(t, dsn))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var msgs []pgproto3.FrontendMessage
			for k := range 200 {
				msgs = append(msgs, &pgproto3.Query{String: fmt.Sprintf("select %d + %d", i, k)})
			}
			wrote := make(chan error, 1)
			go func() {
				_, err := conn.Write(rlEncode(t, msgs...))
				wrote <- err
			}()
			for k := range 200 {
				if got := rlRows(t, fe); len(got) != 1 || got[0] != strconv.Itoa(i+k) {
					t.Errorf("session %d answer %d: %q", i, k, got)
					return
				}
			}
			if err := <-wrote; err != nil {
				t.Errorf("session %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if err := canceled.CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sleepErr:
		if pgCode(err) != "57014" {
			t.Fatalf("cancelled statement: %v, want 57014", err)
		}
	case <-time.After(rlGuard):
		t.Fatal("the statement was not cancelled")
	}
	if err := g.Terminate(rlSessionID(t, g, "rl-opaque-hog"), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return rlSessionGone(g, "rl-opaque-hog") })
	waitFor(t, func() bool { return rlUpstreamRunning(t, hogMarker) == 0 })
	hog.Close()
	if err := execErr(ctx, canceled, "select 1"); err != nil {
		t.Fatalf("after the cancel: %v", err)
	}
}

// ---- Bugs found by this red team, fixed since: regression tests ----

// The CopyDone (or CopyFail) that ends a COPY FROM STDIN is queued in the
// pipeline as a request (opCopyEnd) and so needs room under MaxPipeline.
// When the pipeline is full of requests the server cannot answer before
// the COPY ends (the COPY's own Query or Execute, and the Syncs the server
// ignores during the COPY), the frontend relay waits for room before it
// forwards the CopyDone, and the server waits for the CopyDone: the session
// hangs for ever (and the idle timeout does not apply). With MaxPipeline 1
// every COPY FROM STDIN hangs (pgx's CopyFrom included); with 2, a COPY
// run with Parse/Bind/Execute/Sync (the Sync sent before the data, as
// drivers do). Both relays. A CopyDone/CopyFail could bypass the limit: it
// is what lets the server answer.
func TestRedteamLoopCopyDoneInAFullPipeline(t *testing.T) {
	t.Run("simple-copy-limit-1", func(t *testing.T) { testCopyInPipelined(t, 1) })
	t.Run("pgx-copy-from-limit-1", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 1 })
		conn := connectRaw(t, g.dsn("alice", alicePassword))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // a failure guard
		defer cancel()
		if err := execErr(ctx, conn, "create temp table rl_copy_one(n int)"); err != nil {
			t.Fatal(err)
		}
		tag, err := conn.CopyFrom(ctx, strings.NewReader("1\n2\n3\n"), "copy rl_copy_one from stdin")
		if err != nil || tag.RowsAffected() != 3 {
			t.Fatalf("COPY FROM STDIN with MaxPipeline 1: %v, %v", tag, err)
		}
	})
	t.Run("extended-copy-limit-2", func(t *testing.T) {
		g := startGateway(t, func(p *proxy.Proxy) { p.Limits.MaxPipeline = 2 })
		fe, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
		conn.Write(rlEncode(t, &pgproto3.Query{String: "create temp table rl_copy_ext(n int)"}))
		rlRows(t, fe)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second)) // a failure guard
		conn.Write(rlEncode(t, &pgproto3.Parse{Query: "copy rl_copy_ext from stdin"}, &pgproto3.Bind{},
			&pgproto3.Execute{}, &pgproto3.Sync{}))
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("waiting for CopyInResponse: %v", err)
			}
			if _, ok := m.(*pgproto3.CopyInResponse); ok {
				break
			}
		}
		conn.Write(rlEncode(t, &pgproto3.CopyData{Data: []byte("1\n2\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{}))
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("extended COPY FROM STDIN with MaxPipeline 2: no answer after CopyDone: %v", err)
			}
			if e, ok := m.(*pgproto3.ErrorResponse); ok {
				t.Fatalf("extended COPY: error %s %s", e.Code, e.Message)
			}
			if cc, ok := m.(*pgproto3.CommandComplete); ok && string(cc.CommandTag) != "COPY 2" {
				t.Fatalf("extended COPY: %s", cc.CommandTag)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				return
			}
		}
	})
}
