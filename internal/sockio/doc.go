// Package sockio reads and writes sockets without the Go runtime's
// bookkeeping for blocking system calls.
//
// The runtime wraps every read and write in entersyscall/exitsyscall, and
// when the process was idle, entering a system call wakes the sysmon
// thread. A proxy that is idle between every message pays for that wake-up
// (two context switches) several times per round trip: on a loopback
// pgbench run this doubled the gateway's context switches per transaction.
// Reads and writes of non-blocking sockets never block, so sockio issues
// them as raw system calls inside the runtime's poller (syscall.RawConn),
// which still parks the goroutine when the socket is not ready and still
// honours deadlines and Close.
package sockio
