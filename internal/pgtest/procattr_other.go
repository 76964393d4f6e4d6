//go:build !linux

package pgtest

import "syscall"

// serverProcAttr returns the SysProcAttr for initdb and postgres children.
// Outside Linux there is no parent-death signal; the stale sweep in Start
// cleans up after test binaries that were killed.
func serverProcAttr(id *identity) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: id.credential()}
}
