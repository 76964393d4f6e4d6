//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errClosedConn is what I/O on a closed Conn returns; it wraps
// net.ErrClosed like the standard library's.
var errClosedConn = &net.OpError{Op: "use", Err: net.ErrClosed}

// pollSlice bounds a blocking wait, so that deadlines set while waiting
// are seen.
const pollSlice = 50 * time.Millisecond

// Conn is a socket taken out of Go's poller (see Detach). It is a net.Conn:
// safe for one reader and one writer at a time, with Close, CloseWrite and
// the deadline setters safe from any goroutine. Reads from inside a relay
// coroutine (Shard.Go) wait on the shard; all other blocking waits block
// the calling goroutine's thread in poll(2), in slices of 50 ms.
type Conn struct {
	fd           int
	laddr, raddr net.Addr

	task atomic.Pointer[task]  // the relay reading it, while one does
	sh   atomic.Pointer[Shard] // set by Shard.Go

	// readable is the reader's guess that the socket has bytes: false
	// after a short read, so that the next read waits first rather than
	// make a system call that finds nothing.
	readable bool

	closed    atomic.Bool
	rdeadline atomic.Int64 // unix nanoseconds; 0: none
	wdeadline atomic.Int64

	mu      sync.Mutex // refs, the read timer, the close
	refs    int
	closing bool
	rtimer  *time.Timer

	wmu sync.Mutex // one Write at a time
}

// Detach takes c's socket out of Go's poller: it returns a Conn on a
// duplicate of c's descriptor and closes c. c must be a socket
// (syscall.Conn); a TLS connection cannot be detached.
func Detach(c net.Conn) (*Conn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("evloop: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	out := &Conn{fd: nfd, laddr: c.LocalAddr(), raddr: c.RemoteAddr(), readable: true}
	c.Close()
	return out, nil
}

// incref keeps the descriptor open for an operation; false once closed.
func (c *Conn) incref() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.refs++
	return true
}

func (c *Conn) decref() {
	c.mu.Lock()
	c.refs--
	if c.refs == 0 && c.closing && c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	c.mu.Unlock()
}

// Read reads like net.Conn.Read.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.incref() {
		return 0, errClosedConn
	}
	defer c.decref()
	if t := c.task.Load(); t != nil {
		return c.readInTask(t, p)
	}
	for {
		if err := c.readErr(); err != nil {
			return 0, err
		}
		n, errno := rawIO(unix.SYS_READ, c.fd, p)
		switch errno {
		case 0:
			if n == 0 {
				return 0, c.eof()
			}
			return n, nil
		case unix.EINTR:
		case unix.EAGAIN:
			c.wait(unix.POLLIN, &c.rdeadline)
		default:
			return 0, c.opError("read", errno)
		}
	}
}

// readInTask reads from inside the relay coroutine t: when there is
// nothing to read it gives the thread back to the loop until the socket is
// readable, a deadline passes or the Conn is closed.
func (c *Conn) readInTask(t *task, p []byte) (int, error) {
	for {
		if err := c.readErr(); err != nil {
			return 0, err
		}
		if c.readable {
			n, errno := rawIO(unix.SYS_READ, c.fd, p)
			switch errno {
			case 0:
				if n == 0 {
					return 0, c.eof()
				}
				c.readable = n == len(p)
				return n, nil
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				c.readable = false
			default:
				return 0, c.opError("read", errno)
			}
		}
		if !t.yield(struct{}{}) {
			return 0, errClosedConn
		}
		c.readable = true
	}
}

// eof is what a read of no bytes means: the peer's end of the stream, or
// this Conn's Close (its shutdown ends reads in progress the same way).
func (c *Conn) eof() error {
	if c.closed.Load() {
		return errClosedConn
	}
	return io.EOF
}

func (c *Conn) readErr() error {
	if c.closed.Load() {
		return errClosedConn
	}
	if d := c.rdeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Write writes like net.Conn.Write: all of p, or an error. When the socket
// is full it first hands the loop over (Blocking), then waits.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.incref() {
		return 0, errClosedConn
	}
	defer c.decref()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for written < len(p) {
		if c.closed.Load() {
			return written, errClosedConn
		}
		if d := c.wdeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return written, os.ErrDeadlineExceeded
		}
		n, errno := rawIO(unix.SYS_WRITE, c.fd, p[written:])
		switch errno {
		case 0:
			written += n
		case unix.EINTR:
		case unix.EAGAIN:
			c.Blocking()
			c.wait(unix.POLLOUT, &c.wdeadline)
		default:
			return written, c.opError("write", errno)
		}
	}
	return written, nil
}

// Blocking tells the loop that the caller, which may be a relay of the
// shard c belongs to, is about to wait for something other than c's
// socket: the loop is handed to a new goroutine if a relay holds it, so
// that the shard's other sockets are served meanwhile.
func (c *Conn) Blocking() {
	if sh := c.sh.Load(); sh != nil {
		sh.handoffIfBusy()
	}
}

// wait blocks in poll(2) until the socket is ready for events, for at most
// pollSlice and not past the deadline.
func (c *Conn) wait(events int16, deadline *atomic.Int64) {
	timeout := pollSlice
	if d := deadline.Load(); d != 0 {
		timeout = min(timeout, time.Until(time.Unix(0, d)))
	}
	if timeout <= 0 {
		return
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
	unix.Poll(fds, int(timeout.Milliseconds())+1)
}

// Close closes the socket. A goroutine blocked in Read or Write returns
// net.ErrClosed; the descriptor itself is closed when the last operation
// on it (or the relay reading it) is over.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return errClosedConn
	}
	c.closing = true
	c.closed.Store(true)
	if c.rtimer != nil {
		c.rtimer.Stop()
	}
	if c.refs == 0 {
		unix.Close(c.fd)
		c.fd = -1
	} else {
		// Wakes threads blocked in poll on it.
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	c.mu.Unlock()
	if t := c.task.Load(); t != nil {
		t.wake()
	}
	return nil
}

// CloseWrite shuts down the sending side.
func (c *Conn) CloseWrite() error {
	if !c.incref() {
		return errClosedConn
	}
	defer c.decref()
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return c.opError("shutdown", err.(syscall.Errno))
	}
	return nil
}

// LocalAddr returns the local address of the socket before it was detached.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline; a relay waiting to read is woken
// when it passes.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return errClosedConn
	}
	if t.IsZero() {
		c.rdeadline.Store(0)
		if c.rtimer != nil {
			c.rtimer.Stop()
		}
		return nil
	}
	c.rdeadline.Store(t.UnixNano())
	d := time.Until(t)
	if c.rtimer == nil {
		c.rtimer = time.AfterFunc(d, c.wakeReader)
	} else {
		c.rtimer.Reset(d)
	}
	return nil
}

func (c *Conn) wakeReader() {
	if t := c.task.Load(); t != nil {
		t.wake()
	}
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return errClosedConn
	}
	if t.IsZero() {
		c.wdeadline.Store(0)
	} else {
		c.wdeadline.Store(t.UnixNano())
	}
	return nil
}

func (c *Conn) opError(op string, errno syscall.Errno) error {
	if c.closed.Load() {
		return errClosedConn // an error of a Close in progress (EPIPE after its shutdown, say)
	}
	return &net.OpError{Op: op, Net: c.laddr.Network(), Source: c.laddr, Addr: c.raddr,
		Err: os.NewSyscallError(op, errno)}
}

// rawIO reads or writes a non-blocking descriptor without the runtime's
// system call bookkeeping (it never blocks).
func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}
