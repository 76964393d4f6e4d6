// Package testlog keeps what tests log, so that they can check it (for a
// secret that must not be there, for example).
package testlog

import (
	"strings"
	"sync"
)

// Buffer is an io.Writer that keeps everything written to it; it is safe
// for concurrent use (a logger shared by many goroutines).
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
