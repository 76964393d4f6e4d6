package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/internal/evloop"
)

// This file is the benchmark's "floor" target: `bench forward`, a hidden
// subcommand of this program that relays bytes between each client and
// PostgreSQL with no protocol handling at all.
//
// It is a measurement tool, not a product: it exists so that the report
// can separate what relaying bytes in Go on the gateway's event loop costs
// from what understanding every message costs (pgwarden against the
// floor). To be an honest floor it relays the way the gateway does and
// adds nothing of its own:
//
//   - the same event loop: internal/evloop, one Loop for the process with
//     max(GOMAXPROCS/2, 1) shards, started by the first connection and
//     closed when the last one ends (as proxy.acquireLoop and
//     proxy.releaseLoop do);
//   - the same socket handling: plain TCP from net.Listen and net.Dialer,
//     TCP_NODELAY on both sockets (Go's default, which the gateway keeps;
//     set here explicitly), both sockets taken out of Go's poller with
//     evloop.Detach and both relays of a connection on one shard;
//   - reads into a reused buffer of the size the gateway reads and writes
//     with (16 KiB), each read written out at once: no batching, no
//     splice(2) or other kernel shortcut the gateway does not take.
//
// It does not authenticate, parse, log per connection or limit anything;
// PostgreSQL authenticates the client through it. Outside Linux, where
// internal/evloop is not built, it relays with a goroutine per direction,
// like the gateway does there.

// forwardBuffer is the size of each direction's read buffer: the gateway's
// relay buffer (proxy/session.go) and message reader (internal/wire).
const forwardBuffer = 16 << 10

// forwardDialTimeout bounds the dial to the upstream.
const forwardDialTimeout = 10 * time.Second

// forwardMain runs `bench forward -listen ADDR -upstream HOST:PORT`, the
// benchmark's floor: a measurement tool, not a product, that relays bytes
// exactly as described at the top of this file and does nothing else. It
// listens, prints "listening <address>" on the first line of stdout and a
// description of how it relays on the second, and forwards every accepted
// connection to the upstream until SIGINT or SIGTERM. It returns the exit
// code: 0 after a signal, 1 on failure, 2 for bad flags.
func forwardMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on (port 0: any free port)")
	upstream := fs.String("upstream", "", "`host:port` to relay every connection to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "bench forward: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if err := checkHostPort(*upstream); err != nil {
		return usage("-upstream: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bench forward: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	fmt.Fprintf(stdout, "relay: %s\n", forwardMode())
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench forward: "+format+"\n", a...)
	}
	if err := serveForward(ctx, ln, *upstream, logf); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// checkHostPort reports whether s is host:port with a non-empty host and a
// port number between 1 and 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: bad port %q", s, port)
	}
	return nil
}

// forwardShards is the number of event loop shards, the gateway's choice
// (proxy.acquireLoop): half the Ps, since a shard's runner keeps its P
// while it waits.
func forwardShards() int { return max(runtime.GOMAXPROCS(0)/2, 1) }

// forwardMode describes how connections are relayed, for the record: on
// the event loop when this system has one, and otherwise on goroutines.
func forwardMode() string {
	lp, err := evloop.New(forwardShards())
	if err != nil {
		return fmt.Sprintf("goroutines, no event loop (%v), GOMAXPROCS=%d", err, runtime.GOMAXPROCS(0))
	}
	lp.Close()
	return fmt.Sprintf("internal/evloop, %d shard(s), GOMAXPROCS=%d", forwardShards(), runtime.GOMAXPROCS(0))
}

// serveForward accepts connections on ln and relays each, in both
// directions, to a new TCP connection to upstream, until ctx ends (it then
// returns nil) or accepting fails for good. Before returning it closes ln
// and every connection, and waits for every relay to end. logf receives
// the errors worth reporting (a failed dial, say); the ordinary ends of a
// connection are not reported.
func serveForward(ctx context.Context, ln net.Listener, upstream string, logf func(format string, a ...any)) error {
	ctx, cancel := context.WithCancel(ctx)
	f := &forwarder{upstream: upstream, logf: logf}
	f.dialer.Timeout = forwardDialTimeout
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes ln and every connection
		wg.Wait()
	}()
	context.AfterFunc(ctx, func() { ln.Close() })

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTemporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				logf("accept: %v; retrying in %v", err, backoff)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.handle(ctx, c)
		}()
	}
}

// isTemporaryAccept reports whether a later Accept may succeed (the
// gateway's rule): the process ran out of descriptors, or a connection was
// aborted before it was accepted.
func isTemporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED)
}

// forwarder relays connections to one upstream address.
type forwarder struct {
	upstream string
	dialer   net.Dialer
	logf     func(format string, a ...any)

	mu    sync.Mutex
	loop  *evloop.Loop // while users > 0
	users int
}

// handle relays client to a new connection to the upstream until either
// direction ends or ctx does, and closes both connections.
func (f *forwarder) handle(ctx context.Context, client net.Conn) {
	server, err := f.dialer.DialContext(ctx, "tcp", f.upstream)
	if err != nil {
		if ctx.Err() == nil {
			f.logf("dial upstream %s: %v", f.upstream, err)
		}
		client.Close()
		return
	}
	if err := errors.Join(setNoDelay(client), setNoDelay(server)); err != nil {
		f.logf("TCP_NODELAY: %v", err)
		client.Close()
		server.Close()
		return
	}
	lp, err := f.acquireLoop()
	switch {
	case err == nil:
		defer f.releaseLoop()
		f.relayOnLoop(ctx, lp, client, server)
	case errors.Is(err, errors.ErrUnsupported):
		f.relayOnGoroutines(ctx, client, server)
	default:
		// Not the gateway's path: refuse rather than measure something else.
		f.logf("event loop: %v; connection dropped", err)
		client.Close()
		server.Close()
	}
}

// setNoDelay turns TCP_NODELAY on for c when it is a TCP connection.
func setNoDelay(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	return tc.SetNoDelay(true)
}

// acquireLoop returns the forwarder's event loop, starting it for the
// first connection, like the gateway; errors.ErrUnsupported when this
// system has none.
func (f *forwarder) acquireLoop() (*evloop.Loop, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loop == nil {
		lp, err := evloop.New(forwardShards())
		if err != nil {
			return nil, err
		}
		f.loop = lp
	}
	f.users++
	return f.loop, nil
}

// releaseLoop closes the event loop when its last connection is over.
func (f *forwarder) releaseLoop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users--
	if f.users == 0 {
		f.loop.Close()
		f.loop = nil
	}
}

// relayOnLoop takes both sockets out of Go's poller and relays them as two
// coroutines on one shard of lp.
func (f *forwarder) relayOnLoop(ctx context.Context, lp *evloop.Loop, client, server net.Conn) {
	cl, err := evloop.Detach(client)
	if errors.Is(err, errors.ErrUnsupported) {
		f.relayOnGoroutines(ctx, client, server)
		return
	}
	if err != nil {
		f.logf("detach client socket: %v", err)
		client.Close()
		server.Close()
		return
	}
	sv, err := evloop.Detach(server)
	if err != nil {
		f.logf("detach upstream socket: %v", err)
		cl.Close()
		server.Close()
		return
	}
	sh := lp.Shard()
	if err := relayBoth(ctx, cl, sv, sh.Go); err != nil {
		f.logf("start relay: %v", err)
	}
}

// relayOnGoroutines relays client and server with a goroutine per
// direction (Go's poller), where there is no event loop.
func (f *forwarder) relayOnGoroutines(ctx context.Context, client, server net.Conn) {
	start := func(_ net.Conn, relay func()) (<-chan struct{}, error) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			relay()
		}()
		return done, nil
	}
	if err := relayBoth(ctx, client, server, start); err != nil {
		f.logf("start relay: %v", err)
	}
}

// relayBoth copies client to server and server to client, each relay
// started by start(src, relay) (the relay reads src), closes both
// connections as soon as either direction ends or ctx does, and returns
// once both relays have returned. It returns an error, having closed both
// connections, only when a relay could not be started.
func relayBoth[C net.Conn](ctx context.Context, client, server C, start func(src C, relay func()) (<-chan struct{}, error)) error {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	up, err := start(client, func() {
		defer closeBoth()
		copyBytes(server, client)
	})
	if err != nil {
		closeBoth()
		return err
	}
	down, err := start(server, func() {
		defer closeBoth()
		copyBytes(client, server)
	})
	if err != nil {
		closeBoth()
		<-up
		return err
	}
	<-up
	<-down
	return nil
}

// copyBytes copies src to dst until src ends or either fails, through one
// buffer of forwardBuffer bytes reused for every read. The wrappers hide
// io.ReaderFrom and io.WriterTo, so that every read is written out as it
// is, by write(2), and never spliced by the kernel.
func copyBytes(dst io.Writer, src io.Reader) {
	buf := make([]byte, forwardBuffer)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}
