package sockio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Wrap returns c with Read and Write done by raw system calls when c is a
// TCP or Unix socket, and c itself otherwise. The result keeps c's other
// methods (deadlines, Close) and CloseWrite, and like any net.Conn is safe
// for one reader and one writer at a time (concurrent Reads, or Writes,
// are serialised).
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &conn{Conn: c, rc: rc}
	// Bound once: a closure per call would be an allocation per call.
	w.read.fn = w.read.do
	w.write.fn = w.write.do
	return w
}

type conn struct {
	net.Conn
	rc    syscall.RawConn
	read  reader
	write writer
}

// reader holds the state of one Read for the raw-read callback.
type reader struct {
	mu    sync.Mutex
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (r *reader) do(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// writer holds the state of one Write for the raw-write callback.
type writer struct {
	mu      sync.Mutex
	buf     []byte
	written int
	errno   syscall.Errno
	fn      func(fd uintptr) bool
}

func (w *writer) do(fd uintptr) bool {
	for w.written < len(w.buf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.buf[w.written])), uintptr(len(w.buf)-w.written))
		switch e {
		case 0:
			w.written += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for the poller
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// Read reads like net.Conn.Read.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := &c.read
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf, r.n, r.errno = p, 0, 0
	err := c.rc.Read(r.fn)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, c.opError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// Write writes like net.Conn.Write: all of p, or an error.
func (c *conn) Write(p []byte) (int, error) {
	w := &c.write
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf, w.written, w.errno = p, 0, 0
	err := c.rc.Write(w.fn)
	w.buf = nil
	switch {
	case err != nil:
		return w.written, err
	case w.errno != 0:
		return w.written, c.opError("write", w.errno)
	}
	return w.written, nil
}

func (c *conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(),
		Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// CloseWrite shuts down the sending side, when the socket supports it.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn returns the socket's raw connection, so that the socket can
// be taken over (see internal/evloop).
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }
