package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"time"

	"github.com/pgwarden/pgwarden/internal/wire"
)

// cancelTimeout bounds forwarding one cancel request.
const cancelTimeout = 10 * time.Second

// gatewayKey is the (pid, secret) pair the gateway gives a client in
// BackendKeyData, in place of the server's, which the client never sees.
type gatewayKey struct {
	pid    uint32
	secret [4]byte
}

// registerLocked gives s a gateway key that no live session has and adds s
// to the registry. p.mu must be held.
func (p *Proxy) registerLocked(s *clientSession) {
	if p.sessions == nil {
		p.sessions = map[string]*clientSession{}
		p.byKey = map[uint32]*clientSession{}
	}
	var b [8]byte
	for {
		rand.Read(b[:])
		// Positive 31-bit, as PostgreSQL process ids are: clients may keep
		// the pid in a signed integer.
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || p.byKey[pid] != nil {
			continue
		}
		s.key.pid = pid
		copy(s.key.secret[:], b[4:])
		break
	}
	p.sessions[s.info.ID] = s
	p.byKey[s.key.pid] = s
}

// unregister removes s from the registry and gives back its admission.
func (p *Proxy) unregister(s *clientSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions[s.info.ID] == s {
		delete(p.sessions, s.info.ID)
		delete(p.byKey, s.key.pid)
		p.active--
	}
}

// forwardCancel sends a client's cancel request to the upstream session it
// names, with the upstream's real key. Requests with an unknown key are
// dropped without an answer, as the server does.
func (p *Proxy) forwardCancel(key wire.CancelKey) {
	p.mu.Lock()
	s := p.byKey[key.PID]
	p.mu.Unlock()
	if s == nil || len(key.Secret) != len(s.key.secret) ||
		subtle.ConstantTimeCompare(key.Secret, s.key.secret[:]) != 1 {
		p.logger().Info("pgwarden: cancel request with an unknown key dropped")
		return
	}
	if s.hold.withdraw() {
		// The statement the client waits for has not reached the server:
		// a cancel sent there now could only hit a later statement.
		s.log.Info("pgwarden: cancel request withdrew the approval request")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	if err := p.Upstream.cancel(ctx, s.up.pid, s.up.secret); err != nil {
		s.log.Warn("pgwarden: forwarding a cancel request failed", "err", err)
		return
	}
	s.log.Info("pgwarden: cancel request forwarded")
}
