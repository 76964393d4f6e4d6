//go:build !linux

package sockio

import "net"

// Wrap returns c: the raw system call path is only built for Linux.
func Wrap(c net.Conn) net.Conn { return c }
