// Package evloop relays sockets from a level-triggered epoll loop instead
// of Go's network poller.
//
// A proxy that waits in Go's poller pays, for every message it forwards, a
// goroutine park and wake-up through the scheduler and a read that finds
// the socket empty before it parks. On a loopback pgbench run that made the
// gateway use about 1.7 times pgbouncer's CPU per transaction, while a Go
// forwarder built as one epoll loop matched pgbouncer. evloop gives the
// proxy that loop without rewriting its relays as state machines: each
// relay still runs as ordinary blocking code, but as a coroutine
// (iter.Pull). When the relay reads a socket that has nothing to read, it
// does not park its goroutine: it switches back to the loop (about 100 ns),
// which waits in epoll_wait for every socket it serves and switches into
// the relay whose socket became readable.
//
// A relay may still block on anything else (a policy that calls a
// service, a recorder waiting for fsync, an approval, a full socket it
// writes to). While it does, the loop that switched into it is stuck, so
// a watchdog hands the loop to a new goroutine when a relay has held it for
// more than StallLimit, and the relay can hand it over itself when it knows
// it is about to wait (Conn.Blocking). Other sessions are therefore never
// held up for longer than StallLimit by one that blocks.
//
// Sockets are taken out of Go's poller (Detach) so that a message wakes one
// thread, not two. Conn keeps the net.Conn contract: deadlines, Close and
// CloseWrite from any goroutine, and Read and Write outside a relay
// coroutine block the calling goroutine as usual.
//
// evloop is built for Linux only; elsewhere Detach reports
// errors.ErrUnsupported and callers keep Go's poller.
package evloop
