package proxy

import (
	"crypto/tls"
	"net"
	"runtime"
	"syscall"

	"github.com/pgwarden/pgwarden/internal/evloop"
)

// takeOver moves a session's sockets out of Go's poller onto the proxy's
// event loop (see internal/evloop), before the session is built, and
// returns the loop; nil, having changed nothing, when the client's socket
// cannot be taken over (a system other than Linux), and then the session is
// relayed by goroutines. Under TLS the socket is taken over beneath the TLS
// connection, which goes on as before. The loop saves the scheduler a
// goroutine park and wake-up per message; the relays' code is the same.
func (cc *clientConn) takeOver(up *upstreamConn) *evloop.Loop {
	p := cc.p
	clientSock, upSock := cc.conn, up.conn
	if cc.tlsSock != nil {
		clientSock = cc.tlsSock.Conn
	}
	if up.tlsSock != nil {
		upSock = up.tlsSock.Conn
	}
	if p.goroutineRelay || !detachable(clientSock) {
		return nil
	}
	lp := p.acquireLoop()
	if lp == nil {
		return nil
	}
	client, err := evloop.Detach(clientSock)
	if err != nil {
		p.releaseLoop()
		cc.log.Debug("pgwarden: event loop not used", "err", err)
		return nil
	}
	cc.loopSock = client
	if cc.tlsSock != nil {
		cc.tlsSock.Conn = client
	} else {
		cc.conn = client
		cc.rd.SetSource(client)
	}
	if !detachable(upSock) {
		// A dialer that returned something other than a socket: the
		// backend relay runs on a goroutine (see relayOnLoop).
		return lp
	}
	upc, err := evloop.Detach(upSock)
	if err != nil {
		cc.log.Debug("pgwarden: event loop not used for the upstream", "err", err)
		return lp
	}
	up.loopSock = upc
	if up.tlsSock != nil {
		up.tlsSock.Conn = upc
	} else {
		up.conn = upc
	}
	return lp
}

// relayOnLoop relays the session from its event loop, when it has one, and
// reports true once both relays returned.
func (s *clientSession) relayOnLoop() bool {
	if s.loop == nil {
		return false
	}
	defer s.p.releaseLoop()
	sh := s.loop.Shard()
	front, err := sh.Go(s.clientSock, s.relayFrontend)
	if err != nil {
		front = s.goRelay(s.relayFrontend)
	}
	var back <-chan struct{}
	if s.upSock != nil {
		back, err = sh.Go(s.upSock, s.relayBackend)
	}
	if back == nil || err != nil {
		back = s.goRelay(s.relayBackend)
	}
	<-front
	<-back
	return true
}

// goRelay runs relay on a goroutine of its own.
func (s *clientSession) goRelay(relay func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay()
	}()
	return done
}

// detachable reports whether c is a plain socket the loop can take over.
func detachable(c net.Conn) bool {
	if _, ok := c.(*tls.Conn); ok {
		return false
	}
	_, ok := c.(syscall.Conn)
	return ok
}

// handoverConn is a socket under a TLS connection: the event loop replaces
// Conn with its own (see takeOver) while nothing reads or writes it, and the
// TLS connection goes on over the new one.
type handoverConn struct {
	net.Conn
}

// CloseWrite shuts down the sending side, when the socket supports it.
func (h *handoverConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// blocking tells the event loop, when the session runs on it, that the
// calling relay is about to wait for something other than its socket, so
// that the loop serves the other sessions meanwhile.
func (s *clientSession) blocking() {
	if s.clientSock != nil {
		s.clientSock.Blocking()
	}
}

// acquireLoop returns the proxy's event loop, starting it for the first
// session that uses it; nil when the system has none.
func (p *Proxy) acquireLoop() *evloop.Loop {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loop == nil {
		// Half the Ps: a shard's runner keeps its P while it waits (see
		// evloop), and the rest of the gateway (logins, approvals, the
		// recorder) needs the others.
		lp, err := evloop.New(max(runtime.GOMAXPROCS(0)/2, 1))
		if err != nil {
			return nil
		}
		p.loop = lp
	}
	p.loopUsers++
	return p.loop
}

// releaseLoop stops the event loop when its last session is over, so that
// an idle proxy holds no threads.
func (p *Proxy) releaseLoop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loopUsers--
	if p.loopUsers == 0 {
		p.loop.Close()
		p.loop = nil
	}
}
