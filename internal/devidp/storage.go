package devidp

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage implements op.Storage plus the optional client_credentials,
// token-exchange, JWT-profile and private-claims interfaces, in memory.
type storage struct {
	dir      *directory
	keys     *keyring
	audience string
	lifetime time.Duration

	mu     sync.Mutex
	issued map[string]*issuedToken // by jti
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.TokenExchangeStorage           = (*storage)(nil)
	_ op.JWTProfileTokenStorage         = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

// issuedToken is what the OP remembers of an access token it issued, for
// introspection and revocation.
type issuedToken struct {
	subject  string
	clientID string
	audience []string
	scopes   []string
	issuedAt time.Time
	expires  time.Time
	claims   map[string]any // groups, name, email, act
	revoked  bool
}

// clientCredentialsRequest is the op.TokenRequest of a client_credentials
// grant: the client is the subject, the token is for the configured audience.
type clientCredentialsRequest struct {
	clientID string
	audience []string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return r.audience }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

var errNoInteractiveFlows = errors.New("devidp: interactive (authorization code) flows are not supported")

// --- tokens -----------------------------------------------------------------

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	if jr, ok := req.(*oidc.JWTTokenRequest); ok {
		// A JWT-profile assertion's aud names this OP; the token it buys is
		// for the configured audience. CreateJWT reads the audience after
		// this call, so setting it here is what the token carries.
		jr.Audience = oidc.Audience{s.audience}
	}
	claims, err := s.privateClaims(req)
	if err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	t := &issuedToken{
		subject:  req.GetSubject(),
		audience: req.GetAudience(),
		scopes:   req.GetScopes(),
		issuedAt: now,
		expires:  now.Add(s.lifetime),
		claims:   claims,
	}
	switch r := req.(type) {
	case *clientCredentialsRequest:
		t.clientID = r.clientID
	case op.TokenExchangeRequest:
		t.clientID = r.GetClientID()
	case *oidc.JWTTokenRequest:
		t.clientID = r.Subject // op uses the subject as client_id for this grant
	}
	id := randomID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.issued) > 10000 {
		for k, v := range s.issued {
			if now.After(v.expires) {
				delete(s.issued, k)
			}
		}
	}
	s.issued[id] = t
	return id, t.expires, nil
}

// privateClaims computes the non-registered claims of an access token. For a
// token exchange they come from the subject token (so they are the original
// person's) and act nests the new actor around the subject's act; otherwise
// they come from the directory entry of the subject.
func (s *storage) privateClaims(req op.TokenRequest) (map[string]any, error) {
	ter, ok := req.(op.TokenExchangeRequest)
	if !ok {
		c := s.dir.claims(req.GetSubject())
		if c == nil {
			return nil, oidc.ErrInvalidGrant().WithDescription("unknown subject")
		}
		return c, nil
	}
	subj := ter.GetExchangeSubjectTokenClaims()
	out := map[string]any{}
	for _, k := range []string{"groups", "name", "email"} {
		if v, ok := subj[k]; ok {
			out[k] = v
		}
	}
	prev, hasPrev := subj["act"]
	switch actor := ter.GetExchangeActor(); {
	case actor != "":
		act := map[string]any{"sub": actor}
		if hasPrev {
			act["act"] = prev
		}
		out["act"] = act
	case hasPrev:
		out["act"] = prev
	}
	return out, nil
}

func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	return s.privateClaims(req)
}

func (s *storage) GetPrivateClaimsFromTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	return s.privateClaims(req)
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	return s.dir.claims(userID), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not supported")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// RevokeToken backs the RFC 7009 revocation endpoint: it revokes an access
// token by jti.
func (s *storage) RevokeToken(_ context.Context, tokenID, _, _ string) *oidc.Error {
	s.revoke(tokenID)
	return nil
}

func (s *storage) revoke(jti string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.issued[jti]; ok {
		t.revoked = true
	}
}

func (s *storage) isRevoked(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.issued[jti]
	return ok && t.revoked
}

// SetIntrospectionFromToken answers introspection: only unrevoked, unexpired
// tokens this OP issued are active (an error makes op answer active=false).
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.issued[tokenID]
	var snap issuedToken
	if ok {
		snap = *t
	}
	s.mu.Unlock()
	if !ok || snap.revoked || snap.subject != subject || time.Now().After(snap.expires) {
		return errors.New("devidp: token not active")
	}
	resp.Issuer = op.IssuerFromContext(ctx)
	resp.Subject = snap.subject
	resp.ClientID = snap.clientID
	resp.Audience = snap.audience
	resp.Scope = snap.scopes
	resp.TokenType = oidc.BearerToken
	resp.JWTID = tokenID
	resp.IssuedAt = oidc.FromTime(snap.issuedAt)
	resp.NotBefore = oidc.FromTime(snap.issuedAt)
	resp.Expiration = oidc.FromTime(snap.expires)
	resp.Claims = maps.Clone(snap.claims)
	return nil
}

// --- client_credentials ---------------------------------------------------

func (s *storage) ClientCredentials(_ context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.dir.authenticate(clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return newOPClient(c, s.lifetime), nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: clientID, audience: []string{s.audience}, scopes: scopes}, nil
}

// --- token exchange -------------------------------------------------------

func (s *storage) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	if c, ok := s.dir.clients[req.GetClientID()]; !ok || c.introspectorOnly {
		return oidc.ErrUnauthorizedClient().WithDescription("client may not exchange tokens")
	}
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	if req.GetRequestedTokenType() != oidc.AccessTokenType {
		return oidc.ErrInvalidRequest().WithDescription("only access tokens can be requested")
	}
	if s.isRevoked(req.GetExchangeSubjectTokenIDOrToken()) {
		return oidc.ErrInvalidGrant().WithDescription("subject_token is revoked")
	}
	if req.GetExchangeActor() != "" && s.isRevoked(req.GetExchangeActorTokenIDOrToken()) {
		return oidc.ErrInvalidGrant().WithDescription("actor_token is revoked")
	}
	return nil
}

func (s *storage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

func (s *storage) SetUserinfoFromTokenExchangeRequest(_ context.Context, ui *oidc.UserInfo, req op.TokenExchangeRequest) error {
	ui.Subject = req.GetSubject()
	return nil
}

// --- JWT profile (person tokens) --------------------------------------------

// GetKeyByIDAndClientID returns the dev-only assertion key for users only,
// so only PersonToken's assertions are accepted by the jwt-bearer grant.
func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	if _, ok := s.dir.users[clientID]; !ok || keyID != s.keys.assertionID {
		return nil, errors.New("devidp: no such key")
	}
	return &jose.JSONWebKey{Key: &s.keys.assertion.PublicKey, KeyID: keyID, Algorithm: string(jose.ES256), Use: "sig"}, nil
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) JWTProfileTokenType(context.Context, op.TokenRequest) (op.AccessTokenType, error) {
	return op.AccessTokenTypeJWT, nil
}

// --- clients, userinfo ------------------------------------------------------

func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.dir.clients[clientID]
	if !ok {
		return nil, errors.New("devidp: unknown client")
	}
	return newOPClient(c, s.lifetime), nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, clientSecret string) error {
	_, err := s.dir.authenticate(clientID, clientSecret)
	return err
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, _, subject, _ string) error {
	ui.Subject = subject
	if u, ok := s.dir.users[subject]; ok {
		ui.Name = u.Name
		ui.Email = u.Email
	}
	return nil
}

// --- keys -------------------------------------------------------------------

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return s.keys.signingKey(), nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return s.keys.keySet(), nil
}

func (s *storage) Health(context.Context) error { return nil }

// --- authorization code flow: not supported ---------------------------------

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNoInteractiveFlows
}

func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNoInteractiveFlows
}

func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNoInteractiveFlows
}

func (s *storage) SaveAuthCode(context.Context, string, string) error { return errNoInteractiveFlows }

func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }
