package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// childProcess is the child agent as the parent sees it: a process whose
// output the narrator relays, and a control pipe on which it says when it
// waits and sends its report.
type childProcess struct {
	cmd     *exec.Cmd
	waiting chan controlMessage // once the child waits
	report  chan childReport    // at its end
	gone    chan struct{}       // closed when the control pipe closes: the child exited
	relays  sync.WaitGroup
	cancel  context.CancelFunc

	mu      sync.Mutex
	printed *sync.Cond // signalled at each line of the child's stdout relayed
	lines   int        // lines of stdout relayed
	eof     bool       // the child's stdout is closed

	waitOnce sync.Once
	exit     int
	rep      childReport
	waitErr  error
}

// startChild starts this binary again as the child, with an environment
// of two variables (its role, and connString: where the gateway is, no
// password) and its token on standard input. The child has nothing else:
// not the parent's environment, not a database credential.
func startChild(ctx context.Context, n *narrator, connString string, token session.Secret) (*childProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = []string{roleEnv + "=" + roleChild, gatewayEnv + "=" + connString}
	cmd.Stdin = strings.NewReader(token.Reveal() + "\n")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	controlR, controlW, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, err
	}
	defer controlW.Close() // the child has its own copy
	cmd.ExtraFiles = []*os.File{controlW}
	if err := cmd.Start(); err != nil {
		cancel()
		controlR.Close()
		return nil, fmt.Errorf("starting the child: %w", err)
	}
	c := &childProcess{cmd: cmd, cancel: cancel, waiting: make(chan controlMessage, 1), report: make(chan childReport, 1),
		gone: make(chan struct{})}
	c.printed = sync.NewCond(&c.mu)
	c.relays.Add(3)
	go c.relay(stdout, n.Child, true)
	go c.relay(stderr, func(line string) { n.Child("(stderr) " + line) }, false)
	go c.readControl(controlR)
	return c, nil
}

// relay passes each line of r to print; for stdout (count), it counts
// them.
func (c *childProcess) relay(r io.Reader, print func(string), count bool) {
	defer c.relays.Done()
	s := bufio.NewScanner(r)
	for s.Scan() {
		print(s.Text())
		if count {
			c.mu.Lock()
			c.lines++
			c.printed.Broadcast()
			c.mu.Unlock()
		}
	}
	if count {
		c.mu.Lock()
		c.eof = true
		c.printed.Broadcast()
		c.mu.Unlock()
	}
}

// waitPrinted waits until n lines of the child's stdout are relayed (or
// it closed), so that what the parent says next comes after them.
func (c *childProcess) waitPrinted(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lines < n && !c.eof {
		c.printed.Wait()
	}
}

// readControl reads the child's control messages until it exits.
func (c *childProcess) readControl(r *os.File) {
	defer c.relays.Done()
	defer close(c.gone)
	defer r.Close()
	dec := json.NewDecoder(r)
	for {
		var m controlMessage
		if err := dec.Decode(&m); err != nil {
			return
		}
		switch {
		case m.Waiting != "":
			c.waiting <- m
		case m.Report != nil:
			c.report <- *m.Report
		}
	}
}

// Pid is the child's process id.
func (c *childProcess) Pid() int { return c.cmd.Process.Pid }

// wait waits for the child's end (its output all relayed) and returns
// its exit status and its report.
func (c *childProcess) wait() (int, childReport, error) {
	c.waitOnce.Do(func() { c.exit, c.rep, c.waitErr = c.reap() })
	return c.exit, c.rep, c.waitErr
}

// stop ends the child (SIGTERM, then SIGKILL after WaitDelay) unless it
// has exited, and waits for it.
func (c *childProcess) stop() {
	c.cancel()
	_, _, _ = c.wait()
}

// reap is wait's work.
func (c *childProcess) reap() (int, childReport, error) {
	c.relays.Wait()
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return -1, childReport{}, fmt.Errorf("waiting for the child: %w", err)
	}
	select {
	case r := <-c.report:
		return c.cmd.ProcessState.ExitCode(), r, nil
	default:
		return c.cmd.ProcessState.ExitCode(), childReport{}, errors.New("the child sent no report")
	}
}

// waitUntilWaiting returns the child's session id once the child says it
// waits for more work, and what it printed until then is relayed.
func (c *childProcess) waitUntilWaiting(ctx context.Context) (string, error) {
	select {
	case m := <-c.waiting:
		c.waitPrinted(m.Lines)
		return m.Waiting, nil
	case <-c.gone:
		select {
		case m := <-c.waiting: // sent just before it ended
			return m.Waiting, nil
		default:
			return "", errors.New("the child ended before it waited for more work")
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// connString is a libpq keyword/value connection string for the child:
// the gateway, the database, verify-full against the example's CA, and
// no password.
func connString(g *gateway, caFile, user string) string {
	kv := [][2]string{
		{"host", g.addr.IP.String()}, {"port", strconv.Itoa(g.addr.Port)}, {"dbname", database},
		{"user", user}, {"application_name", user},
		{"sslmode", "verify-full"}, {"sslrootcert", caFile},
	}
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + conninfoValue(p[1])
	}
	return strings.Join(parts, " ")
}

// conninfoValue quotes a connection string value when it needs it.
func conninfoValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
