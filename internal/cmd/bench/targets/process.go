package targets

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a long-running child (a proxy) whose stdout and stderr go to a
// log file.
type Process struct {
	// Name names the process in messages.
	Name string
	// LogPath is the file holding the child's output.
	LogPath string

	cmd     *exec.Cmd
	stopSig syscall.Signal
	exited  chan struct{} // closed once cmd.Wait has returned
	waitErr error         // cmd.Wait's result; read only after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startProcess starts cmd with its output appended to logPath. The child
// gets its own process group, so a Ctrl-C in the terminal reaches only this
// program, which then stops its children in order; and it gets stopSig
// should this program die without stopping it.
func startProcess(name string, cmd *exec.Cmd, logPath string, stopSig syscall.Signal) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	defer f.Close() // the child keeps its own descriptor
	cmd.Stdout = f
	cmd.Stderr = f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = stopSig
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, stopSig: stopSig, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID returns the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the child has exited, and with what.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// CPUTime returns the user plus system CPU time the child has used so far.
func (p *Process) CPUTime() (time.Duration, error) {
	return processCPUTime(p.PID())
}

// Stop sends the stop signal, waits up to grace for the child to exit and
// kills it otherwise. An exit caused by the signal is not an error. Stop is
// idempotent.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		if done, _ := p.Exited(); done {
			return
		}
		if err := p.cmd.Process.Signal(p.stopSig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("%s: signal: %w", p.Name, err)
		}
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
		}
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("%s: kill: %w", p.Name, err))
		}
		<-p.exited
		p.stopErr = errors.Join(p.stopErr, fmt.Errorf("%s: did not stop within %v of %v; killed", p.Name, grace, p.stopSig))
	})
	return p.stopErr
}

// LogTail returns the last n lines of the child's output.
func (p *Process) LogTail(n int) string {
	return fileTail(p.LogPath, n)
}

// fileTail returns the last n lines of the file at path, or a note saying
// why it cannot.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
