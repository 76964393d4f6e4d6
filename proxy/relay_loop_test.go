package proxy_test

import (
	"runtime"
	"testing"

	"github.com/pgwarden/pgwarden/proxy"
)

// Plaintext sessions are relayed from the event loop on Linux, TLS
// sessions on goroutines; both serve queries, and the loop is stopped when
// its last session ends.
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
	if n := proxy.LoopSessions(g.Proxy); n != wantLoop {
		t.Fatalf("after a TLS session: %d sessions on the loop, want %d", n, wantLoop)
	}
	var a, b int
	if err := plain.QueryRow(testContext(t), "SELECT 41 + 1").Scan(&a); err != nil || a != 42 {
		t.Fatalf("plaintext query: %d, %v", a, err)
	}
	if err := secure.QueryRow(testContext(t), "SELECT 41 + 1").Scan(&b); err != nil || b != 42 {
		t.Fatalf("TLS query: %d, %v", b, err)
	}
	plain.Close(testContext(t))
	waitFor(t, func() bool { return proxy.LoopSessions(g.Proxy) == 0 })
}
