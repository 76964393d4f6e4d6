package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

// These tests run a real OpenID Provider (internal/devidp) on loopback:
// tokens come from its token endpoint, keys from its JWKS, revocation from
// its introspection endpoint. Forged tokens are signed with its keys
// (devidp.Sign) or with keys it never published.

const (
	oidcAudience       = "pgwarden"
	oidcIntrospector   = "pgwarden-rs"
	oidcIntrospectorPW = "rs-secret"
	oidcDiscoveryPath  = "/.well-known/openid-configuration"
)

// oidcIdP starts a provider with one person (alice), three workloads that
// can act for others, and an introspector. Tokens live an hour, so that
// tests can move the gateway's clock forward without expiring them.
func oidcIdP(t testing.TB) *devidp.Provider {
	t.Helper()
	p, err := devidp.Start(context.Background(), devidp.Config{
		Audience:      oidcAudience,
		TokenLifetime: time.Hour,
		Users: []devidp.User{
			{Subject: "alice", Name: "Alice A.", Email: "alice@example.test", Groups: []string{"dba", "dev"}},
		},
		Clients: []devidp.Client{
			{ID: "ci-job", Secret: "ci-secret", Groups: []string{"ci"}, Name: "CI job"},
			{ID: "agent", Secret: "agent-secret", Groups: []string{"agents"}},
			{ID: "sub-agent", Secret: "sub-secret"},
		},
		Introspectors: []devidp.Client{{ID: oidcIntrospector, Secret: oidcIntrospectorPW}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// newOIDCFor builds the gateway's authenticator for p; change adjusts the
// configuration first.
func newOIDCFor(t testing.TB, p *devidp.Provider, change func(*auth.OIDCConfig)) *auth.OIDC {
	t.Helper()
	cfg := auth.OIDCConfig{Issuer: p.Issuer(), Audience: oidcAudience}
	if change != nil {
		change(&cfg)
	}
	a, err := auth.NewOIDC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tokenConv is a client that sends token as its password when asked. It
// refuses SASL (and records that it was offered).
type tokenConv struct {
	token     string
	err       error
	asked     int
	saslStart int
}

func (c *tokenConv) CleartextPassword(context.Context) (session.Secret, error) {
	c.asked++
	if c.err != nil {
		return session.Secret{}, c.err
	}
	return session.NewSecret(c.token), nil
}

func (c *tokenConv) SASLStart(context.Context, []string) (string, []byte, error) {
	c.saslStart++
	return "", nil, errors.New("tokenConv: SASL not supported")
}

func (c *tokenConv) SASLContinue(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("tokenConv: SASL not supported")
}

func (c *tokenConv) SASLFinal(context.Context, []byte) error {
	return errors.New("tokenConv: SASL not supported")
}

func (c *tokenConv) TLSServerEndPoint() []byte { return nil }

// oidcLogin authenticates a client that sends token as its password.
func oidcLogin(t testing.TB, a auth.Authenticator, token string) (session.Identity, *auth.Request, error) {
	t.Helper()
	conv := &tokenConv{token: token}
	req := &auth.Request{User: "whoever", Database: "app", Client: conv}
	id, err := a.Authenticate(t.Context(), req)
	if conv.asked != 1 {
		t.Errorf("the password was asked for %d times, want once", conv.asked)
	}
	if conv.saslStart != 0 {
		t.Errorf("SASL was started for a password login")
	}
	return id, req, err
}

// mustLogin authenticates and fails the test on an error.
func mustLogin(t testing.TB, a auth.Authenticator, token string) (session.Identity, *auth.Request) {
	t.Helper()
	id, req, err := oidcLogin(t, a, token)
	if err != nil {
		t.Fatalf("login refused: %v", err)
	}
	return id, req
}

// checkNoToken fails when err quotes the token or its signature.
func checkNoToken(t testing.TB, err error, token string) {
	t.Helper()
	if err == nil || token == "" {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, token) {
		t.Errorf("error quotes the token: %v", err)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) >= 16 && strings.Contains(msg, parts[2]) {
		t.Errorf("error quotes the token's signature: %v", err)
	}
}

// mustTok(t)(p.ClientToken(...)) returns the token, failing the test on an
// error.
func mustTok(t testing.TB) func(string, error) string {
	return func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func expOf(t testing.TB, token string) time.Time {
	t.Helper()
	c, err := devidp.DecodeClaims(token)
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := c["exp"].(float64)
	if !ok {
		t.Fatalf("token has no numeric exp: %v", c["exp"])
	}
	return time.Unix(int64(exp), 0)
}

// oidcClock is a clock for the gateway that runs with real time plus an
// offset, so that tokens from the IdP stay valid while tests jump over the
// key cache's refresh interval.
type oidcClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *oidcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *oidcClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// idpTransport counts the gateway's requests to the IdP by path, and can
// simulate an IdP that is down, or one endpoint that fails.
type idpTransport struct {
	mu       sync.Mutex
	hits     map[string]int
	down     bool
	failPath string // answered with 503
}

func (tr *idpTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	if tr.hits == nil {
		tr.hits = map[string]int{}
	}
	tr.hits[r.URL.Path]++
	down, fail := tr.down, tr.failPath != "" && r.URL.Path == tr.failPath
	tr.mu.Unlock()
	switch {
	case down:
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errors.New("idpTransport: connection refused")
	case fail:
		if r.Body != nil {
			r.Body.Close()
		}
		return &http.Response{
			StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody, Request: r,
		}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (tr *idpTransport) count(path string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.hits[path]
}

func (tr *idpTransport) set(f func(*idpTransport)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	f(tr)
}

func pathOf(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Path
}

// closedURL returns an http URL on loopback where nothing listens.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func b64url(v any) string {
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signWith signs claims with a key the IdP never published, under kid.
func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomKid() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// nestedAct builds an "act" claim of depth n: agent-0 acted first, and
// agent-(n-1), outermost, is on the wire.
func nestedAct(n int) any {
	var act any
	for i := range n {
		m := map[string]any{"sub": fmt.Sprintf("agent-%d", i)}
		if act != nil {
			m["act"] = act
		}
		act = m
	}
	return act
}

func TestOIDCClientToken(t *testing.T) {
	p := oidcIdP(t)
	a := newOIDCFor(t, p, nil)
	tok := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
	id, req := mustLogin(t, a, tok)

	if id.Subject != "ci-job" || id.Issuer != p.Issuer() || id.Name != "CI job" || id.Method != "oidc" {
		t.Errorf("identity = %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"ci"}) {
		t.Errorf("groups = %q, want [ci]", id.Groups)
	}
	if exp := expOf(t, tok); !id.ExpiresAt.Equal(exp) {
		t.Errorf("ExpiresAt = %v, want the token's exp %v", id.ExpiresAt, exp)
	}
	if id.Depth() != 0 || id.Presenter() != (session.Actor{Subject: "ci-job", Issuer: p.Issuer()}) {
		t.Errorf("a direct client has chain %+v, presenter %+v", id.Chain, id.Presenter())
	}
	raw, _ := devidp.DecodeClaims(tok)
	if jti, ok := id.Claims.Lookup("jti"); !ok || jti != raw["jti"] || jti == "" {
		t.Errorf("claims jti = %v, want %v (claims %s)", jti, raw["jti"], id.Claims)
	}
	if cid, _ := id.Claims.Lookup("client_id"); cid != "ci-job" {
		t.Errorf("claims client_id = %v", cid)
	}
	if strings.Contains(id.Claims.String(), strings.Split(tok, ".")[2]) {
		t.Error("the identity's claims hold the token's signature")
	}
	if len(req.Rechecks()) != 0 {
		t.Errorf("rechecks without introspection: %d", len(req.Rechecks()))
	}

	// Verify gives the same identity, without a method.
	v, err := a.Verify(t.Context(), session.NewSecret(tok))
	if err != nil {
		t.Fatal(err)
	}
	if v.Subject != id.Subject || !v.ExpiresAt.Equal(id.ExpiresAt) || v.Method != "" {
		t.Errorf("Verify = %+v", v)
	}
}

func TestOIDCPersonToken(t *testing.T) {
	p := oidcIdP(t)
	a := newOIDCFor(t, p, nil)
	tok := mustTok(t)(p.PersonToken(t.Context(), "alice"))
	id, _ := mustLogin(t, a, tok)
	if id.Subject != "alice" || id.Issuer != p.Issuer() || id.Name != "Alice A." || id.Email != "alice@example.test" {
		t.Errorf("identity = %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"dba", "dev"}) || !id.InGroup("dba") {
		t.Errorf("groups = %q", id.Groups)
	}
	if id.Depth() != 0 || id.Presenter().Subject != "alice" {
		t.Errorf("chain = %+v", id.Chain)
	}
}

func TestOIDCDelegationChain(t *testing.T) {
	p := oidcIdP(t)
	a := newOIDCFor(t, p, nil)
	toks, err := p.Chain(t.Context(), "alice", "ci-job", "agent", "sub-agent")
	if err != nil {
		t.Fatal(err)
	}
	iss := p.Issuer()
	want := [][]session.Actor{
		nil,
		{{Subject: "ci-job", Issuer: iss}},
		{{Subject: "ci-job", Issuer: iss}, {Subject: "agent", Issuer: iss}},
		{{Subject: "ci-job", Issuer: iss}, {Subject: "agent", Issuer: iss}, {Subject: "sub-agent", Issuer: iss}},
	}
	for i, tok := range toks {
		id, _ := mustLogin(t, a, tok)
		if id.Subject != "alice" || id.Issuer != iss || !slices.Equal(id.Groups, []string{"dba", "dev"}) {
			t.Errorf("hop %d: identity %+v", i, id)
		}
		if !slices.Equal(id.Chain, want[i]) {
			t.Errorf("hop %d: chain = %+v, want %+v", i, id.Chain, want[i])
		}
	}
	id, _ := mustLogin(t, a, toks[3])
	if id.Depth() != 3 {
		t.Errorf("Depth = %d, want 3", id.Depth())
	}
	if pr := id.Presenter(); pr.Subject != "sub-agent" || pr.Issuer != iss {
		t.Errorf("Presenter = %+v, want sub-agent", pr)
	}
	for _, s := range []string{"alice", "ci-job", "agent", "sub-agent"} {
		if !id.Involves(iss, s) {
			t.Errorf("identity does not involve %s", s)
		}
	}
	if id.Involves("https://other.example", "agent") {
		t.Error("identity involves an actor of another issuer")
	}
}

func TestOIDCActorIssuerAndDepthLimit(t *testing.T) {
	p := oidcIdP(t)
	a := newOIDCFor(t, p, nil)

	// An actor vouched for by another issuer keeps it.
	c := p.Claims("alice")
	c["act"] = map[string]any{"sub": "bot", "iss": "https://agents.example", "act": map[string]any{"sub": "ci-job"}}
	id, _ := mustLogin(t, a, mustTok(t)(p.Sign(c)))
	want := []session.Actor{{Subject: "ci-job", Issuer: p.Issuer()}, {Subject: "bot", Issuer: "https://agents.example"}}
	if !slices.Equal(id.Chain, want) {
		t.Errorf("chain = %+v, want %+v", id.Chain, want)
	}

	// 16 nested actors are accepted, in order; 17 are not.
	c = p.Claims("alice")
	c["act"] = nestedAct(16)
	id, _ = mustLogin(t, a, mustTok(t)(p.Sign(c)))
	if id.Depth() != 16 || id.Chain[0].Subject != "agent-0" || id.Presenter().Subject != "agent-15" {
		t.Errorf("16-deep chain: depth %d, chain %+v", id.Depth(), id.Chain)
	}
	c["act"] = nestedAct(17)
	tok := mustTok(t)(p.Sign(c))
	_, _, err := oidcLogin(t, a, tok)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("17-deep chain: err = %v, want ErrInvalidCredentials", err)
	}
	checkNoToken(t, err, tok)
}

// TestOIDCRefusesBadTokens checks each way a token can be wrong, both
// through Authenticate (the token as a password) and Verify. Verify
// refuses everything with ErrInvalidCredentials; Authenticate passes
// passwords that do not have the shape of a signed JWT (three non-empty
// base64url parts) to the next authenticator of a Chain with
// ErrNotApplicable.
func TestOIDCRefusesBadTokens(t *testing.T) {
	p := oidcIdP(t)
	ctx := t.Context()
	now := time.Now()
	signed := func(change func(map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := p.Claims("alice")
			change(c)
			return mustTok(t)(p.Sign(c))
		}
	}
	good := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	goodParts := strings.Split(good, ".")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		token func(t *testing.T) string
		// notApplicable: Authenticate says ErrNotApplicable (the password
		// is not shaped like a JWT); otherwise ErrInvalidCredentials.
		notApplicable bool
	}{
		{name: "expired beyond the skew", token: signed(func(c map[string]any) {
			c["exp"] = now.Add(-31 * time.Second).Unix()
			c["iat"], c["nbf"] = now.Add(-time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})},
		{name: "expired long ago", token: signed(func(c map[string]any) {
			c["exp"] = now.Add(-24 * time.Hour).Unix()
			c["iat"], c["nbf"] = now.Add(-25*time.Hour).Unix(), now.Add(-25*time.Hour).Unix()
		})},
		{name: "not yet valid (nbf) beyond the skew", token: signed(func(c map[string]any) {
			c["nbf"] = now.Add(2 * time.Minute).Unix()
		})},
		{name: "issued in the future beyond the skew", token: signed(func(c map[string]any) {
			c["iat"] = now.Add(2 * time.Minute).Unix()
		})},
		{name: "no exp", token: signed(func(c map[string]any) { delete(c, "exp") })},
		{name: "exp is a string", token: signed(func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) })},
		{name: "wrong issuer", token: signed(func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{name: "issuer with a trailing slash", token: signed(func(c map[string]any) { c["iss"] = p.Issuer() + "/" })},
		{name: "no issuer", token: signed(func(c map[string]any) { delete(c, "iss") })},
		{name: "wrong audience", token: signed(func(c map[string]any) { c["aud"] = []string{"another-service"} })},
		{name: "wrong audience as a string", token: signed(func(c map[string]any) { c["aud"] = "another-service" })},
		{name: "no audience", token: signed(func(c map[string]any) { delete(c, "aud") })},
		{name: "no subject", token: signed(func(c map[string]any) { delete(c, "sub") })},
		{name: "subject is a number", token: signed(func(c map[string]any) { c["sub"] = 42 })},
		{name: "NUL in the subject", token: signed(func(c map[string]any) { c["sub"] = "alice\x00admin" })},
		{name: "groups is a number", token: signed(func(c map[string]any) { c["groups"] = 7 })},
		{name: "groups hold a number", token: signed(func(c map[string]any) { c["groups"] = []any{"dba", 7} })},
		{name: "act is a string", token: signed(func(c map[string]any) { c["act"] = "x" })},
		{name: "act without subject", token: signed(func(c map[string]any) { c["act"] = map[string]any{"iss": p.Issuer()} })},
		{name: "nested act malformed", token: signed(func(c map[string]any) { c["act"] = map[string]any{"sub": "agent", "act": []any{"x"}} })},
		{name: "act deeper than 16", token: signed(func(c map[string]any) { c["act"] = nestedAct(17) })},
		{name: "alg none, no signature", notApplicable: true, token: func(t *testing.T) string {
			return b64url(`{"alg":"none","typ":"JWT"}`) + "." + goodParts[1] + "."
		}},
		{name: "alg none, junk signature", token: func(t *testing.T) string {
			return b64url(`{"alg":"none","typ":"JWT"}`) + "." + goodParts[1] + "." + b64url("junk")
		}},
		{name: "alg none with the IdP's kid and a real signature", token: func(t *testing.T) string {
			return b64url(map[string]string{"alg": "none", "typ": "JWT", "kid": p.KeyID()}) + "." + goodParts[1] + "." + goodParts[2]
		}},
		{name: "HS256 keyed with the IdP's public key", token: func(t *testing.T) string {
			c := p.Claims("alice")
			return signWith(t, jose.HS256, p.PublicKeyPEM(), p.KeyID(), c)
		}},
		{name: "HS256 keyed with the IdP's public key, no kid", token: func(t *testing.T) string {
			return signWith(t, jose.HS256, p.PublicKeyPEM(), "", p.Claims("alice"))
		}},
		{name: "unknown kid (devidp)", token: func(t *testing.T) string {
			return mustTok(t)(p.SignWithUnknownKey(p.Claims("alice")))
		}},
		{name: "own key posing as the IdP's kid", token: func(t *testing.T) string {
			return signWith(t, jose.RS256, rsaKey, p.KeyID(), p.Claims("alice"))
		}},
		{name: "own key embedded in the header (jwk)", token: func(t *testing.T) string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(p.Claims("alice"))
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(mustB64(t, strings.Split(tok, ".")[0])), `"jwk"`) {
				t.Fatal("no jwk in the header")
			}
			return tok
		}},
		{name: "own key without kid", token: func(t *testing.T) string {
			return signWith(t, jose.RS256, rsaKey, "", p.Claims("alice"))
		}},
		{name: "RS256 header swapped to PS256", token: func(t *testing.T) string {
			return b64url(map[string]string{"alg": "PS256", "typ": "JWT", "kid": p.KeyID()}) + "." + goodParts[1] + "." + goodParts[2]
		}},
		{name: "tampered payload (subject)", token: func(t *testing.T) string {
			c, _ := devidp.DecodeClaims(good)
			c["sub"] = "alice"
			return goodParts[0] + "." + b64url(c) + "." + goodParts[2]
		}},
		{name: "tampered payload (groups)", token: func(t *testing.T) string {
			c, _ := devidp.DecodeClaims(good)
			c["groups"] = []string{"ci", "dba"}
			return goodParts[0] + "." + b64url(c) + "." + goodParts[2]
		}},
		{name: "signature of another token", token: func(t *testing.T) string {
			other := strings.Split(mustTok(t)(p.PersonToken(ctx, "alice")), ".")
			return other[0] + "." + other[1] + "." + goodParts[2]
		}},
		{name: "truncated signature", token: func(t *testing.T) string {
			return good[:len(good)-4]
		}},
		{name: "over MaxTokenSize", token: signed(func(c map[string]any) {
			c["pad"] = strings.Repeat("x", auth.DefaultMaxTokenSize)
		})},
		{name: "NUL byte appended", notApplicable: true, token: func(t *testing.T) string { return good + "\x00" }},
		{name: "NUL byte inside", notApplicable: true, token: func(t *testing.T) string {
			return goodParts[0] + "." + goodParts[1] + "\x00." + goodParts[2]
		}},
		{name: "JWE-shaped five parts", notApplicable: true, token: func(t *testing.T) string {
			return b64url(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"`+p.KeyID()+`"}`) + "." + b64url("key") + "." + b64url("iv") + "." + goodParts[1] + "." + b64url("tag")
		}},
		{name: "JSON serialization", notApplicable: true, token: func(t *testing.T) string {
			b, _ := json.Marshal(map[string]string{"protected": goodParts[0], "payload": goodParts[1], "signature": goodParts[2]})
			return string(b)
		}},
		{name: "padded base64", notApplicable: true, token: func(t *testing.T) string { return good + "==" }},
		{name: "Bearer prefix", notApplicable: true, token: func(t *testing.T) string { return "Bearer " + good }},
		{name: "empty", notApplicable: true, token: func(t *testing.T) string { return "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newOIDCFor(t, p, nil)
			tok := tc.token(t)

			_, err := a.Verify(ctx, session.NewSecret(tok))
			if !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("Verify: err = %v, want ErrInvalidCredentials", err)
			}
			checkNoToken(t, err, tok)

			_, _, err = oidcLogin(t, a, tok)
			want := auth.ErrInvalidCredentials
			if tc.notApplicable {
				want = auth.ErrNotApplicable
			}
			if !errors.Is(err, want) {
				t.Errorf("Authenticate: err = %v, want %v", err, want)
			}
			if tc.notApplicable && errors.Is(err, auth.ErrInvalidCredentials) {
				t.Errorf("Authenticate: a non-token password is both not applicable and invalid: %v", err)
			}
			checkNoToken(t, err, tok)
		})
	}

	// The control: the unaltered token is accepted by the same checks.
	if _, err := newOIDCFor(t, p, nil).Verify(ctx, session.NewSecret(good)); err != nil {
		t.Fatalf("the untouched token is refused: %v", err)
	}
}

func TestOIDCMaxTokenSize(t *testing.T) {
	p := oidcIdP(t)
	c := p.Claims("alice")
	c["pad"] = strings.Repeat("x", 20<<10)
	tok := mustTok(t)(p.Sign(c))
	if len(tok) <= auth.DefaultMaxTokenSize {
		t.Fatalf("token of %d bytes is not over the default limit", len(tok))
	}
	// A correctly signed token is refused by size alone...
	_, _, err := oidcLogin(t, newOIDCFor(t, p, nil), tok)
	if !errors.Is(err, auth.ErrInvalidCredentials) || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("default limit: err = %v", err)
	}
	// ...and accepted when the limit allows it.
	big := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.MaxTokenSize = 64 << 10 })
	if _, _, err := oidcLogin(t, big, tok); err != nil {
		t.Errorf("raised limit: %v", err)
	}
	small := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.MaxTokenSize = 100 })
	good := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
	if _, _, err := oidcLogin(t, small, good); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("100-byte limit accepted a %d-byte token: %v", len(good), err)
	}
}

// TestOIDCClockSkew pins the gateway's clock and checks the edges of the
// tolerance on exp, nbf and iat.
func TestOIDCClockSkew(t *testing.T) {
	p := oidcIdP(t)
	now := time.Now().Truncate(time.Second)
	fixed := func() time.Time { return now }
	at := func(change func(map[string]any)) string {
		c := p.Claims("alice")
		c["iat"], c["nbf"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
		change(c)
		return mustTok(t)(p.Sign(c))
	}
	cases := []struct {
		name   string
		skew   time.Duration
		change func(map[string]any)
		ok     bool
	}{
		// exp gets no tolerance: the session would end at once anyway.
		{"exp in 2s, default skew", 0, func(c map[string]any) { c["exp"] = now.Add(2 * time.Second).Unix() }, true},
		{"exp now, default skew", 0, func(c map[string]any) { c["exp"] = now.Unix() }, false},
		{"exp 10s ago, default skew", 0, func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }, false},
		{"exp 4m ago, 5m skew", auth.MaxClockSkew, func(c map[string]any) { c["exp"] = now.Add(-4 * time.Minute).Unix() }, false},
		{"nbf in 10s, default skew", 0, func(c map[string]any) { c["nbf"] = now.Add(10 * time.Second).Unix() }, true},
		{"nbf in 30s, default skew", 0, func(c map[string]any) { c["nbf"] = now.Add(30 * time.Second).Unix() }, true},
		{"nbf in 31s, default skew", 0, func(c map[string]any) { c["nbf"] = now.Add(31 * time.Second).Unix() }, false},
		{"iat in 20s, default skew", 0, func(c map[string]any) { c["iat"] = now.Add(20 * time.Second).Unix() }, true},
		{"iat in 31s, default skew", 0, func(c map[string]any) { c["iat"] = now.Add(31 * time.Second).Unix() }, false},
		{"no nbf, no iat", 0, func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.Now, c.ClockSkew = fixed, tc.skew })
			tok := at(tc.change)
			id, _, err := oidcLogin(t, a, tok)
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && !errors.Is(err, auth.ErrInvalidCredentials):
				t.Errorf("err = %v, want ErrInvalidCredentials", err)
			case tc.ok && !id.ExpiresAt.Equal(expOf(t, tok)):
				t.Errorf("ExpiresAt = %v, want exp %v", id.ExpiresAt, expOf(t, tok))
			}
			checkNoToken(t, err, tok)
		})
	}
}

func TestOIDCExpiryGrace(t *testing.T) {
	p := oidcIdP(t)
	tok := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.ExpiryGrace = 5 * time.Minute })
	id, _ := mustLogin(t, a, tok)
	if want := expOf(t, tok).Add(5 * time.Minute); !id.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want exp + grace = %v", id.ExpiresAt, want)
	}
	// The grace does not let an expired token log in.
	now := time.Now()
	c := p.Claims("ci-job")
	c["exp"], c["iat"], c["nbf"] = now.Add(-time.Minute).Unix(), now.Add(-time.Hour).Unix(), now.Add(-time.Hour).Unix()
	if _, _, err := oidcLogin(t, a, mustTok(t)(p.Sign(c))); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("expired token with grace: err = %v", err)
	}
}

func TestNewOIDCRefusesBadConfig(t *testing.T) {
	const iss = "https://idp.example"
	cases := []struct {
		name string
		cfg  auth.OIDCConfig
	}{
		{"no issuer", auth.OIDCConfig{Audience: oidcAudience}},
		{"no audience", auth.OIDCConfig{Issuer: iss}},
		{"alg none", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"none"}}},
		{"alg None among good ones", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"RS256", "None"}}},
		{"HS256", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"HS256"}}},
		{"hs512 lower case", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"ES256", "hs512"}}},
		{"unknown algorithm", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"RS1"}}},
		{"empty algorithm name", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Algorithms: []string{""}}},
		{"skew over 5m", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, ClockSkew: auth.MaxClockSkew + time.Second}},
		{"negative skew", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, ClockSkew: -time.Second}},
		{"negative grace", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, ExpiryGrace: -time.Second}},
		{"bad oauth_bearer", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, OAuthBearer: "sometimes"}},
		{"introspection without client", auth.OIDCConfig{Issuer: iss, Audience: oidcAudience, Introspection: &auth.Introspection{}}},
	}
	for _, tc := range cases {
		a, err := auth.NewOIDC(tc.cfg)
		if err == nil || a != nil {
			t.Errorf("%s: NewOIDC = %v, %v; want an error", tc.name, a, err)
		}
	}
	for _, ok := range []auth.OIDCConfig{
		{Issuer: iss, Audience: oidcAudience},
		{Issuer: iss, Audience: oidcAudience, Algorithms: []string{"ES256", "EdDSA", "PS512"}, ClockSkew: auth.MaxClockSkew, OAuthBearer: "never"},
	} {
		if _, err := auth.NewOIDC(ok); err != nil {
			t.Errorf("NewOIDC(%+v): %v", ok, err)
		}
	}
}

// TestOIDCAlgorithmAllowList: a token signed with an algorithm outside the
// configured list is refused even though its key is the IdP's.
func TestOIDCAlgorithmAllowList(t *testing.T) {
	p := oidcIdP(t)
	tok := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.Algorithms = []string{"ES256"} })
	_, _, err := oidcLogin(t, a, tok)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("RS256 token with ES256 only: err = %v", err)
	}
	checkNoToken(t, err, tok)
}

// TestOIDCKeyRotation: keys the IdP adds are picked up without a restart,
// when a token names a key the cache does not know (at most once per
// jwksMinRefresh, 10s); keys it drops stop verifying at the next fetch.
func TestOIDCKeyRotation(t *testing.T) {
	p := oidcIdP(t)
	ctx := t.Context()
	clock := &oidcClock{}
	tr := &idpTransport{}
	jwks := pathOf(t, p.JWKSURL())
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Now, c.HTTPClient = clock.Now, &http.Client{Transport: tr, Timeout: 5 * time.Second}
	})

	old := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	mustLogin(t, a, old) // warms the key cache
	if n := tr.count(jwks); n != 1 {
		t.Fatalf("%d key set fetches to warm the cache", n)
	}

	p.RotateKey()
	rotated := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	// Right after the warm-up fetch the cache does not refetch yet.
	if _, _, err := oidcLogin(t, a, rotated); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("new-key token within the refresh interval: err = %v", err)
	}
	clock.Advance(11 * time.Second)
	if id, _, err := oidcLogin(t, a, rotated); err != nil || id.Subject != "ci-job" {
		t.Fatalf("new-key token after rotation: %v %v", id, err)
	}
	if n := tr.count(jwks); n != 2 {
		t.Errorf("%d key set fetches after rotation, want 2", n)
	}
	// Both keys are published: the old token still verifies.
	mustLogin(t, a, old)

	// The IdP drops the old key. The cache keeps it until the next fetch,
	// which the next rotation causes; then the old token is refused.
	p.DropOldKeys()
	p.RotateKey()
	p.DropOldKeys()
	newest := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	clock.Advance(11 * time.Second)
	mustLogin(t, a, newest)
	for _, tok := range []string{old, rotated} {
		_, _, err := oidcLogin(t, a, tok)
		if !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("token of a dropped key: err = %v, want ErrInvalidCredentials", err)
		}
		checkNoToken(t, err, tok)
	}
	if n := tr.count(oidcDiscoveryPath); n != 1 {
		t.Errorf("%d discoveries, want 1", n)
	}
}

// TestOIDCJWKSRefreshRateLimited: tokens naming made-up keys make the
// gateway fetch the key set again at most once per refresh interval.
func TestOIDCJWKSRefreshRateLimited(t *testing.T) {
	p := oidcIdP(t)
	clock := &oidcClock{}
	tr := &idpTransport{}
	jwks := pathOf(t, p.JWKSURL())
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Now, c.HTTPClient = clock.Now, &http.Client{Transport: tr, Timeout: 5 * time.Second}
	})
	mustLogin(t, a, mustTok(t)(p.ClientToken(t.Context(), "ci-job")))
	clock.Advance(11 * time.Second) // a refetch is allowed again

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for i := range 20 {
		if i%2 == 0 {
			toks = append(toks, mustTok(t)(p.SignWithUnknownKey(p.Claims("alice"))))
		} else {
			toks = append(toks, signWith(t, jose.RS256, key, randomKid(), p.Claims("alice")))
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(toks))
	for i, tok := range toks {
		wg.Go(func() {
			_, errs[i] = a.Verify(t.Context(), session.NewSecret(tok))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("token %d: err = %v", i, err)
		}
	}
	// And sequentially, through Authenticate.
	for _, tok := range toks {
		if _, _, err := oidcLogin(t, a, tok); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("err = %v", err)
		}
	}
	if n := tr.count(jwks); n > 2 {
		t.Errorf("%d key set fetches for 40 tokens with unknown keys, want at most 2", n)
	} else {
		t.Logf("%d key set fetches", n)
	}
}

// TestJWKSFailedRefreshIsRateLimited: once the IdP's key set has been
// unreachable for longer than the cache's maximum age, tokens (including
// ones naming made-up keys) still make the gateway fetch the key set at
// most once per minRefresh; valid tokens verify with the keys it kept.
func TestJWKSFailedRefreshIsRateLimited(t *testing.T) {
	p := oidcIdP(t)
	clock := &oidcClock{}
	tr := &idpTransport{}
	jwks := pathOf(t, p.JWKSURL())
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Now, c.HTTPClient = clock.Now, &http.Client{Transport: tr, Timeout: 5 * time.Second}
	})
	c := p.Claims("ci-job")
	c["exp"] = time.Now().Add(3 * time.Hour).Unix()
	good := mustTok(t)(p.Sign(c))
	mustLogin(t, a, good)

	clock.Advance(61 * time.Minute) // the cached set is older than jwksMaxAge
	tr.set(func(tr *idpTransport) { tr.failPath = jwks })
	before := tr.count(jwks)
	// Valid tokens still verify with the keys kept from the last fetch.
	if _, err := a.Verify(t.Context(), session.NewSecret(good)); err != nil {
		t.Fatalf("kept keys do not verify: %v", err)
	}
	for range 20 {
		tok := mustTok(t)(p.SignWithUnknownKey(p.Claims("alice")))
		if _, err := a.Verify(t.Context(), session.NewSecret(tok)); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("err = %v", err)
		}
	}
	if n := tr.count(jwks) - before; n > 2 {
		t.Errorf("%d key set fetches for 21 tokens while the key set answers 503, want at most 2 (minRefresh)", n)
	}
}

// TestOIDCCanceledLoginDoesNotConsumeRetry: a login whose context ends
// (the proxy's AuthTimeout, which a client controls by sending its password
// late) during discovery or a key refresh must not make discovery or the
// new key fail for the other logins until the next retry.
func TestOIDCCanceledLoginDoesNotConsumeRetry(t *testing.T) {
	p := oidcIdP(t)
	tok := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	t.Run("discovery", func(t *testing.T) {
		a := newOIDCFor(t, p, nil)
		if _, err := a.Verify(canceled, session.NewSecret(tok)); err == nil {
			t.Fatal("verified with a canceled context")
		}
		if _, err := a.Verify(t.Context(), session.NewSecret(tok)); err != nil {
			t.Errorf("the next login, with a live context and the IdP up, is refused: %v", err)
		}
	})
	t.Run("key refresh", func(t *testing.T) {
		clock := &oidcClock{}
		a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.Now = clock.Now })
		if _, err := a.Verify(t.Context(), session.NewSecret(tok)); err != nil {
			t.Fatal(err)
		}
		p.RotateKey()
		rotated := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))
		clock.Advance(11 * time.Second)
		if _, err := a.Verify(canceled, session.NewSecret(rotated)); err == nil {
			t.Fatal("verified with a canceled context")
		}
		if _, err := a.Verify(t.Context(), session.NewSecret(rotated)); err != nil {
			t.Errorf("a token of the rotated key, with a live context, is refused: %v", err)
		}
	})
}

func TestOIDCIntrospection(t *testing.T) {
	p := oidcIdP(t)
	ctx := t.Context()
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Introspection = &auth.Introspection{ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW), Interval: 30 * time.Second}
	})
	tok := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	id, req := mustLogin(t, a, tok)
	if id.Subject != "ci-job" {
		t.Errorf("identity %+v", id)
	}
	rc := req.Rechecks()
	if len(rc) != 1 || rc[0].Interval != 30*time.Second || rc[0].Check == nil {
		t.Fatalf("rechecks = %+v, want one every 30s", rc)
	}
	if err := rc[0].Check(ctx); err != nil {
		t.Fatalf("recheck of an active token: %v", err)
	}

	p.Revoke(tok)
	err := rc[0].Check(ctx)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("recheck of a revoked token: err = %v, want ErrInvalidCredentials", err)
	}
	checkNoToken(t, err, tok)
	_, req, err = oidcLogin(t, a, tok)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("login with a revoked token: err = %v", err)
	}
	checkNoToken(t, err, tok)
	if len(req.Rechecks()) != 0 {
		t.Errorf("a refused login registered %d rechecks", len(req.Rechecks()))
	}

	// A token correctly signed with the IdP's key but never issued by it
	// (a stolen key, a forgery) is unknown to introspection: refused.
	forged := mustTok(t)(p.Sign(p.Claims("ci-job")))
	if _, err := newOIDCFor(t, p, nil).Verify(ctx, session.NewSecret(forged)); err != nil {
		t.Fatalf("control: the forged token verifies without introspection: %v", err)
	}
	if _, _, err := oidcLogin(t, a, forged); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("forged token with introspection: err = %v", err)
	}

	// Other tokens are not affected by the revocation; the default interval
	// is a minute and short ones are raised to a second.
	other := mustTok(t)(p.PersonToken(ctx, "alice"))
	for _, tc := range []struct{ set, want time.Duration }{{0, auth.DefaultRecheck}, {10 * time.Millisecond, time.Second}} {
		b := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
			c.Introspection = &auth.Introspection{ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW), Interval: tc.set}
		})
		_, req := mustLogin(t, b, other)
		if rc := req.Rechecks(); len(rc) != 1 || rc[0].Interval != tc.want {
			t.Errorf("interval %v: rechecks %+v, want every %v", tc.set, rc, tc.want)
		}
	}
}

// TestOIDCIntrospectionFailsClosed: an introspection endpoint that cannot
// be reached, or refuses the gateway, refuses the login (and ends a live
// session) with an error that is not ErrInvalidCredentials.
func TestOIDCIntrospectionFailsClosed(t *testing.T) {
	p := oidcIdP(t)
	ctx := t.Context()
	tok := mustTok(t)(p.ClientToken(ctx, "ci-job"))
	for _, tc := range []struct {
		name string
		in   auth.Introspection
	}{
		{"unreachable", auth.Introspection{URL: closedURL(t) + "/oauth/introspect", ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW)}},
		{"wrong secret", auth.Introspection{ClientID: oidcIntrospector, ClientSecret: session.NewSecret("not-the-secret")}},
		{"not an introspection endpoint", auth.Introspection{URL: p.JWKSURL(), ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.Introspection = &in })
			_, req, err := oidcLogin(t, a, tok)
			if err == nil {
				t.Fatal("login accepted without introspection")
			}
			if errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrNotApplicable) {
				t.Errorf("err = %v, want an error that is neither ErrInvalidCredentials nor ErrNotApplicable", err)
			}
			checkNoToken(t, err, tok)
			if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), oidcIntrospectorPW) {
				t.Errorf("error quotes the client secret: %v", err)
			}
			if len(req.Rechecks()) != 0 {
				t.Errorf("refused login registered rechecks")
			}
		})
	}

	// A session's recheck fails closed when the IdP goes away.
	tr := &idpTransport{}
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.HTTPClient = &http.Client{Transport: tr, Timeout: 5 * time.Second}
		c.Introspection = &auth.Introspection{ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW)}
	})
	_, req := mustLogin(t, a, tok)
	tr.set(func(tr *idpTransport) { tr.down = true })
	err := req.Rechecks()[0].Check(ctx)
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("recheck with the IdP down: err = %v, want a non-credential error", err)
	}
	checkNoToken(t, err, tok)
}

func TestOIDCDiscoveryFailure(t *testing.T) {
	p := oidcIdP(t)
	tok := mustTok(t)(p.ClientToken(t.Context(), "ci-job"))

	// Nothing listens at the issuer.
	a, err := auth.NewOIDC(auth.OIDCConfig{Issuer: closedURL(t), Audience: oidcAudience})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = oidcLogin(t, a, tok)
	if err == nil || errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrNotApplicable) {
		t.Errorf("closed port: err = %v, want a discovery error", err)
	}
	checkNoToken(t, err, tok)

	// The IdP is down at first; discovery is retried (at most every 5s)
	// and succeeds once it is back, without a new authenticator.
	clock := &oidcClock{}
	tr := &idpTransport{down: true}
	a = newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Now, c.HTTPClient = clock.Now, &http.Client{Transport: tr, Timeout: 5 * time.Second}
	})
	for range 3 {
		if _, _, err := oidcLogin(t, a, tok); err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("IdP down: err = %v", err)
		}
	}
	if n := tr.count(oidcDiscoveryPath); n != 1 {
		t.Errorf("%d discovery attempts within the retry interval, want 1", n)
	}
	tr.set(func(tr *idpTransport) { tr.down = false })
	if _, _, err := oidcLogin(t, a, tok); err == nil {
		t.Error("discovery retried before the retry interval")
	}
	clock.Advance(6 * time.Second)
	if id, _, err := oidcLogin(t, a, tok); err != nil || id.Subject != "ci-job" {
		t.Fatalf("after the IdP came back: %+v %v", id, err)
	}
	if n := tr.count(oidcDiscoveryPath); n != 2 {
		t.Errorf("%d discovery attempts, want 2", n)
	}

	// An issuer the IdP does not serve (no discovery document) is refused.
	b, err := auth.NewOIDC(auth.OIDCConfig{Issuer: p.Issuer() + "/tenant", Audience: oidcAudience})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := oidcLogin(t, b, tok); err == nil || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("issuer mismatch: err = %v", err)
	}
}

// TestOIDCConcurrentColdStart: many first logins at once discover and fetch
// the keys once.
func TestOIDCConcurrentColdStart(t *testing.T) {
	p := oidcIdP(t)
	tr := &idpTransport{}
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.HTTPClient = &http.Client{Transport: tr, Timeout: 5 * time.Second} })
	toks, err := p.Chain(t.Context(), "alice", "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			req := &auth.Request{User: "u", Database: "d", Client: &tokenConv{token: toks[i%2]}}
			id, err := a.Authenticate(t.Context(), req)
			if err == nil && id.Subject != "alice" {
				err = fmt.Errorf("subject %q", id.Subject)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if d, k := tr.count(oidcDiscoveryPath), tr.count(pathOf(t, p.JWKSURL())); d != 1 || k != 1 {
		t.Errorf("%d discoveries and %d key set fetches, want 1 and 1", d, k)
	}
}

func TestOIDCClaimMapping(t *testing.T) {
	p := oidcIdP(t)
	sign := func(change func(map[string]any)) string {
		c := p.Claims("alice")
		change(c)
		return mustTok(t)(p.Sign(c))
	}

	// Keycloak-style nested roles.
	a := newOIDCFor(t, p, func(c *auth.OIDCConfig) { c.Claims = auth.ClaimNames{Groups: "realm_access.roles"} })
	id, _ := mustLogin(t, a, sign(func(c map[string]any) {
		c["realm_access"] = map[string]any{"roles": []string{"db-admin", "readers"}}
	}))
	if !slices.Equal(id.Groups, []string{"db-admin", "readers"}) {
		t.Errorf("nested groups = %q", id.Groups)
	}
	// The default "groups" claim is not used when another is named.
	id, _ = mustLogin(t, a, sign(func(map[string]any) {}))
	if len(id.Groups) != 0 {
		t.Errorf("groups without realm_access = %q", id.Groups)
	}
	// A nested path that is not an object is absent, not an error.
	id, _ = mustLogin(t, a, sign(func(c map[string]any) { c["realm_access"] = "flat" }))
	if len(id.Groups) != 0 {
		t.Errorf("groups with a flat realm_access = %q", id.Groups)
	}

	// Groups as one space-separated string.
	a = newOIDCFor(t, p, nil)
	id, _ = mustLogin(t, a, sign(func(c map[string]any) { c["groups"] = " dba  readers\tops " }))
	if !slices.Equal(id.Groups, []string{"dba", "readers", "ops"}) {
		t.Errorf("space-separated groups = %q", id.Groups)
	}

	// Name falls back to preferred_username.
	id, _ = mustLogin(t, a, sign(func(c map[string]any) { delete(c, "name"); c["preferred_username"] = "alice.a" }))
	if id.Name != "alice.a" {
		t.Errorf("name fallback = %q", id.Name)
	}

	// Other claims for subject, name, email.
	a = newOIDCFor(t, p, func(c *auth.OIDCConfig) {
		c.Claims = auth.ClaimNames{Subject: "oid", Name: "display", Email: "contact.mail"}
	})
	id, _ = mustLogin(t, a, sign(func(c map[string]any) {
		c["oid"] = "00000000-aaaa"
		c["display"] = "Alice (display)"
		c["contact"] = map[string]any{"mail": "a@contact.example"}
		c["preferred_username"] = "not-used"
	}))
	if id.Subject != "00000000-aaaa" || id.Name != "Alice (display)" || id.Email != "a@contact.example" {
		t.Errorf("custom claims: %+v", id)
	}
	// A named subject claim that is missing refuses the token, even though
	// "sub" is there.
	_, _, err := oidcLogin(t, a, sign(func(map[string]any) {}))
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("missing custom subject: err = %v", err)
	}
	// No preferred_username fallback when the name claim is named.
	id, _ = mustLogin(t, a, sign(func(c map[string]any) { c["oid"] = "x"; c["preferred_username"] = "pu" }))
	if id.Name != "" {
		t.Errorf("name = %q, want none", id.Name)
	}
}
