//go:build !linux

package evloop

import (
	"errors"
	"net"
	"time"
)

// StallLimit: see the Linux build.
const StallLimit = time.Millisecond

// ErrClosed is returned by Go once the Loop is closed.
var ErrClosed = errors.New("evloop: loop closed")

// Loop is only built for Linux; New fails elsewhere.
type Loop struct{}

// New reports errors.ErrUnsupported: the loop is only built for Linux.
func New(n int) (*Loop, error) { return nil, errors.ErrUnsupported }

// Shard is never returned outside Linux.
func (l *Loop) Shard() *Shard { return nil }

// Close does nothing.
func (l *Loop) Close() {}

// Shard is one epoll loop (Linux only).
type Shard struct{}

// Go reports errors.ErrUnsupported.
func (sh *Shard) Go(c *Conn, fn func()) (<-chan struct{}, error) { return nil, errors.ErrUnsupported }

// Conn is a detached socket (Linux only).
type Conn struct{ net.Conn }

// Detach reports errors.ErrUnsupported: callers keep Go's poller.
func Detach(c net.Conn) (*Conn, error) { return nil, errors.ErrUnsupported }

// Blocking does nothing.
func (c *Conn) Blocking() {}

// CloseWrite does nothing.
func (c *Conn) CloseWrite() error { return nil }
