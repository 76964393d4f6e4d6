package journal

import (
	"os"
	"syscall"
)

// syncfs is syncfs(2), measured against fdatasync by BenchmarkSyncStrategy
// (the syscall package has no number for it on amd64: it is 306).
var syncfs = func(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(306, fd, 0, 0); e != 0 {
			serr = e
		}
	})
	return serr
}
