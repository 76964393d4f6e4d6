package devidp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// directory is the immutable set of clients and users of a Provider.
type directory struct {
	clients map[string]clientEntry
	users   map[string]User
}

type clientEntry struct {
	Client
	introspectorOnly bool
}

func newDirectory(cfg Config) (*directory, error) {
	d := &directory{clients: map[string]clientEntry{}, users: map[string]User{}}
	add := func(c Client, introspectorOnly bool) error {
		if c.ID == "" {
			return errors.New("devidp: client with empty ID")
		}
		if _, dup := d.clients[c.ID]; dup {
			return fmt.Errorf("devidp: duplicate client %q", c.ID)
		}
		if c.Secret == "" {
			c.Secret = randomID()
		}
		c.Groups = slices.Clone(c.Groups)
		d.clients[c.ID] = clientEntry{Client: c, introspectorOnly: introspectorOnly}
		return nil
	}
	for _, c := range cfg.Clients {
		if err := add(c, false); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.Introspectors {
		if err := add(c, true); err != nil {
			return nil, err
		}
	}
	for _, u := range cfg.Users {
		if u.Subject == "" {
			return nil, errors.New("devidp: user with empty subject")
		}
		if _, dup := d.users[u.Subject]; dup {
			return nil, fmt.Errorf("devidp: duplicate user %q", u.Subject)
		}
		if _, dup := d.clients[u.Subject]; dup {
			return nil, fmt.Errorf("devidp: user %q has the ID of a client", u.Subject)
		}
		u.Groups = slices.Clone(u.Groups)
		d.users[u.Subject] = u
	}
	return d, nil
}

// authenticate checks a client secret in constant time. The error never
// contains the secret.
func (d *directory) authenticate(id, secret string) (clientEntry, error) {
	c, ok := d.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return clientEntry{}, errors.New("devidp: unknown client or wrong secret")
	}
	return c, nil
}

// claims returns the identity claims (groups, name, email) of a user or
// client, or nil for an unknown subject.
func (d *directory) claims(subject string) map[string]any {
	if u, ok := d.users[subject]; ok {
		return identityClaims(u.Groups, u.Name, u.Email)
	}
	if c, ok := d.clients[subject]; ok {
		return identityClaims(c.Groups, c.Name, "")
	}
	return nil
}

func identityClaims(groups []string, name, email string) map[string]any {
	c := map[string]any{"groups": append([]string{}, groups...)}
	if name != "" {
		c["name"] = name
	}
	if email != "" {
		c["email"] = email
	}
	return c
}

// opClient is the op.Client view of a Client: confidential, secret basic,
// JWT access tokens, no redirect-based flows.
type opClient struct {
	id       string
	grants   []oidc.GrantType
	lifetime time.Duration
}

func newOPClient(c clientEntry, lifetime time.Duration) *opClient {
	oc := &opClient{id: c.ID, lifetime: lifetime}
	if !c.introspectorOnly {
		oc.grants = []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange}
	}
	return oc
}

func (c *opClient) GetID() string                        { return c.id }
func (c *opClient) RedirectURIs() []string               { return nil }
func (c *opClient) PostLogoutRedirectURIs() []string     { return nil }
func (c *opClient) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodBasic }
func (c *opClient) ResponseTypes() []oidc.ResponseType   { return nil }
func (c *opClient) GrantTypes() []oidc.GrantType         { return c.grants }
func (c *opClient) LoginURL(string) string               { return "" }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c *opClient) DevMode() bool                        { return true }
func (c *opClient) IsScopeAllowed(string) bool           { return true }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
