package devidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// DefaultAudience is the audience put in access tokens when Config.Audience
// is empty.
const DefaultAudience = "pgwarden"

// DefaultTokenLifetime is the access-token lifetime used when
// Config.TokenLifetime is zero or negative.
const DefaultTokenLifetime = time.Hour

// Config configures a Provider. Its zero value is usable: a provider with
// the default audience and lifetime and no clients or users.
type Config struct {
	// Audience is put in the aud claim of every access token the token
	// endpoint issues (unless a token-exchange request names another
	// audience). Empty means DefaultAudience.
	Audience string
	// TokenLifetime is the lifetime of issued access tokens and of the
	// claim sets returned by Provider.Claims. Zero means
	// DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Clients are the workloads and agents that may use client_credentials
	// and token exchange, and may also call introspection.
	Clients []Client
	// Users are the people who can get a token with Provider.PersonToken.
	Users []User
	// Introspectors are resource servers that may only authenticate (client
	// secret basic) to the introspection endpoint; they cannot get tokens.
	Introspectors []Client
}

// Client is an OAuth client authenticating with a client secret
// (client_secret_basic): a workload or agent, or, in Config.Introspectors,
// a resource server.
type Client struct {
	// ID is the client ID and the sub of its client_credentials tokens.
	ID string
	// Secret is the client secret. If empty, Start generates a random one
	// that is only usable through the Provider's helper methods.
	Secret string
	// Groups is copied to the groups claim of the client's tokens.
	Groups []string
	// Name is copied to the name claim of the client's tokens (if set).
	Name string
}

// User is a person. Its tokens come from Provider.PersonToken.
type User struct {
	// Subject is the sub of the person's tokens.
	Subject string
	// Name is copied to the name claim (if set).
	Name string
	// Email is copied to the email claim (if set).
	Email string
	// Groups is copied to the groups claim.
	Groups []string
}

// Provider is a running development OpenID Provider. Its methods are safe
// for concurrent use.
type Provider struct {
	cfg     Config
	issuer  string
	store   *storage
	keys    *keyring
	op      *op.Provider
	srv     *http.Server
	http    *http.Client
	closing sync.Once
	done    chan struct{}
}

// Start starts a provider listening on 127.0.0.1 on a random port, with
// issuer http://127.0.0.1:<port>. It returns once the provider accepts
// connections. The provider is closed by Close or when ctx is done.
// Start fails on duplicate or empty client IDs or user subjects.
func Start(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	keys, err := newKeyring()
	if err != nil {
		return nil, err
	}
	dir, err := newDirectory(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devidp: listen: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	store := &storage{dir: dir, keys: keys, audience: cfg.Audience, lifetime: cfg.TokenLifetime, issued: map[string]*issuedToken{}}

	opCfg := &op.Config{SupportedScopes: []string{oidc.ScopeOpenID}}
	if _, err := rand.Read(opCfg.CryptoKey[:]); err != nil {
		ln.Close()
		return nil, err
	}
	provider, err := op.NewProvider(opCfg, store, op.StaticIssuer(issuer),
		op.WithAllowInsecure(),
		op.WithHttpInterceptors(defaultExchangeAudience(cfg.Audience)),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devidp: %w", err)
	}

	p := &Provider{
		cfg:    cfg,
		issuer: issuer,
		store:  store,
		keys:   keys,
		op:     provider,
		srv:    &http.Server{Handler: provider, ReadHeaderTimeout: 5 * time.Second},
		http:   &http.Client{Timeout: 10 * time.Second},
		done:   make(chan struct{}),
	}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.Close()
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.Close()
		case <-p.done:
		}
	}()
	return p, nil
}

// Close stops the HTTP server and closes its connections. It is idempotent.
func (p *Provider) Close() {
	p.closing.Do(func() {
		close(p.done)
		_ = p.srv.Close()
	})
}

// Issuer returns the issuer, http://127.0.0.1:<port>, exactly as it appears
// in discovery and in the iss claim.
func (p *Provider) Issuer() string { return p.issuer }

// Audience returns the audience put in issued access tokens.
func (p *Provider) Audience() string { return p.cfg.Audience }

// TokenURL returns the absolute URL of the token endpoint.
func (p *Provider) TokenURL() string { return p.op.TokenEndpoint().Absolute(p.issuer) }

// IntrospectionURL returns the absolute URL of the RFC 7662 introspection
// endpoint.
func (p *Provider) IntrospectionURL() string {
	return p.op.IntrospectionEndpoint().Absolute(p.issuer)
}

// JWKSURL returns the absolute URL of the JWKS (the jwks_uri of discovery).
func (p *Provider) JWKSURL() string { return p.op.KeysEndpoint().Absolute(p.issuer) }

// defaultExchangeAudience makes a token-exchange request without an
// audience parameter ask for aud, so that exchanged tokens are for the
// configured audience by default (RFC 8693 lets the server pick one).
func defaultExchangeAudience(aud string) op.HttpInterceptor {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == op.DefaultEndpoints.Token.Relative() {
				if err := r.ParseForm(); err == nil &&
					r.Form.Get("grant_type") == string(oidc.GrantTypeTokenExchange) &&
					len(r.Form["audience"]) == 0 {
					r.Form.Set("audience", aud)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
