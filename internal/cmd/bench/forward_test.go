package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait of these tests, so that a bug hangs
// nothing; no assertion depends on timing.
const testTimeout = 20 * time.Second

// echoServer is a TCP server on loopback that writes back what it reads
// and reports, for each connection, the error that ended its reads
// (io.EOF when the peer closed).
type echoServer struct {
	ln    net.Listener
	ended chan error
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, ended: make(chan error, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				buf := make([]byte, 1500)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							s.ended <- werr
							return
						}
					}
					if err != nil {
						s.ended <- err
						return
					}
				}
			})
		}
	})
	return s
}

// startForward runs serveForward in front of upstream and returns its
// address; the test's cleanup cancels it and checks that it returned nil.
// Anything it logs fails the test unless allowLog is set, in which case it
// is collected in the returned log.
func startForward(t *testing.T, upstream string, allowLog bool) (addr string, cancel context.CancelFunc, log *syncLog) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncLog{}
	logf := func(format string, a ...any) {
		log.add(fmt.Sprintf(format, a...))
		if !allowLog {
			t.Errorf("forwarder logged: "+format, a...)
		}
	}
	served := make(chan error, 1)
	go func() { served <- serveForward(ctx, ln, upstream, logf) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serveForward: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("serveForward did not return after its context was cancelled")
		}
	})
	return ln.Addr().String(), cancel, log
}

// syncLog collects lines from several goroutines.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// exchange sends data of several sizes through addr to the echo server
// and checks it comes back intact: a few request-response round trips, then
// a transfer in both directions at once larger than the forwarder's buffer.
func exchange(addr string, seed uint64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	rng := rand.New(rand.NewPCG(seed, 1))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, n := range []int{1, 5, 300, 1 + rng.IntN(4000)} {
		msg := random(n)
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("write %d bytes: %w", n, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("read back %d bytes: %w", n, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("%d bytes came back altered", n)
		}
	}
	bulk := random(3*forwardBuffer + rng.IntN(1000))
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(bulk)
		written <- err
	}()
	got := make([]byte, len(bulk))
	_, rerr := io.ReadFull(c, got)
	if err := <-written; err != nil {
		return fmt.Errorf("write %d bytes: %w", len(bulk), err)
	}
	if rerr != nil {
		return fmt.Errorf("read back %d bytes: %w", len(bulk), rerr)
	}
	if !bytes.Equal(got, bulk) {
		return fmt.Errorf("%d bytes came back altered", len(bulk))
	}
	return nil
}

// TestForwarderRelaysBothWays relays several concurrent connections to an
// echo server and checks that every byte comes back intact, and that
// closing a client closes its upstream connection.
func TestForwarderRelaysBothWays(t *testing.T) {
	echo := startEcho(t)
	addr, _, _ := startForward(t, echo.ln.Addr().String(), false)

	const conns = 8
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { errs <- exchange(addr, uint64(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Every client has read all it sent and closed its connection: each
	// upstream connection must then see the end of its stream.
	for i := range conns {
		select {
		case err := <-echo.ended:
			if !errors.Is(err, io.EOF) {
				t.Errorf("upstream connection ended with %v, want EOF", err)
			}
		case <-time.After(testTimeout):
			t.Fatalf("only %d of %d upstream connections were closed", i, conns)
		}
	}
}

// TestForwarderServerCloseEndsClient checks the other direction: when the
// upstream closes, the client reads what it sent and then the end of the
// stream.
func TestForwarderServerCloseEndsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("goodbye"))
		c.Close()
	}()
	addr, _, _ := startForward(t, ln.Addr().String(), false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (after %q)", err, got)
	}
	if string(got) != "goodbye" {
		t.Errorf("read %q, want %q", got, "goodbye")
	}
}

// TestForwarderUpstreamDown checks that a client whose upstream cannot be
// reached is disconnected and the failure reported.
func TestForwarderUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there now
	addr, _, log := startForward(t, down, true)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if n, err := c.Read(make([]byte, 10)); err == nil || n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read = %d, %v; want the connection closed", n, err)
	}
	// The log line is written before the client's socket is closed.
	if !strings.Contains(log.String(), "dial upstream") {
		t.Errorf("log = %q, want the dial failure", log.String())
	}
}

// TestForwarderStopsOnCancel checks that cancelling the forwarder closes
// the connections it relays, at both ends.
func TestForwarderStopsOnCancel(t *testing.T) {
	echo := startEcho(t)
	addr, cancel, _ := startForward(t, echo.ln.Addr().String(), false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n, err := c.Read(make([]byte, 10)); err == nil || n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client read after cancel = %d, %v; want the connection closed", n, err)
	}
	select {
	case err := <-echo.ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("upstream connection ended with %v, want EOF", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("upstream connection not closed after cancel")
	}
}

// TestForwardFlags checks that bad command lines of `bench forward` are
// refused without starting anything.
func TestForwardFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"forward"}, 2},
		{[]string{"forward", "-bogus"}, 2},
		{[]string{"forward", "-upstream", "localhost"}, 2},
		{[]string{"forward", "-upstream", ":5432"}, 2},
		{[]string{"forward", "-upstream", "localhost:0"}, 2},
		{[]string{"forward", "-upstream", "localhost:x"}, 2},
		{[]string{"forward", "-upstream", "localhost:5432", "extra"}, 2},
		{[]string{"forward", "-listen", "127.0.0.1:99999", "-upstream", "localhost:5432"}, 1},
	} {
		var stdout, stderr bytes.Buffer
		if got := realMain(tc.args, &stdout, &stderr); got != tc.want {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", tc.args, got, tc.want, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: stdout %q, want nothing", tc.args, stdout.String())
		}
	}
}

// TestRelayOnGoroutines checks the relay used where there is no event loop
// (outside Linux), over in-memory connections.
func TestRelayOnGoroutines(t *testing.T) {
	clientApp, clientFwd := net.Pipe()
	serverFwd, serverApp := net.Pipe()
	defer clientApp.Close()
	defer serverApp.Close()
	deadline := time.Now().Add(testTimeout)
	clientApp.SetDeadline(deadline)
	serverApp.SetDeadline(deadline)
	f := &forwarder{logf: t.Errorf}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.relayOnGoroutines(context.Background(), clientFwd, serverFwd)
	}()
	roundTrip := func(from, to net.Conn, msg string) {
		t.Helper()
		written := make(chan error, 1)
		go func() {
			_, err := from.Write([]byte(msg))
			written <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(to, got); err != nil {
			t.Fatalf("read %q: %v", msg, err)
		}
		if err := <-written; err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		if string(got) != msg {
			t.Fatalf("read %q, want %q", got, msg)
		}
	}
	roundTrip(clientApp, serverApp, "query")
	roundTrip(serverApp, clientApp, "result")
	clientApp.Close()
	if n, err := serverApp.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Errorf("server read after the client closed = %d, %v; want EOF", n, err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("relays did not end")
	}
}

// TestFloorFlag checks that the floor is measured unless -floor=false.
func TestFloorFlag(t *testing.T) {
	var stderr bytes.Buffer
	if o, err := parseFlags(nil, &stderr); err != nil || !o.floor {
		t.Errorf("default: floor = %v, err = %v", o.floor, err)
	}
	if o, err := parseFlags([]string{"-floor=false"}, &stderr); err != nil || o.floor {
		t.Errorf("-floor=false: floor = %v, err = %v", o.floor, err)
	}
}
