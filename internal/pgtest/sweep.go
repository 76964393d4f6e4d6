package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Grace periods when killing a stale server.
const (
	staleQuitGrace = 3 * time.Second
	staleKillGrace = 2 * time.Second
)

// sweepStale removes the cluster roots in parent (directories named
// pgwarden-pg-*) whose owner.pid names a process that is no longer alive.
// If such a directory still has a running postmaster, it is killed first
// (SIGQUIT, then SIGKILL). Directories without a readable owner.pid, or
// whose owner is alive, are never touched. Errors are collected and
// returned; the sweep continues past them.
func sweepStale(parent string) error {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("pgtest: sweep %s: %w", parent, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), rootDirPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		owner, err := readPIDFile(filepath.Join(dir, ownerPIDFile))
		if err != nil {
			continue // not ours, or still being set up
		}
		if processAlive(owner) {
			continue
		}
		if err := removeStale(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeStale kills the postmaster of the cluster in dir, if one is still
// running, and removes dir.
func removeStale(dir string) error {
	dataDir := filepath.Join(dir, dataDirName)
	var errs []error
	pid, err := readPIDFile(filepath.Join(dataDir, "postmaster.pid"))
	if err == nil && processAlive(pid) && isPostmasterFor(pid, dataDir) {
		if err := killServer(pid); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: sweep %s: %w", dir, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: sweep: %w", err))
	}
	return errors.Join(errs...)
}

// killServer stops the postmaster pid with an immediate shutdown (SIGQUIT)
// and falls back to SIGKILL if it is still alive after a grace period.
func killServer(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal postmaster %d: %w", pid, err)
	}
	if waitGone(pid, staleQuitGrace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill postmaster %d: %w", pid, err)
	}
	if !waitGone(pid, staleKillGrace) {
		return fmt.Errorf("postmaster %d survived SIGKILL", pid)
	}
	return nil
}

// isPostmasterFor guards against pid reuse: it reports whether pid is a
// server for dataDir, judged by its working directory (the postmaster
// chdirs into its data directory) or its command line (-D dataDir). Without
// procfs there is no way to tell and postmaster.pid is trusted.
func isPostmasterFor(pid int, dataDir string) bool {
	if _, err := os.Stat("/proc/self"); err != nil {
		return true
	}
	proc := "/proc/" + strconv.Itoa(pid)
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil && (cwd == want || cwd == dataDir) {
		return true
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		if s := string(arg); s == dataDir || s == want {
			return true
		}
	}
	return false
}
