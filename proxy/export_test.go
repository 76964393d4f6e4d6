package proxy

// UseGoroutineRelay makes p relay every session on goroutines, the path
// taken off Linux, so that tests cover it here too.
func UseGoroutineRelay(p *Proxy) { p.goroutineRelay = true }

// LoopSessions returns the number of sessions p relays on its event loop.
func LoopSessions(p *Proxy) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loopUsers
}
