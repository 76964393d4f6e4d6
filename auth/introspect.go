package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pgwarden/pgwarden/session"
)

// introspect asks the IdP whether the token is still active (RFC 7662).
// An inactive token wraps ErrInvalidCredentials; an endpoint that cannot be
// reached or answers nonsense is another error, and the proxy refuses (at
// login) or ends the session (later): it fails closed.
func (o *OIDC) introspect(ctx context.Context, token session.Secret) error {
	in := o.cfg.Introspection
	o.mu.Lock()
	endpoint := o.introURL
	o.mu.Unlock()
	if endpoint == "" {
		return errors.New("auth: OIDC introspection is configured but the issuer names no introspection endpoint")
	}
	form := url.Values{"token": {token.Reveal()}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("auth: introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret.Reveal()))
	resp, err := o.http.Do(req)
	if err != nil {
		// The URL error can quote the request; it never holds the form.
		return fmt.Errorf("auth: introspection at %s failed: %w", endpoint, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIdPResponse))
	if err != nil {
		return fmt.Errorf("auth: introspection at %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("auth: introspection at %s answered %s", endpoint, resp.Status)
	}
	var answer struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Active == nil {
		return fmt.Errorf("auth: introspection at %s gave no \"active\" answer", endpoint)
	}
	if !*answer.Active {
		return fmt.Errorf("%w: the identity provider says the token is no longer active", ErrInvalidCredentials)
	}
	return nil
}
