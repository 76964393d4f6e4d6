package proxy

import (
	"errors"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

// Revocation is a party revoked with Revoke.
type Revocation struct {
	// Issuer is empty when the revocation is for Subject within any issuer.
	Issuer, Subject string
	Reason          string
	Since           time.Time
}

// errEmptySubject is Revoke's refusal of an empty subject.
var errEmptySubject = errors.New("proxy: revoke needs a subject")

// Revoke keeps subject (within issuer; an empty issuer means any issuer)
// out of the gateway until Unrevoke: every live session whose identity
// involves it, as the subject or anywhere in the delegation chain (the
// child agents of a revoked parent too), is ended at once with FATAL 28000,
// its running statement cancelled on the server,
// its credential released (a just-in-time lease ends with it), and new
// sessions that involve it are refused. It returns how many sessions it
// ended. Revocations are kept in memory: a host that restarts the gateway
// must Revoke again (the example gateway keeps them in its state).
func (p *Proxy) Revoke(issuer, subject, reason string) (int, error) {
	if subject == "" {
		return 0, errEmptySubject
	}
	k := suspensionKey{issuer, subject}
	p.mu.Lock()
	if p.suspended == nil {
		p.suspended = make(map[suspensionKey]suspension)
	}
	p.suspended[k] = suspension{revoked: true, reason: reason, until: time.Now()}
	p.mu.Unlock()
	msg := "pgwarden: session terminated: its identity was revoked"
	return p.endInvolving([]suspensionKey{k}, nil, session.EndRevoked,
		&session.Error{Code: session.CodeInvalidAuthorization, Message: msg, Detail: reason}), nil
}

// Unrevoke lifts a revocation made with the same issuer and subject, and
// reports whether there was one.
func (p *Proxy) Unrevoke(issuer, subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := suspensionKey{issuer, subject}
	if v, ok := p.suspended[k]; ok && v.revoked {
		delete(p.suspended, k)
		return true
	}
	return false
}

// Revocations lists the revoked parties, in no particular order.
func (p *Proxy) Revocations() []Revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Revocation
	for k, v := range p.suspended {
		if v.revoked {
			out = append(out, Revocation{Issuer: k.issuer, Subject: k.subject, Reason: v.reason, Since: v.until})
		}
	}
	return out
}

// RevokeLease ends the session that uses the just-in-time credential lease
// (session.Info.Lease) with FATAL 28000, which releases the credential (the
// lease ends with it), and reports whether a session used it. The identity
// is not revoked: it may log in again and gets a new lease.
func (p *Proxy) RevokeLease(lease, reason string) bool {
	if lease == "" {
		return false
	}
	for _, s := range p.liveSessions() {
		if s.info.Lease == lease {
			s.end(session.EndRevoked, &session.Error{Code: session.CodeInvalidAuthorization,
				Message: "pgwarden: session terminated: its database credential was revoked", Detail: reason})
			return true
		}
	}
	return false
}
