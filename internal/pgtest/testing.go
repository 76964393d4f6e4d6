package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// New starts a cluster for the test or benchmark t and registers
// [Cluster.Stop] with t.Cleanup. Any start-up error, including a missing
// PostgreSQL installation, fails t with t.Fatalf; New never skips. If t has
// failed by cleanup time, the tail of the server log is logged before the
// cluster is removed.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("pgtest: start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log tail:\n%s", c.LogTail(40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("pgtest: stop cluster: %v", err)
		}
	})
	return c
}

// Main runs a package's tests against one shared cluster; call it from
// TestMain as os.Exit(pgtest.Main(m, opts, &cluster)).
//
// It starts the cluster, stores it in *dst, runs m.Run() and stops the
// cluster, returning the tests' exit code (or 1 if Stop failed). If the
// process receives SIGINT or SIGTERM meanwhile, the cluster is stopped and
// the process exits with status 128+signal. If the cluster cannot be
// started, the error is printed to stderr, no tests run, and Main returns 1.
func Main(m *testing.M, opts Options, dst **Cluster) int {
	if dst == nil {
		fmt.Fprintln(os.Stderr, "pgtest: Main: nil destination")
		return 1
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: start cluster: %v\n", err)
		return 1
	}
	*dst = c

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			if err := c.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
			}
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-done:
		}
	}()

	code := m.Run()
	signal.Stop(sigs)
	close(done)
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
