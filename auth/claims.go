package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pgwarden/pgwarden/session"
)

// claimsOf decodes a verified token's claims, keeping numbers exact.
func claimsOf(t *oidc.IDToken) (map[string]any, error) {
	var raw json.RawMessage
	if err := t.Claims(&raw); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// identityFromClaims maps a token's claims to an identity: the mapped
// subject, name, email and groups, the delegation chain from "act", and the
// raw claims.
func identityFromClaims(claims map[string]any, issuer string, names ClaimNames) (session.Identity, error) {
	id := session.Identity{Issuer: issuer}
	sub, err := stringClaim(claims, or(names.Subject, "sub"))
	if err != nil {
		return id, err
	}
	if sub == "" {
		return id, fmt.Errorf("token has no %q claim", or(names.Subject, "sub"))
	}
	id.Subject = sub
	if id.Name, err = stringClaim(claims, or(names.Name, "name")); err != nil {
		return id, err
	}
	if id.Name == "" && names.Name == "" {
		id.Name, _ = stringClaim(claims, "preferred_username")
	}
	if id.Email, err = stringClaim(claims, or(names.Email, "email")); err != nil {
		return id, err
	}
	if id.Groups, err = groupsClaim(claims, or(names.Groups, "groups")); err != nil {
		return id, err
	}
	if id.Chain, err = delegationChain(claims["act"], issuer); err != nil {
		return id, err
	}
	if id.Claims, err = session.ClaimsFrom(claims); err != nil {
		return id, err
	}
	return id, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lookupClaim finds a claim by a dotted path.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringClaim returns a string claim; absent is "", another type an error.
func stringClaim(claims map[string]any, path string) (string, error) {
	v, ok := lookupClaim(claims, path)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("claim %q is not a string", path)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("claim %q contains a NUL byte", path)
	}
	return s, nil
}

// groupsClaim reads an array of strings or a space-separated string.
func groupsClaim(claims map[string]any, path string) ([]string, error) {
	v, ok := lookupClaim(claims, path)
	if !ok || v == nil {
		return nil, nil
	}
	switch g := v.(type) {
	case string:
		return strings.Fields(g), nil
	case []any:
		out := make([]string, 0, len(g))
		for _, e := range g {
			s, ok := e.(string)
			if !ok || strings.IndexByte(s, 0) >= 0 {
				return nil, fmt.Errorf("claim %q holds something other than names", path)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("claim %q is neither a list nor a string", path)
}

// delegationChain reads RFC 8693 "act" claims. The outermost "act" is the
// current actor (the party on the wire); each nested "act" is the actor
// before it. The chain is returned from the first actor to the current one.
// An actor without "iss" is vouched for by the token's issuer.
func delegationChain(act any, issuer string) ([]session.Actor, error) {
	var chain []session.Actor
	for act != nil {
		m, ok := act.(map[string]any)
		if !ok {
			return nil, errors.New(`claim "act" is not an object`)
		}
		sub, err := stringClaim(m, "sub")
		if err != nil || sub == "" {
			return nil, errors.New(`an "act" claim has no subject`)
		}
		iss, err := stringClaim(m, "iss")
		if err != nil {
			return nil, err
		}
		if len(chain) == maxDelegationDepth {
			return nil, fmt.Errorf("delegation chain deeper than %d", maxDelegationDepth)
		}
		chain = append(chain, session.Actor{Subject: sub, Issuer: or(iss, issuer)})
		act = m["act"]
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}
