package targets

import (
	"bufio"
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
)

// ForwarderOptions describes the floor to start: `bench forward`, a byte
// relay with no protocol handling, in front of PostgreSQL.
type ForwarderOptions struct {
	// Upstream is the PostgreSQL server's host:port.
	Upstream string
	// User, Password and Database are the database login: the floor
	// passes authentication through to PostgreSQL, so clients log in with
	// what they would use directly.
	User, Password, Database string
	// Procs, when positive, is the forwarder's GOMAXPROCS; it should be
	// the gateway's, since the event loop's shard count follows it.
	Procs int
}

// StartForwarder starts this program's own executable as `bench forward
// -listen 127.0.0.1:0 -upstream <Upstream>` (see the bench command),
// learns the port it listens on from the first line of its output, and
// waits until a client can log in through it.
func StartForwarder(ctx context.Context, o ForwarderOptions) (t *Target, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("floor: cannot find this program's executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "pgwarden-bench-floor-*")
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	t = &Target{Name: NameFloor, User: o.User, Password: o.Password, Database: o.Database, dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close(false))
			t = nil
		}
	}()
	cmd := exec.Command(exe, "forward", "-listen", "127.0.0.1:0", "-upstream", o.Upstream)
	cmd.Dir = dir
	cmd.Env = CleanEnv()
	if o.Procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.Procs))
	}
	logPath := filepath.Join(dir, "forward.log")
	if t.proc, err = startProcess("floor", cmd, logPath, syscall.SIGTERM); err != nil {
		return t, err
	}
	if t.Host, t.Port, err = waitListening(ctx, t.proc); err != nil {
		return t, err
	}
	if err := t.waitReady(ctx); err != nil {
		return t, err
	}
	t.Software = "floor: bench forward"
	if data, err := os.ReadFile(logPath); err == nil {
		if _, mode, _ := parseForwardOutput(data); mode != "" {
			t.Software += " (" + mode + ")"
		}
	}
	return t, nil
}

// waitListening waits until the forwarder has printed the address it
// listens on, and returns it.
func waitListening(ctx context.Context, p *Process) (string, int, error) {
	deadline := time.Now().Add(readyTimeout)
	for {
		data, err := os.ReadFile(p.LogPath)
		if err != nil {
			return "", 0, fmt.Errorf("floor: %w", err)
		}
		if addr, _, ok := parseForwardOutput(data); ok {
			return splitListenAddr(addr)
		}
		if done, werr := p.Exited(); done {
			return "", 0, fmt.Errorf("floor exited during start-up (%v); log tail:\n%s", werr, p.LogTail(20))
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("floor did not print its address within %v; log tail:\n%s", readyTimeout, p.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// parseForwardOutput finds, in the output of `bench forward`, the address
// of its "listening <address>" line and the description of its
// "relay: <mode>" line; ok reports whether the address was found. Lines
// are complete only once they end in a newline: a line still being written
// is ignored.
func parseForwardOutput(data []byte) (addr, mode string, ok bool) {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		return "", "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, found := strings.CutPrefix(line, "listening "); found && !ok {
			addr, ok = strings.TrimSpace(rest), true
		} else if rest, found := strings.CutPrefix(line, "relay: "); found && mode == "" {
			mode = strings.TrimSpace(rest)
		}
	}
	return addr, mode, ok
}

// splitListenAddr splits the printed listen address into host and port.
func splitListenAddr(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("floor printed a bad address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("floor printed a bad address %q", addr)
	}
	return host, port, nil
}
