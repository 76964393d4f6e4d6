package pgtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// logTailBytes bounds how much of the server log LogTail reads and Stop
// keeps in memory.
const logTailBytes = 256 << 10

// LogTail returns the last n lines of the server log (stdout and stderr of
// the postmaster), to help debug failures. It keeps working after Stop,
// from a copy of the log taken just before the files were removed. It
// returns "" for n <= 0 and a short explanation if the log is unreadable.
func (c *Cluster) LogTail(n int) string {
	if n <= 0 {
		return ""
	}
	c.mu.Lock()
	data := c.finalLog
	c.mu.Unlock()
	if data == nil {
		var err error
		data, err = readTail(c.logPath, logTailBytes)
		if err != nil {
			return fmt.Sprintf("(server log unavailable: %v)", err)
		}
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readLogFrom returns the log contents from byte offset off on, or nil.
func (c *Cluster) readLogFrom(off int64) []byte {
	f, err := os.Open(c.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(f, logTailBytes))
	return b
}

// captureLog keeps the log tail in memory so LogTail works after Dir is
// removed.
func (c *Cluster) captureLog() {
	data, err := readTail(c.logPath, logTailBytes)
	if err != nil {
		data = []byte(fmt.Sprintf("(server log unavailable: %v)", err))
	}
	if data == nil {
		data = []byte{}
	}
	c.mu.Lock()
	c.finalLog = data
	c.mu.Unlock()
}

// readTail returns at most max bytes from the end of path, starting at a
// line boundary when it had to skip a prefix.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b, nil
}
