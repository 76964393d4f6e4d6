package pgtest

import "syscall"

// serverProcAttr returns the SysProcAttr for initdb and postgres children.
//
// Pdeathsig delivers SIGQUIT (PostgreSQL's immediate shutdown) to the child
// when the thread that started it dies, so a killed test binary does not
// leave a server running. Go applies it after switching credentials, so it
// survives the uid change. (It is tied to the starting OS thread; the Go
// runtime does not retire threads except for goroutines that exit while
// locked to one, which this package never does.)
func serverProcAttr(id *identity) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: id.credential(),
		Pdeathsig:  syscall.SIGQUIT,
	}
}
