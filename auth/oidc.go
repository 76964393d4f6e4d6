package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/pgwarden/pgwarden/session"
)

// Defaults of OIDCConfig.
const (
	DefaultClockSkew      = 30 * time.Second
	MaxClockSkew          = 5 * time.Minute
	DefaultMaxTokenSize   = 16 << 10
	DefaultRecheck        = time.Minute
	maxDelegationDepth    = 16
	jwksMinRefresh        = 10 * time.Second
	jwksMaxAge            = time.Hour
	discoveryRetry        = 5 * time.Second
	idpTimeout            = 15 * time.Second
	oidcMethodPassword    = "oidc"
	oidcMethodOAuthBearer = "oauthbearer"
)

// DefaultAlgorithms are the signature algorithms OIDC accepts unless told
// otherwise: asymmetric ones only.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// OIDCConfig configures an OIDC authenticator. Issuer and Audience are
// required; every other field has a safe zero value.
type OIDCConfig struct {
	// Issuer is the OpenID Provider's issuer URL; its discovery document
	// (Issuer + "/.well-known/openid-configuration") names the key set.
	// Tokens must carry exactly this "iss".
	Issuer string
	// Audience must be among the token's "aud" values: the name the IdP
	// gives this gateway. A token minted for another service is refused.
	Audience string
	// Algorithms are the accepted signature algorithms; empty means
	// DefaultAlgorithms. "none" and the HMAC algorithms (HS256, ...) are
	// refused when the authenticator is built: a verifier that accepts HMAC
	// can be fooled with a token "signed" with the IdP's public key.
	Algorithms []string
	// ClockSkew is the tolerance on "nbf" and "iat", for an IdP whose clock
	// runs ahead of the gateway's. Zero means DefaultClockSkew; at most
	// MaxClockSkew. "exp" gets no tolerance: a token is refused from its
	// expiry on, and its sessions end then (see ExpiryGrace).
	ClockSkew time.Duration
	// ExpiryGrace lets a session outlive its token by this much: the
	// session ends at "exp" + ExpiryGrace. Zero ends it at "exp". A token
	// is never accepted at login after its "exp".
	ExpiryGrace time.Duration
	// Claims says which claims hold the identity.
	Claims ClaimNames
	// MaxTokenSize is the longest token accepted, in bytes; zero means
	// DefaultMaxTokenSize. Longer tokens are refused before parsing.
	MaxTokenSize int
	// OAuthBearer chooses when to offer SASL OAUTHBEARER (PostgreSQL 18's
	// "oauth" method) instead of asking for the token as a password:
	// "" or "auto" offers it when the client asked with pgwarden.auth=
	// oauthbearer, "always" always (clients without OAUTHBEARER support
	// cannot connect), "never" never.
	OAuthBearer string
	// Introspection, when set, checks tokens with the IdP (RFC 7662) at
	// login and periodically during the session, so that a token the IdP
	// revoked ends the sessions that use it.
	Introspection *Introspection
	// HTTPClient is used for discovery, keys and introspection; nil means
	// a client with a 10 second timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// ClaimNames says which token claims become the identity's fields. A name
// with dots reaches into nested objects ("realm_access.roles"). Empty
// fields take their default.
type ClaimNames struct {
	// Subject defaults to "sub".
	Subject string
	// Name defaults to "name" (falling back to "preferred_username").
	Name string
	// Email defaults to "email".
	Email string
	// Groups defaults to "groups"; the claim may be an array of strings or
	// a single space-separated string.
	Groups string
}

// Introspection configures RFC 7662 token introspection.
type Introspection struct {
	// URL is the introspection endpoint; empty means the one the issuer's
	// discovery document names.
	URL string
	// ClientID and ClientSecret authenticate the gateway to the endpoint
	// (HTTP Basic).
	ClientID     string
	ClientSecret session.Secret
	// Interval is how often a live session's token is checked again; zero
	// means DefaultRecheck.
	Interval time.Duration
}

// OIDC authenticates clients that present an OAuth 2.0 access token or an
// OpenID Connect ID token (a signed JWT), either as their password or with
// SASL OAUTHBEARER. It checks the signature against the issuer's published
// keys (fetched by discovery, cached, fetched again when the IdP rotates),
// the issuer, the audience, "exp", "nbf" and "iat" with a small clock skew,
// and the algorithm against an allow-list; it reads the RFC 8693
// delegation chain from nested "act" claims. Identities expire with their
// token (plus ExpiryGrace), so the proxy ends the session then.
//
// Discovery happens on first use and is retried on later logins if the IdP
// was unreachable; until it succeeds, clients are refused. An OIDC is safe
// for concurrent use.
type OIDC struct {
	cfg  OIDCConfig
	now  func() time.Time
	http *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	introURL string
	lastTry  time.Time
	lastErr  error
}

// NewOIDC checks cfg and builds the authenticator. It does not contact the
// IdP; the first login does.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: OIDC needs an issuer")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: OIDC needs an audience (the name the IdP gives this gateway)")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			return nil, errors.New(`auth: OIDC algorithm "none" is never accepted`)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			return nil, fmt.Errorf("auth: OIDC algorithm %q is refused: HMAC tokens can be forged by anyone who knows the IdP's public key", a)
		case !slices.Contains(DefaultAlgorithms, a):
			return nil, fmt.Errorf("auth: unknown OIDC signature algorithm %q", a)
		}
	}
	switch {
	case cfg.ClockSkew == 0:
		cfg.ClockSkew = DefaultClockSkew
	case cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew:
		return nil, fmt.Errorf("auth: OIDC clock skew must be between 0 and %s", MaxClockSkew)
	}
	if cfg.ExpiryGrace < 0 {
		return nil, errors.New("auth: OIDC expiry grace cannot be negative")
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = DefaultMaxTokenSize
	}
	switch cfg.OAuthBearer {
	case "":
		cfg.OAuthBearer = "auto"
	case "auto", "always", "never":
	default:
		return nil, fmt.Errorf("auth: OIDC oauth_bearer must be auto, always or never, not %q", cfg.OAuthBearer)
	}
	if in := cfg.Introspection; in != nil {
		if in.ClientID == "" {
			return nil, errors.New("auth: OIDC introspection needs a client id")
		}
		if in.Interval == 0 {
			in.Interval = DefaultRecheck
		}
	}
	o := &OIDC{cfg: cfg, now: cfg.Now, http: cfg.HTTPClient}
	if o.now == nil {
		o.now = time.Now
	}
	if o.http == nil {
		o.http = &http.Client{Timeout: 10 * time.Second}
	}
	return o, nil
}

// Authenticate gets the token from the client (as a password, or with SASL
// OAUTHBEARER; see OIDCConfig.OAuthBearer) and verifies it.
func (o *OIDC) Authenticate(ctx context.Context, req *Request) (session.Identity, error) {
	if o.offersOAuthBearer(req) {
		return o.oauthBearer(ctx, req)
	}
	token, err := req.Client.CleartextPassword(ctx)
	if err != nil {
		return session.Identity{}, err
	}
	if !looksLikeJWT(token.Reveal()) {
		return session.Identity{}, fmt.Errorf("%w: the password is not a token", ErrNotApplicable)
	}
	return o.login(ctx, req, token, oidcMethodPassword)
}

func (o *OIDC) offersOAuthBearer(req *Request) bool {
	switch o.cfg.OAuthBearer {
	case "always":
		return true
	case "never":
		return false
	}
	return req.Method == MethodOAuthBearer
}

// login verifies the token, introspects it when configured, and asks the
// proxy to introspect it again during the session.
func (o *OIDC) login(ctx context.Context, req *Request, token session.Secret, method string) (session.Identity, error) {
	id, err := o.Verify(ctx, token)
	if err != nil {
		return session.Identity{}, err
	}
	id.Method = method
	if in := o.cfg.Introspection; in != nil {
		if err := o.introspect(ctx, token); err != nil {
			return session.Identity{}, err
		}
		req.RecheckEvery(in.Interval, func(ctx context.Context) error { return o.introspect(ctx, token) })
	}
	return id, nil
}

// Verify checks a token and returns the identity it proves. Errors about
// the token wrap ErrInvalidCredentials and never contain it; an IdP that
// cannot be reached gives another error.
func (o *OIDC) Verify(ctx context.Context, token session.Secret) (session.Identity, error) {
	raw := token.Reveal()
	switch {
	case len(raw) > o.cfg.MaxTokenSize:
		return session.Identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidCredentials, o.cfg.MaxTokenSize)
	case strings.IndexByte(raw, 0) >= 0:
		return session.Identity{}, fmt.Errorf("%w: token contains a NUL byte", ErrInvalidCredentials)
	case !looksLikeJWT(raw):
		return session.Identity{}, fmt.Errorf("%w: not a signed JWT in compact form", ErrInvalidCredentials)
	}
	v, err := o.verifierFor(ctx)
	if err != nil {
		return session.Identity{}, err
	}
	t, err := v.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return session.Identity{}, err
		}
		return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	var times struct {
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
		Iat *float64 `json:"iat"`
	}
	if err := t.Claims(&times); err != nil {
		return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	now, skew := o.now(), o.cfg.ClockSkew
	switch {
	case times.Exp == nil:
		return session.Identity{}, fmt.Errorf("%w: token has no expiry", ErrInvalidCredentials)
	case !now.Before(unixTime(*times.Exp)):
		return session.Identity{}, fmt.Errorf("%w: token expired at %s", ErrInvalidCredentials, unixTime(*times.Exp).UTC().Format(time.RFC3339))
	case times.Nbf != nil && now.Add(skew).Before(unixTime(*times.Nbf)):
		return session.Identity{}, fmt.Errorf("%w: token not valid before %s", ErrInvalidCredentials, unixTime(*times.Nbf).UTC().Format(time.RFC3339))
	case times.Iat != nil && now.Add(skew).Before(unixTime(*times.Iat)):
		return session.Identity{}, fmt.Errorf("%w: token issued in the future", ErrInvalidCredentials)
	}
	claims, err := claimsOf(t)
	if err != nil {
		return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	id, err := identityFromClaims(claims, t.Issuer, o.cfg.Claims)
	if err != nil {
		return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	id.ExpiresAt = unixTime(*times.Exp).Add(o.cfg.ExpiryGrace)
	return id, nil
}

// verifierFor returns the verifier, running discovery first when it has
// not succeeded yet (at most once per discoveryRetry).
func (o *OIDC) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	if !o.lastTry.IsZero() && o.now().Sub(o.lastTry) < discoveryRetry {
		return nil, fmt.Errorf("auth: OIDC discovery at %s failed: %w", o.cfg.Issuer, o.lastErr)
	}
	o.lastTry = o.now()
	// Not the login's context: a client that gives up must not make
	// discovery fail for everyone until the next retry.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idpTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(dctx, o.http), o.cfg.Issuer)
	if err != nil {
		o.lastErr = err
		return nil, fmt.Errorf("auth: OIDC discovery at %s failed: %w", o.cfg.Issuer, err)
	}
	var meta struct {
		JWKS          string `json:"jwks_uri"`
		Introspection string `json:"introspection_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		o.lastErr = errors.New("the discovery document names no jwks_uri")
		return nil, fmt.Errorf("auth: OIDC discovery at %s: %w", o.cfg.Issuer, o.lastErr)
	}
	algs := make([]jose.SignatureAlgorithm, len(o.cfg.Algorithms))
	for i, a := range o.cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	ks := &keySet{url: meta.JWKS, client: o.http, algs: algs, minRefresh: jwksMinRefresh, maxAge: jwksMaxAge, now: o.now}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, ks, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: o.cfg.Algorithms,
		SkipExpiryCheck:      true, // checked by Verify, with the configured skew
	})
	if in := o.cfg.Introspection; in != nil {
		o.introURL = in.URL
		if o.introURL == "" {
			o.introURL = meta.Introspection
		}
	}
	return o.verifier, nil
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// non-empty base64url parts (an unsigned "alg: none" token has an empty
// third part and is refused here already).
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}
