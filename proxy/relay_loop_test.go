package proxy_test

import (
	"crypto/tls"
	"runtime"
	"testing"

	"github.com/pgwarden/pgwarden/proxy"
)

// On Linux every session is relayed from the event loop, plaintext or TLS
// (the socket under the TLS connection is taken over); both serve queries,
// and the loop is stopped when its last session ends.
func TestSessionsChooseTheirRelay(t *testing.T) {
	if goroutineRelayForced() {
		t.Skip("PGWARDEN_TEST_RELAY=goroutines: every session uses goroutines")
	}
	g := startGateway(t, nil)
	plain := connect(t, g.dsn("alice", alicePassword))
	wantLoop := 0
	if runtime.GOOS == "linux" {
		wantLoop = 1
	}
	if n := proxy.LoopSessions(g.Proxy); n != wantLoop {
		t.Fatalf("plaintext session: %d sessions on the loop, want %d", n, wantLoop)
	}
	secure := connect(t, g.tlsDSN("alice", alicePassword))
	if n := proxy.LoopSessions(g.Proxy); n != 2*wantLoop {
		t.Fatalf("after a TLS session: %d sessions on the loop, want %d", n, 2*wantLoop)
	}
	var a, b int
	if err := plain.QueryRow(testContext(t), "SELECT 41 + 1").Scan(&a); err != nil || a != 42 {
		t.Fatalf("plaintext query: %d, %v", a, err)
	}
	if err := secure.QueryRow(testContext(t), "SELECT 41 + 1").Scan(&b); err != nil || b != 42 {
		t.Fatalf("TLS query: %d, %v", b, err)
	}
	plain.Close(testContext(t))
	secure.Close(testContext(t))
	waitFor(t, func() bool { return proxy.LoopSessions(g.Proxy) == 0 })
}

// With TLS on both sides, the loop takes over the sockets beneath both TLS
// connections; results that span many TLS records (and many waits for the
// socket) arrive whole.
func TestTLSBothSidesOnTheLoop(t *testing.T) {
	g := startGateway(t, func(p *proxy.Proxy) {
		p.Upstream.TLS = &tls.Config{RootCAs: pg.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	})
	conn := connect(t, g.tlsDSN("alice", alicePassword))
	if want := loopSessionsWanted(); proxy.LoopSessions(g.Proxy) != want {
		t.Fatalf("%d sessions on the loop, want %d", proxy.LoopSessions(g.Proxy), want)
	}
	var ssl bool
	if err := conn.QueryRow(testContext(t), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("the upstream connection is not TLS: %v, %v", ssl, err)
	}
	rows, err := conn.Query(testContext(t), "select n, repeat('x', n % 200) from generate_series(1, 200000) n")
	if err != nil {
		t.Fatal(err)
	}
	var count, sum, length int
	for rows.Next() {
		var n int
		var s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		count++
		sum += n
		length += len(s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	wantLength := 0
	for n := 1; n <= 200000; n++ {
		wantLength += n % 200
	}
	if count != 200000 || sum != 200000*200001/2 || length != wantLength {
		t.Fatalf("rows %d, sum %d, text %d bytes; want 200000, %d, %d", count, sum, length, 200000*200001/2, wantLength)
	}
}

// loopSessionsWanted is how many sessions one connection puts on the loop.
func loopSessionsWanted() int {
	if runtime.GOOS != "linux" || goroutineRelayForced() {
		return 0
	}
	return 1
}
