package proxy

import (
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// suspensionKey names one party of a delegation chain.
type suspensionKey struct{ issuer, subject string }

// suspension keeps a party out until a time, or until lifted when it is
// a revocation.
type suspension struct {
	until   time.Time
	rule    string
	revoked bool   // by Revoke: no end time
	reason  string // given to Revoke
}

// inForce reports whether s keeps its party out at now.
func (s suspension) inForce(now time.Time) bool { return s.revoked || now.Before(s.until) }

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
		if !v.revoked && now.Before(v.until) {
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
	v, ok := p.suspended[k]
	if !ok || v.revoked {
		return false
	}
	delete(p.suspended, k)
	return true
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
	p.pruneLocked(now)
	for _, k := range keys {
		if cur, ok := p.suspended[k]; !ok || (!cur.revoked && cur.until.Before(until)) {
			p.suspended[k] = suspension{until: until, rule: rule}
		}
	}
	p.mu.Unlock()
	p.endInvolving(keys, ending, session.EndTerminated, &session.Error{Code: session.CodeInsufficientPrivilege,
		Message: fmt.Sprintf("pgwarden: session terminated: its delegation chain was suspended by rule %q", rule)})
}

// pruneLocked forgets suspensions that ended.
func (p *Proxy) pruneLocked(now time.Time) {
	for k, v := range p.suspended {
		if !v.inForce(now) {
			delete(p.suspended, k)
		}
	}
}

// endInvolving ends the live sessions whose identity involves any of keys
// (as subject or anywhere in the delegation chain), except except, and
// returns how many it ended.
func (p *Proxy) endInvolving(keys []suspensionKey, except *clientSession, reason session.EndReason, fatal *session.Error) int {
	n := 0
	for _, s := range p.liveSessions() {
		if s == except {
			continue
		}
		for _, k := range keys {
			if s.info.Identity.Involves(k.issuer, k.subject) {
				s.end(reason, fatal)
				n++
				break
			}
		}
	}
	return n
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
		if v, ok := p.suspended[k]; ok && v.inForce(now) {
			return v, true
		}
		// A revocation without an issuer covers the subject in any issuer.
		if v, ok := p.suspended[suspensionKey{"", k.subject}]; ok && v.inForce(now) {
			return v, true
		}
	}
	return suspension{}, false
}

// suspendedError is the login refusal of a suspended or revoked identity.
func suspendedError(sus suspension) *session.Error {
	if sus.revoked {
		return &session.Error{Code: session.CodeInvalidAuthorization,
			Message: "pgwarden: this identity, or a party of its delegation chain, is revoked", Detail: sus.reason}
	}
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
