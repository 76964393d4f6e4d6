package devidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// PersonToken returns an access token for the configured user subject,
// obtained over HTTP from the token endpoint with the RFC 7523 JWT-profile
// grant (urn:ietf:params:oauth:grant-type:jwt-bearer): the provider signs a
// one-minute assertion (iss = sub = subject, aud = issuer) with a dev-only
// ES256 key that is accepted for users only, and the OP issues the token
// through its ordinary code path. The token has sub = subject, aud =
// [audience], client_id = subject, the user's groups/name/email, no act.
func (p *Provider) PersonToken(ctx context.Context, subject string) (string, error) {
	if _, ok := p.store.dir.users[subject]; !ok {
		return "", fmt.Errorf("devidp: unknown user %q", subject)
	}
	assertion, err := p.personAssertion(subject)
	if err != nil {
		return "", err
	}
	return p.token(ctx, "", "", url.Values{
		"grant_type": {string(oidc.GrantTypeBearer)},
		"assertion":  {assertion},
	})
}

// ClientToken returns an access token for the configured client clientID,
// obtained over HTTP with the client_credentials grant (client_secret_basic):
// sub = client_id = clientID, aud = [audience], the client's groups/name.
func (p *Provider) ClientToken(ctx context.Context, clientID string) (string, error) {
	c, ok := p.store.dir.clients[clientID]
	if !ok {
		return "", fmt.Errorf("devidp: unknown client %q", clientID)
	}
	return p.token(ctx, c.ID, c.Secret, url.Values{
		"grant_type": {string(oidc.GrantTypeClientCredentials)},
	})
}

// Exchange performs an RFC 8693 token exchange over HTTP, authenticated as
// the configured client actingClientID, for the configured audience. Both
// tokens are sent as access tokens; actorToken may be empty (no delegation).
// The result has the subject token's sub, groups, name and email, client_id
// = actingClientID, and act = {sub: <actor token's sub>, act: <subject
// token's act, if any>} (without an actor token, the subject's act is kept).
func (p *Provider) Exchange(ctx context.Context, subjectToken, actorToken, actingClientID string) (string, error) {
	c, ok := p.store.dir.clients[actingClientID]
	if !ok {
		return "", fmt.Errorf("devidp: unknown client %q", actingClientID)
	}
	form := url.Values{
		"grant_type":           {string(oidc.GrantTypeTokenExchange)},
		"subject_token":        {subjectToken},
		"subject_token_type":   {string(oidc.AccessTokenType)},
		"requested_token_type": {string(oidc.AccessTokenType)},
		"audience":             {p.cfg.Audience},
	}
	if actorToken != "" {
		form.Set("actor_token", actorToken)
		form.Set("actor_token_type", string(oidc.AccessTokenType))
	}
	return p.token(ctx, c.ID, c.Secret, form)
}

// Chain returns the tokens of a delegation chain, all obtained over HTTP:
// tokens[0] is person's token (PersonToken) and tokens[i] (i ≥ 1) is
// tokens[i-1] exchanged by agents[i-1] (a configured client) with its own
// client token as actor_token. So len(tokens) == len(agents)+1 and the last
// token has sub = person and act = {sub: agents[n-1], act: {... {sub:
// agents[0]}}}.
func (p *Provider) Chain(ctx context.Context, person string, agents ...string) ([]string, error) {
	tok, err := p.PersonToken(ctx, person)
	if err != nil {
		return nil, err
	}
	tokens := []string{tok}
	for _, agent := range agents {
		actor, err := p.ClientToken(ctx, agent)
		if err != nil {
			return nil, err
		}
		if tok, err = p.Exchange(ctx, tok, actor, agent); err != nil {
			return nil, err
		}
		tokens = append(tokens, tok)
	}
	return tokens, nil
}

// Introspect calls the RFC 7662 introspection endpoint over HTTP,
// authenticated (client_secret_basic) as the configured client or
// introspector clientID, and returns the decoded JSON response (always with
// an "active" boolean).
func (p *Provider) Introspect(ctx context.Context, clientID, token string) (map[string]any, error) {
	c, ok := p.store.dir.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("devidp: unknown client %q", clientID)
	}
	var out map[string]any
	if err := p.post(ctx, p.IntrospectionURL(), c.ID, c.Secret, url.Values{"token": {token}}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Revoke makes introspection answer active=false for token (a JWT issued by
// this provider, or its jti) from now on, and makes the token endpoint
// refuse it as a subject or actor token. Signatures still verify: revocation
// is only visible through the OP.
func (p *Provider) Revoke(token string) {
	jti := token
	if c, err := DecodeClaims(token); err == nil {
		if s, ok := c["jti"].(string); ok {
			jti = s
		}
	}
	p.store.revoke(jti)
}

// token posts form to the token endpoint and returns the access_token.
func (p *Provider) token(ctx context.Context, clientID, secret string, form url.Values) (string, error) {
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if err := p.post(ctx, p.TokenURL(), clientID, secret, form, &resp); err != nil {
		return "", err
	}
	if resp.AccessToken == "" {
		return "", errors.New("devidp: token endpoint returned no access_token")
	}
	return resp.AccessToken, nil
}

// post sends a form with optional client_secret_basic credentials (form-
// encoded per RFC 6749 §2.3.1) and decodes a 200 JSON answer into out.
// Errors carry the OAuth error and description, never the credentials.
func (p *Provider) post(ctx context.Context, endpoint, clientID, secret string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("devidp: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("devidp: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("devidp: %s: HTTP %d: %s: %s", endpoint, resp.StatusCode, e.Error, e.Description)
		}
		return fmt.Errorf("devidp: %s: HTTP %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("devidp: decode response: %w", err)
	}
	return nil
}

// DecodeClaims returns the payload of a compact JWS WITHOUT verifying it.
// It is for inspecting tokens in tests and logs, never for trusting them.
func DecodeClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("devidp: not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("devidp: payload: %w", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("devidp: payload: %w", err)
	}
	return c, nil
}
