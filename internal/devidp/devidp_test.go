package devidp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

func testConfig() Config {
	return Config{
		TokenLifetime: time.Minute,
		Users: []User{
			{Subject: "alice", Name: "Alice A.", Email: "alice@example.test", Groups: []string{"dba", "dev"}},
		},
		Clients: []Client{
			{ID: "ci-job", Secret: "ci-secret", Groups: []string{"ci"}, Name: "CI job"},
			{ID: "agent", Secret: "agent-secret", Groups: []string{"agents"}},
			{ID: "sub-agent", Secret: "sub-secret"},
		},
		Introspectors: []Client{{ID: "pgwarden-rs", Secret: "rs-secret"}},
	}
}

func start(t *testing.T) *Provider {
	t.Helper()
	p, err := Start(t.Context(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// verifier verifies access tokens for the pgwarden audience, discovering
// the provider like a relying party would.
func verifier(t *testing.T, p *Provider) *oidc.IDTokenVerifier {
	t.Helper()
	rp, err := oidc.NewProvider(t.Context(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	return rp.Verifier(&oidc.Config{ClientID: p.Audience()})
}

func verifiedClaims(t *testing.T, v *oidc.IDTokenVerifier, token string) map[string]any {
	t.Helper()
	tok, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c map[string]any
	if err := tok.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// jsonEq compares after a JSON round trip, so []string and []any compare.
func jsonEq(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	var gv, wv any
	_ = json.Unmarshal(g, &gv)
	_ = json.Unmarshal(w, &wv)
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	p := start(t)
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") {
		t.Fatalf("issuer %q", p.Issuer())
	}
	var d map[string]any
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &d)
	jsonEq(t, "issuer", d["issuer"], p.Issuer())
	jsonEq(t, "token_endpoint", d["token_endpoint"], p.TokenURL())
	jsonEq(t, "introspection_endpoint", d["introspection_endpoint"], p.IntrospectionURL())
	jsonEq(t, "jwks_uri", d["jwks_uri"], p.JWKSURL())

	var ks jose.JSONWebKeySet
	getJSON(t, p.JWKSURL(), &ks)
	if len(ks.Keys) != 1 || ks.Keys[0].KeyID != p.KeyID() || ks.Keys[0].Algorithm != "RS256" || !ks.Keys[0].IsPublic() {
		t.Fatalf("jwks = %+v", ks.Keys)
	}
}

func TestClientToken(t *testing.T) {
	p := start(t)
	tok, err := p.ClientToken(t.Context(), "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	c := verifiedClaims(t, verifier(t, p), tok)
	jsonEq(t, "sub", c["sub"], "ci-job")
	jsonEq(t, "aud", c["aud"], []string{"pgwarden"})
	jsonEq(t, "groups", c["groups"], []string{"ci"})
	jsonEq(t, "name", c["name"], "CI job")
	for _, k := range []string{"iss", "exp", "iat", "nbf", "jti"} {
		if c[k] == nil {
			t.Errorf("missing %s in %v", k, c)
		}
	}
	if c["act"] != nil {
		t.Errorf("unexpected act %v", c["act"])
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat < 59 || exp-iat > 61 {
		t.Errorf("lifetime %v s, want 60", exp-iat)
	}

	// A wrong secret is refused; introspectors cannot get tokens.
	form := url.Values{"grant_type": {"client_credentials"}}
	if err := p.post(t.Context(), p.TokenURL(), "ci-job", "wrong", form, new(any)); err == nil {
		t.Error("wrong secret accepted")
	}
	if _, err := p.ClientToken(t.Context(), "pgwarden-rs"); err == nil {
		t.Error("introspector got a token")
	}
}

func TestChainNestsActors(t *testing.T) {
	p := start(t)
	v := verifier(t, p)
	toks, err := p.Chain(t.Context(), "alice", "ci-job", "agent", "sub-agent")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 4 {
		t.Fatalf("%d tokens", len(toks))
	}
	wantAct := []any{
		nil,
		map[string]any{"sub": "ci-job"},
		map[string]any{"sub": "agent", "act": map[string]any{"sub": "ci-job"}},
		map[string]any{"sub": "sub-agent", "act": map[string]any{"sub": "agent", "act": map[string]any{"sub": "ci-job"}}},
	}
	for i, tok := range toks {
		c := verifiedClaims(t, v, tok)
		jsonEq(t, "sub", c["sub"], "alice")
		jsonEq(t, "aud", c["aud"], []string{"pgwarden"})
		jsonEq(t, "groups", c["groups"], []string{"dba", "dev"})
		jsonEq(t, "name", c["name"], "Alice A.")
		jsonEq(t, "email", c["email"], "alice@example.test")
		jsonEq(t, "act", c["act"], wantAct[i])
		if i == 3 {
			b, _ := json.MarshalIndent(c, "", "  ")
			t.Logf("4-hop token payload:\n%s", b)
		}
	}

	// Plain net/http exchange without an audience parameter gets the
	// default audience; the newest actor is outermost.
	actor, err := p.ClientToken(t.Context(), "agent")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {toks[1]},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"actor_token":        {actor},
		"actor_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("agent", "agent-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("exchange: %s %v", resp.Status, err)
	}
	c := verifiedClaims(t, v, tr.AccessToken)
	jsonEq(t, "raw exchange aud", c["aud"], []string{"pgwarden"})
	jsonEq(t, "raw exchange act", c["act"], wantAct[2])
	jsonEq(t, "raw exchange client_id", c["client_id"], "agent")

	// Revoked subject tokens cannot be exchanged.
	p.Revoke(toks[0])
	if _, err := p.Exchange(t.Context(), toks[0], actor, "agent"); err == nil {
		t.Error("revoked subject token exchanged")
	}
}

func TestRotation(t *testing.T) {
	p := start(t)
	ctx := t.Context()
	oldKid := p.KeyID()
	oldTok, err := p.ClientToken(ctx, "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	newKid := p.RotateKey()
	if newKid == oldKid || p.KeyID() != newKid {
		t.Fatalf("kid %q -> %q", oldKid, newKid)
	}
	newTok, err := p.ClientToken(ctx, "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, newTok); h.KeyID != newKid {
		t.Fatalf("new token kid %q, want %q", h.KeyID, newKid)
	}
	cfg := &oidc.Config{ClientID: p.Audience()}
	fresh := func() *oidc.IDTokenVerifier {
		return oidc.NewVerifier(p.Issuer(), oidc.NewRemoteKeySet(ctx, p.JWKSURL()), cfg)
	}
	for _, tok := range []string{oldTok, newTok} { // both published
		if _, err := fresh().Verify(ctx, tok); err != nil {
			t.Fatalf("before drop: %v", err)
		}
	}
	p.DropOldKeys()
	if _, err := fresh().Verify(ctx, newTok); err != nil {
		t.Fatalf("new key after drop: %v", err)
	}
	if _, err := fresh().Verify(ctx, oldTok); err == nil {
		t.Fatal("old-key token still verifies after DropOldKeys")
	}
}

func TestIntrospection(t *testing.T) {
	p := start(t)
	ctx := t.Context()
	toks, err := p.Chain(ctx, "alice", "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		r, err := p.Introspect(ctx, "pgwarden-rs", tok)
		if err != nil {
			t.Fatal(err)
		}
		if r["active"] != true || r["sub"] != "alice" || r["exp"] == nil || r["jti"] == nil {
			t.Fatalf("introspection = %v", r)
		}
		jsonEq(t, "groups", r["groups"], []string{"dba", "dev"})
	}
	r, _ := p.Introspect(ctx, "pgwarden-rs", toks[1])
	jsonEq(t, "introspected act", r["act"], map[string]any{"sub": "ci-job"})

	p.Revoke(toks[1])
	if r, err := p.Introspect(ctx, "pgwarden-rs", toks[1]); err != nil || r["active"] != false {
		t.Fatalf("revoked: %v %v", r, err)
	}
	if r, _ := p.Introspect(ctx, "pgwarden-rs", toks[0]); r["active"] != true {
		t.Fatalf("unrevoked token inactive: %v", r)
	}
	// Forged tokens are unknown to the OP; unauthenticated callers are refused.
	forged, _ := p.Sign(p.Claims("alice"))
	if r, _ := p.Introspect(ctx, "pgwarden-rs", forged); r["active"] != false {
		t.Fatalf("forged token active: %v", r)
	}
	resp, err := http.PostForm(p.IntrospectionURL(), url.Values{"token": {toks[0]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated introspection: %s", resp.Status)
	}
}

func TestForgedTokens(t *testing.T) {
	p := start(t)
	ctx := t.Context()
	v := verifier(t, p)

	claims := p.Claims("alice")
	jsonEq(t, "groups", claims["groups"], []string{"dba", "dev"})
	good, err := p.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	c := verifiedClaims(t, v, good)
	jsonEq(t, "sub", c["sub"], "alice")

	unknown, err := p.SignWithUnknownKey(p.Claims("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, unknown); err == nil {
		t.Error("token with unknown kid verified")
	}

	expired := p.Claims("alice")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	tok, _ := p.Sign(expired)
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Error("expired token verified")
	}

	block, _ := pem.Decode(p.PublicKeyPEM())
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(good, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(pub.(*rsa.PublicKey)); err != nil {
		t.Fatalf("PublicKeyPEM does not verify Sign: %v", err)
	}
}

func TestCloseOnContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, err := Start(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Audience() != DefaultAudience {
		t.Fatalf("audience %q", p.Audience())
	}
	cancel()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := http.Get(p.JWKSURL())
		if err != nil {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("provider still serving after ctx was canceled")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func header(t *testing.T, token string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header
}
