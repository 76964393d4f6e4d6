package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pair returns two connected sockets of the given network, the first wrapped.
func pair(t *testing.T, network string) (net.Conn, net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	t.Cleanup(func() { c.Close(); peer.Close() })
	return Wrap(c), peer
}

func TestWrappedSocketsBehaveLikeNetConns(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c, peer := pair(t, network)
			if _, ok := c.(*conn); !ok {
				t.Fatalf("Wrap did not wrap a %s socket", network)
			}
			payload := bytes.Repeat([]byte("0123456789"), 300000) // larger than socket buffers
			go func() {
				if _, err := c.Write(payload); err != nil {
					t.Error(err)
				}
				c.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(peer)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("peer read %d bytes, %v", len(got), err)
			}
			peer.Write([]byte("back"))
			peer.Close()
			back, err := io.ReadAll(c)
			if err != nil || string(back) != "back" {
				t.Fatalf("read %q, %v (want EOF after the data)", back, err)
			}
		})
	}
}

func TestWrappedReadHonoursDeadlinesAndClose(t *testing.T) {
	c, _ := pair(t, "tcp")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed socket: %v", err)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a net.Pipe was wrapped")
	}
}

func TestWrappedReadsAndWritesDoNotAllocate(t *testing.T) {
	c, peer := pair(t, "tcp")
	msg := []byte("ping")
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:4]); err != nil {
			t.Fatal(err)
		}
		peer.Write(msg)
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per round trip", allocs)
	}
}
