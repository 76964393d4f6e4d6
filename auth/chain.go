package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgwarden/pgwarden/session"
)

// Chain tries authenticators in order, by what the client offers: a member
// that returns an error wrapping ErrNotApplicable passes the client to the
// next one (a ClientCert when there is no certificate, a token
// authenticator when the password is not its kind of token). A secret the
// client already sent in clear is handed to the next members without asking
// again, so OIDC and SAML can share one password prompt; a SASL exchange
// can only be started once. Any other outcome (an identity, or another
// error) ends the chain. When no member applies, authentication fails with
// ErrInvalidCredentials.
//
// Order members from the most specific: client certificates, then
// When-guarded static users, then token authenticators.
func Chain(members ...Authenticator) Authenticator {
	members = append([]Authenticator(nil), members...)
	return Func(func(ctx context.Context, req *Request) (session.Identity, error) {
		shared := &sharedConversation{Conversation: req.Client}
		r := *req
		r.Client = shared
		defer func() { req.rechecks = r.rechecks }()
		for _, m := range members {
			id, err := m.Authenticate(ctx, &r)
			if err == nil || !errors.Is(err, ErrNotApplicable) {
				return id, err
			}
			if shared.sasl {
				// The client is in the middle of a SASL exchange that the
				// member gave up on; nothing else can continue it.
				return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
			}
		}
		return session.Identity{}, fmt.Errorf("%w: no authenticator accepted the client", ErrInvalidCredentials)
	})
}

// When makes a an authenticator for the clients cond accepts; for the
// others it returns ErrNotApplicable without talking to them.
func When(cond func(*Request) bool, a Authenticator) Authenticator {
	return Func(func(ctx context.Context, req *Request) (session.Identity, error) {
		if !cond(req) {
			return session.Identity{}, ErrNotApplicable
		}
		return a.Authenticate(ctx, req)
	})
}

// sharedConversation remembers the cleartext secret so that later members
// of a Chain get it without a second prompt.
type sharedConversation struct {
	Conversation
	secret *session.Secret
	sasl   bool
}

func (c *sharedConversation) CleartextPassword(ctx context.Context) (session.Secret, error) {
	if c.secret != nil {
		return *c.secret, nil
	}
	if c.sasl {
		return session.Secret{}, fmt.Errorf("%w: a SASL exchange is already under way", ErrExchange)
	}
	s, err := c.Conversation.CleartextPassword(ctx)
	if err != nil {
		return s, err
	}
	c.secret = &s
	return s, nil
}

func (c *sharedConversation) SASLStart(ctx context.Context, mechanisms []string) (string, []byte, error) {
	if c.secret != nil {
		return "", nil, fmt.Errorf("%w: the client already sent a password", ErrNotApplicable)
	}
	c.sasl = true
	return c.Conversation.SASLStart(ctx, mechanisms)
}
