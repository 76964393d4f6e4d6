package proxy

import (
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// suspensionKey names one party of a delegation chain.
type suspensionKey struct{ issuer, subject string }

// suspension keeps a party out until a time.
type suspension struct {
	until time.Time
	rule  string
}

// Suspension is a party kept out of the gateway by a Terminate decision.
type Suspension struct {
	Issuer, Subject string
	// Until is when the suspension ends.
	Until time.Time
	// Rule is the rule that decided it.
	Rule string
}

// Suspensions lists the parties currently kept out, in no particular
// order.
func (p *Proxy) Suspensions() []Suspension {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Suspension
	for k, v := range p.suspended {
		if now.Before(v.until) {
			out = append(out, Suspension{Issuer: k.issuer, Subject: k.subject, Until: v.until, Rule: v.rule})
		}
	}
	return out
}

// LiftSuspension ends the suspension of subject within issuer before its
// time, and reports whether there was one.
func (p *Proxy) LiftSuspension(issuer, subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := suspensionKey{issuer, subject}
	_, ok := p.suspended[k]
	delete(p.suspended, k)
	return ok
}

// parties returns the identity's subject and every actor of its chain.
func parties(id session.Identity) []suspensionKey {
	keys := []suspensionKey{{id.Issuer, id.Subject}}
	for _, a := range id.Chain {
		keys = append(keys, suspensionKey{a.Issuer, a.Subject})
	}
	return keys
}

// suspend keeps every party of id's chain out for d, and then ends the
// live sessions any of them takes part in, except ending (which its caller
// ends with its own message). The suspension is in force before any
// session is ended, so a client that reconnects on seeing its FATAL is
// refused (see also the check in start).
func (p *Proxy) suspend(id session.Identity, d time.Duration, rule string, ending *clientSession) {
	until := time.Now().Add(d)
	keys := parties(id)
	p.mu.Lock()
	if p.suspended == nil {
		p.suspended = make(map[suspensionKey]suspension)
	}
	now := time.Now()
	for k, v := range p.suspended {
		if !now.Before(v.until) {
			delete(p.suspended, k) // expired
		}
	}
	for _, k := range keys {
		if cur, ok := p.suspended[k]; !ok || cur.until.Before(until) {
			p.suspended[k] = suspension{until: until, rule: rule}
		}
	}
	p.mu.Unlock()
	for _, s := range p.liveSessions() {
		if s == ending {
			continue
		}
		for _, k := range keys {
			if s.info.Identity.Involves(k.issuer, k.subject) {
				s.end(session.EndTerminated, &session.Error{Code: session.CodeInsufficientPrivilege,
					Message: fmt.Sprintf("pgwarden: session terminated: its delegation chain was suspended by rule %q", rule)})
				break
			}
		}
	}
}

// suspendedFor returns the suspension that keeps id out, if any.
func (p *Proxy) suspendedFor(id session.Identity) (suspension, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.suspendedLocked(id)
}

func (p *Proxy) suspendedLocked(id session.Identity) (suspension, bool) {
	now := time.Now()
	for _, k := range parties(id) {
		if v, ok := p.suspended[k]; ok && now.Before(v.until) {
			return v, true
		}
	}
	return suspension{}, false
}

// suspendedError is the login refusal of a suspended identity.
func suspendedError(sus suspension) *session.Error {
	return &session.Error{Code: session.CodeInvalidAuthorization,
		Message: fmt.Sprintf("pgwarden: this identity is suspended until %s by rule %q", sus.until.UTC().Format(time.RFC3339), sus.rule)}
}

// terminateFor ends the session after a Terminate decision, and suspends
// its chain first when the decision says so.
func (s *clientSession) terminateFor(d policy.Decision) *session.Error {
	s.log.Warn("pgwarden: session terminated by policy", "rule", d.Rule, "suspend", d.Suspend)
	fatal := &session.Error{Code: session.CodeInsufficientPrivilege,
		Message: fmt.Sprintf("pgwarden: session terminated by rule %q", d.Rule), Detail: d.Reason}
	if d.Suspend > 0 {
		// Record the suspension before the client can see the FATAL.
		s.p.suspend(s.info.Identity, d.Suspend, d.Rule, s)
	}
	s.end(session.EndTerminated, fatal)
	return errSessionOver
}
