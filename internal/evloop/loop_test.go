//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// failAfter bounds a wait that only a bug makes long: the test fails (it
// does not measure speed).
const failAfter = 20 * time.Second

// pair returns a detached server side and the client side of a loopback
// TCP connection, closed when the test ends.
func pair(t *testing.T) (*Conn, net.Conn) { return rtMustPair(t) }

func newLoop(t *testing.T, shards int) *Loop {
	t.Helper()
	l, err := New(shards)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// echo is a relay written as ordinary blocking code: it answers every line
// with the same line, until EOF or an error, which it reports.
func echo(c *Conn, errs chan<- error) func() {
	return func() {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				errs <- err
				return
			}
			if _, err := c.Write(line); err != nil {
				errs <- err
				return
			}
		}
	}
}

func wait(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(failAfter):
		t.Fatalf("%s did not happen", what)
	}
}

// roundTrip sends a line and checks that it comes back.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(failAfter))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the echo of %q: %v", line, err)
	}
	if got != line+"\n" {
		t.Fatalf("echo = %q, want %q", got, line+"\n")
	}
}

func TestManyRelaysOnOneShard(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	const conns, lines = 40, 200
	var wg sync.WaitGroup
	for i := range conns {
		srv, cli := pair(t)
		errs := make(chan error, 1)
		done, err := sh.Go(srv, echo(srv, errs))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli.SetDeadline(time.Now().Add(failAfter))
			r := bufio.NewReader(cli)
			for j := range lines {
				want := fmt.Sprintf("conn %d line %d %s", i, j, bytes.Repeat([]byte{'x'}, j))
				io.WriteString(cli, want+"\n")
				got, err := r.ReadString('\n')
				if err != nil || got != want+"\n" {
					t.Errorf("conn %d: echo = %q, %v; want %q", i, got, err, want)
					return
				}
			}
			cli.(*net.TCPConn).CloseWrite()
			<-done
			if err := <-errs; err != io.EOF {
				t.Errorf("conn %d: relay ended with %v, want EOF", i, err)
			}
		}()
	}
	wg.Wait()
}

// A relay that blocks without saying so holds its loop only until the
// watchdog hands the loop over: the other relay of the same shard goes on.
func TestWatchdogHandsOverAStalledLoop(t *testing.T) {
	testStalledRelay(t, false)
}

// Blocking hands the loop over at once.
func TestBlockingHandsOver(t *testing.T) {
	testStalledRelay(t, true)
}

func testStalledRelay(t *testing.T, announce bool) {
	l := newLoop(t, 1)
	sh := l.Shard()
	stuckSrv, stuckCli := pair(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	stuckDone, err := sh.Go(stuckSrv, func() {
		var b [1]byte
		if _, err := stuckSrv.Read(b[:]); err != nil {
			t.Error(err)
			return
		}
		close(entered)
		if announce {
			stuckSrv.Blocking()
		}
		<-release // a policy calling a slow service, say
		stuckSrv.Write(b[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := pair(t)
	errs := make(chan error, 1)
	if _, err := sh.Go(srv, echo(srv, errs)); err != nil {
		t.Fatal(err)
	}
	stuckCli.Write([]byte{'!'})
	wait(t, entered, "the stalled relay's read")
	r := bufio.NewReader(cli)
	for i := range 20 {
		roundTrip(t, cli, r, fmt.Sprintf("served while the other relay waits %d", i))
	}
	close(release)
	wait(t, stuckDone, "the stalled relay's end")
	stuckCli.SetReadDeadline(time.Now().Add(failAfter))
	var b [1]byte
	if _, err := io.ReadFull(stuckCli, b[:]); err != nil || b[0] != '!' {
		t.Fatalf("stalled relay's answer = %q, %v", b[:], err)
	}
	// The loop still serves after the hand-over.
	roundTrip(t, cli, r, "after")
}

func TestReadDeadlineWakesTheRelay(t *testing.T) {
	l := newLoop(t, 1)
	srv, _ := pair(t)
	got := make(chan error, 1)
	done, err := l.Shard().Go(srv, func() {
		var b [16]byte
		_, err := srv.Read(b[:])
		got <- err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	wait(t, done, "the relay's return")
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestCloseWakesTheRelay(t *testing.T) {
	l := newLoop(t, 1)
	srv, cli := pair(t)
	got := make(chan error, 1)
	done, err := l.Shard().Go(srv, func() {
		var b [16]byte
		_, err := srv.Read(b[:])
		got <- err
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // let it wait; correctness does not depend on it
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the relay's return")
	if err := <-got; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read = %v, want net.ErrClosed", err)
	}
	// The descriptor is closed once the relay is gone: the peer sees EOF.
	cli.SetReadDeadline(time.Now().Add(failAfter))
	if n, err := cli.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read = %d, %v; want EOF", n, err)
	}
	if srv.Close() == nil {
		t.Fatal("second Close succeeded")
	}
}

// A relay writing to a peer that does not read blocks in Write; the loop
// goes on serving the other relay, and the write completes when the peer
// reads.
func TestWriteToAFullSocket(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	bigSrv, bigCli := pair(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<21) // 32 MiB: more than the socket buffers hold
	wrote := make(chan error, 1)
	bigDone, err := sh.Go(bigSrv, func() {
		var b [1]byte
		if _, err := bigSrv.Read(b[:]); err != nil {
			wrote <- err
			return
		}
		_, err := bigSrv.Write(payload)
		wrote <- err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := pair(t)
	errs := make(chan error, 1)
	if _, err := sh.Go(srv, echo(srv, errs)); err != nil {
		t.Fatal(err)
	}
	bigCli.Write([]byte{'g'})
	r := bufio.NewReader(cli)
	for i := range 10 {
		roundTrip(t, cli, r, fmt.Sprintf("while the big write waits %d", i))
	}
	bigCli.SetReadDeadline(time.Now().Add(failAfter))
	got, err := io.ReadAll(io.LimitReader(bigCli, int64(len(payload))))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read %d of %d bytes, err %v", len(got), len(payload), err)
	}
	wait(t, bigDone, "the writer's return")
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

func TestWriteDeadline(t *testing.T) {
	srv, _ := pair(t)
	srv.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 1<<20)
	var err error
	for range 256 { // far more than any socket buffer
		if _, err = srv.Write(buf); err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %v, want os.ErrDeadlineExceeded", err)
	}
}

// Outside a relay a Conn is an ordinary blocking net.Conn.
func TestConnOutsideARelay(t *testing.T) {
	srv, cli := pair(t)
	go io.WriteString(cli, "hello")
	srv.SetReadDeadline(time.Now().Add(failAfter))
	got := make([]byte, 5)
	if _, err := io.ReadFull(srv, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := srv.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want os.ErrDeadlineExceeded", err)
	}
	if err := srv.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	cli.SetReadDeadline(time.Now().Add(failAfter))
	if _, err := cli.Read(got); err != io.EOF {
		t.Fatalf("peer read after CloseWrite = %v, want EOF", err)
	}
	if srv.RemoteAddr().String() != cli.LocalAddr().String() {
		t.Fatalf("RemoteAddr = %v, want %v", srv.RemoteAddr(), cli.LocalAddr())
	}
}

// A closed loop refuses new relays and stops once the running ones return.
func TestCloseWaitsForRelays(t *testing.T) {
	l, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := pair(t)
	errs := make(chan error, 1)
	sh := l.Shard()
	done, err := sh.Go(srv, echo(srv, errs))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	r := bufio.NewReader(cli)
	roundTrip(t, cli, r, "still served after Close")
	other, _ := pair(t)
	if _, err := l.Shard().Go(other, func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close = %v, want ErrClosed", err)
	}
	cli.Close()
	wait(t, done, "the relay's return")
	for _, sh := range l.shards {
		deadline := time.Now().Add(failAfter)
		for {
			sh.mu.Lock()
			stopped := sh.epfd < 0
			sh.mu.Unlock()
			if stopped {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a shard kept running after its last relay returned")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestDetachRefusesWhatIsNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Detach(a); err == nil {
		t.Fatal("Detach of a net.Pipe succeeded")
	}
}

// The runners may keep their P while they wait only while that leaves Ps
// for the rest of the program, whatever GOMAXPROCS became after the loop
// was made: with one P, none may (a runner holding it would make every
// other goroutine wait for its preemption, about 10 ms per round trip).
func TestHoldLimitFollowsGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	l := newLoop(t, 1)
	if got := l.holdLimit.Load(); got != 2 {
		t.Fatalf("hold limit with 4 Ps = %d, want 2", got)
	}
	srv, cli := pair(t)
	errs := make(chan error, 1)
	done, err := l.Shard().Go(srv, echo(srv, errs)) // the watchdog runs while a relay does
	if err != nil {
		t.Fatal(err)
	}
	runtime.GOMAXPROCS(1)
	deadline := time.Now().Add(failAfter)
	for l.holdLimit.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(watchInterval)
	}
	if got := l.holdLimit.Load(); got != 0 {
		t.Errorf("hold limit after GOMAXPROCS(1) = %d, want 0", got)
	}
	if l.holdP() {
		heldPs.Add(-1)
		t.Error("a runner may hold the only P")
	}
	cli.Close()
	<-done
	<-errs
}
