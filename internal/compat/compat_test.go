package compat

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The cases of doc.go, in the order a client runs them.
var cases = []string{"connect", "simple", "parameterized", "transaction", "masked", "copy"}

// client is one column of the matrix: run runs every case for one login.
type client struct {
	name string
	run  func(t *testing.T, h *harness, l login, base int)
}

// clients are the in-process Go drivers, the libpq programs, and the
// external client programs of externalClients.
func clients() []client {
	cs := []client{
		{"pgx", runPgx},
		{"lib-pq", runLibPQ}, // github.com/lib/pq
		{"psql", runPsql},
		{"pgbench", runPgbench},
	}
	for _, e := range externalClients {
		cs = append(cs, client{e.name, e.run})
	}
	return cs
}

// TestCompat is the matrix: TestCompat/<client>/<mode>/<case>. Clients run
// in parallel, each with its own PGW_ID_BASE for each mode; when they are
// done, the recording must verify and must hold neither a secret nor a
// plaintext address, and neither must the gateway's log.
func TestCompat(t *testing.T) {
	h := setup(t)
	t.Cleanup(func() { checkRecordingAndLogs(t, h) })
	for _, c := range clients() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, mode := range modes {
				l := h.logins[mode]
				base := h.idBase()
				t.Run(mode, func(t *testing.T) { c.run(t, h, l, base) })
			}
		})
	}
}

// checkRecordingAndLogs fails t if a ledger of the journal does not verify,
// or the journal's files or the gateway's log hold a secret or a plaintext
// address; on failure it logs the tail of the gateway's log, redacted.
func checkRecordingAndLogs(t *testing.T, h *harness) {
	ctx := context.Background()
	// Every client has closed its connections; the gateway seals a
	// session's ledger as the session ends, which may be a moment later.
	for deadline := time.Now().Add(15 * time.Second); len(h.proxy.Sessions()) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(h.proxy.Sessions()); n > 0 {
		t.Errorf("%d sessions still live after every client closed its connections", n)
	}
	bad, err := h.journal.VerifyAll(ctx)
	if err != nil {
		t.Errorf("verifying the recording: %v", err)
	}
	for id, err := range bad {
		if err != nil {
			t.Errorf("the ledger of session %s does not verify: %v", id, err)
		}
	}
	err = filepath.WalkDir(h.journalDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, leak := range h.leaks(b) {
			t.Errorf("the recording (%s) contains %s", filepath.Base(path), leak)
		}
		return nil
	})
	if err != nil {
		t.Errorf("reading the recording: %v", err)
	}
	logs := h.logs.String()
	for _, leak := range h.leaks([]byte(logs)) {
		t.Errorf("the gateway's log contains %s", leak)
	}
	if t.Failed() {
		lines := strings.Split(strings.TrimSpace(logs), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Logf("the gateway's log (last %d lines, redacted):\n%s", len(lines), h.redact(strings.Join(lines, "\n")))
		t.Logf("the server's log (tail):\n%s", h.redact(pg.LogTail(40)))
	}
}
