package main

import (
	"context"
	"fmt"

	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

// Tokens travel as session.Secret: they print as REDACTED, so that no
// narration or log line can show one by accident.

// delegateToParent is alice handing her work to the parent agent: she
// signs in (here: the development IdP's person login; in production an
// OAuth login in her browser), and the parent exchanges her token at the
// IdP (RFC 8693), authenticated as itself and with its own client token
// as actor_token. The result says sub=alice, act={sub: parent-agent}.
func delegateToParent(ctx context.Context, idp *devidp.Provider) (session.Secret, error) {
	alice, err := idp.PersonToken(ctx, person)
	if err != nil {
		return session.Secret{}, fmt.Errorf("alice's sign-in: %w", err)
	}
	return exchange(ctx, idp, alice, parentAgent)
}

// delegateToChild is the parent handing part of the work to its child:
// it exchanges its own delegated token, authenticated as itself, with the
// child's client token as actor_token. The result says sub=alice,
// act={sub: child-agent, act={sub: parent-agent}}: the newest actor
// outermost.
func delegateToChild(ctx context.Context, idp *devidp.Provider, parent session.Secret) (session.Secret, error) {
	return exchange(ctx, idp, parent.Reveal(), childAgent)
}

// exchange asks the IdP, as parentAgent, for subjectToken delegated to
// actor (a registered agent, whose client token is the actor_token).
func exchange(ctx context.Context, idp *devidp.Provider, subjectToken, actor string) (session.Secret, error) {
	actorToken, err := idp.ClientToken(ctx, actor)
	if err != nil {
		return session.Secret{}, fmt.Errorf("%s's client token: %w", actor, err)
	}
	tok, err := idp.Exchange(ctx, subjectToken, actorToken, parentAgent)
	if err != nil {
		return session.Secret{}, fmt.Errorf("token exchange for %s: %w", actor, err)
	}
	return session.NewSecret(tok), nil
}

// approverToken is bob's sign-in: the approval desk decides as the
// identity his token proves.
func approverToken(ctx context.Context, idp *devidp.Provider) (session.Secret, error) {
	tok, err := idp.PersonToken(ctx, approverName)
	if err != nil {
		return session.Secret{}, fmt.Errorf("bob's sign-in: %w", err)
	}
	return session.NewSecret(tok), nil
}
