//go:build linux

package evloop

// Red-team tests of the event loop: hostile interleavings of relays,
// deadlines, Close, slot reuse, hand-overs and the loop's own shutdown.
// Nothing here measures time: deadlines only bound waits that a bug makes
// endless. Several tests reproduced defects found while writing these;
// all are fixed, and the tests stay as regression tests (their comments
// say what the defect was).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rtFail bounds a wait that only a bug makes long.
const rtFail = 20 * time.Second

// rtPair is pair without a cleanup: the caller closes both ends (the fd
// leak tests need them closed before they count descriptors). It may be
// called from any goroutine.
func rtPair() (*Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server := <-accepted
	if server == nil {
		client.Close()
		return nil, nil, errors.New("accept failed")
	}
	d, err := Detach(server)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return d, client, nil
}

func rtMustPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	srv, cli, err := rtPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return srv, cli
}

// rtWait fails the test when ch is not closed within rtFail.
func rtWait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(rtFail):
		t.Fatalf("%s did not happen", what)
	}
}

// rtEventually polls cond until it holds, failing after rtFail.
func rtEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rtFail)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// rtOpenFDs counts this process's open descriptors.
func rtOpenFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// rtWaitFDs waits for the descriptor count to come back to at most want
// (descriptors close asynchronously: a relay's on its return, a shard's
// when its last runner leaves).
func rtWaitFDs(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(rtFail)
	for {
		n := rtOpenFDs(t)
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d descriptors open, want at most %d (a leak)", what, n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rtShardStopped reports whether sh closed its epoll descriptor (its last
// runner returned).
func rtShardStopped(sh *Shard) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epfd < 0
}

func rtShardRunners(sh *Shard) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.runners
}

// rtWaitStopped waits until every shard of l stopped.
func rtWaitStopped(t *testing.T, l *Loop, what string) {
	t.Helper()
	for i, sh := range l.shards {
		rtEventually(t, fmt.Sprintf("%s: shard %d stopping", what, i), func() bool { return rtShardStopped(sh) })
	}
}

// rtEpollTargets lists the descriptors registered in sh's epoll set, from
// /proc/self/fdinfo.
func rtEpollTargets(t *testing.T, sh *Shard) map[int]bool {
	t.Helper()
	sh.mu.Lock()
	epfd := sh.epfd
	sh.mu.Unlock()
	if epfd < 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "tfd:" {
			n, err := strconv.Atoi(f[1])
			if err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// rtEchoRelay echoes whatever it reads until an error, which it reports.
// hook, when not nil, runs after every chunk read (before the echo).
func rtEchoRelay(c *Conn, bufSize int, res chan<- error, hook func(chunk int)) func() {
	return func() {
		b := make([]byte, bufSize)
		for i := 0; ; i++ {
			n, err := c.Read(b)
			if n > 0 {
				if hook != nil {
					hook(i)
				}
				if _, werr := c.Write(b[:n]); werr != nil {
					res <- werr
					return
				}
			}
			if err != nil {
				res <- err
				return
			}
		}
	}
}

// rtStream writes size random bytes to cli in random chunks (from its own
// goroutine) and reads the echo back, comparing. It returns the first
// mismatch or error. The writer half-closes when done when halfClose is set.
func rtStream(cli net.Conn, seed uint64, size int, halfClose bool) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	cli.SetDeadline(time.Now().Add(rtFail))
	werr := make(chan error, 1)
	go func() {
		wrng := rand.New(rand.NewPCG(seed+1, seed))
		off := 0
		for off < len(data) {
			n := min(1+wrng.IntN(64<<10), len(data)-off)
			if wrng.IntN(8) == 0 {
				n = min(1+wrng.IntN(7), len(data)-off) // tiny writes too
			}
			if _, err := cli.Write(data[off : off+n]); err != nil {
				werr <- err
				return
			}
			off += n
			if wrng.IntN(16) == 0 {
				time.Sleep(time.Duration(wrng.IntN(500)) * time.Microsecond)
			}
		}
		if halfClose {
			werr <- cli.(*net.TCPConn).CloseWrite()
			return
		}
		werr <- nil
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(cli, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for i < size && got[i] == data[i] {
			i++
		}
		return fmt.Errorf("echo differs from byte %d of %d", i, size)
	}
	return nil
}

// Many relays over one or two shards, random chunk sizes and pauses, relays
// that announce a wait and relays that do not, deadline churn from other
// goroutines, and sessions ended by the peer's EOF or by Close from another
// goroutine: every byte must come back in order, and every relay must end
// with the error its ending implies.
func TestRedteamRandomInterleavings(t *testing.T) {
	for _, shards := range []int{1, 2} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			l := newLoop(t, shards)
			const sessions = 24
			var wg sync.WaitGroup
			for i := range sessions {
				srv, cli := rtMustPair(t)
				res := make(chan error, 1)
				mode := i % 4
				hook := func(chunk int) {
					switch {
					case mode == 1 && chunk%7 == 3:
						srv.Blocking() // announced wait
						time.Sleep(200 * time.Microsecond)
					case mode == 2 && chunk%11 == 5:
						runtime.Gosched() // held briefly without a word
					}
				}
				done, err := l.Shard().Go(srv, rtEchoRelay(srv, 1+i*977%8192, res, hook))
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Deadline churn that must not disturb a relay: far
					// deadlines set and cleared while it works.
					stopChurn := make(chan struct{})
					churned := make(chan struct{})
					go func() {
						defer close(churned)
						for k := 0; ; k++ {
							select {
							case <-stopChurn:
								return
							default:
							}
							if k%2 == 0 {
								srv.SetReadDeadline(time.Now().Add(time.Hour))
							} else {
								srv.SetReadDeadline(time.Time{})
							}
							time.Sleep(100 * time.Microsecond)
						}
					}()
					byEOF := i%2 == 0
					err := rtStream(cli, uint64(i)+1, 64<<10+i*4099, byEOF)
					close(stopChurn)
					<-churned
					srv.SetReadDeadline(time.Time{})
					if err != nil {
						t.Errorf("session %d: %v", i, err)
						srv.Close()
						return
					}
					if !byEOF {
						// The relay waits for more: close it from here.
						if err := srv.Close(); err != nil {
							t.Errorf("session %d: Close = %v", i, err)
						}
					}
					select {
					case <-done:
					case <-time.After(rtFail):
						t.Errorf("session %d: the relay did not return", i)
						return
					}
					rerr := <-res
					switch {
					case byEOF && rerr != io.EOF:
						t.Errorf("session %d: relay ended with %v, want EOF", i, rerr)
					case !byEOF && !errors.Is(rerr, net.ErrClosed):
						t.Errorf("session %d: relay ended with %v, want net.ErrClosed", i, rerr)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// A read deadline set and moved by another goroutine over and over, often
// already past, wakes the relay with os.ErrDeadlineExceeded; the relay
// clears it and reads on. No byte may be lost or duplicated by those
// wake-ups.
func TestRedteamDeadlineChurnLosesNoData(t *testing.T) {
	l := newLoop(t, 1)
	const sessions = 6
	var wg sync.WaitGroup
	for i := range sessions {
		srv, cli := rtMustPair(t)
		res := make(chan error, 1)
		var timeouts atomic.Int64
		done, err := l.Shard().Go(srv, func() {
			b := make([]byte, 3000)
			for {
				n, err := srv.Read(b)
				if n > 0 {
					if _, werr := srv.Write(b[:n]); werr != nil {
						res <- werr
						return
					}
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if n != 0 {
						res <- fmt.Errorf("a read returned %d bytes with a deadline error", n)
						return
					}
					timeouts.Add(1)
					srv.SetReadDeadline(time.Now().Add(time.Hour))
					continue
				}
				if err != nil {
					res <- err
					return
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := make(chan struct{})
			churned := make(chan struct{})
			go func() {
				defer close(churned)
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				for {
					select {
					case <-stop:
						return
					default:
					}
					srv.SetReadDeadline(time.Now().Add(time.Duration(rng.IntN(1500)-500) * time.Microsecond))
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				}
			}()
			err := rtStream(cli, uint64(100+i), 200<<10, true)
			close(stop)
			<-churned
			srv.SetReadDeadline(time.Time{})
			if err != nil {
				t.Errorf("session %d: %v", i, err)
				srv.Close()
				return
			}
			select {
			case <-done:
			case <-time.After(rtFail):
				t.Errorf("session %d: the relay did not return", i)
				return
			}
			if rerr := <-res; rerr != io.EOF {
				t.Errorf("session %d: relay ended with %v, want EOF", i, rerr)
			}
			t.Logf("session %d: %d deadline wake-ups survived", i, timeouts.Load())
		}()
	}
	wg.Wait()
}

// Close from another goroutine racing with the relay's return, hundreds of
// times: the relay always returns, the first Close succeeds and the second
// fails, the peer sees the socket closed, and no descriptor is left open.
func TestRedteamCloseRacesRelayReturn(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	// Warm up so that the loop's own descriptors and goroutines exist.
	{
		srv, cli := rtMustPair(t)
		done, err := sh.Go(srv, func() {})
		if err != nil {
			t.Fatal(err)
		}
		rtWait(t, done, "the warm-up relay's return")
		srv.Close()
		cli.Close()
	}
	base := rtOpenFDs(t)
	for i := range 300 {
		srv, cli, err := rtPair()
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		done, err := sh.Go(srv, func() {
			var b [1]byte
			_, err := srv.Read(b[:])
			got <- err
		})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() {
			for range i % 5 {
				runtime.Gosched()
			}
			closed <- srv.Close()
		}()
		if i%2 == 0 {
			cli.Write([]byte{1})
		}
		rtWait(t, done, fmt.Sprintf("iteration %d: the relay's return", i))
		if err := <-closed; err != nil {
			t.Fatalf("iteration %d: first Close = %v", i, err)
		}
		// A read already past its closed check when Close shuts the socket
		// down reads EOF (Close shuts down to wake poll(2) waiters); a
		// waiting one gets net.ErrClosed.
		if err := <-got; err != nil && !errors.Is(err, net.ErrClosed) && err != io.EOF {
			t.Fatalf("iteration %d: relay read %v, want nil, net.ErrClosed or EOF", i, err)
		}
		if srv.Close() == nil {
			t.Fatalf("iteration %d: second Close succeeded", i)
		}
		cli.SetReadDeadline(time.Now().Add(rtFail))
		var b [16]byte
		if _, err := cli.Read(b[:]); err == nil {
			t.Fatalf("iteration %d: the peer read data from a closed socket", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("iteration %d: the socket was never closed (peer read timed out)", i)
		}
		cli.Close()
	}
	rtWaitFDs(t, base, "after 300 Close/return races")
}

// A relay that returns frees its slot for the next one. The old socket
// keeps firing (its peer keeps writing and then resets it), its deadline
// timer fires late and it is closed while the new relay runs: none of that
// may reach the relay that took the slot as data, an error or an ending.
func TestRedteamSlotReuseNoCrossTalk(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	reused := 0
	for i := range 100 {
		oldSrv, oldCli := rtMustPair(t)
		oldID := make(chan int32, 1)
		oldDone, err := sh.Go(oldSrv, func() {
			oldID <- oldSrv.task.Load().id
			var b [4]byte
			io.ReadFull(oldSrv, b[:])
			if i%3 == 0 {
				oldSrv.Blocking() // end on an orphaned runner now and then
			}
			oldSrv.SetReadDeadline(time.Now().Add(time.Millisecond)) // its timer fires after the return
		})
		if err != nil {
			t.Fatal(err)
		}
		// The old peer floods: its socket stays readable after its relay
		// is gone (level-triggered events keep coming until it is closed).
		flood := make(chan struct{})
		go func() {
			defer close(flood)
			oldCli.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			chunk := bytes.Repeat([]byte{'o'}, 1024)
			for k := 0; k < 64; k++ {
				if _, err := oldCli.Write(chunk); err != nil {
					return
				}
			}
		}()
		rtWait(t, oldDone, "the old relay's return")
		id := <-oldID

		newSrv, newCli := rtMustPair(t)
		newID := make(chan int32, 1)
		got := make(chan string, 1)
		newDone, err := sh.Go(newSrv, func() {
			newID <- newSrv.task.Load().id
			r := bufio.NewReader(newSrv)
			line, err := r.ReadString('\n')
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			// Reads on after the old socket's late events.
			line2, err := r.ReadString('\n')
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- line + line2
		})
		if err != nil {
			t.Fatal(err)
		}
		if <-newID == id {
			reused++
		}
		newCli.Write([]byte("new-" + strconv.Itoa(i) + "\n"))
		<-flood
		oldSrv.Close()
		// Reset the old connection: RST, EPOLLERR/HUP on a closed slot.
		oldCli.(*net.TCPConn).SetLinger(0)
		oldCli.Close()
		time.Sleep(2 * time.Millisecond) // let the late timer fire; correctness does not depend on it
		newCli.Write([]byte("second\n"))
		rtWait(t, newDone, "the new relay's return")
		want := "new-" + strconv.Itoa(i) + "\nsecond\n"
		if g := <-got; g != want {
			t.Fatalf("iteration %d: the relay in the reused slot read %q, want %q", i, g, want)
		}
	}
	if reused == 0 {
		t.Fatal("no slot was ever reused: the test did not test reuse")
	}
}

// A relay that blocks (here without a word: the watchdog hands over) while
// its peer keeps sending leaves a socket that is readable all the time.
// Level-triggered epoll reports it on every wait; the loop must take it out
// of the set rather than spin on it, go on serving the other relay, and
// give the blocked relay all its bytes once it reads again.
func TestRedteamEventStormWhileRelayBlocked(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	stormSrv, stormCli := rtMustPair(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	total := make(chan int, 1)
	stormDone, err := sh.Go(stormSrv, func() {
		var b [1]byte
		if _, err := stormSrv.Read(b[:]); err != nil {
			total <- -1
			return
		}
		close(entered)
		<-release // blocked, unannounced: the watchdog hands the loop over
		n, _ := io.Copy(io.Discard, stormSrv)
		total <- int(n) + 1
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := rtMustPair(t)
	errs := make(chan error, 1)
	if _, err := sh.Go(srv, rtEchoRelay(srv, 4096, errs, nil)); err != nil {
		t.Fatal(err)
	}
	stormCli.Write([]byte{'!'})
	rtWait(t, entered, "the storm relay's first read")
	// The peer keeps the blocked relay's socket readable.
	const flood = 4 << 20
	flooded := make(chan error, 1)
	go func() {
		stormCli.SetWriteDeadline(time.Now().Add(rtFail))
		_, err := stormCli.Write(bytes.Repeat([]byte{'s'}, flood))
		if err == nil {
			err = stormCli.(*net.TCPConn).CloseWrite()
		}
		flooded <- err
	}()
	r := bufio.NewReader(cli)
	for i := range 50 {
		roundTrip(t, cli, r, fmt.Sprintf("served during the storm %d", i))
	}
	// The readable socket of the blocked relay must leave the epoll set
	// (the guard against a runner spinning on it).
	fd := stormSrv.fd
	rtEventually(t, "the blocked relay's socket taken out of epoll", func() bool {
		return !rtEpollTargets(t, sh)[fd]
	})
	for i := range 20 {
		roundTrip(t, cli, r, fmt.Sprintf("still served %d", i))
	}
	close(release)
	rtWait(t, stormDone, "the storm relay's return")
	if err := <-flooded; err != nil {
		t.Fatalf("flooding: %v", err)
	}
	if n := <-total; n != flood+1 {
		t.Fatalf("the blocked relay read %d bytes, want %d", n, flood+1)
	}
	roundTrip(t, cli, r, "after the storm")
}

// Loop.Close while relays are blocked in every way a relay can be: waiting
// for its socket, blocked after announcing it, blocked without a word,
// blocked writing to a full socket. New relays are refused, the running
// ones are served to their end, and then every shard stops and every
// descriptor is closed.
func TestRedteamLoopCloseWhileRelaysBlocked(t *testing.T) {
	// Warm-up connection machinery (listener, DNS-free dial) before the
	// descriptor count.
	if s, c, err := rtPair(); err == nil {
		s.Close()
		c.Close()
	}
	base := rtOpenFDs(t)
	l, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	var conns []io.Closer
	pairOf := func() (*Conn, net.Conn) {
		s, c, err := rtPair()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, s, c)
		return s, c
	}
	release := make(chan struct{})
	var entered sync.WaitGroup
	var dones []<-chan struct{}
	start := func(c *Conn, fn func()) {
		d, err := l.Shard().Go(c, fn)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, d)
	}
	// Blocked after Blocking.
	for range 2 {
		s, cl := pairOf()
		entered.Add(1)
		start(s, func() {
			var b [1]byte
			s.Read(b[:])
			entered.Done()
			s.Blocking()
			<-release
			s.Write(b[:])
		})
		cl.Write([]byte{'a'})
	}
	// Blocked without a word.
	for range 2 {
		s, cl := pairOf()
		entered.Add(1)
		start(s, func() {
			var b [1]byte
			s.Read(b[:])
			entered.Done()
			<-release
			s.Write(b[:])
		})
		cl.Write([]byte{'b'})
	}
	// Blocked writing to a peer that does not read.
	big := bytes.Repeat([]byte{'w'}, 16<<20)
	wrote := make(chan error, 1)
	bigSrv, bigCli := pairOf()
	entered.Add(1)
	start(bigSrv, func() {
		var b [1]byte
		bigSrv.Read(b[:])
		entered.Done()
		_, err := bigSrv.Write(big)
		wrote <- err
	})
	bigCli.Write([]byte{'g'})
	// Waiting for its socket.
	echoSrv, echoCli := pairOf()
	echoErrs := make(chan error, 1)
	start(echoSrv, rtEchoRelay(echoSrv, 512, echoErrs, nil))

	entered.Wait()
	l.Close()
	if _, err := l.Shard().Go(echoSrv, func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close = %v, want ErrClosed", err)
	}
	er := bufio.NewReader(echoCli)
	for i := range 10 {
		roundTrip(t, echoCli, er, fmt.Sprintf("served after Loop.Close %d", i))
	}
	close(release)
	bigCli.SetReadDeadline(time.Now().Add(rtFail))
	if n, err := io.Copy(io.Discard, io.LimitReader(bigCli, int64(len(big)))); err != nil || n != int64(len(big)) {
		t.Fatalf("draining the big write: %d, %v", n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the big write: %v", err)
	}
	echoCli.(*net.TCPConn).CloseWrite()
	for i, d := range dones {
		rtWait(t, d, fmt.Sprintf("relay %d's return", i))
	}
	rtWaitStopped(t, l, "after the last relay returned")
	for _, sh := range l.shards {
		if n := rtShardRunners(sh); n != 0 {
			t.Fatalf("a stopped shard counts %d runners", n)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	rtWaitFDs(t, base, "after Loop.Close and every relay's end")
}

// Detach and Close in every order, with and without a relay, and loops
// started and stopped: no descriptor may stay open.
func TestRedteamNoDescriptorLeaks(t *testing.T) {
	if s, c, err := rtPair(); err == nil {
		s.Close()
		c.Close()
	}
	base := rtOpenFDs(t)
	l, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		srv, cli, err := rtPair()
		if err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 0: // never on the loop
			srv.Close()
		case 1: // closed before its relay reads
			done, err := l.Shard().Go(srv, func() {
				var b [1]byte
				srv.Read(b[:])
			})
			if err != nil {
				t.Fatal(err)
			}
			srv.Close()
			rtWait(t, done, "the relay's return")
		case 2: // the relay returns first, then Close
			done, err := l.Shard().Go(srv, func() {})
			if err != nil {
				t.Fatal(err)
			}
			rtWait(t, done, "the relay's return")
			srv.Close()
		case 3: // the peer leaves, the relay sees EOF, then Close
			done, err := l.Shard().Go(srv, func() { io.Copy(io.Discard, srv) })
			if err != nil {
				t.Fatal(err)
			}
			cli.Write([]byte("bye"))
			cli.Close()
			rtWait(t, done, "the relay's return")
			srv.Close()
		case 4: // CloseWrite and Close from inside the relay
			done, err := l.Shard().Go(srv, func() {
				srv.CloseWrite()
				srv.Close()
			})
			if err != nil {
				t.Fatal(err)
			}
			rtWait(t, done, "the relay's return")
		}
		cli.Close()
	}
	l.Close()
	rtWaitStopped(t, l, "the loop after Close")
	for range 20 {
		l2, err := New(2)
		if err != nil {
			t.Fatal(err)
		}
		l2.Close()
		rtWaitStopped(t, l2, "an unused loop after Close")
	}
	rtWaitFDs(t, base, "after 200 Detach/Close cycles and 20 loops")
}

// Two goroutines write to one Conn at once, one of them the relay, with
// writes large enough to fill the socket: every Write is all or nothing
// and writes never interleave.
func TestRedteamConcurrentWriters(t *testing.T) {
	l := newLoop(t, 1)
	srv, cli := rtMustPair(t)
	const perWriter = 60
	frame := func(writer byte, seq int) []byte {
		size := 1 + (seq*7919+int(writer)*104729)%(96<<10)
		b := make([]byte, 9+size)
		b[0] = writer
		binary.BigEndian.PutUint32(b[1:], uint32(seq))
		binary.BigEndian.PutUint32(b[5:], uint32(size))
		for i := range size {
			b[9+i] = writer + byte(seq)
		}
		return b
	}
	writeAll := func(writer byte) error {
		for seq := range perWriter {
			f := frame(writer, seq)
			n, err := srv.Write(f)
			if err != nil {
				return err
			}
			if n != len(f) {
				return fmt.Errorf("short write %d of %d", n, len(f))
			}
		}
		return nil
	}
	relayErr := make(chan error, 1)
	done, err := l.Shard().Go(srv, func() {
		var b [1]byte
		if _, err := srv.Read(b[:]); err != nil {
			relayErr <- err
			return
		}
		relayErr <- writeAll('R')
	})
	if err != nil {
		t.Fatal(err)
	}
	outsideErr := make(chan error, 1)
	go func() { outsideErr <- writeAll('G') }()
	cli.Write([]byte{'!'})
	cli.SetReadDeadline(time.Now().Add(rtFail))
	br := bufio.NewReader(cli)
	next := map[byte]int{'R': 0, 'G': 0}
	for next['R'] < perWriter || next['G'] < perWriter {
		var h [9]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("reading a frame header: %v (frames so far %v)", err, next)
		}
		w := h[0]
		seq := int(binary.BigEndian.Uint32(h[1:]))
		size := int(binary.BigEndian.Uint32(h[5:]))
		want, ok := next[w]
		if !ok || seq != want || size > 96<<10 {
			t.Fatalf("garbled frame header: writer %q seq %d size %d (want seq %d): writes interleaved", w, seq, size, want)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, bytes.Repeat([]byte{w + byte(seq)}, size)) {
			t.Fatalf("frame %q/%d: body garbled: writes interleaved", w, seq)
		}
		next[w]++
	}
	rtWait(t, done, "the relay's return")
	if err := <-relayErr; err != nil {
		t.Fatalf("the relay's writes: %v", err)
	}
	if err := <-outsideErr; err != nil {
		t.Fatalf("the other goroutine's writes: %v", err)
	}
}

// A zero-byte Read neither blocks nor consumes, in a relay or outside one.
func TestRedteamZeroByteRead(t *testing.T) {
	l := newLoop(t, 1)
	srv, cli := rtMustPair(t)
	step := make(chan struct{})
	res := make(chan string, 4)
	done, err := l.Shard().Go(srv, func() {
		// Nothing to read yet: must return at once, not wait.
		if n, err := srv.Read(nil); n != 0 || err != nil {
			res <- fmt.Sprintf("Read(nil) with nothing to read = %d, %v", n, err)
			return
		}
		res <- "ok"
		<-step // bytes are on the socket now
		if n, err := srv.Read([]byte{}); n != 0 || err != nil {
			res <- fmt.Sprintf("Read([]byte{}) with data = %d, %v", n, err)
			return
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(srv, b); err != nil || string(b) != "hello" {
			res <- fmt.Sprintf("after zero-byte reads: %q, %v", b, err)
			return
		}
		res <- "ok"
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r != "ok" {
			t.Fatal(r)
		}
	case <-time.After(rtFail):
		t.Fatal("a zero-byte Read in a relay blocked")
	}
	cli.Write([]byte("hello"))
	time.Sleep(5 * time.Millisecond) // the bytes arrive; correctness does not depend on it
	close(step)
	rtWait(t, done, "the relay's return")
	if r := <-res; r != "ok" {
		t.Fatal(r)
	}
	// Outside a relay.
	if n, err := srv.Read(nil); n != 0 || err != nil {
		t.Fatalf("outside a relay: Read(nil) = %d, %v", n, err)
	}
	cli.Write([]byte("x"))
	srv.SetReadDeadline(time.Now().Add(rtFail))
	b := make([]byte, 1)
	if n, err := srv.Read(b); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("outside a relay after Read(nil): %d, %q, %v", n, b, err)
	}
}

// After EOF a relay reads EOF again, however often it asks and whether its
// last read was short or not, and may still write (half-close).
func TestRedteamEOFThenReadAgain(t *testing.T) {
	l := newLoop(t, 1)
	for _, bufSize := range []int{1, 3, 4096} {
		srv, cli := rtMustPair(t)
		res := make(chan string, 1)
		done, err := l.Shard().Go(srv, func() {
			var got []byte
			b := make([]byte, bufSize)
			for {
				n, err := srv.Read(b)
				got = append(got, b[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					res <- "read: " + err.Error()
					return
				}
			}
			for k := range 5 {
				if n, err := srv.Read(b); n != 0 || err != io.EOF {
					res <- fmt.Sprintf("read %d after EOF = %d, %v; want 0, EOF", k, n, err)
					return
				}
			}
			if _, err := srv.Write(append([]byte("got "), got...)); err != nil {
				res <- "write after EOF: " + err.Error()
				return
			}
			res <- "ok"
		})
		if err != nil {
			t.Fatal(err)
		}
		cli.Write([]byte("abc"))
		cli.(*net.TCPConn).CloseWrite()
		rtWait(t, done, "the relay's return")
		if r := <-res; r != "ok" {
			t.Fatalf("buffer %d: %s", bufSize, r)
		}
		srv.Close()
		cli.SetReadDeadline(time.Now().Add(rtFail))
		got, err := io.ReadAll(cli)
		if err != nil || string(got) != "got abc" {
			t.Fatalf("buffer %d: peer read %q, %v", bufSize, got, err)
		}
	}
}

// Close from another goroutine ends a relay stuck writing to a full socket.
func TestRedteamCloseEndsABlockedWrite(t *testing.T) {
	l := newLoop(t, 1)
	srv, cli := rtMustPair(t)
	_ = cli // never reads
	started := make(chan struct{})
	wrote := make(chan error, 1)
	done, err := l.Shard().Go(srv, func() {
		close(started)
		_, err := srv.Write(bytes.Repeat([]byte{'z'}, 64<<20))
		wrote <- err
	})
	if err != nil {
		t.Fatal(err)
	}
	rtWait(t, started, "the relay's start")
	time.Sleep(20 * time.Millisecond) // let it fill the socket; correctness does not depend on it
	srv.Close()
	rtWait(t, done, "the relay's return")
	if err := <-wrote; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write = %v, want net.ErrClosed", err)
	}
}

// CloseWrite from another goroutine while the relay waits to read: the peer
// sees EOF and the relay goes on reading what the peer sends.
func TestRedteamCloseWriteWhileRelayWaits(t *testing.T) {
	l := newLoop(t, 1)
	srv, cli := rtMustPair(t)
	got := make(chan string, 1)
	done, err := l.Shard().Go(srv, func() {
		b, err := io.ReadAll(srv)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	cli.SetReadDeadline(time.Now().Add(rtFail))
	if n, err := cli.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after CloseWrite = %d, %v; want EOF", n, err)
	}
	cli.Write([]byte("still reading"))
	cli.(*net.TCPConn).CloseWrite()
	rtWait(t, done, "the relay's return")
	if g := <-got; g != "still reading" {
		t.Fatalf("relay read %q", g)
	}
}

// A session as the proxy runs it, on one shard: a front relay forwards a
// client to an "upstream" through the loop, a back relay forwards the
// answers, and the front relay may have only a few requests in flight, so
// it waits (announcing it) for the back relay, which runs on the same
// shard. Many sessions, random sizes: everything must arrive, in order.
func TestRedteamFrontWaitsForBackOnSameShard(t *testing.T) {
	for _, announce := range []bool{true, false} {
		t.Run(fmt.Sprintf("announce=%v", announce), func(t *testing.T) {
			l := newLoop(t, 1)
			const sessions = 8
			var wg sync.WaitGroup
			for i := range sessions {
				client, clientPeer := rtMustPair(t) // clientPeer plays the client
				up, upPeer := rtMustPair(t)         // upPeer plays the server: it echoes
				go func() {
					io.Copy(upPeer, upPeer)
					upPeer.(*net.TCPConn).CloseWrite()
				}()
				gate := &rtGate{max: 3000} // the pipeline limit, in bytes in flight
				gate.cond.L = &gate.mu
				sh := l.Shard()
				frontErr := make(chan error, 1)
				front, err := sh.Go(client, func() {
					b := make([]byte, 1500)
					for {
						n, err := client.Read(b)
						if n > 0 {
							gate.acquire(n, func() {
								if announce {
									client.Blocking()
								}
							})
							if _, werr := up.Write(b[:n]); werr != nil {
								frontErr <- werr
								return
							}
						}
						if err != nil {
							up.CloseWrite()
							frontErr <- err
							return
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				backErr := make(chan error, 1)
				back, err := sh.Go(up, func() {
					b := make([]byte, 700)
					for {
						n, err := up.Read(b)
						if n > 0 {
							gate.release(n)
							if _, werr := client.Write(b[:n]); werr != nil {
								backErr <- werr
								return
							}
						}
						if err != nil {
							backErr <- err
							return
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := rtStream(clientPeer, uint64(1000+i), 300<<10+i*7777, true); err != nil {
						t.Errorf("session %d: %v", i, err)
						client.Close()
						up.Close()
						return
					}
					select {
					case <-front:
					case <-time.After(rtFail):
						t.Errorf("session %d: the front relay did not return", i)
						return
					}
					select {
					case <-back:
					case <-time.After(rtFail):
						t.Errorf("session %d: the back relay did not return", i)
						return
					}
					if err := <-frontErr; err != io.EOF {
						t.Errorf("session %d: front relay ended with %v", i, err)
					}
					if err := <-backErr; err != io.EOF {
						t.Errorf("session %d: back relay ended with %v", i, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// rtGate bounds the bytes a front relay has in flight, as the proxy's
// pipeline bounds requests: the front relay waits on a condition variable
// that the back relay signals.
type rtGate struct {
	mu       sync.Mutex
	cond     sync.Cond
	inflight int
	max      int
}

// acquire waits until fewer than max bytes are in flight, calling before
// once when it has to wait, then adds n.
func (g *rtGate) acquire(n int, before func()) {
	g.mu.Lock()
	if g.inflight >= g.max {
		g.mu.Unlock()
		before()
		g.mu.Lock()
	}
	for g.inflight >= g.max {
		g.cond.Wait()
	}
	g.inflight += n
	g.mu.Unlock()
}

func (g *rtGate) release(n int) {
	g.mu.Lock()
	g.inflight -= n
	g.cond.Broadcast()
	g.mu.Unlock()
}

// ---- Bugs found by this red team, fixed since: regression tests ----

// A relay that calls runtime.Goexit (t.FailNow in a plugin under test, or
// any code that ends its goroutine that way) must end like a goroutine
// relay would: that relay only. iter.Pull propagates the Goexit to the
// runner that resumed the relay; before the loop handled it, the runner
// died, its runnerDone brought the shard's runner count to zero and closed
// the shard's epoll descriptor with other relays registered, so every other
// relay of the shard waited for ever and the relay's done channel was never
// closed.
func TestRedteamGoexitInRelayEndsOnlyThatRelay(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	srv, cli := rtMustPair(t)
	errs := make(chan error, 1)
	if _, err := sh.Go(srv, rtEchoRelay(srv, 512, errs, nil)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(cli)
	roundTrip(t, cli, r, "before")
	exitSrv, exitCli := rtMustPair(t)
	exitDone, err := sh.Go(exitSrv, func() {
		var b [1]byte
		exitSrv.Read(b[:])
		runtime.Goexit()
	})
	if err != nil {
		t.Fatal(err)
	}
	exitCli.Write([]byte{1})
	// The other relay of the shard must still be served.
	cli.SetDeadline(time.Now().Add(rtFail))
	io.WriteString(cli, "after a Goexit\n")
	got, err := r.ReadString('\n')
	if err != nil || got != "after a Goexit\n" {
		t.Errorf("the shard's other relay after a relay's Goexit: %q, %v (shard stopped: %v, runners %d)",
			got, err, rtShardStopped(sh), rtShardRunners(sh))
	}
	select {
	case <-exitDone:
	case <-time.After(rtFail):
		t.Fatal("the done channel of a relay that called runtime.Goexit is never closed")
	}
	// The shard still takes and serves new relays, and stops when closed.
	srv2, cli2 := rtMustPair(t)
	if _, err := sh.Go(srv2, rtEchoRelay(srv2, 512, make(chan error, 1), nil)); err != nil {
		t.Fatalf("Go after a Goexit: %v", err)
	}
	roundTrip(t, cli2, bufio.NewReader(cli2), "a new relay after a Goexit")
	l.Close()
	srv.Close()
	srv2.Close()
	rtWaitStopped(t, l, "after a Goexit and Loop.Close")
}

// Blocking called over and over from goroutines that are not relays (the
// doc allows it: "the caller, which may be a relay"), while relays come and
// go and read deadlines pass. Each call may hand over a runner that is
// leaving its relay at that very moment. Before handoff counted the new
// runner ahead of orphaning the old one, the old runner could run
// runnerDone in between: the count fell to zero, the shard's epoll and
// event descriptors were closed with relays registered, every session on
// the shard hung and Go failed with EBADF (under -race within seconds; it
// also happened once in TestRedteamDeadlineChurnLosesNoData with no
// outside Blocking at all). The shard must stay alive and serving, and once
// the storm is over and every relay waits, one runner must be left.
func TestRedteamBlockingFromOtherGoroutines(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var srvs []*Conn
	var served atomic.Int64
	for k := range 16 {
		srv, cli := rtMustPair(t)
		srvs = append(srvs, srv)
		if _, err := sh.Go(srv, rtEchoRelay(srv, 64, make(chan error, 1), nil)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(cli)
			for j := 0; !stop.Load(); j++ {
				cli.SetDeadline(time.Now().Add(rtFail))
				line := fmt.Sprintf("%d/%d\n", k, j)
				io.WriteString(cli, line)
				got, err := r.ReadString('\n')
				if err != nil {
					if !stop.Load() {
						t.Errorf("relay %d stopped being served: %v (shard stopped: %v)", k, err, rtShardStopped(sh))
					}
					return
				}
				if got != line {
					t.Errorf("relay %d echoed %q, want %q", k, got, line)
					return
				}
				served.Add(1)
			}
		}()
	}
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				srvs[k].Blocking()
			}
		}()
	}
	// Relays coming and going (sessions starting and ending) and read
	// deadlines passing contend for the shard's lock, as the runner does
	// for every event.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				srv, cli, err := rtPair()
				if err != nil {
					return
				}
				d, err := sh.Go(srv, func() {})
				if err != nil {
					t.Errorf("Go during the storm: %v (shard stopped: %v)", err, rtShardStopped(sh))
				} else {
					select {
					case <-d:
					case <-time.After(rtFail):
						t.Error("a new relay never ran")
					}
				}
				srv.Close()
				cli.Close()
			}
		}()
	}
	for range 4 {
		srv, _ := rtMustPair(t)
		if _, err := sh.Go(srv, func() {
			var b [1]byte
			for {
				_, err := srv.Read(b[:])
				if errors.Is(err, os.ErrDeadlineExceeded) {
					srv.SetReadDeadline(time.Time{}) // and wait again
					continue
				}
				if err != nil {
					return
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				srv.SetReadDeadline(time.Now())
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) && !rtShardStopped(sh) && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	rtWait(t, waited, "the storm's end")
	if rtShardStopped(sh) {
		t.Fatalf("the shard stopped (epoll closed, %d runners) with relays registered", rtShardRunners(sh))
	}
	if served.Load() == 0 {
		t.Fatal("no echo was served during the storm")
	}
	srv, cli := rtMustPair(t)
	if _, err := sh.Go(srv, rtEchoRelay(srv, 64, make(chan error, 1), nil)); err != nil {
		t.Fatalf("Go after the storm: %v", err)
	}
	roundTrip(t, cli, bufio.NewReader(cli), "after the storm")
	// Every relay waits now: the orphans have all gone.
	rtEventually(t, "one runner left once every relay waits", func() bool { return rtShardRunners(sh) == 1 })
}

// handoffIfBusy (Conn.Blocking) and the watchdog check that the runner is
// inside a relay, then hand it over: between the check and the hand-over
// the runner may have left that relay and gone back to epoll_wait. A
// runner orphaned while it sleeps in epoll_wait(-1) only notices when an
// event wakes it, and Loop.Close's single eventfd kick is usually taken by
// the active runner: the orphan would sleep for ever, holding its thread
// and keeping the shard's descriptors open. (This leaked 13 of 20 shards
// before handoff learnt to hand over only a runner still in the relay it
// was seen in.) The test replays the interleaving: a busy count seen while
// the runner was in a relay, used for a hand-over after it left.
func TestRedteamStaleHandoffLeavesNoSleepingOrphan(t *testing.T) {
	for i := range 10 {
		l, err := New(2)
		if err != nil {
			t.Fatal(err)
		}
		var conns []io.Closer
		var dones []<-chan struct{}
		for _, sh := range l.shards {
			srv, cli, err := rtPair()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, srv, cli)
			inside := make(chan struct{})
			leave := make(chan struct{})
			done, err := sh.Go(srv, func() {
				close(inside)
				<-leave
				io.Copy(io.Discard, srv) // back to waiting for its socket
			})
			if err != nil {
				t.Fatal(err)
			}
			dones = append(dones, done)
			rtWait(t, inside, "the relay's start")
			r := sh.active.Load()
			b := r.busy.Load() // seen inside the relay (unless the watchdog took over already)
			close(leave)
			rtEventually(t, "the runner leaving the relay", func() bool { return r.busy.Load() != b })
			time.Sleep(time.Millisecond) // back in epoll_wait
			sh.handoff(r, b)             // the check-then-act's late hand-over
		}
		l.Close()
		for _, c := range conns {
			c.Close()
		}
		for _, d := range dones {
			rtWait(t, d, "a relay's return")
		}
		for k, sh := range l.shards {
			deadline := time.Now().Add(5 * time.Second)
			for !rtShardStopped(sh) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if !rtShardStopped(sh) {
				t.Fatalf("round %d: shard %d never stopped after Loop.Close and its relays' end (%d runners)", i, k, rtShardRunners(sh))
			}
		}
	}
}

// When Shard.Go fails to register the socket (here EEXIST: the socket is
// already in the shard's set; in production ENOSPC from max_user_watches,
// or ENOMEM), the coroutine iter.Pull created for the relay must be
// stopped, or its goroutine stays parked for ever.
func TestRedteamFailedGoLeaksNoGoroutine(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	srv, cli := rtMustPair(t)
	release := make(chan struct{})
	done, err := sh.Go(srv, func() { <-release; io.Copy(io.Discard, srv) })
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	const attempts = 50
	failed := 0
	for range attempts {
		if _, err := sh.Go(srv, func() {}); err != nil {
			failed++
		}
	}
	if failed != attempts {
		t.Fatalf("%d of %d second registrations failed; the test needs them to fail", failed, attempts)
	}
	runtime.GC()
	after := runtime.NumGoroutine()
	close(release)
	cli.Close()
	rtWait(t, done, "the relay's return")
	if after-before >= attempts/2 {
		t.Fatalf("%d failed Go calls left %d goroutines behind", attempts, after-before)
	}
}

// A relay's runtime.Goexit ends the runner that resumed it (iter.Pull
// propagates it); Shard.goexit then finishes the relay and starts a new
// runner. But when the relay was resumed from serveWakeups, the runner had
// already read the eventfd, cleared kicked and taken the whole wake-up
// list: the wake-ups after the relay's in that list die with the runner.
// A relay whose start was among them never starts (until its socket
// happens to become readable: a server that waits to be asked never
// speaks), and a relay whose read deadline or Close wake-up was among them
// goes on waiting past its deadline. Here a relay starts two more relays
// in a row (one wake-up list): the first calls runtime.Goexit, the second
// never runs.
func TestRedteamGoexitKeepsTheOtherWakeups(t *testing.T) {
	l := newLoop(t, 1)
	sh := l.Shard()
	parentSrv, _ := rtMustPair(t)
	exitSrv, _ := rtMustPair(t)
	otherSrv, _ := rtMustPair(t)
	started := make(chan struct{})
	spawned := make(chan struct{})
	var exitDone <-chan struct{}
	var exitErr, otherErr error
	if _, err := sh.Go(parentSrv, func() {
		// Both starts are queued while this relay holds the runner: one
		// wake-up list.
		exitDone, exitErr = sh.Go(exitSrv, func() { runtime.Goexit() })
		_, otherErr = sh.Go(otherSrv, func() {
			close(started)
			var b [1]byte
			otherSrv.Read(b[:])
		})
		close(spawned)
		var b [1]byte
		parentSrv.Read(b[:])
	}); err != nil {
		t.Fatal(err)
	}
	rtWait(t, spawned, "the two Go calls")
	if exitErr != nil || otherErr != nil {
		t.Fatalf("Go: %v, %v", exitErr, otherErr)
	}
	rtWait(t, exitDone, "the Goexit relay's end")
	select {
	case <-started:
	case <-time.After(5 * time.Second): // a failure guard: it starts at once when it does
		t.Fatal("a relay started in the same wake-up list as one that called runtime.Goexit never ran")
	}
}
