package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/session"
)

// mechOAuthBearer is the SASL mechanism of RFC 7628, PostgreSQL 18's
// "oauth" method.
const mechOAuthBearer = "OAUTHBEARER"

// oauthBearer runs SASL OAUTHBEARER with the client. A client that sends no
// token (the discovery request of RFC 7628 §4.3) or a bad one gets the
// error status of §3.2.2, naming the issuer's discovery document, and once
// it acknowledges, the failure.
func (o *OIDC) oauthBearer(ctx context.Context, req *Request) (session.Identity, error) {
	_, initial, err := req.Client.SASLStart(ctx, []string{mechOAuthBearer})
	if err != nil {
		return session.Identity{}, err
	}
	if initial == nil {
		// No initial response: an empty challenge asks for it.
		if initial, err = req.Client.SASLContinue(ctx, nil); err != nil {
			return session.Identity{}, err
		}
	}
	token, err := parseOAuthBearer(initial)
	if err != nil {
		return session.Identity{}, err
	}
	if token == "" {
		return session.Identity{}, o.bearerFailure(ctx, req, fmt.Errorf("%w: the client sent no bearer token", ErrInvalidCredentials))
	}
	id, err := o.login(ctx, req, session.NewSecret(token), oidcMethodOAuthBearer)
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			return session.Identity{}, o.bearerFailure(ctx, req, err)
		}
		return session.Identity{}, err
	}
	// Success has no additional data: the proxy's AuthenticationOk ends
	// the exchange.
	return id, nil
}

// bearerFailure sends the RFC 7628 error status, reads the client's
// acknowledgement (a single %x01) and returns cause.
func (o *OIDC) bearerFailure(ctx context.Context, req *Request, cause error) error {
	status, _ := json.Marshal(map[string]string{
		"status":               "invalid_token",
		"scope":                "openid",
		"openid-configuration": strings.TrimSuffix(o.cfg.Issuer, "/") + "/.well-known/openid-configuration",
	})
	ack, err := req.Client.SASLContinue(ctx, status)
	if err == nil && string(ack) != "\x01" {
		return fmt.Errorf("%w: OAUTHBEARER error not acknowledged", ErrExchange)
	}
	// A client that hangs up instead of acknowledging (pgx does) has
	// still failed authentication.
	return cause
}

// parseOAuthBearer reads an OAUTHBEARER client initial response (RFC 7628
// §3.1): a GS2 header without channel binding, then %x01-separated
// key=value pairs ending with %x01%x01. It returns the bearer token of the
// "auth" pair, or "" when there is none (a discovery request).
func parseOAuthBearer(msg []byte) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: malformed OAUTHBEARER message: %s", ErrExchange, why)
	}
	s := string(msg)
	if strings.IndexByte(s, 0) >= 0 {
		return bad("NUL byte")
	}
	switch {
	case strings.HasPrefix(s, "n,"), strings.HasPrefix(s, "y,"):
		s = s[2:]
	case strings.HasPrefix(s, "p="):
		return bad("OAUTHBEARER does not support channel binding")
	default:
		return bad("no GS2 header")
	}
	// Optional authzid ("a=..."), which PostgreSQL ignores, and so do we.
	i := strings.IndexByte(s, ',')
	if i < 0 || (i > 0 && !strings.HasPrefix(s, "a=")) {
		return bad("invalid GS2 header")
	}
	s = s[i+1:]
	// %x01 [pairs, each ending with %x01] %x01: "\x01\x01" has no pairs.
	if len(s) < 2 || !strings.HasPrefix(s, "\x01") || !strings.HasSuffix(s, "\x01\x01") {
		return bad("missing separators")
	}
	body := ""
	if len(s) > 2 {
		body = s[1 : len(s)-2]
	}
	var auth string
	seen := false
	if body != "" {
		for kv := range strings.SplitSeq(body, "\x01") {
			key, value, ok := strings.Cut(kv, "=")
			if !ok || key == "" || !isAlpha(key) {
				return bad("invalid key/value pair")
			}
			if key == "auth" {
				if seen {
					return bad("auth given twice")
				}
				auth, seen = value, true
			}
		}
	}
	if auth == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return bad("the auth value is not a Bearer token")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return bad("invalid bearer token")
	}
	return token, nil
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
