package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// maxLaunchAttempts bounds retries when the chosen port is taken
	// between picking it and the server binding it.
	maxLaunchAttempts = 4
	// readyTimeout caps how long Start waits for the server to accept
	// connections, whatever the caller's context says.
	readyTimeout = 30 * time.Second
	// readyPoll is the pause between readiness probes.
	readyPoll = 25 * time.Millisecond
	// shutdownGrace is how long Stop waits after SIGINT before SIGKILL.
	shutdownGrace = 10 * time.Second
	// startupLogLines is how much of the log start-up errors include.
	startupLogLines = 20
)

// baseSettings are passed to every server before TLS and caller settings.
func baseSettings() []string {
	return []string{
		"listen_addresses=127.0.0.1",
		"fsync=off",
		"synchronous_commit=off",
		"full_page_writes=off",
		"max_connections=200",
		"shared_buffers=64MB",
	}
}

// errPortInUse marks a launch that failed because another process bound
// the chosen port first.
var errPortInUse = errors.New("pgtest: port already in use")

// server is one postmaster child process.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result; read only after exited is closed
}

// running reports whether the postmaster has not exited yet.
func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// freePort asks the kernel for a currently unused loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", err)
	}
	return port, nil
}

// launch starts the postmaster on a free port with the given -c settings
// and waits until it accepts connections, retrying with a new port when
// the chosen one was taken in the meantime.
func (c *Cluster) launch(ctx context.Context, settings []string) error {
	for attempt := 1; ; attempt++ {
		port, err := c.pickPort()
		if err != nil {
			return err
		}
		c.Port = port
		logStart := c.logSize()
		if err := c.startPostmaster(settings); err != nil {
			return err
		}
		err = c.waitReady(ctx, logStart)
		if err == nil {
			return nil
		}
		if stopErr := c.stopServer(); stopErr != nil {
			return errors.Join(err, stopErr)
		}
		if errors.Is(err, errPortInUse) && attempt < maxLaunchAttempts {
			continue
		}
		return err
	}
}

// startPostmaster runs the postgres binary as a direct child, with output
// appended to the cluster log.
func (c *Cluster) startPostmaster(settings []string) error {
	args := []string{"-D", c.DataDir, "-p", strconv.Itoa(c.Port), "-k", c.SocketDir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	logFile, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: open server log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(filepath.Join(c.BinDir, "postgres"), args...)
	cmd.Dir = c.Dir
	cmd.Env = c.id.env()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr(c.id)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	c.srv = s
	return nil
}

// waitReady waits until the postmaster reports itself ready in
// postmaster.pid and then accepts a superuser connection over TCP. It gives
// up when the postmaster exits or ctx (capped at readyTimeout) ends.
// logStart is the log size before this launch, so only its own output is
// inspected for port clashes.
func (c *Cluster) waitReady(ctx context.Context, logStart int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	s := c.srv
	// Abandon an in-flight probe as soon as the postmaster dies.
	probeCtx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	go func() {
		select {
		case <-s.exited:
			cancelProbe()
		case <-probeCtx.Done():
		}
	}()
	cfg, err := pgconn.ParseConfig(c.SuperConnString("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: parse superuser connection string: %w", err)
	}
	cfg.ConnectTimeout = 2 * time.Second

	var lastErr error
	for {
		if !s.running() {
			return c.exitedEarly(s, logStart)
		}
		ready, err := c.probe(probeCtx, cfg, s.cmd.Process.Pid)
		if ready {
			return nil
		}
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code != "57P03" {
			// Anything but "the database system is starting up" will not
			// fix itself: a wrong password, a pg_hba.conf rejection...
			return fmt.Errorf("pgtest: connect to new server: %w\n%s", err, c.logSection())
		}
		lastErr = err
		select {
		case <-s.exited:
			return c.exitedEarly(s, logStart)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: server not ready: %w (last attempt: %v)\n%s", ctx.Err(), lastErr, c.logSection())
		case <-time.After(readyPoll):
		}
	}
}

// probe reports whether the postmaster pid is ready and accepts a
// connection. The TCP connection is only attempted once postmaster.pid
// says the server is ready, so that after a port clash the probe cannot
// reach whichever other process holds the port.
func (c *Cluster) probe(ctx context.Context, cfg *pgconn.Config, pid int) (bool, error) {
	if err := pidFileReady(filepath.Join(c.DataDir, "postmaster.pid"), pid); err != nil {
		return false, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	return true, conn.Close(ctx)
}

// pidFileReady checks that the postmaster.pid file at path belongs to pid
// and that its status line (the 8th) says "ready".
func pidFileReady(path string, pid int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	if strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return fmt.Errorf("%s names pid %q, not %d", path, strings.TrimSpace(lines[0]), pid)
	}
	if len(lines) < 8 || strings.TrimSpace(lines[7]) != "ready" {
		return fmt.Errorf("%s: server not ready yet", path)
	}
	return nil
}

// exitedEarly builds the error for a postmaster that died during start-up,
// wrapping errPortInUse when the log says the port was taken.
func (c *Cluster) exitedEarly(s *server, logStart int64) error {
	out := c.readLogFrom(logStart)
	if bytes.Contains(out, []byte("could not bind")) || bytes.Contains(out, []byte("could not create any TCP/IP sockets")) {
		return fmt.Errorf("%w: postgres exited during start-up (%v)\n%s", errPortInUse, s.err, c.logSection())
	}
	return fmt.Errorf("pgtest: postgres exited during start-up: %v\n%s", s.err, c.logSection())
}

// logSection formats the tail of the server log for error messages.
func (c *Cluster) logSection() string {
	return fmt.Sprintf("--- last %d lines of %s ---\n%s", startupLogLines, c.logPath, c.LogTail(startupLogLines))
}

// logSize returns the current size of the server log (0 if missing).
func (c *Cluster) logSize() int64 {
	fi, err := os.Stat(c.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// stopServer shuts the postmaster down: SIGINT (fast shutdown), then
// SIGKILL if it is still running after shutdownGrace. It returns once the
// process has exited (or an error if even SIGKILL did not end it).
func (c *Cluster) stopServer() error {
	s := c.srv
	if s == nil || !s.running() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: signal postmaster: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(shutdownGrace):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: kill postmaster: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(shutdownGrace):
		return fmt.Errorf("pgtest: postmaster %d still running after SIGKILL", s.cmd.Process.Pid)
	}
}
