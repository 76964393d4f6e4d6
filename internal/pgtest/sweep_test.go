package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// orphanHelperEnv makes the test binary act as a short-lived cluster owner
// (see runOrphanHelper) instead of running tests.
const orphanHelperEnv = "PGTEST_ORPHAN_HELPER"

// runOrphanHelper starts a cluster, prints "<postmaster pid> <dir>" and
// waits to be killed.
func runOrphanHelper() int {
	c, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %s\n", c.PID(), c.Dir)
	time.Sleep(time.Minute)
	_ = c.Stop()
	return 0
}

// deadPID returns the pid of a process that has already exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSweepKillsStaleServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	parent := filepath.Dir(c.Dir)

	// Directories the sweep must leave alone: one owned by this (live)
	// process and one without an owner.pid file.
	live, err := os.MkdirTemp(parent, rootDirPrefix+"live-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(live) })
	if err := os.WriteFile(filepath.Join(live, ownerPIDFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	unowned, err := os.MkdirTemp(parent, rootDirPrefix+"unowned-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(unowned) })

	// A server whose postmaster.pid names a live process that is not a
	// postmaster for that directory (pid reuse) must not be signalled.
	if isPostmasterFor(os.Getpid(), c.DataDir) {
		t.Error("isPostmasterFor accepted the test process")
	}
	if !isPostmasterFor(c.PID(), c.DataDir) {
		t.Fatal("isPostmasterFor rejected the real postmaster")
	}

	dead := deadPID(t)
	if err := os.WriteFile(filepath.Join(c.Dir, ownerPIDFile), []byte(strconv.Itoa(dead)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sweepStale(parent); err != nil {
		t.Logf("sweep reported (possibly unrelated) errors: %v", err)
	}
	select {
	case <-c.srv.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("sweep did not stop the stale postmaster")
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale cluster directory survived the sweep: %v", err)
	}
	for _, d := range []string{live, unowned} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("sweep removed %s: %v", d, err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Errorf("Stop after sweep: %v", err)
	}
}

func TestKilledOwnerLeavesNoServer(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper output: %v", err)
	}
	pidStr, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || !strings.HasPrefix(filepath.Base(dir), rootDirPrefix) {
		t.Fatalf("unexpected helper output %q", line)
	}
	t.Cleanup(func() { _ = removeStale(dir) })
	if !processAlive(pid) {
		t.Fatalf("helper's postmaster %d not running", pid)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !waitGone(pid, 10*time.Second) {
		t.Fatalf("postmaster %d survived its owner's death", pid)
	}
	if err := sweepStale(filepath.Dir(dir)); err != nil {
		t.Logf("sweep reported (possibly unrelated) errors: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sweep left %s behind: %v", dir, err)
	}
}
