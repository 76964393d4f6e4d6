package pgtest

import (
	"errors"
	"fmt"
	"os"
)

// Stop shuts the server down and removes Dir.
//
// It sends SIGINT (fast shutdown: open sessions are terminated) to the
// postmaster, waits up to 10 seconds and then sends SIGKILL; once the
// process has exited, Dir and everything in it is removed. Stop is
// idempotent and safe for concurrent use: later calls return the result of
// the first. [Cluster.LogTail] keeps working afterwards. A nil *Cluster is
// a no-op.
func (c *Cluster) Stop() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		stopErr := c.stopServer()
		c.captureLog()
		var rmErr error
		if c.Dir != "" {
			if err := os.RemoveAll(c.Dir); err != nil {
				rmErr = fmt.Errorf("pgtest: remove cluster directory: %w", err)
			}
		}
		c.stopErr = errors.Join(stopErr, rmErr)
	})
	return c.stopErr
}
