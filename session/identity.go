package session

import (
	"slices"
	"time"
)

// Identity is who a session acts for: the original subject and, when agents
// act on its behalf, the delegation chain. Authenticators produce it; every
// other plugin reads it. An Identity is a value: copying it is safe, and no
// pgwarden code modifies one after the Authenticator returned it.
type Identity struct {
	// Subject identifies the person or workload within Issuer (an OIDC "sub",
	// a static user's name, a certificate's CN or SPIFFE ID). Never empty for
	// an authenticated session.
	Subject string
	// Issuer names who vouches for Subject (an OIDC issuer URL, "static" for
	// users from configuration, ...).
	Issuer string
	// Name and Email are for display; never use them for authorisation.
	Name  string
	Email string
	// Groups the subject belongs to, as the issuer states them.
	Groups []string
	// Method is how the client proved the identity, for example
	// "scram-sha-256".
	Method string
	// ExpiresAt is when the proof (token, certificate) stops being valid;
	// zero means it does not expire.
	ExpiresAt time.Time
	// Chain is the delegation chain, from the original subject's first actor
	// to the agent presenting the credential; empty when the subject connects
	// directly. Chain[len(Chain)-1] is the party on the wire.
	Chain []Actor
	// Claims are the raw claims the identity was built from (read-only).
	Claims Claims
}

// Actor is one party in a delegation chain: an agent acting on behalf of the
// subject (or of the previous actor).
type Actor struct {
	// Subject identifies the agent within Issuer (an OIDC "sub" of an
	// "act" claim, a client id).
	Subject string
	// Issuer is who vouches for Subject; empty when the token did not say,
	// in which case it is the token's issuer.
	Issuer string
}

// Depth is the number of agents between the original subject and the wire:
// len(id.Chain).
func (id Identity) Depth() int { return len(id.Chain) }

// Presenter is the party on the wire: the last actor of the chain, or the
// subject itself when no agent acts for it.
func (id Identity) Presenter() Actor {
	if n := len(id.Chain); n > 0 {
		return id.Chain[n-1]
	}
	return Actor{Subject: id.Subject, Issuer: id.Issuer}
}

// InGroup reports whether the identity belongs to group.
func (id Identity) InGroup(group string) bool { return slices.Contains(id.Groups, group) }

// Involves reports whether subject (within issuer, when issuer is not empty)
// is the identity's subject or any actor of its delegation chain. Revocation
// uses it: revoking a parent also ends the sessions of its agents.
func (id Identity) Involves(issuer, subject string) bool {
	if id.Subject == subject && (issuer == "" || id.Issuer == issuer) {
		return true
	}
	for _, a := range id.Chain {
		if a.Subject == subject && (issuer == "" || a.Issuer == issuer) {
			return true
		}
	}
	return false
}
