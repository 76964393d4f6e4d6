package devidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// rsaKey is an RS256 signing key; it is both an op.SigningKey (private
// half) and, through publicKey, an op.Key published in the JWKS.
type rsaKey struct {
	id   string
	priv *rsa.PrivateKey
}

func (k *rsaKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *rsaKey) Key() any                                    { return k.priv }
func (k *rsaKey) ID() string                                  { return k.id }

type publicKey struct{ k *rsaKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.priv.PublicKey }

// keyring holds the current signing key, the published keys, a key that is
// never published (for negative tests) and the dev-only ES256 key that signs
// person assertions for the JWT-profile grant.
type keyring struct {
	mu        sync.RWMutex
	current   *rsaKey
	published []*rsaKey // includes current
	unknown   *rsaKey   // lazily generated, never published

	assertion   *ecdsa.PrivateKey
	assertionID string
}

func newRSAKey() (*rsaKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate RSA key: %w", err)
	}
	return &rsaKey{id: randomID(), priv: priv}, nil
}

func newKeyring() (*keyring, error) {
	k, err := newRSAKey()
	if err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate EC key: %w", err)
	}
	return &keyring{current: k, published: []*rsaKey{k}, assertion: ec, assertionID: randomID()}, nil
}

func (r *keyring) signingKey() *rsaKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

func (r *keyring) keySet() []op.Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]op.Key, len(r.published))
	for i, k := range r.published {
		out[i] = publicKey{k}
	}
	return out
}

// RotateKey generates a new RSA 2048 signing key and returns its kid. Tokens
// issued or signed afterwards use the new key; the previous public keys stay
// in the JWKS until DropOldKeys. It panics only if the system's random
// source fails.
func (p *Provider) RotateKey() (kid string) {
	k, err := newRSAKey()
	if err != nil {
		panic(err)
	}
	p.keys.mu.Lock()
	defer p.keys.mu.Unlock()
	p.keys.current = k
	p.keys.published = append(p.keys.published, k)
	return k.id
}

// DropOldKeys removes every key but the current signing key from the JWKS;
// tokens signed with the dropped keys no longer verify.
func (p *Provider) DropOldKeys() {
	p.keys.mu.Lock()
	defer p.keys.mu.Unlock()
	p.keys.published = []*rsaKey{p.keys.current}
}

// KeyID returns the kid of the current signing key.
func (p *Provider) KeyID() string { return p.keys.signingKey().id }

// Sign signs claims as a compact JWS (RS256, typ JWT) with the current
// signing key and its kid, exactly as the OP signs tokens. It is a forgery
// helper for tests: the token does not come from the token endpoint and is
// not known to introspection.
func (p *Provider) Sign(claims map[string]any) (string, error) {
	return signRSA(p.keys.signingKey(), claims)
}

// SignWithUnknownKey signs claims like Sign but with an RSA key whose kid is
// never published in the JWKS, so verification must fail. The key is
// generated once per Provider.
func (p *Provider) SignWithUnknownKey(claims map[string]any) (string, error) {
	r := p.keys
	r.mu.Lock()
	if r.unknown == nil {
		k, err := newRSAKey()
		if err != nil {
			r.mu.Unlock()
			return "", err
		}
		r.unknown = k
	}
	k := r.unknown
	r.mu.Unlock()
	return signRSA(k, claims)
}

// PublicKeyPEM returns the current signing key's public key as a PKIX
// "PUBLIC KEY" PEM block (e.g. for HS256-with-public-key confusion tests).
func (p *Provider) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&p.keys.signingKey().priv.PublicKey)
	if err != nil { // cannot happen for an RSA key
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Claims returns a fresh, valid claim set for subject that tests can alter
// and pass to Sign: iss, sub, aud ([audience]), exp (now + token
// lifetime), iat, nbf, jti, plus groups/name/email when subject is a
// configured user or client (groups is always present). Times are Unix
// seconds (int64).
func (p *Provider) Claims(subject string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": p.issuer,
		"sub": subject,
		"aud": []string{p.cfg.Audience},
		"exp": now.Add(p.cfg.TokenLifetime).Unix(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"jti": randomID(),
	}
	for k, v := range p.store.dir.claims(subject) {
		c[k] = v
	}
	if _, ok := c["groups"]; !ok {
		c["groups"] = []string{}
	}
	return c
}

func signRSA(k *rsaKey, claims map[string]any) (string, error) {
	return signJWT(jose.RS256, k.priv, k.id, claims)
}

func signJWT(alg jose.SignatureAlgorithm, key any, kid string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devidp: marshal claims: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("devidp: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devidp: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// personAssertion signs the RFC 7523 assertion with which PersonToken asks
// the token endpoint for subject's token.
func (p *Provider) personAssertion(subject string) (string, error) {
	now := time.Now()
	return signJWT(jose.ES256, p.keys.assertion, p.keys.assertionID, map[string]any{
		"iss": subject,
		"sub": subject,
		"aud": []string{p.issuer},
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": randomID(),
	})
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
